// The one place that talks to the admin port. The token lives in sessionStorage of this origin
// (never a cookie: nothing is sent unless this code sends it) and goes out as a bearer token.
const KEY = 'mcp-warden-admin-token';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => (t ? sessionStorage.setItem(KEY, t.trim()) : sessionStorage.removeItem(KEY)),
};

export function headers() {
  const t = token.get();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path) {
  const res = await fetch(path, { method, headers: headers(), cache: 'no-store' });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text.trim() };
  }
  if (!res.ok) {
    const why = res.status === 401 ? 'the admin token is required (enter it above)' : body?.error || text;
    throw new ApiError(res.status, `${res.status}: ${why}`);
  }
  return body;
}

export const get = (path) => call('GET', path);
export const post = (path) => call('POST', path);
export const seg = (s) => encodeURIComponent(s);

// Follows an SSE endpoint with fetch (EventSource cannot send the Authorization header); calls
// onRecord with each parsed `data:` record until `signal` aborts.
export async function follow(path, onRecord, onState, signal) {
  const res = await fetch(path, { headers: headers(), cache: 'no-store', signal });
  if (!res.ok) throw new ApiError(res.status, `${res.status}: ${(await res.text()).trim()}`);
  onState('live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) {
        try {
          onRecord(JSON.parse(data));
        } catch {
          /* a line that is not JSON is not a record */
        }
      }
    }
  }
}

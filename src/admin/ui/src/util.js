import { html } from 'htm/preact';

// Characters a reviewer must see: zero-width and bidi controls, soft hyphen, BOM, tag
// characters (ASCII smuggling), other C0/C1 controls except newline and tab.
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]|\udb40[\udc00-\udc7f]/g;

function codepoint(ch) {
  return 'U+' + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
}

// Text with every invisible character replaced by a visible, labelled marker.
export function visible(text) {
  const s = String(text ?? '');
  const out = [];
  let last = 0;
  for (const m of s.matchAll(INVISIBLE)) {
    if (m.index > last) out.push(s.slice(last, m.index));
    const cp = codepoint(m[0]);
    out.push(html`<mark class="invis" title=${`invisible character ${cp}`}>⟦${cp}⟧</mark>`);
    last = m.index + m[0].length;
  }
  out.push(s.slice(last));
  return out;
}

export const countInvisible = (text) => (String(text ?? '').match(INVISIBLE) || []).length;

export const pretty = (v) => JSON.stringify(v, null, 2);

export function ago(ts) {
  if (!ts) return '—';
  const secs = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (secs < 60) return `${Math.round(secs)} s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return `${Math.round(secs / 86400)} d ago`;
}

export const fmt = (n, d = 2) => (typeof n === 'number' ? n.toFixed(d) : '—');

export function ErrorNote({ error }) {
  return error ? html`<p class="error" role="alert">${String(error.message || error)}</p>` : null;
}

import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, seg } from '../api.js';
import { ErrorNote, visible } from '../util.js';

// Polled every second: the queue is files in the state dir, decided from any process, and a
// second is well inside the approval timeout (60 s by default).
export function Approvals({ announce }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [now, setNow] = useState(Date.now() / 1000);
  const load = () =>
    get('/api/v1/approvals')
      .then((d) => (setList(d.filter((t) => t.status === 'pending')), setError(null), setNow(Date.now() / 1000)))
      .catch(setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 1000);
    return () => clearInterval(t);
  }, []);
  const decide = (t, verb) =>
    post(`/api/v1/approvals/${seg(t.id)}/${verb}`)
      .then(() => (announce(`${t.tool} on ${t.server}: ${verb === 'approve' ? 'approved' : 'denied'}`), load()))
      .catch(setError);
  return html`<section aria-labelledby="h-approvals">
    <h1 id="h-approvals">Approvals</h1>
    <p class="hint">Calls waiting for a human. Arguments are shown as the proxy's safe view (secrets and
      long values cut). Deciding needs the admin token and is signed with the proxy's key.</p>
    <${ErrorNote} error=${error} />
    ${list && list.length === 0 && html`<p>No call is waiting.</p>`}
    <ul class="cards" aria-live="polite">
      ${(list || []).map(
        (t) => html`<li class="card" key=${t.id} data-ticket=${t.id} data-tool=${t.tool}>
          <h2><code>${visible(t.tool)}</code> on ${t.server}</h2>
          <p><span class=${`badge risk-${t.risk}`}>risk ${t.risk}</span> rule <code>${t.rule}</code>;
            expires in ${Math.max(0, Math.round(t.expires - now))} s</p>
          <dl class="args">${(t.arguments || []).map((a) => html`<dd><code>${visible(a)}</code></dd>`)}</dl>
          ${(t.arguments || []).length === 0 && html`<p class="hint">No arguments.</p>`}
          <div class="actions">
            <button type="button" class="primary" onClick=${() => decide(t, 'approve')}>Approve ${t.tool}</button>
            <button type="button" class="danger" onClick=${() => decide(t, 'deny')}>Deny</button>
          </div>
        </li>`,
      )}
    </ul>
  </section>`;
}

import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, seg } from '../api.js';
import { ago, ErrorNote, visible } from '../util.js';

const LEVELS = ['critical', 'high', 'medium', 'low'];

export function Alerts({ announce }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [showAcked, setShowAcked] = useState(false);
  const load = () => get('/api/v1/alerts/trail').then((d) => (setList(d), setError(null))).catch(setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  const ack = (a) =>
    post(`/api/v1/alerts/${seg(a.audit_id)}/ack`)
      .then(() => (announce(`alert ${a.audit_id} acknowledged`), load()))
      .catch(setError);
  const shown = (list || []).filter((a) => showAcked || !a.acknowledged);
  return html`<section aria-labelledby="h-alerts">
    <h1 id="h-alerts">Alerts</h1>
    <p class="hint">Security alerts of the last 24 hours from the audit trail, by severity.</p>
    <label class="inline"><input type="checkbox" checked=${showAcked}
      onChange=${(e) => setShowAcked(e.currentTarget.checked)} /> Show acknowledged</label>
    <${ErrorNote} error=${error} />
    ${list && shown.length === 0 && html`<p>No ${showAcked ? '' : 'unacknowledged '}alert.</p>`}
    ${LEVELS.map((level) => {
      const items = shown.filter((a) => a.severity === level);
      return items.length === 0
        ? null
        : html`<section aria-label=${`${level} alerts`}>
            <h2><span class=${`badge sev-${level}`}>${level}</span> ${items.length}</h2>
            <ul class="cards">${items.map(
              (a) => html`<li class="card" key=${a.audit_id} data-alert=${a.audit_id}>
                <h3>${a.event} <span class="hint">on ${a.server || 'the proxy'}, ${ago(a.ts)}</span></h3>
                <p>${visible(a.reason || `rule ${a.rule || a.event}, decision ${a.decision}`)}${a.tool && html` (tool <code>${visible(a.tool)}</code>)`}</p>
                ${a.acknowledged
                  ? html`<p class="ok">Acknowledged</p>`
                  : html`<button type="button" onClick=${() => ack(a)}>Acknowledge</button>`}
              </li>`,
            )}</ul>
          </section>`;
    })}
  </section>`;
}

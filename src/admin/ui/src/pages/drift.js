import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, seg } from '../api.js';
import { countInvisible, ErrorNote, pretty, visible } from '../util.js';

function Side({ title, value }) {
  const text = value == null ? '(nothing pinned: a new definition)' : pretty(value);
  const n = countInvisible(text);
  return html`<div class="side">
    <h4>${title}${n > 0 && html` <span class="badge warn">${n} invisible character${n > 1 ? 's' : ''}</span>`}</h4>
    <pre tabindex="0" aria-label=${title}>${visible(text)}</pre>
  </div>`;
}

function Item({ server, item, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const act = (verb) => {
    setBusy(true);
    post(`/api/v1/pins/${seg(server)}/${verb}/${seg(item.key)}`)
      .then((r) => onDone(`${item.key}: ${r.status === 'approved' ? 'approved, listed again' : 'kept held'} (audit ${r.audit_id})`))
      .catch((e) => (setError(e), setBusy(false)));
  };
  return html`<article class="held" data-item=${item.key}>
    <h3>${item.kind} <code>${visible(item.key)}</code>
      <span class="badge">${item.reason === 'changed' ? 'changed since pinned' : 'new'}</span>
      ${item.exposed ? html`<span class="badge">exposed (alert mode)</span>` : html`<span class="badge warn">held</span>`}</h3>
    <p class="hint">First seen ${item.first_seen}; sha256 ${item.sha256.slice(0, 16)}…</p>
    ${item.findings.length > 0 &&
    html`<ul class="findings" aria-label="scanner findings">${item.findings.map((f) => html`<li>${visible(f)}</li>`)}</ul>`}
    <div class="sides"><${Side} title="Pinned" value=${item.pinned} /><${Side} title="Held" value=${item.held} /></div>
    ${item.changes.length > 0 &&
    html`<details><summary>${item.changes.length} change(s)</summary><ul class="changes">
      ${item.changes.map(
        (c) => html`<li><code>${c.path || '(whole definition)'}</code>: <del>${visible(c.old == null ? '—' : pretty(c.old))}</del>
          → <ins>${visible(c.new == null ? '—' : pretty(c.new))}</ins></li>`,
      )}</ul></details>`}
    <${ErrorNote} error=${error} />
    <div class="actions">
      <button type="button" class="primary" disabled=${busy} onClick=${() => act('approve')}>Approve ${item.key}</button>
      <button type="button" disabled=${busy} onClick=${() => act('keep')}>Keep held</button>
    </div>
  </article>`;
}

export function Drift({ announce }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const load = () => get('/api/v1/pins').then((d) => (setData(d), setError(null))).catch(setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  const withItems = (data || []).filter((s) => s.items.length > 0 || s.error);
  return html`<section aria-labelledby="h-drift">
    <h1 id="h-drift">Drift and pins</h1>
    <p class="hint">Definitions a proxy held back, each beside its pin. Approve has the effect of <code>mcp-warden pins approve SERVER ITEM</code>; both answers are written to the audit trail.</p>
    <${ErrorNote} error=${error} />
    ${data && withItems.length === 0 && html`<p>Nothing is held: every server lists what was approved.</p>`}
    ${withItems.map(
      (s) => html`<section class="pinserver" data-pin-server=${s.server} aria-label=${`held for ${s.server}`}>
        <h2>${s.server}${s.signed && html` <span class="badge">signed pins</span>`}</h2>
        ${s.error && html`<p class="error">${s.error}</p>`}
        ${s.items.map(
          (item) => html`<${Item} key=${item.kind + item.key} server=${s.server} item=${item}
            onDone=${(msg) => (announce(msg), load())} />`,
        )}
      </section>`,
    )}
  </section>`;
}

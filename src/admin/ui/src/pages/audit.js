import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { follow, get } from '../api.js';
import { ErrorNote, pretty, visible } from '../util.js';

const KEEP = 500;

function Verify() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const load = () => get('/api/v1/audit/files').then(setData).catch(setError);
  useEffect(() => void load(), []);
  return html`<section aria-labelledby="h-verify">
    <h2 id="h-verify">Trail files <button type="button" onClick=${load}>Verify again</button></h2>
    <${ErrorNote} error=${error} />
    ${data &&
    html`<div class="scroll" tabindex="0" role="region" aria-label="trail files"><table>
      <thead><tr><th scope="col">File</th><th scope="col">Lines</th><th scope="col">audit verify</th>
        <th scope="col">Checkpoints</th><th scope="col">Last checkpoint</th></tr></thead>
      <tbody>${data.files.map(
        (f) => html`<tr data-file=${f.file}>
          <td><code>${f.file}</code></td><td class="num">${f.lines ?? '—'}</td>
          <td class=${f.status === 'intact' ? 'ok' : 'error'}>${f.status}${f.line ? ` at line ${f.line}: ${f.reason}` : ''}</td>
          <td class="num">${f.checkpoints ?? '—'}${f.unsigned_tail ? ` (+${f.unsigned_tail} after)` : ''}</td>
          <td>${f.last_checkpoint ? `seq ${f.last_checkpoint.seq}, ${f.last_checkpoint.ts}` : 'none yet'}</td>
        </tr>`,
      )}</tbody></table></div>
    <p class="hint">${data.key_checked ? 'Checkpoints checked against this proxy\'s identity key.' : 'No identity key: chains only.'}
      ${data.total_files > data.files.length && ` The newest ${data.files.length} of ${data.total_files} files.`}</p>`}
  </section>`;
}

// One record, opened from the table: focus moves to it, Escape or Close returns.
function RecordView({ record, onClose }) {
  const box = useRef(null);
  useEffect(() => box.current?.focus(), [record]);
  return html`<div class="record" role="dialog" aria-modal="false" aria-labelledby="h-record" tabindex="-1" ref=${box}
    onKeyDown=${(e) => e.key === 'Escape' && onClose()}>
    <h2 id="h-record">Record ${record.audit_id || `seq ${record.seq}`}</h2>
    <pre tabindex="0">${visible(pretty(record))}</pre>
    <button type="button" onClick=${onClose}>Close</button>
  </div>`;
}

const options = (records, field) => [...new Set(records.map((r) => r[field]).filter(Boolean))].sort();

export function Audit() {
  const [records, setRecords] = useState([]);
  const [state, setState] = useState('connecting');
  const [error, setError] = useState(null);
  const [filter, setFilter] = useState({ server: '', decision: '', event: '' });
  const [open, setOpen] = useState(null);
  const buf = useRef([]);
  useEffect(() => {
    const ctl = new AbortController();
    let timer = null;
    // Batched: a burst of records renders once per animation frame, not once per record.
    const push = (r) => {
      buf.current.push(r);
      if (!timer) {
        timer = requestAnimationFrame(() => {
          timer = null;
          const add = buf.current.splice(0);
          // Several files feed the stream: order by time, newest first.
          setRecords((old) => [...add, ...old].sort((a, b) => (b.ts || '').localeCompare(a.ts || '')).slice(0, KEEP));
        });
      }
    };
    follow('/api/v1/audit/stream', push, setState, ctl.signal)
      .then(() => setState('ended'))
      .catch((e) => e.name !== 'AbortError' && (setError(e), setState('failed')));
    return () => ctl.abort();
  }, []);
  const shown = useMemo(
    () =>
      records.filter(
        (r) =>
          (!filter.server || r.server === filter.server) &&
          (!filter.decision || r.decision === filter.decision) &&
          (!filter.event || r.event === filter.event),
      ),
    [records, filter],
  );
  const select = (field, label) => html`<label>${label}
    <select value=${filter[field]} onChange=${(e) => setFilter({ ...filter, [field]: e.currentTarget.value })}>
      <option value="">all</option>
      ${options(records, field).map((v) => html`<option value=${v}>${v}</option>`)}
    </select></label>`;
  return html`<section aria-labelledby="h-audit">
    <h1 id="h-audit">Audit</h1>
    <p class="hint">Live from <code>/api/v1/audit/stream</code> (<span data-stream-state=${state}>${state}</span>); the newest ${KEEP} records.</p>
    <${ErrorNote} error=${error} />
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="filters">
      ${select('server', 'Server')} ${select('decision', 'Decision')} ${select('event', 'Event')}
    </form>
    <div class="scroll" tabindex="0" role="region" aria-label="audit records"><table class="audit">
      <thead><tr><th scope="col">Time</th><th scope="col">Server</th><th scope="col">Event</th>
        <th scope="col">Method / tool</th><th scope="col">Decision</th><th scope="col">Record</th></tr></thead>
      <tbody>${shown.map(
        (r) => html`<tr key=${`${r.audit_id}:${r.seq}:${r.ts}`} data-audit-id=${r.audit_id} class=${`d-${r.decision}`}>
          <td><time datetime=${r.ts}>${(r.ts || '').slice(11, 23)}</time></td>
          <td>${r.server}</td><td>${r.event}</td>
          <td>${visible([r.method, r.tool].filter(Boolean).join(' '))}</td>
          <td>${r.decision}</td>
          <td><button type="button" onClick=${() => setOpen(r)} aria-label=${`open record ${r.audit_id || r.seq}`}>Open</button></td>
        </tr>`,
      )}</tbody></table></div>
    ${open && html`<${RecordView} record=${open} onClose=${() => setOpen(null)} />`}
    <${Verify} />
  </section>`;
}

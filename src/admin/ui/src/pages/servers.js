import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get } from '../api.js';
import { Sparkline } from '../sparkline.js';
import { ago, ErrorNote, fmt } from '../util.js';

const evidence = (e) =>
  Object.entries(e || {})
    .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`)
    .join(', ') || 'no evidence';

function Factors({ trust }) {
  if (!trust?.factors) return html`<p class="error">${trust?.error || 'no trust data'}</p>`;
  return html`<table class="factors">
    <caption>The eight trust factors (weights before renormalisation; "—" has no data)</caption>
    <thead><tr><th scope="col">Factor</th><th scope="col">Value</th><th scope="col">Weight</th><th scope="col">Evidence</th></tr></thead>
    <tbody>
      ${trust.factors.map(
        (f) => html`<tr data-factor=${f.name}>
          <th scope="row">${f.name.replace(/_/g, ' ')}</th>
          <td class="num" data-value=${f.value ?? ''}>${fmt(f.value)}</td>
          <td class="num">${fmt(f.weight)}</td>
          <td>${evidence(f.evidence)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function Row({ s }) {
  const [open, setOpen] = useState(false);
  const score = s.trust?.score;
  const band = score >= 0.7 ? 'good' : score >= 0.5 ? 'fair' : 'poor';
  const id = `factors-${s.name.replace(/[^a-z0-9_-]/gi, '_')}`;
  return html`<tbody class="server" data-server=${s.name}>
    <tr>
      <th scope="row">${s.name}</th>
      <td data-label="Transport">${s.transport}</td>
      <td data-label="Era">${s.era || '—'}</td>
      <td class="num" data-label="Pinned / drifted / held" title="pinned / drifted / held">
        <span data-pins="pinned">${s.pins.pinned}</span> / <span data-pins="drifted">${s.pins.drifted}</span> / <span data-pins="held" class=${s.pins.held ? 'warn' : ''}>${s.pins.held}</span>
      </td>
      <td class="num" data-label="Trust">
        <button type="button" class=${`score ${band}`} aria-expanded=${open} aria-controls=${id}
          data-score=${score ?? ''} onClick=${() => setOpen(!open)}>
          ${fmt(score)}<span class="sr-only"> trust: show the factors</span>
        </button>
      </td>
      <td data-label="Last seen"><time datetime=${s.last_seen || ''}>${ago(s.last_seen)}</time></td>
      <td data-label="24 h"><${Sparkline} calls=${s.hourly.calls} denials=${s.hourly.denials} label=${s.name} /></td>
    </tr>
    ${open &&
    html`<tr id=${id} class="detail"><td colspan="7"><${Factors} trust=${s.trust} /></td></tr>`}
  </tbody>`;
}

export function Servers() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      get('/api/v1/overview')
        .then((d) => live && (setData(d), setError(null)))
        .catch((e) => live && setError(e));
    load();
    const t = setInterval(load, 5000);
    return () => ((live = false), clearInterval(t));
  }, []);
  return html`<section aria-labelledby="h-servers">
    <h1 id="h-servers">Servers</h1>
    <p class="hint">Every server this state directory knows: <code>serve</code> routes of this process and <code>wrap</code> processes on this machine. Select a trust score for its eight factors.</p>
    <${ErrorNote} error=${error} />
    ${data &&
    html`<div class="scroll" tabindex="0" role="region" aria-label="servers table"><table class="servers">
      <thead><tr>
        <th scope="col">Server</th><th scope="col">Transport</th><th scope="col">Era</th>
        <th scope="col">Pinned / drifted / held</th><th scope="col">Trust</th>
        <th scope="col">Last seen</th><th scope="col">Calls and denials, 24 h</th>
      </tr></thead>
      ${data.servers.map((s) => html`<${Row} key=${s.name} s=${s} />`)}
    </table></div>
    ${data.servers.length === 0 && html`<p>No server seen yet.</p>`}
    ${data.window_truncated && html`<p class="hint">The trail is large: the sparklines show its newest part.</p>`}`}
  </section>`;
}

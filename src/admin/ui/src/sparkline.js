import { html } from 'htm/preact';

// A 24-hour sparkline of calls (line) and denials (bars), ~40 lines of SVG instead of a chart
// library: two series of 24 integers need no axes, zoom or tooltips, and this keeps the
// bundle small and the CSP strict (no inline styles are generated).
export function Sparkline({ calls, denials, label }) {
  const w = 120;
  const h = 28;
  const n = calls.length || 1;
  const max = Math.max(1, ...calls, ...denials);
  const x = (i) => ((i + 0.5) * w) / n;
  const y = (v) => h - 2 - (v / max) * (h - 4);
  const points = calls.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const total = (a) => a.reduce((s, v) => s + v, 0);
  const text = `${label}: ${total(calls)} calls and ${total(denials)} denials in the last 24 hours`;
  return html`<svg class="spark" viewBox="0 0 ${w} ${h}" width=${w} height=${h} role="img" aria-label=${text}>
    <title>${text}</title>
    ${denials.map((v, i) =>
      v > 0
        ? html`<rect class="deny" x=${(x(i) - w / n / 2 + 0.5).toFixed(1)} y=${y(v).toFixed(1)}
            width=${(w / n - 1).toFixed(1)} height=${(h - 2 - y(v)).toFixed(1)} />`
        : null,
    )}
    <polyline class="calls" points=${points} />
  </svg>`;
}

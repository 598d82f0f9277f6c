// The dashboard shell: navigation (hash routes, so every page is a link and the back button
// works), the admin token form, and one polite live region for outcomes of actions.
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { token } from './api.js';
import { Alerts } from './pages/alerts.js';
import { Approvals } from './pages/approvals.js';
import { Audit } from './pages/audit.js';
import { Drift } from './pages/drift.js';
import { Servers } from './pages/servers.js';

const PAGES = [
  ['servers', 'Servers', Servers],
  ['drift', 'Drift and pins', Drift],
  ['approvals', 'Approvals', Approvals],
  ['audit', 'Audit', Audit],
  ['alerts', 'Alerts', Alerts],
];

const current = () => {
  const name = location.hash.replace(/^#\/?/, '');
  return PAGES.some(([p]) => p === name) ? name : 'servers';
};

function TokenForm({ onChange }) {
  const [value, setValue] = useState(token.get());
  const saved = token.get() !== '';
  return html`<form class="token" onSubmit=${(e) => (e.preventDefault(), token.set(value), onChange())}>
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" value=${value}
      placeholder=${saved ? 'saved for this tab' : 'needed to decide'} onInput=${(e) => setValue(e.currentTarget.value)} />
    <button type="submit">${saved ? 'Update' : 'Use token'}</button>
    ${saved && html`<button type="button" onClick=${() => (token.set(''), setValue(''), onChange())}>Forget</button>`}
  </form>`;
}

function App() {
  const [page, setPage] = useState(current());
  const [epoch, setEpoch] = useState(0);
  const [message, setMessage] = useState('');
  const main = useRef(null);
  useEffect(() => {
    const onHash = () => {
      setPage(current());
      main.current?.focus();
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    document.title = `${PAGES.find(([p]) => p === page)[1]} · mcp-warden`;
  }, [page]);
  const Page = PAGES.find(([p]) => p === page)[2];
  return html`<header>
      <p class="brand">mcp-warden</p>
      <nav aria-label="Dashboard pages"><ul>
        ${PAGES.map(
          ([p, label]) => html`<li><a href=${`#/${p}`} aria-current=${p === page ? 'page' : undefined}>${label}</a></li>`,
        )}
      </ul></nav>
      <${TokenForm} onChange=${() => setEpoch(epoch + 1)} />
    </header>
    <p class="status" role="status" aria-live="polite">${message}</p>
    <main id="main" tabindex="-1" ref=${main}>
      <${Page} key=${`${page}:${epoch}`} announce=${setMessage} />
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));

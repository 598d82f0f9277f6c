// Clicks through the dashboard in headless Chromium (playwright-core, the Debian chromium) and
// prints a JSON report on stdout; any failed expectation exits non-zero with the reason on
// stderr. Started by tests/dashboard.rs, which sets the scene (a held rug pull, a call waiting
// for approval) and checks afterwards, from the MCP side, that the clicks took effect.
//
// DASHBOARD_TEST = {admin, serve, token, bin, state, shots, peers, chromium}
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(process.env.DASHBOARD_TEST);
const require = createRequire(path.join(cfg.peers, '..', 'package.json'));
const { chromium } = require('playwright-core');
const sdk = async (sub) => import(pathToFileURL(require.resolve(`@modelcontextprotocol/sdk/${sub}`)).href);

const report = {};
const shot = (page, name) => page.screenshot({ path: path.join(cfg.shots, `${name}.png`), fullPage: true });
function expect(ok, what) {
  if (!ok) throw new Error(`expected: ${what}`);
}

// Real traffic to server-memory through `serve`, with the official TypeScript SDK client.
async function memoryTraffic() {
  const { Client } = await sdk('client/index.js');
  const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
  const client = new Client({ name: 'dashboard-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${cfg.serve}/mcp/memory`)));
  const { tools } = await client.listTools();
  expect(tools.some((t) => t.name === 'read_graph'), 'server-memory lists read_graph');
  await client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'warden', entityType: 'proxy', observations: ['guards MCP'] }] } });
  await client.callTool({ name: 'read_graph', arguments: {} });
  await client.callTool({ name: 'search_nodes', arguments: { query: 'warden' } });
  await client.close();
}

// `mcp-warden trust SERVER --json`: what the CLI says right now.
function cliTrust(server) {
  const out = execFileSync(cfg.bin, ['trust', server, '--json'], {
    env: { ...process.env, MCP_WARDEN_STATE: cfg.state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.toString());
}

async function uiTrust(page, server) {
  await page.reload();
  const row = page.locator(`tbody[data-server="${server}"]`);
  await row.waitFor();
  const button = row.locator('button[data-score]');
  const score = Number(await button.getAttribute('data-score'));
  await button.click();
  const factors = {};
  for (const tr of await row.locator('tr[data-factor]').all()) {
    const v = await tr.locator('td[data-value]').getAttribute('data-value');
    factors[await tr.getAttribute('data-factor')] = v === '' ? null : Number(v);
  }
  return { score, factors };
}

const same = (ui, cli) =>
  ui.score === cli.score &&
  cli.factors.length === 8 &&
  cli.factors.every((f) => ui.factors[f.name] === f.value);

async function serversPage(page) {
  // serve writes trust evidence in batches (every second): wait until the calls are in.
  // Until the first batch lands the CLI has no history for the server at all (exit 1).
  const okCalls = () => {
    try {
      return cliTrust('memory').factors.find((f) => f.name === 'success').evidence.calls_ok;
    } catch {
      return 0;
    }
  };
  for (const end = Date.now() + 10000; okCalls() < 3; ) {
    expect(Date.now() < end, 'the memory calls reach the trust store');
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.goto(`${cfg.admin}/#/servers`);
  // The figures move while the servers run (uptime, age): the page must match what the CLI
  // says just before or just after it was read.
  let ok = false;
  let last;
  for (let i = 0; i < 5 && !ok; i++) {
    const before = cliTrust('memory');
    const ui = await uiTrust(page, 'memory');
    const after = cliTrust('memory');
    ok = same(ui, before) || same(ui, after);
    last = { ui, before, after };
  }
  expect(ok, `the servers page shows the CLI's trust figures: ${JSON.stringify(last)}`);
  report.memory_trust = last.ui;
  const memory = page.locator('tbody[data-server="memory"]');
  expect((await memory.locator('td').nth(0).innerText()).includes('serve → stdio'), 'memory is a serve route');
  const evidence = await memory.locator('tr[data-factor="success"]').innerText();
  expect(/calls ok: [1-9]/.test(evidence), `success evidence counts the calls: ${evidence}`);
  const spark = await memory.locator('svg.spark').getAttribute('aria-label');
  expect(Number((/: (\d+) calls/.exec(spark) || [])[1]) >= 3, `the sparkline counts memory's calls: ${spark}`);
  const hostile = page.locator('tbody[data-server="hostile"]');
  expect((await hostile.innerText()).includes('wrap (stdio)'), 'the wrap process is listed');
  expect((await hostile.locator('[data-pins="held"]').innerText()) === '1', 'one held item for hostile');
  await page.locator('tbody[data-server="echo"]').waitFor();
  await shot(page, 'servers');
}

async function driftPage(page) {
  await page.goto(`${cfg.admin}/#/drift`);
  const item = page.locator('[data-pin-server="hostile"] [data-item="get_fact_of_the_day"]');
  await item.waitFor();
  const marks = await item.locator('mark.invis').allInnerTexts();
  expect(marks.some((m) => m.includes('U+200B')), `the zero-width space is made visible: ${marks}`);
  expect((await item.locator('.side').first().innerText()).includes('Returns the fact of the day.'), 'the pin is shown');
  await shot(page, 'drift');
  await item.getByRole('button', { name: 'Approve get_fact_of_the_day' }).click();
  await item.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: 'approved' }).waitFor();
}

async function approvalsPage(page) {
  await page.goto(`${cfg.admin}/#/approvals`);
  const card = page.locator('[data-tool="echo"]');
  await card.waitFor();
  expect((await card.innerText()).includes('hello from the held call'), 'the safe view shows the argument');
  await shot(page, 'approvals');
  await card.getByRole('button', { name: 'Approve echo' }).click();
  await card.waitFor({ state: 'detached' });
}

async function auditPage(page) {
  await page.goto(`${cfg.admin}/#/audit`);
  await page.locator('[data-stream-state="live"]').waitFor();
  const rows = page.locator('table.audit tbody tr');
  await rows.first().waitFor();
  const marker = `ping-${Date.now()}`;
  // Older initialize records of echo may be in the backlog: wait for one more than now.
  const row = page.locator('table.audit tbody tr').filter({ hasText: 'initialize' }).filter({ hasText: 'echo' });
  const before = await row.count();
  const t0 = performance.now();
  // A new record: a request to serve's echo route (initialize; its record names the route).
  const res = await fetch(`${cfg.serve}/mcp/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: marker, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: marker, version: '1' } } }),
  });
  expect(res.ok, `initialize through serve: ${res.status}`);
  await res.text();
  await page.waitForFunction(
    (n) =>
      [...document.querySelectorAll('table.audit tbody tr')].filter(
        (tr) => tr.textContent.includes('initialize') && tr.children[1]?.textContent === 'echo',
      ).length > n,
    before,
    { timeout: 5000, polling: 'raf' },
  );
  report.audit_latency_ms = Math.round(performance.now() - t0);
  report.audit_rows_before = before;
  expect(report.audit_latency_ms <= 1000, `the record shows within 1 s (${report.audit_latency_ms} ms)`);
  // Filters: by server, then by decision.
  await page.getByLabel('Server').selectOption('echo');
  const servers = await page.locator('table.audit tbody tr td:nth-child(2)').allInnerTexts();
  expect(servers.length > 0 && servers.every((s) => s === 'echo'), `server filter: ${servers}`);
  await page.getByLabel('Server').selectOption('');
  // A click opens the record.
  await row.first().getByRole('button').click();
  const dialog = page.getByRole('dialog');
  expect((await dialog.innerText()).includes('"method": "initialize"'), 'the record opens');
  // audit verify of each file, with the last checkpoint.
  const files = page.locator('tr[data-file]');
  await files.first().waitFor();
  const statuses = await files.locator('td:nth-child(3)').allInnerTexts();
  expect(statuses.every((s) => s === 'intact'), `every file verifies: ${statuses}`);
  const admin = page.locator('tr[data-file*="-admin-"]');
  expect((await admin.locator('td:nth-child(5)').innerText()).startsWith('seq '), 'the operator file has a checkpoint');
  await shot(page, 'audit');
  await dialog.getByRole('button', { name: 'Close' }).click();
}

async function alertsPage(page) {
  await page.goto(`${cfg.admin}/#/alerts`);
  const alert = page.locator('[data-alert]').filter({ hasText: 'hostile' }).first();
  await alert.waitFor();
  await shot(page, 'alerts');
  const id = await alert.getAttribute('data-alert');
  await alert.getByRole('button', { name: 'Acknowledge' }).click();
  await page.locator(`[data-alert="${id}"]`).waitFor({ state: 'detached' });
  await page.getByLabel('Show acknowledged').check();
  expect((await page.locator(`[data-alert="${id}"]`).innerText()).includes('Acknowledged'), 'shown as acknowledged');
}

async function keyboardAndNarrow(page) {
  await page.goto(`${cfg.admin}/#/servers`);
  // A fresh load: keyboard navigation starts at the top of the document.
  await page.reload();
  await page.locator('tbody[data-server]').first().waitFor();
  await page.keyboard.press('Tab');
  expect((await page.evaluate(() => document.activeElement.textContent)) === 'Skip to content', 'skip link first');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/drift$/);
  await page.getByRole('heading', { name: 'Drift and pins' }).waitFor();
  for (const field of ['Admin token']) {
    expect((await page.getByLabel(field).count()) === 1, `${field} has a label`);
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${cfg.admin}/#/servers`);
  await page.locator('tbody[data-server="memory"]').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `no sideways scrolling of the page on a narrow screen (${overflow} px)`);
  await shot(page, 'servers-narrow');
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const problems = [];
try {
  await memoryTraffic();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/401/.test(m.text()) && problems.push(`console: ${m.text()}`));
  // Nothing but the admin port is ever fetched (no external assets).
  page.on('request', (r) => !r.url().startsWith(cfg.admin) && problems.push(`external request: ${r.url()}`));
  await page.goto(cfg.admin);
  await page.getByLabel('Admin token').fill(cfg.token);
  await page.getByRole('button', { name: 'Use token' }).click();
  await serversPage(page);
  await driftPage(page);
  await approvalsPage(page);
  await auditPage(page);
  await alertsPage(page);
  await keyboardAndNarrow(page);
  expect(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
  process.stdout.write(JSON.stringify(report) + '\n');
} catch (e) {
  process.stderr.write(`${e.stack || e}\n${problems.join('\n')}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}

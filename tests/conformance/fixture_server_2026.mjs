#!/usr/bin/env node
// Dual-era conformance fixture for mcp-warden: one URL that serves both protocol eras, like a
// real server that upgraded.
//
// - 2026-07-28 requests (MCP-Protocol-Version 2026-07-28, or a body carrying the per-request
//   `_meta` envelope, `server/discover`, `subscriptions/listen`, or an unknown version) are served
//   by the official TypeScript SDK v2 (`@modelcontextprotocol/server` as pinned in tests/peers)
//   through `createMcpHandler`: stateless, `server/discover`, per-request `_meta`, MRTR
//   (`input_required`), caching hints, `subscriptions/listen`.
// - Everything else (2025-era, sessions) is passed to `fixture_server.mjs`, started as a child
//   process: the 2025-11-25 fixture the 0.1.16 suite already passes.
//
// The 2026 tool set differs from the 2025 one (the MRTR tools exist only for 2026 clients, and
// `test_input_required_result_capabilities` adapts to the declared client capabilities): exactly
// the situation in which the proxy's pins must key their baseline per variant (issue 17).
//
// Usage: node fixture_server_2026.mjs [--port N]
//   Prints one line `listening http://127.0.0.1:PORT/mcp` on stdout once ready.
//        node fixture_server_2026.mjs --stdio
//   Serves the same factory over stdio (SDK `serveStdio`, both eras): a stdio upstream for
//   `serve` (tests/http/modern_era.rs: `subscriptions/listen` through a pooled process).
//
// Written for this project from the 0.2.0-alpha.12 suite's scenario descriptions.

import http from 'node:http';
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const peersRequire = createRequire(path.join(here, '..', 'peers', 'package.json'));
const {
  McpServer,
  createMcpHandler,
  fromJsonSchema,
  inputRequired,
  ResourceTemplate,
} = await import(peersRequire.resolve('@modelcontextprotocol/server'));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const PORT = Number(opt('--port', '0'));
const STDIO = argv.includes('--stdio');
const HOST = '127.0.0.1';
const MODERN = '2026-07-28';
const LEGACY = new Set(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']);

// ------------------------------------------------------------------ the 2025 half (child)
const legacy = STDIO ? null : spawn(process.execPath, [path.join(here, 'fixture_server.mjs'), '--port', '0', '--prime-all-sse'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const legacyUrl = STDIO ? null : await new Promise((resolve, reject) => {
  let buf = '';
  legacy.stdout.on('data', (d) => {
    buf += d;
    const m = /listening (http:\/\/\S+\/mcp)/.exec(buf);
    if (m) resolve(new URL(m[1]));
  });
  legacy.on('exit', (c) => reject(new Error(`fixture_server.mjs exited (${c})`)));
});

// ------------------------------------------------------------------ fixture data
const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV_TINY = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==';
const text = (t) => ({ type: 'text', text: t });
const noArgs = fromJsonSchema({ type: 'object', properties: {} });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// requestState is HMAC-signed: a tampered state is refused (-32602) by the SDK's verify hook.
const KEY = Buffer.from('warden-conformance-fixture-key');
const mint = (payload) => {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${createHmac('sha256', KEY).update(body).digest('base64url')}`;
};
const verify = async (state) => {
  const [body, mac] = String(state).split('.');
  const want = createHmac('sha256', KEY).update(body ?? '').digest();
  const got = Buffer.from(mac ?? '', 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new Error('bad requestState');
  return JSON.parse(Buffer.from(body, 'base64url').toString());
};

const elicitName = (message = 'What is your name?') =>
  inputRequired.elicit({
    message,
    requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
  });
const accepted = (responses, key) => {
  const r = responses?.[key];
  return r && typeof r === 'object' && r.action === 'accept' && r.content && typeof r.content === 'object'
    ? r.content
    : undefined;
};
const sampledText = (r) => (r && typeof r === 'object' && r.content?.type === 'text' ? r.content.text : undefined);
const rootsOf = (r) => (r && typeof r === 'object' && Array.isArray(r.roots) ? r.roots : undefined);

// The client capabilities a 2026-07-28 request declares in its `_meta` envelope.
const declared = (ctx) => {
  const e = ctx.mcpReq.envelope ?? {};
  return e['io.modelcontextprotocol/clientCapabilities'] ?? e.clientCapabilities ?? {};
};


function factory() {
  const server = new McpServer(
    { name: 'warden-conformance-fixture-2026', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        completions: {},
        logging: {},
      },
      requestState: { verify },
    },
  );
  const tool = (name, description, cb, inputSchema = noArgs) =>
    server.registerTool(name, { description, inputSchema }, cb);

  tool('test_simple_text', 'Returns one text content item', async () => ({
    content: [text('This is a simple text response for testing.')],
  }));
  tool('test_image_content', 'Returns one PNG image content item', async () => ({
    content: [{ type: 'image', data: PNG_1X1, mimeType: 'image/png' }],
  }));
  tool('test_audio_content', 'Returns one WAV audio content item', async () => ({
    content: [{ type: 'audio', data: WAV_TINY, mimeType: 'audio/wav' }],
  }));
  tool('test_embedded_resource', 'Returns one embedded text resource', async () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
  }));
  tool('test_multiple_content_types', 'Returns text, image and resource content', async () => ({
    content: [
      text('Multiple content types test:'),
      { type: 'image', data: PNG_1X1, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
    ],
  }));
  tool('test_error_handling', 'Always returns a tool error (isError: true)', async () => ({
    isError: true,
    content: [text('This tool intentionally returns an error for testing')],
  }));
  tool('test_tool_with_progress', 'Sends progress 0/50/100 of 100 when given a progress token', async (_args, ctx) => {
    const token = ctx.mcpReq._meta?.progressToken;
    if (token !== undefined) {
      for (const progress of [0, 50, 100]) {
        await ctx.mcpReq.notify?.({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
        await sleep(20);
      }
    }
    return { content: [text(`progress reported`)] };
  });
  tool(
    'json_schema_2020_12_tool',
    'Tool with JSON Schema 2020-12 features',
    async () => ({ content: [text('ok')] }),
    fromJsonSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
      },
      properties: {
        name: { type: 'string' },
        address: { $ref: '#/$defs/address' },
        contactMethod: { type: 'string', enum: ['phone', 'email'] },
        phone: { type: 'string' },
        email: { type: 'string' },
      },
      allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
      if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
      then: { required: ['phone'] },
      else: { required: ['email'] },
      additionalProperties: false,
    }),
  );
  // Refused (-32021, HTTP 400) before the SDK sees it when sampling is not declared: the SDK
  // turns a handler's throw into an `isError` tool result (see missingCapability below).
  tool('test_missing_capability', 'Needs the sampling capability; refuses clients that did not declare it', async () => ({
    content: [text('sampling declared')],
  }));
  // Publishes tools/list_changed without changing the set: runs in parallel (and the proxy's
  // pins, which hold tools that appear after pinning) must see one deterministic tool list.
  tool('test_trigger_tool_change', 'Publishes notifications/tools/list_changed', async () => {
    if (handler) handler.notify.toolsChanged();
    else await server.sendToolListChanged?.();
    return { content: [text('tools/list_changed published')] };
  });

  // ---------------------------------------------------------------- MRTR (input_required)
  tool('test_input_required_result_elicitation', 'Asks for the user name (one elicitation round)', async (_a, ctx) => {
    const name = accepted(ctx.mcpReq.inputResponses, 'user_name')?.name;
    if (typeof name !== 'string') return inputRequired({ inputRequests: { user_name: elicitName() } });
    return { content: [text(`Hello, ${name}!`)] };
  });
  tool('test_input_required_result_sampling', 'Asks the client to sample one message', async (_a, ctx) => {
    const answer = sampledText(ctx.mcpReq.inputResponses?.capital_question);
    if (answer === undefined) {
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({
            messages: [{ role: 'user', content: text('What is the capital of France?') }],
            maxTokens: 100,
          }),
        },
      });
    }
    return { content: [text(`The model said: ${answer}`)] };
  });
  tool('test_input_required_result_list_roots', "Asks for the client's roots", async (_a, ctx) => {
    const roots = rootsOf(ctx.mcpReq.inputResponses?.client_roots);
    if (!roots) return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return { content: [text(`Roots: ${roots.map((r) => r.uri).join(', ') || '(none)'}`)] };
  });
  tool('test_input_required_result_request_state', 'Round-trips a signed requestState', async (_a, ctx) => {
    const state = ctx.mcpReq.requestState();
    const ok = accepted(ctx.mcpReq.inputResponses, 'confirm');
    if (!ok || state?.tool !== 'request_state') {
      return inputRequired({
        inputRequests: {
          confirm: inputRequired.elicit({
            message: 'Please confirm',
            requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          }),
        },
        requestState: mint({ tool: 'request_state' }),
      });
    }
    return { content: [text('state-ok: confirmed')] };
  });
  tool('test_input_required_result_multiple_inputs', 'Elicitation, sampling and roots in one round', async (_a, ctx) => {
    const r = ctx.mcpReq.inputResponses ?? {};
    const name = accepted(r, 'user_name')?.name;
    const greeting = sampledText(r.greeting);
    const roots = rootsOf(r.client_roots);
    if (typeof name !== 'string' || greeting === undefined || !roots || ctx.mcpReq.requestState()?.tool !== 'multiple') {
      return inputRequired({
        inputRequests: {
          user_name: elicitName(),
          greeting: inputRequired.createMessage({
            messages: [{ role: 'user', content: text('Generate a greeting') }],
            maxTokens: 50,
          }),
          client_roots: inputRequired.listRoots(),
        },
        requestState: mint({ tool: 'multiple' }),
      });
    }
    return { content: [text(`${greeting} ${name} (${roots.length} roots)`)] };
  });
  tool('test_input_required_result_multi_round', 'Two elicitation rounds with evolving state', async (_a, ctx) => {
    const state = ctx.mcpReq.requestState();
    const r = ctx.mcpReq.inputResponses ?? {};
    if (state?.round === 2 && typeof accepted(r, 'step2')?.color === 'string') {
      return { content: [text(`Hello ${state.name}, your favorite color is ${accepted(r, 'step2').color}.`)] };
    }
    const name = accepted(r, 'step1')?.name;
    if (state?.round === 1 && typeof name === 'string') {
      return inputRequired({
        inputRequests: {
          step2: inputRequired.elicit({
            message: 'Step 2: What is your favorite color?',
            requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
          }),
        },
        requestState: mint({ round: 2, name }),
      });
    }
    return inputRequired({ inputRequests: { step1: elicitName('Step 1: What is your name?') }, requestState: mint({ round: 1 }) });
  });
  tool('test_input_required_result_tampered_state', 'Hands out an HMAC-signed requestState', async (_a, ctx) => {
    if (ctx.mcpReq.requestState()?.tool === 'tampered' && accepted(ctx.mcpReq.inputResponses, 'user_name')) {
      return { content: [text('state verified')] };
    }
    return inputRequired({ inputRequests: { user_name: elicitName() }, requestState: mint({ tool: 'tampered' }) });
  });
  tool('test_input_required_result_capabilities', 'Asks only for what the client declared it can do', async (_a, ctx) => {
    const caps = declared(ctx);
    const r = ctx.mcpReq.inputResponses ?? {};
    if (Object.keys(r).length) return { content: [text('thanks')] };
    const inputRequests = {};
    if (caps.elicitation) inputRequests.user_name = elicitName();
    if (caps.sampling) {
      inputRequests.greeting = inputRequired.createMessage({
        messages: [{ role: 'user', content: text('Generate a greeting') }],
        maxTokens: 50,
      });
    }
    if (caps.roots) inputRequests.client_roots = inputRequired.listRoots();
    if (!Object.keys(inputRequests).length) return { content: [text('nothing to ask this client')] };
    return inputRequired({ inputRequests });
  });
  tool('test_logging_tool', 'Logs three messages (only to requests that set a log level)', async (_a, ctx) => {
    for (const n of [1, 2, 3]) await ctx.mcpReq.log?.('info', `log message ${n}`);
    return { content: [text('logged')] };
  });
  tool('test_streaming_elicitation', 'Asks for the user name in its answer stream (input_required)', async (_a, ctx) => {
    const name = accepted(ctx.mcpReq.inputResponses, 'user_name')?.name;
    if (typeof name !== 'string') return inputRequired({ inputRequests: { user_name: elicitName() } });
    return { content: [text(`Hello, ${name}!`)] };
  });
  tool(
    'test_custom_headers',
    'Echoes a region argument that is mirrored into the Mcp-Param-Region header',
    async ({ region }) => ({ content: [text(`region: ${region}`)] }),
    fromJsonSchema({ type: 'object', properties: { region: { type: 'string', 'x-mcp-header': 'Region' } }, required: ['region'] }),
  );

  // ---------------------------------------------------------------- resources
  server.registerResource('static-text', 'test://static-text', { description: 'A static text resource', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
  }));
  server.registerResource('static-binary', 'test://static-binary', { description: 'A static binary resource (PNG)', mimeType: 'image/png' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG_1X1 }],
  }));
  server.registerResource('watched-resource', 'test://watched-resource', { description: 'A resource that can be subscribed to', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content' }],
  }));
  server.registerResource(
    'template-data',
    new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'Data for an id (template parameter substitution)', mimeType: 'application/json' },
    async (uri, { id }) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }],
    }),
  );

  // ---------------------------------------------------------------- prompts
  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' }, async () => ({
    messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }],
  }));
  server.registerPrompt(
    'test_prompt_with_arguments',
    {
      description: 'A prompt with two required arguments',
      argsSchema: fromJsonSchema({ type: 'object', properties: { arg1: { type: 'string' }, arg2: { type: 'string' } }, required: ['arg1', 'arg2'] }),
    },
    async ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) }] }),
  );
  server.registerPrompt(
    'test_prompt_with_embedded_resource',
    {
      description: 'A prompt with an embedded resource',
      argsSchema: fromJsonSchema({ type: 'object', properties: { resourceUri: { type: 'string' } }, required: ['resourceUri'] }),
    },
    async ({ resourceUri }) => ({
      messages: [
        { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
        { role: 'user', content: text('Please process the embedded resource above.') },
      ],
    }),
  );
  server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG_1X1, mimeType: 'image/png' } },
      { role: 'user', content: text('Please analyze the image above.') },
    ],
  }));
  server.registerPrompt('test_input_required_result_prompt', { description: 'A prompt that first asks for context' }, async (ctx) => {
    const context = accepted(ctx.mcpReq.inputResponses, 'user_context')?.context;
    if (typeof context !== 'string') {
      return inputRequired({
        inputRequests: {
          user_context: inputRequired.elicit({
            message: 'What context should the prompt use?',
            requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] },
          }),
        },
      });
    }
    return { messages: [{ role: 'user', content: text(`Use this context: ${context}`) }] };
  });
  server.server.setRequestHandler('completion/complete', async () => ({
    completion: { values: ['paris', 'park', 'party'], total: 3, hasMore: false },
  }));
  return server;
}

if (STDIO) {
  const { serveStdio } = await import(peersRequire.resolve('@modelcontextprotocol/server/stdio'));
  serveStdio(factory);
}
const handler = STDIO ? null : createMcpHandler(factory, { legacy: 'reject' });

// ------------------------------------------------------------------ routing by era
const LOCAL = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
const hostOf = (h) => (h ?? '').replace(/:\d+$/, '').toLowerCase();
function rebinding(req) {
  if (!LOCAL.has(hostOf(req.headers.host))) return true;
  const o = req.headers.origin;
  if (o) {
    try {
      if (!LOCAL.has(new URL(o).hostname.toLowerCase())) return true;
    } catch {
      return true;
    }
  }
  return false;
}

function isModern(req, body) {
  const v = req.headers['mcp-protocol-version'];
  if (v !== undefined && !LEGACY.has(v)) return true; // 2026-07-28, or unknown: the SDK answers -32022
  if (req.method !== 'POST') return false;
  try {
    const m = JSON.parse(body.toString('utf8'));
    if (m?.method === 'server/discover' || m?.method === 'subscriptions/listen') return true;
    return m?.params?._meta?.['io.modelcontextprotocol/protocolVersion'] !== undefined;
  } catch {
    return false;
  }
}

// test_missing_capability without `sampling` in the request's declared capabilities:
// MissingRequiredClientCapabilityError, keyed by the missing capability.
function missingCapability(res, body) {
  let m;
  try {
    m = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  if (m?.method !== 'tools/call' || m.params?.name !== 'test_missing_capability') return false;
  if (m.params?._meta?.['io.modelcontextprotocol/clientCapabilities']?.sampling) return false;
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(JSON.stringify({
    jsonrpc: '2.0',
    id: m.id ?? null,
    error: { code: -32021, message: 'This tool needs the sampling capability', data: { requiredCapabilities: { sampling: {} } } },
  }));
  return true;
}

async function serveModern(req, res, body) {
  if (missingCapability(res, body)) return;
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const request = new Request(`http://${req.headers.host}${req.url}`, {
    method: req.method,
    headers,
    body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
    signal: ac.signal,
  });
  const resp = await handler.fetch(request);
  res.writeHead(resp.status, Object.fromEntries(resp.headers));
  if (!resp.body) return res.end();
  const reader = resp.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      res.write(value);
    }
  } catch {
    // client gone
  }
  res.end();
}

function serveLegacy(req, res, body) {
  const up = http.request(
    { host: legacyUrl.hostname, port: legacyUrl.port, path: req.url, method: req.method, headers: req.headers },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  res.on('close', () => up.destroy());
  up.end(body);
}

const httpServer = STDIO ? null : http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  if (rebinding(req) || !isModern(req, body)) return serveLegacy(req, res, body);
  try {
    await serveModern(req, res, body);
  } catch (e) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e));
  }
});
httpServer?.listen(PORT, HOST, () => {
  console.log(`listening http://${HOST}:${httpServer.address().port}/mcp`);
});
const stop = () => {
  legacy?.kill();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

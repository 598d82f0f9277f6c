#!/usr/bin/env node
// Conformance fixture server for mcp-warden.
//
// A streamable HTTP MCP server (official TypeScript SDK, @modelcontextprotocol/sdk as pinned in
// tests/peers) that offers every fixture the `@modelcontextprotocol/conformance` suite's
// `server --url` scenarios call: tools test_simple_text … test_reconnection, resources
// test://static-text, test://static-binary, test://template/{id}/data, test://watched-resource,
// prompts test_simple_prompt …, completion, logging, subscriptions, server->client sampling and
// elicitation, SSE priming/resumability (event store + retry), and DNS-rebinding protection
// (Host/Origin must name localhost, 127.0.0.1 or [::1]).
//
// Usage: node fixture_server.mjs [--port N] [--host 127.0.0.1] [--prime-all-sse] [--verbose]
//   Prints one line `listening http://127.0.0.1:PORT/mcp` on stdout once ready (port 0 = any free
//   port). Everything else goes to stderr, and only with --verbose.
//   --prime-all-sse: the SDK sends SSE priming events (id + retry, the basis of Last-Event-ID
//   resumption) only to requests whose MCP-Protocol-Version is >= 2025-11-25, but the suite's
//   server-sse-polling scenario labels its raw requests 2025-03-26, so by default that scenario
//   passes with two warnings and never tests resumption. With this flag, in-session requests
//   labelled older are treated as 2025-11-25, and the scenario checks priming, retry and resume.
//
// Written for this project from the suite's scenario descriptions; stateful (one session per
// initialize, Mcp-Session-Id), endpoint /mcp.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Resolve the SDK from tests/peers/node_modules (this file lives in tests/conformance/).
const here = path.dirname(fileURLToPath(import.meta.url));
const peersRequire = createRequire(path.join(here, '..', 'peers', 'package.json'));
const sdk = (p) => import(peersRequire.resolve(`@modelcontextprotocol/sdk/${p}`));

const { Server } = await sdk('server/index.js');
const { StreamableHTTPServerTransport } = await sdk('server/streamableHttp.js');
const types = await sdk('types.js');
const {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  ListPromptsRequestSchema,
  GetPromptRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  McpError,
  ErrorCode,
} = types;

// ------------------------------------------------------------------ arguments
const argv = process.argv.slice(2);
function opt(name, dflt) {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}
const PORT = Number(opt('--port', '0'));
const HOST = opt('--host', '127.0.0.1');
const VERBOSE = argv.includes('--verbose');
const PRIME_ALL = argv.includes('--prime-all-sse');
const log = (...a) => { if (VERBOSE) console.error('[fixture]', ...a); };

// ------------------------------------------------------------------ fixture data
// 1x1 PNG and a 44-byte-header WAV with 1 sample (both valid files).
const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV_TINY = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==';
const SCHEMA_2020_12 = 'https://json-schema.org/draft/2020-12/schema';
const noArgs = { type: 'object', properties: {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TOOLS = [
  { name: 'test_simple_text', description: 'Returns one text content item', inputSchema: noArgs },
  { name: 'test_image_content', description: 'Returns one PNG image content item', inputSchema: noArgs },
  { name: 'test_audio_content', description: 'Returns one WAV audio content item', inputSchema: noArgs },
  { name: 'test_embedded_resource', description: 'Returns one embedded text resource', inputSchema: noArgs },
  { name: 'test_multiple_content_types', description: 'Returns text, image and resource content', inputSchema: noArgs },
  { name: 'test_tool_with_logging', description: 'Sends three info log notifications while running', inputSchema: noArgs },
  { name: 'test_tool_with_progress', description: 'Sends progress 0/50/100 of 100 when given a progress token', inputSchema: noArgs },
  { name: 'test_error_handling', description: 'Always returns a tool error (isError: true)', inputSchema: noArgs },
  {
    name: 'test_sampling',
    description: 'Asks the client to sample an LLM message (sampling/createMessage)',
    inputSchema: {
      type: 'object',
      properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
      required: ['prompt'],
    },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the client for user input (elicitation/create)',
    inputSchema: {
      type: 'object',
      properties: { message: { type: 'string', description: 'The message to show the user' } },
      required: ['message'],
    },
  },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation with defaults on every primitive type (SEP-1034)', inputSchema: noArgs },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with the five enum schema variants (SEP-1330)', inputSchema: noArgs },
  { name: 'test_reconnection', description: 'Closes its SSE stream mid-call; the result arrives after the client resumes (SEP-1699)', inputSchema: noArgs },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: SCHEMA_2020_12,
      type: 'object',
      $defs: {
        address: {
          type: 'object',
          properties: { street: { type: 'string' }, city: { type: 'string' } },
        },
      },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

const RESOURCES = [
  { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
  { uri: 'test://static-binary', name: 'static-binary', description: 'A static binary resource (PNG)', mimeType: 'image/png' },
  { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource that can be subscribed to', mimeType: 'text/plain' },
];
const TEMPLATES = [
  {
    uriTemplate: 'test://template/{id}/data',
    name: 'template-data',
    description: 'Data for an id (template parameter substitution)',
    mimeType: 'application/json',
  },
];
const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt that embeds a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
  },
  { name: 'test_prompt_with_image', description: 'A prompt with image content' },
];

const text = (t) => ({ type: 'text', text: t });

// ------------------------------------------------------------------ event store (SEP-1699)
// In-memory, shared by all sessions; event ids sort in creation order within a stream.
const events = new Map(); // eventId -> { streamId, message }
let eventSeq = 0;
const eventStore = {
  async storeEvent(streamId, message) {
    const id = `${streamId}_${String(++eventSeq).padStart(12, '0')}`;
    events.set(id, { streamId, message });
    return id;
  },
  async getStreamIdForEventId(eventId) {
    return events.get(eventId)?.streamId;
  },
  async replayEventsAfter(lastEventId, { send }) {
    const ev = events.get(lastEventId);
    if (!ev) throw new Error(`unknown event id ${lastEventId}`);
    for (const [id, e] of events) {
      if (e.streamId === ev.streamId && id > lastEventId && e.message && Object.keys(e.message).length) {
        await send(id, e.message);
      }
    }
    return ev.streamId;
  },
};

// ------------------------------------------------------------------ one MCP server per session
const transports = new Map(); // sessionId -> transport

function makeServer() {
  const server = new Server(
    { name: 'mcp-warden-conformance-fixture', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set();

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const { name } = req.params;
    const args = req.params.arguments ?? {};
    switch (name) {
      case 'test_simple_text':
        return { content: [text('This is a simple text response for testing.')] };
      case 'test_image_content':
        return { content: [{ type: 'image', data: PNG_1X1, mimeType: 'image/png' }] };
      case 'test_audio_content':
        return { content: [{ type: 'audio', data: WAV_TINY, mimeType: 'audio/wav' }] };
      case 'test_embedded_resource':
        return {
          content: [{
            type: 'resource',
            resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' },
          }],
        };
      case 'test_multiple_content_types':
        return {
          content: [
            text('Multiple content types test:'),
            { type: 'image', data: PNG_1X1, mimeType: 'image/png' },
            {
              type: 'resource',
              resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) },
            },
          ],
        };
      case 'test_tool_with_logging': {
        const msgs = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
        for (let i = 0; i < msgs.length; i++) {
          if (i) await sleep(50);
          await extra.sendNotification({
            method: 'notifications/message',
            params: { level: 'info', logger: 'conformance-fixture', data: msgs[i] },
          });
        }
        return { content: [text('Tool with logging executed successfully')] };
      }
      case 'test_tool_with_progress': {
        const token = req.params._meta?.progressToken;
        for (const p of [0, 50, 100]) {
          if (p) await sleep(50);
          if (token !== undefined) {
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress: p, total: 100, message: `step ${p} of 100` },
            });
          }
        }
        return { content: [text(`Progress reported for token ${JSON.stringify(token ?? null)}`)] };
      }
      case 'test_error_handling':
        return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
      case 'test_sampling': {
        const r = await extra.sendRequest(
          {
            method: 'sampling/createMessage',
            params: {
              messages: [{ role: 'user', content: text(String(args.prompt ?? '')) }],
              maxTokens: 100,
            },
          },
          CreateMessageResultSchema,
        );
        const reply = Array.isArray(r.content) ? r.content.find((c) => c.type === 'text')?.text : r.content?.text;
        return { content: [text(`LLM response: ${reply ?? '(no text)'}`)] };
      }
      case 'test_elicitation':
        return elicit(extra, String(args.message ?? ''), {
          type: 'object',
          properties: {
            username: { type: 'string', description: "User's response" },
            email: { type: 'string', description: "User's email address" },
          },
          required: ['username', 'email'],
        }, 'User response');
      case 'test_elicitation_sep1034_defaults':
        return elicit(extra, 'Please review the fields (all have defaults)', {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'User name', default: 'John Doe' },
            age: { type: 'integer', description: 'User age', default: 30 },
            score: { type: 'number', description: 'User score', default: 95.5 },
            status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
            verified: { type: 'boolean', description: 'Verification status', default: true },
          },
        }, 'Elicitation completed');
      case 'test_elicitation_sep1330_enums':
        return elicit(extra, 'Please pick from each enum', {
          type: 'object',
          properties: {
            untitledSingle: { type: 'string', description: 'Untitled single-select', enum: ['option1', 'option2', 'option3'] },
            titledSingle: {
              type: 'string',
              description: 'Titled single-select',
              oneOf: [
                { const: 'value1', title: 'First Option' },
                { const: 'value2', title: 'Second Option' },
                { const: 'value3', title: 'Third Option' },
              ],
            },
            legacyEnum: {
              type: 'string',
              description: 'Legacy titled enum',
              enum: ['opt1', 'opt2', 'opt3'],
              enumNames: ['Option One', 'Option Two', 'Option Three'],
            },
            untitledMulti: {
              type: 'array',
              description: 'Untitled multi-select',
              items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
            },
            titledMulti: {
              type: 'array',
              description: 'Titled multi-select',
              items: {
                anyOf: [
                  { const: 'value1', title: 'First Choice' },
                  { const: 'value2', title: 'Second Choice' },
                  { const: 'value3', title: 'Third Choice' },
                ],
              },
            },
          },
        }, 'Elicitation completed');
      case 'test_reconnection': {
        // Close this request's SSE stream; the client resumes with GET + Last-Event-ID and gets
        // the result replayed from the event store.
        const t = extra.sessionId && transports.get(extra.sessionId);
        if (t && extra.requestId !== undefined) t.closeSSEStream(extra.requestId);
        await sleep(100);
        return { content: [text('Reconnection test completed successfully.')] };
      }
      case 'json_schema_2020_12_tool':
        return { content: [text(`json_schema_2020_12_tool called with ${JSON.stringify(args)}`)] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: TEMPLATES }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const { uri } = req.params;
    if (uri === 'test://static-text') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
    }
    if (uri === 'test://static-binary') {
      return { contents: [{ uri, mimeType: 'image/png', blob: PNG_1X1 }] };
    }
    if (uri === 'test://watched-resource') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content' }] };
    }
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) {
      const id = decodeURIComponent(m[1]);
      return {
        contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }],
      };
    }
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
  });
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const { name } = req.params;
    const args = req.params.arguments ?? {};
    switch (name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] };
      case 'test_prompt_with_arguments':
        return {
          messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${args.arg1 ?? ''}', arg2='${args.arg2 ?? ''}'`) }],
        };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'resource',
                resource: { uri: args.resourceUri ?? 'test://example-resource', mimeType: 'text/plain', text: 'Embedded resource content for testing.' },
              },
            },
            { role: 'user', content: text('Please process the embedded resource above.') },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: PNG_1X1, mimeType: 'image/png' } },
            { role: 'user', content: text('Please analyze the image above.') },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const value = String(req.params.argument?.value ?? '');
    const pool = ['paris', 'park', 'party', 'test', 'testValue1', 'testValue2'];
    const values = pool.filter((v) => v.startsWith(value));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

async function elicit(extra, message, requestedSchema, label) {
  const r = await extra.sendRequest({ method: 'elicitation/create', params: { message, requestedSchema } }, ElicitResultSchema);
  return { content: [text(`${label}: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
}

// ------------------------------------------------------------------ HTTP
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
function hostnameOf(hostHeader) {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}
// DNS-rebinding protection: Host must name a loopback host (any port); an Origin, when
// present, must too.
function rebindingError(req) {
  const host = req.headers.host;
  if (!host || !LOCAL_HOSTS.has(hostnameOf(host))) return `Invalid Host header: ${host ?? '(none)'}`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let ok = false;
    try {
      const u = new URL(origin);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && LOCAL_HOSTS.has(u.hostname.toLowerCase());
    } catch { /* not a URL */ }
    if (!ok) return `Invalid Origin header: ${origin}`;
  }
  return null;
}

function jsonError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const isInitialize = (body) =>
  Array.isArray(body) ? body.some((m) => m?.method === 'initialize') : body?.method === 'initialize';

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/mcp') return jsonError(res, 404, -32000, 'Not found (endpoint is /mcp)');
  const bad = rebindingError(req);
  if (bad) return jsonError(res, 403, -32000, bad);

  const sid = req.headers['mcp-session-id'];
  let body;
  if (req.method === 'POST') {
    const raw = await readBody(req);
    try {
      body = JSON.parse(raw);
    } catch {
      return jsonError(res, 400, -32700, 'Parse error');
    }
  }

  let transport = sid ? transports.get(sid) : undefined;
  if (sid && !transport) return jsonError(res, 404, -32001, 'Session not found');
  if (!transport) {
    if (req.method !== 'POST' || !isInitialize(body)) {
      return jsonError(res, 400, -32000, 'Bad Request: no valid session ID provided');
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore,
      retryInterval: 500,
      onsessioninitialized: (id) => {
        transports.set(id, transport);
        log('session', id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await makeServer().connect(transport);
  }
  if (PRIME_ALL && sid && req.headers['mcp-protocol-version'] < '2025-11-25') {
    // The suite's raw SSE-polling POST says 2025-03-26, for which SDK 1.32.2 sends no priming
    // event; claim 2025-11-25 so the resumability path (priming id, retry, Last-Event-ID replay)
    // is exercised.
    req.headers['mcp-protocol-version'] = '2025-11-25';
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() === 'mcp-protocol-version') req.rawHeaders[i + 1] = '2025-11-25';
    }
  }
  await transport.handleRequest(req, res, body);
}

const httpServer = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    log('error', e);
    if (!res.headersSent) jsonError(res, 500, -32603, 'Internal error');
    else res.end();
  });
});
httpServer.listen(PORT, HOST, () => {
  const { port } = httpServer.address();
  const h = HOST.includes(':') ? `[${HOST}]` : HOST;
  process.stdout.write(`listening http://${h}:${port}/mcp\n`);
});
const stop = () => {
  for (const t of transports.values()) t.close().catch(() => {});
  httpServer.close();
  httpServer.closeAllConnections?.();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

#!/usr/bin/env node
// Real-peer MCP client built on the official TypeScript SDK (@modelcontextprotocol/sdk, pinned
// in package.json). Drives a scripted scenario against a stdio server and prints ONE normalized
// JSON transcript on stdout, so that the same scenario run directly and through a proxy
// (mcp-warden wrap -- ...) must print byte-identical output.
//
//   node ts_client.mjs SCENARIO -- CMD [ARGS...]
//   node ts_client.mjs SCENARIO --url URL        (Streamable HTTP, e.g. behind mcp-warden serve)
//   SCENARIO: everything | filesystem | memory
//
// Everything except the transcript goes to stderr. Exit status: 0 ok, 1 a step failed
// unexpectedly (the partial transcript is still printed, with "failed" set), 2 usage error.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

const SCENARIOS = ["everything", "filesystem", "memory"];
const log = (...a) => console.error("[ts_client]", ...a);

// ---------------------------------------------------------------- CLI
const argv = process.argv.slice(2);
const dd = argv.indexOf("--");
const url = argv[1] === "--url" && argv.length === 3 ? argv[2] : null;
if (!SCENARIOS.includes(argv[0]) || (!url && (argv.length < 3 || dd !== 1 || dd === argv.length - 1))) {
  console.error(`usage: node ts_client.mjs {${SCENARIOS.join("|")}} (-- CMD [ARGS...] | --url URL)`);
  process.exit(2);
}
const scenario = argv[0];
const [command, ...args] = url ? [null] : argv.slice(dd + 1);

// ---------------------------------------------------------------- normalization
// Replacements applied to every string in the transcript, longest first.
const replacements = [];
function addReplacement(p, placeholder) {
  if (!p || p === "/") return;
  for (const v of new Set([p, safeRealpath(p)])) {
    if (v && v !== "/") replacements.push([v, placeholder]);
  }
  replacements.sort((a, b) => b[0].length - a[0].length);
}
function safeRealpath(p) {
  try { return fs.realpathSync(p); } catch { return p; }
}
const PEERS_DIR = path.dirname(fileURLToPath(import.meta.url));
const TMP_RE = new RegExp(`${escapeRe(os.tmpdir())}/[^\\s"'\`,;:)\\]}]+`, "g");
function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

function normString(s) {
  for (const [from, to] of replacements) s = s.split(from).join(to);
  return s
    .replace(TMP_RE, "<TMP>")
    .replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\b/g, "<TIMESTAMP>")
    .replace(/\b\d{1,2}:\d{2}:\d{2}(\s?[AP]M)?\b/g, "<TIME>")
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, "<UUID>");
}
const VOLATILE_KEYS = new Set(["timestamp", "requestId", "progressToken", "taskId", "createdAt", "lastUpdatedAt", "sessionId"]);
const LONG = 1500;
function norm(v) {
  if (typeof v === "string") {
    const s = normString(v);
    if (s.length <= LONG) return s;
    // Long payloads: keep them comparable but keep the transcript readable.
    return { sha256: createHash("sha256").update(s).digest("hex"), length: s.length, head: s.slice(0, 200) };
  }
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) {
      if (VOLATILE_KEYS.has(k)) { out[k] = "<VOLATILE>"; continue; }
      out[k] = norm(v[k]);
    }
    return out;
  }
  return v;
}
function errInfo(e) {
  if (e && typeof e === "object") {
    const o = { error: true };
    if (e.code !== undefined) o.code = e.code;
    o.message = String(e.message ?? e);
    return o;
  }
  return { error: true, message: String(e) };
}

// ---------------------------------------------------------------- client + tap
const transcript = { client: "typescript-sdk@1.32.2", scenario, steps: [] };
const serverRequests = new Set();   // methods of server->client requests seen
const notifications = new Set();    // methods of server->client notifications seen
const progressSeen = [];            // raw progress notifications params
let initializeRaw = null;

const env = { ...getDefaultEnvironment() };
// Pass through variables the proxy under test or the servers may need.
for (const [k, v] of Object.entries(process.env)) {
  if (/^(MCP_WARDEN|WARDEN|RUST_)/.test(k) || k === "NODE_OPTIONS") env[k] = v;
}
let memoryDir = null;
if (scenario === "memory") {
  // server-memory persists to MEMORY_FILE_PATH; always start from an empty graph.
  memoryDir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-peers-memory-"));
  env.MEMORY_FILE_PATH = path.join(memoryDir, "memory.jsonl");
  addReplacement(memoryDir, "<MEMDIR>");
}
// Any absolute directory passed to the server (e.g. the filesystem root) becomes <ROOT>.
let rootDir = null;
for (const a of args) {
  if (path.isAbsolute(a) && fs.existsSync(a) && fs.statSync(a).isDirectory()) rootDir = a;
}
if (rootDir) addReplacement(rootDir, "<ROOT>");
addReplacement(PEERS_DIR, "<PEERS>");
addReplacement(process.cwd(), "<CWD>");

const transport = url
  ? new StreamableHTTPClientTransport(new URL(url))
  : new StdioClientTransport({ command, args, env, stderr: "inherit" });
// Tap every message the server sends, without altering delivery.
let inner;
Object.defineProperty(transport, "onmessage", {
  configurable: true,
  get() { return inner; },
  set(fn) {
    inner = fn && ((msg, extra) => {
      try {
        if (msg.method && msg.id !== undefined) serverRequests.add(msg.method);
        else if (msg.method) {
          notifications.add(msg.method);
          if (msg.method === "notifications/progress") progressSeen.push(msg.params);
        } else if (msg.result && msg.result.protocolVersion && !initializeRaw) initializeRaw = msg.result;
      } catch { /* tap must never break delivery */ }
      return fn(msg, extra);
    });
  },
});

// Remember the progressToken of the last request that asked for progress.
let lastProgressTokenSent;
let cancelNotificationsSent = 0;
const origSend = transport.send.bind(transport);
transport.send = (msg, opts) => {
  const tok = msg?.params?._meta?.progressToken;
  if (msg?.method && tok !== undefined) lastProgressTokenSent = tok;
  if (msg?.method === "notifications/cancelled") cancelNotificationsSent += 1;
  return origSend(msg, opts);
};

const withServerFeatures = scenario === "everything";
const client = new Client(
  { name: "mcp-warden-peer-ts", version: "1.0.0" },
  {
    capabilities: withServerFeatures
      ? { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } }
      : {},
  },
);
// Per-request timeout (SDK default is 60 s); keeps a wedged intermediary from stalling CI.
const REQ_TIMEOUT_MS = Number(process.env.PEERS_REQUEST_TIMEOUT_MS || 20000);
for (const m of ["ping", "listTools", "listResources", "listResourceTemplates", "readResource", "listPrompts", "getPrompt", "complete", "setLoggingLevel"]) {
  const orig = client[m].bind(client);
  client[m] = (params, opts) => m === "ping" ? orig({ timeout: REQ_TIMEOUT_MS, ...(params || {}) }) : orig(params, { timeout: REQ_TIMEOUT_MS, ...(opts || {}) });
}
{
  const origCall = client.callTool.bind(client);
  client.callTool = (params, schema, opts) => origCall(params, schema, { timeout: REQ_TIMEOUT_MS, ...(opts || {}) });
}
client.onerror = (e) => log("client onerror:", e?.message ?? e);

const SAMPLING_REPLY = "Canned sampling reply from the mcp-warden TS harness.";
const ELICIT_CONTENT = { name: "Harness User", check: true, email: "harness@example.com", integer: 7 };
const ROOTS = [{ uri: "file:///harness/workspace", name: "harness-workspace" }];
const serverAsked = { sampling: [], elicitation: [], roots: 0 };
if (withServerFeatures) {
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    serverAsked.sampling.push(req.params);
    return { role: "assistant", content: { type: "text", text: SAMPLING_REPLY }, model: "harness-canned-model", stopReason: "endTurn" };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    serverAsked.elicitation.push({ message: req.params.message, requiredFields: req.params.requestedSchema?.required ?? [] });
    return { action: "accept", content: ELICIT_CONTENT };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    serverAsked.roots += 1;
    return { roots: ROOTS };
  });
}

// ---------------------------------------------------------------- step runner
let failed = false;
async function step(name, request, fn, { expectError = false } = {}) {
  const t0 = Date.now();
  let result;
  try {
    result = await fn();
  } catch (e) {
    result = errInfo(e);
    if (!expectError) {
      failed = true;
      log(`step ${name} FAILED:`, e?.stack ?? e);
    }
  }
  log(`step ${name} (${Date.now() - t0} ms)`);
  transcript.steps.push({ step: name, request: norm(request), result: norm(result) });
  if (failed) throw new Error(`step ${name} failed`);
  return result;
}
const tool = (name, argsObj, opts) =>
  step(`tools/call ${name}`, { method: "tools/call", name, arguments: argsObj }, () => client.callTool({ name, arguments: argsObj }, undefined, opts));

// ---------------------------------------------------------------- scenarios
async function initStep() {
  await step("initialize", { method: "initialize", capabilities: client._options?.capabilities ?? {} }, async () => {
    await client.connect(transport);
    const r = initializeRaw ?? {};
    return {
      protocolVersion: r.protocolVersion,
      serverInfo: client.getServerVersion(),
      capabilities: client.getServerCapabilities(),
      instructions: client.getInstructions() ?? null,
    };
  });
}
const toolNames = (r) => r.tools.map((t) => t.name).sort();

async function everything() {
  await initStep();
  await step("ping", { method: "ping" }, () => client.ping());
  await step("logging/setLevel", { method: "logging/setLevel", level: "error" }, () => client.setLoggingLevel("error"));
  await step("tools/list", { method: "tools/list" }, async () => {
    const r = await client.listTools();
    return { names: toolNames(r), tools: r.tools };
  });
  await tool("echo", { message: "hello from the mcp-warden harness ✓ \"quotes\" \\ back\\slash" });
  await tool("get-sum", { a: 40, b: 2 });
  await tool("get-structured-content", { location: "Chicago" });
  await tool("get-annotated-message", { messageType: "success", includeImage: false });
  await tool("get-tiny-image", {});
  await tool("get-resource-links", { count: 3 });
  await tool("get-resource-reference", { resourceType: "Text", resourceId: 2 });

  // progress: server emits notifications/progress carrying our progressToken
  await step("tools/call trigger-long-running-operation (progress)",
    { method: "tools/call", name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 }, progress: true },
    async () => {
      const got = [];
      const before = progressSeen.length;
      const r = await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 } },
        undefined,
        { onprogress: (p) => got.push({ progress: p.progress, total: p.total }) },
      );
      // The SDK dispatches notifications on a microtask but responses synchronously, so how many
      // reach onprogress depends on how the bytes were chunked: only its ">= 1" is stable. The
      // wire tap sees every notification in order, so the exact list comes from there.
      const raw = progressSeen.slice(before);
      return {
        result: r,
        onprogressCalledAtLeastOnce: got.length >= 1,
        progressNotificationsOnWire: raw.map((p) => ({ progress: p.progress, total: p.total })),
        progressTokenSentWithRequest: lastProgressTokenSent !== undefined,
        everyNotificationCarriedOurProgressToken: raw.length >= 1 && raw.every((p) => p.progressToken === lastProgressTokenSent),
      };
    });

  // cancellation: abort a long call after its first progress notification, then prove the
  // session still works with a ping.
  await step("tools/call trigger-long-running-operation (cancelled)",
    { method: "tools/call", name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 }, abortAfterFirstProgress: true },
    async () => {
      const ac = new AbortController();
      const sentBefore = cancelNotificationsSent;
      let progressBeforeAbort = 0;
      try {
        await client.callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
          undefined,
          {
            signal: ac.signal,
            onprogress: () => { progressBeforeAbort += 1; if (progressBeforeAbort === 1) ac.abort("cancelled-by-harness"); },
          },
        );
        return { cancelled: false };
      } catch (e) {
        return {
          cancelled: ac.signal.aborted,
          sawProgressBeforeCancel: progressBeforeAbort >= 1,
          cancelledNotificationSent: cancelNotificationsSent > sentBefore,
          error: errInfo(e),
        };
      }
    });
  await step("ping (after cancel)", { method: "ping" }, () => client.ping());

  await step("resources/list", { method: "resources/list" }, () => client.listResources());
  await step("resources/templates/list", { method: "resources/templates/list" }, () => client.listResourceTemplates());
  await step("resources/read static", { method: "resources/read", uri: "demo://resource/static/document/features.md" },
    () => client.readResource({ uri: "demo://resource/static/document/features.md" }));
  await step("resources/read dynamic", { method: "resources/read", uri: "demo://resource/dynamic/text/2" },
    () => client.readResource({ uri: "demo://resource/dynamic/text/2" }));
  await step("prompts/list", { method: "prompts/list" }, () => client.listPrompts());
  await step("prompts/get simple-prompt", { method: "prompts/get", name: "simple-prompt" },
    () => client.getPrompt({ name: "simple-prompt" }));
  await step("prompts/get args-prompt", { method: "prompts/get", name: "args-prompt", arguments: { city: "Lisbon", state: "Lisboa" } },
    () => client.getPrompt({ name: "args-prompt", arguments: { city: "Lisbon", state: "Lisboa" } }));
  await step("completion/complete", { method: "completion/complete", prompt: "completable-prompt", argument: "department", value: "E" },
    () => client.complete({ ref: { type: "ref/prompt", name: "completable-prompt" }, argument: { name: "department", value: "E" } }));

  // server -> client requests relayed through the proxy
  await step("tools/call trigger-sampling-request", { method: "tools/call", name: "trigger-sampling-request", arguments: { prompt: "Say hi", maxTokens: 20 } },
    async () => {
      const r = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "Say hi", maxTokens: 20 } });
      return { result: r, samplingRequestsReceived: serverAsked.sampling.length, lastSamplingRequest: serverAsked.sampling.at(-1) ?? null, cannedReplyEchoed: JSON.stringify(r).includes(SAMPLING_REPLY) };
    });
  await step("tools/call trigger-elicitation-request", { method: "tools/call", name: "trigger-elicitation-request", arguments: {} },
    async () => {
      const r = await client.callTool({ name: "trigger-elicitation-request", arguments: {} });
      return { result: r, elicitationRequestsReceived: serverAsked.elicitation.length, lastElicitation: serverAsked.elicitation.at(-1) ?? null, acceptedNameEchoed: JSON.stringify(r).includes(ELICIT_CONTENT.name) };
    });
  await step("tools/call get-roots-list", { method: "tools/call", name: "get-roots-list", arguments: {} },
    async () => {
      const r = await client.callTool({ name: "get-roots-list", arguments: {} });
      return { result: r, rootsListAnswered: serverAsked.roots >= 1, rootUriEchoed: JSON.stringify(r).includes(ROOTS[0].uri) };
    });
  await step("tools/call no-such-tool", { method: "tools/call", name: "no-such-tool" },
    () => client.callTool({ name: "no-such-tool", arguments: {} }), { expectError: true });
  await step("ping (final)", { method: "ping" }, () => client.ping());
}

async function filesystem() {
  if (!rootDir) throw new Error("filesystem scenario: pass the allowed root directory (absolute, existing) as a server argument");
  const f = (...p) => path.join(rootDir, ...p);
  await initStep();
  await step("tools/list", { method: "tools/list" }, async () => {
    const r = await client.listTools();
    return { names: toolNames(r), tools: r.tools };
  });
  await tool("list_allowed_directories", {});
  await tool("write_file", { path: f("hello.txt"), content: "hello from the mcp-warden harness\nline two ✓\n" });
  await tool("read_text_file", { path: f("hello.txt") });
  await tool("create_directory", { path: f("sub") });
  await tool("write_file", { path: f("sub", "nested.md"), content: "# nested\n" });
  await tool("edit_file", { path: f("hello.txt"), edits: [{ oldText: "line two", newText: "line 2" }], dryRun: false });
  await tool("read_text_file", { path: f("hello.txt") });
  await tool("list_directory", { path: rootDir });
  await tool("directory_tree", { path: rootDir });
  await tool("search_files", { path: rootDir, pattern: "**/*.md" });
  // Outside the allowed root: the server must refuse (tool error result or JSON-RPC error).
  await step("tools/call read_text_file (outside root)", { method: "tools/call", name: "read_text_file", path: "/etc/hostname" },
    () => client.callTool({ name: "read_text_file", arguments: { path: "/etc/hostname" } }), { expectError: true });
  await step("tools/call read_text_file (traversal)", { method: "tools/call", name: "read_text_file", path: "<ROOT>/../outside.txt" },
    () => client.callTool({ name: "read_text_file", arguments: { path: f("..", "outside.txt") } }), { expectError: true });
  await step("ping", { method: "ping" }, () => client.ping());
}

async function memory() {
  await initStep();
  await step("tools/list", { method: "tools/list" }, async () => {
    const r = await client.listTools();
    return { names: toolNames(r), tools: r.tools };
  });
  await tool("create_entities", { entities: [
    { name: "Warden", entityType: "proxy", observations: ["written in Rust", "relays stdio"] },
    { name: "Everything", entityType: "server", observations: ["reference MCP server"] },
  ] });
  await tool("create_relations", { relations: [{ from: "Warden", to: "Everything", relationType: "protects" }] });
  await tool("add_observations", { observations: [{ entityName: "Everything", contents: ["speaks stdio"] }] });
  await tool("read_graph", {});
  await tool("search_nodes", { query: "stdio" });
  await tool("open_nodes", { names: ["Warden"] });
  await tool("delete_observations", { deletions: [{ entityName: "Warden", observations: ["relays stdio"] }] });
  await tool("delete_relations", { relations: [{ from: "Warden", to: "Everything", relationType: "protects" }] });
  await tool("delete_entities", { entityNames: ["Warden", "Everything"] });
  await tool("read_graph", {});
}

// ---------------------------------------------------------------- main
const t0 = Date.now();
let code = 0;
// Watchdog: a hung proxy must not hang the test suite. Emit what we have and fail.
const WATCHDOG_S = Number(process.env.PEERS_WATCHDOG_S || 60);
const watchdog = setTimeout(() => {
  log(`watchdog: scenario ${scenario} still running after ${WATCHDOG_S}s, giving up`);
  transcript.failed = true;
  transcript.timedOut = true;
  try { transport.close(); } catch { /* ignore */ }
  if (memoryDir) fs.rmSync(memoryDir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(transcript, null, 2) + "\n", () => process.exit(1));
}, WATCHDOG_S * 1000);
try {
  await { everything, filesystem, memory }[scenario]();
} catch (e) {
  failed = true;
  log("scenario aborted:", e?.message ?? e);
}
clearTimeout(watchdog);
try { await client.close(); } catch (e) { log("close:", e?.message ?? e); }
if (memoryDir) fs.rmSync(memoryDir, { recursive: true, force: true });
// Only methods whose arrival is deterministic for the scenario; log/list_changed noise is
// reported on stderr only.
transcript.serverRequestMethods = [...serverRequests].sort();
transcript.sawProgressNotifications = notifications.has("notifications/progress");
log("notifications seen:", [...notifications].sort().join(", ") || "(none)");
if (failed) { transcript.failed = true; code = 1; }
log(`scenario ${scenario} ${failed ? "FAILED" : "ok"} in ${Date.now() - t0} ms`);
process.stdout.write(JSON.stringify(transcript, null, 2) + "\n", () => process.exit(code));

#!/usr/bin/env node
// Approval through the client, driven by the official TypeScript SDK client.
//
//   node tests/peers/ts_approval.mjs MODE PATH CONTENT -- CMD [ARGS...]
//   node tests/peers/ts_approval.mjs MODE PATH CONTENT -- URL
//   MODE: accept | decline | cancel (an elicitation handler answering so), none (no elicitation)
//
// Starts CMD (`mcp-warden wrap ... -- node server-filesystem ROOT`) over stdio, or connects to
// URL (`mcp-warden serve`, streamable HTTP) when the command is an http:// URL, calls
// `write_file {path, content}` and prints ONE JSON line on stdout:
//   {"asked": [messages of elicitations received], "result": {...} | null, "error": {...} | null}
// A JSON-RPC error from the call is reported in "error" (code, message, data). Exit 0 ran, 2 usage.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const argv = process.argv.slice(2);
const [mode, file, content, dashes, command, ...args] = argv;
if (!["accept", "decline", "cancel", "none"].includes(mode) || dashes !== "--" || !command) {
  process.stderr.write("usage: ts_approval.mjs accept|decline|cancel|none PATH CONTENT -- CMD [ARGS...]\n");
  process.exit(2);
}
const env = { ...getDefaultEnvironment() };
for (const [k, v] of Object.entries(process.env)) if (/^(MCP_WARDEN|RUST_)/.test(k)) env[k] = v;
const transport = /^https?:\/\//.test(command)
  ? new StreamableHTTPClientTransport(new URL(command))
  : new StdioClientTransport({ command, args, env, stderr: "inherit" });
const client = new Client(
  { name: "mcp-warden-approval-ts", version: "1.0.0" },
  { capabilities: mode === "none" ? {} : { elicitation: { form: {} } } },
);
const asked = [];
if (mode !== "none") {
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    asked.push(req.params.message);
    return mode === "accept" ? { action: "accept", content: { approve: true } } : { action: mode };
  });
}
const out = { asked, result: null, error: null };
const timeout = Number(process.env.PEERS_REQUEST_TIMEOUT_MS || 30000);
await client.connect(transport);
await client.listTools();
try {
  out.result = await client.callTool({ name: "write_file", arguments: { path: file, content } }, undefined, { timeout });
} catch (e) {
  out.error = { code: e.code, message: e.message, data: e.data ?? null };
}
process.stdout.write(JSON.stringify(out) + "\n");
await client.close();
process.exit(0);

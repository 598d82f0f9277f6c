// The official TypeScript SDK's SSEClientTransport (HTTP+SSE, 2024-11-05) against URL:
// initialize, tools/list, tools/call echo. Prints one JSON line per result.
//     node legacy_sse_client.mjs URL
import { Client } from "../peers/node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js";
import { SSEClientTransport } from "../peers/node_modules/@modelcontextprotocol/sdk/dist/esm/client/sse.js";

const client = new Client({ name: "legacy-sse-test", version: "1" });
await client.connect(new SSEClientTransport(new URL(process.argv[2])));
console.log(JSON.stringify({ server: client.getServerVersion() }));
console.log(JSON.stringify(await client.listTools()));
console.log(JSON.stringify(await client.callTool({ name: "echo", arguments: { text: "hi legacy" } })));
await client.close();

#!/usr/bin/env python3
"""A tiny Streamable HTTP MCP upstream for tests: answers every JSON-RPC request with an empty
result (initialize with a session id of its own), 202 for notifications, and appends each
request's method, path and headers as one JSON line to RECORD_FILE, so a test can see exactly
what the proxy passed on.

    python3 echo_upstream.py RECORD_FILE      # prints the port it listens on, then serves
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD = sys.argv[1]
UPSTREAM_SESSION = "upstream-secret-session-id"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, body):
        with open(RECORD, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body}) + "\n")

    def reply(self, status, body=b"", extra=()):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.record(raw.decode("utf-8", "replace"))
        msg = json.loads(raw)
        if "id" not in msg or "method" not in msg:
            return self.reply(202)
        if msg["method"] == "initialize":
            result = {"protocolVersion": msg["params"].get("protocolVersion", "2025-11-25"),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "echo-http", "version": "1"}}
            body = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()
            return self.reply(200, body, [("Mcp-Session-Id", UPSTREAM_SESSION)])
        if msg["method"] == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        else:
            result = {"echo": msg["method"]}
        self.reply(200, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode())

    def do_GET(self):
        self.record("")
        self.reply(405)

    def do_DELETE(self):
        self.record("")
        self.reply(200)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()

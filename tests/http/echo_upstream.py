#!/usr/bin/env python3
"""A tiny Streamable HTTP MCP upstream for tests: answers every JSON-RPC request with an empty
result (initialize with a session id of its own), 202 for notifications, and appends each
request's method, path, headers and the proxy's TCP port ("peer": how many connections it
used) as one JSON line to RECORD_FILE, so a test can see exactly what the proxy passed on.

    python3 echo_upstream.py RECORD_FILE [options]   # prints the port it listens on, then serves

Options (all optional; without them the behaviour above is unchanged):
    --tools a,b          tools/list offers these tool names (default: echo)
    --reply-status N     answer every request with status N and an empty body (still recorded),
    --reply-header 'K: V'  with this header (repeatable): e.g. a 401 with a WWW-Authenticate
                         that points OAuth discovery somewhere (corpus AUTH-02)
    --sse-get            GET with Accept: text/event-stream opens an event stream that stays
                         open (a comment every 0.5 s) until the client goes away

A JSON array (a 2025-03-26 batch) is answered with an array of the same echo results.

A tools/call whose arguments carry "reply_status" is answered with that status, a body of the
kind "reply_kind" names ("result": a JSON-RPC result for the call, "error_null": a JSON-RPC error
with id null, "html": an HTML page; the default is plain text) and "reply_text" inside it, where
"{aws_key}" becomes an AWS access key id (the client could not send one: the proxy refuses it in
arguments): an upstream's error answers, for the tests that check what of them reaches the client.
"""
import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("record")
ap.add_argument("--tools", default="echo")
ap.add_argument("--reply-status", type=int)
ap.add_argument("--reply-header", action="append", default=[])
ap.add_argument("--sse-get", action="store_true")
ARGS = ap.parse_args()
RECORD = ARGS.record
UPSTREAM_SESSION = "upstream-secret-session-id"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, body):
        with open(RECORD, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "peer": self.client_address[1],
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body}) + "\n")

    def reply(self, status, body=b"", extra=(), ctype="application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fixed_reply(self):
        """--reply-status: the same answer to everything."""
        if ARGS.reply_status is None:
            return False
        extra = [tuple(h.split(":", 1)) for h in ARGS.reply_header]
        self.reply(ARGS.reply_status, b"", [(k.strip(), v.strip()) for k, v in extra])
        return True

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.record(raw.decode("utf-8", "replace"))
        if self.fixed_reply():
            return
        msg = json.loads(raw)
        if isinstance(msg, list):
            # A 2025-03-26 batch: the requests' answers as one array (202 when none).
            answers = [{"jsonrpc": "2.0", "id": m["id"], "result": {"echo": m["method"]}}
                       for m in msg if "id" in m and "method" in m]
            return self.reply(200, json.dumps(answers).encode()) if answers else self.reply(202)
        if "id" not in msg or "method" not in msg:
            return self.reply(202)
        if msg["method"] == "initialize":
            result = {"protocolVersion": msg["params"].get("protocolVersion", "2025-11-25"),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "echo-http", "version": "1"}}
            body = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()
            return self.reply(200, body, [("Mcp-Session-Id", UPSTREAM_SESSION)])
        args = (msg.get("params") or {}).get("arguments") or {}
        if msg["method"] == "tools/call" and "reply_status" in args:
            return self.scripted(msg["id"], args)
        if msg["method"] == "tools/list":
            tools = [{"name": t, "inputSchema": {"type": "object"}} for t in ARGS.tools.split(",")]
            result = {"tools": tools}
        else:
            result = {"echo": msg["method"]}
        self.reply(200, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode())

    def scripted(self, id_, args):
        text, kind = args.get("reply_text", ""), args.get("reply_kind", "text")
        text = text.replace("{aws_key}", "AKIA" + "IOSFODNN7EXAMPLE")
        if kind == "result":
            content = [{"type": "text", "text": text}]
            body = {"jsonrpc": "2.0", "id": id_, "result": {"content": content}}
            out, ctype = json.dumps(body).encode(), "application/json"
        elif kind == "error_null":
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": text}}
            out, ctype = json.dumps(body).encode(), "application/json"
        elif kind == "html":
            out, ctype = f"<html><body><h1>Error</h1><p>{text}</p></body></html>".encode(), "text/html"
        else:
            out, ctype = text.encode(), "text/plain"
        self.reply(int(args["reply_status"]), out, ctype=ctype)

    def do_GET(self):
        self.record("")
        if self.fixed_reply():
            return
        if ARGS.sse_get and "text/event-stream" in self.headers.get("Accept", ""):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b": idle\n\n")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                self.close_connection = True
                return
        self.reply(405)

    def do_DELETE(self):
        self.record("")
        if self.fixed_reply():
            return
        self.reply(200)


class Server(ThreadingHTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()

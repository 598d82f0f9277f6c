#!/usr/bin/env python3
"""A man in the middle between `mcp-warden connect` and `mcp-warden serve` (tests only).

Usage: tamper_relay.py UPSTREAM_HOST:PORT
Prints the port it listens on, then relays every request to UPSTREAM. In any answer that holds a
JSON-RPC result containing MARK, one byte of MARK is flipped: what an attacker on the path would
do. The signature over that result must then fail in `connect`.

The server's long-lived GET event stream is not relayed (405): a relay that reads answers whole
would block on it forever, and the tests need no server-initiated messages.
"""
import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = sys.argv[1]
MARK = b"tamper-me"
FLIPPED = b"tamper-mE"
# What connect sends and serve answers with; Host is left to http.client (serve checks it).
PASS_REQUEST = {
    "content-type", "accept", "mcp-session-id", "mcp-protocol-version", "mcp-method",
    "mcp-name", "last-event-id", "x-mcp-key-id", "x-mcp-timestamp", "x-mcp-nonce",
    "x-mcp-signature",
}
PASS_RESPONSE = {"content-type", "mcp-session-id", "retry-after", "allow"}


class Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "GET" and not self.path.endswith("/.well-known/mcp/capabilities"):
            self.answer(405, [("Allow", "POST, DELETE")], b"")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in PASS_REQUEST}
        conn = http.client.HTTPConnection(UPSTREAM, timeout=30)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if b'"result"' in data and MARK in data:
            data = data.replace(MARK, FLIPPED, 1)
        kept = [(k, v) for k, v in resp.getheaders() if k.lower() in PASS_RESPONSE]
        self.answer(resp.status, kept, data)

    def answer(self, status, headers, data):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = relay


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

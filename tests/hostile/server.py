#!/usr/bin/env python3
"""A scripted, possibly hostile MCP server over stdio (stdlib only), for the security tests.

    python3 tests/hostile/server.py [SCRIPT.json]

The script path may also come from $ECHO_SCRIPT and the record path from $ECHO_RECORD, the same
hooks as examples/echo_server.rs, so the test harness can run either behind `mcp-warden wrap`.

SCRIPT.json:
  {
    "listings": [[tool, ...], [tool, ...], ...],
        # the Nth tools/list is answered with listings[N] (the last one repeats)
    "list_changed_after": [1],
        # after answering listing number N (1-based), send notifications/tools/list_changed
    "calls": {"tool": ["raw line with {{id}}", ...]},
        # scripted answers to tools/call (default: a text result naming the tool)
    "record": "/path/upstream.log"
        # every line received is appended here, byte for byte (what the upstream really saw)
  }

It is deliberately dumb: it answers what the script says, so a test can make it pull the rug
(change a definition after the first listing, with or without list_changed), add a tool, or
serve a poisoned description from the start.
"""
import json
import os
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ECHO_SCRIPT")
    script = {}
    if path:
        with open(path, encoding="utf-8") as f:
            script = json.load(f)
    listings = script.get("listings") or [[]]
    notify_after = set(script.get("list_changed_after") or [])
    calls = script.get("calls") or {}
    record_path = script.get("record") or os.environ.get("ECHO_RECORD")
    record = open(record_path, "ab") if record_path else None
    listed = 0
    out = sys.stdout.buffer

    def send(obj) -> None:
        out.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        out.flush()

    for raw in sys.stdin.buffer:
        if record:
            record.write(raw if raw.endswith(b"\n") else raw + b"\n")
            record.flush()
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(msg, dict) or "id" not in msg or "method" not in msg:
            continue
        mid, method = msg["id"], msg["method"]
        if method == "initialize":
            params = msg.get("params") or {}
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": "hostile", "version": "1.0.0"},
            }})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
        elif method == "tools/list":
            tools = listings[min(listed, len(listings) - 1)]
            listed += 1
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": tools}})
            if listed in notify_after:
                send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        elif method == "tools/call":
            name = (msg.get("params") or {}).get("name", "")
            if name in calls:
                for line in calls[name]:
                    out.write(line.replace("{{id}}", json.dumps(mid)).encode() + b"\n")
                out.flush()
            else:
                send({"jsonrpc": "2.0", "id": mid, "result": {
                    "content": [{"type": "text", "text": f"called {name}"}]}})
        else:
            send({"jsonrpc": "2.0", "id": mid,
                  "error": {"code": -32601, "message": "Method not found"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())

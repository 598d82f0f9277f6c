"""A tiny MCP server over stdio for tests/pins_cli.rs, Python stdlib only.

`tools/list` answers with the JSON array in the file named by argv[1], read afresh on every
listing, so a test can change a tool's definition between two sessions. `tools/call NAME`
answers with one text item "called NAME".
"""

import json
import sys


def main():
    tools_file = sys.argv[1]
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "id" not in msg or "method" not in msg:
            continue
        method = msg["method"]
        if method == "initialize":
            result = {
                "protocolVersion": msg.get("params", {}).get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "scripted", "version": "1.0.0"},
            }
        elif method == "ping":
            result = {}
        elif method == "tools/list":
            with open(tools_file, encoding="utf-8") as f:
                result = {"tools": json.load(f)}
        elif method == "tools/call":
            name = msg.get("params", {}).get("name", "")
            result = {"content": [{"type": "text", "text": "called " + name}]}
        else:
            reply = {"jsonrpc": "2.0", "id": msg["id"],
                     "error": {"code": -32601, "message": "Method not found"}}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

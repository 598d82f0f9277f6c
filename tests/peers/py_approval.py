#!/usr/bin/env python3
"""Approval through the client, driven by the official Python SDK (mcp==2.3.0).

    .venv-peers/bin/python tests/peers/py_approval.py MODE PATH CONTENT -- CMD [ARGS...]
    MODE: accept | decline | cancel  (an elicitation callback answering so)
          none                       (no elicitation callback: the client declares none)

    .venv-peers/bin/python tests/peers/py_approval.py MODE PATH CONTENT -- URL

Starts CMD (e.g. `mcp-warden wrap ... -- node server-filesystem ROOT`) over stdio, or connects
to URL (`mcp-warden serve`, streamable HTTP) when the command is an http:// URL, calls
`write_file {path, content}` and prints ONE JSON line on stdout:
    {"asked": [messages of elicitations received], "result": {...} | null, "error": {...} | null}
A JSON-RPC error from the call is reported in "error" (code, message, data), not raised.
Everything else goes to stderr. Exit status: 0 ran, 2 usage error.
"""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import anyio

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def main(mode: str, path: str, content: str, cmd: list[str]) -> dict[str, Any]:
    asked: list[str] = []

    async def on_elicitation(_ctx: Any, params: Any) -> Any:
        asked.append(params.message)
        if mode == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action=mode)

    env = {k: v for k, v in os.environ.items() if re.match(r"^(MCP_WARDEN|RUST_)", k)}
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)
    out: dict[str, Any] = {"asked": asked, "result": None, "error": None}
    is_url = re.match(r"^https?://", cmd[0]) is not None
    transport = streamable_http_client(cmd[0]) if is_url else stdio_client(params, errlog=sys.stderr)
    async with transport as (read, write):
        async with ClientSession(
            read,
            write,
            elicitation_callback=None if mode == "none" else on_elicitation,
            client_info=types.Implementation(name="mcp-warden-approval-py", version="1.0.0"),
            read_timeout_seconds=float(os.environ.get("PEERS_REQUEST_TIMEOUT_MS", "30000")) / 1000,
        ) as session:
            await session.initialize()
            await session.list_tools()
            try:
                r = await session.call_tool("write_file", {"path": path, "content": content})
                out["result"] = r.model_dump(mode="json", by_alias=True, exclude_none=True)
            except MCPError as e:
                err = e.error
                out["error"] = {"code": err.code, "message": err.message, "data": err.data}
    return out


if __name__ == "__main__":
    argv = sys.argv[1:]
    if len(argv) < 5 or argv[3] != "--" or argv[0] not in ("accept", "decline", "cancel", "none"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    result = anyio.run(main, argv[0], argv[1], argv[2], argv[4:])
    print(json.dumps(result), flush=True)

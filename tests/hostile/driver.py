#!/usr/bin/env python3
"""Drive an MCP server with the official Python SDK client (mcp==2.3.0) through a plan of steps,
and print one JSON transcript on stdout.

    .venv-peers/bin/python tests/hostile/driver.py PLAN.json -- CMD [ARGS...]

PLAN.json is a list of steps:
  {"op": "list"}                                   tools/list -> {"tools": [names]}
  {"op": "call", "tool": "x", "args": {...}}       tools/call -> {"text": ..., "is_error": ...}
                                                   or {"error": {"code", "message"}}
  {"op": "wait_notification", "method": "...", "timeout": 5}
                                                   -> {"seen": true|false}
  {"op": "cli", "args": ["pins", "diff", "S"]}     runs $WARDEN_BIN ARGS -> {"rc", "stdout", "stderr"}

Every step's outcome is recorded (a failing step does not stop the plan); the transcript also
lists every server notification the session surfaced. Logs go to stderr.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client


def log(*a: Any) -> None:
    print("[hostile-driver]", *a, file=sys.stderr, flush=True)


def err_info(e: BaseException) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(e).__name__, "message": str(e)}
    err = getattr(e, "error", None)
    if isinstance(err, types.ErrorData):
        info["code"] = err.code
        info["message"] = err.message
    code = getattr(e, "code", None)
    if isinstance(code, int):
        info["code"] = code
    return info


async def run(plan: list[dict[str, Any]], cmd: list[str]) -> dict[str, Any]:
    notifications: list[str] = []
    seen = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            log("transport exception:", repr(message))
            return
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if method:
            notifications.append(method)
            seen.set()

    env = dict(get_default_environment())
    env.update({k: v for k, v in os.environ.items() if k.startswith("MCP_WARDEN")})
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)
    steps: list[dict[str, Any]] = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            for step in plan:
                op = step["op"]
                out: dict[str, Any] = {"op": op}
                out.update({k: v for k, v in step.items() if k != "op"})
                try:
                    if op == "list":
                        r = await session.list_tools()
                        out["tools"] = [t.name for t in r.tools]
                    elif op == "call":
                        r = await session.call_tool(step["tool"], step.get("args") or {})
                        out["is_error"] = bool(r.is_error)
                        out["text"] = " ".join(
                            c.text for c in r.content if isinstance(c, types.TextContent)
                        )
                    elif op == "wait_notification":
                        with anyio.move_on_after(step.get("timeout", 5)):
                            while step["method"] not in notifications:
                                await seen.wait()
                                seen = anyio.Event()
                        out["seen"] = step["method"] in notifications
                    elif op == "cli":
                        p = subprocess.run(
                            [os.environ["WARDEN_BIN"], *step["args"]],
                            capture_output=True,
                            text=True,
                            timeout=30,
                        )
                        out.update(rc=p.returncode, stdout=p.stdout, stderr=p.stderr)
                    else:
                        out["error"] = {"message": f"unknown op {op}"}
                except Exception as e:  # noqa: BLE001 - every outcome is part of the transcript
                    out["error"] = err_info(e)
                log(json.dumps(out)[:400])
                steps.append(out)
    return {"steps": steps, "notifications": notifications}


def main() -> int:
    argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        plan = json.load(f)
    transcript = anyio.run(run, plan, argv[2:])
    print(json.dumps(transcript))
    return 0


if __name__ == "__main__":
    sys.exit(main())

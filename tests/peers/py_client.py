#!/usr/bin/env python3
"""Real-peer MCP client built on the official Python SDK (mcp==2.3.0, see requirements.txt).

    .venv-peers/bin/python tests/peers/py_client.py SCENARIO -- CMD [ARGS...]
    .venv-peers/bin/python tests/peers/py_client.py SCENARIO --url URL   (Streamable HTTP)
    SCENARIO: everything | filesystem | memory

Drives the same scenarios as ts_client.mjs through ClientSession + stdio_client and prints ONE
normalized JSON transcript on stdout; the same scenario run directly and through a proxy must
print byte-identical output (it need not equal the TypeScript transcript). Everything else goes
to stderr. Exit status: 0 ok, 1 a step failed unexpectedly (partial transcript still printed,
with "failed" set), 2 usage error.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client

# set_logging_level warns that logging is deprecated in 2026-07-28; we talk 2025-11-25 here.
warnings.filterwarnings("ignore", message=".*logging capability is deprecated.*")

SCENARIOS = ("everything", "filesystem", "memory")
PEERS_DIR = os.path.dirname(os.path.abspath(__file__))


def log(*a: Any) -> None:
    print("[py_client]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ normalization
REPLACEMENTS: list[tuple[str, str]] = []


def add_replacement(p: str | None, placeholder: str) -> None:
    if not p or p == "/":
        return
    for v in {p, os.path.realpath(p)}:
        if v and v != "/":
            REPLACEMENTS.append((v, placeholder))
    REPLACEMENTS.sort(key=lambda r: -len(r[0]))


TMP_RE = re.compile(re.escape(tempfile.gettempdir()) + r"/[^\s\"'`,;:)\]}]+")
TS_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\b")
TIME_RE = re.compile(r"\b\d{1,2}:\d{2}:\d{2}(\s?[AP]M)?\b")
UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
VOLATILE_KEYS = {"timestamp", "requestId", "progressToken", "taskId", "createdAt", "lastUpdatedAt", "sessionId"}
LONG = 1500


def norm_string(s: str) -> str:
    for frm, to in REPLACEMENTS:
        s = s.replace(frm, to)
    s = TMP_RE.sub("<TMP>", s)
    s = TS_RE.sub("<TIMESTAMP>", s)
    s = TIME_RE.sub("<TIME>", s)
    return UUID_RE.sub("<UUID>", s)


def norm(v: Any) -> Any:
    if isinstance(v, BaseModel):
        v = v.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(v, str):
        s = norm_string(v)
        if len(s) <= LONG:
            return s
        return {"sha256": hashlib.sha256(s.encode()).hexdigest(), "length": len(s), "head": s[:200]}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: ("<VOLATILE>" if k in VOLATILE_KEYS else norm(v[k])) for k in sorted(v)}
    return v


def err_info(e: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"error": True, "type": type(e).__name__}
    code = getattr(e, "code", None)
    if isinstance(code, int):
        out["code"] = code
    err = getattr(e, "error", None)
    out["message"] = str(err.message) if isinstance(err, types.ErrorData) else str(e)
    return out


# ------------------------------------------------------------------ wire taps
class Tap:
    """Observes every message crossing the transport without changing delivery."""

    def __init__(self) -> None:
        self.server_requests: set[str] = set()
        self.notifications: set[str] = set()
        self.progress: list[dict[str, Any]] = []
        self.last_progress_token_sent: Any = None
        self.cancel_notifications_sent = 0
        self.initialize_raw: dict[str, Any] | None = None

    @staticmethod
    def _dump(item: Any) -> dict[str, Any] | None:
        msg = getattr(item, "message", None)
        if msg is None:
            return None
        root = getattr(msg, "root", msg)
        try:
            return root.model_dump(mode="json", by_alias=True, exclude_none=True)
        except Exception:  # noqa: BLE001 - the tap must never break delivery
            return None

    def incoming(self, item: Any) -> None:
        d = self._dump(item)
        if not d:
            return
        method = d.get("method")
        if method and "id" in d:
            self.server_requests.add(method)
        elif method:
            self.notifications.add(method)
            if method == "notifications/progress":
                self.progress.append(d.get("params") or {})
        elif isinstance(d.get("result"), dict) and "protocolVersion" in d["result"] and self.initialize_raw is None:
            self.initialize_raw = d["result"]

    def outgoing(self, item: Any) -> None:
        d = self._dump(item)
        if not d:
            return
        tok = ((d.get("params") or {}).get("_meta") or {}).get("progressToken")
        if d.get("method") and tok is not None:
            self.last_progress_token_sent = tok
        if d.get("method") == "notifications/cancelled":
            self.cancel_notifications_sent += 1


class TappedRead:
    def __init__(self, inner: Any, tap: Tap) -> None:
        self._inner, self._tap = inner, tap

    async def receive(self) -> Any:
        item = await self._inner.receive()
        self._tap.incoming(item)
        return item

    def __aiter__(self) -> TappedRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> TappedRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


class TappedWrite:
    def __init__(self, inner: Any, tap: Tap) -> None:
        self._inner, self._tap = inner, tap

    async def send(self, item: Any) -> None:
        self._tap.outgoing(item)
        await self._inner.send(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> TappedWrite:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


# ------------------------------------------------------------------ harness
SAMPLING_REPLY = "Canned sampling reply from the mcp-warden Python harness."
ELICIT_CONTENT = {"name": "Harness User", "check": True, "email": "harness@example.com", "integer": 7}
ROOT_URI = "file:///harness/workspace"


class StepFailed(Exception):
    pass


class Harness:
    def __init__(self, scenario: str, command: str, args: list[str], url: str | None = None) -> None:
        self.scenario, self.command, self.args, self.url = scenario, command, args, url
        self.transcript: dict[str, Any] = {"client": "python-sdk mcp@2.3.0", "scenario": scenario, "steps": []}
        self.failed = False
        self.tap = Tap()
        self.asked: dict[str, Any] = {"sampling": [], "elicitation": [], "roots": 0}
        self.session: ClientSession | None = None
        self.root_dir: str | None = None
        for a in args:
            if os.path.isabs(a) and os.path.isdir(a):
                self.root_dir = a

    async def step(self, name: str, request: dict[str, Any], fn: Any, expect_error: bool = False) -> Any:
        t0 = time.monotonic()
        try:
            result = await fn()
        except Exception as e:  # noqa: BLE001
            result = err_info(e)
            if not expect_error:
                self.failed = True
                log(f"step {name} FAILED: {type(e).__name__}: {e}")
        log(f"step {name} ({(time.monotonic() - t0) * 1000:.0f} ms)")
        self.transcript["steps"].append({"step": name, "request": norm(request), "result": norm(result)})
        if self.failed:
            raise StepFailed(name)
        return result

    async def tool(self, name: str, arguments: dict[str, Any]) -> Any:
        s = self.session
        assert s is not None
        return await self.step(
            f"tools/call {name}",
            {"method": "tools/call", "name": name, "arguments": arguments},
            lambda: s.call_tool(name, arguments),
        )

    # -------------------------------------------------- callbacks (everything only)
    async def on_sampling(self, _ctx: Any, params: types.CreateMessageRequestParams) -> Any:
        self.asked["sampling"].append(params.model_dump(mode="json", by_alias=True, exclude_none=True))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=SAMPLING_REPLY),
            model="harness-canned-model",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, _ctx: Any, params: Any) -> Any:
        schema = getattr(params, "requested_schema", None)
        required = list(getattr(schema, "required", None) or (schema or {}).get("required", []) if schema else [])
        self.asked["elicitation"].append({"message": params.message, "requiredFields": required})
        return types.ElicitResult(action="accept", content=ELICIT_CONTENT)

    async def on_list_roots(self, _ctx: Any) -> Any:
        self.asked["roots"] += 1
        return types.ListRootsResult(roots=[types.Root(uri=ROOT_URI, name="harness-workspace")])

    # -------------------------------------------------- scenarios
    async def init_step(self) -> None:
        s = self.session
        assert s is not None

        async def go() -> Any:
            r = await s.initialize()
            raw = self.tap.initialize_raw or {}
            return {
                "protocolVersion": raw.get("protocolVersion"),
                "serverInfo": raw.get("serverInfo"),
                "capabilities": raw.get("capabilities"),
                "instructions": r.instructions,
            }

        await self.step("initialize", {"method": "initialize", "withServerFeatures": self.scenario == "everything"}, go)

    async def list_tools_step(self) -> None:
        s = self.session
        assert s is not None

        async def go() -> Any:
            r = await s.list_tools()
            return {"names": sorted(t.name for t in r.tools), "tools": r}

        await self.step("tools/list", {"method": "tools/list"}, go)

    async def everything(self) -> None:
        s = self.session
        assert s is not None
        await self.init_step()
        await self.step("ping", {"method": "ping"}, s.send_ping)
        await self.step("logging/setLevel", {"method": "logging/setLevel", "level": "error"}, lambda: s.set_logging_level("error"))
        await self.list_tools_step()
        await self.tool("echo", {"message": 'hello from the mcp-warden harness ✓ "quotes" \\ back\\slash'})
        await self.tool("get-sum", {"a": 40, "b": 2})
        await self.tool("get-structured-content", {"location": "Chicago"})
        await self.tool("get-annotated-message", {"messageType": "success", "includeImage": False})
        await self.tool("get-tiny-image", {})
        await self.tool("get-resource-links", {"count": 3})
        await self.tool("get-resource-reference", {"resourceType": "Text", "resourceId": 2})

        async def progress() -> Any:
            got: list[dict[str, Any]] = []

            async def cb(p: float, total: float | None, _msg: str | None) -> None:
                got.append({"progress": p, "total": total})

            before = len(self.tap.progress)
            r = await s.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 2}, progress_callback=cb)
            raw = self.tap.progress[before:]
            tok = self.tap.last_progress_token_sent
            return {
                "result": r,
                "onprogressCalledAtLeastOnce": len(got) >= 1,
                "progressNotificationsOnWire": [{"progress": p.get("progress"), "total": p.get("total")} for p in raw],
                "progressTokenSentWithRequest": tok is not None,
                "everyNotificationCarriedOurProgressToken": bool(raw) and all(p.get("progressToken") == tok for p in raw),
            }

        await self.step(
            "tools/call trigger-long-running-operation (progress)",
            {"method": "tools/call", "name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 2}, "progress": True},
            progress,
        )

        async def cancelled() -> Any:
            seen = 0
            sent_before = self.tap.cancel_notifications_sent
            with anyio.CancelScope() as scope:

                async def cb(_p: float, _t: float | None, _m: str | None) -> None:
                    nonlocal seen
                    seen += 1
                    if seen == 1:
                        scope.cancel()

                await s.call_tool("trigger-long-running-operation", {"duration": 2, "steps": 4}, progress_callback=cb)
            # Give the courtesy notifications/cancelled a moment to reach the write tap.
            with anyio.move_on_after(2):
                while self.tap.cancel_notifications_sent == sent_before:
                    await anyio.sleep(0.01)
            return {
                "cancelled": scope.cancelled_caught,
                "sawProgressBeforeCancel": seen >= 1,
                "cancelledNotificationSent": self.tap.cancel_notifications_sent > sent_before,
            }

        await self.step(
            "tools/call trigger-long-running-operation (cancelled)",
            {"method": "tools/call", "name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 4}, "cancelAfterFirstProgress": True},
            cancelled,
        )
        await self.step("ping (after cancel)", {"method": "ping"}, s.send_ping)
        await self.step("resources/list", {"method": "resources/list"}, s.list_resources)
        await self.step("resources/templates/list", {"method": "resources/templates/list"}, s.list_resource_templates)
        static = "demo://resource/static/document/features.md"
        await self.step("resources/read static", {"method": "resources/read", "uri": static}, lambda: s.read_resource(static))
        dyn = "demo://resource/dynamic/text/2"
        await self.step("resources/read dynamic", {"method": "resources/read", "uri": dyn}, lambda: s.read_resource(dyn))
        await self.step("prompts/list", {"method": "prompts/list"}, s.list_prompts)
        await self.step("prompts/get simple-prompt", {"method": "prompts/get", "name": "simple-prompt"}, lambda: s.get_prompt("simple-prompt"))
        pargs = {"city": "Lisbon", "state": "Lisboa"}
        await self.step(
            "prompts/get args-prompt", {"method": "prompts/get", "name": "args-prompt", "arguments": pargs}, lambda: s.get_prompt("args-prompt", pargs)
        )
        await self.step(
            "completion/complete",
            {"method": "completion/complete", "prompt": "completable-prompt", "argument": "department", "value": "E"},
            lambda: s.complete(types.PromptReference(type="ref/prompt", name="completable-prompt"), {"name": "department", "value": "E"}),
        )

        async def sampling() -> Any:
            r = await s.call_tool("trigger-sampling-request", {"prompt": "Say hi", "maxTokens": 20})
            dumped = json.dumps(norm(r))
            return {
                "result": r,
                "samplingRequestsReceived": len(self.asked["sampling"]),
                "lastSamplingRequest": self.asked["sampling"][-1] if self.asked["sampling"] else None,
                "cannedReplyEchoed": SAMPLING_REPLY in dumped,
            }

        await self.step(
            "tools/call trigger-sampling-request",
            {"method": "tools/call", "name": "trigger-sampling-request", "arguments": {"prompt": "Say hi", "maxTokens": 20}},
            sampling,
        )

        async def elicitation() -> Any:
            r = await s.call_tool("trigger-elicitation-request", {})
            return {
                "result": r,
                "elicitationRequestsReceived": len(self.asked["elicitation"]),
                "lastElicitation": self.asked["elicitation"][-1] if self.asked["elicitation"] else None,
                "acceptedNameEchoed": ELICIT_CONTENT["name"] in json.dumps(norm(r)),
            }

        await self.step("tools/call trigger-elicitation-request", {"method": "tools/call", "name": "trigger-elicitation-request", "arguments": {}}, elicitation)

        async def roots() -> Any:
            r = await s.call_tool("get-roots-list", {})
            return {"result": r, "rootsListAnswered": self.asked["roots"] >= 1, "rootUriEchoed": ROOT_URI in json.dumps(norm(r))}

        await self.step("tools/call get-roots-list", {"method": "tools/call", "name": "get-roots-list", "arguments": {}}, roots)
        await self.step(
            "tools/call no-such-tool", {"method": "tools/call", "name": "no-such-tool"}, lambda: s.call_tool("no-such-tool", {}), expect_error=True
        )
        await self.step("ping (final)", {"method": "ping"}, s.send_ping)

    async def filesystem(self) -> None:
        s = self.session
        assert s is not None
        root = self.root_dir
        if not root:
            raise StepFailed("filesystem scenario: pass the allowed root directory (absolute, existing) as a server argument")

        def f(*p: str) -> str:
            return os.path.join(root, *p)

        await self.init_step()
        await self.list_tools_step()
        await self.tool("list_allowed_directories", {})
        await self.tool("write_file", {"path": f("hello.txt"), "content": "hello from the mcp-warden harness\nline two ✓\n"})
        await self.tool("read_text_file", {"path": f("hello.txt")})
        await self.tool("create_directory", {"path": f("sub")})
        await self.tool("write_file", {"path": f("sub", "nested.md"), "content": "# nested\n"})
        await self.tool("edit_file", {"path": f("hello.txt"), "edits": [{"oldText": "line two", "newText": "line 2"}], "dryRun": False})
        await self.tool("read_text_file", {"path": f("hello.txt")})
        await self.tool("list_directory", {"path": root})
        await self.tool("directory_tree", {"path": root})
        await self.tool("search_files", {"path": root, "pattern": "**/*.md"})
        await self.step(
            "tools/call read_text_file (outside root)",
            {"method": "tools/call", "name": "read_text_file", "path": "/etc/hostname"},
            lambda: s.call_tool("read_text_file", {"path": "/etc/hostname"}),
            expect_error=True,
        )
        await self.step(
            "tools/call read_text_file (traversal)",
            {"method": "tools/call", "name": "read_text_file", "path": "<ROOT>/../outside.txt"},
            lambda: s.call_tool("read_text_file", {"path": f("..", "outside.txt")}),
            expect_error=True,
        )
        await self.step("ping", {"method": "ping"}, s.send_ping)

    async def memory(self) -> None:
        await self.init_step()
        await self.list_tools_step()
        await self.tool(
            "create_entities",
            {
                "entities": [
                    {"name": "Warden", "entityType": "proxy", "observations": ["written in Rust", "relays stdio"]},
                    {"name": "Everything", "entityType": "server", "observations": ["reference MCP server"]},
                ]
            },
        )
        await self.tool("create_relations", {"relations": [{"from": "Warden", "to": "Everything", "relationType": "protects"}]})
        await self.tool("add_observations", {"observations": [{"entityName": "Everything", "contents": ["speaks stdio"]}]})
        await self.tool("read_graph", {})
        await self.tool("search_nodes", {"query": "stdio"})
        await self.tool("open_nodes", {"names": ["Warden"]})
        await self.tool("delete_observations", {"deletions": [{"entityName": "Warden", "observations": ["relays stdio"]}]})
        await self.tool("delete_relations", {"relations": [{"from": "Warden", "to": "Everything", "relationType": "protects"}]})
        await self.tool("delete_entities", {"entityNames": ["Warden", "Everything"]})
        await self.tool("read_graph", {})

    # -------------------------------------------------- main
    async def run(self) -> int:
        env: dict[str, str] = {}
        for k, v in os.environ.items():
            if re.match(r"^(MCP_WARDEN|WARDEN|RUST_)", k) or k == "NODE_OPTIONS":
                env[k] = v
        mem_dir = None
        if self.scenario == "memory":
            mem_dir = tempfile.mkdtemp(prefix="warden-peers-memory-")
            env["MEMORY_FILE_PATH"] = os.path.join(mem_dir, "memory.jsonl")
            add_replacement(mem_dir, "<MEMDIR>")
        if self.root_dir:
            add_replacement(self.root_dir, "<ROOT>")
        add_replacement(PEERS_DIR, "<PEERS>")
        add_replacement(os.getcwd(), "<CWD>")
        _ = get_default_environment  # env given here is merged over the SDK's default environment
        params = StdioServerParameters(command=self.command, args=self.args, env=env)
        full = self.scenario == "everything"
        t0 = time.monotonic()
        try:
            transport = streamable_http_client(self.url) if self.url else stdio_client(params, errlog=sys.stderr)
            async with transport as (read, write):
                async with ClientSession(
                    TappedRead(read, self.tap),
                    TappedWrite(write, self.tap),
                    sampling_callback=self.on_sampling if full else None,
                    elicitation_callback=self.on_elicitation if full else None,
                    list_roots_callback=self.on_list_roots if full else None,
                    client_info=types.Implementation(name="mcp-warden-peer-py", version="1.0.0"),
                    # Per-request timeout; keeps a wedged intermediary from stalling CI.
                    read_timeout_seconds=float(os.environ.get("PEERS_REQUEST_TIMEOUT_MS", "20000")) / 1000,
                ) as session:
                    self.session = session
                    watchdog = float(os.environ.get("PEERS_WATCHDOG_S", "60"))
                    try:
                        with anyio.fail_after(watchdog):
                            await getattr(self, self.scenario)()
                    except StepFailed as e:
                        self.failed = True
                        log(f"scenario aborted at step {e}")
                    except TimeoutError:
                        self.failed = True
                        self.transcript["timedOut"] = True
                        log(f"watchdog: scenario {self.scenario} still running after {watchdog}s, giving up")
        except Exception as e:  # noqa: BLE001
            self.failed = True
            log(f"session error: {type(e).__name__}: {e}")
        finally:
            if mem_dir:
                shutil.rmtree(mem_dir, ignore_errors=True)
        self.transcript["serverRequestMethods"] = sorted(self.tap.server_requests)
        self.transcript["sawProgressNotifications"] = "notifications/progress" in self.tap.notifications
        log("notifications seen:", ", ".join(sorted(self.tap.notifications)) or "(none)")
        if self.failed:
            self.transcript["failed"] = True
        log(f"scenario {self.scenario} {'FAILED' if self.failed else 'ok'} in {(time.monotonic() - t0) * 1000:.0f} ms")
        sys.stdout.write(json.dumps(self.transcript, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return 1 if self.failed else 0


def main() -> int:
    argv = sys.argv[1:]
    if len(argv) == 3 and argv[0] in SCENARIOS and argv[1] == "--url":
        return anyio.run(Harness(argv[0], "", [], url=argv[2]).run)
    if len(argv) < 3 or argv[0] not in SCENARIOS or argv[1] != "--":
        print(f"usage: py_client.py {{{'|'.join(SCENARIOS)}}} (-- CMD [ARGS...] | --url URL)", file=sys.stderr)
        return 2
    h = Harness(argv[0], argv[2], argv[3:])
    return anyio.run(h.run)


if __name__ == "__main__":
    sys.exit(main())

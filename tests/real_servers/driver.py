#!/usr/bin/env python3
"""The false-positive guard (issue 10): real MCP servers, direct vs through `mcp-warden wrap`.

    .venv-peers/bin/python tests/real_servers/driver.py WARDEN_BIN [--only NAME,NAME]

For every server below: one session run directly, then two sessions through
`WARDEN_BIN wrap --server NAME -- CMD` with the embedded default configuration (no policy dir,
no proxy.toml) and ONE state dir shared by all servers, in the order of the table, so pins,
trust and every cross-server check see all of them. Each session initializes, lists tools,
prompts, resources and resource templates (all pages), and makes one or two harmless calls
(session 2 calls before it lists, as a client with a cached listing does). Two servers are also
called "cold": a fresh state dir of their own and calls before any listing.

Every difference between the direct and a proxied session, and every alert or refusal in the
audit trail, must be a deliberate denial from DENIALS below (with its reason) or a known defect
from KNOWN_DEFECTS (an expected failure, pending its fix). Anything else is a false positive:
the driver prints a diff and exits 1. The last line on stdout is the totals line.

Exit: 0 no false positive; 1 false positives (or a server that fails directly); 2 usage;
3 a server's package is missing (run scripts/setup-peers.sh) — the Rust test turns that into a
loud failure in CI and a loud skip elsewhere.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import BaseModel

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

warnings.filterwarnings("ignore", message=".*logging capability is deprecated.*")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NM = os.path.join(REPO, "tests", "peers", "node_modules", "@modelcontextprotocol")
VENV_BIN = os.path.join(REPO, ".venv-peers", "bin")
TIMEOUT_S = float(os.environ.get("REAL_SERVERS_TIMEOUT_S", "30"))


def log(*a: Any) -> None:
    print("[real_servers]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the servers
@dataclass
class Server:
    name: str  # also the `wrap --server` name, so the shipped policy packs match as in real use
    origin: str  # package and pinned version (tests/peers/package.json, requirements.txt)
    cmd: list[str]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Call results compared by shape only (keys and types): the values are live readings.
    shape_only: set[str] = field(default_factory=set)


def node(pkg: str, *args: str) -> list[str]:
    return ["node", os.path.join(NM, pkg, "dist", "index.js"), *args]


def py(script: str, *args: str) -> list[str]:
    return [os.path.join(VENV_BIN, script), *args]


def servers(tmp: str) -> list[Server]:
    fs_root = os.path.join(tmp, "fs-root")
    repo = os.path.join(tmp, "git-repo")
    xlsx = os.path.join(tmp, "book.xlsx")
    notes_root = os.path.join(tmp, "notes")
    return [
        Server(
            "everything",
            "npm @modelcontextprotocol/server-everything 2026.8.31",
            node("server-everything", "stdio"),
            [("echo", {"message": "hello from the false-positive guard"}), ("get-sum", {"a": 40, "b": 2})],
        ),
        Server(
            "filesystem",
            "npm @modelcontextprotocol/server-filesystem 2026.8.31",
            node("server-filesystem", fs_root),
            [
                ("list_allowed_directories", {}),
                ("list_directory", {"path": fs_root}),
                # Ordinary project files a coding agent reads (see prepare()).
                ("list_directory", {"path": os.path.join(fs_root, ".vscode")}),
                ("read_text_file", {"path": os.path.join(fs_root, "src", "lib.rs")}),
                ("read_text_file", {"path": os.path.join(fs_root, "app.py")}),
                ("read_text_file", {"path": os.path.join(fs_root, "src", "App.tsx")}),
            ],
        ),
        Server(
            "memory",
            "npm @modelcontextprotocol/server-memory 2026.8.31",
            node("server-memory"),
            [("read_graph", {}), ("search_nodes", {"query": "warden"})],
            env={"MEMORY_FILE_PATH": os.path.join(tmp, "memory.jsonl")},
        ),
        Server(
            "sequential-thinking",
            "npm @modelcontextprotocol/server-sequential-thinking 2026.8.31",
            node("server-sequential-thinking"),
            [
                (
                    "sequentialthinking",
                    {"thought": "List the servers first.", "thoughtNumber": 1, "totalThoughts": 1, "nextThoughtNeeded": False},
                )
            ],
            env={"DISABLE_THOUGHT_LOGGING": "true"},
        ),
        # The next two need network for every call: listed only. They start without a real
        # token (brave-search insists on a non-empty key, github does not).
        Server("github", "npm @modelcontextprotocol/server-github 2025.4.8", node("server-github")),
        Server(
            "brave-search",
            "npm @modelcontextprotocol/server-brave-search 0.6.2",
            node("server-brave-search"),
            env={"BRAVE_API_KEY": "offline-test-key-not-used"},
        ),
        Server(
            "system-monitor",
            "npm @modelcontextprotocol/server-system-monitor 2.0.3",
            node("server-system-monitor", "--stdio"),
            [("get-system-info", {})],
            shape_only={"get-system-info"},
        ),
        Server(
            "fetch",
            "PyPI mcp-server-fetch 2026.10.24",
            py("mcp-server-fetch"),
            # No network here: a loopback URL that refuses the connection at once. The fetch
            # pack refuses private and loopback targets (SSRF), a deliberate denial.
            [("fetch", {"url": "http://127.0.0.1:9/robots-check", "max_length": 100})],
        ),
        Server(
            "git",
            "PyPI mcp-server-git 2026.10.19",
            py("mcp-server-git", "--repository", repo),
            [("git_status", {"repo_path": repo}), ("git_log", {"repo_path": repo, "max_count": 1})],
        ),
        Server(
            "time",
            "PyPI mcp-server-time 2026.10.19",
            py("mcp-server-time", "--local-timezone", "UTC"),
            [
                ("get_current_time", {"timezone": "Europe/Lisbon"}),
                ("convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
            ],
        ),
        Server(
            "excel",
            "PyPI excel-mcp-server 2.2.2",
            py("excel-mcp-server", "stdio"),
            [("describe_workbook", {"path": xlsx}), ("read_range", {"path": xlsx, "sheet": "Stock", "range": "A1:B3"})],
        ),
        Server(
            "aws-documentation",
            "PyPI awslabs.aws-documentation-mcp-server 1.2.3",
            py("awslabs.aws-documentation-mcp-server"),
            env={"FASTMCP_LOG_LEVEL": "ERROR"},
        ),
        # The same server twice with another root, as users run it for two projects: every
        # tool name repeats across the two (separately wrapped) servers.
        Server(
            "filesystem-notes",
            "npm @modelcontextprotocol/server-filesystem 2026.8.31 (second instance)",
            node("server-filesystem", notes_root),
            [("list_directory", {"path": notes_root})],
        ),
    ]


# Benign source files: generics and JSX that look like tags, code that assigns `password`.
FIXTURE_FILES = {
    "src/lib.rs": (
        "use std::sync::Arc;\n\n"
        "/// Runs one request with the shared context.\n"
        "pub fn handle(ctx: Arc<Context>, key: Option<Secret>) -> Result<(), Error> {\n"
        "    let pwd = std::env::current_dir()?;\n"
        "    ctx.run(&pwd, key)\n"
        "}\n"
    ),
    "app.py": (
        "import getpass\nimport os\n\n\n"
        "def connect(user, password=None):\n"
        "    pwd = os.getcwd()\n"
        "    if password is None:\n"
        "        password = getpass.getpass('Password: ')\n"
        "    return db.connect(user=user, password=password, cwd=pwd)\n"
    ),
    "src/App.tsx": (
        "export function App({ theme }: Props) {\n"
        "  return (\n"
        "    <Context.Provider value={theme}>\n"
        "      <Hidden smDown>\n"
        "        <Sidebar />\n"
        "      </Hidden>\n"
        "    </Context.Provider>\n"
        "  );\n"
        "}\n"
    ),
}


def prepare(tmp: str) -> None:
    """Fixtures the harmless calls read: directories, a git repo with one commit, a workbook."""
    fs_root = os.path.join(tmp, "fs-root")
    os.makedirs(os.path.join(fs_root, "docs"))
    with open(os.path.join(fs_root, "README.md"), "w") as f:
        f.write("# fixture\n")
    os.makedirs(os.path.join(fs_root, ".vscode"))
    with open(os.path.join(fs_root, ".vscode", "mcp.json"), "w") as f:
        f.write('{"servers": {}}\n')
    os.makedirs(os.path.join(fs_root, "src"))
    for name, text in FIXTURE_FILES.items():
        with open(os.path.join(fs_root, name), "w") as f:
            f.write(text)
    repo = os.path.join(tmp, "git-repo")
    os.makedirs(repo)
    genv = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Guard",
        "GIT_AUTHOR_EMAIL": "guard@example.com",
        "GIT_COMMITTER_NAME": "Guard",
        "GIT_COMMITTER_EMAIL": "guard@example.com",
        "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
        "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    with open(os.path.join(repo, "hello.txt"), "w") as f:
        f.write("hello\n")
    for args in (["init", "-q", "-b", "main"], ["add", "hello.txt"], ["commit", "-q", "-m", "first commit"]):
        subprocess.run(["git", *args], cwd=repo, env=genv, check=True)
    os.makedirs(os.path.join(tmp, "notes"))
    with open(os.path.join(tmp, "notes", "todo.txt"), "w") as f:
        f.write("nothing\n")
    import openpyxl  # installed with excel-mcp-server

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Stock"
    for row in (("name", "qty"), ("apple", 3), ("pear", 5)):
        ws.append(row)
    wb.save(os.path.join(tmp, "book.xlsx"))


# ------------------------------------------------------------------ what may differ, and why
# (server, kind, name) → reason. kind: "tool" / "prompt" / "resource" / "template" (hidden from
# its listing), "call" (refused by the proxy with a JSON-RPC error; "cold-call" in the cold
# sessions), "alert" (an audit record
# with this event or rule that alerts but neither hides nor refuses anything). name "*": any.
DENIALS: dict[tuple[str, str, str], str] = {
    ("everything", "tool", "get-env"): "everything pack: get-env dumps the server's whole environment (API keys), denied and hidden",
    ("fetch", "call", "fetch"): "fetch pack: URLs must be public http(s); loopback/private targets are refused (SSRF)",
    ("filesystem-notes", "alert", "capability.name_collision"): (
        "a second filesystem server has the same tool names as the first: reported as an alert (issue 10: a name "
        "collision between separately wrapped servers is at most an alert)"
    ),
}

# Real false positives whose fix is under way: reported as expected failures, not counted as
# passes, and the run stays green; once fixed, the run prints "listed but not observed" and
# the entry goes. (server, kind, name) → what trips and the fix it waits for.
KNOWN_DEFECTS: dict[tuple[str, str, str], str] = {}


# Servers also called cold (see run_all).
COLD_CALL = {"time", "memory"}


def lookup(table: dict[tuple[str, str, str], str], key: tuple[str, str, str]) -> str | None:
    return table.get(key) or table.get((key[0], key[1], "*"))


# ------------------------------------------------------------------ normalization
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
TIME_RE = re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?(\s?[AP]M)?\b")
UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
WEEKDAY_RE = re.compile(r"\b(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b")


class Norm:
    def __init__(self, tmp: str) -> None:
        self.repl = sorted({(tmp, "<TMP>"), (os.path.realpath(tmp), "<TMP>"), (REPO, "<REPO>")}, key=lambda r: -len(r[0]))

    def s(self, v: str) -> str:
        for frm, to in self.repl:
            v = v.replace(frm, to)
        v = TS_RE.sub("<TIMESTAMP>", v)
        v = DATE_RE.sub("<DATE>", v)
        v = TIME_RE.sub("<TIME>", v)
        v = WEEKDAY_RE.sub("<WEEKDAY>", v)
        return UUID_RE.sub("<UUID>", v)

    def __call__(self, v: Any) -> Any:
        if isinstance(v, BaseModel):
            v = v.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(v, str):
            return self.s(v)
        if isinstance(v, (list, tuple)):
            return [self(x) for x in v]
        if isinstance(v, dict):
            return {k: self(v[k]) for k in sorted(v)}
        return v


def shape(v: Any) -> Any:
    """Keys and value types only: for results made of live readings (load, memory, uptime)."""
    if isinstance(v, dict):
        return {k: shape(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    if isinstance(v, str):
        try:
            return {"json": shape(json.loads(v))}
        except ValueError:
            return "str"
    return type(v).__name__


# ------------------------------------------------------------------ one session
def err_info(e: BaseException) -> dict[str, Any]:
    err = getattr(e, "error", None)
    if isinstance(err, types.ErrorData):
        return {"error": {"code": err.code, "message": err.message}}
    return {"error": {"type": type(e).__name__, "message": str(e)}}


async def pages(fn: Any, attr: str) -> list[Any]:
    out: list[Any] = []
    cursor = None
    for _ in range(50):
        r = await fn(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        out.extend(getattr(r, attr))
        cursor = r.next_cursor
        if not cursor:
            break
    return out


async def session(srv: Server, argv: list[str], env: dict[str, str], errlog: Any, norm: Norm, calls_first: bool = False) -> dict[str, Any]:
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=REPO)
    out: dict[str, Any] = {"lists": {}, "calls": {}}
    with anyio.fail_after(TIMEOUT_S):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(
                read,
                write,
                client_info=types.Implementation(name="mcp-warden-real-servers", version="1.0.0"),
                read_timeout_seconds=TIMEOUT_S,
            ) as s:
                init = await s.initialize()
                caps = init.capabilities
                out["serverInfo"] = norm(init.server_info)
                out["capabilities"] = norm(caps)
                out["instructions"] = norm(init.instructions)
                kinds = [("tools", caps.tools, s.list_tools, "tools", "name")]
                kinds.append(("prompts", caps.prompts, s.list_prompts, "prompts", "name"))
                kinds.append(("resources", caps.resources, s.list_resources, "resources", "uri"))
                kinds.append(("templates", caps.resources, s.list_resource_templates, "resource_templates", "uri_template"))
                if calls_first:
                    await calls(s, srv, norm, out)
                for kind, cap, fn, attr, key in kinds:
                    if cap is None:
                        continue
                    try:
                        items = await pages(fn, attr)
                        out["lists"][kind] = {norm(getattr(i, key)): norm(i) for i in items}
                    except Exception as e:  # noqa: BLE001 - recorded and compared like a result
                        out["lists"][kind] = err_info(e)
                if not calls_first:
                    await calls(s, srv, norm, out)
    return out


async def calls(s: ClientSession, srv: Server, norm: Norm, out: dict[str, Any]) -> None:
    for i, (tool, arguments) in enumerate(srv.calls):
        key = f"{tool}#{i}"  # a tool may be called more than once
        try:
            r = await s.call_tool(tool, arguments)
            res = norm(r)
            out["calls"][key] = shape(res) if tool in srv.shape_only else res
        except Exception as e:  # noqa: BLE001
            out["calls"][key] = err_info(e)


# ------------------------------------------------------------------ comparison
@dataclass
class Tally:
    deliberate: dict[str, list[str]] = field(default_factory=dict)  # reason → occurrences
    expected: dict[str, list[str]] = field(default_factory=dict)  # reason → occurrences
    defects: list[str] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def differ(self, key: tuple[str, str, str], what: str, detail: str) -> None:
        denial, defect = lookup(DENIALS, key), lookup(KNOWN_DEFECTS, key)
        self.seen.update({key, (key[0], key[1], "*")})
        if denial:
            self.deliberate.setdefault(denial, []).append(what)
        elif defect:
            self.expected.setdefault(defect, []).append(what)
        else:
            self.defects.append(f"{what}: FALSE POSITIVE" + (f"\n{detail}" if detail else ""))


def jdump(v: Any) -> str:
    return json.dumps(v, indent=1, sort_keys=True, ensure_ascii=False)


def diff_text(a: Any, b: Any) -> str:
    import difflib

    return "\n".join(difflib.unified_diff(jdump(a).splitlines(), jdump(b).splitlines(), "direct", "proxied", lineterm="", n=2))


def compare(
    srv: Server, label: str, direct: dict[str, Any], prox: dict[str, Any], t: Tally, norm: Norm, call_kind: str = "call"
) -> None:
    n = srv.name
    for k in ("serverInfo", "capabilities", "instructions"):
        if direct[k] != prox[k]:
            t.differ((n, k, ""), f"{n} {label} initialize {k}", diff_text(direct[k], prox[k]))
    for kind in sorted(set(direct["lists"]) | set(prox["lists"])):
        d, p = direct["lists"].get(kind), prox["lists"].get(kind)
        if not isinstance(d, dict) or not isinstance(p, dict) or "error" in d or "error" in p:
            if d != p:
                t.differ((n, kind, "*"), f"{n} {label} {kind}/list", diff_text(d, p))
            continue
        single = kind[:-1] if kind != "templates" else "template"
        for name in sorted(set(d) | set(p)):
            if name not in p:
                t.differ((n, single, name), f"{n} {label} {single} {name!r} missing through the proxy", "")
            elif name not in d:
                t.differ((n, single + "+", name), f"{n} {label} {single} {name!r} only through the proxy", jdump(p[name]))
            elif d[name] != p[name]:
                t.differ((n, single + "~", name), f"{n} {label} {single} {name!r} changed by the proxy", diff_text(d[name], p[name]))
    for key in sorted(set(direct["calls"]) | set(prox["calls"])):
        d, p = direct["calls"].get(key), prox["calls"].get(key)
        tool, i = key.rsplit("#", 1)
        if d != p:
            args = norm(srv.calls[int(i)][1])
            t.differ((n, call_kind, tool), f"{n} {label} call {tool} {json.dumps(args)}", diff_text(d, p))


def audit_alerts(state: str) -> list[dict[str, Any]]:
    """Audit records that alert, refuse or hold: each must be explained like a listing difference."""
    out = []
    for path in sorted(glob.glob(os.path.join(state, "**", "*.jsonl"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(r, dict) or "decision" not in r or "server" not in r:
                    continue
                if r.get("alert") or r.get("decision") not in ("allow", "rewrite"):
                    out.append(r)
    return out


# ------------------------------------------------------------------ main
def missing_packages(srvs: list[Server]) -> list[str]:
    miss = []
    for s in srvs:
        exe = s.cmd[1] if s.cmd[0] == "node" else s.cmd[0]
        if not os.path.exists(exe):
            miss.append(f"{s.name} ({s.origin}): {exe}")
    return miss


async def run_all(warden: str, only: set[str] | None) -> int:
    tmp = tempfile.mkdtemp(prefix="warden-real-servers-")
    try:
        prepare(tmp)
        norm = Norm(tmp)
        srvs = [s for s in servers(tmp) if not only or s.name in only]
        miss = missing_packages(srvs)
        if miss:
            print("MISSING SERVER PACKAGES (run scripts/setup-peers.sh):\n  " + "\n  ".join(miss))
            return 3
        state = os.path.join(tmp, "state")
        os.makedirs(state)
        base_env = {k: v for k, v in os.environ.items() if k.startswith("RUST_")}
        # Default configuration: nothing but the state dir, shared by every server and session.
        base_env["MCP_WARDEN_STATE"] = state
        errlog = open(os.path.join(tmp, "servers-stderr.log"), "w+")
        t = Tally()
        results: dict[str, dict[str, Any]] = {}
        failed_direct = []
        t0 = time.monotonic()
        # Direct runs share no state: four at a time. The proxied ones run in table order, one
        # at a time, so what each server's pins see of the others is the same on every run.
        limit = anyio.Semaphore(4)

        async def direct(s: Server) -> None:
            async with limit:
                try:
                    results[s.name] = {"direct": await session(s, s.cmd, {**base_env, **s.env}, errlog, norm)}
                except Exception as e:  # noqa: BLE001
                    failed_direct.append(f"{s.name}: {type(e).__name__}: {e}")
                    log(f"{s.name}: direct session failed: {e!r}")

        async with anyio.create_task_group() as tg:
            for s in srvs:
                tg.start_soon(direct, s)
        results = {s.name: results[s.name] for s in srvs if s.name in results}
        for label in ("session 1", "session 2"):
            for s in srvs:
                if s.name not in results:
                    continue
                env = {**base_env, **s.env}
                argv = [warden, "wrap", "--server", s.name, "--", *s.cmd]
                t1 = time.monotonic()
                try:
                    # Session 2 calls before it lists, as a client with a cached listing does
                    # (the 2026-07-28 era's ttlMs): the pins of session 1 must be enough.
                    prox = await session(s, argv, env, errlog, norm, calls_first=label == "session 2")
                except Exception as e:  # noqa: BLE001
                    prox = {"sessionError": f"{type(e).__name__}: {e}"}
                log(f"{s.name} {label} through wrap: {(time.monotonic() - t1) * 1000:.0f} ms")
                results[s.name][label] = prox
                if "sessionError" in prox:
                    t.defects.append(f"{s.name} {label}: the proxied session failed: {prox['sessionError']}")
                    continue
                compare(s, label, results[s.name]["direct"], prox, t, norm)
        # Cold calls: a fresh state dir of its own, calls before any listing, as a script or an
        # agent that knows its tools does (issue 10 part 2). Two servers suffice.
        cold_alerts = []
        for s in srvs:
            if s.name not in COLD_CALL or s.name not in results:
                continue
            cold = os.path.join(tmp, f"state-cold-{s.name}")
            os.makedirs(cold)
            argv = [warden, "wrap", "--server", s.name, "--", *s.cmd]
            try:
                prox = await session(s, argv, {**base_env, **s.env, "MCP_WARDEN_STATE": cold}, errlog, norm, calls_first=True)
            except Exception as e:  # noqa: BLE001
                t.defects.append(f"{s.name} cold call: the proxied session failed: {type(e).__name__}: {e}")
                continue
            compare(s, "cold call (fresh state dir, no listing first)", results[s.name]["direct"], prox, t, norm, call_kind="cold-call")
            cold_alerts += [{**r, "_cold": True} for r in audit_alerts(cold)]
        alerts = audit_alerts(state) + cold_alerts
        for r in alerts:
            srv, tool, rule = r.get("server", ""), r.get("tool") or "", r.get("rule") or ""
            key_tool, key_call = (srv, "tool", tool), (srv, "cold-call" if r.get("_cold") else "call", tool)
            what = f"audit {srv}: {r.get('event')} decision={r.get('decision')} rule={rule} tool={tool or '-'} reason={r.get('reason')}"
            if tool and (lookup(DENIALS, key_tool) or lookup(DENIALS, key_call)):
                continue  # the same deliberate denial, already counted from the listing/call
            if tool and (lookup(KNOWN_DEFECTS, key_tool) or lookup(KNOWN_DEFECTS, key_call)):
                continue  # the same expected failure, already reported from the listing/call
            alert_key = next((k for k in ((srv, "alert", rule), (srv, "alert", r.get("event") or "")) if k in DENIALS), None)
            if alert_key:
                t.seen.add(alert_key)
                t.deliberate.setdefault(DENIALS[alert_key], []).append(what)
                continue
            t.defects.append(what + "\n" + jdump(r.get("detail")))
        elapsed = time.monotonic() - t0

        # ---------------------------------------------------------------- report
        n_tools = n_prompts = n_templates = n_resources = n_calls = 0
        for s in srvs:
            d = results.get(s.name, {}).get("direct")
            if not d:
                continue
            lists = d["lists"]

            def count(k: str) -> int:
                v = lists.get(k)
                return len(v) if isinstance(v, dict) and "error" not in v else 0

            n_tools += count("tools")
            n_prompts += count("prompts")
            n_templates += count("templates")
            n_resources += count("resources")
            n_calls += len(s.calls)
            print(
                f"  {s.name:20} {s.origin:58} tools {count('tools'):3}  prompts {count('prompts'):2}  "
                f"templates {count('templates'):2}  resources {count('resources'):3}  calls {len(s.calls)}"
            )
        for line in failed_direct:
            print(f"DIRECT RUN FAILED (not the proxy's fault, but the guard cannot judge it): {line}")
        for reason, whats in t.deliberate.items():
            print(f"deliberate denial ({len(whats)}x): {reason}\n    " + "\n    ".join(whats))
        for reason, whats in t.expected.items():
            print(f"EXPECTED FAILURE ({len(whats)}x), a known false positive: {reason}\n    " + "\n    ".join(whats))
        for key in sorted(set(DENIALS) | set(KNOWN_DEFECTS)):
            if key not in t.seen and key[0] in results:
                print(f"NOTE: listed but not observed (stale table entry?): {key}")
        for line in t.defects:
            print(f"DEFECT: {line}")
        n_servers = len(results)
        n_cold = sum(len(s.calls) for s in srvs if s.name in COLD_CALL and s.name in results)
        deliberate = len(t.deliberate)
        expected = sum(len(w) for w in t.expected.values())
        print(f"audit: {len(alerts)} alert/refusal records in the state dirs (shared + cold); wall {elapsed:.1f} s")
        print(
            f"{n_servers} servers, {n_tools} tools, {n_prompts} prompts, {n_templates} templates, "
            f"{n_resources} resources, {n_calls * 3 + n_cold} calls ({n_calls} per session, 1 direct + 2 proxied sessions "
            f"each, + {n_cold} cold): "
            f"{deliberate} deliberate denials, {expected} known false positives pending a fix (expected failures), "
            f"{len(t.defects)} new false positives"
        )
        if os.environ.get("REAL_SERVERS_CAPTURE"):
            # The direct listings, for the detectors' false-positive unit tests
            # (tests/real_servers/definitions.json, read by src/checks/poison_scan_tests.rs).
            cap = {}
            for name, r in results.items():
                lists = r["direct"]["lists"]
                cap[name] = {k: list(v.values()) for k, v in lists.items() if k != "resources" and isinstance(v, dict) and "error" not in v}
            with open(os.environ["REAL_SERVERS_CAPTURE"], "w") as f:
                f.write(json.dumps(cap, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        if os.environ.get("REAL_SERVERS_DUMP"):
            with open(os.environ["REAL_SERVERS_DUMP"], "w") as f:
                f.write(jdump(results))
        return 1 if (t.defects or failed_direct) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    argv = sys.argv[1:]
    only = None
    if len(argv) == 3 and argv[1] == "--only":
        only = set(argv[2].split(","))
        argv = argv[:1]
    if len(argv) != 1:
        print("usage: driver.py WARDEN_BIN [--only NAME,NAME]", file=sys.stderr)
        return 2
    return anyio.run(run_all, os.path.abspath(argv[0]), only)


if __name__ == "__main__":
    sys.exit(main())

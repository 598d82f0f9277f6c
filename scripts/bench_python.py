#!/usr/bin/env python3
"""Issue 16's own harness, for its own figures: a Python MCP client and a Python echo server
over stdio (~100-150 us per direct round trip, as in the issue's table), measured directly and
through `mcp-warden wrap`, in the same run, rounds alternating which goes first.

The Rust benchmark (scripts/bench.sh) has a ~5 us direct round trip, so its ratios show the
proxy's cost against almost nothing; this one shows it against a realistic, if fast, server.

    python3 scripts/bench_python.py --warden target/release/mcp-warden [--rounds 3]
        [--calls 5000] [--pipe-calls 20000] [--window 8] [--config FILE]
        [--floor target/release/examples/bare_relay]

With --floor, a relay that only copies bytes (examples/bare_relay.rs) is measured in the same
rounds: what any process in the middle costs on this machine, before a single check runs.

Prints a Markdown table: sequential and pipelined calls/s, ratios, added p50/p99 latency,
and the proxy's peak RSS (VmHWM). Timings depend on the machine and its load (printed).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ECHO_SERVER = r'''
import sys, json
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    m = json.loads(line)
    if "id" not in m:
        continue
    meth = m.get("method")
    if meth == "initialize":
        r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
             "serverInfo": {"name": "py-echo", "version": "1.0.0"}}
    elif meth == "tools/list":
        r = {"tools": [{"name": "echo", "description": "Echo the text back.",
                        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                                        "required": ["text"]}}]}
    elif meth == "tools/call":
        r = {"content": [{"type": "text", "text": m["params"]["arguments"]["text"]}]}
    else:
        r = {}
    out.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}).encode() + b"\n")
    out.flush()
'''


def call(i, text="hello, warden"):
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": text}}}).encode() + b"\n"


class Peer:
    def __init__(self, argv, env):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env, bufsize=0)
        self.w, self.r = self.p.stdin, self.p.stdout

    def send(self, obj):
        self.w.write(json.dumps(obj).encode() + b"\n")

    def recv(self):
        line = self.r.readline()
        if not line:
            raise SystemExit("the peer closed its output")
        return json.loads(line)

    def handshake(self):
        self.send({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                              "clientInfo": {"name": "bench-python", "version": "1"}}})
        self.recv()
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.send({"jsonrpc": "2.0", "id": "list", "method": "tools/list"})
        self.recv()

    def peak_rss_mib(self):
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def close(self):
        self.w.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def sequential(peer, calls, warmup):
    for i in range(warmup):
        peer.w.write(call(i))
        peer.r.readline()
    lat = []
    start = time.perf_counter()
    for i in range(calls):
        t = time.perf_counter()
        peer.w.write(call(warmup + i))
        if not peer.r.readline():
            raise SystemExit("closed")
        lat.append((time.perf_counter() - t) * 1e6)
    elapsed = time.perf_counter() - start
    lat.sort()
    return calls / elapsed, lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def pipelined(peer, calls, window):
    slots = threading.Semaphore(window)
    base = 10_000_000

    def writer():
        for i in range(calls):
            slots.acquire()
            peer.w.write(call(base + i))

    t = threading.Thread(target=writer)
    start = time.perf_counter()
    t.start()
    for _ in range(calls):
        if not peer.r.readline():
            raise SystemExit("closed")
        slots.release()
    elapsed = time.perf_counter() - start
    t.join()
    return calls / elapsed


def one(argv, env, a, measure_rss):
    peer = Peer(argv, env)
    peer.handshake()
    seq, p50, p99 = sequential(peer, a.calls, a.warmup)
    pipe = pipelined(peer, a.pipe_calls, a.window)
    rss = peer.peak_rss_mib() if measure_rss else float("nan")
    peer.close()
    return {"seq": seq, "p50": p50, "p99": p99, "pipe": pipe, "rss": rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warden", default="target/release/mcp-warden")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--pipe-calls", type=int, default=20000)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--config")
    ap.add_argument("--floor", help="a byte-copying relay binary (examples/bare_relay)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = os.path.join(tmp, "echo.py")
        with open(server, "w") as f:
            f.write(ECHO_SERVER)
        env = dict(os.environ, MCP_WARDEN_STATE=os.path.join(tmp, "state"))
        direct_argv = [sys.executable, server]
        proxied_argv = [a.warden, "wrap", "--server", "bench"]
        if a.config:
            proxied_argv += ["--config", a.config]
        proxied_argv += ["--", sys.executable, server]
        floor_argv = [a.floor, "--", sys.executable, server] if a.floor else None
        load_before = os.getloadavg()[0]
        results = {"d": [], "p": [], "f": []}
        for r in range(a.rounds):
            order = [("d", direct_argv), ("p", proxied_argv)]
            if floor_argv:
                order.append(("f", floor_argv))
            # Rotate which goes first.
            order = order[r % len(order):] + order[:r % len(order)]
            for kind, argv in order:
                results[kind].append(one(argv, env, a, kind == "p"))
        load_after = os.getloadavg()[0]
        direct, proxied, floor = results["d"], results["p"], results["f"]

    def med(rs, k):
        return statistics.median(x[k] for x in rs)

    d = {k: med(direct, k) for k in ("seq", "p50", "p99", "pipe")}
    p = {k: med(proxied, k) for k in ("seq", "p50", "p99", "pipe", "rss")}
    print(f"Python client and echo server over stdio, {a.rounds} rounds (medians), "
          f"load {load_before:.2f} -> {load_after:.2f}, {os.cpu_count()} CPUs")
    print()
    print("| path | direct | mcp-warden | ratio | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| stdio sequential calls/s | {d['seq']:,.0f} | {p['seq']:,.0f} | {p['seq'] / d['seq']:.2f}x "
          f"| >= 0.9x |")
    print(f"| added p50 / p99 us | {d['p50']:.1f} / {d['p99']:.1f} | {p['p50']:.1f} / {p['p99']:.1f} "
          f"| +{p['p50'] - d['p50']:.1f} / +{p['p99'] - d['p99']:.1f} | <= +30 us p50 |")
    print(f"| stdio pipelined ({a.window} in flight) calls/s | {d['pipe']:,.0f} | {p['pipe']:,.0f} "
          f"| {p['pipe'] / d['pipe']:.2f}x | >= 0.9x |")
    print(f"| proxy peak RSS MiB | - | {p['rss']:.1f} | | <= 20 |")
    if floor:
        f = {k: med(floor, k) for k in ("seq", "p50", "p99", "pipe")}
        print()
        print("The floor: a relay that only copies bytes (examples/bare_relay.rs), same rounds.")
        print()
        print("| path | direct | bare relay | ratio | mcp-warden over the bare relay |")
        print("|---|---:|---:|---:|---:|")
        print(f"| stdio sequential calls/s | {d['seq']:,.0f} | {f['seq']:,.0f} | {f['seq'] / d['seq']:.2f}x "
              f"| {p['seq'] / f['seq']:.2f}x |")
        print(f"| added p50 / p99 us | | {f['p50']:.1f} / {f['p99']:.1f} "
              f"| +{f['p50'] - d['p50']:.1f} / +{f['p99'] - d['p99']:.1f} "
              f"| +{p['p50'] - f['p50']:.1f} / +{p['p99'] - f['p99']:.1f} |")
        print(f"| stdio pipelined calls/s | {d['pipe']:,.0f} | {f['pipe']:,.0f} | {f['pipe'] / d['pipe']:.2f}x "
              f"| {p['pipe'] / f['pipe']:.2f}x |")


if __name__ == "__main__":
    main()

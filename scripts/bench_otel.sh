#!/usr/bin/env bash
# Issue 13's proof: what OTLP export costs the `wrap` data path when the collector is healthy,
# down (connection refused) or stalling (accepts and never answers). Runs scripts/bench.sh once
# per case; each run interleaves direct and proxied rounds, so its proxied/direct ratio is
# measured against the same machine state, and each case's ratio is then compared with the
# export-off run's (target: >= 0.95x of export off when the collector is down or stalling).
#
# Usage: scripts/bench_otel.sh [bench_stdio options, e.g. --rounds 3]
# Builds in release mode first (see scripts/bench.sh). Needs python3 for the stand-in collectors.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Healthy: every POST read and answered 200 with an empty body (an OTLP/HTTP success).
healthy="$(free_port)"
python3 - "$healthy" <<'PY' &
import sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
# Stalling: accepts every connection, never reads, never answers.
stalled="$(free_port)"
python3 - "$stalled" <<'PY' &
import sys, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024); held = []
while True: held.append(s.accept())
PY
pids+=($!)
# Down: a port nothing listens on.
down="$(free_port)"
sleep 0.5

cargo build --release --bin mcp-warden --example echo_server --example bench_stdio >&2
for case in off healthy down stalled; do
    case "$case" in
        off) unset OTEL_EXPORTER_OTLP_ENDPOINT ;;
        healthy) export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$healthy" ;;
        down) export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$down" ;;
        stalled) export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$stalled" ;;
    esac
    echo "== export $case" >&2
    scripts/bench.sh --json "$work/$case.json" "$@" >&2
done

python3 - "$work" <<'PY'
import json, sys, os
d = sys.argv[1]
runs = {c: json.load(open(os.path.join(d, c + ".json"))) for c in ["off", "healthy", "down", "stalled"]}
off = runs["off"]
print("| collector | seq ratio to direct | vs off | pipelined ratio | vs off | added p50 us | proxy CPU us/call seq | peak RSS MiB | load before→after |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for c, r in runs.items():
    s, p = r["ratio"]["sequential"], r["ratio"]["pipelined"]
    print(f"| {c} | {s:.2f}x | {s / off['ratio']['sequential']:.2f}x | {p:.2f}x | {p / off['ratio']['pipelined']:.2f}x "
          f"| {r['added_latency_us']['p50']:.1f} | {r['proxied']['seq_cpu_us_per_call']:.1f} | {r['proxy_peak_rss_mib']:.1f} "
          f"| {r['loadavg_before']} → {r['loadavg_after']} |")
PY

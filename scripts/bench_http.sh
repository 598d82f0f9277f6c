#!/usr/bin/env bash
# The HTTP benchmark: a minimal Streamable HTTP echo server (examples/echo_http_server.rs)
# measured directly and through `mcp-warden serve` ([[servers]] url), in the same run, rounds
# alternating which goes first (examples/bench_http/). Prints a table: tools/call calls/s at
# concurrency 1 and 8 (8 connections, a session each, sequential), p50/p90/p99 latency, the ratio
# to direct and the added latency, serve's CPU time and context switches per call, serve's peak
# RSS, and its RSS with 1,000 idle SSE streams open; and issue 16's targets (throughput >= 0.8x
# direct and added p50 <= 60 us at concurrency 1, >= 0.7x at concurrency 8).
#
# serve runs with the allow-all policy (fixtures/policies/allow-all), a fresh temporary
# MCP_WARDEN_STATE, and otherwise the default configuration: signatures in audit mode, pins,
# trust and the audit trail (fsync "batch") all active. The [serve] caps (connections per
# client, streams, sessions, sessions per client) are raised through the environment for the
# 1,000 streams.
#
# It builds in release mode first. A cold release build takes ~10 minutes on a 2-core machine,
# which is why this is a script and not a test. Timings depend on the machine and its load: the
# load average is printed with the figures (rerun when it is above ~1.5 on a 2-core machine).
#
# Usage: scripts/bench_http.sh [bench_http options]
#   e.g. scripts/bench_http.sh --rounds 5 --json bench-http.json
#        scripts/bench_http.sh --streams 0 --serve-env TOKIO_WORKER_THREADS=1
# Options: --calls N --warmup N --conc N --rounds N --streams N --payload BYTES --config FILE
#          --serve-env K=V --json FILE --warden PATH --server PATH
#          --stdio-upstream target/release/examples/echo_server  (serve → [[servers]] command)
#          (see: target/release/examples/bench_http --help)
# Env: CARGO (default cargo), PROFILE=debug to benchmark a debug build (validation only).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo="${CARGO:-cargo}"
profile="${PROFILE:-release}"

# 1,000 streams need ~2,000 descriptors in serve and ~1,000 in the echo server and the client
# each (the bench also raises its soft limit to the hard one itself).
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 8192 ]; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

if [ "$profile" = release ]; then
    "$cargo" build --release --bin mcp-warden --example echo_http_server --example echo_server --example bench_http >&2
else
    "$cargo" build --bin mcp-warden --example echo_http_server --example echo_server --example bench_http >&2
fi

target="${CARGO_TARGET_DIR:-$repo/target}"
exec "$target/$profile/examples/bench_http" \
    --warden "$target/$profile/mcp-warden" \
    --server "$target/$profile/examples/echo_http_server" \
    "$@"

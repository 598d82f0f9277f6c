#!/usr/bin/env bash
# The stdio benchmark: the echo server measured directly and through `mcp-warden wrap`, in the
# same run, interleaved (examples/bench_stdio.rs). Prints a table: calls/s direct vs proxied
# (sequential and pipelined, 8 in flight by default), added p50/p99 latency, the proxy's peak RSS, and the issue's
# targets (throughput >= 0.9x direct, added p50 <= 30 us, peak RSS <= 20 MiB).
#
# It builds in release mode first. A cold release build takes ~10 minutes on a 2-core machine,
# which is why this is a script and not a test: it is kept out of `cargo test`. Timings depend
# on the machine and its load; the load average is printed with the figures (rerun when it is
# above ~1.5 on a 2-core machine).
#
# Usage: scripts/bench.sh [bench_stdio options]
#   e.g. scripts/bench.sh --rounds 5 --json bench.json
#        scripts/bench.sh --config my-proxy.toml      (policies/signatures enabled)
#        scripts/bench.sh --config enforce.toml --sign-key client.pem
#                      (signed requests, [signatures] mode = "enforce"; see README "Signatures")
# Options: --calls N --warmup N --pipe-calls N --window N --rounds N --config FILE --json FILE
#          --sign-key PEM --warden PATH --server PATH
#          (see: target/release/examples/bench_stdio --help)
# The in-process verification micro-benchmark is separate:
#   cargo run --release --example bench_verify -- [--iters N] [--runs N] [--json FILE]
# Env: CARGO (default cargo).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo="${CARGO:-cargo}"

"$cargo" build --release --bin mcp-warden --example echo_server --example bench_stdio >&2

target="${CARGO_TARGET_DIR:-$repo/target}"
exec "$target/release/examples/bench_stdio" \
    --warden "$target/release/mcp-warden" \
    --server "$target/release/examples/echo_server" \
    "$@"

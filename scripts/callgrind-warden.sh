#!/bin/sh
# Runs the release mcp-warden under callgrind, for the benchmarks' --warden option: instruction
# counts do not move with the load of a shared machine, wall-clock figures do (issue 16).
#   CG_TAG=seq0  target/release/examples/bench_stdio --warden scripts/callgrind-warden.sh \
#       --server target/release/examples/echo_server --rounds 1 --calls 1 --warmup 0 --pipe-calls 1
#   CG_TAG=seq5k ... --calls 5000 ...
#   scripts/callgrind_per_call.py $CG_DIR/seq0.*.out $CG_DIR/seq5k.*.out 5000
# Note: valgrind hides SHA-NI, so SHA-256 shows up in software (~36 k instructions per record).
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CG_DIR:-/tmp/mcp-warden-callgrind}"
mkdir -p "$dir"
exec valgrind --tool=callgrind --dump-instr=no \
    --callgrind-out-file="$dir/${CG_TAG:-run}.%p.out" "$repo/target/release/mcp-warden" "$@"

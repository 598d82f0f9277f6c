#!/usr/bin/env bash
# Run one cargo-fuzz target for a while: scripts/fuzz.sh TARGET SECONDS
# Targets: codec path_rule net_rule sse (see fuzz/fuzz_targets/). Needs `cargo install cargo-fuzz`.
# Env: FUZZ_SANITIZER (default address; `none` builds and runs faster), FUZZ_DEV=1 (dev profile:
# much quicker to build, slower to run), FUZZ_JOBS (parallel workers, default 1).
# New interesting inputs go to fuzz/corpus/TARGET (not committed); crashes to
# fuzz/artifacts/TARGET. Commit a crash under fixtures/fuzz-regressions/TARGET/ once fixed: the
# unit tests replay that directory on every `cargo test`.
set -euo pipefail
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS (codec | path_rule | net_rule | sse)}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
# cargo fuzz needs nightly-only flags (-Zsanitizer, sancov); RUSTC_BOOTSTRAP lets stable take them.
export RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-stable}
export RUSTC_BOOTSTRAP=1
mkdir -p "corpus/$target"
dirs=("corpus/$target")
for extra in "seeds/$target" "$root/fixtures/fuzz-regressions/$target"; do
  [ -d "$extra" ] && dirs+=("$extra")
done
flags=(-s "${FUZZ_SANITIZER:-address}")
[ "${FUZZ_DEV:-0}" = 1 ] && flags+=(--dev)
opts=(-max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
# Parallel workers log to fuzz/fuzz-N.log; one worker prints here.
jobs=${FUZZ_JOBS:-1}
[ "$jobs" -gt 1 ] && opts+=(-jobs="$jobs" -workers="$jobs")
exec cargo fuzz run "${flags[@]}" "$target" "${dirs[@]}" -- "${opts[@]}"

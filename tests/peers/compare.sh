#!/usr/bin/env bash
# Run every real-peer scenario direct and through an intermediary and require identical
# transcripts.  Usage (from anywhere):
#
#   tests/peers/compare.sh                                   # intermediary: tests/peers/relay.py
#   tests/peers/compare.sh target/debug/mcp-warden wrap --   # intermediary: the proxy under test
#
# The arguments form the prefix put in front of each server command. CLIENTS="ts py" and
# SCENARIOS="everything filesystem memory" narrow the run. Transcripts and stderr are kept in
# $OUT_DIR (default: a temp dir, printed). Exits non-zero on any failure or difference.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
nm="$here/node_modules/@modelcontextprotocol"
py="$repo/.venv-peers/bin/python"
if [ $# -gt 0 ]; then prefix=("$@"); else prefix=(python3 "$here/relay.py" --); fi
out="${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/warden-peers.XXXXXX")}"
mkdir -p "$out"
fail=0
for client in ${CLIENTS:-ts py}; do
  case $client in
    ts) c=(node "$here/ts_client.mjs") ;;
    py) c=("$py" "$here/py_client.py") ;;
    *) echo "unknown client $client" >&2; exit 2 ;;
  esac
  for sc in ${SCENARIOS:-everything filesystem memory}; do
    for mode in direct proxied; do
      root=""
      case $sc in
        everything) s=(node "$nm/server-everything/dist/index.js" stdio) ;;
        filesystem) root="$(mktemp -d "${TMPDIR:-/tmp}/warden-peers-root.XXXXXX")"; s=(node "$nm/server-filesystem/dist/index.js" "$root") ;;
        memory) s=(node "$nm/server-memory/dist/index.js") ;;
        *) echo "unknown scenario $sc" >&2; exit 2 ;;
      esac
      if [ $mode = proxied ]; then s=("${prefix[@]}" "${s[@]}"); fi
      start=$(date +%s%N)
      "${c[@]}" "$sc" -- "${s[@]}" >"$out/$client-$sc-$mode.json" 2>"$out/$client-$sc-$mode.err"
      rc=$?
      ms=$(( ($(date +%s%N) - start) / 1000000 ))
      [ -n "$root" ] && rm -rf "$root"
      verdict=ok
      [ $rc = 0 ] || { verdict="FAILED rc=$rc (see $out/$client-$sc-$mode.err)"; fail=1; }
      if [ $mode = proxied ] && [ $rc = 0 ]; then
        if ! cmp -s "$out/$client-$sc-direct.json" "$out/$client-$sc-proxied.json"; then
          verdict="DIFFERS from direct"
          fail=1
          diff -u "$out/$client-$sc-direct.json" "$out/$client-$sc-proxied.json" | head -40 >&2
        fi
      fi
      printf '%-3s %-11s %-8s %6d ms  %s\n' "$client" "$sc" "$mode" "$ms" "$verdict"
    done
  done
done
echo "transcripts in $out"
[ $fail = 0 ] && echo "all transcripts identical" || echo "FAILURES above"
exit $fail

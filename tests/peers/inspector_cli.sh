#!/usr/bin/env bash
# Drive @modelcontextprotocol/inspector-cli 1.0.3 (pinned in package.json) against a stdio server:
# prints the tools/list result, then the result of calling `echo` (server-everything's tool),
# as two JSON documents on stdout. Diagnostics go to stderr.
#
#   tests/peers/inspector_cli.sh CMD [ARGS...]
#   e.g. tests/peers/inspector_cli.sh node tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio
#        tests/peers/inspector_cli.sh target/debug/mcp-warden wrap -- node .../server-everything/dist/index.js stdio
#
# The CLI must be started from its own build/ directory (it reads ../package.json relative to
# the cwd), so the server is launched through `sh -c 'cd CALLER_CWD && exec CMD ARGS'`: relative
# paths in CMD/ARGS keep meaning what they meant to the caller. Set ECHO_MESSAGE to change the
# echoed text.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/node_modules/@modelcontextprotocol/inspector-cli/build"
if [ ! -f "$build/index.js" ]; then
  echo "inspector-cli not installed: run scripts/setup-peers.sh" >&2
  exit 1
fi
caller_cwd="$PWD"
msg="${ECHO_MESSAGE:-hello from inspector-cli}"
# Everything after `--` reaches the server command untouched (even args starting with '-').
# The target's first word goes before the options: --tool-arg is variadic and would swallow it.
launch=(-- -c 'cd "$0" && exec "$@"' "$caller_cwd" "$@")
cd "$build"
node index.js sh --method tools/list "${launch[@]}"
node index.js sh --method tools/call --tool-name echo --tool-arg "message=$msg" "${launch[@]}"

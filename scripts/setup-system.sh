#!/usr/bin/env bash
# The Debian packages the tests need beyond Rust, Node.js and Python: python3-venv (the Python
# peers), redis-server (tests/cluster.rs starts its own instances) and chromium (tests/dashboard.rs
# drives it headless). Installed with apt-get when missing and we may (root); otherwise the
# missing ones are named and the tests that need them fail with the same name.
set -euo pipefail

missing=()
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup-system: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup-system: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
fi

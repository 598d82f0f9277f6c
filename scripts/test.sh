#!/usr/bin/env bash
# The test command: install the pinned real MCP peers (npm + PyPI), then run every test.
# Works on a fresh machine with Rust, Node.js >= 20 and Python >= 3.10 (Debian: the packages
# scripts/setup-system.sh installs when run as root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "== Debian packages the tests need (python3-venv, redis-server, chromium)"
scripts/setup-system.sh
echo "== installing pinned MCP peers (tests/peers)"
scripts/setup-peers.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo build (binary and examples: the tests run the example servers)"
cargo build --bins --examples
echo "== cargo test"
cargo test --all-targets

#!/usr/bin/env bash
# Every check capscale runs: Rust tests and lints, Python lints, stub check, pytest.
# Expects the package installed (README: python -m pip install ".[test]").
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test"
cargo test --workspace
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo fmt"
cargo fmt --all --check
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy (public API) and stubtest (capscale._native)"
python -m mypy
python -m mypy.stubtest capscale._native
echo "== pytest"
python -m pytest

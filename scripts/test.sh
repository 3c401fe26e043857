#!/usr/bin/env bash
# The README's second command, and what CI runs: every test, plus the format and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p target/examples
# The example third-party policy (Python), which the tests load.
componentize_py=$(command -v componentize-py || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/componentize-py")
"$componentize_py" -d wit/v0.1 -w cove:plugin/policy@0.1.0 componentize app \
  -p examples/policy-python -o target/examples/no-push.wasm
cargo fmt --all -- --check
# A fresh build gains nothing from incremental compilation's bookkeeping, which costs time.
export CARGO_INCREMENTAL=0
# The host package on its own, then the other members: built together, the plugins' host-side
# builds widen features of dependencies the host shares with its build script, and wasmtime and
# Cranelift would be compiled twice (about 7 CPU-minutes here). Every member is still tested.
cargo test -p cove --locked
cargo test --workspace --exclude cove --locked
cargo clippy -p cove --all-targets --locked -- -D warnings
cargo clippy --workspace --exclude cove --all-targets --locked -- -D warnings

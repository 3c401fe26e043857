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
cargo test --workspace --locked
cargo clippy --workspace --all-targets --locked -- -D warnings

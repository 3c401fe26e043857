#!/usr/bin/env bash
# The README's first command: install what is missing, build cove, and run its main job.
# Until the agent loop lands this is the offline demo of the built-in tools on a sample repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p cove
exec ./target/release/cove demo "$@"

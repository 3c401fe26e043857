#!/usr/bin/env bash
# Measure the figures in docs/PERFORMANCE.md (release build) and rewrite that file.
# Optional: BENCH_TREE=/some/large/tree (default: the cargo registry sources on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo bench --locked -p cove --bench foundation -- --write "$PWD/docs/PERFORMANCE.md" "$@"
cargo bench --locked -p cove --bench agent_loop -- --write "$PWD/docs/PERFORMANCE.md" "$@"
cargo bench --locked -p cove --bench skills -- --write "$PWD/docs/PERFORMANCE.md" "$@"
cargo bench --locked -p cove --bench subagents -- --write "$PWD/docs/PERFORMANCE.md" "$@"
cargo bench --locked -p cove --bench team -- --write "$PWD/docs/PERFORMANCE.md" "$@"
cargo bench --locked -p cove --bench mcp -- --write "$PWD/docs/PERFORMANCE.md" "$@"
# Needs what `cove plugin build` needs for each language (cargo, npm, pip): see docs/PLUGINS.md.
cargo bench --locked -p cove --bench plugins -- --write "$PWD/docs/PERFORMANCE.md" "$@"

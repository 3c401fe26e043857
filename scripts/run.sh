#!/usr/bin/env bash
# The README's first command: install what is missing, build cove, and run its main job: an
# interactive session when a model provider is configured, else the offline demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p cove
configured="${ANTHROPIC_API_KEY:-}${ANTHROPIC_BASE_URL:-}${OPENAI_API_KEY:-}${OPENAI_BASE_URL:-}${COVE_PROVIDER:-}"
user_config="${XDG_CONFIG_HOME:-$HOME/.config}/cove/config.toml"
if [ -n "$configured" ] || grep -qs '^\[provider\]' "$user_config" .cove/config.toml; then
  exec ./target/release/cove "$@"
fi
exec ./target/release/cove demo

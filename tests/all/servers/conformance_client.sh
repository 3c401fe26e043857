#!/bin/sh
# cove as the client of the MCP conformance suite (npm @modelcontextprotocol/conformance):
#   conformance client --command "sh conformance_client.sh" --scenario NAME
# The suite appends its test server's URL and sets MCP_CONFORMANCE_SCENARIO.
#
# Makes a scratch git repository and a user config naming the server (`conf`), then does with the
# real `cove` binary what the scenario asks of a client: `cove tools list` (initialize and
# tools/list), and `cove tools call mcp__conf__TOOL` where the scenario has a tool to call.
# COVE_BIN is the binary (default: `cove` on PATH); COVE_CACHE_DIR is kept when set.
set -eu

url=${1:?usage: conformance_client.sh SERVER_URL}
scenario=${MCP_CONFORMANCE_SCENARIO:-}
cove=${COVE_BIN:-cove}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
trap 'exit 143' INT TERM
mkdir -p "$scratch/repo" "$scratch/config"
git init -q "$scratch/repo"
# The user's config: a repository's own config could only narrow (it is not trusted).
printf '[mcp.servers.conf]\nurl = "%s"\n' "$url" >"$scratch/config/config.toml"
export COVE_CONFIG_DIR="$scratch/config" COVE_DATA_DIR="$scratch/data"
export CLAUDE_CONFIG_DIR="$scratch/claude"
export COVE_CACHE_DIR="${COVE_CACHE_DIR:-$scratch/cache}"
cd "$scratch/repo"

call() {
    echo "+ cove tools call mcp__conf__$1 $2" >&2
    "$cove" tools call "mcp__conf__$1" "$2"
}

echo "+ cove tools list --json" >&2
"$cove" tools list --json
case "$scenario" in
initialize) ;;
tools_call) call add_numbers '{"a":2,"b":3}' ;;
sse-retry) call test_reconnection '{}' ;;
elicitation-sep1034-client-defaults) call test_client_elicitation_defaults '{}' ;;
# The auth scenarios' servers offer `test-tool` behind OAuth.
*) call test-tool '{}' ;;
esac

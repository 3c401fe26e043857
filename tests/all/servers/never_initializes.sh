#!/bin/sh
# An MCP "server" that never answers `initialize`: for the client's init timeout.
echo "started, and will never answer" >&2
exec sleep 600

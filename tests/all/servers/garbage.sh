#!/bin/sh
# An MCP "server" that writes text that is not JSON-RPC to stdout, then hangs (`garbage.sh hang`)
# or exits with status 1 (`garbage.sh exit`): the client must say so rather than wait.
echo "Welcome to the garbage server!"
echo "this is not JSON either"
echo "about to $1" >&2
if [ "$1" = exit ]; then
    exit 1
fi
exec sleep 600

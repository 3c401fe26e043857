#!/usr/bin/env python3
"""An MCP stdio server on the official Python SDK (`mcp`), for cove's tests of what a session does
with MCP calls: `count` reports its progress, `sleep` waits until it is cancelled (writing
`started` and `cancelled` to the file named by $LOG), `tmpdir` says where its TMPDIR is, and a
tool whose name no model provider takes (too long, with dots).
"""
import os

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("sdk-test", subscriptions=False)
LONG_NAME = "project.files." + "very_long_segment." * 4 + "read"


def log(line: str) -> None:
    path = os.environ.get("LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@server.tool(name="count", description="Counts to n, reporting each step as progress.")
async def count(n: int, ctx: Context) -> str:
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
        await anyio.sleep(0.3)
    return f"counted to {n}"


@server.tool(name="sleep", description="Waits until it is cancelled.")
async def sleep() -> str:
    log("started")
    try:
        await anyio.sleep(600)
    except anyio.get_cancelled_exc_class():
        log("cancelled")
        raise
    return "woke up"


@server.tool(name="tmpdir", description="Says where its TMPDIR is.")
def tmpdir() -> str:
    return os.environ.get("TMPDIR", "")


@server.tool(name=LONG_NAME, description="A tool whose name is too long for model providers.")
def long_named(path: str) -> str:
    return f"long-named tool read {path}"


anyio.run(server.run_stdio_async)

"""A client of `cove mcp serve` built on the official MCP Python SDK (PyPI `mcp`), for
tests/all/mcp_serve.rs.

Usage: serve_client.py SCENARIO_JSON, where the scenario is
  {"stdio": [COMMAND, ARG...], "cwd": DIR}   (start the server, talk over its stdin/stdout)
  or {"http": URL}                            (Streamable HTTP)
  plus "elicit": null | "accept" | "decline" | "no"  (no callback: the client declares no
  elicitation capability; "no": accepts the form with approve = false)
  and "steps": [{"list": true} | {"call": NAME, "args": {...}}], where a call with
  "cancel_when": FILE is cancelled (`notifications/cancelled`) once FILE exists in the current
  directory, and reports {"isError": true, "text": "cancelled by the client"}.
Prints one JSON object on stdout: {"protocol", "server", "tools": [{name, readOnlyHint,
inputSchema, outputSchema}], "results": [{"isError", "text", "structured", "progress":
["DONE/TOTAL MESSAGE"...]}], "elicitations": [message...]}. The SDK checks a structured result
against the tool's output schema itself. The server's environment is this process's.
"""

import asyncio
import json
import os
import sys

import anyio

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


async def session_steps(read, write, scenario, out):
    elicit = scenario.get("elicit")
    callback = None
    if elicit is not None:

        async def callback(context, params):
            out["elicitations"].append(params.message)
            if elicit == "accept":
                return types.ElicitResult(action="accept", content={"approve": True})
            if elicit == "no":
                return types.ElicitResult(action="accept", content={"approve": False})
            return types.ElicitResult(action="decline")

    async with ClientSession(read, write, elicitation_callback=callback) as session:
        init = await session.initialize()
        out["protocol"] = init.protocolVersion
        out["server"] = init.serverInfo.name
        for step in scenario["steps"]:
            if step.get("list"):
                listed = await session.list_tools()
                out["tools"] = [
                    {
                        "name": t.name,
                        "readOnlyHint": t.annotations.readOnlyHint if t.annotations else None,
                        "inputSchema": t.inputSchema,
                        "outputSchema": t.outputSchema,
                    }
                    for t in listed.tools
                ]
            elif "cancel_when" in step:
                await cancelled_call(session, step)
                out["results"].append({"isError": True, "text": "cancelled by the client"})
            else:
                progress = []

                async def on_progress(done, total, message):
                    progress.append(f"{done:g}/{total:g} {message}")

                result = await session.call_tool(
                    step["call"], step.get("args", {}), progress_callback=on_progress
                )
                text = "".join(c.text for c in result.content if c.type == "text")
                out["results"].append(
                    {
                        "isError": bool(result.isError),
                        "text": text,
                        "structured": result.structuredContent,
                        "progress": progress,
                    }
                )


async def cancelled_call(session, step):
    # The id the SDK gives the next request (it counts from 0).
    request_id = session._request_id
    async with anyio.create_task_group() as tg:

        async def call():
            await session.call_tool(step["call"], step.get("args", {}))

        tg.start_soon(call)
        marker = os.path.join(os.getcwd(), step["cancel_when"])
        with anyio.fail_after(120):
            while not os.path.exists(marker):
                await anyio.sleep(0.05)
        await session.send_notification(
            types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=request_id, reason="test")
                )
            )
        )
        tg.cancel_scope.cancel()


async def main():
    scenario = json.loads(sys.argv[1])
    out = {"tools": None, "results": [], "elicitations": []}
    if "stdio" in scenario:
        command, *args = scenario["stdio"]
        params = StdioServerParameters(
            command=command, args=args, env=dict(os.environ), cwd=scenario.get("cwd")
        )
        async with stdio_client(params) as (read, write):
            await session_steps(read, write, scenario, out)
    else:
        async with streamable_http_client(scenario["http"]) as (read, write, _):
            await session_steps(read, write, scenario, out)
    print(json.dumps(out))


asyncio.run(main())

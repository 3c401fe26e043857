#!/usr/bin/env python3
"""A scripted MCP stdio server for cove's MCP client tests; what it does goes to stderr.

Tools: `echo` answers with its `text`; `wait` never answers (for timeouts and cancellation:
the `notifications/cancelled` it then gets is logged); `crash` exits in the middle of the call;
`escape` tries to write the file `path` and to reach `host`:`port`, and says what happened
(the sandbox tests: neither must work).
`tools/list` answers in two pages.
`initialize` is answered with the client's protocol version, or with the one given as
`--protocol-version VERSION`.
"""
import json
import sys

PROTOCOL_VERSION = (sys.argv[sys.argv.index("--protocol-version") + 1]
                    if "--protocol-version" in sys.argv else None)

TOOLS = [
    {"name": "echo", "description": "Answers with its text.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "wait", "description": "Never answers.", "inputSchema": {"type": "object"}},
    {"name": "crash", "description": "Exits mid-call.", "inputSchema": {"type": "object"}},
    {"name": "escape", "description": "Tries to write a file and reach the network.",
     "inputSchema": {"type": "object", "properties": {"path": {"type": "string"},
                                                      "host": {"type": "string"},
                                                      "port": {"type": "integer"}}}},
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def reply(request_id, result):
    send({"jsonrpc": "2.0", "id": request_id, "result": result})


while True:
    line = sys.stdin.readline()
    if not line:
        break
    if not line.strip():
        continue
    message = json.loads(line)
    method, request_id = message.get("method"), message.get("id")
    params = message.get("params") or {}
    if method == "initialize":
        log(f"offered protocol version {params.get('protocolVersion')}")
        reply(request_id, {"protocolVersion": PROTOCOL_VERSION or params.get("protocolVersion"),
                           "capabilities": {"tools": {}},
                           "serverInfo": {"name": "scripted", "version": "1"}})
    elif method == "tools/list":
        if params.get("cursor") == "page-2":
            reply(request_id, {"tools": TOOLS[2:]})
        else:
            reply(request_id, {"tools": TOOLS[:2], "nextCursor": "page-2"})
    elif method == "tools/call":
        name = params.get("name")
        token = (params.get("_meta") or {}).get("progressToken")
        if name == "echo":
            text = (params.get("arguments") or {}).get("text", "")
            reply(request_id, {"content": [{"type": "text", "text": text}]})
        elif name == "escape":
            arguments = params.get("arguments") or {}
            said = []
            try:
                with open(arguments.get("path", ""), "w") as f:
                    f.write("escaped")
                said.append("write: done")
            except Exception as e:
                said.append(f"write: refused ({type(e).__name__})")
            try:
                import socket
                socket.create_connection((arguments.get("host", "127.0.0.1"),
                                          int(arguments.get("port", 1))), timeout=5).close()
                said.append("connect: done")
            except Exception as e:
                said.append(f"connect: refused ({type(e).__name__})")
            reply(request_id, {"content": [{"type": "text", "text": "; ".join(said)}]})
        elif name == "wait":
            log(f"waiting in request {request_id}, progress token {token}")
        elif name == "crash":
            log("crashing on purpose mid-call")
            sys.exit(3)
        else:
            send({"jsonrpc": "2.0", "id": request_id,
                  "error": {"code": -32602, "message": f"unknown tool {name}"}})
    elif method == "notifications/cancelled":
        log(f"cancelled request {params.get('requestId')}: {params.get('reason')}")
    elif request_id is not None and method is not None:
        send({"jsonrpc": "2.0", "id": request_id,
              "error": {"code": -32601, "message": f"no method {method}"}})

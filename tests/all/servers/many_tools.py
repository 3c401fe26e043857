#!/usr/bin/env python3
"""An MCP stdio server with many tools (argv[1], default 100), each with a description and a
schema of four properties, as a large real server's would be: for the bench of what they cost
the prompt, offered eagerly or through `tool_search`. Every call answers `ok NAME`.
"""
import json
import sys

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 100
AREAS = ["issues", "pulls", "repos", "files", "branches", "releases", "actions", "users",
         "teams", "gists"]
VERBS = ["list", "get", "create", "update", "delete", "search", "close", "merge", "comment",
         "label"]
TOOLS = [
    {
        "name": f"{VERBS[i % 10]}_{AREAS[(i // 10) % 10]}_{i}",
        "description": f"{VERBS[i % 10].capitalize()} {AREAS[(i // 10) % 10]} of a repository. "
                       "Returns the matching items as JSON, newest first, paginated.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "owner": {"type": "string", "description": "Repository owner (user or org)"},
                "repo": {"type": "string", "description": "Repository name"},
                "query": {"type": "string", "description": "Filter, in the search syntax"},
                "page": {"type": "integer", "minimum": 1, "description": "Page number"},
            },
            "required": ["owner", "repo"],
        },
    }
    for i in range(COUNT)
]

for line in sys.stdin:
    if not line.strip():
        continue
    message = json.loads(line)
    method, request_id = message.get("method"), message.get("id")
    params = message.get("params") or {}
    result = None
    if method == "initialize":
        result = {"protocolVersion": params.get("protocolVersion"),
                  "capabilities": {"tools": {}},
                  "serverInfo": {"name": "many-tools", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": f"ok {params.get('name')}"}]}
    elif request_id is not None:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id,
                                     "error": {"code": -32601, "message": "no such method"}}) + "\n")
        sys.stdout.flush()
        continue
    if request_id is not None and result is not None:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
        sys.stdout.flush()

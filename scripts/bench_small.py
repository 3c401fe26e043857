#!/usr/bin/env python3
"""Small local models fixing small bugs: the figures in docs/PERFORMANCE.md ("Small local models").

Run by scripts/bench-small.sh, which starts llama-server. For each task (a one-line bug in calc.py,
with a unittest file) and run: a fresh git repository, `cove run` against the server (through a
recording proxy), then the tests. Success: the tests pass and the test file is untouched.
Not in CI: a run takes tens of seconds on two cores.
"""

import argparse
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

# Without it, `python3 test_calc.py` (what the 1.5B ran) prints nothing and looks like a pass.
MAIN = "\n\nif __name__ == \"__main__\":\n    unittest.main()\n"
TASKS = {
    "wrong operator": (
        "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n",
        "import unittest\nfrom calc import add, mul\n\n\nclass T(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
        "    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n" + MAIN,
    ),
    "off-by-one": (
        "def count_up(n):\n    \"\"\"The numbers 1 to n, n included.\"\"\"\n    return list(range(1, n))\n",
        "import unittest\nfrom calc import count_up\n\n\nclass T(unittest.TestCase):\n"
        "    def test_count_up(self):\n        self.assertEqual(count_up(3), [1, 2, 3])\n" + MAIN,
    ),
    "wrong constant": (
        "SECONDS_PER_HOUR = 360\n\n\ndef hours_to_seconds(h):\n    return h * SECONDS_PER_HOUR\n",
        "import unittest\nfrom calc import hours_to_seconds\n\n\nclass T(unittest.TestCase):\n"
        "    def test_two_hours(self):\n        self.assertEqual(hours_to_seconds(2), 7200)\n" + MAIN,
    ),
}
PROMPT = "The tests in test_calc.py fail. Find the bug in calc.py and fix it."


class Recorder(http.server.BaseHTTPRequestHandler):
    """Forwards to the model server and keeps every request and its raw reply."""

    upstream = ""
    log: list = []
    models = "{}"

    def _forward(self, method):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else None
        req = urllib.request.Request(self.upstream + self.path, data=body, method=method)
        for k in ("content-type", "authorization"):
            if self.headers.get(k):
                req.add_header(k, self.headers[k])
        try:
            resp = urllib.request.urlopen(req, timeout=900)
            status, data = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        self.send_response(status)
        self.send_header("content-type", "text/event-stream" if b"data:" in data[:10] else "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if method == "POST":
            Recorder.log.append({"path": self.path, "request": json.loads(body or b"{}"), "status": status,
                                 "reply": data.decode("utf-8", "replace")})
        elif self.path.endswith("/models"):
            Recorder.models = data.decode("utf-8", "replace")

    def do_POST(self):
        self._forward("POST")

    def do_GET(self):
        self._forward("GET")

    def log_message(self, *_):
        pass


def run_once(cove, url, task, temperature, profile_args, record_dir, tag, endpoint="openai"):
    src, tests = TASKS[task]
    d = pathlib.Path(tempfile.mkdtemp(prefix="cove-bench-"))
    (d / "calc.py").write_text(src)
    (d / "test_calc.py").write_text(tests)
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    subprocess.run(["git", "add", "."], cwd=d, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "task"], cwd=d, check=True)
    test_hash = hashlib.sha256(tests.encode()).hexdigest()
    env = dict(os.environ, COVE_MODEL="qwen", COVE_DATA_DIR=str(d / ".data"))
    if endpoint == "anthropic":
        # llama-server's Messages API (`/v1/messages`): the base URL has no `/v1`.
        env["ANTHROPIC_BASE_URL"] = url.removesuffix("/v1")
    else:
        env["OPENAI_BASE_URL"] = url
    args = [cove, "run", "--output-format", "stream-json", "--policy", "trusted", "--max-turns", "15"]
    if temperature is not None:
        args += ["--temperature", str(temperature)]
    args += profile_args + [PROMPT]
    Recorder.log = []
    started = time.monotonic()
    p = subprocess.run(args, cwd=d, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - started
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    usage = [e for e in events if e.get("type") == "usage"]
    end = next((e for e in events if e.get("type") == "end"), {})
    first = usage[0]["turn"] if usage else {}
    first_tokens = first.get("input_tokens", 0) + first.get("cache_read_tokens", 0)
    ok = subprocess.run(["python3", "-m", "unittest", "-q"], cwd=d, capture_output=True).returncode == 0
    untouched = hashlib.sha256((d / "test_calc.py").read_bytes()).hexdigest() == test_hash
    if record_dir:
        record_dir.mkdir(parents=True, exist_ok=True)
        (record_dir / f"{tag}.json").write_text(json.dumps(Recorder.log, indent=1))
        # The same run as a fixture for tests/all/small.rs: replayed, it must end the same way.
        fixture = {"model": tag, "endpoint": endpoint, "files": {"calc.py": src, "test_calc.py": tests}, "prompt": PROMPT,
                   "models": Recorder.models, "replies": [r["reply"] for r in Recorder.log],
                   "outcome": end.get("outcome"), "expect": {"calc.py": (d / "calc.py").read_text()}}
        (record_dir / f"{tag}.fixture.json").write_text(json.dumps(fixture, indent=1))
    shutil.rmtree(d, ignore_errors=True)
    return {"ok": ok and untouched, "requests": len(usage), "first_tokens": first_tokens, "wall": wall,
            "outcome": end.get("outcome", f"exit {p.returncode}")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="the model server's base URL, e.g. http://127.0.0.1:8090")
    ap.add_argument("--cove", required=True)
    ap.add_argument("--model", required=True, help="label for the table")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--temperatures", default="0,0.8", help="0.8 is llama.cpp's default")
    ap.add_argument("--record", help="directory for the raw requests and replies of each run")
    ap.add_argument("--endpoint", default="openai", choices=["openai", "anthropic"],
                    help="the server's OpenAI-compatible API (constrained) or its Messages API")
    ap.add_argument("--out", required=True, help="file the table rows are appended to")
    a = ap.parse_args()
    if os.sep in a.cove:
        a.cove = os.path.abspath(a.cove)  # each run starts in its own directory
    Recorder.upstream = a.server.rstrip("/")
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}/v1"
    rows = []
    for temp in a.temperatures.split(","):
        temperature = float(temp)
        for task in TASKS:
            results = []
            for i in range(a.runs):
                tag = f"{a.model}-{a.endpoint}-{task.replace(' ', '-')}-t{temp}-{i}"
                r = run_once(a.cove, url, task, temperature, [], pathlib.Path(a.record) if a.record else None, tag,
                             a.endpoint)
                print(tag, r, flush=True)
                results.append(r)
            ok = sum(r["ok"] for r in results)
            rows.append(
                f"| {a.model} | {a.endpoint} | {task} | {temp} | {ok}/{len(results)} | "
                f"{statistics.median(r['requests'] for r in results):.0f} | "
                f"{statistics.median(r['first_tokens'] for r in results):.0f} | "
                f"{statistics.median(r['wall'] for r in results):.0f} s | "
                f"{', '.join(sorted(set(r['outcome'] for r in results)))} |"
            )
    with open(a.out, "a") as f:
        f.write("\n".join(rows) + "\n")
    proxy.shutdown()


if __name__ == "__main__":
    main()

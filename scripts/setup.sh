#!/usr/bin/env bash
# Install what cove needs and is missing on this machine: the wasm32-wasip2 Rust target (the
# plugins are WebAssembly components), ripgrep (the tests compare grep/glob with it), git, and
# redis-server (the tests of teammates on Redis).
# Safe to run again: it only installs what is not there.
set -euo pipefail

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cove needs a Rust toolchain (cargo); install it with rustup: https://rustup.rs" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    say "Installing the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
  fi
fi

# componentize-py builds the example third-party policy (Python) the tests load.
if ! command -v componentize-py >/dev/null 2>&1; then
  say "Installing componentize-py"
  python3 -m pip install -q "componentize-py==0.25.1"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

missing=()
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
command -v git >/dev/null 2>&1 || missing+=(git)
# The sandbox tests try to reach the network with these, and to find leftover processes.
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
# The MCP tests install and run the reference servers (npm and PyPI packages).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The teammates' tests run real Redis servers (redis-cli comes with it, from redis-tools).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  say "Installing ${missing[*]}"
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "please install: ${missing[*]}" >&2
    exit 1
  fi
fi

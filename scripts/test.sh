#!/usr/bin/env bash
# Set up (if needed) and run the test suite offline. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HF_HOME=$(mktemp -d -t humocon-hf-home-XXXXXX)
trap 'rm -rf "$HF_HOME"' EXIT
python -m pytest -q "$@"

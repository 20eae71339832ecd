#!/usr/bin/env bash
# Set up (if needed) and run the main job: `humocon demo` on the embedded defaults, offline.
# Extra arguments go to `humocon demo` (see `humocon demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec humocon demo "$@"

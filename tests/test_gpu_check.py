"""`benchmarks/gpu_check.py --dry-run`: the GPU check's code paths at tiny shapes on the CPU, so the script a lent GPU
machine runs once is known to work before the machine is spent on it."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_dry_run_prints_every_section():
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--device", "cpu"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "FAILED" not in out
    assert re.search(r"\[generate\] batch 2 x \d+ prompt tokens, 4 new tokens each: [\d,]+ generated tokens/s", out)
    assert re.search(r"\[lora\] .*LoRA r=8 .*: \d+ ms/step, [\d,]+ tokens/s, [\d.]+ TFLOPS achieved, MFU n/a", out)
    assert re.search(r"\[stage1\]\s+small .*full/rec ratio [\d.]+", out)
    assert "[demo]" not in out  # the dry run never starts the demo


def test_gpu_check_reports_mfu_against_a_given_peak():
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--device", "cpu", "--sections", "lora",
                           "--peak-tflops", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"MFU [\d.]+% of 1 \(6N convention: [\d.]+%\)", done.stdout)

"""kill -9 in the middle of each training stage, then the same command again: the final weights are those of a run
that was never interrupted.

Each stage command runs in a subprocess (the point is a real SIGKILL: no Python clean-up, no `finally`), with a
tiny LLM and a few dozen steps per stage. The process is killed as soon as the stage has written its first whole
checkpoint (`trainer_state.json` present), so the re-run must resume from it: weights, optimizer, scheduler, RNG
state and data order. Tolerance: 1e-6 absolute on float32 weights (resuming restores the same states, but the
optimizer's first step after a reload may round differently in the last bit on some CPUs).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_STAGES = {  # stage -> where its Trainer checkpoints go, relative to the output folder
    "pretrain": Path("stages") / "pretrain" / "phase1",
    "translate": Path("stages") / "translate" / "checkpoints",
    "tune": Path("stages") / "tune" / "checkpoints",
}


def _command(out: Path, llm_dir: Path, stage: str) -> list[str]:
    overrides = {
        "model.llm_name_or_path": str(llm_dir), "model.codebook_size": 16, "data.num_train_motions": 6, "data.extra_train_motions": 0,
        "data.num_validation_motions": 2, "data.num_test_motions": 2, "data.vocabulary_clips_per_kind": 0, "data.questions_per_motion": 2,
        "data.max_frames": 64, "data.mirror_train": "false",
        "pretrain.phase1_max_steps": 40, "pretrain.phase2_max_steps": 0, "pretrain.per_device_train_batch_size": 4,
        "pretrain.save_steps": 4, "pretrain.save_total_limit": 2, "pretrain.logging_steps": 4,
        "translate.max_steps": 30, "translate.per_device_train_batch_size": 2, "translate.bf16": "false",
        "translate.save_steps": 4, "translate.logging_steps": 4,
        "tune.max_steps": 30, "tune.per_device_train_batch_size": 2, "tune.bf16": "false", "tune.save_steps": 4,
        "tune.logging_steps": 4,
    }
    cmd = [sys.executable, "-m", "humocon_hf.cli", stage, "--output-dir", str(out), "--no-cmu"]
    for key, value in overrides.items():
        cmd += ["--override", f"{key}={value}"]
    return cmd


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _run(cmd):
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def _kill_after_first_checkpoint(cmd, checkpoints: Path) -> None:
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if any(checkpoints.glob("checkpoint-*/trainer_state.json")):
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                return
            if proc.poll() is not None:
                pytest.fail(f"the stage ended (rc {proc.returncode}) before its first checkpoint: {proc.stderr.read()[-2000:]}")
            time.sleep(0.02)
        pytest.fail("no checkpoint appeared within 10 minutes")
    finally:
        if proc.poll() is None:
            proc.kill()


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(folder.rglob("model.safetensors"))
    assert files, folder
    return load_file(str(files[0]))


def test_sigkill_in_each_training_stage_then_rerun_gives_the_uninterrupted_weights(tmp_path, smollm2_tokenizer_dir):
    import torch
    from humocon_tiny import make_tiny_llm_dir

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(_command(straight, llm_dir, "tune"))

    for stage, checkpoints in _STAGES.items():
        # Kill the first attempt at this stage as soon as it has a whole checkpoint, then finish the stage.
        _kill_after_first_checkpoint(_command(killed, llm_dir, stage), killed / checkpoints)
        assert not (killed / "stages" / stage / "stage.json").exists()  # the stage is unfinished
        _run(_command(killed, llm_dir, stage))

    finals = {"pretrain": Path("stages") / "pretrain" / "phase1" / "final",
              "translate": Path("stages") / "translate" / "model", "tune": Path("stages") / "tune" / "model"}
    for stage, folder in finals.items():
        a, b = _weights(straight / folder), _weights(killed / folder)
        assert a.keys() == b.keys(), stage
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=f"{stage}: {key}")

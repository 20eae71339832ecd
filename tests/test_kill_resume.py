"""kill -9 in the middle of each training stage, then the same command again: the re-run resumes from the last whole
checkpoint, and the final weights are those of a run that was never interrupted.

Each stage command runs in a subprocess (the point is a real SIGKILL: no Python clean-up, no `finally`), with a
tiny LLM and a few dozen steps per stage. A process is killed as soon as the stage has written its first whole
checkpoint (`trainer_state.json` present). Equal weights alone would not show a resume (a restart from step 0 gives
them too, by determinism), so each re-run must also say that its Trainer started from the step of the last checkpoint
the kill left, and run only the steps after it (`resumed_from_step` / `steps_this_run` in `stage.json`). Covered:
stage 1's two phases, stages 2 and 3, and the text-only baseline killed in its side process (with the main process,
which must take the side process with it); the LLM stages train under bf16 autocast. Tolerance: 1e-6 absolute on
float32 weights (resuming restores the same states, but the optimizer's first step after a reload may round
differently in the last bit on some CPUs).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STEPS = {"phase1": 40, "phase2": 20, "translate": 30, "tune": 30, "baseline": 30}
CHECKPOINTS = {  # where each Trainer's checkpoints go, relative to the output folder
    "phase1": Path("stages") / "pretrain" / "phase1",
    "phase2": Path("stages") / "pretrain" / "phase2",
    "translate": Path("stages") / "translate" / "checkpoints",
    "tune": Path("stages") / "tune" / "checkpoints",
    "baseline": Path("stages") / "baseline" / "checkpoints",
}
FINALS = {
    "phase1": Path("stages") / "pretrain" / "phase1" / "final",
    "phase2": Path("stages") / "pretrain" / "phase2" / "final",
    "translate": Path("stages") / "translate" / "model",
    "tune": Path("stages") / "tune" / "model",
    "baseline": Path("stages") / "baseline" / "model",
}
# `humocon` with the side process: it trains the baseline beside stage 3 where torch has two threads to split. The
# test keeps one thread (a shared machine) and only makes the pipeline believe it has two.
_WITH_SIDE = "import sys, torch; torch.get_num_threads = lambda: 2; from humocon_hf.cli import main; sys.exit(main())"


def _command(out: Path, llm_dir: Path, stage: str, side: bool = False) -> list[str]:
    # The LLM stages train under bf16 autocast on any CPU (use_cpu: CPU autocast even without native bf16).
    llm = {"bf16": "true", "use_cpu": "true", "per_device_train_batch_size": 2, "save_steps": 4, "logging_steps": 4}
    overrides = {
        "model.llm_name_or_path": str(llm_dir), "model.codebook_size": 16, "data.num_train_motions": 6,
        "data.extra_train_motions": 0, "data.num_validation_motions": 2, "data.num_test_motions": 2,
        "data.questions_per_motion": 2, "data.vocabulary_clips_per_kind": 0, "data.real_sequences": 0, "data.max_frames": 64, "data.mirror_train": "false",
        "pretrain.phase1_max_steps": STEPS["phase1"], "pretrain.phase2_max_steps": STEPS["phase2"],
        "pretrain.use_video": "false", "pretrain.per_device_train_batch_size": 4, "pretrain.save_steps": 4,
        "pretrain.save_total_limit": 2, "pretrain.logging_steps": 4,
        "translate.max_steps": STEPS["translate"], **{f"translate.{k}": v for k, v in llm.items()},
        "tune.max_steps": STEPS["tune"], **{f"tune.{k}": v for k, v in llm.items()},
        "evaluate.baseline": "text_only", "evaluate.baseline_max_steps": STEPS["baseline"], "evaluate.max_samples": 2, "evaluate.batch_size": 2,
        "evaluate.max_new_tokens": 2, "evaluate.num_examples": 1,
    }
    start = [sys.executable, "-c", _WITH_SIDE] if side else [sys.executable, "-m", "humocon_hf.cli"]
    cmd = [*start, stage, "--output-dir", str(out), "--no-cmu"]
    for key, value in overrides.items():
        cmd += ["--override", f"{key}={value}"]
    return cmd


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _run(cmd) -> str:
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _has_checkpoint(folder: Path) -> bool:
    return any(folder.glob("checkpoint-*/trainer_state.json"))


def _kill_when(cmd, ready, log: Path) -> str:
    """Start `cmd`, SIGKILL it as soon as `ready()`; its output so far."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=_env(), stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                return log.read_text()
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before it was killed: {log.read_text()[-2000:]}")
            time.sleep(0.02)
        pytest.fail("no checkpoint appeared within 10 minutes")
    finally:
        if proc.poll() is None:
            proc.kill()


def _last_step(out: Path, trainer: str) -> int:
    """The step of the last whole checkpoint a kill left: where the re-run must start."""
    from humocon_hf.training.checkpoints import last_complete_checkpoint

    checkpoint = last_complete_checkpoint(out / CHECKPOINTS[trainer], remove_incomplete=False)
    assert checkpoint, trainer
    step = int(checkpoint.rsplit("-", 1)[1])
    assert 0 < step < STEPS[trainer], (trainer, step)  # killed in the middle: a restart would show
    return step


def _resumed(printed: str, out: Path, trainer: str, step: int) -> None:
    """The re-run's Trainer started from `step` (its own state after loading the checkpoint), not from 0."""
    assert f"training from step {step} of {STEPS[trainer]} ({out / CHECKPOINTS[trainer]})" in printed, printed[-3000:]


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(folder.rglob("model.safetensors"))
    assert files, folder
    return load_file(str(files[0]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_in_each_training_stage_then_rerun_resumes_to_the_uninterrupted_weights(tmp_path,
                                                                                       smollm2_tokenizer_dir):
    import json

    import torch
    from humocon_tiny import make_tiny_llm_dir

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    straight, out = tmp_path / "straight", tmp_path / "killed"
    # `evaluate`: the first command that runs the baseline (one thread: after stage 3, in the main process).
    _run(_command(straight, llm_dir, "evaluate"))
    logs = tmp_path / "logs"
    logs.mkdir()

    def kill(stage: str, trainer: str, side: bool = False, also=lambda printed: True) -> str:
        """Run `stage` until `trainer` has a whole checkpoint (and `also(output so far)`), kill -9 it."""
        log = logs / f"{trainer}.log"
        return _kill_when(_command(out, llm_dir, stage, side),
                          lambda: _has_checkpoint(out / CHECKPOINTS[trainer]) and also(log.read_text()), log)

    # Each run resumes what the run before it left, and is killed in the next trainer.
    kill("pretrain", "phase1")
    step = _last_step(out, "phase1")
    _resumed(kill("pretrain", "phase2"), out, "phase1", step)
    step = _last_step(out, "phase2")
    _resumed(kill("translate", "translate"), out, "phase2", step)
    step = _last_step(out, "translate")
    printed = kill("tune", "tune")
    _resumed(printed, out, "translate", step)
    assert "LLM stages: bf16 autocast" in printed
    step = _last_step(out, "tune")

    # Stage 3 resumes in the main process while the baseline trains in the side process; kill -9 the main process
    # once both are under way: the side process must go with it (and with it, its lock on the baseline's folder).
    printed = kill("evaluate", "baseline", side=True, also=lambda printed: "training from step" in printed)
    _resumed(printed, out, "tune", step)
    side = int(re.search(r"\[baseline\] starting alongside in a second process \(pid (\d+);", printed).group(1))
    deadline = time.monotonic() + 10
    while _running(side) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(side):
        os.kill(side, signal.SIGKILL)
        pytest.fail("the side process outlived the killed main process")
    step = _last_step(out, "baseline")
    assert not (out / "stages" / "baseline" / "stage.json").exists()

    printed = _run(_command(out, llm_dir, "evaluate"))
    _resumed(printed, out, "baseline", step)
    info = json.loads((out / "stages" / "baseline" / "stage.json").read_text())["info"]
    assert (info["resumed_from_step"], info["steps_this_run"]) == (step, STEPS["baseline"] - step)
    pretrain = json.loads((out / "stages" / "pretrain" / "stage.json").read_text())["info"]
    assert pretrain["phase2"]["resumed_from_step"] > 0 and pretrain["phase1"]["skipped"]  # phase 1 ended a run before

    for trainer, folder in FINALS.items():
        a, b = _weights(straight / folder), _weights(out / folder)
        assert a.keys() == b.keys(), trainer
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=f"{trainer}: {key}")

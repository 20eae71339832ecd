"""Running each stage once, and never losing work.

`StageRunner` runs a stage unless a finished run with the same input fingerprint exists (`stage.json`, written
atomically by `humocon_hf.io_utils`); `train_resuming` resumes a Trainer from
its last complete checkpoint after a kill; `stage_lock` keeps a second run from writing a stage's folder while one
does; `seed_before_init` makes new weights independent of what ran before; the `accelerate launch` helpers
(`is_main_process`, `barrier`) decide which process writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from humocon_hf.io_utils import say, write_json_atomic

MARKER = "stage.json"
LOCK = ".lock"  # in each stage folder: `stage_lock`


def digest(text: str) -> str:
    """Short, stable digest of a stage fingerprint (what a later stage's fingerprint chains on)."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class StageBusyError(RuntimeError):
    """Another process holds the lock of the stage folder this run would write."""


@contextlib.contextmanager
def stage_lock(folder: Path):
    """Hold an exclusive advisory lock (`flock`) on `folder/.lock` while this process writes the stage, so that a second
    run on the same output folder fails at once (naming the holder's pid) instead of training a second time into the
    same checkpoints. The kernel drops the lock when the holder ends, however it ends (kill -9 included), so a lock is
    never stale; the file stays, holding the last holder's pid. Without `fcntl` (Windows) runs are not guarded."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (PEP 446)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise StageBusyError(
                f"{folder} is being written by another run (pid {holder}, lock {path}): wait for it to end or stop "
                "it; a stopped run leaves no lock, and the same command then resumes the stage") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _empty_folder(folder: Path) -> None:
    """Remove what a stage folder holds except its lock file (held by this process while the stage is redone)."""
    for child in folder.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@dataclass
class StageRecord:
    name: str
    wall_time_s: float
    reused: bool
    info: dict = field(default_factory=dict)
    # CPU seconds of this process (all threads): with other jobs on the machine, wall time / CPU time shows
    # how much of the wall time was waiting for a core.
    cpu_time_s: float | None = None
    # Ran in a second process alongside other stages (`side_process`): its wall time overlaps theirs.
    alongside: bool = False


class StageRunner:
    """Runs stages once: a finished stage leaves `stage.json` with a fingerprint of its inputs; a later run with the
    same fingerprint reuses the stage's outputs instead of recomputing them."""

    def __init__(self, root: Path, fresh: bool = False):
        self.root = root
        self.fresh = fresh
        self.records: dict[str, StageRecord] = {}

    def stage_dir(self, name: str) -> Path:
        return self.root / "stages" / name

    def finished(self, name: str, fingerprint: dict) -> dict | None:
        """The marker of a finished run of the stage with this fingerprint, else None."""
        marker = self.stage_dir(name) / MARKER
        if not marker.is_file():
            return None
        saved = json.loads(marker.read_text())
        return saved if saved.get("fingerprint") == json.dumps(fingerprint, sort_keys=True, default=str) else None

    def adopt(self, name: str, fingerprint: dict) -> bool:
        """Record a stage that another process has just finished (`side_process`); False when it left no marker
        with this fingerprint."""
        saved = self.finished(name, fingerprint)
        if saved is None:
            return False
        self.records[name] = StageRecord(name, saved["wall_time_s"], False, saved.get("info", {}),
                                         saved.get("cpu_time_s"), alongside=True)
        return True

    def run(self, name: str, fingerprint: dict, fn: Callable[[Path], dict], all_processes: bool = False) -> dict:
        """Run `fn(stage_folder)` unless a finished run with the same fingerprint exists. Under `accelerate launch`,
        training stages run on every process (the Trainer needs them all); the others on the main process while
        the rest wait; only the main process writes markers, and it holds the folder's lock (`stage_lock`) from
        the reuse check to the marker."""
        main = is_main_process()
        with stage_lock(self.stage_dir(name)) if main else contextlib.nullcontext():
            return self._run(name, fingerprint, fn, all_processes, main)

    def _run(self, name: str, fingerprint: dict, fn: Callable[[Path], dict], all_processes: bool, main: bool) -> dict:
        folder = self.stage_dir(name)
        marker = folder / MARKER
        key = json.dumps(fingerprint, sort_keys=True, default=str)
        if marker.is_file() and not self.fresh:
            saved = self.finished(name, fingerprint)
            if saved is not None:
                self.records[name] = StageRecord(name, saved["wall_time_s"], True, saved.get("info", {}),
                                                 saved.get("cpu_time_s"))
                if main:
                    say(f"[{name}] reusing the finished stage in {folder} (took {saved['wall_time_s']:.0f} s); "
                         "delete it or pass --fresh to redo it")
                return saved.get("info", {})
            if main:
                say(f"[{name}] inputs changed since the last run: redoing the stage")
                _empty_folder(folder)
        elif self.fresh and folder.exists() and main:
            _empty_folder(folder)
        barrier()
        folder.mkdir(parents=True, exist_ok=True)
        if main:
            say(f"[{name}] starting")
        start, cpu_start = time.perf_counter(), time.process_time()
        info = {}
        if all_processes or main:
            info = fn(folder) or {}
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if main:
            write_json_atomic(marker, {"fingerprint": key, "wall_time_s": elapsed, "cpu_time_s": cpu, "info": info})
            say(f"[{name}] done in {elapsed:.0f} s (CPU time {cpu:.0f} s)")
        barrier()
        if not main:
            info = json.loads(marker.read_text()).get("info", {})
        self.records[name] = StageRecord(name, elapsed, False, info, cpu)
        return info


def seed_before_init(seed: int) -> None:
    """Seed the global RNGs right before a stage initialises new weights. The Trainer seeds only when it is
    created, after the model exists; without this, the initial weights would depend on what the process did
    before (e.g. converting the GGUF LLM on a first run), and a resumed or reused pipeline would not reproduce
    a fresh one."""
    from transformers import set_seed

    set_seed(seed)


def _state():
    from accelerate import PartialState

    return PartialState()


def is_main_process() -> bool:
    """True on the main process (always, without `accelerate launch`)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return True
    return _state().is_main_process


def barrier() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _state().wait_for_everyone()


class ListDataset:
    """A plain list as a map-style data set (rows keep numpy arrays; no Arrow conversion)."""

    def __init__(self, rows: list[dict]):
        if not rows:
            raise ValueError("empty training data: the benchmark produced no rows for this stage")
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def resume_record():
    """A TrainerCallback that records, per Trainer output folder, the global step training started from (the
    Trainer's own state once it has loaded the checkpoint it resumes) and how many optimizer steps this process ran:
    the evidence, in `stage.json`, that a re-run after a kill resumed rather than trained again from step 0 (equal
    final weights alone would not tell). A resumed start is also printed."""
    from transformers import TrainerCallback

    class ResumeRecord(TrainerCallback):
        def __init__(self):
            self.runs: dict[str, dict] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.runs[str(args.output_dir)] = {"resumed_from_step": state.global_step, "steps_this_run": 0}
            if state.global_step and state.is_world_process_zero:
                say(f"  training from step {state.global_step} of {state.max_steps} ({args.output_dir})")

        def on_step_end(self, args, state, control, **kwargs):
            self.runs[str(args.output_dir)]["steps_this_run"] += 1

        def info(self, output_dir) -> dict:
            """`resumed_from_step` and `steps_this_run` of the training into `output_dir` (empty if none ran)."""
            return self.runs.get(str(output_dir), {})

    return ResumeRecord()


def train_resuming(trainer, output_dir) -> dict:
    """`trainer.train()` from the last complete checkpoint in `output_dir` (if any): its metrics, with
    `resumed_from_step` and `steps_this_run` (`resume_record`)."""
    from humocon_hf.training.checkpoints import last_complete_checkpoint

    checkpoint = last_complete_checkpoint(output_dir)  # skips a checkpoint half-written by a killed process
    if checkpoint:
        say(f"  resuming from {checkpoint}")
    record = resume_record()
    trainer.add_callback(record)
    metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
    return {**metrics, **record.info(trainer.args.output_dir)}


def train_info(trainer, metrics: dict) -> dict:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "train_runtime_s": metrics.get("train_runtime"),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "final_train_loss": metrics.get("train_loss"),
        "resumed_from_step": metrics.get("resumed_from_step"),
        "steps_this_run": metrics.get("steps_this_run"),
    }

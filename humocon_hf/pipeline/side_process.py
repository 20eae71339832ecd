"""The text-only baseline trained in a second process, alongside stage 3, one thread each.

Why: at the demo's shapes (SmolLM2-135M, batches of 8 prompts of ~60 tokens) a second core buys little inside one
training step: on the 2-core machine a stage-3 step on one thread took 1.25-1.55x the two-thread step, and two
one-thread processes side by side trained 1.26-1.5x as many samples per second as one two-thread process (two
measurements of `benchmarks/bench_stage3_step.py`'s step, [threads]). The baseline depends only on the data stage
and the LLM, so it can train while the main process runs stage 3; when it finishes, the main process takes both
threads back. It starts
after stage 2, not before: stages 1 and 2 use the second core well (stage 2 took 129 s on one thread beside the
baseline against 69 s alone on two, clean-clone demos of 2026-12-07), stage 3's small steps do not.

`python -m humocon_hf.pipeline <options.json> <stage>` (`pipeline/__main__.py`) is the second process: it runs that
one stage of the pipeline the options describe and writes the stage's `stage.json` marker as any run would. The main process
then adopts the finished stage (`StageRunner.adopt`); if the side process failed, it says so and runs the stage
itself.

The child lives only as long as the main process: a `kill -9` of the main process runs no clean-up that could stop
it, so the child ends itself (`tie_to_parent`: Linux's parent-death signal, and everywhere a thread that watches the
parent pid), and it runs in its own process group, which `SideStage.stop` ends as a whole. While it trains, it holds
its stage folder's lock (`runner.stage_lock`), so a re-run never starts a second trainer on the same checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from humocon_hf.io_utils import say, write_json_atomic

SIDE_STAGE = "baseline"
# The child's command line, before `<options.json> <stage>`.
SIDE_COMMAND = (sys.executable, "-m", "humocon_hf.pipeline")
# The main process's pid, for the child to watch (`tie_to_parent`).
PARENT_PID_ENV = "HUMOCON_SIDE_PARENT_PID"
# How often the child checks that the main process is still there, where no parent-death signal ends it first.
PARENT_POLL_S = 1.0
# The child's exit code when it ends itself because the main process is gone.
ORPHANED_EXIT = 75
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _parent_death_signal(sig: int) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies (prctl PR_SET_PDEATHSIG); False elsewhere or
    when the call fails (the watcher thread of `tie_to_parent` still ends the process)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _orphaned(parent_pid: int) -> None:
    print(f"the main process (pid {parent_pid}) is gone: stopping; the stage's checkpoints stay, and the next run "
          "resumes it", flush=True)
    os._exit(ORPHANED_EXIT)  # no clean-up: the parent is gone, nobody adopts the stage; like any kill, it resumes


def tie_to_parent(parent_pid: int, death_signal: bool = True, poll_s: float = PARENT_POLL_S) -> None:
    """End this process as soon as `parent_pid` (the process that started it) is gone, however it ended: SIGKILL
    from the kernel on Linux (`death_signal`), and on every system a daemon thread that sees the parent pid change
    (the child is re-parented). Called first thing in the child, so a parent killed before the call is caught too."""
    if death_signal:
        _parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        _orphaned(parent_pid)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                _orphaned(parent_pid)

    threading.Thread(target=watch, name="humocon-watch-parent", daemon=True).start()


class SideStage:
    """One pipeline stage running in a child process with one thread, while this process also runs on one."""

    def __init__(self, options, stage: str, stages_dir: Path, threads_after: int):
        import torch

        self.stage = stage
        self.threads_after = threads_after
        self.log_path = stages_dir / f"{stage}.side.log"
        options_path = stages_dir / f"{stage}.side.json"
        write_json_atomic(options_path, dataclasses.asdict(options))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", PARENT_PID_ENV: str(os.getpid())}
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        # Its own session and process group (POSIX): `stop` ends the group, and a Ctrl-C in the terminal reaches
        # only this process, which then stops the child.
        self.process = subprocess.Popen(
            [*SIDE_COMMAND, str(options_path), stage],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        torch.set_num_threads(1)
        say(f"[{stage}] starting alongside in a second process (pid {self.process.pid}; one thread each until it "
            f"finishes; log: {self.log_path})")

    def take_threads_back_if_done(self) -> None:
        """Called between stages and at training steps: once the child has exited, this process uses every thread
        again. Only the calling thread's setting changes, so it must run on the training thread."""
        import torch

        if self.process.poll() is not None and torch.get_num_threads() != self.threads_after:
            torch.set_num_threads(self.threads_after)

    def finish(self) -> int:
        """Wait for the child; its exit code (0: the stage's marker is written)."""
        rc = self.process.wait()
        self._log.close()
        self.take_threads_back_if_done()
        return rc

    def stop(self) -> None:
        """On an error or interrupt of the main process: end the child (its Trainer checkpoints stay, so the next
        run resumes the stage)."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        self._log.close()
        self.take_threads_back_if_done()


    def _signal_group(self, sig: int) -> None:
        """Signal the child's process group (the child and anything it started); the child alone where there are no
        process groups. Called only before the child is reaped, so its pid (= the group's id) is still its own."""
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        except ProcessLookupError:
            pass


def threads_callback(side: SideStage):
    """A TrainerCallback that hands the threads back to this process as soon as the side process has finished."""
    from transformers import TrainerCallback

    class TakeThreadsBack(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            side.take_threads_back_if_done()

    return TakeThreadsBack()


def start_alongside(pipeline, names: list[str], until: str) -> SideStage | None:
    """Start the text-only baseline in a second process where that pays: the CLI asked for it, the run goes as far as
    the baseline, the baseline is not already finished while stage 3 still has to train, and this is a single-process
    CPU run with at least two threads to split. `pipeline` is the `HuMoConPipeline` running."""
    import torch

    from humocon_hf.pipeline.runner import is_main_process

    if not pipeline.options.baseline_alongside or SIDE_STAGE not in names:
        return None
    if names.index(until) < names.index(SIDE_STAGE) or not is_main_process():
        return None
    threads = torch.get_num_threads()
    if threads < 2 or torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    if not pipeline.options.fresh:
        fingerprints = {name: fingerprint for name, fingerprint, _, _ in pipeline.stage_plan()}
        if pipeline.runner.finished(SIDE_STAGE, fingerprints[SIDE_STAGE]()) is not None:
            return None  # reused by the main process
        if pipeline.runner.finished("tune", fingerprints["tune"]()) is not None:
            return None  # stage 3 is reused: nothing to train alongside, the baseline gets every thread there
    options = dataclasses.replace(pipeline.options, output_dir=str(pipeline.root))
    return SideStage(options, SIDE_STAGE, pipeline.root / "stages", threads_after=threads)


def adopt(runner, side: SideStage, name: str, fingerprint: dict, fn, everywhere: bool) -> None:
    """Wait for the side process and record its finished stage in `runner`; where it failed, run the stage here."""
    rc = side.finish()
    if rc == 0 and runner.adopt(name, fingerprint):
        record = runner.records[name]
        say(f"[{name}] done alongside stage 3 in {record.wall_time_s:.0f} s (CPU time "
            f"{record.cpu_time_s or 0:.0f} s; log: {side.log_path})")
        return
    say(f"[{name}] the second process failed (exit code {rc}; log: {side.log_path}): running the stage here")
    runner.run(name, fingerprint, fn, all_processes=everywhere)

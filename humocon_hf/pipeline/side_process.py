"""The text-only baseline trained in a second process, alongside stage 3, one thread each.

Why: at the demo's shapes (SmolLM2-135M, batches of 8 prompts of ~60 tokens) a second core buys little inside one
training step: on the 2-core machine a stage-3 step on one thread took 1.25-1.55x the two-thread step, and two
one-thread processes side by side trained 1.26-1.5x as many samples per second as one two-thread process (two
measurements of `benchmarks/bench_stage3_step.py`'s step, [threads]). The baseline depends only on the data stage
and the LLM, so it can train while the main process runs stage 3; when it finishes, the main process takes both
threads back. It starts
after stage 2, not before: stages 1 and 2 use the second core well (stage 2 took 129 s on one thread beside the
baseline against 69 s alone on two, clean-clone demos of 2026-12-07), stage 3's small steps do not.

`python -m humocon_hf.pipeline.side_process <options.json> <stage>` is the second process: it runs that one stage
of the pipeline the options describe and writes the stage's `stage.json` marker as any run would. The main process
then adopts the finished stage (`StageRunner.adopt`); if the side process failed, it says so and runs the stage
itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from humocon_hf.pipeline.runner import say, write_json_atomic

SIDE_STAGE = "baseline"
# The child's command line, before `<options.json> <stage>`.
SIDE_COMMAND = (sys.executable, "-m", "humocon_hf.pipeline.side_process")


class SideStage:
    """One pipeline stage running in a child process with one thread, while this process also runs on one."""

    def __init__(self, options, stage: str, stages_dir: Path, threads_after: int):
        import torch

        self.stage = stage
        self.threads_after = threads_after
        self.log_path = stages_dir / f"{stage}.side.log"
        options_path = stages_dir / f"{stage}.side.json"
        write_json_atomic(options_path, dataclasses.asdict(options))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(
            [*SIDE_COMMAND, str(options_path), stage],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
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
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.take_threads_back_if_done()


def threads_callback(side: SideStage):
    """A TrainerCallback that hands the threads back to this process as soon as the side process has finished."""
    from transformers import TrainerCallback

    class TakeThreadsBack(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            side.take_threads_back_if_done()

    return TakeThreadsBack()


def main(argv: list[str] | None = None) -> int:
    import torch

    from humocon_hf.auto import register_auto_classes
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m humocon_hf.pipeline.side_process <options.json> <stage>", file=sys.stderr)
        return 2
    options_path, stage = argv
    torch.set_num_threads(1)
    register_auto_classes()
    options = PipelineOptions(**json.loads(Path(options_path).read_text()))
    HuMoConPipeline(options).run_single_stage(stage)
    return 0


if __name__ == "__main__":
    sys.exit(main())

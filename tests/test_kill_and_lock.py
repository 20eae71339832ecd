"""A kill -9 of the main process ends the side process (issue 29), and a stage folder that one process writes is locked
against a second run. Real processes throughout: the point is what survives a SIGKILL, which no `finally` sees."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from humocon_hf.cli import main
from humocon_hf.pipeline.runner import LOCK, MARKER, StageBusyError, StageRunner

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; flock and prctl are Linux's")

# The main process: starts the side process through the real launch code (`SideStage`, which prints its pid), waits.
_PARENT = """
import sys, time
from pathlib import Path
from humocon_hf.pipeline import side_process
from humocon_hf.pipeline.stages import PipelineOptions

side_process.SIDE_COMMAND = (sys.executable, "-c", sys.argv[2])
out = Path(sys.argv[1])
side_process.SideStage(PipelineOptions(output_dir=str(out)), "baseline", out / "stages", threads_after=1)
time.sleep(600)
"""

# The side process: the real child entry point (`python -m humocon_hf.pipeline`, which ties itself to the parent) with a
# stage that only waits.
_CHILD = """
import sys, time
from humocon_hf.pipeline import side_process, stages
from humocon_hf.pipeline.__main__ import main

if {poll_only}:
    side_process._parent_death_signal = lambda sig: False  # the portable fallback alone: the watcher thread
stages.HuMoConPipeline.run_single_stage = lambda self, name: (print("training", flush=True), time.sleep(600))
main([sys.argv[1], "baseline"])
"""


def _running(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


@pytest.mark.parametrize("poll_only", [False, True], ids=["parent-death-signal", "watcher-thread"])
def test_the_side_process_ends_with_a_killed_main_process(tmp_path, poll_only):
    """kill -9 of the main process: the side process is gone within seconds (the kernel's parent-death signal; or,
    with that signal off, the child's watcher thread), in its own process group until then."""
    out = tmp_path / "out"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(out), _CHILD.format(poll_only=poll_only)],
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(re.search(r"second process \(pid (\d+);", parent.stdout.readline()).group(1))
        log = out / "stages" / "baseline.side.log"
        _wait_for(lambda: "training" in log.read_text(), 120, "the side process did not start its stage")
        groups = os.getpgid(child), os.getpgid(parent.pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        _wait_for(lambda: not _running(child), 5, "the side process outlived the killed main process")
        assert groups[0] == child != groups[1]  # it ran in its own process group, which `SideStage.stop` ends
        if poll_only:
            assert f"the main process (pid {parent.pid}) is gone" in log.read_text()
    finally:
        parent.kill()
        parent.wait()
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)


_HOLD = """
import sys, time
from pathlib import Path
from humocon_hf.pipeline.runner import stage_lock

with stage_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_stage_folder_being_written_refuses_a_second_run_until_its_writer_dies(tmp_path):
    runner = StageRunner(tmp_path)
    folder = runner.stage_dir("tune")
    holder = _hold(folder)
    ran = []
    try:
        with pytest.raises(StageBusyError, match=rf"{folder} is being written by another run \(pid {holder.pid}"):
            runner.run("tune", {"steps": 1}, lambda f: ran.append(f) or {})
        assert not ran and not (folder / MARKER).exists()
        # A second process of this same run (the side process) is refused alike: the lock is per process.
    finally:
        holder.send_signal(signal.SIGKILL)  # the lock dies with its holder: nothing stale is left
        holder.wait()
    assert runner.run("tune", {"steps": 1}, lambda f: {"ran": str(f)}) == {"ran": str(folder)}
    assert (folder / MARKER).is_file() and (folder / LOCK).read_text() == f"{os.getpid()}\n"

    # Redone (new inputs, or --fresh): the folder is emptied but for the lock file, which stays locked meanwhile.
    (folder / "checkpoints").mkdir()
    runner.run("tune", {"steps": 2}, lambda f: {"files": sorted(p.name for p in f.iterdir())})
    assert runner.records["tune"].info == {"files": [LOCK]}
    StageRunner(tmp_path, fresh=True).run("tune", {"steps": 2}, lambda f: {"files": sorted(p.name for p in f.iterdir())})
    assert sorted(p.name for p in folder.iterdir()) == [LOCK, MARKER]


def test_the_cli_names_the_locked_folder_and_its_holder(tmp_path, capsys):
    out = tmp_path / "out"
    holder = _hold(out / "stages" / "data")
    try:
        assert main(["pretrain", "--output-dir", str(out), "--no-cmu"]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("humocon pretrain: error: ") and f"{out / 'stages' / 'data'} is being written" in err
    assert f"pid {holder.pid}" in err

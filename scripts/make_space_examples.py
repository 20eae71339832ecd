"""Cut the Space's example clips (app/examples/*.bvh) from CMU trials in ../shared/data/cmu_bvh.

Each example is a verbatim excerpt of one trial: the same header, the calibration T-pose (frame 0) left out, then
every STEP-th frame of the first MAX_SECONDS (120 fps -> 40 fps), with the header's frame count and frame time
set to match. CMU motion capture data is free for research and commercial use (cite mocap.cs.cmu.edu; see
app/examples/README.md). Re-run after changing the list:

    python scripts/make_space_examples.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (output name, CMU trial, CMU's own description of the trial)
EXAMPLES = (
    ("cmu_02_01_walk.bvh", "02_01", "walk"),
    ("cmu_09_01_run.bvh", "09_01", "run"),
    ("cmu_02_04_jump.bvh", "02_04", "jump, balance"),
)
STEP = 3
MAX_SECONDS = 4.0


def excerpt(text: str, step: int = STEP, max_seconds: float = MAX_SECONDS) -> str:
    head, motion = text.split("\nMOTION", 1)
    lines = motion.strip().splitlines()
    frame_time = float(lines[1].split(":", 1)[1])
    frames = [line for line in lines[2:] if line.strip()]
    keep = frames[1:][: int(round(max_seconds / frame_time))][::step]
    return "\n".join([head, "MOTION", f"Frames:\t{len(keep)}", f"Frame Time:\t{frame_time * step:.6f}", *keep, ""])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    args = parser.parse_args(argv)
    out = REPO / "app" / "examples"
    out.mkdir(parents=True, exist_ok=True)
    for name, trial, _ in EXAMPLES:
        source = Path(args.data) / "cmu_bvh" / f"{trial}.bvh"
        (out / name).write_text(excerpt(source.read_text()), encoding="utf-8")
        print(f"{out / name}: {(out / name).stat().st_size // 1024} KB from {source.name}")


if __name__ == "__main__":
    main()

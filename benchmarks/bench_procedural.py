"""Throughput of the built-in procedural motion-QA benchmark generator on CPU.

Measured side by side in one run:
  * motion synthesis alone (`MotionQAGenerator.generate_motion`): motions/s and the ratio of generated
    motion seconds per wall second ("x real time");
  * full records (motion + caption + questions): motions/s and samples (questions)/s;
  * the whole cached `generate_motion_qa` call (synthesis + .npy files + Arrow data set on disk), cold,
    and the warm second call that loads the cache.

    python benchmarks/bench_procedural.py [--motions 500] [--questions 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from humocon_hf.data.procedural import MotionQAGenerator, generate_motion_qa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--motions", type=int, default=500)
    ap.add_argument("--questions", type=int, default=3, help="questions per motion")
    args = ap.parse_args()
    gen = MotionQAGenerator()

    gen.generate(0, 0)  # warm-up (imports, caches)
    t0 = time.perf_counter()
    frames = 0
    for i in range(args.motions):
        joints, _ = gen.generate_motion(np.random.default_rng([1, i]))
        frames += len(joints)
    t_motion = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_q = 0
    for i in range(args.motions):
        n_q += len(gen.generate(1, i, args.questions)["questions"])
    t_record = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        dd = generate_motion_qa(num_motions=args.motions, seed=1, questions_per_motion=args.questions, cache_dir=tmp)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        generate_motion_qa(num_motions=args.motions, seed=1, questions_per_motion=args.questions, cache_dir=tmp)
        t_warm = time.perf_counter() - t0
    n_rows = sum(len(d) for d in dd.values())

    seconds = frames / gen.fps
    print(f"{args.motions} motions, {seconds:.0f} s of motion ({frames / args.motions:.0f} frames each on average at {gen.fps:g} fps)")
    print(f"motion synthesis only      : {args.motions / t_motion:8.1f} motions/s   {seconds / t_motion:8.1f} x real time")
    print(f"records (+caption, {args.questions} q)   : {args.motions / t_record:8.1f} motions/s   {n_q / t_record:8.1f} samples/s")
    print(f"generate_motion_qa, cold   : {args.motions / t_cold:8.1f} motions/s   {n_rows / t_cold:8.1f} samples/s   "
          f"{seconds / t_cold:8.1f} x real time   ({t_cold:.1f} s for {n_rows} samples)")  # fmt: skip
    print(f"generate_motion_qa, cached : {t_warm:.2f} s   ({t_cold / max(t_warm, 1e-9):.0f}x faster than cold)")


if __name__ == "__main__":
    main()

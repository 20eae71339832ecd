"""Motion reader throughput on the real CMU BVH files, as multiples of real time (CPU).

Run: python benchmarks/bench_motion_io.py [--data ../shared/data] [--repeats 3]
Prints, per rig and overall, seconds of motion read per second of wall time, and the split
between parsing the text and the rest (FK, mapping, units/axes, resampling).
"""

import argparse
import time
from collections import defaultdict
from pathlib import Path

from humocon_hf.processing.motion_io import load_bvh, parse_bvh


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    files = sorted(Path(args.data).glob("cmu_bvh*/*.bvh"))
    if not files:
        raise SystemExit(f"no BVH files under {args.data}/cmu_bvh*")
    per_rig = defaultdict(lambda: [0.0, 0.0, 0.0, 0])  # motion seconds, load seconds, parse seconds, files
    for path in files:
        best_load = best_parse = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            parse_bvh(path)
            t1 = time.perf_counter()
            clip = load_bvh(path, source_fps=120.0 if path.name == "16_01.bvh" else None)
            t2 = time.perf_counter()
            best_parse, best_load = min(best_parse, t1 - t0), min(best_load, t2 - t1)
        entry = per_rig[clip.info["rig"]]
        entry[0] += clip.duration
        entry[1] += best_load
        entry[2] += best_parse
        entry[3] += 1
    total = [sum(v[i] for v in per_rig.values()) for i in range(4)]
    print(f"{'rig':<14}{'files':>6}{'motion s':>10}{'load ms/file':>14}{'x real time':>13}{'parse share':>13}")
    for rig, (motion, load, parse, n) in sorted(per_rig.items()) + [("all", tuple(total))]:
        print(f"{rig:<14}{int(n):>6}{motion:>10.1f}{1000 * load / n:>14.1f}{motion / load:>13.0f}{parse / load:>13.0%}")


if __name__ == "__main__":
    main()

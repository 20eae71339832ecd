"""Motion reader throughput on every real BVH file in ../shared/data, as multiples of real time (CPU).

Run: python benchmarks/bench_motion_io.py [--data ../shared/data] [--repeats 3]
Prints, per rig and overall, seconds of motion read per second of wall time, the split between
parsing the text and the rest (FK, mapping, units/axes, resampling), and for the rigs that have a
table the cost of the automatic skeleton mapping measured side by side (auto / table load time).
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
    files = sorted(Path(args.data).rglob("*.bvh"))
    if not files:
        raise SystemExit(f"no BVH files under {args.data}")
    # motion seconds, load seconds, parse seconds, files, auto-mapping load seconds (table rigs)
    per_rig = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0.0])
    for path in files:
        best_load = best_parse = best_auto = float("inf")
        kwargs = {"source_fps": 120.0} if path.name == "16_01.bvh" else {}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            parse_bvh(path)
            t1 = time.perf_counter()
            clip = load_bvh(path, **kwargs)
            t2 = time.perf_counter()
            if clip.info["rig"] != "auto":
                load_bvh(path, rig="auto", **kwargs)
            t3 = time.perf_counter()
            best_parse, best_load, best_auto = min(best_parse, t1 - t0), min(best_load, t2 - t1), min(best_auto, t3 - t2)
        entry = per_rig[clip.info["rig"]]
        entry[0] += clip.duration
        entry[1] += best_load
        entry[2] += best_parse
        entry[3] += 1
        entry[4] += best_auto if clip.info["rig"] != "auto" else best_load
    total = [sum(v[i] for v in per_rig.values()) for i in range(5)]
    print(f"{'rig':<14}{'files':>6}{'motion s':>10}{'load ms/file':>14}{'x real time':>13}{'parse share':>13}"
          f"{'auto/table':>12}")
    for rig, (motion, load, parse, n, auto) in sorted(per_rig.items()) + [("all", tuple(total))]:
        ratio = "-" if rig == "auto" else f"{auto / load:.2f}"
        print(f"{rig:<14}{int(n):>6}{motion:>10.1f}{1000 * load / n:>14.1f}{motion / load:>13.0f}{parse / load:>13.0%}"
              f"{ratio:>12}")
    print("all files through the automatic mapping: "
          f"{total[0] / total[4]:.0f}x real time")


if __name__ == "__main__":
    main()

"""Video preprocessing throughput on CPU, as multiples of real time, measured side by side.

For each real clip (../shared/data/videos) and, with --long-clip, a long synthetic clip built from
one of them, it times in one run, interleaved round by round (best of --repeats):

* decode-all: reading and colour-converting every frame (what a naive loader does),
* key frames by sequential grab() / retrieve(), by CAP_PROP_POS_FRAMES seeking and by the adaptive
  "auto" mix the processor uses (decode only),
* the processor (decode_method="auto") without and with optical flow.

Throughput is seconds of video per second of wall time ("x real time"). Ratios compare methods
measured in the same run, so they hold on a loaded machine where absolute numbers do not.

    python benchmarks/bench_video_preprocessing.py [--num-frames 8] [--repeats 3] [--long-clip 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor, load_key_frames

DEFAULT_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


def _decode_all(path: str) -> int:
    cap = cv2.VideoCapture(path)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


def _info(path: str) -> tuple[int, float, int, int]:
    cap = cv2.VideoCapture(path)
    n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return n, fps, w, h


def _make_long_clip(source: str, seconds: float, folder: str) -> str:
    """Ping-pong the frames of a real clip into an MPEG-4 Part 2 file (OpenCV's writer, GOP 12)."""
    cap = cv2.VideoCapture(source)
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    h, w = frames[0].shape[:2]
    path = os.path.join(folder, "long_clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    total, forward = int(seconds * fps), True
    written = 0
    while written < total:
        for frame in frames if forward else frames[::-1]:
            writer.write(frame)
            written += 1
            if written >= total:
                break
        forward = not forward
    writer.release()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-clip", type=float, default=0.0,
                        help="also build and time a synthetic clip of this many seconds (0: off)")
    parser.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's)")
    args = parser.parse_args()

    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    paths = sorted(str(p) for p in args.videos.glob("*.mp4"))
    if not paths:
        print(f"no .mp4 clips in {args.videos}", file=sys.stderr)
        return 1
    tmp = tempfile.TemporaryDirectory(prefix="bench-video-")
    if args.long_clip > 0:
        t0 = time.perf_counter()
        paths.append(_make_long_clip(paths[0], args.long_clip, tmp.name))
        print(f"built a {args.long_clip:.0f} s synthetic clip in {time.perf_counter() - t0:.1f} s")

    proc = HuMoConVideoProcessor(num_frames=args.num_frames)
    k = args.num_frames
    methods = {
        "decode-all": lambda p: _decode_all(p),
        "key-grab": lambda p: load_key_frames(p, k, decode_method="grab"),
        "key-seek": lambda p: load_key_frames(p, k, decode_method="seek"),
        "key-auto": lambda p: load_key_frames(p, k, decode_method="auto"),
        "proc": lambda p: proc(p),
        "proc+flow": lambda p: proc(p, return_flow=True),
    }
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads, {os.cpu_count()} CPUs; "
          f"K={k} key frames, size {proc.size['height']}x{proc.size['width']}, "
          f"flow at {proc.flow_size['height']}x{proc.flow_size['width']}, best of {args.repeats}")
    header = f"{'clip':28s} {'res':>9s} {'frames':>6s} {'dur s':>6s} " + " ".join(f"{m:>11s}" for m in methods)
    print("\nthroughput in x real time (seconds of video per second of wall time)")
    print(header)
    totals = {m: 0.0 for m in methods}
    total_duration = 0.0
    real_done, real_totals = False, {}

    def _print_total(label: str, times: dict, duration: float) -> None:
        print(f"{label:28s} {'':>9s} {'':>6s} {duration:6.2f} "
              + " ".join(f"{duration / times[m]:10.1f}x" for m in methods))
    for path in paths:
        n, fps, w, h = _info(path)
        duration = n / fps
        best = {m: float("inf") for m in methods}
        for _ in range(args.repeats):
            for name, fn in methods.items():  # interleaved: every method sees the same machine load
                t0 = time.perf_counter()
                fn(path)
                best[name] = min(best[name], time.perf_counter() - t0)
        if path.startswith(tmp.name) and not real_done:  # subtotal of the real clips first
            _print_total("real clips", real_totals := dict(totals), total_duration)
            real_done = True
        for m in methods:
            totals[m] += best[m]
        total_duration += duration
        name = os.path.basename(path)[:28]
        row = f"{name:28s} {f'{w}x{h}':>9s} {n:6d} {duration:6.2f} "
        print(row + " ".join(f"{duration / best[m]:10.1f}x" for m in methods)
              + f"   time seek/grab {best['key-seek'] / best['key-grab']:.2f}"
              + f" auto/grab {best['key-auto'] / best['key-grab']:.2f}")
    _print_total("all clips", totals, total_duration)
    if real_done:
        print(f"\nreal clips only: seek / sequential-grab decode time "
              f"{real_totals['key-seek'] / real_totals['key-grab']:.2f}, auto / grab "
              f"{real_totals['key-auto'] / real_totals['key-grab']:.2f}")
    print("\nratios over all clips (same run):")
    print(f"  seek / sequential-grab decode time: {totals['key-seek'] / totals['key-grab']:.2f}")
    print(f"  auto / sequential-grab decode time: {totals['key-auto'] / totals['key-grab']:.2f}")
    print(f"  auto / seek decode time:            {totals['key-auto'] / totals['key-seek']:.2f}")
    print(f"  decode-all / key-grab decode time:  {totals['decode-all'] / totals['key-grab']:.2f}")
    print(f"  flow overhead (proc+flow / proc):    {totals['proc+flow'] / totals['proc']:.2f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Motion preprocessing and rendering throughput on CPU, as multiples of real time.

"x real time" = seconds of motion processed per second of wall time (at the extractor's 20 fps).
Measured side by side in one run:
  * feature extraction of a padded batch (vectorised) vs the same clips one call at a time;
  * BVH load (parse + forward kinematics + SMPL-22 mapping + resampling) + features, on the real CMU
    BVH files, when `motion_io` and the data are available;
  * skeleton rendering to 224x224 RGB frames, and rendering + MP4 encoding.

    python benchmarks/bench_motion_preprocessing.py [--data ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
from humocon_hf.processing.rendering import render_motion, save_preview

FPS = 20.0


def _time(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls after one warm-up call (best-of, because the CPU may be shared
    with other work and the minimum is the least disturbed measurement)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _clips(data: Path | None, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` real-motion clips of 40..196 frames (random crops of the HumanML3D sample and CMU walks)."""
    sources = []
    if data is not None and (data / "humanml3d_sample" / "new_joints_012314.npy").is_file():
        sources.append(np.load(data / "humanml3d_sample" / "new_joints_012314.npy"))
    try:
        from humocon_hf.processing.motion_io import load_motion

        if data is not None:
            for name in ("02_01.bvh", "09_01.bvh", "07_01.bvh", "13_10.bvh"):
                if (data / "cmu_bvh" / name).is_file():
                    sources.append(load_motion(data / "cmu_bvh" / name, fps=FPS).joints)
    except ImportError:
        pass
    if not sources:  # no real data: a synthetic swaying figure
        t = np.arange(196)[:, None, None] / FPS
        base = rng.normal(scale=0.3, size=(1, 22, 3)) + np.array([0, 1.0, 0])
        sources.append((base + 0.1 * np.sin(2 * np.pi * t + np.arange(22)[None, :, None])).astype(np.float32))
    long = np.concatenate(sources + sources[::-1] + sources)  # long enough to crop 196 frames from
    clips = []
    for _ in range(count):
        n = int(rng.integers(40, 197))
        start = int(rng.integers(0, len(long) - n + 1))
        clips.append(long[start : start + n])
    return clips


def main() -> None:
    default_data = Path(os.environ.get("HUMOCON_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data, help="shared real-data folder")
    parser.add_argument("--batch", type=int, default=64, help="clips per feature-extraction batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (best is kept)")
    args = parser.parse_args()
    data = args.data if args.data.is_dir() else None
    rng = np.random.default_rng(0)

    print(f"humocon-hf motion preprocessing benchmark (CPU, {os.cpu_count()} cores visible, numpy {np.__version__})")
    print(f"real data: {data if data else 'not found, using synthetic motion'}; best of {args.repeats} timed calls")

    # 1. Feature extraction: one padded batch vs one call per clip
    clips = _clips(data, args.batch, rng)
    seconds = sum(len(c) for c in clips) / FPS
    fe = MotionFeatureExtractor(fps=FPS).fit_normalization(clips)
    t_batch = _time(lambda: fe(clips, padding="longest", return_tensors="np"), args.repeats)
    t_single = _time(lambda: [fe(c, return_tensors="np") for c in clips], args.repeats)
    values = fe(clips, return_tensors="np")
    t_inverse = _time(lambda: fe.inverse_transform(values["motion_values"], values["motion_attention_mask"]), args.repeats)
    print(f"\n[features] {len(clips)} clips, {sum(len(c) for c in clips)} frames = {seconds:.1f} s of motion")
    print(f"  batched (vectorised, padded)   : {t_batch * 1e3:8.1f} ms  -> {seconds / t_batch:10.0f}x real time")
    print(f"  one call per clip              : {t_single * 1e3:8.1f} ms  -> {seconds / t_single:10.0f}x real time")
    print(f"  batched / per-clip speed ratio : {t_single / t_batch:8.2f}x")
    print(f"  inverse_transform (batched)    : {t_inverse * 1e3:8.1f} ms  -> {seconds / t_inverse:10.0f}x real time")

    # 2. BVH load + features on the real CMU files
    # 16_01.bvh is left out: its header frame time is wrong (needs a source_fps override), which would
    # miscount its duration in the end-to-end path-based measurement.
    bvh_files = sorted(p for p in (data / "cmu_bvh").glob("*.bvh") if p.name != "16_01.bvh") if data else []
    try:
        from humocon_hf.processing.motion_io import load_motion
    except ImportError as err:
        load_motion = None
        print(f"\n[bvh] skipped: motion_io not importable ({err})")
    if load_motion is not None and bvh_files:
        fe_plain = MotionFeatureExtractor(fps=FPS, max_frames=10**6)
        loaded = {}

        def load_all():
            for p in bvh_files:
                loaded[p] = load_motion(p, fps=FPS)

        t_load = _time(load_all, max(1, args.repeats - 1))
        motion_s = sum(len(c.joints) for c in loaded.values()) / FPS
        t_feat = _time(lambda: fe_plain([c.joints for c in loaded.values()], return_tensors="np"), args.repeats)
        t_end = _time(lambda: fe_plain([str(p) for p in bvh_files], return_tensors="np"), max(1, args.repeats - 1))
        print(f"\n[bvh] {len(bvh_files)} CMU BVH files, {motion_s:.1f} s of motion (120 fps sources -> {FPS:g} fps)")
        print(f"  load_motion (parse+FK+map)     : {t_load:8.3f} s   -> {motion_s / t_load:10.0f}x real time")
        print(f"  features of the loaded clips   : {t_feat:8.3f} s   -> {motion_s / t_feat:10.0f}x real time")
        print(f"  paths -> features (end to end) : {t_end:8.3f} s   -> {motion_s / t_end:10.0f}x real time")
    elif load_motion is not None:
        print("\n[bvh] skipped: no BVH files found under the data folder")

    # 3. Rendering
    clip = clips[int(np.argmax([len(c) for c in clips]))]
    clip_s = len(clip) / FPS
    t_render = _time(lambda: render_motion(clip, size=224), args.repeats)
    t_render_small = _time(lambda: render_motion(clip, size=112), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        t_mp4 = _time(lambda: save_preview(clip, Path(tmp) / "preview.mp4", fps=FPS, size=224), max(1, args.repeats - 1))
        t_gif = _time(lambda: save_preview(clip, Path(tmp) / "preview.gif", fps=FPS, size=224), max(1, args.repeats - 1))
    print(f"\n[render] one clip of {len(clip)} frames = {clip_s:.1f} s of motion")
    print(f"  render_motion 224x224          : {t_render * 1e3:8.1f} ms  -> {clip_s / t_render:10.1f}x real time "
          f"({len(clip) / t_render:.0f} frames/s)")
    print(f"  render_motion 112x112          : {t_render_small * 1e3:8.1f} ms  -> {clip_s / t_render_small:10.1f}x real time")
    print(f"  render + MP4 (mp4v) 224        : {t_mp4 * 1e3:8.1f} ms  -> {clip_s / t_mp4:10.1f}x real time")
    print(f"  render + GIF 224               : {t_gif * 1e3:8.1f} ms  -> {clip_s / t_gif:10.1f}x real time")


if __name__ == "__main__":
    sys.exit(main())

"""Concept timelines: which discovered concept is active when, drawn as coloured bars (model cards, demo).

`segments` come from `HuMoConForConceptDiscovery.get_concepts(...)` (or an encoder's `get_concepts`, or
[`extract_concepts`] from raw motions / videos): contiguous runs `(start_frame, end_frame, concept_id)` with
`end_frame` exclusive.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path


def extract_concepts(
    model,
    motions=None,
    videos=None,
    feature_extractor=None,
    video_processor=None,
    video_fps=None,
) -> dict[str, list[dict]]:
    """
    Concepts of raw motions and/or videos, through the processors and the model's concept encoders.

    Args:
        model: anything with `motion_encoder` / `video_encoder` concept encoders (`HuMoConForConceptDiscovery`,
            `HuMoConForCausalLM`).
        motions: one or a list of (T, 22, 3) joint arrays, `MotionClip`s or motion files.
        videos: one or a list of video files or uint8 (N, H, W, 3) frame arrays.
        feature_extractor: a `MotionFeatureExtractor` (default: a new one with default settings).
        video_processor: a `HuMoConVideoProcessor` (default: one matching the video encoder's SigLIP tower).
        video_fps: frame rate of array videos.

    Returns:
        `{"motion": [...], "video": [...]}` with one dict per input: `frame_concept_ids`, `token_concept_ids`,
        `segments` (motion: frame indices at the extractor's fps; video: key-frame indices) and, for videos,
        `timestamps` (seconds of the key frames).
    """
    import torch

    if motions is None and videos is None:
        raise ValueError("extract_concepts needs motions and/or videos")
    result: dict[str, list[dict]] = {}
    if motions is not None:
        if feature_extractor is None:
            from humocon_hf.processing.feature_extraction_motion import (
                MotionFeatureExtractor,
            )

            feature_extractor = MotionFeatureExtractor()
        encoder = model.motion_encoder
        batch = feature_extractor(motions, padding="longest", return_tensors="pt")
        values = batch["motion_values"].to(device=encoder.device, dtype=encoder.dtype)
        with torch.no_grad():
            result["motion"] = encoder.get_concepts(
                values, batch["motion_attention_mask"].to(encoder.device)
            )
    if videos is not None:
        encoder = model.video_encoder
        if video_processor is None:
            from humocon_hf.processing.video_processing_humocon import (
                HuMoConVideoProcessor,
            )

            video_processor = HuMoConVideoProcessor.from_vision_config(
                encoder.config.vision_config
            )
        batch = video_processor(videos, return_tensors="pt", fps=video_fps)
        pixels = batch["pixel_values_videos"].to(
            device=encoder.device, dtype=encoder.dtype
        )
        with torch.no_grad():
            result["video"] = encoder.get_concepts(
                pixels, batch["video_timestamps"].to(encoder.device)
            )
    return result


def _check_segments(segments) -> list[tuple[int, int, int]]:
    if segments is None or len(segments) == 0:
        raise ValueError(
            "segments is empty: nothing to plot (expected [(start_frame, end_frame, concept_id), ...])"
        )
    out = []
    for i, seg in enumerate(segments):
        if len(seg) != 3:
            raise ValueError(
                f"segment {i} must be (start_frame, end_frame, concept_id), got {seg!r}"
            )
        start, end, concept = (int(v) for v in seg)
        if start < 0 or end <= start:
            raise ValueError(
                f"segment {i} has start={start}, end={end}; need 0 <= start < end (end exclusive)"
            )
        out.append((start, end, concept))
    return out


def plot_concept_timeline(
    segments: Sequence | dict[str, Sequence],
    path: str | os.PathLike,
    fps: float | None = 20.0,
    title: str | None = None,
    codebook_size: int | None = None,
    dpi: int = 120,
) -> Path:
    """
    Draw concept segments as a timeline and save it (PNG/PDF/SVG by extension; written atomically).

    Args:
        segments: `[(start_frame, end_frame, concept_id)]`, or a dict `{row label: segments}` for several rows
            (e.g. `{"motion": ..., "video": ...}`).
        path: output image file.
        fps: frames per second of the segment indices, for a time axis in seconds; `None` keeps frame indices
            (use it for video key-frame indices, or pass the key-frame rate).
        title: optional figure title.
        codebook_size: colours are taken by `concept_id / codebook_size` from a cyclic colour map so a concept keeps
            its colour across plots; default: the largest id + 1.
        dpi: image resolution.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = segments if isinstance(segments, dict) else {"": segments}
    if not rows:
        raise ValueError("segments is empty: nothing to plot")
    rows = {label: _check_segments(segs) for label, segs in rows.items()}
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be > 0 or None, got {fps}")
    path = Path(path)
    if not path.suffix:
        raise ValueError(f"path {str(path)!r} needs an image extension such as .png")
    largest = max(c for segs in rows.values() for _, _, c in segs)
    n_codes = max(codebook_size or 0, largest + 1, 1)
    cmap = plt.get_cmap("hsv")
    scale = 1.0 / fps if fps else 1.0

    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.7 * len(rows)))
    try:
        for r, (label, segs) in enumerate(rows.items()):
            y = len(rows) - 1 - r
            for start, end, concept in segs:
                color = cmap((concept % n_codes) / n_codes)
                ax.broken_barh(
                    [(start * scale, (end - start) * scale)],
                    (y - 0.4, 0.8),
                    facecolors=color,
                    edgecolors="k",
                    linewidth=0.5,
                )
                width = (end - start) * scale
                total = max(e for _, e, _ in segs) * scale
                if width >= 0.04 * total:
                    ax.text(
                        (start + end) / 2 * scale,
                        y,
                        str(concept),
                        ha="center",
                        va="center",
                        fontsize=7,
                    )
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(list(rows)[::-1])
        ax.set_xlabel("time (s)" if fps else "frame")
        ax.set_xlim(0, max(e for segs in rows.values() for _, e, _ in segs) * scale)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=dpi)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    finally:
        plt.close(fig)
    return path


__all__ = ["extract_concepts", "plot_concept_timeline"]

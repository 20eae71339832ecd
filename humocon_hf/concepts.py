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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery


def motion_concepts(motion_encoder, feature_extractor, motions) -> list[dict]:
    """`motion_encoder.get_concepts` of raw motions featurised by `feature_extractor` (on the encoder's device and
    dtype, without gradients): one dict per motion, as `extract_concepts(...)["motion"]`."""
    import torch

    batch = feature_extractor(motions, padding="longest", return_tensors="pt")
    values = batch["motion_values"].to(device=motion_encoder.device, dtype=motion_encoder.dtype)
    with torch.no_grad():
        return motion_encoder.get_concepts(values, batch["motion_attention_mask"].to(motion_encoder.device))


def extract_concepts(
    model: HuMoConForConceptDiscovery | HuMoConForCausalLM,
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
        result["motion"] = motion_concepts(model.motion_encoder, feature_extractor, motions)
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
    descriptions: dict | None = None,
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
        descriptions: `{concept_id: words}` (`describe_concepts`, or a checkpoint's
            `config.motion_config.concept_descriptions`): the plot lists the described concepts it shows, longest
            first, under the timeline.

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

    labels = concept_labels(descriptions)
    shown: dict[int, int] = {}
    for segs in rows.values():
        for start, end, concept in segs:
            if concept in labels:
                shown[concept] = shown.get(concept, 0) + end - start
    legend = [f"{c}: {labels[c]}" for c in sorted(shown, key=lambda c: -shown[c])[:8]]
    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.7 * len(rows) + 0.22 * len(legend)))
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
        if legend:  # the concepts in words, under the axis
            height = fig.get_figheight()
            fig.subplots_adjust(bottom=(0.45 + 0.22 * len(legend)) / height)
            fig.text(0.01, 0.01, "\n".join(legend), fontsize=7, va="bottom", ha="left")
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


# ------------------------------------------------------------------------------------------- concepts in words

# Body parts whose motion describes a concept (SMPL-22 joint indices; a limb by its joints below the shoulder / hip,
# which carry its motion), measured relative to the pelvis.
BODY_PARTS = {
    "left arm": (18, 20),
    "right arm": (19, 21),
    "left leg": (4, 7, 10),
    "right leg": (5, 8, 11),
    "torso": (6, 9, 12, 15),
}
_END_EFFECTOR = {"left arm": 20, "right arm": 21, "left leg": 7, "right leg": 8, "torso": 15}
MOVING_SPEED = 0.25  # m/s: a part slower than this (relative to the pelvis) holds still
TRAVEL_SPEED = 0.3  # m/s of the pelvis over the ground: the body travels (walk, run)
VERTICAL_SPEED = 0.12  # m/s: a part (or the pelvis) clearly goes up or down


def _frame_kinematics(joints, fps: float) -> dict:
    """Per frame of one (T, 22, 3) clip (metres, Y up): each part's mean speed relative to the pelvis, its end
    effector's vertical velocity (an arm relative to the pelvis; a leg in the world, where "raising" means a foot
    leaving the ground, not the pelvis sinking towards it), and the pelvis' ground speed and vertical velocity."""
    import numpy as np

    joints = np.asarray(joints, dtype=np.float64)
    local = joints - joints[:, :1]
    velocity = np.gradient(local, axis=0) * fps if len(joints) > 1 else np.zeros_like(local)
    root_velocity = np.gradient(joints[:, 0], axis=0) * fps if len(joints) > 1 else np.zeros((len(joints), 3))
    out = {"travel": np.linalg.norm(root_velocity[:, [0, 2]], axis=-1), "rise": root_velocity[:, 1]}
    for part, idx in BODY_PARTS.items():
        out[part] = np.linalg.norm(velocity[:, list(idx)], axis=-1).mean(-1)
        vertical = velocity[:, _END_EFFECTOR[part], 1]
        out[part + ":up"] = vertical + root_velocity[:, 1] if "leg" in part else vertical
    return out


def _describe(stats: dict) -> str:
    """Words for one concept from its mean kinematics (see `describe_concepts`)."""
    speeds = {part: stats[part] for part in BODY_PARTS}
    top = max(speeds.values())
    active = [p for p, v in speeds.items() if v >= MOVING_SPEED and v >= 0.5 * top]
    phrases = []

    def verb(part: str) -> str:
        up = stats[part + ":up"]
        if "leg" in part and stats["travel"] >= TRAVEL_SPEED:
            return "stepping"
        return "raising" if up >= VERTICAL_SPEED else "lowering" if up <= -VERTICAL_SPEED else "moving"

    for kind in ("arm", "leg"):
        left, right = f"left {kind}" in active, f"right {kind}" in active
        if left and right:
            left_verb, right_verb = verb(f"left {kind}"), verb(f"right {kind}")
            phrases.append(f"both {kind}s {left_verb if left_verb == right_verb else 'moving'}")
        elif left or right:
            part = f"{'left' if left else 'right'} {kind}"
            phrases.append(f"{part} {verb(part)}")
    if "torso" in active and not phrases:
        phrases.append(f"torso {verb('torso')}")
    if stats["travel"] >= TRAVEL_SPEED:
        phrases.append(f"travelling at {stats['travel']:.1f} m/s")
    if stats["rise"] >= VERTICAL_SPEED:
        phrases.append("body rising")
    elif stats["rise"] <= -VERTICAL_SPEED:
        phrases.append("body lowering")
    return ", ".join(phrases) if phrases else "holding still"


def describe_concepts(
    motion_encoder,
    feature_extractor,
    motions: Sequence,
    captions: Sequence[str | None] | None = None,
    batch_size: int = 32,
    num_captions: int = 2,
) -> dict[int, dict]:
    """Describe every concept the encoder uses on `motions` in words, from the motions themselves.

    Each motion's frames are assigned to concepts by the encoder; per concept, the kinematics of its frames are
    averaged: how fast each body part (left / right arm and leg, torso) moves relative to the pelvis, whether its end
    effector goes up or down, and how fast the body travels or rises. The description names the parts that move
    ("left arm raising", "both legs stepping, travelling at 1.3 m/s", "holding still"); with `captions`, the
    captions of the motions where the concept is most used are kept as examples.

    Args:
        motion_encoder: a `HuMoConMotionEncoder` (or anything with its `get_concepts`).
        feature_extractor: the `MotionFeatureExtractor` the encoder was trained with.
        motions: (T, 22, 3) joint arrays (metres, Y up) at the extractor's frame rate.
        captions: one caption per motion (or None), optional.

    Returns:
        `{concept_id: {"description", "captions", "frames", "part_speed"}}`, most used concepts first.
    """
    import numpy as np

    if captions is not None and len(captions) != len(motions):
        raise ValueError(f"describe_concepts: {len(captions)} captions for {len(motions)} motions")
    fps = float(getattr(feature_extractor, "fps", 20.0))
    keys = ["travel", "rise", *BODY_PARTS, *(p + ":up" for p in BODY_PARTS)]
    sums: dict[int, dict[str, float]] = {}
    frames: dict[int, int] = {}
    caption_weight: dict[int, dict[str, int]] = {}
    for start in range(0, len(motions), batch_size):
        chunk = [np.asarray(m, dtype=np.float32) for m in motions[start : start + batch_size]]
        concepts = motion_concepts(motion_encoder, feature_extractor, chunk)
        for offset, (joints, result) in enumerate(zip(chunk, concepts)):
            ids = result["frame_concept_ids"].numpy()
            kin = _frame_kinematics(joints[: len(ids)], fps)
            caption = captions[start + offset] if captions is not None else None
            for concept in np.unique(ids):
                sel = ids == concept
                concept = int(concept)
                acc = sums.setdefault(concept, dict.fromkeys(keys, 0.0))
                for key in keys:
                    acc[key] += float(kin[key][sel].sum())
                frames[concept] = frames.get(concept, 0) + int(sel.sum())
                if caption:
                    weights = caption_weight.setdefault(concept, {})
                    weights[caption] = weights.get(caption, 0) + int(sel.sum())
    out = {}
    for concept in sorted(frames, key=lambda c: -frames[c]):
        stats = {k: v / frames[concept] for k, v in sums[concept].items()}
        examples = sorted(caption_weight.get(concept, {}).items(), key=lambda kv: -kv[1])[:num_captions]
        out[concept] = {
            "description": _describe(stats),
            "captions": [c for c, _ in examples],
            "frames": frames[concept],
            "part_speed": {p: round(stats[p], 3) for p in BODY_PARTS},
        }
    return out


def concept_labels(descriptions: dict | None) -> dict[int, str]:
    """`{concept_id: description}` from `describe_concepts` output or from a config's `concept_descriptions`
    (JSON keys are strings)."""
    if not descriptions:
        return {}
    return {int(k): (v["description"] if isinstance(v, dict) else str(v)) for k, v in descriptions.items()}


__all__ = ["BODY_PARTS", "concept_labels", "describe_concepts", "extract_concepts", "motion_concepts",
           "plot_concept_timeline"]

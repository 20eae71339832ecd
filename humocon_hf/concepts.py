"""Concept timelines: which discovered concept is active when, drawn as coloured bars (model cards, demo).

`segments` come from `HuMoConForConceptDiscovery.get_concepts(...)` (or an encoder's `get_concepts`, or
[`extract_concepts`] from raw motions / videos): contiguous runs `(start_frame, end_frame, concept_id)` with
`end_frame` exclusive.
"""

from __future__ import annotations

import os
import re
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


TRAVEL_WINDOW = 1.5  # seconds: travelling is sustained displacement, not the sway of a kick or a reach


def _travel_speed(ground, fps: float):
    """Per frame, the pelvis' ground displacement over the `TRAVEL_WINDOW` around it (shorter at the ends) per second:
    a walk keeps its speed, a kick's lunge forward and back (0.5 m/s at its peak) nets next to nothing."""
    import numpy as np

    n = len(ground)
    half = max(1, int(round(TRAVEL_WINDOW * fps / 2)))
    idx = np.arange(n)
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half, n - 1)
    span = np.maximum(hi - lo, 1) / fps
    return np.linalg.norm(ground[hi] - ground[lo], axis=-1) / span


def _frame_kinematics(joints, fps: float) -> dict:
    """Per frame of one (T, 22, 3) clip (metres, Y up): each part's mean speed relative to the pelvis, its end
    effector's vertical velocity (an arm relative to the pelvis; a leg in the world, where "raising" means a foot
    leaving the ground, not the pelvis sinking towards it), the pelvis' travel speed (`_travel_speed`) and vertical
    velocity."""
    import numpy as np

    joints = np.asarray(joints, dtype=np.float64)
    local = joints - joints[:, :1]
    velocity = np.gradient(local, axis=0) * fps if len(joints) > 1 else np.zeros_like(local)
    root_velocity = np.gradient(joints[:, 0], axis=0) * fps if len(joints) > 1 else np.zeros((len(joints), 3))
    out = {"travel": _travel_speed(joints[:, 0, [0, 2]], fps), "rise": root_velocity[:, 1]}
    for part, idx in BODY_PARTS.items():
        out[part] = np.linalg.norm(velocity[:, list(idx)], axis=-1).mean(-1)
        vertical = velocity[:, _END_EFFECTOR[part], 1]
        out[part + ":up"] = vertical + root_velocity[:, 1] if "leg" in part else vertical
    return out


# Per frame, which side's arm (and leg) does something: moving relative to the pelvis or lifted away from hanging
# (elevation above ARM_REST / LEG_REST degrees adds (elevation - rest) / 60 to its speed in m/s), at least ACTIVE_SCORE,
# and ASYMMETRY times the other side's score (else both). A limb held up ("raised") is above ARM_UP / LEG_UP degrees.
ARM_REST, LEG_REST, ARM_UP, LEG_UP = 30.0, 25.0, 60.0, 45.0
ACTIVE_SCORE = 0.3
ASYMMETRY = 1.5
# A concept's words say only what holds for most of its frames: a side (or "both") held by CONSISTENT of the frames
# where the limb acts, travelling in CONSISTENT of all its frames (in place: under 1 - CONSISTENT). The rest stays open
# ("one arm", "one or both arms", "maybe travelling") and each segment of a clip fills it in from its own frames
# (`segment_words`): a code the encoder shares between a left and a right wave cannot say which, the clip can. The
# side of a one-sided limb is always left to the clip: even a code whose training frames were 85% right-leg raises
# covers held-out left kicks (docs/results.md, "Concepts in words", 2026-12-08).
CONSISTENT = 0.85
LIMB_SHARE = 0.2  # a limb phrase needs the limb to act in this share of the concept's frames
_NONE, _LEFT, _RIGHT, _BOTH = 0, 1, 2, 3
_LIMB_CHAINS = {"arm": {"left": (16, 20), "right": (17, 21)}, "leg": {"left": (1, 4), "right": (2, 5)}}


def _elevation(vector):
    """Degrees between a bone (..., 3) and straight down (Y up)."""
    import numpy as np

    norm = np.maximum(np.linalg.norm(vector, axis=-1), 1e-6)
    return np.degrees(np.arccos(np.clip(-vector[..., 1] / norm, -1.0, 1.0)))


def _frame_states(joints, fps: float) -> dict:
    """Per frame of one (T, 22, 3) clip: `travel` (bool) and `speed` (pelvis over the ground), `rise` (pelvis vertical
    velocity), and per limb kind (`arm`, `leg`) the acting side (`_NONE`, `_LEFT`, `_RIGHT`, `_BOTH`), whether each
    side is held up (`left arm:up`) and its end effector's vertical velocity (`left arm:v`)."""
    import numpy as np

    kin = _frame_kinematics(joints, fps)
    joints = np.asarray(joints, dtype=np.float64)
    out = {"travel": kin["travel"] >= TRAVEL_SPEED, "speed": kin["travel"], "rise": kin["rise"]}
    for kind, rest, up in (("arm", ARM_REST, ARM_UP), ("leg", LEG_REST, LEG_UP)):
        score = {}
        for side, (root, end) in _LIMB_CHAINS[kind].items():
            elevation = _elevation(joints[:, end] - joints[:, root])
            out[f"{side} {kind}:up"] = elevation >= up
            out[f"{side} {kind}:v"] = kin[f"{side} {kind}:up"]
            score[side] = kin[f"{side} {kind}"] + np.maximum(elevation - rest, 0.0) / 60.0
        left, right = score["left"], score["right"]
        active = np.maximum(left, right) >= ACTIVE_SCORE
        state = np.full(len(joints), _NONE, dtype=np.int8)
        state[active & (left >= ASYMMETRY * right)] = _LEFT
        state[active & (right >= ASYMMETRY * left)] = _RIGHT
        state[active & (state == _NONE)] = _BOTH
        out[kind] = state
    return out


def _limb_verb(frames: dict, kind: str, sides: Sequence[str], acting, stepping: bool) -> str:
    """"stepping" (legs of a travelling concept), "raised" (held up in most acting frames), else raising / lowering /
    moving by the end effectors' mean vertical velocity."""
    import numpy as np

    if stepping:
        return "stepping"
    if not acting.any():
        return "moving"
    up = np.mean([frames[f"{side} {kind}:up"][acting].mean() for side in sides])
    if up >= 0.5:
        return "raised"
    vertical = np.mean([frames[f"{side} {kind}:v"][acting].mean() for side in sides])
    return "raising" if vertical >= VERTICAL_SPEED else "lowering" if vertical <= -VERTICAL_SPEED else "moving"


def _describe(frames: dict) -> str:
    """Words for one concept from the per-frame states of all its frames (`_frame_states`, concatenated): what most of
    them share, the rest left open (see `CONSISTENT`)."""

    travel_share = float(frames["travel"].mean())
    travelling = travel_share >= CONSISTENT
    maybe_travelling = 1 - CONSISTENT < travel_share < CONSISTENT
    phrases = []
    for kind in ("arm", "leg"):
        state = frames[kind]
        acting = state != _NONE
        if acting.mean() < LIMB_SHARE:
            continue
        shares = {s: float((state[acting] == s).mean()) for s in (_LEFT, _RIGHT, _BOTH)}
        stepping = kind == "leg" and travel_share >= 0.5
        if stepping or shares[_BOTH] >= CONSISTENT:
            part, sides = f"both {kind}s", ("left", "right")
        elif max(shares[_LEFT], shares[_RIGHT]) >= CONSISTENT:  # one side: which one is the clip's to say
            part, sides = f"one {kind}", ("left",) if shares[_LEFT] >= shares[_RIGHT] else ("right",)
        elif shares[_LEFT] + shares[_RIGHT] >= CONSISTENT:
            part, sides = f"one {kind}", ("left", "right")
        else:
            part, sides = f"one or both {kind}s", ("left", "right")
        phrases.append(f"{part} {_limb_verb(frames, kind, sides, acting, stepping)}")
    if travelling:
        phrases.append(f"travelling at {frames['speed'][frames['travel']].mean():.1f} m/s")
    elif maybe_travelling:
        phrases.append("maybe travelling")
    rise = float(frames["rise"].mean())
    if rise >= VERTICAL_SPEED:
        phrases.append("body rising")
    elif rise <= -VERTICAL_SPEED:
        phrases.append("body lowering")
    return ", ".join(phrases) if phrases else "holding still"


_OPEN_LIMB = re.compile(r"\b(one or both (arm|leg)s|one (arm|leg))\b")


def resolve_words(words: str, states: dict, frames) -> str:
    """A concept's words for some `frames` (a slice or indices) of one clip (`_frame_states` of the clip): the parts
    the concept leaves open ("one arm", "one or both legs", "maybe travelling") filled in from those frames; the rest
    unchanged."""
    import numpy as np

    def limb(match: re.Match) -> str:
        kind = match.group(2) or match.group(3)
        state = states[kind][frames]
        counts = {s: int((state == s).sum()) for s in (_LEFT, _RIGHT, _BOTH)}
        if match.group(3):  # one side: the one acting more
            counts.pop(_BOTH)
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            return match.group(0)
        return {_LEFT: f"left {kind}", _RIGHT: f"right {kind}", _BOTH: f"both {kind}s"}[best]

    words = _OPEN_LIMB.sub(limb, words)
    if "maybe travelling" in words:
        speed = float(np.mean(states["speed"][frames]))
        words = words.replace("maybe travelling", f"travelling at {speed:.1f} m/s" if speed >= TRAVEL_SPEED
                              else "in place")
    return words


def segment_words(joints, segments, descriptions: dict | None, fps: float = 20.0) -> list[str | None]:
    """The words of each concept segment `(start, end, concept)` of one clip (SMPL-22 joints at `fps`): its concept's
    description with what the concept leaves open read from the segment (`resolve_words`); None for a concept without
    words. What `humocon ask --concepts` shows."""
    labels = concept_labels(descriptions)
    if not labels:
        return [None] * len(segments)
    states = _frame_states(joints, fps)
    return [resolve_words(labels[int(c)], states, slice(int(s), int(e))) if int(c) in labels else None
            for s, e, c in segments]


def clip_concept_words(joints, segments, descriptions: dict | None, fps: float = 20.0) -> dict[int, str]:
    """`{concept: words}` for one clip: each described concept's words with what it leaves open read from all the
    clip's frames of that concept (a timeline legend lists a concept once)."""
    import numpy as np

    labels = concept_labels(descriptions)
    used = {int(c) for _, _, c in segments} & set(labels)
    if not used:
        return {}
    states = _frame_states(joints, fps)
    frames = {c: np.concatenate([np.arange(int(s), int(e)) for s, e, k in segments if int(k) == c]) for c in used}
    return {c: resolve_words(labels[c], states, frames[c]) for c in used}


def describe_concepts(
    motion_encoder,
    feature_extractor,
    motions: Sequence,
    captions: Sequence[str | None] | None = None,
    batch_size: int = 32,
    num_captions: int = 2,
) -> dict[int, dict]:
    """Describe every concept the encoder uses on `motions` in words, from the motions themselves.

    Each motion's frames are assigned to concepts by the encoder. Every frame says which side's arm and leg act
    (move relative to the pelvis or are lifted), whether the body travels, rises or sinks; a concept's words keep what
    most of its frames agree on ("right arm raised", "both legs stepping, travelling at 1.3 m/s", "holding still")
    and leave the rest open ("one arm raised", "maybe travelling") for `segment_words` to read from each clip: a vote
    over frames, not an average of speeds, which blended a code shared by left and right waves and by standing and
    walking frames into "both arms moving, travelling" (issue 30). With `captions`, the captions of the motions where
    the concept is most used are kept as examples.

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
    states: dict[int, list[dict]] = {}
    speeds: dict[int, dict[str, float]] = {}
    caption_weight: dict[int, dict[str, int]] = {}
    for start in range(0, len(motions), batch_size):
        chunk = [np.asarray(m, dtype=np.float32) for m in motions[start : start + batch_size]]
        concepts = motion_concepts(motion_encoder, feature_extractor, chunk)
        for offset, (joints, result) in enumerate(zip(chunk, concepts)):
            ids = result["frame_concept_ids"].numpy()
            kin = _frame_kinematics(joints[: len(ids)], fps)
            frame_states = _frame_states(joints[: len(ids)], fps)
            caption = captions[start + offset] if captions is not None else None
            for concept in np.unique(ids):
                sel = ids == concept
                concept = int(concept)
                states.setdefault(concept, []).append({k: v[sel] for k, v in frame_states.items()})
                acc = speeds.setdefault(concept, dict.fromkeys(BODY_PARTS, 0.0))
                for part in BODY_PARTS:
                    acc[part] += float(kin[part][sel].sum())
                if caption:
                    weights = caption_weight.setdefault(concept, {})
                    weights[caption] = weights.get(caption, 0) + int(sel.sum())
    out = {}
    merged = {c: {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} for c, parts in states.items()}
    frames = {c: len(m["travel"]) for c, m in merged.items()}
    for concept in sorted(frames, key=lambda c: -frames[c]):
        examples = sorted(caption_weight.get(concept, {}).items(), key=lambda kv: -kv[1])[:num_captions]
        out[concept] = {
            "description": _describe(merged[concept]),
            "captions": [c for c, _ in examples],
            "frames": frames[concept],
            "part_speed": {p: round(v / frames[concept], 3) for p, v in speeds[concept].items()},
        }
    return out


def _moving_frames(kin: dict, limb: str, travels: bool):
    """The frames where a labelled clip does what its label says: the named limb moving (relative to the pelvis) for
    a one-sided action, the body travelling for locomotion, the legs bending for an action of both legs in place."""
    import numpy as np

    if travels:
        return kin["travel"] >= TRAVEL_SPEED
    speed = (kin["left leg"] + kin["right leg"]) / 2 if limb == "legs" else kin[limb]
    return speed >= max(MOVING_SPEED, 0.3 * float(np.percentile(speed, 95)))


def words_match(description: str, limb: str, travels: bool) -> tuple[bool, bool]:
    """Whether concept words (a) name `limb` ("left arm", "right leg"; "legs": either or both legs) and (b) say
    correctly whether the body travels."""
    named = ("leg" in description) if limb == "legs" else (limb in description)
    return named, ("travelling" in description) == travels


def concept_word_accuracy(
    motion_encoder, feature_extractor, clips: Sequence[dict], descriptions: dict, batch_size: int = 16,
    resolve: bool = True,
) -> list[dict]:
    """How often the concepts covering the moving part of labelled real clips say what moves, in words.

    Each clip is `{"joints": (T, 22, 3) array at the extractor's rate, "limb": "left arm" | "right leg" | "legs" |
    ..., "travels": bool}`; its moving frames are those where the named limb moves (or, for a clip that travels, where
    the body travels). Per clip: the share of its moving frames whose concept's words name the limb (`limb`), say
    correctly whether the person travels (`travel`), and both (`both`); frames of an undescribed concept count as
    wrong. The words are those a timeline shows (`segment_words`); `resolve=False` scores the concepts' words as
    stored, open parts unfilled.
    """
    import numpy as np

    labels = concept_labels(descriptions)
    fps = float(getattr(feature_extractor, "fps", 20.0))
    out = []
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        joints = [np.asarray(c["joints"], dtype=np.float32) for c in chunk]
        for clip, clip_joints, result in zip(chunk, joints, motion_concepts(motion_encoder, feature_extractor, joints)):
            ids = result["frame_concept_ids"].numpy()
            clip_joints = clip_joints[: len(ids)]
            kin = _frame_kinematics(clip_joints, fps)
            moving = np.flatnonzero(_moving_frames(kin, clip["limb"], clip["travels"]))
            frame_words = [""] * len(ids)
            segments = result["segments"]
            words = (segment_words(clip_joints, segments, labels, fps) if resolve
                     else [labels.get(int(c)) for _, _, c in segments])
            for (start_frame, end_frame, _), text in zip(segments, words):
                frame_words[int(start_frame) : int(end_frame)] = [text or ""] * (int(end_frame) - int(start_frame))
            checks = np.array([words_match(frame_words[f], clip["limb"], clip["travels"]) for f in moving],
                              dtype=bool).reshape(-1, 2)
            row = {k: v for k, v in clip.items() if k != "joints"}
            row.update(moving_frames=int(len(moving)), limb_ok=float(checks[:, 0].mean()) if len(moving) else None,
                       travel_ok=float(checks[:, 1].mean()) if len(moving) else None,
                       both_ok=float(checks.all(1).mean()) if len(moving) else None,
                       words=sorted({frame_words[f] or "?" for f in moving}))
            out.append(row)
    return out


def concept_labels(descriptions: dict | None) -> dict[int, str]:
    """`{concept_id: description}` from `describe_concepts` output or from a config's `concept_descriptions`
    (JSON keys are strings)."""
    if not descriptions:
        return {}
    return {int(k): (v["description"] if isinstance(v, dict) else str(v)) for k, v in descriptions.items()}


__all__ = ["BODY_PARTS", "concept_labels", "concept_word_accuracy", "describe_concepts", "extract_concepts",
           "motion_concepts", "plot_concept_timeline", "resolve_words", "segment_words", "words_match",
           "clip_concept_words"]

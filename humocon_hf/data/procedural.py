"""Built-in procedural motion-QA benchmark: seeded SMPL-22 motions with BABEL-QA-style questions.

Each motion is a sequence of 2-4 action segments (locomotion with a body-relative direction, one-sided
arm / leg actions, posture changes) performed by a randomly proportioned body with random speed,
amplitude, start pose, facing and start position, blended with smooth (cosine) transitions of pose and
root velocity. Labels are known by construction, so every question has exactly one correct answer:

* relations follow BABEL-QA: "before X" is the segment immediately before the segment where X happens,
  "after X" the one immediately after, "in between" (``after A and before B``) the one segment between
  them, "while" (relation type ``"none"``) the segment X itself. A question is only emitted when every
  filter names a single segment of the motion and the queried attribute exists.
* directions are relative to the body (forward = facing direction, left = the person's own left,
  +X of the heading frame computed from the hips); the person keeps facing the same way while moving.
* body parts: wave / knock / catch / take / place -> "<side> hand", throw -> "<side> arm",
  kick -> "<side> leg" (kicking leg), kneel -> "<side> leg" (the knee put on the floor),
  one-footed jump (hop) -> "<side> foot" (the foot hopped on).

Public API: `generate_motion_qa` (a cached `datasets.DatasetDict`), `MotionQAGenerator` and
`generate_motion` (one motion and its segments), `make_questions`, `make_caption`. The questions and captions
are written in `procedural_text.py` (re-exported here), the actions in `procedural_actions.py`, the body in
`procedural_body.py`; this module draws motions and builds the cached data set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from humocon_hf.processing.smpl22 import DEFAULT_FPS

from .procedural_actions import (
    ACTION_DIRECTIONS,
    ALL_ACTIONS,
    DOWN_ACTIONS,
    SIDED_ACTIONS,
    Posture,
    Style,
    make_action,
    neutral,
    ramp,
)
from .procedural_body import Body, Pose, solve_joints
from .procedural_realism import Realism
from .procedural_text import QUERY_TYPES as QUERY_TYPES  # re-exported: the names this module always had
from .procedural_text import RELATION_TYPES as RELATION_TYPES
from .procedural_text import enumerate_questions, make_caption, make_questions

__all__ = [
    "GENERATOR_VERSION",
    "MotionQAGenerator",
    "MotionSpec",
    "SegmentSpec",
    "generate_motion",
    "generate_motion_qa",
    "make_caption",
    "make_questions",
]

# Bump when the generated data changes for the same parameters (it is part of the cache key).
GENERATOR_VERSION = "3"

# The third seed word of a motion's `Realism` draws (its own stream: the base draws stay those of the motion index).
_REALISM_STREAM = 0x5EA1

# How often each action is drawn (relative), roughly following BABEL-QA's answer frequencies.
DEFAULT_ACTION_WEIGHTS = {
    "walk": 3.0, "jog": 1.0, "run": 1.0, "jump": 2.0, "jumping jacks": 0.8, "crawl": 0.8,
    "wave": 1.0, "knock": 0.8, "catch": 0.8, "throw": 1.3, "take/pick something up": 1.2,
    "place something": 1.2, "kick": 1.0, "squat": 0.8, "crouch": 0.8, "kneel": 0.8, "sit": 1.2,
}  # fmt: skip


@dataclass
class SegmentSpec:
    """One requested segment: `side` is +1 (left) / -1 (right) for sided actions and hops, else None."""

    action: str
    direction: str | None = None
    side: int | None = None
    duration: float | None = None  # seconds; sampled when None

    @property
    def body_part(self) -> str | None:
        from .procedural_actions import body_part_for

        return body_part_for(self.action, self.side)


@dataclass
class MotionSpec:
    """A full motion request; unset fields are sampled."""

    segments: list
    heading: float | None = None  # radians; facing (sin h, 0, cos h)
    start_xz: tuple | None = None
    scale: float | None = None  # body stature factor
    start_down: str | None = None  # when the first segment is "stand up": "sit", "kneel" or "crouch"


def _parse_segment(seg: Any, where: str) -> SegmentSpec:
    """Accept a SegmentSpec, a dict {action, direction, body_part|side, duration} or a tuple."""
    if isinstance(seg, SegmentSpec):
        spec = SegmentSpec(seg.action, seg.direction, seg.side, seg.duration)
    else:
        if isinstance(seg, (tuple, list)):
            keys = ("action", "direction", "body_part", "duration")
            seg = dict(zip(keys, seg))
        if not isinstance(seg, dict) or "action" not in seg:
            raise ValueError(f"{where}: expected a SegmentSpec, a dict with 'action' or an (action, direction, body_part) tuple, got {seg!r}")
        side = seg.get("side")
        bp = seg.get("body_part")
        if bp is not None:
            first = str(bp).split(" ")[0]
            if first not in ("left", "right"):
                raise ValueError(f"{where}: body_part {bp!r} must start with 'left' or 'right'")
            side = 1 if first == "left" else -1
        spec = SegmentSpec(seg["action"], seg.get("direction"), side, seg.get("duration"))
    if spec.action not in ALL_ACTIONS:
        raise ValueError(f"{where}: unknown action {spec.action!r}; expected one of {list(ALL_ACTIONS)}")
    allowed = ACTION_DIRECTIONS.get(spec.action, (None,))
    if spec.direction not in allowed:
        raise ValueError(f"{where}: action {spec.action!r} cannot have direction {spec.direction!r}; allowed: {list(allowed)}")
    if spec.side is not None and spec.side not in (1, -1):
        raise ValueError(f"{where}: side must be +1 (left) or -1 (right), got {spec.side!r}")
    if spec.action in SIDED_ACTIONS and spec.side is None:
        raise ValueError(f"{where}: action {spec.action!r} needs a side (body_part 'left ...' or 'right ...')")
    if spec.side is not None and spec.action not in SIDED_ACTIONS and spec.action != "jump":
        raise ValueError(f"{where}: action {spec.action!r} has no body part / side")
    if spec.action == "jump" and spec.side is not None and spec.direction not in (None, "forward"):
        raise ValueError(f"{where}: one-footed jumps (hops) go forward or stay in place, got {spec.direction!r}")
    if isinstance(seg, dict) and seg.get("body_part") and seg["body_part"] != spec.body_part:
        raise ValueError(f"{where}: action {spec.action!r} uses the {spec.body_part!r}, not {seg['body_part']!r}")
    if spec.duration is not None and not (np.isfinite(spec.duration) and spec.duration > 0):
        raise ValueError(f"{where}: duration must be a positive number of seconds, got {spec.duration!r}")
    return spec


def _check_sequence(segs: list[SegmentSpec]) -> None:
    if not segs:
        raise ValueError("motion spec: needs at least one segment")
    for i, s in enumerate(segs):
        if s.action == "stand up" and i > 0 and segs[i - 1].action not in DOWN_ACTIONS:
            raise ValueError(f"motion spec: segment {i} 'stand up' must follow one of {DOWN_ACTIONS} (or come first)")
        if i > 0 and segs[i - 1].action in DOWN_ACTIONS and s.action != "stand up":
            raise ValueError(f"motion spec: segment {i} follows {segs[i - 1].action!r}, so it must be 'stand up'")


class MotionQAGenerator:
    """Samples motions (joints + labelled segments), questions and captions.

    Args:
        fps: frame rate of the generated joints.
        max_frames: upper bound on a motion's length (frames); default 196 = HumanML3D's 9.8 s.
        action_weights: relative sampling weights of the actions (default `DEFAULT_ACTION_WEIGHTS`).
    """

    def __init__(self, fps: float = DEFAULT_FPS, max_frames: int = 196, action_weights: dict | None = None):
        if not (isinstance(fps, (int, float)) and fps > 0):
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if int(max_frames) < int(2.5 * fps):
            raise ValueError(f"max_frames must allow at least 2.5 s of motion ({int(2.5 * fps)} frames), got {max_frames}")
        self.fps = float(fps)
        self.max_frames = int(max_frames)
        weights = dict(DEFAULT_ACTION_WEIGHTS if action_weights is None else action_weights)
        unknown = set(weights) - set(ALL_ACTIONS)
        if unknown or "stand up" in weights:
            raise ValueError(f"action_weights: unknown or non-samplable actions {sorted(unknown | ({'stand up'} & set(weights)))}")
        if not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError("action_weights: need non-negative weights with a positive sum")
        self.action_weights = weights

    # ------------------------------------------------------------------ sampling a spec

    def sample_spec(self, rng: np.random.Generator) -> MotionSpec:
        """A random sequence of 2-4 segments that has at least one unambiguous question."""
        for _ in range(50):
            spec = self._sample_sequence(rng)
            labels = [dict(action=s.action, direction=s.direction, body_part=s.body_part) for s in spec.segments]
            if enumerate_questions(labels):
                return spec
        return spec  # pragma: no cover - practically unreachable with the default weights

    def _sample_sequence(self, rng: np.random.Generator) -> MotionSpec:
        n = int(rng.integers(2, 5))
        names = list(self.action_weights)
        w = np.array([self.action_weights[a] for a in names], dtype=np.float64)
        segs: list[SegmentSpec] = []
        start_down = None
        if rng.random() < 0.1:
            segs.append(SegmentSpec("stand up"))
            start_down = ["sit", "kneel", "crouch"][int(rng.integers(3))]
        while len(segs) < n:
            if segs and segs[-1].action in DOWN_ACTIONS:
                segs.append(SegmentSpec("stand up"))
                continue
            for _ in range(20):
                a = names[int(rng.choice(len(names), p=w / w.sum()))]
                cand = self._sample_attrs(a, rng)
                prev = segs[-1] if segs else None
                if prev is None or (prev.action, prev.direction, prev.side) != (cand.action, cand.direction, cand.side):
                    break
            segs.append(cand)
        return MotionSpec(segments=segs, start_down=start_down)

    @staticmethod
    def _sample_attrs(action: str, rng: np.random.Generator) -> SegmentSpec:
        side = None
        direction = None
        if action in ACTION_DIRECTIONS:
            dirs = ACTION_DIRECTIONS[action]
            if action == "walk":
                p = np.array([2.0, 1.0, 1.0, 1.0])
                direction = dirs[int(rng.choice(4, p=p / p.sum()))]
            elif action == "jump":
                if rng.random() < 0.35:  # hop on one foot
                    side = 1 if rng.random() < 0.5 else -1
                    direction = "forward" if rng.random() < 0.5 else None
                else:
                    direction = dirs[int(rng.integers(len(dirs)))] if rng.random() > 0.1 else None
            else:
                direction = dirs[int(rng.integers(len(dirs)))]
        if action in SIDED_ACTIONS:
            side = 1 if rng.random() < 0.5 else -1
        return SegmentSpec(action, direction, side)

    # ------------------------------------------------------------------ motion synthesis

    def generate_motion(
        self, rng: np.random.Generator, spec: Any = None, realism: tuple[Realism, np.random.Generator] | None = None
    ) -> tuple[np.ndarray, list[dict]]:
        """Synthesize one motion.

        Args:
            rng: a `numpy.random.Generator` (all randomness comes from it).
            spec: None (sample everything), a `MotionSpec`, or a list of segment requests
                (`SegmentSpec`, dicts ``{"action", "direction", "body_part", "duration"}`` or tuples).
            realism: a `Realism` and its own generator: the irregularities of real capture (training motions). Its
                draws never touch `rng`, so the person, the actions and the questions are those drawn without it.

        Returns:
            joints: (T, 22, 3) float32, metres, Y up, at `self.fps`.
            segments: list of ``{"action", "direction", "body_part", "start", "end"}`` (frames, end
                exclusive; consecutive segments share boundaries at the middle of their transition).
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if spec is None:
            spec = self.sample_spec(rng)
        elif not isinstance(spec, MotionSpec):
            if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
                raise ValueError(f"spec must be a MotionSpec or a list of segments, got {type(spec).__name__}")
            spec = MotionSpec(segments=list(spec))
        segs = [_parse_segment(s, f"spec segment {i}") for i, s in enumerate(spec.segments)]
        _check_sequence(segs)

        vary, vary_rng = realism if realism is not None else (None, None)
        body = Body.sample(rng, scale=spec.scale)
        if vary is not None:
            body = vary.vary_body(body, vary_rng)
        style = Style.sample(rng, body)
        heading = float(rng.uniform(-np.pi, np.pi)) if spec.heading is None else float(spec.heading)
        start_xz = rng.uniform(-2.0, 2.0, size=2) if spec.start_xz is None else np.asarray(spec.start_xz, float)

        max_s = self.max_frames / self.fps
        budget = max_s / len(segs)
        actions = []
        prev_hold: Pose | None = None
        if segs[0].action == "stand up":
            down = spec.start_down or "sit"
            if down not in ("sit", "kneel", "crouch"):
                raise ValueError(f"start_down must be 'sit', 'kneel' or 'crouch', got {down!r}")
            prev_hold = Posture.sample(down, rng, body, style, 2.0, side=1 if rng.random() < 0.5 else -1).hold()
        for s in segs:
            dur = s.duration if s.duration is not None else float(np.clip(budget * rng.uniform(0.8, 1.0), 1.5, 3.5))
            act = make_action(s.action, rng, body, style, s.direction, s.side, dur, prev_hold)
            if s.duration is not None:
                act.duration = max(act.duration, s.duration)
            prev_hold = act.hold() if s.action in DOWN_ACTIONS else None
            actions.append(act)
        durations = np.array([a.duration for a in actions])
        if durations.sum() > max_s:  # fit the length budget: shorten, keeping each segment >= 60 %
            durations = np.maximum(durations * max_s / durations.sum(), 0.6 * durations)
            durations *= min(1.0, max_s / durations.sum())
        bounds = np.concatenate([[0.0], np.cumsum(durations)])
        T = max(int(round(bounds[-1] * self.fps)), 2)
        t = np.arange(T) / self.fps
        # The actions' own clock: the frame times, or with `realism` a clock that runs faster and slower.
        clock, rate = (t, None) if vary is None else vary.warp_time(t, vary_rng)
        widths = [min(rng.uniform(0.4, 0.7), 0.45 * durations[i], 0.45 * durations[i + 1]) for i in range(len(actions) - 1)]
        # Partition of unity over segments with cosine cross-fades centred on the boundaries.
        alphas = [ramp(clock, bounds[i + 1] - widths[i] / 2, bounds[i + 1] + widths[i] / 2) for i in range(len(actions) - 1)]
        params = np.zeros((T, actions[0].pose(t[:1]).array.shape[1]))
        segment_weights = []
        for i, act in enumerate(actions):
            w = np.ones(T)
            if i > 0:
                w = w * alphas[i - 1]
            if i < len(actions) - 1:
                w = w * (1.0 - alphas[i])
            segment_weights.append(w)
            idx = np.nonzero(w > 0)[0]
            if len(idx):
                params[idx] += w[idx, None] * act.pose(clock[idx] - bounds[i]).array
        pose = Pose(params)
        if vary is not None:
            pose["vel"] = pose["vel"] * rate[:, None]  # metres per second of the action's clock -> of the frames'
            vary.vary_pose(pose, neutral(T, body, style), segment_weights, vary_rng)
        _add_sway(pose, t, rng)
        if vary is not None:
            vary.add_weight_shift_and_noise(pose, t, vary_rng)
        joints = solve_joints(pose, body, heading, start_xz, self.fps)
        if vary is not None:  # where each action starts and ends on the frames' clock
            bounds = np.interp(bounds, clock, t, right=t[-1] + 1.0 / self.fps)
        frames = np.round(bounds * self.fps).astype(int)
        frames[-1] = T
        segments = [
            dict(action=a.name, direction=a.direction, body_part=a.body_part, start=int(frames[i]), end=int(frames[i + 1]))
            for i, a in enumerate(actions)
        ]
        if vary is not None:
            joints, segments = vary.crop(joints, segments, vary_rng)
        return joints, segments

    # ------------------------------------------------------------------ one record

    def generate(self, seed: int, index: int, questions_per_motion: int = 3, realism: Realism | None = None) -> dict:
        """Motion number `index` of the data set with this seed: joints, segments, caption, questions. With `realism`
        (training motions), the same person and actions performed less regularly (`procedural_realism.Realism`)."""
        rng = np.random.default_rng([int(seed), int(index)])
        vary = None if realism is None else (realism, np.random.default_rng([int(seed), int(index), _REALISM_STREAM]))
        joints, segments = self.generate_motion(rng, realism=vary)
        return dict(
            motion_id=f"proc{seed}-{index:07d}",
            joints=joints,
            segments=segments,
            caption=make_caption(segments, rng),
            questions=make_questions(segments, rng, questions_per_motion),
        )


def _add_sway(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Small slow torso / head sway and arm drift, so nobody stands perfectly still between actions."""

    def wobble(amp: float) -> np.ndarray:
        f = rng.uniform(0.15, 0.6, size=2)
        ph = rng.uniform(0, 2 * np.pi, size=2)
        return amp * (np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.5 * np.sin(2 * np.pi * f[1] * t + ph[1])) / 1.5

    pose["torso"][:, 0] += wobble(rng.uniform(0.005, 0.025))
    pose["torso"][:, 1] += wobble(rng.uniform(0.005, 0.025))
    pose["torso"][:, 2] += wobble(rng.uniform(0.0, 0.04))
    pose["head"][:, 0] += wobble(rng.uniform(0.0, 0.08))
    for side in ("l_wrist", "r_wrist"):
        pose[side][:, 2] += wobble(rng.uniform(0.0, 0.02))


_DEFAULT_GENERATOR: MotionQAGenerator | None = None


def generate_motion(rng: np.random.Generator, spec: Any = None, fps: float = DEFAULT_FPS, max_frames: int = 196):
    """Synthesize one motion with a default `MotionQAGenerator`; returns ``(joints, segments)``."""
    global _DEFAULT_GENERATOR
    gen = _DEFAULT_GENERATOR
    if gen is None or gen.fps != float(fps) or gen.max_frames != int(max_frames):
        gen = MotionQAGenerator(fps=fps, max_frames=max_frames)
        if float(fps) == DEFAULT_FPS and int(max_frames) == 196:
            _DEFAULT_GENERATOR = gen
    return gen.generate_motion(rng, spec)


# ====================================================================================== data set


def _default_cache_dir() -> Path:
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "humocon_hf" / "procedural"


def _check_splits(splits) -> tuple[float, float, float]:
    try:
        fr = tuple(float(x) for x in splits)
    except (TypeError, ValueError):
        raise ValueError(f"splits must be three fractions (train, validation, test), got {splits!r}") from None
    if len(fr) != 3 or min(fr) < 0 or not np.isfinite(fr).all() or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"splits must be three non-negative fractions (train, validation, test) summing to 1, got {splits!r}")
    return fr


def split_motion_indices(num_motions: int, seed: int, splits) -> dict[str, list[int]]:
    """Disjoint motion indices per split (a seeded permutation cut by the fractions)."""
    fr = _check_splits(splits)
    perm = np.random.default_rng([int(seed), 2**31 - 1]).permutation(num_motions)
    counts = [int(round(f * num_motions)) for f in fr]
    # Every split asked for gets at least one motion when there are enough, taken from the largest.
    for k in range(3):
        if fr[k] > 0 and counts[k] == 0 and num_motions >= sum(f > 0 for f in fr):
            counts[k] = 1
    while sum(counts) > num_motions:
        counts[int(np.argmax(counts))] -= 1
    n_train, n_val = counts[0], counts[1]
    return {
        "train": sorted(perm[:n_train].tolist()),
        "validation": sorted(perm[n_train : n_train + n_val].tolist()),
        "test": sorted(perm[n_train + n_val :].tolist()),
    }


def _features(rows: str, include_joints: bool):
    import datasets

    seg = datasets.List(
        {
            "action": datasets.Value("string"),
            "direction": datasets.Value("string"),
            "body_part": datasets.Value("string"),
            "start": datasets.Value("int32"),
            "end": datasets.Value("int32"),
        }
    )
    f = {
        "motion_id": datasets.Value("string"),
        "motion_path": datasets.Value("string"),
        "video_path": datasets.Value("string"),
        "fps": datasets.Value("float32"),
        "num_frames": datasets.Value("int32"),
        "segments": seg,
        "caption": datasets.Value("string"),
    }
    if rows == "questions":
        f = {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "query_type": datasets.Value("string"),
            "relation_type": datasets.Value("string"),
            "program": datasets.List(datasets.Value("string")),
            "conversations": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
            **f,
        }
    if include_joints:
        f["joints"] = datasets.Array3D(shape=(None, 22, 3), dtype="float32")
    return datasets.Features(f)


def generate_motion_qa(
    num_motions: int = 1000,
    seed: int = 0,
    questions_per_motion: int = 3,
    cache_dir: str | os.PathLike | None = None,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    rows: str = "questions",
    include_joints: bool = False,
    render_video: bool = False,
    video_size: int = 224,
    fps: float = DEFAULT_FPS,
    max_frames: int = 196,
    overwrite: bool = False,
    extra_train_motions: int = 0,
    realism: float = 0.0,
):
    """The built-in motion-QA benchmark as a `datasets.DatasetDict` (train / validation / test).

    Motions are synthesized once and cached under `cache_dir` (default ``$HF_HOME/humocon_hf/procedural``)
    in a folder keyed by the generator version and every argument that changes the data; a second call
    with the same arguments loads the cache. Each motion's joints are saved as ``(T, 22, 3)`` float32
    ``.npy`` (``motion_path``, readable by `load_motion` and the motion feature extractor).

    Args:
        num_motions: number of distinct motions, split (disjoint) by `splits` fractions.
        seed: everything is a deterministic function of the seed (motion i only depends on seed and i).
        questions_per_motion: questions drawn per motion (fewer when a motion has fewer unambiguous ones).
        rows: ``"questions"`` (one row per question: `id`, `question`, `answer`, `query_type`,
            `relation_type`, `program`, `conversations` + the motion columns) or ``"motions"`` (one row
            per motion, for caption / encoder training).
        include_joints: also store the joints in the rows (``joints`` column, Array3D ``(T, 22, 3)``).
        render_video: render each motion with `humocon_hf.processing.rendering.save_preview` to a
            frame-aligned ``.mp4`` (``video_path``; slow: opt-in).
        video_size: rendered frame size in pixels.
        fps, max_frames: frame rate and maximum length of the motions.
        overwrite: regenerate even if a cache exists.
        extra_train_motions: motions ``num_motions, num_motions + 1, ...`` added to the train split. The split
            of the first `num_motions` does not change, so the validation and test questions stay the same
            and a larger training set can be compared with a smaller one on the same held-out questions.
        realism: strength of the domain randomisation of the *training* motions (`Realism.at`; 0: none, 1: the
            defaults): uneven timing and amplitude, one side moving more, weight shifts, capture noise, actions cut
            at the clip's ends. The validation and test motions are never varied.

    Returns:
        `datasets.DatasetDict` with splits ``train``, ``validation``, ``test``. Motion columns:
        `motion_id`, `motion_path`, `video_path` (None unless rendered), `fps`, `num_frames`,
        `segments` (list of ``{action, direction, body_part, start, end}``), `caption`.
    """
    import datasets

    if isinstance(num_motions, bool) or not isinstance(num_motions, (int, np.integer)) or num_motions < 1:
        raise ValueError(f"num_motions must be a positive integer, got {num_motions!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(questions_per_motion, bool) or not isinstance(questions_per_motion, (int, np.integer)) or questions_per_motion < 1:
        raise ValueError(f"questions_per_motion must be a positive integer, got {questions_per_motion!r}")
    if rows not in ("questions", "motions"):
        raise ValueError(f"rows must be 'questions' or 'motions', got {rows!r}")
    if isinstance(extra_train_motions, bool) or not isinstance(extra_train_motions, (int, np.integer)) or extra_train_motions < 0:
        raise ValueError(f"extra_train_motions must be a non-negative integer, got {extra_train_motions!r}")
    fr = _check_splits(splits)
    gen = MotionQAGenerator(fps=fps, max_frames=max_frames)
    vary = Realism.at(realism)  # checked here, before the cache key

    key_params = dict(
        version=GENERATOR_VERSION, num_motions=int(num_motions), seed=int(seed), qpm=int(questions_per_motion),
        splits=fr, rows=rows, include_joints=bool(include_joints), render_video=bool(render_video),
        video_size=int(video_size), fps=float(fps), max_frames=int(max_frames),
    )  # fmt: skip
    if extra_train_motions:  # only then, so that the caches written before this argument keep their keys
        key_params["extra_train"] = int(extra_train_motions)
    if vary is not None:  # likewise
        key_params["realism"] = float(realism)
    key = hashlib.sha1(json.dumps(key_params, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    final = root / f"motionqa-v{GENERATOR_VERSION}-{key}"
    if final.is_dir() and not overwrite:
        try:
            return _load_cached(final, rows, include_joints)
        except (FileNotFoundError, ValueError, OSError, KeyError):
            shutil.rmtree(final, ignore_errors=True)  # a broken cache: rebuild it
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        (tmp / "motions").mkdir()
        if render_video:
            (tmp / "videos").mkdir()
            from humocon_hf.processing.rendering import save_preview
        split_idx = split_motion_indices(int(num_motions), int(seed), fr)
        split_idx["train"] += list(range(int(num_motions), int(num_motions) + int(extra_train_motions)))
        features = _features(rows, include_joints)
        out = {}
        for split, indices in split_idx.items():
            cols: dict[str, list] = {k: [] for k in features}
            split_realism = Realism.for_split(realism, split)
            for i in indices:
                rec = gen.generate(int(seed), i, int(questions_per_motion), realism=split_realism)
                mid = rec["motion_id"]
                np.save(tmp / "motions" / f"{mid}.npy", rec["joints"])
                video = None
                if render_video:
                    save_preview(rec["joints"], tmp / "videos" / f"{mid}.mp4", fps=gen.fps, size=video_size,
                                 legend=False)  # training video: no text on it
                    video = str(final / "videos" / f"{mid}.mp4")
                motion = dict(
                    motion_id=mid, motion_path=str(final / "motions" / f"{mid}.npy"), video_path=video, fps=gen.fps,
                    num_frames=len(rec["joints"]), segments=rec["segments"], caption=rec["caption"],
                )  # fmt: skip
                if include_joints:
                    motion["joints"] = rec["joints"]
                if rows == "motions":
                    for k in features:
                        cols[k].append(motion[k])
                    continue
                for qi, q in enumerate(rec["questions"]):
                    row = dict(
                        motion, id=f"{mid}-q{qi}", question=q["question"], answer=q["answer"],
                        query_type=q["query_type"], relation_type=q["relation_type"], program=q["program"],
                        conversations=[{"role": "user", "content": q["question"]}, {"role": "assistant", "content": q["answer"]}],
                    )  # fmt: skip
                    for k in features:
                        cols[k].append(row[k])
            out[split] = datasets.Dataset.from_dict(cols, features=features)
        # datasets cannot reload an empty split saved to disk: keep those out and rebuild them on load.
        if any(len(v) for v in out.values()):
            datasets.DatasetDict({k: v for k, v in out.items() if len(v)}).save_to_disk(str(tmp / "dataset"))
        empty = [k for k, v in out.items() if not len(v)]
        (tmp / "params.json").write_text(json.dumps(dict(key_params, empty_splits=empty), indent=1))
        if overwrite and final.is_dir():
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: use its copy
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _load_cached(final, rows, include_joints)


def _load_cached(folder: Path, rows: str, include_joints: bool):
    import datasets

    params = json.loads((folder / "params.json").read_text())
    dd = datasets.load_from_disk(str(folder / "dataset")) if (folder / "dataset").is_dir() else datasets.DatasetDict()
    features = _features(rows, include_joints)
    for split in params["empty_splits"]:
        dd[split] = datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    return datasets.DatasetDict({k: dd[k] for k in ("train", "validation", "test")})

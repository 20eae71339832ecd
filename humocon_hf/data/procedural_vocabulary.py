"""Procedural clips of what people are asked about in real motion and that neither the benchmark's generator nor the
shared real sources show: raising one hand or both, waving with both hands, turning on the spot or while walking.

Studios and labs record these ("raise-up-both-hands", "walk-turn-left"); without them a model tuned on the benchmark
answers "wave" to a raised arm and "forward" to "Which way does the person turn, left or right?". Each clip is a row of
facts in :mod:`.real_motion_qa`'s schema (action, body part, turn, caption), so the data stage stores it beside the
real takes and stage 3 asks about it in the same phrasings. Training data only: the procedural test split and the real
lines are unchanged by them.

Turning is applied to the solved joints: each frame's body is rotated about its pelvis by the heading change so far,
and the pelvis path by the same heading (a walk curves, stepping on the spot pivots). A positive heading change turns
towards the person's own left (+X when facing +Z, SMPL's convention); :func:`measure_turn` reads it back from any
SMPL-22 clip, real or not.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from humocon_hf.processing.feature_extraction_motion import heading_angles, rotate_y
from humocon_hf.processing.smpl22 import DEFAULT_FPS, JOINT_INDEX

from .procedural import _add_sway
from .procedural_actions import Gait, Style, arm_target, bump, lerp, neutral, ramp
from .procedural_body import Body, solve_joints

__all__ = ["VOCABULARY_KINDS", "VOCABULARY_ACTION_WORDS", "measure_turn", "vocabulary_clip", "vocabulary_takes"]

# kind -> (action, body part, turn, caption). Both sides of every sided kind are listed, so no mirroring is needed.
VOCABULARY_KINDS: dict[str, tuple[str, str | None, str | None, str]] = {
    "raise-left-hand": ("raise", "left hand", None, "raises the left hand above the head and lowers it again"),
    "raise-right-hand": ("raise", "right hand", None, "raises the right hand above the head and lowers it again"),
    "raise-both-hands": ("raise", "both hands", None, "raises both hands above the head and lowers them again"),
    "wave-both-hands": ("wave", "both hands", None, "waves with both hands raised"),
    "turn-left": ("turn", None, "left", "steps on the spot and turns to the left"),
    "turn-right": ("turn", None, "right", "steps on the spot and turns to the right"),
    "walk-turn-left": ("walk", None, "left", "walks forward and turns to the left"),
    "walk-turn-right": ("walk", None, "right", "walks forward and turns to the right"),
}
# Answer words these clips add to the real ones (option questions draw their distractors from both).
VOCABULARY_ACTION_WORDS = ("raise", "turn")


def measure_turn(joints: np.ndarray, min_degrees: float = 45.0) -> str | None:
    """Which way a SMPL-22 clip (T, 22, 3), Y up, turns overall: "left" (towards the person's own left), "right", or
    None when the facing direction changes by less than ``min_degrees`` in total (unwrapped, so a full circle counts)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) < 2:
        raise ValueError(f"measure_turn: expected SMPL-22 joints (T >= 2, 22, 3), got shape {joints.shape}")
    # Heading change frame to frame, wrapped to (-pi, pi]: positive turns +Z towards +X, the person's own left.
    step = np.diff(heading_angles(joints))
    total = float(np.degrees(np.sum(np.angle(np.exp(1j * step)))))
    if abs(total) < min_degrees:
        return None
    return "left" if total > 0 else "right"


def _turned(joints: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate frame t's body about its pelvis by yaw[t] (radians, + = left) and re-integrate the pelvis path."""
    joints = joints.astype(np.float64)
    root = joints[:, JOINT_INDEX["pelvis"]] * np.array([1.0, 0.0, 1.0])  # the pelvis on the floor plane
    steps = rotate_y(np.diff(root, axis=0), yaw[1:])
    new_root = root[0] + np.concatenate([np.zeros((1, 3)), np.cumsum(steps, axis=0)])
    return rotate_y(joints - root[:, None], yaw[:, None]) + new_root[:, None]


def _raise_arms(p, body: Body, t: np.ndarray, sides: tuple[int, ...], rng: np.random.Generator, wave: bool) -> None:
    """Raise the wrists of ``sides`` (+1 left, -1 right) above the head (optionally waving) and lower them."""
    D = t[-1] if len(t) else 0.0
    for s in sides:
        a = "l" if s > 0 else "r"
        t0 = rng.uniform(0.1, 0.5)
        t1 = t0 + rng.uniform(0.4, 0.9)
        t3 = D - rng.uniform(0.1, 0.5)
        t2 = max(t1 + 0.3, t3 - rng.uniform(0.4, 0.9))
        up = bump(t, t0, t1, t2, t3)
        x, y, z = s * rng.uniform(0.05, 0.35), rng.uniform(0.8, 0.97), rng.uniform(-0.05, 0.3)
        if wave:
            freq = rng.uniform(1.5, 2.6)
            osc = np.sin(2 * np.pi * freq * np.clip(t - t1, 0, None) + rng.uniform(0, 2 * np.pi)) * bump(t, t1 - 0.1, t1, t2, t2 + 0.1)
            x = s * (rng.uniform(0.3, 0.5) + 0.18 * rng.uniform(0.7, 1.2) * osc)
            y = rng.uniform(0.6, 0.85)
            z = 0.15
        target = arm_target(body, x, y, z)
        norm = np.linalg.norm(target, axis=-1, keepdims=True) / (0.97 * body.arm)
        target = target / np.maximum(norm, 1.0)
        W = p[f"{a}_wrist"]
        W[:] = lerp(W.copy(), np.broadcast_to(target, W.shape), up)
        pole = np.array([s * 1.0, -0.8 if wave else 0.0, 0.1 if wave else -0.4])
        p[f"{a}_elbow"] = lerp(p[f"{a}_elbow"], np.broadcast_to(pole, W.shape), up)


def vocabulary_clip(kind: str, rng: np.random.Generator, fps: float = DEFAULT_FPS) -> np.ndarray:
    """One clip of ``kind`` (a key of :data:`VOCABULARY_KINDS`): SMPL-22 joints (T, 22, 3) float32, metres, Y up, by a
    randomly proportioned person at a random facing and place, with random timing and amplitude."""
    if kind not in VOCABULARY_KINDS:
        raise ValueError(f"unknown vocabulary clip kind {kind!r}; expected one of {list(VOCABULARY_KINDS)}")
    body = Body.sample(rng)
    style = Style.sample(rng, body)
    heading = float(rng.uniform(-np.pi, np.pi))
    start_xz = rng.uniform(-2.0, 2.0, size=2)
    turning = kind.startswith(("turn-", "walk-turn-"))
    duration = rng.uniform(3.0, 6.0) if turning else rng.uniform(2.5, 5.0)
    t = np.arange(int(round(duration * fps))) / fps
    if turning:
        gait = Gait.sample("walk", rng, body, style, "forward", duration)
        if kind.startswith("turn-"):  # stepping on the spot
            gait.settings["speed"] = rng.uniform(0.03, 0.12)
        p = gait.pose(t)
    else:
        p = neutral(len(t), body, style)
        sides = (1, -1) if "both" in kind else ((1,) if "left" in kind else (-1,))
        _raise_arms(p, body, t, sides, rng, wave=kind.startswith("wave"))
    _add_sway(p, t, rng)
    joints = solve_joints(p, body, heading, start_xz, fps)
    if turning:
        sign = 1.0 if kind.endswith("left") else -1.0
        angle = np.radians(rng.uniform(70.0, 180.0))
        start = rng.uniform(0.1, 0.35) * duration
        end = start + rng.uniform(0.35, 0.6) * duration
        joints = _turned(joints, sign * angle * ramp(t, start, min(end, duration))).astype(np.float32)
    return joints


def vocabulary_takes(per_kind: int, seed: int, fps: float = DEFAULT_FPS,
                     split: str = "train") -> Iterator[tuple[str, np.ndarray, dict]]:
    """``per_kind`` clips of every kind, seeded: (id, joints, facts) with facts in :mod:`.real_motion_qa`'s schema.
    ``split`` "train" or "heldout": separate draws (other people, timings, turns) for the evaluation's line."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    stream = 7919 if split == "train" else 7927
    for kind_index, (kind, (action, part, turn, caption)) in enumerate(VOCABULARY_KINDS.items()):
        for i in range(per_kind):
            rng = np.random.default_rng([int(seed), stream, kind_index, i])
            facts = {"action": action, "body_part": part, "direction": "forward" if kind.startswith("walk") else None,
                     "turn": turn, "veer": None, "caption": caption, "label": kind}
            yield f"vocab_{'' if split == 'train' else 'heldout_'}{kind}_{i:03d}", vocabulary_clip(kind, rng, fps), facts

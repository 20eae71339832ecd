"""Is this a pose a person can take? Warnings for SMPL-22 motions that no human body makes, with their frames.

A rig mapped onto the wrong joints, a capture with swapped markers or a mis-scaled file still loads as a valid
(T, 22, 3) array, and the model then answers about a body that does not exist. These checks look for what such
errors produce (issue 30: CMU 07_12, a brisk walk, loads with the thighs ~147 degrees apart at standing height; CMU
09_10, a run, with 177 degrees):

* `thigh_spread` - the thighs further apart than a split while the pelvis is at standing height above the lower foot
  (a squat, sitting or lying down spread the thighs with the pelvis low, which is not flagged);
* `limbs_crossed` - the left knee far to the right of the right knee while standing, or the left elbow far to the
  right of the right elbow (across the hips' left-right axis: a limb mapped onto the other side);
* `below_floor` - a foot far below the floor (y = 0), or far below the height the feet rest at in the rest of the
  clip (a floor set by a glitch frame);
* `bone_length` - a limb bone (thigh, shin, upper arm, forearm) whose length drifts from its median: a rigid bone
  does not stretch, so a joint is mapped to the wrong place in those frames or the markers slipped.

The limits were set on the real mocap of `../shared/data` (41 CMU trials, 174 Bandai Namco studio clips including
dances and kicks, 188 HDM05 clips including squats, kicks and lying down, a HumanML3D clip): the largest values of
clips that look right are thighs 136 degrees apart at standing height (a dance), knees crossed by 7 cm (a cross-step),
elbows by 13 cm (an elbow-to-knee exercise), a foot 17 cm below the resting feet (walking on uneven terrain) and
limb bones 10% off their median (a dance); each limit sits above these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .smpl22 import DEFAULT_FPS, JOINT_INDEX, check_joints

MAX_THIGH_SPREAD_DEG = 140.0
# "Standing": the pelvis higher above the lower foot than this share of the leg's length (thigh + shin).
STANDING_PELVIS_SHARE = 0.6
MAX_KNEE_CROSSING_M = 0.15
MAX_ELBOW_CROSSING_M = 0.25
MAX_BELOW_FLOOR_M = 0.10  # below y = 0: the joint itself is a few cm above the sole
MAX_BELOW_RESTING_FEET_M = 0.25
RESTING_FOOT_SPEED_M_S = 0.3
MAX_BONE_CHANGE = 0.15  # relative to the bone's median length

_LIMB_BONES = {
    "left thigh": ("left_hip", "left_knee"), "right thigh": ("right_hip", "right_knee"),
    "left shin": ("left_knee", "left_ankle"), "right shin": ("right_knee", "right_ankle"),
    "left upper arm": ("left_shoulder", "left_elbow"), "right upper arm": ("right_shoulder", "right_elbow"),
    "left forearm": ("left_elbow", "left_wrist"), "right forearm": ("right_elbow", "right_wrist"),
}
_FEET = [JOINT_INDEX[n] for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]


@dataclass
class PlausibilityWarning:
    """One implausible thing in a motion: which check, a one-line message with the frames, the frame ranges
    `[(start, end), ...]` (end exclusive, at the motion's frame rate) and the worst value (degrees, metres or a
    relative change)."""

    check: str
    message: str
    frames: list[tuple[int, int]] = field(default_factory=list)
    worst: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def frame_ranges(mask: np.ndarray) -> list[tuple[int, int]]:
    """`[(start, end), ...]` (end exclusive) of the runs of True in a 1-d boolean mask."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def describe_frames(ranges: list[tuple[int, int]], fps: float, most: int = 4) -> str:
    """`frames 12-40 (0.60-2.00 s), 51 (2.55 s)` for the first `most` ranges, then how many more."""
    def one(start: int, end: int) -> str:
        if end - start == 1:
            return f"{start} ({start / fps:.2f} s)"
        return f"{start}-{end - 1} ({start / fps:.2f}-{(end - 1) / fps:.2f} s)"

    text = ", ".join(one(a, b) for a, b in ranges[:most])
    if len(ranges) > most:
        text += f" and {len(ranges) - most} more"
    return ("frame " if len(ranges) == 1 and ranges[0][1] - ranges[0][0] == 1 else "frames ") + text


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def check_plausibility(joints, fps: float | None = None) -> list[PlausibilityWarning]:
    """Warnings for poses no human body makes in a SMPL-22 motion (metres, Y up, floor at y = 0); empty when none.

    Args:
        joints: a `(T, 22, 3)` array or a `MotionClip` (its own frame rate is used).
        fps: the frame rate, for the times in the messages and the feet's speed (default: the clip's, else 20).
    """
    if hasattr(joints, "joints") and hasattr(joints, "fps"):  # MotionClip
        fps = float(joints.fps) if fps is None else fps
        joints = joints.joints
    fps = DEFAULT_FPS if fps is None else float(fps)
    if not fps > 0:
        raise ValueError(f"check_plausibility: fps must be > 0, got {fps}")
    j = check_joints(joints, "check_plausibility(joints)").astype(np.float64)
    idx = JOINT_INDEX
    warnings: list[PlausibilityWarning] = []

    def warn(check: str, mask: np.ndarray, worst: float, what: str, why: str) -> None:
        ranges = frame_ranges(mask)
        if ranges:
            warnings.append(PlausibilityWarning(check, f"{what} in {describe_frames(ranges, fps)}: {why}", ranges,
                                                round(float(worst), 3)))

    left_hip, right_hip = j[:, idx["left_hip"]], j[:, idx["right_hip"]]
    left_thigh, right_thigh = j[:, idx["left_knee"]] - left_hip, j[:, idx["right_knee"]] - right_hip
    leg = np.median(np.linalg.norm(left_thigh, axis=-1) + np.linalg.norm(
        j[:, idx["left_ankle"]] - j[:, idx["left_knee"]], axis=-1))
    pelvis_height = 0.5 * (left_hip[:, 1] + right_hip[:, 1]) - j[:, _FEET, 1].min(axis=1)  # above the lower foot
    standing = pelvis_height > STANDING_PELVIS_SHARE * leg if leg > 1e-6 else np.zeros(len(j), bool)

    # Thighs apart further than a split, at standing height.
    cos = np.sum(_unit(left_thigh) * _unit(right_thigh), axis=-1)
    spread = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    bad = standing & (spread > MAX_THIGH_SPREAD_DEG)
    if bad.any():
        worst = int(np.argmax(np.where(bad, spread, -1.0)))
        warn("thigh_spread", bad, spread[worst],
             f"thighs up to {spread[worst]:.0f} deg apart (limit {MAX_THIGH_SPREAD_DEG:.0f}) with the pelvis "
             f"{pelvis_height[worst]:.2f} m above the lower foot", "a split at standing height; a leg joint is probably "
             "mapped wrongly or the capture is broken")

    # Limbs on the other side: measured along the hips' left-right axis (towards the person's left).
    lateral = _unit(left_hip - right_hip)
    for limb, limit, only_standing in (("knee", MAX_KNEE_CROSSING_M, True), ("elbow", MAX_ELBOW_CROSSING_M, False)):
        crossing = np.sum((j[:, idx[f"right_{limb}"]] - j[:, idx[f"left_{limb}"]]) * lateral, axis=-1)
        bad = (crossing > limit) & (standing if only_standing else True)
        if bad.any():
            warn("limbs_crossed", bad, crossing[bad].max(),
                 f"left {limb} up to {crossing[bad].max():.2f} m to the right of the right {limb} (limit {limit:.2f} m"
                 f"{', standing' if only_standing else ''})", "the two sides' joints are probably swapped")

    # Feet below the floor (y = 0), or below the height the feet rest at.
    feet = j[:, _FEET]  # (T, 4, 3)
    lowest = feet[..., 1].min(axis=1)
    bad = lowest < -MAX_BELOW_FLOOR_M
    if bad.any():
        warn("below_floor", bad, -lowest.min(),
             f"a foot up to {-lowest.min():.2f} m below the floor (y = 0; limit {MAX_BELOW_FLOOR_M:.2f} m)",
             "the motion is not standing on its floor")
    if len(j) > 1:
        speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps  # (T-1, 4)
        speed = np.concatenate([speed[:1], speed])
        resting = np.where(speed < RESTING_FOOT_SPEED_M_S, feet[..., 1], np.inf).min(axis=1)
        resting = resting[np.isfinite(resting)]
        if len(resting) >= max(3, len(j) // 10):
            rest_height = float(np.median(resting))
            depth = rest_height - lowest
            bad = depth > MAX_BELOW_RESTING_FEET_M
            if bad.any():
                warn("below_floor", bad, depth.max(),
                     f"a foot up to {depth.max():.2f} m below the height the feet rest at elsewhere ({rest_height:.2f} m; "
                     f"limit {MAX_BELOW_RESTING_FEET_M:.2f} m)", "the floor or the root's height is off")

    # Rigid limb bones that change length.
    for name, (a, b) in _LIMB_BONES.items():
        length = np.linalg.norm(j[:, idx[b]] - j[:, idx[a]], axis=-1)
        median = float(np.median(length))
        if median < 1e-6:
            continue
        change = np.abs(length / median - 1.0)
        bad = change > MAX_BONE_CHANGE
        if bad.any():
            warn("bone_length", bad, change.max(),
                 f"{name} {length.min():.2f}-{length.max():.2f} m long (median {median:.2f} m, limit "
                 f"±{100 * MAX_BONE_CHANGE:.0f}%)", "a bone does not stretch; a joint is mapped wrongly there or "
                 "markers slipped")
    return warnings


__all__ = ["PlausibilityWarning", "check_plausibility", "describe_frames", "frame_ranges"]

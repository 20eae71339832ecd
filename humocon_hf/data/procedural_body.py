"""Parametric kinematic body for the procedural motion benchmark.

A motion is described per frame by a small vector of *pose parameters* (root velocity, pelvis height,
torso angles, ankle and wrist targets, knee / elbow pole directions, foot pitch). Action generators
write these parameters as analytic functions of time, segments are blended in parameter space, and
`solve_joints` turns the parameters into SMPL-22 joint positions with forward kinematics for the
spine and two-bone IK for the limbs. Every bone is a fixed-length vector (a rotated rest offset or an
exact two-bone IK solution), so bone lengths are constant over time whatever the parameters are.

Frames: the *heading frame* has the person facing +Z, their left along +X and Y up; the pelvis sits
above the heading-frame origin. The *torso frame* is the heading frame rotated by the torso angles.
Ankle targets and world-frame wrist targets are given in the heading frame with X/Z relative to the
pelvis and Y measured from the floor; torso-frame wrist targets are relative to the shoulder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humocon_hf.processing.smpl22 import JOINT_INDEX, NUM_JOINTS

# Name -> width of each pose parameter block; `PARAM_SLICES` maps names to columns of the (T, P) array.
PARAM_LAYOUT = (
    ("vel", 2),  # root velocity (x, z) in the heading frame, m/s
    ("h", 1),  # desired pelvis height above the floor (lowered automatically so stance feet reach it)
    ("air", 1),  # extra height added after the floor contact (flight phases), m
    ("torso", 3),  # forward bend (pitch), side bend (roll), twist (yaw), rad
    ("head", 1),  # head pitch (down > 0), rad
    ("l_ankle", 3),
    ("l_knee", 3),  # knee pole direction (heading frame)
    ("l_foot", 1),  # foot pitch, toes down > 0
    ("r_ankle", 3),
    ("r_knee", 3),
    ("r_foot", 1),
    ("l_wrist", 3),  # wrist target relative to the shoulder in the torso frame
    ("l_wrist_w", 3),  # wrist target in the heading frame (x, z from the pelvis, y from the floor)
    ("l_world", 1),  # blend weight of the heading-frame wrist target (0 = torso frame)
    ("l_elbow", 3),  # elbow pole direction (torso frame)
    ("r_wrist", 3),
    ("r_wrist_w", 3),
    ("r_world", 1),
    ("r_elbow", 3),
)
PARAM_SLICES: dict[str, slice] = {}
_col = 0
for _name, _width in PARAM_LAYOUT:
    PARAM_SLICES[_name] = slice(_col, _col + _width)
    _col += _width
NUM_PARAMS = _col
del _col, _name, _width

FLOOR_CLEARANCE = 0.01
PELVIS_SOFTNESS = 0.03  # m; smoothing of the pelvis-height limit set by the legs' reach
CONTACT_SOFTNESS = 0.006  # m; smoothing of which joint touches the floor
# Share of the torso angles each spine bone (pelvis->spine1, ->spine2, ->spine3) takes; neck and head
# take the full angles.
SPINE_FRACTIONS = (0.5, 0.75, 1.0)  # lowest joint sits this far above the floor when on the ground (m)


class Pose:
    """A (T, NUM_PARAMS) parameter array with named views: ``pose["l_ankle"][:, 1] += 0.1``."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __getitem__(self, name: str) -> np.ndarray:
        return self.array[:, PARAM_SLICES[name]]

    def __setitem__(self, name: str, value) -> None:
        self.array[:, PARAM_SLICES[name]] = value

    def copy(self) -> Pose:
        return Pose(self.array.copy())

    def __len__(self) -> int:
        return self.array.shape[0]


# ------------------------------------------------------------------------------------ rotations


def _rot(a: np.ndarray, i: int, j: int, sign: float) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations in the (i, j) coordinate plane."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    k = 3 - i - j
    r[..., k, k] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -sign * s
    r[..., j, i] = sign * s
    return r


def rot_x(a: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3); positive angles tip +Y towards +Z (a forward bend of the torso)."""
    return _rot(a, 1, 2, 1.0)


def rot_y(a: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3); positive angles turn +Z towards +X (towards the person's left)."""
    return _rot(a, 2, 0, 1.0)


def rot_z(a: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3); positive angles tip +Y towards -X (a bend to the person's right)."""
    return _rot(a, 0, 1, 1.0)


def torso_rotation(pitch: np.ndarray, roll: np.ndarray, twist: np.ndarray) -> np.ndarray:
    """Twist about the vertical, then bend forward, then sideways: (T, 3, 3)."""
    return rot_y(twist) @ rot_x(pitch) @ rot_z(roll)


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """(T,3,3) @ (3,) or (T,3) -> (T,3)."""
    if vec.ndim == 1:
        return rot @ vec
    return np.einsum("tij,tj->ti", rot, vec)


def _soft_min(x: np.ndarray, tau: float) -> np.ndarray:
    """-tau * log(sum(exp(-x / tau))) over the last axis: smooth and <= min(x)."""
    m = x.min(axis=-1)
    return m - tau * np.log(np.exp(-(x - m[..., None]) / tau).sum(axis=-1))


def two_bone_ik(root: np.ndarray, target: np.ndarray, l1: float, l2: float, pole: np.ndarray):
    """Exact two-bone IK: returns (middle, end) joint positions, (T,3) each.

    The end reaches `target` when it is within reach (else the limb points at it, straight); the middle
    joint bends towards `pole`. |middle - root| == l1 and |end - middle| == l2 always.
    """
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    reach = np.clip(dist, abs(l1 - l2) + 1e-4, (l1 + l2) * (1.0 - 1e-6))
    a = (l1 * l1 - l2 * l2 + reach * reach) / (2.0 * reach)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    v = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    vn = np.linalg.norm(v, axis=-1, keepdims=True)
    # Degenerate pole (parallel to the limb): fall back to any perpendicular direction.
    fallback = np.cross(u, np.array([1.0, 0.0, 0.0]))
    fallback_alt = np.cross(u, np.array([0.0, 0.0, 1.0]))
    fb = np.where(np.linalg.norm(fallback, axis=-1, keepdims=True) > 1e-3, fallback, fallback_alt)
    v = np.where(vn > 1e-6, v / np.maximum(vn, 1e-9), fb / np.maximum(np.linalg.norm(fb, axis=-1, keepdims=True), 1e-9))
    middle = root + u * a + v * h
    end = root + u * reach
    return middle, end


# ------------------------------------------------------------------------------------ body


# Template rest offsets (metres, heading frame, upright, arms hanging), roughly SMPL-neutral proportions
# as seen in HumanML3D joint data. Limb segments are given as lengths because IK places them.
_HIP = np.array([0.088, -0.062, -0.005])
_SPINE = (np.array([0.0, 0.115, -0.02]), np.array([0.0, 0.135, 0.02]), np.array([0.0, 0.055, 0.015]))
_NECK = np.array([0.0, 0.205, -0.025])
_HEAD = np.array([0.0, 0.09, 0.045])
_COLLAR = np.array([0.072, 0.118, -0.012])
_SHOULDER = np.array([0.125, -0.012, -0.008])
_FOOT = np.array([0.0, -0.058, 0.132])
_THIGH, _SHIN, _UPPER_ARM, _FOREARM = 0.39, 0.42, 0.26, 0.265
_ANKLE_HEIGHT = 0.075


@dataclass
class Body:
    """Bone geometry of one synthetic person; all lengths in metres."""

    hip: np.ndarray
    spine: tuple
    neck: np.ndarray
    head: np.ndarray
    collar: np.ndarray
    shoulder: np.ndarray
    foot: np.ndarray
    thigh: float
    shin: float
    upper_arm: float
    forearm: float
    ankle_height: float

    @property
    def leg(self) -> float:
        return self.thigh + self.shin

    @property
    def arm(self) -> float:
        return self.upper_arm + self.forearm

    @property
    def stand_height(self) -> float:
        """Pelvis height with nearly straight legs and the ankles at ankle height."""
        return self.ankle_height - self.hip[1] + 0.995 * self.leg

    def shoulder_offset(self, side: int, pitch: float = 0.0) -> np.ndarray:
        """Shoulder position relative to the pelvis for a torso bent forward by `pitch` (side +1 left)."""
        key = (side, float(pitch))
        cache = self.__dict__.setdefault("_shoulder_cache", {})
        if key not in cache:
            cache[key] = self._shoulder_offset(side, pitch)
        return cache[key].copy()

    def _shoulder_offset(self, side: int, pitch: float) -> np.ndarray:
        p = np.zeros(3)
        for f, off in zip(SPINE_FRACTIONS, self.spine):
            p = p + torso_rotation(np.array([pitch * f]), np.zeros(1), np.zeros(1))[0] @ off
        rot = torso_rotation(np.array([pitch]), np.zeros(1), np.zeros(1))[0]
        m = np.array([side, 1.0, 1.0])
        return p + rot @ (self.collar * m) + rot @ (self.shoulder * m)

    @classmethod
    def template(cls, scale: float = 1.0) -> Body:
        return cls.sample(None, scale=scale)

    @classmethod
    def sample(cls, rng: np.random.Generator | None, scale: float | None = None) -> Body:
        """Template proportions, scaled overall (stature) and per body part (legs, arms, torso, width)."""
        if rng is None:
            f = dict(s=1.0 if scale is None else scale, leg=1.0, arm=1.0, torso=1.0, width=1.0, hipw=1.0)
        else:
            f = dict(
                s=rng.uniform(0.88, 1.1) if scale is None else scale,
                leg=rng.uniform(0.94, 1.06),
                arm=rng.uniform(0.93, 1.07),
                torso=rng.uniform(0.94, 1.06),
                width=rng.uniform(0.9, 1.12),
                hipw=rng.uniform(0.9, 1.12),
            )
        s = f["s"]
        w = np.array([f["width"], 1.0, 1.0])
        return cls(
            hip=_HIP * np.array([f["hipw"], f["leg"], 1.0]) * s,
            spine=tuple(o * f["torso"] * s for o in _SPINE),
            neck=_NECK * f["torso"] * s,
            head=_HEAD * s,
            collar=_COLLAR * w * s,
            shoulder=_SHOULDER * w * s,
            foot=_FOOT * f["leg"] * s,
            thigh=_THIGH * f["leg"] * s,
            shin=_SHIN * f["leg"] * s,
            upper_arm=_UPPER_ARM * f["arm"] * s,
            forearm=_FOREARM * f["arm"] * s,
            ankle_height=_ANKLE_HEIGHT * s,
        )


def solve_joints(pose: Pose, body: Body, heading: float, start_xz, fps: float) -> np.ndarray:
    """Pose parameters (T, P) -> joint positions (T, 22, 3) float32 in the world frame.

    The root's horizontal path integrates the heading-frame velocity; vertically the body is placed so
    its lowest joint rests on the floor, then `air` is added (flights of jumps and runs).
    """
    T = len(pose)
    pitch, roll, twist = (pose["torso"][:, k] for k in range(3))
    h_des = pose["h"][:, 0]
    J = np.zeros((T, NUM_JOINTS, 3))

    # Lower the pelvis where needed so that both ankle targets are within reach of the legs.
    # A soft minimum (never above the hard one) keeps the pelvis path smooth where the limiting leg
    # changes, instead of the kinks a hard minimum would put into the pelvis height.
    limits = [h_des]
    lmax = 0.998 * body.leg
    for side, name in ((1, "l_ankle"), (-1, "r_ankle")):
        a = pose[name]
        hip = body.hip * np.array([side, 1.0, 1.0])
        dxz2 = (a[:, 0] - hip[0]) ** 2 + (a[:, 2] - hip[2]) ** 2
        limits.append(a[:, 1] - hip[1] + np.sqrt(np.maximum(lmax * lmax - dxz2, 0.0)))
    h = _soft_min(np.stack(limits, -1), PELVIS_SOFTNESS)
    pelvis = np.zeros((T, 3))
    pelvis[:, 1] = h
    J[:, JOINT_INDEX["pelvis"]] = pelvis

    # Spine: the bend is spread evenly over the pelvis-to-neck bones.
    p = pelvis
    for f, off, name in zip(SPINE_FRACTIONS, body.spine, ("spine1", "spine2", "spine3")):
        p = p + _apply(torso_rotation(pitch * f, roll * f, twist * f), off)
        J[:, JOINT_INDEX[name]] = p
    top = torso_rotation(pitch, roll, twist)
    neck = p + _apply(top, body.neck)
    J[:, JOINT_INDEX["neck"]] = neck
    J[:, JOINT_INDEX["head"]] = neck + _apply(top @ rot_x(pose["head"][:, 0]), body.head)

    for side, pre in ((1, "l"), (-1, "r")):
        m = np.array([side, 1.0, 1.0])
        name = "left" if side > 0 else "right"
        collar = p + _apply(top, body.collar * m)
        shoulder = collar + _apply(top, body.shoulder * m)
        J[:, JOINT_INDEX[f"{name}_collar"]] = collar
        J[:, JOINT_INDEX[f"{name}_shoulder"]] = shoulder
        w = pose[f"{pre}_world"]
        tgt_torso = shoulder + _apply(top, pose[f"{pre}_wrist"])
        tgt_world = pose[f"{pre}_wrist_w"]
        target = (1.0 - w) * tgt_torso + w * tgt_world
        elbow, wrist = two_bone_ik(shoulder, target, body.upper_arm, body.forearm, _apply(top, pose[f"{pre}_elbow"]))
        J[:, JOINT_INDEX[f"{name}_elbow"]] = elbow
        J[:, JOINT_INDEX[f"{name}_wrist"]] = wrist

        hip = pelvis + body.hip * m
        J[:, JOINT_INDEX[f"{name}_hip"]] = hip
        knee, ankle = two_bone_ik(hip, pose[f"{pre}_ankle"], body.thigh, body.shin, pose[f"{pre}_knee"])
        J[:, JOINT_INDEX[f"{name}_knee"]] = knee
        J[:, JOINT_INDEX[f"{name}_ankle"]] = ankle
        J[:, JOINT_INDEX[f"{name}_foot"]] = ankle + _apply(rot_x(pose[f"{pre}_foot"][:, 0]), body.foot)

    # Floor contact (soft minimum over the joints: smooth when the supporting joint changes), then flight.
    lift = FLOOR_CLEARANCE - _soft_min(J[:, :, 1], CONTACT_SOFTNESS) + pose["air"][:, 0]
    J[:, :, 1] += lift[:, None]

    # Heading rotation and the integrated root path.
    dt = 1.0 / fps
    c, s = np.cos(heading), np.sin(heading)
    vel = pose["vel"]
    vx = c * vel[:, 0] + s * vel[:, 1]
    vz = -s * vel[:, 0] + c * vel[:, 1]
    root = np.zeros((T, 2))
    root[1:, 0] = np.cumsum(vx[:-1]) * dt
    root[1:, 1] = np.cumsum(vz[:-1]) * dt
    root += np.asarray(start_xz, dtype=np.float64)
    x, z = J[:, :, 0].copy(), J[:, :, 2].copy()
    J[:, :, 0] = c * x + s * z + root[:, :1]
    J[:, :, 2] = -s * x + c * z + root[:, 1:]
    return J.astype(np.float32)

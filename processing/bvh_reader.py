"""`load_bvh`: a BVH from any humanoid rig to SMPL-22 joints: the rig tables of known skeletons (CMU, iClone, Mixamo)
and, for the others, the automatic mapping of `bvh_skeleton.py`; units, up axis and sides from the geometry; a
leading T-pose dropped; the floor at y = 0."""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .bvh_parser import bvh_forward_kinematics, parse_bvh
from .bvh_skeleton import auto_rig_table, forward_direction, resolve_joint_map
from .motion_clip import _PLAUSIBLE_FPS, MotionClip, PathLike, _positive_rate, resample_joints
from .smpl22 import DEFAULT_FPS, JOINT_INDEX, NUM_JOINTS, SMPL22_JOINT_NAMES

# Each rig names the source joint (or ("lerp", a, b, t) between two) for the SMPL joints that have
# a direct counterpart, plus the spine joints strictly between the hips and the neck. Pelvis and
# spine1..3 are derived (see _derive_trunk). Names are matched after _norm_name.
_LIMBS = ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist")


def _sided(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for part in _LIMBS:
        out[f"left_{part}"] = left[part]
        out[f"right_{part}"] = right[part]
    return out


def _daz_side(s: str) -> dict[str, Any]:
    return dict(hip=f"{s}thigh", knee=f"{s}shin", ankle=f"{s}foot", foot=f"{s}foot_end", collar=f"{s}collar",
                shoulder=f"{s}shldr", elbow=f"{s}forearm", wrist=f"{s}hand")


def _cmu_side(s: str) -> dict[str, Any]:
    return dict(hip=f"{s}femur", knee=f"{s}tibia", ankle=f"{s}foot", foot=f"{s}toes",
                collar=("lerp", f"{s}clavicle", f"{s}humerus", 0.5),
                shoulder=f"{s}humerus", elbow=f"{s}radius",
                # Vicon / CMU forearms are two bones, radius and wrist (a twist bone): SMPL's wrist is where the hand
                # bone starts (HDM05's own toolbox maps it so), not the mid-forearm start of the wrist bone.
                wrist=f"{s}hand")


def _cc_side(s: str) -> dict[str, Any]:
    return dict(hip=f"{s}_thigh", knee=f"{s}_calf", ankle=f"{s}_foot", foot=f"{s}_toebase", collar=f"{s}_clavicle",
                shoulder=f"{s}_upperarm", elbow=f"{s}_forearm", wrist=f"{s}_hand")


def _mixamo_side(s: str) -> dict[str, Any]:
    return dict(hip=f"{s}upleg", knee=f"{s}leg", ankle=f"{s}foot", foot=f"{s}toebase", collar=f"{s}shoulder",
                shoulder=f"{s}arm", elbow=f"{s}forearm", wrist=f"{s}hand")


BVH_RIG_TABLES: dict[str, dict[str, Any]] = {
    # CMU mocap converted for Daz/Poser (cgspeed; 43 joints: hip, abdomen, chest, rCollar, rShldr...).
    "cmu_daz": dict(
        neck="neck", head="head", spine=("abdomen", "chest"),
        **_sided(_daz_side("l"), _daz_side("r")),
    ),
    # Raw CMU ASF/AMC converted by amc2bvh (31 joints: lhipjoint, lfemur, ltibia, lowerback...).
    "cmu_amc2bvh": dict(
        neck="upperneck", head="head", spine=("upperback", "thorax"),
        **_sided(_cmu_side("l"), _cmu_side("r")),
    ),
    # Reallusion Character Creator / iClone (CC_Base_L_Thigh, CC_Base_Spine01, ...).
    "iclone_cc": dict(
        neck="necktwist01", head="head", spine=("waist", "spine01", "spine02"),
        **_sided(_cc_side("l"), _cc_side("r")),
    ),
    # Mixamo and other HumanIK-style names (Hips, Spine, LeftUpLeg, LeftArm, ...).
    "mixamo": dict(
        neck="neck", head="head", spine=("spine", "spine1", "spine2"),
        **_sided(_mixamo_side("left"), _mixamo_side("right")),
    ),
}


_NAME_PREFIXES = ("mixamorig", "ccbase", "bip001", "bip01")


# SMPL trunk proportions (template skeleton): the pelvis sits 14% of the way from the hip-joint
# centre to the neck, and spine1/2/3 at these arc-length fractions of pelvis -> neck.
_PELVIS_FRACTION = 0.14


_SPINE_FRACTIONS = (0.24, 0.50, 0.60)


def _norm_name(name: str) -> str:
    """Lower-case, drop namespaces (``mixamorig:``) and common rig prefixes (``CC_Base_``)."""
    n = name.split(":")[-1].split("|")[-1].lower()
    n = re.sub(r"[\s\-\._]", "", n)
    for prefix in _NAME_PREFIXES:
        if n.startswith(prefix):
            n = n[len(prefix):].lstrip("_")
            break
    return n


def _source_names(spec: Any) -> list[str]:
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, tuple) and spec and spec[0] == "lerp":
        return [spec[1], spec[2]]
    return [s for item in spec for s in _source_names(item)]


def _match_rig(names: Sequence[str], rig: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The rig table all of whose joint names the file has, as a table of joint indices; None if none does.

    ``rig`` forces one table and raises, naming what is missing, when the file lacks its joints."""
    lookup: dict[str, int] = {}
    for i, name in enumerate(names):
        lookup.setdefault(_norm_name(name), i)
    if rig is not None and rig not in BVH_RIG_TABLES:
        raise ValueError(f"unknown rig {rig!r}; known rigs: {sorted(BVH_RIG_TABLES)} or 'auto' (automatic mapping)")
    candidates = BVH_RIG_TABLES if rig is None else {rig: BVH_RIG_TABLES[rig]}

    def find(n: str) -> int | None:
        return lookup.get(_norm_name(n))

    def to_index(spec: Any) -> Any:
        if isinstance(spec, str):
            return find(spec)
        if spec and spec[0] == "lerp":
            return ("lerp", find(spec[1]), find(spec[2]), spec[3])
        return tuple(to_index(s) for s in spec)

    for rig_name, table in candidates.items():
        missing = [smpl for smpl, spec in table.items() if any(find(s) is None for s in _source_names(spec))]
        if not missing:
            return rig_name, {smpl: to_index(spec) for smpl, spec in table.items()}
        if rig is not None:
            raise ValueError(f"the BVH skeleton lacks the {rig!r} rig's joints for SMPL joints {missing}")
    return None


def _source_indices(spec: Any) -> list[int]:
    if isinstance(spec, (int, np.integer)):
        return [int(spec)]
    if spec and spec[0] == "lerp":
        return [int(spec[1]), int(spec[2])]
    return [i for item in spec for i in _source_indices(item)]


def _eval_spec(spec: Any, pos: np.ndarray) -> np.ndarray:
    if isinstance(spec, (int, np.integer)):
        return pos[:, int(spec)]
    _, a, b, t = spec
    return (1.0 - t) * pos[:, a] + t * pos[:, b]


def _describe_spec(spec: Any, names: Sequence[str]) -> Any:
    """A table entry with joint names instead of indices (for info / ``humocon inspect``)."""
    if isinstance(spec, (int, np.integer)):
        return names[int(spec)]
    if spec and spec[0] == "lerp":
        return f"{1 - spec[3]:g}*{names[spec[1]]} + {spec[3]:g}*{names[spec[2]]}"
    return [names[int(i)] for i in spec]


_REQUIRED_FOR_JOINT_MAP = tuple(n for n in SMPL22_JOINT_NAMES if n not in ("pelvis", "spine1", "spine2", "spine3"))


_STRUCTURE_FRAMES = 48


@dataclasses.dataclass
class PosedSkeleton:
    """A posed skeleton of any file format, as the rig mapping needs it: joint names, parents and end sites, and the
    joints' world positions (file units) computed on demand, for some frames or joints only (BVH and ASF/AMC readers
    both end here).

    ``positions(frames, joints)`` returns (len(frames) or T, J, 3); ``frames`` / ``joints`` None mean all, and only
    ``joints`` (and their ancestors) need be filled."""

    names: list[str]
    parents: list[int]
    is_end_site: list[bool]
    num_frames: int
    positions: Callable[[np.ndarray | None, Sequence[int] | None], np.ndarray]
    source: str


def _choose_rig(skel: PosedSkeleton, rig: str | None, joint_map: Mapping[str, Any] | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(rig name, table of joint indices, report)``: a rig table when one matches exactly, else automatic mapping
    (:mod:`.bvh_skeleton`) from the skeleton's topology, geometry and names, with ``joint_map`` on top."""
    source = skel.source
    if joint_map is None and rig != "auto":
        matched = _match_rig(skel.names, rig)
        if matched is not None:
            return matched[0], matched[1], {}
    overrides = resolve_joint_map(joint_map, skel.names, source) if joint_map is not None else {}
    # Topology and proportions are measured on the posed skeleton (a sample of frames): rest offsets of some rigs
    # point along the bone axes, not where the bones are.
    T = skel.num_frames
    frames = np.unique(np.linspace(0, T - 1, min(T, _STRUCTURE_FRAMES)).round().astype(np.int64))
    sample = skel.positions(frames, None)
    try:
        auto = auto_rig_table(skel.names, skel.parents, sample, skel.is_end_site or [False] * len(skel.names), source)
    except ValueError:
        missing = [k for k in _REQUIRED_FOR_JOINT_MAP if k not in overrides]
        if not overrides or missing:
            if overrides:
                raise ValueError(f"{source}: the skeleton could not be mapped automatically and joint_map lacks {missing}") from None
            raise
        table = dict(overrides)
        table.setdefault("spine", ())
        return "joint_map", table, dict(mapping="joint_map")
    table = dict(auto.table)
    table.update(overrides)
    report = dict(mapping="auto" if not overrides else "auto+joint_map", interpolated=auto.interpolated, notes=auto.notes)
    return ("auto" if not overrides else "auto+joint_map"), table, report


def _polyline_points(points: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Points at arc-length fractions along a per-frame polyline ``points`` (T, K, 3)."""
    seg = np.diff(points, axis=1)  # (T, K-1, 3)
    seg_len = np.linalg.norm(seg, axis=-1).mean(axis=0)  # bones are rigid: one length per segment
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    total = cum[-1] if cum[-1] > 0 else 1.0
    out = []
    for f in fractions:
        s = f * total
        k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg_len) - 1))
        t = (s - cum[k]) / seg_len[k] if seg_len[k] > 0 else 0.0
        out.append(points[:, k] + t * seg[:, k])
    return np.stack(out, axis=1)


def _derive_trunk(joints: np.ndarray, spine_src: np.ndarray) -> None:
    """Fill pelvis and spine1..3 in ``joints`` (T, 22, 3) from the hips, the neck and the rig's spine."""
    mid_hip = 0.5 * (joints[:, JOINT_INDEX["left_hip"]] + joints[:, JOINT_INDEX["right_hip"]])
    neck = joints[:, JOINT_INDEX["neck"]]
    axis = neck - mid_hip
    pelvis = mid_hip + _PELVIS_FRACTION * axis
    # Keep the rig's spine joints that lie between the pelvis and the neck (some rigs start the spine
    # at the root, below the hip joints).
    denom = np.maximum((axis * axis).sum(-1), 1e-12)
    keep = []
    for k in range(spine_src.shape[1]):
        t = np.median(((spine_src[:, k] - mid_hip) * axis).sum(-1) / denom)
        if _PELVIS_FRACTION + 0.02 < t < 0.98:
            keep.append(k)
    poly = np.concatenate([pelvis[:, None], spine_src[:, keep], neck[:, None]], axis=1)
    spine = _polyline_points(poly, _SPINE_FRACTIONS)
    joints[:, JOINT_INDEX["pelvis"]] = pelvis
    joints[:, JOINT_INDEX["spine1"]] = spine[:, 0]
    joints[:, JOINT_INDEX["spine2"]] = spine[:, 1]
    joints[:, JOINT_INDEX["spine3"]] = spine[:, 2]


def _map_to_smpl(pos: np.ndarray, table: dict[str, Any]) -> np.ndarray:
    """SMPL-22 joints (T, 22, 3) from rig joint positions ``pos`` (T, J, 3) and a table of joint indices."""
    T = pos.shape[0]
    joints = np.zeros((T, NUM_JOINTS, 3), dtype=np.float64)
    for name in SMPL22_JOINT_NAMES:
        if name in table:
            joints[:, JOINT_INDEX[name]] = _eval_spec(table[name], pos)
    spine = [int(i) for i in table.get("spine", ())]
    spine_src = pos[:, spine] if spine else np.zeros((T, 0, 3))
    _derive_trunk(joints, spine_src)
    return joints


# Candidate length units (metres per file unit): m, cm, mm, inch, foot, and CMU ASF units
# (ASF "length 0.45": one unit is 1/0.45 inch).
_UNIT_CANDIDATES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "foot": 0.3048, "cmu_asf": 0.0254 / 0.45}


_TYPICAL_STATURE_M = 1.7
# Statures a declared unit may give before the stature-based guess overrules it (children to very tall adults).
_PLAUSIBLE_STATURE_M = (0.9, 2.4)


# Stature / (leg + hip-to-head-joint chain) on the SMPL template: the head joint is below the crown
# and the ankle joint above the sole.
_STATURE_PER_CHAIN = 1.12


def _chain_length(joints: np.ndarray, names: Sequence[str]) -> float:
    idx = [JOINT_INDEX[n] for n in names]
    return float(np.median(np.linalg.norm(np.diff(joints[:, idx], axis=1), axis=-1).sum(axis=1)))


def estimate_stature(joints: np.ndarray) -> float:
    """Standing height estimated from bone lengths (pose independent), in the joints' units."""
    leg = 0.5 * (
        _chain_length(joints, ("left_hip", "left_knee", "left_ankle"))
        + _chain_length(joints, ("right_hip", "right_knee", "right_ankle"))
    )
    mid_hip = 0.5 * (joints[:, JOINT_INDEX["left_hip"]] + joints[:, JOINT_INDEX["right_hip"]])
    trunk = float(np.median(np.linalg.norm(joints[:, JOINT_INDEX["neck"]] - mid_hip, axis=-1)))
    head = _chain_length(joints, ("neck", "head"))
    return _STATURE_PER_CHAIN * (leg + trunk + head)


def _detect_scale(joints: np.ndarray, source: str) -> tuple[float, str]:
    stature = estimate_stature(joints)
    if not (np.isfinite(stature) and stature > 0):
        raise ValueError(f"{source}: degenerate skeleton (zero bone lengths); cannot infer its units")
    unit = min(_UNIT_CANDIDATES, key=lambda u: abs(np.log(stature * _UNIT_CANDIDATES[u] / _TYPICAL_STATURE_M)))
    return _UNIT_CANDIDATES[unit], unit


_UP_ROTATIONS = {
    "+y": np.eye(3),
    "-y": np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=np.float64),
    "+z": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64),
    "-z": np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float64),
    "+x": np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float64),
    "-x": np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], dtype=np.float64),
}


# +Y stays the up axis while its upright reach is at least this share of the best axis's (`_detect_up`): lie-down
# clips keep >= 0.55, a Z-up file of a standing person gives ~0.1.
_Y_UP_KEPT_ABOVE = 0.35


def _detect_up(joints: np.ndarray) -> str:
    """The signed axis the ankles -> head direction points along while the person is upright: the one with the
    largest 90th percentile of that direction's component over the frames. Y up (the convention of Acclaim files,
    CMU, HDM05, Bandai Namco, Mixamo) is kept unless another axis clearly wins (+Y's percentile under 35% of it): a
    clip spent mostly lying or crawling points its ankles -> head along the floor, and the median direction turned
    10 of HDM05's 14 lie-down clips on their side (the body floating up to 0.9 m above the floor). Caveat: a Z-up file
    of someone lying down for most of the clip can still be misread; pass ``up_axis`` then."""
    ankles = 0.5 * (joints[:, JOINT_INDEX["left_ankle"]] + joints[:, JOINT_INDEX["right_ankle"]])
    body = joints[:, JOINT_INDEX["head"]] - ankles
    reach = {sign + "xyz"[axis]: float(np.percentile((1 if sign == "+" else -1) * body[:, axis], 90))
             for axis in range(3) for sign in "+-"}
    best = max(reach, key=reach.get)
    if best != "+y" and reach["+y"] > 0 and reach["+y"] >= _Y_UP_KEPT_ABOVE * reach[best]:
        return "+y"
    return best


def _to_y_up(joints: np.ndarray, up_axis: str, source: str) -> tuple[np.ndarray, str]:
    up_axis = str(up_axis).lower()
    if up_axis == "auto":
        up_axis = _detect_up(joints)
    if up_axis in ("x", "y", "z"):
        up_axis = "+" + up_axis
    if up_axis not in _UP_ROTATIONS:
        raise ValueError(f"{source}: up_axis must be 'auto' or one of {sorted(_UP_ROTATIONS)}, got {up_axis!r}")
    # Row vectors: p' = p @ R.T with R mapping the up axis onto +Y.
    return joints @ _UP_ROTATIONS[up_axis].T, up_axis


_LEG_PARTS = ("hip", "knee", "ankle", "foot")


_ARM_PARTS = ("collar", "shoulder", "elbow", "wrist")


def _swap_sides(joints: np.ndarray, parts: Sequence[str]) -> None:
    for part in parts:
        left, right = JOINT_INDEX[f"left_{part}"], JOINT_INDEX[f"right_{part}"]
        joints[:, [left, right]] = joints[:, [right, left]]


def _fix_sides(joints: np.ndarray, source: str) -> tuple[bool, list[str]]:
    """Check the labelled left/right of legs and arms against the geometry (Y up); fix what disagrees.

    The person's left is up x forward, with forward from where the toes point and the knees bend (label
    independent: both legs, :func:`.bvh_skeleton.forward_direction`). Legs and
    arms both on the wrong side: the file's coordinate system is mirrored, so X is mirrored. Only one pair on the
    wrong side: that pair is mislabelled (a rig error), so its labels are swapped. Each fix warns.
    Returns (mirrored, swapped pairs).
    """
    up = np.array([0.0, 1.0, 0.0])
    fwd = sum(forward_direction(*(joints[:, JOINT_INDEX[f"{side}_{part}"]] for part in _LEG_PARTS), up)
              for side in ("left", "right"))
    left_dir = np.cross(np.array([0.0, 1.0, 0.0]), fwd)  # Y up, facing +Z -> left is +X

    def side_cos(a: str, b: str) -> float:
        across = joints[:, JOINT_INDEX[a]] - joints[:, JOINT_INDEX[b]]
        across[:, 1] = 0.0
        norm = np.maximum(np.linalg.norm(left_dir, axis=-1) * np.linalg.norm(across, axis=-1), 1e-9)
        return float(np.median((left_dir * across).sum(-1) / norm))

    legs_wrong = side_cos("left_hip", "right_hip") < -0.5
    arms_wrong = side_cos("left_shoulder", "right_shoulder") < -0.5
    if legs_wrong and arms_wrong:
        warnings.warn(
            f"{source}: the left joints lie on the person's right (mirrored coordinate system); mirroring X",
            stacklevel=3,
        )
        joints[..., 0] *= -1.0
        return True, []
    swapped = []
    for wrong, pair, parts in ((legs_wrong, "legs", _LEG_PARTS), (arms_wrong, "arms", _ARM_PARTS)):
        if wrong:
            warnings.warn(
                f"{source}: the joints labelled left {pair} are on the person's right (the other limbs and the feet's "
                f"direction agree with each other); swapping the {pair}' left/right labels",
                stacklevel=3,
            )
            _swap_sides(joints, parts)
            swapped.append(pair)
    return False, swapped


def _facing_angle(joints: np.ndarray) -> float:
    """Heading (radians about +Y) of the first frame: 0 when the person faces +Z (left = +X)."""
    across = joints[0, JOINT_INDEX["left_hip"]] - joints[0, JOINT_INDEX["right_hip"]]
    across += joints[0, JOINT_INDEX["left_shoulder"]] - joints[0, JOINT_INDEX["right_shoulder"]]
    # Facing +Z means across = +X; the heading is the angle taking +X to `across` about +Y.
    return float(np.arctan2(-across[2], across[0]))


def _rotate_about_y(joints: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return joints @ rot.T


def _is_tpose(frame: np.ndarray) -> bool:
    """Both arms straight out and horizontal (Y up, metres)."""
    for side in ("left", "right"):
        arm = frame[JOINT_INDEX[f"{side}_wrist"]] - frame[JOINT_INDEX[f"{side}_shoulder"]]
        norm = np.linalg.norm(arm)
        if norm == 0 or abs(arm[1]) / norm > 0.35:
            return False
    span = np.linalg.norm(frame[JOINT_INDEX["left_wrist"]] - frame[JOINT_INDEX["right_wrist"]])
    shoulders = np.linalg.norm(frame[JOINT_INDEX["left_shoulder"]] - frame[JOINT_INDEX["right_shoulder"]])
    return bool(span > 2.5 * shoulders)


def _leading_tpose_frames(joints: np.ndarray, max_lead: int = 10) -> int:
    """How many leading frames are a prepended T-pose (mocap calibration frames).

    When frame 0 is a T-pose, the first ``max_lead`` frames are dropped up to their last
    discontinuity (some conversions also leave a stray frame after the T-pose): a boundary where the
    joints' frame-to-frame step changes abruptly (second difference, mean over joints, above 10x the
    clip's median and 1 cm). A subject who really starts in a T-pose moves on smoothly, so nothing
    is dropped then.
    """
    n = joints.shape[0]
    if n < 4:
        return 0
    if not _is_tpose(joints[0]):
        return 0
    steps = np.diff(joints, axis=0)  # steps[k-1]: frame k-1 -> k
    accel = np.linalg.norm(np.diff(steps, axis=0), axis=-1).mean(axis=-1)  # accel[k-1]: around frame k
    typical = float(np.median(accel))
    jumps = [k for k in range(1, min(max_lead, n - 2) + 1) if accel[k - 1] > max(10.0 * typical, 0.01)]
    return jumps[-1] if jumps else 0


def _finish(joints: np.ndarray) -> np.ndarray:
    """Floor at the clip's lowest joint, pelvis at x = z = 0 in the first frame."""
    joints = joints.copy()
    joints[..., 1] -= joints[..., 1].min()
    joints[..., [0, 2]] -= joints[0, JOINT_INDEX["pelvis"], [0, 2]]
    return joints


def load_bvh(
    path: PathLike,
    fps: float | None = DEFAULT_FPS,
    source_fps: float | None = None,
    drop_tpose: str | bool = "auto",
    scale: float | None = None,
    up_axis: str = "auto",
    rig: str | None = None,
    joint_map: Mapping[str, Any] | None = None,
    canonical_facing: bool = False,
) -> MotionClip:
    """Read a BVH file of any humanoid rig as SMPL-22 joints (metres, Y up) at ``fps`` (None keeps the file's rate).

    Skeletons of the rigs in :data:`BVH_RIG_TABLES` map by their table; any other humanoid is mapped automatically
    from its topology, proportions and joint names (:mod:`humocon_hf.processing.bvh_skeleton`): Mixamo with or
    without ``mixamorig:``, Unreal, Rigify, MotionBuilder / Vicon / OptiTrack style names, Bandai Namco,
    renamed or unnamed joints. ``clip.info`` says which mapping was used, what was interpolated, the units and axis.

    Args:
        path: the ``.bvh`` file.
        fps: output frame rate.
        source_fps: the file's true frame rate when its ``Frame Time`` header is wrong.
        drop_tpose: ``"auto"`` drops leading T-pose frames (arms horizontal, followed by a jump in
            the pose), ``True`` always drops frame 0, ``False`` keeps everything.
        scale: metres per file unit; by default the unit (m, cm, mm, inch, foot, CMU ASF) that gives a
            human stature closest to 1.7 m.
        up_axis: ``"auto"`` (the axis from the ankles to the head) or ``"+y"``, ``"+z"``, ``"-x"``...
        rig: one of :data:`BVH_RIG_TABLES` to force that table, ``"auto"`` to force the automatic mapping, None
            (default) for a table when one matches exactly and the automatic mapping otherwise.
        joint_map: ``{smpl_joint: bvh_joint_name}`` overriding or completing the automatic mapping (keys: the
            SMPL-22 limb joints, ``neck``, ``head``, and ``spine`` with a list of names bottom to top); enough on its
            own when it names every limb joint, the neck and the head.
        canonical_facing: rotate about the vertical so that the person faces +Z in the first frame (HumanML3D's
            convention); by default the facing is left as recorded (the motion feature extractor canonicalises it).

    Raises:
        FileNotFoundError: missing file. ValueError: empty/corrupt file, NaN values, a skeleton that is not a
        humanoid (the message lists its joints and how to pass ``joint_map``).
    """
    bvh = parse_bvh(path)
    source = bvh.source
    if source_fps is None:
        if not (np.isfinite(bvh.frame_time) and bvh.frame_time > 0):
            raise ValueError(f"{source}: header Frame Time {bvh.frame_time} is not positive; pass source_fps")
        source_fps = 1.0 / bvh.frame_time
        header_rate_odd = not _PLAUSIBLE_FPS[0] <= source_fps <= _PLAUSIBLE_FPS[1]
    else:
        header_rate_odd = False  # the caller's rate is taken as meant
    source_fps = _positive_rate(source_fps, "source_fps", source)
    if fps is not None:
        fps = _positive_rate(fps, "fps", source)
    if header_rate_odd:
        warnings.warn(
            f"{source}: frame rate {source_fps:g} fps (Frame Time {1.0 / source_fps:g} s) is implausible for motion "
            f"capture: {bvh.motion.shape[0]} frames last {bvh.motion.shape[0] / source_fps:.4g} s; pass source_fps "
            "if the header is wrong",
            stacklevel=2,
        )
    skeleton = PosedSkeleton(
        names=bvh.names, parents=bvh.parents, is_end_site=bvh.is_end_site or [False] * len(bvh.names),
        num_frames=bvh.motion.shape[0], source=source,
        positions=lambda frames, joints: bvh_forward_kinematics(
            bvh if frames is None else dataclasses.replace(bvh, motion=bvh.motion[frames]), joints),
    )
    header_fps = 1.0 / bvh.frame_time if bvh.frame_time > 0 else None
    return skeleton_to_clip(skeleton, source_fps=source_fps, fps=fps, drop_tpose=drop_tpose, scale=scale,
                            up_axis=up_axis, rig=rig, joint_map=joint_map, canonical_facing=canonical_facing,
                            info=dict(header_fps=header_fps))


def skeleton_to_clip(
    skeleton: PosedSkeleton,
    *,
    source_fps: float,
    fps: float | None,
    drop_tpose: str | bool = "auto",
    scale: float | None = None,
    up_axis: str = "auto",
    rig: str | None = None,
    joint_map: Mapping[str, Any] | None = None,
    canonical_facing: bool = False,
    info: Mapping[str, Any] | None = None,
    scale_hint: tuple[float, str] | None = None,
) -> MotionClip:
    """SMPL-22 joints of a posed skeleton of any format: rig table or automatic mapping, units, up axis, sides, leading
    T-pose, facing, frame rate and floor, the steps every rig reader shares (arguments as in :func:`load_bvh`).

    ``scale_hint`` is ``(metres per unit, unit name)`` that the file's header declares (ASF ``:units``); it is used
    when it gives a plausible human stature, and the stature-based guess otherwise."""
    source = skeleton.source
    rig_name, table, report = _choose_rig(skeleton, rig, joint_map)
    needed = sorted({i for spec in table.values() for i in _source_indices(spec)})
    pos = skeleton.positions(None, needed)
    joints = _map_to_smpl(pos, table)
    if scale is None:
        scale, unit = _detect_scale(joints, source)
        if scale_hint is not None:
            stature = estimate_stature(joints) * scale_hint[0]
            if _PLAUSIBLE_STATURE_M[0] <= stature <= _PLAUSIBLE_STATURE_M[1]:
                scale, unit = scale_hint
            else:
                warnings.warn(f"{source}: the declared unit ({scale_hint[1]}) gives a stature of {stature:.2f} m; "
                              f"using {unit} instead", stacklevel=3)
    else:
        scale, unit = float(scale), "user"
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"{source}: scale must be a positive number, got {scale}")
    joints *= scale
    joints, up = _to_y_up(joints, up_axis, source)
    mirrored, swapped = _fix_sides(joints, source)
    if drop_tpose is True:
        dropped = 1
    elif drop_tpose == "auto":
        dropped = _leading_tpose_frames(joints)
    elif drop_tpose is False:
        dropped = 0
    else:
        raise ValueError(f"{source}: drop_tpose must be 'auto', True or False, got {drop_tpose!r}")
    joints = joints[dropped:]
    if joints.shape[0] == 0:
        raise ValueError(f"{source}: no frames left after dropping the T-pose frame")
    facing = _facing_angle(joints)
    if canonical_facing:
        joints = _rotate_about_y(joints, -facing)
    joints = _finish(resample_joints(joints, source_fps, fps))
    details = dict(rig=rig_name, scale=scale, unit=unit, up_axis=up, mirrored=mirrored, swapped_sides=swapped,
                   dropped_frames=dropped, **dict(info or {}),
                   facing_deg=float(np.degrees(facing)), canonical_facing=bool(canonical_facing),
                   joint_mapping={k: _describe_spec(v, skeleton.names) for k, v in table.items()})
    details.update(report)
    return MotionClip(joints=joints.astype(np.float32), fps=float(fps if fps is not None else source_fps),
                      source_fps=float(source_fps), source=source, info=details)

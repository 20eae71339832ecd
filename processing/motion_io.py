"""Motion readers: BVH, HumanML3D and AMASS / Motion-X files to SMPL-22 joint positions.

Every reader returns a :class:`MotionClip` whose ``joints`` are SMPL-22 positions in HumanML3D
joint order, in metres, Y up, at the requested frame rate. Conventions shared by the readers that
build joints from a rig (BVH, SMPL body models):

* the floor is put at ``y = 0`` at the lowest joint of the whole clip (HumanML3D's convention), and
  the pelvis starts at ``x = z = 0``; the facing direction is left as recorded (the motion feature
  extractor canonicalises it);
* "left" is the person's own left: with Y up and the person facing +Z, their left is +X. A file
  whose coordinate system is mirrored (labelled left joints on the geometric right of the feet's
  pointing direction) is mirrored back with a warning;
* frame rates are changed by linear interpolation of joint positions.

HumanML3D ``new_joints`` arrays are returned as stored (they are already in this layout).
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .bvh_skeleton import auto_rig_table, forward_direction, resolve_joint_map
from .smpl22 import DEFAULT_FPS, JOINT_INDEX, NUM_JOINTS, SMPL22_JOINT_NAMES, check_joints

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "MOTION_EXTENSIONS",
    "MotionClip",
    "load_motion",
    "load_bvh",
    "parse_bvh",
    "BVHData",
    "bvh_forward_kinematics",
    "load_humanml3d_joints",
    "load_humanml3d_vecs",
    "recover_joints_from_humanml3d_vecs",
    "load_amass_npz",
    "load_motionx_smplx",
    "resample_joints",
    "BVH_RIG_TABLES",
    "estimate_stature",
]

# Longest motion a reader produces (frames after resampling): 24 h at 20 fps is ~1.7 M frames. Header values that
# imply more (a BVH "Frame Time: 1e6", fps=1e-6) are errors, not a reason to allocate gigabytes.
# The motion files every entry point accepts (processor, `humocon ask`, data set loaders): what `load_motion` reads.
MOTION_EXTENSIONS = (".bvh", ".npy", ".npz")
MAX_MOTION_FRAMES = 2_000_000
# Joints (end sites included) a BVH may define: rigs with full hands and faces have a few hundred.
MAX_BVH_JOINTS = 5000
# Frame rates outside this range are legal but almost always a wrong header (mocap runs at 24-480 fps).
_PLAUSIBLE_FPS = (5.0, 2000.0)

_BODY_INSTALL_HINT = (
    'install the optional body-model support with `pip install "humocon-hf[body]"` (it provides the '
    "`smplx` package) and download the body model files yourself: SMPL+H (used by AMASS) from "
    "https://mano.is.tue.mpg.de / https://smpl.is.tue.mpg.de, SMPL-X (used by Motion-X) from "
    "https://smpl-x.is.tue.mpg.de; pass their folder as body_model_dir"
)


@dataclass
class MotionClip:
    """SMPL-22 joint positions of one motion.

    Attributes:
        joints: (T, 22, 3) float32, metres, Y up, HumanML3D joint order.
        fps: frame rate of ``joints``.
        source_fps: frame rate of the file the motion was read from.
        source: where the motion came from (a path, or a short description for arrays).
        info: reader details (rig name, unit scale, dropped frames, ...); informative only.
    """

    joints: np.ndarray
    fps: float
    source_fps: float
    source: str = "<array>"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.joints = check_joints(self.joints, f"MotionClip({self.source})")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"MotionClip({self.source}): fps must be a positive number, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration(self) -> float:
        """Seconds spanned by the frames."""
        return self.num_frames / float(self.fps)

    def __len__(self) -> int:
        return self.num_frames


# ----------------------------------------------------------------------------------------------
# Generic helpers
# ----------------------------------------------------------------------------------------------


def _check_file(path: PathLike, what: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{what} path is a directory, expected a file: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{what} file is empty: {path}")
    return path


def _positive_rate(value, name: str, source: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {name} must be a number, got {value!r}") from None
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"{source}: {name} must be a positive frame rate, got {value!r}")
    return rate


def resample_joints(joints: np.ndarray, source_fps: float, fps: float | None) -> np.ndarray:
    """Resample (T, J, 3) positions from ``source_fps`` to ``fps`` by linear interpolation.

    Output frame k sits at time k / fps; frames are produced while that time stays inside the
    source clip, so the duration is preserved up to one output frame.
    """
    joints = np.asarray(joints)
    if fps is None or abs(float(fps) - float(source_fps)) < 1e-9 * max(1.0, float(fps)):
        return joints
    n_src = joints.shape[0]
    if n_src == 1:
        return joints
    n_out_f = (n_src - 1) * float(fps) / float(source_fps) + 1
    if not np.isfinite(n_out_f) or n_out_f > MAX_MOTION_FRAMES:
        raise ValueError(
            f"resampling {n_src} frames from {source_fps:g} fps to {fps:g} fps would give {n_out_f:.3g} frames "
            f"({(n_src - 1) / float(source_fps) / 3600:.3g} h of motion), over the limit of {MAX_MOTION_FRAMES}; "
            "is the source frame rate right (BVH 'Frame Time', source_fps)?"
        )
    n_out = int(np.floor((n_src - 1) * float(fps) / float(source_fps) + 1e-6)) + 1
    t = np.arange(n_out, dtype=np.float64) * (float(source_fps) / float(fps))
    i0 = np.minimum(np.floor(t).astype(np.int64), n_src - 1)
    i1 = np.minimum(i0 + 1, n_src - 1)
    w = (t - i0).reshape(-1, *([1] * (joints.ndim - 1)))
    return (joints[i0] * (1.0 - w) + joints[i1] * w).astype(joints.dtype, copy=False)


# ----------------------------------------------------------------------------------------------
# BVH parsing
# ----------------------------------------------------------------------------------------------

_POS_CHANNELS = {"xposition": 0, "yposition": 1, "zposition": 2}
_ROT_CHANNELS = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}


@dataclass
class BVHData:
    """A parsed BVH file. End Sites are kept as channel-less joints named ``<parent>_end``.

    Attributes:
        names: joint names in file order.
        parents: parent index per joint (-1 for the root).
        offsets: (J, 3) rest offsets from the parent, file units.
        channels: per joint the list of channel names as written (lower-cased).
        channel_start: per joint the column of its first channel in ``motion``.
        motion: (T, C) float64 channel values.
        frame_time: seconds per frame from the header.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    channel_start: list[int]
    motion: np.ndarray
    frame_time: float
    source: str = "<bvh>"
    is_end_site: list[bool] = field(default_factory=list)


def parse_bvh(path: PathLike) -> BVHData:
    """Parse a BVH file into its hierarchy and channel values; raise ValueError on any corruption."""
    path = _check_file(path, "BVH")
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    return _parse_bvh_text(text, path)


def _parse_bvh_text(text: str, source: str) -> BVHData:
    if not text.strip():
        raise ValueError(f"BVH file is empty: {source}")
    m = re.search(r"^\s*MOTION\s*$", text, flags=re.MULTILINE)
    if not text.lstrip().upper().startswith("HIERARCHY"):
        raise ValueError(f"{source}: not a BVH file (it does not start with HIERARCHY)")
    if m is None:
        raise ValueError(f"{source}: BVH file has no MOTION section (truncated?)")
    header, body = text[: m.start()], text[m.end():]

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    is_end: list[bool] = []
    stack: list[int] = []
    pending: int | None = None  # joint declared, waiting for its "{"
    n_channels = 0
    channel_start: list[int] = []

    for lineno, raw in enumerate(header.splitlines(), start=1):
        line = raw.strip()
        if not line or (line.upper() == "HIERARCHY" and not names):
            continue
        opens = line.endswith("{") and line != "{"
        if opens:
            line = line[:-1].strip()
        tokens = line.split()
        key = tokens[0].upper()
        if key in ("ROOT", "JOINT") or (key == "END" and len(tokens) > 1 and tokens[1].upper() == "SITE"):
            if key == "ROOT" and names:
                raise ValueError(f"{source}: line {lineno}: several ROOT joints are not supported")
            if key != "ROOT" and not stack:
                raise ValueError(f"{source}: line {lineno}: {key} outside of any joint block")
            if key == "END":
                parent = stack[-1]
                name = f"{names[parent]}_end"
                is_end.append(True)
            else:
                name = line.split(None, 1)[1].strip() if len(tokens) > 1 else ""
                if not name:
                    raise ValueError(f"{source}: line {lineno}: {key} without a name")
                is_end.append(False)
            names.append(name)
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            channel_start.append(n_channels)
            pending = len(names) - 1
            if opens:
                stack.append(pending)
                pending = None
        elif line == "{":
            if pending is None:
                raise ValueError(f"{source}: line {lineno}: unexpected '{{'")
            stack.append(pending)
            pending = None
        elif line == "}":
            if not stack:
                raise ValueError(f"{source}: line {lineno}: unbalanced '}}'")
            stack.pop()
        elif key == "OFFSET":
            if not stack:
                raise ValueError(f"{source}: line {lineno}: OFFSET outside of a joint")
            try:
                vals = [float(v) for v in tokens[1:4]]
            except ValueError:
                raise ValueError(f"{source}: line {lineno}: bad OFFSET values {tokens[1:]}") from None
            if len(vals) != 3:
                raise ValueError(f"{source}: line {lineno}: OFFSET needs 3 numbers, got {tokens[1:]}")
            offsets[stack[-1]] = vals
        elif key == "CHANNELS":
            if not stack:
                raise ValueError(f"{source}: line {lineno}: CHANNELS outside of a joint")
            try:
                count = int(tokens[1])
            except (IndexError, ValueError):
                raise ValueError(f"{source}: line {lineno}: bad CHANNELS line {line!r}") from None
            chans = [t.lower() for t in tokens[2:]]
            if len(chans) != count:
                raise ValueError(f"{source}: line {lineno}: CHANNELS says {count} but lists {len(chans)}")
            unknown = [c for c in chans if c not in _POS_CHANNELS and c not in _ROT_CHANNELS]
            if unknown:
                raise ValueError(f"{source}: line {lineno}: unknown channel names {unknown}")
            j = stack[-1]
            channels[j] = chans
            channel_start[j] = n_channels
            n_channels += count  # channel columns follow the order of the CHANNELS lines
        else:
            raise ValueError(f"{source}: line {lineno}: unexpected line in HIERARCHY: {raw.strip()!r}")
    if len(names) > MAX_BVH_JOINTS:
        raise ValueError(f"{source}: BVH HIERARCHY defines {len(names)} joints, more than the {MAX_BVH_JOINTS} this "
                         "reader accepts (real rigs with fingers and faces have a few hundred)")
    if stack:
        raise ValueError(f"{source}: HIERARCHY has {len(stack)} unclosed '{{' (truncated?)")
    if not names:
        raise ValueError(f"{source}: BVH HIERARCHY defines no joints")

    mf = re.search(r"Frames:\s*(\S+)", body)
    mt = re.search(r"Frame\s+Time:\s*(\S+)", body)
    if mf is None or mt is None:
        raise ValueError(f"{source}: MOTION section lacks 'Frames:' or 'Frame Time:' (truncated?)")
    try:
        n_frames = int(mf.group(1))
        frame_time = float(mt.group(1))
    except ValueError:
        raise ValueError(f"{source}: bad 'Frames:'/'Frame Time:' values {mf.group(1)!r}, {mt.group(1)!r}") from None
    if n_frames <= 0:
        raise ValueError(f"{source}: BVH declares {n_frames} frames; the motion is empty")
    data_text = body[body.find("\n", mt.end()) + 1:] if "\n" in body[mt.end():] else ""
    rows = [ln for ln in data_text.splitlines() if ln.strip()]
    try:
        values = np.array(data_text.split(), dtype=np.float64)
    except ValueError:
        bad = next(t for t in data_text.split() if not _is_float(t))
        raise ValueError(f"{source}: MOTION data contains a non-number {bad!r}") from None
    if values.size != n_frames * n_channels or len(rows) != n_frames:
        raise ValueError(
            f"{source}: corrupt or truncated MOTION data: header says {n_frames} frames x {n_channels} "
            f"channels = {n_frames * n_channels} values, found {values.size} values in {len(rows)} lines"
        )
    per_line = np.fromiter((len(ln.split()) for ln in rows), dtype=np.int64, count=len(rows))
    if (per_line != n_channels).any():
        # The totals can agree while one line is short and the next long: every later channel would shift.
        k = int(np.argmax(per_line != n_channels))
        raise ValueError(
            f"{source}: corrupt MOTION data: frame {k} has {per_line[k]} values, the hierarchy has {n_channels} "
            f"channels (lines with the wrong count: {int((per_line != n_channels).sum())})"
        )
    motion = values.reshape(n_frames, n_channels)
    if not np.isfinite(motion).all():
        bad = np.argwhere(~np.isfinite(motion).all(axis=1)).ravel()
        raise ValueError(f"{source}: MOTION data contains NaN or infinite values (frames {bad[:5].tolist()})")
    return BVHData(
        names=names,
        parents=parents,
        offsets=np.asarray(offsets, dtype=np.float64),
        channels=channels,
        channel_start=channel_start,
        motion=motion,
        frame_time=frame_time,
        source=source,
        is_end_site=is_end,
    )


def _is_float(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def euler_to_matrix(order: str, angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices `(..., 3, 3)` of intrinsic Euler angles `(..., len(order))` in degrees, `order` a string of
    upper-case axes as BVH writes them ("ZXY": R = Rz(a0) @ Rx(a1) @ Ry(a2)). Plain numpy, so that the exported
    remote code needs no scipy."""
    angles = np.radians(np.asarray(angles_deg, dtype=np.float64))
    if angles.shape[-1] != len(order) or not order or set(order) - set("XYZ"):
        raise ValueError(f"Euler order {order!r} must be 1-3 of X/Y/Z matching the last axis of angles {angles.shape}")
    out = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for k, axis in enumerate(order):
        c, s = np.cos(angles[..., k]), np.sin(angles[..., k])
        one, zero = np.ones_like(c), np.zeros_like(c)
        if axis == "X":
            rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
        elif axis == "Y":
            rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
        else:
            rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
        out = out @ np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)
    return out


def bvh_forward_kinematics(bvh: BVHData, joints: Sequence[int] | None = None) -> np.ndarray:
    """World positions (T, J, 3) of all joints (or of ``joints`` and their ancestors), file units.

    Rotation channels are intrinsic Euler angles in the order written (``Zrotation Xrotation
    Yrotation`` is R = Rz·Rx·Ry), composed parent to child. Root positions are offset + channel.
    For a non-root joint with position channels the channel values replace its offset when they
    look like absolute offsets (MotionBuilder style), and are added to it otherwise.
    """
    n = len(bvh.names)
    needed = np.zeros(n, dtype=bool)
    for j in range(n) if joints is None else joints:
        while j >= 0 and not needed[j]:
            needed[j] = True
            j = bvh.parents[j]
    T = bvh.motion.shape[0]
    pos = np.zeros((T, n, 3), dtype=np.float64)
    rot = np.zeros((T, n, 3, 3), dtype=np.float64)
    # Local rotations, one batched call per Euler order.
    local = np.broadcast_to(np.eye(3), (T, n, 3, 3)).copy()
    by_order: dict[str, list[tuple[int, list[int]]]] = {}
    for j in range(n):
        if not needed[j]:
            continue
        order = "".join(_ROT_CHANNELS[c] for c in bvh.channels[j] if c in _ROT_CHANNELS)
        if order:
            cols = [bvh.channel_start[j] + k for k, c in enumerate(bvh.channels[j]) if c in _ROT_CHANNELS]
            by_order.setdefault(order, []).append((j, cols))
    for order, items in by_order.items():
        idx = [j for j, _ in items]
        cols = np.array([c for _, c in items])  # (K, len(order))
        angles = bvh.motion[:, cols]  # (T, K, len(order))
        mats = euler_to_matrix(order, angles.reshape(-1, len(order)))
        local[:, idx] = mats.reshape(T, len(idx), 3, 3)
    for j in range(n):
        if not needed[j]:
            continue
        p = bvh.parents[j]
        trans = np.broadcast_to(bvh.offsets[j], (T, 3)).copy()
        pcols = [(bvh.channel_start[j] + k, _POS_CHANNELS[c]) for k, c in enumerate(bvh.channels[j]) if c in _POS_CHANNELS]
        if pcols:
            vals = np.zeros((T, 3))
            for col, axis in pcols:
                vals[:, axis] = bvh.motion[:, col]
            if p >= 0 and np.linalg.norm(vals - bvh.offsets[j], axis=1).mean() < np.linalg.norm(vals, axis=1).mean():
                trans = vals
            else:
                trans = trans + vals
        if p < 0:
            pos[:, j] = trans
            rot[:, j] = local[:, j]
        else:
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], trans)
            rot[:, j] = rot[:, p] @ local[:, j]
    return pos


# ----------------------------------------------------------------------------------------------
# Rig tables: SMPL-22 limb joints from BVH joint names
# ----------------------------------------------------------------------------------------------

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
                shoulder=f"{s}humerus", elbow=f"{s}radius", wrist=f"{s}wrist")


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


def _choose_rig(bvh: BVHData, rig: str | None, joint_map: Mapping[str, Any] | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(rig name, table of joint indices, report)``: a rig table when one matches exactly, else automatic mapping
    (:mod:`.bvh_skeleton`) from the skeleton's topology, geometry and names, with ``joint_map`` on top."""
    source = bvh.source
    if joint_map is None and rig != "auto":
        matched = _match_rig(bvh.names, rig)
        if matched is not None:
            return matched[0], matched[1], {}
    overrides = resolve_joint_map(joint_map, bvh.names, source) if joint_map is not None else {}
    # Topology and proportions are measured on the posed skeleton (a sample of frames): rest offsets of some rigs
    # point along the bone axes, not where the bones are.
    T = bvh.motion.shape[0]
    frames = np.unique(np.linspace(0, T - 1, min(T, _STRUCTURE_FRAMES)).round().astype(np.int64))
    sample = bvh_forward_kinematics(dataclasses.replace(bvh, motion=bvh.motion[frames]))
    try:
        auto = auto_rig_table(bvh.names, bvh.parents, sample, bvh.is_end_site or [False] * len(bvh.names), source)
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


# ----------------------------------------------------------------------------------------------
# Units, axes, T-pose, floor
# ----------------------------------------------------------------------------------------------

# Candidate length units (metres per file unit): m, cm, mm, inch, foot, and CMU ASF units
# (ASF "length 0.45": one unit is 1/0.45 inch).
_UNIT_CANDIDATES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "foot": 0.3048, "cmu_asf": 0.0254 / 0.45}
_TYPICAL_STATURE_M = 1.7
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


def _detect_up(joints: np.ndarray) -> str:
    """The signed axis closest to the median ankles -> head direction."""
    ankles = 0.5 * (joints[:, JOINT_INDEX["left_ankle"]] + joints[:, JOINT_INDEX["right_ankle"]])
    up = np.median(joints[:, JOINT_INDEX["head"]] - ankles, axis=0)
    axis = int(np.argmax(np.abs(up)))
    return ("+" if up[axis] >= 0 else "-") + "xyz"[axis]


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


# ----------------------------------------------------------------------------------------------
# BVH reader
# ----------------------------------------------------------------------------------------------


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
    rig_name, table, report = _choose_rig(bvh, rig, joint_map)
    needed = sorted({i for spec in table.values() for i in _source_indices(spec)})
    pos = bvh_forward_kinematics(bvh, needed)
    joints = _map_to_smpl(pos, table)
    if scale is None:
        scale, unit = _detect_scale(joints, source)
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
    info = dict(rig=rig_name, scale=scale, unit=unit, up_axis=up, mirrored=mirrored, swapped_sides=swapped,
                dropped_frames=dropped, header_fps=(1.0 / bvh.frame_time if bvh.frame_time > 0 else None),
                facing_deg=float(np.degrees(facing)), canonical_facing=bool(canonical_facing),
                joint_mapping={k: _describe_spec(v, bvh.names) for k, v in table.items()})
    info.update(report)
    return MotionClip(joints=joints.astype(np.float32), fps=float(fps if fps is not None else source_fps),
                      source_fps=float(source_fps), source=source, info=info)


# ----------------------------------------------------------------------------------------------
# HumanML3D
# ----------------------------------------------------------------------------------------------

HUMANML3D_VEC_DIM = 263


def load_humanml3d_joints(path_or_array, fps: float | None = DEFAULT_FPS, source_fps: float = DEFAULT_FPS) -> MotionClip:
    """HumanML3D ``new_joints`` (T, 22, 3) at 20 fps (already metres, Y up, floor at 0)."""
    if isinstance(path_or_array, np.ndarray):
        arr, source = path_or_array, "<HumanML3D joints array>"
    else:
        source = _check_file(path_or_array, "HumanML3D joints")
        arr = _load_npy(source)
    joints = check_joints(arr, source)
    if not isinstance(path_or_array, np.ndarray):
        _reject_degenerate(joints, source)
    source_fps = _positive_rate(source_fps, "source_fps", source)
    return MotionClip(joints=resample_joints(joints, source_fps, fps), fps=float(fps or source_fps),
                      source_fps=source_fps, source=source, info=dict(format="humanml3d_joints"))


def _npy_header(fh) -> tuple[tuple, np.dtype]:
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    return tuple(shape), dtype


def _declared_bytes(shape: tuple, dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=np.float64)) * dtype.itemsize if shape else dtype.itemsize


def _load_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an untrusted .npz: every member's declared shape is checked against its stored size before
    numpy allocates it, and object (pickled) members are refused."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    shape, dtype = _npy_header(fh)
                    header = fh.tell()
                if dtype.hasobject:
                    raise ValueError(f"{path}: not a valid .npz array file for motion data: member {info.filename!r} "
                                     f"holds Python objects ({dtype}), expected numbers")
                if _declared_bytes(shape, dtype) > info.file_size - header:
                    raise ValueError(f"{path}: corrupt .npz file: member {info.filename!r} declares shape {shape} "
                                     f"{dtype} but stores {info.file_size - header} bytes of data")
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as err:
        if str(err).startswith(path):
            raise
        raise ValueError(f"{path}: not a valid .npz array file ({type(err).__name__})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, SyntaxError, TypeError) as err:
        raise ValueError(f"{path}: not a valid .npz array file ({type(err).__name__}: it is not a readable zip of "
                         ".npy arrays)") from None


def _reject_degenerate(joints: np.ndarray, source: str) -> None:
    """A joints file whose 22 joints sit at one point in every frame (all zeros) is no motion; the BVH reader
    rejects the same skeleton as having zero bone lengths."""
    if float(np.ptp(joints, axis=1).max()) == 0.0:
        raise ValueError(f"{source}: degenerate skeleton: all 22 joints are at the same point in every frame "
                         "(an empty or zero-filled file?)")


def _load_npy(path: str) -> np.ndarray:
    """``np.load`` of an untrusted .npy: the header's shape is checked against the file size before anything is
    allocated (a 1 KiB file may declare (10^9, 22, 3)), and object arrays are refused without pickle advice."""
    try:
        with open(path, "rb") as fh:
            shape, dtype = _npy_header(fh)
            data_bytes = os.fstat(fh.fileno()).st_size - fh.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError):
        raise ValueError(f"{path}: not a valid .npy array file (unreadable header)") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: not a valid .npy array file for motion data: it holds Python objects ({dtype}), "
                         "expected numbers")
    needed = _declared_bytes(shape, dtype)
    if needed > data_bytes:
        raise ValueError(f"{path}: corrupt .npy file: its header declares shape {tuple(shape)} {dtype} "
                         f"({needed} bytes) but the file holds {data_bytes} bytes of data")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a valid .npy array file ({type(err).__name__})") from None


def _as_stat(stat, name: str) -> np.ndarray | None:
    if stat is None:
        return None
    arr = _load_npy(_check_file(stat, name)) if not isinstance(stat, np.ndarray) else stat
    arr = np.asarray(arr, dtype=np.float64).reshape(-1)
    if arr.shape != (HUMANML3D_VEC_DIM,) or not np.isfinite(arr).all():
        raise ValueError(f"HumanML3D {name}: expected {HUMANML3D_VEC_DIM} finite values, got shape {arr.shape}")
    return arr


def _looks_normalized(data: np.ndarray, mean: np.ndarray, std: np.ndarray) -> bool:
    """Which is likelier per value: raw ~ N(mean, std) or already-normalised ~ N(0, 1)?"""
    std = np.maximum(std, 1e-8)
    ll_raw = -0.5 * ((data - mean) / std) ** 2 - np.log(std)
    ll_norm = -0.5 * data**2
    return bool(ll_norm.mean() > ll_raw.mean())


def recover_joints_from_humanml3d_vecs(vecs: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) from raw (de-normalised) HumanML3D 263-d features.

    Integrates the root yaw velocity (dim 0) to a heading, rotates the heading-frame root XZ
    velocity (dims 1-2) to the world and integrates it, takes the root height (dim 3) and places
    the root-relative, heading-frame joint positions (dims 4-66, "ric") in the world.
    """
    vecs = np.asarray(vecs, dtype=np.float64)
    T = vecs.shape[0]
    yaw = np.zeros(T)
    yaw[1:] = np.cumsum(vecs[:-1, 0])
    # HumanML3D stores the heading as a quaternion (cos a, 0, sin a, 0), i.e. a rotation of 2a about
    # Y; features were expressed in that frame, so the inverse rotation (-2a) maps them back.
    c, s = np.cos(-2.0 * yaw), np.sin(-2.0 * yaw)

    def rot(v):  # rotate (T, ..., 3) about Y by -2a per frame
        cc = c.reshape(-1, *([1] * (v.ndim - 2)))
        ss = s.reshape(-1, *([1] * (v.ndim - 2)))
        x, y, z = v[..., 0], v[..., 1], v[..., 2]
        return np.stack([cc * x + ss * z, y, -ss * x + cc * z], axis=-1)

    vel = np.zeros((T, 3))
    vel[1:, [0, 2]] = vecs[:-1, 1:3]
    root = np.cumsum(rot(vel), axis=0)
    root[:, 1] = vecs[:, 3]
    ric = rot(vecs[:, 4:4 + 21 * 3].reshape(T, 21, 3))
    ric[..., 0] += root[:, None, 0]
    ric[..., 2] += root[:, None, 2]
    return np.concatenate([root[:, None], ric], axis=1)


def load_humanml3d_vecs(
    path_or_array,
    mean=None,
    std=None,
    fps: float | None = DEFAULT_FPS,
    normalized: bool | None = None,
    source_fps: float = DEFAULT_FPS,
) -> MotionClip:
    """HumanML3D 263-d features (T, 263) -> joints via the root-integration recovery.

    ``mean``/``std`` (arrays or ``Mean.npy``/``Std.npy`` paths) are needed only for normalised
    features. ``normalized=None`` decides per file: the data are treated as normalised when they are
    likelier under N(0, 1) than under N(Mean, Std) (raw features sit near Mean with small Std, so
    the two cases are far apart); ``new_joint_vecs`` files are raw.
    """
    if isinstance(path_or_array, np.ndarray):
        data, source = path_or_array, "<HumanML3D feature array>"
    else:
        source = _check_file(path_or_array, "HumanML3D features")
        data = _load_npy(source)
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != HUMANML3D_VEC_DIM or data.shape[0] == 0:
        raise ValueError(f"{source}: expected HumanML3D features of shape (frames, {HUMANML3D_VEC_DIM}), got {data.shape}")
    if not np.issubdtype(data.dtype, np.number) or not np.isfinite(data).all():
        raise ValueError(f"{source}: HumanML3D features contain NaN, infinite or non-numeric values")
    data = data.astype(np.float64)
    mean_a, std_a = _as_stat(mean, "Mean"), _as_stat(std, "Std")
    if (mean_a is None) != (std_a is None):
        raise ValueError(f"{source}: pass both mean and std, or neither")
    if normalized is None:
        normalized = mean_a is not None and _looks_normalized(data, mean_a, std_a)
    if normalized:
        if mean_a is None:
            raise ValueError(f"{source}: normalized=True needs the dataset's mean and std (Mean.npy/Std.npy)")
        data = data * std_a + mean_a
    joints = recover_joints_from_humanml3d_vecs(data)
    source_fps = _positive_rate(source_fps, "source_fps", source)
    return MotionClip(joints=resample_joints(joints, source_fps, fps).astype(np.float32), fps=float(fps or source_fps),
                      source_fps=source_fps, source=source, info=dict(format="humanml3d_vecs", normalized=bool(normalized)))


# ----------------------------------------------------------------------------------------------
# AMASS / Motion-X through the smplx body models
# ----------------------------------------------------------------------------------------------


def _create_body_model(body_model_dir: str, model_type: str, gender: str, num_betas: int, batch_size: int):
    """Build an ``smplx`` body model; errors name what to install or download.

    ``smplx`` looks for ``<body_model_dir>/<model_type>/<MODEL>_<GENDER>.(npz|pkl)`` (e.g.
    ``smplh/SMPLH_MALE.pkl``, ``smplx/SMPLX_NEUTRAL.npz``); the extension found there is used.
    """
    try:
        import smplx  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise ImportError(f"reading SMPL-family parameters needs the `smplx` package: {_BODY_INSTALL_HINT}") from None
    stem = f"{model_type.upper()}_{gender.upper()}"
    candidates = [os.path.join(body_model_dir, sub, f"{stem}.{ext}") for sub in (model_type, "") for ext in ("npz", "pkl")]
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found is None:
        raise FileNotFoundError(
            f"no {model_type.upper()} body model file for gender {gender!r} under {body_model_dir}: looked for "
            f"{candidates[0]} (or .pkl); {_BODY_INSTALL_HINT}"
        )
    try:
        return smplx.create(body_model_dir, model_type=model_type, gender=gender, num_betas=num_betas,
                            use_pca=False, batch_size=batch_size, ext=found.rsplit(".", 1)[1])
    except (AssertionError, FileNotFoundError, OSError, KeyError, ValueError) as err:
        raise ValueError(f"could not load the body model {found}: {err!r}; {_BODY_INSTALL_HINT}") from None


def _check_body_model_dir(body_model_dir, source: str) -> str:
    if body_model_dir is None:
        raise ValueError(f"{source}: SMPL-family parameters need body model files: pass body_model_dir; {_BODY_INSTALL_HINT}")
    body_model_dir = os.fspath(body_model_dir)
    if not os.path.isdir(body_model_dir):
        raise FileNotFoundError(f"{source}: body_model_dir {body_model_dir} does not exist; {_BODY_INSTALL_HINT}")
    return body_model_dir


def _run_body_model(params: dict[str, np.ndarray], body_model_dir: str, model_type: str, gender: str,
                    num_betas: int, batch_size: int = 512) -> np.ndarray:
    """SMPL-22 joints (T, 22, 3) of the body model posed by ``params`` (axis-angle arrays per frame)."""
    T = params["global_orient"].shape[0]
    model = _create_body_model(body_model_dir, model_type, gender, num_betas, min(batch_size, T))
    import torch  # noqa: PLC0415 - only needed with body models (smplx depends on it)

    size = min(batch_size, T)
    out = []
    for start in range(0, T, size):
        # smplx models have a fixed batch size (for the parameters we do not pass): pad the last chunk.
        idx = np.minimum(np.arange(start, start + size), T - 1)
        chunk = {k: torch.as_tensor(v[idx] if v.shape[0] == T else np.repeat(v[:1], size, axis=0), dtype=torch.float32)
                 for k, v in params.items()}
        with torch.no_grad():
            res = model(**chunk)
        joints = res.joints if hasattr(res, "joints") else res["joints"]
        joints = joints.detach().cpu().numpy() if hasattr(joints, "detach") else np.asarray(joints)
        out.append(joints[: min(size, T - start), :NUM_JOINTS])
    return np.concatenate(out, axis=0).astype(np.float64)


def _decode_str(value) -> str:
    value = np.asarray(value).reshape(-1)[0] if np.asarray(value).size else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip().lower()


def load_amass_npz(
    path: PathLike,
    body_model_dir: PathLike | None = None,
    fps: float | None = DEFAULT_FPS,
    model_type: str | None = None,
    gender: str | None = None,
    up_axis: str = "+z",
    source_fps: float | None = None,
) -> MotionClip:
    """AMASS ``.npz`` (poses, trans, betas, gender, mocap_framerate) -> SMPL-22 joints, Y up.

    The body model (SMPL+H for 156-d poses, SMPL-X for 165-d) comes from the optional ``smplx``
    package and user-supplied model files in ``body_model_dir``. AMASS is Z up; the result is
    turned to Y up with HumanML3D's axis change (x, y, z) -> (-x, z, y) (a proper rotation).
    """
    source = _check_file(path, "AMASS")
    data = _load_npz(source)
    missing = [k for k in ("poses", "trans") if k not in data]
    if missing:
        raise ValueError(f"{source}: AMASS .npz lacks {missing}; it has {sorted(data)}")
    poses = np.asarray(data["poses"], dtype=np.float64)
    trans = np.asarray(data["trans"], dtype=np.float64)
    if poses.ndim != 2 or poses.shape[0] == 0 or poses.shape[1] not in (66, 72, 156, 165):
        raise ValueError(f"{source}: AMASS poses must be (frames, 66|72|156|165), got {poses.shape}")
    if trans.shape != (poses.shape[0], 3):
        raise ValueError(f"{source}: AMASS trans must be ({poses.shape[0]}, 3), got {trans.shape}")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise ValueError(f"{source}: AMASS poses/trans contain NaN or infinite values")
    if source_fps is None:
        rate = data.get("mocap_framerate", data.get("mocap_frame_rate"))
        if rate is None:
            raise ValueError(f"{source}: no mocap_framerate in the file; pass source_fps")
        source_fps = float(np.asarray(rate).reshape(-1)[0])
    source_fps = _positive_rate(source_fps, "source_fps", source)
    if fps is not None:
        fps = _positive_rate(fps, "fps", source)
    body_model_dir = _check_body_model_dir(body_model_dir, source)
    if model_type is None:
        model_type = "smplx" if poses.shape[1] == 165 else "smplh"
    gender = gender or _decode_str(data.get("gender", "neutral")) or "neutral"
    betas = np.asarray(data.get("betas", np.zeros(16)), dtype=np.float64).reshape(1, -1)
    num_betas = min(betas.shape[1], 16)
    params = dict(global_orient=poses[:, :3], body_pose=poses[:, 3:66], transl=trans, betas=betas[:, :num_betas])
    if poses.shape[1] >= 156 and model_type in ("smplh", "smplx"):
        hand0 = 66 if poses.shape[1] == 156 else 75  # SMPL-X: jaw + eyes come before the hands
        params["left_hand_pose"] = poses[:, hand0:hand0 + 45]
        params["right_hand_pose"] = poses[:, hand0 + 45:hand0 + 90]
    joints = _run_body_model(params, body_model_dir, model_type, gender, num_betas)
    return _smpl_clip(joints, source, source_fps, fps, up_axis, dict(format="amass", model_type=model_type, gender=gender))


def load_motionx_smplx(
    path: PathLike,
    body_model_dir: PathLike | None = None,
    fps: float | None = DEFAULT_FPS,
    source_fps: float = 30.0,
    gender: str = "neutral",
    up_axis: str = "auto",
) -> MotionClip:
    """Motion-X SMPL-X parameters (T, 322) -> SMPL-22 joints through an SMPL-X body model.

    Layout: root_orient 3, pose_body 63, pose_hand 90, pose_jaw 3, face_expr 50, face_shape 100,
    trans 3, betas 10. Motion-X is 30 fps; its up axis is detected from the skeleton by default.
    """
    if isinstance(path, np.ndarray):
        arr, source = path, "<Motion-X array>"
    else:
        source = _check_file(path, "Motion-X")
        arr = _load_npy(source)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 322 or arr.shape[0] == 0:
        raise ValueError(f"{source}: expected Motion-X SMPL-X parameters of shape (frames, 322), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{source}: Motion-X parameters contain NaN or infinite values")
    source_fps = _positive_rate(source_fps, "source_fps", source)
    if fps is not None:
        fps = _positive_rate(fps, "fps", source)
    body_model_dir = _check_body_model_dir(body_model_dir, source)
    params = dict(global_orient=arr[:, :3], body_pose=arr[:, 3:66], left_hand_pose=arr[:, 66:111],
                  right_hand_pose=arr[:, 111:156], jaw_pose=arr[:, 156:159], expression=arr[:, 159:169],
                  transl=arr[:, 309:312], betas=arr[:, 312:322])
    joints = _run_body_model(params, body_model_dir, "smplx", gender, 10)
    return _smpl_clip(joints, source, source_fps, fps, up_axis, dict(format="motionx", model_type="smplx", gender=gender))


def _smpl_clip(joints, source, source_fps, fps, up_axis, info) -> MotionClip:
    joints = check_joints(joints, source).astype(np.float64)
    if up_axis == "+z" and info.get("format") == "amass":
        joints = joints @ np.array([[-1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float64).T
        up = "+z"
    else:
        joints, up = _to_y_up(joints, up_axis, source)
    joints = _finish(resample_joints(joints, source_fps, fps))
    return MotionClip(joints=joints.astype(np.float32), fps=float(fps or source_fps), source_fps=source_fps,
                      source=source, info=dict(info, up_axis=up))


# ----------------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------------


def load_motion(path_or_array, fps: float | None = DEFAULT_FPS, **kwargs) -> MotionClip:
    """Load any supported motion as a :class:`MotionClip` at ``fps``.

    * ``MotionClip``: resampled to ``fps``.
    * array (T, 22, 3): SMPL-22 joints at ``source_fps`` (default 20); (T, 263): HumanML3D features
      (``mean``/``std`` keywords); (T, 322): Motion-X SMPL-X parameters (``body_model_dir``).
    * ``.bvh``: :func:`load_bvh`; ``.npy``: HumanML3D joints, HumanML3D features or Motion-X
      parameters by shape; ``.npz``: :func:`load_amass_npz`. Extra keywords go to the reader.
    """
    if isinstance(path_or_array, MotionClip):
        clip = path_or_array
        if fps is None or abs(clip.fps - fps) < 1e-9:
            return clip
        return MotionClip(joints=resample_joints(clip.joints, clip.fps, fps), fps=float(fps),
                          source_fps=clip.source_fps, source=clip.source, info=dict(clip.info))
    if isinstance(path_or_array, (list, tuple)) or hasattr(path_or_array, "__array__") and not isinstance(path_or_array, (str, os.PathLike)):
        arr = np.asarray(path_or_array)
        return _load_array(arr, fps, "<array>", **kwargs)
    if not isinstance(path_or_array, (str, os.PathLike)):
        raise ValueError(f"load_motion: expected a path, an array or a MotionClip, got {type(path_or_array).__name__}")
    path = os.fspath(path_or_array)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".bvh":
        return load_bvh(path, fps=fps, **kwargs)
    if ext == ".npz":
        return load_amass_npz(path, fps=fps, **kwargs)
    if ext == ".npy":
        arr = _load_npy(_check_file(path, "motion"))
        if arr.ndim == 3:
            _reject_degenerate(check_joints(arr, path), path)
        return _load_array(arr, fps, path, **kwargs)
    _check_file(path, "motion")
    raise ValueError(f"{path}: unsupported motion file type {ext!r}; expected .bvh, .npy (HumanML3D / Motion-X) or .npz (AMASS)")


def _load_array(arr: np.ndarray, fps, source: str, **kwargs) -> MotionClip:
    try:
        clip = _read_array(arr, fps, source, **kwargs)
    except ValueError as err:  # the readers name "<... array>": name the file instead
        message = re.sub(r"^<[^>]*>", source, str(err))
        raise ValueError(message if message.startswith(source) else f"{source}: {message}") from None
    clip.source = source
    return clip


def _read_array(arr: np.ndarray, fps, source: str, **kwargs) -> MotionClip:
    if arr.ndim == 3:
        clip = load_humanml3d_joints(check_joints(arr, source), fps=fps, source_fps=kwargs.pop("source_fps", DEFAULT_FPS))
    elif arr.ndim == 2 and arr.shape[1] == HUMANML3D_VEC_DIM:
        clip = load_humanml3d_vecs(arr, fps=fps, **kwargs)
    elif arr.ndim == 2 and arr.shape[1] == 322:
        clip = load_motionx_smplx(arr, fps=fps, **kwargs)
    else:
        raise ValueError(
            f"{source}: cannot tell what motion this array holds: shape {arr.shape}; expected SMPL-22 joints "
            f"(frames, 22, 3), HumanML3D features (frames, 263) or Motion-X SMPL-X parameters (frames, 322)"
        )
    return clip

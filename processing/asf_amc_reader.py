"""Acclaim ASF/AMC motion capture (CMU's original release, HDM05, many Vicon pipelines) to SMPL-22 joints.

An ``.asf`` file holds the skeleton: per bone a rest ``direction`` and ``length`` in world coordinates, an ``axis``
(the bone's local frame, Euler angles) and its degrees of freedom (``dof rx ry rz``); ``:units`` gives the length unit
(``length 0.45``: one unit is 1/0.45 inch) and whether angles are degrees. An ``.amc`` file holds per frame the root's
translation and rotation and each bone's ``dof`` values.

Kinematics (the Acclaim convention, as CMU's and HDM05's own tools apply it): a bone's rotation in world coordinates
is ``C · M · C⁻¹`` with ``C`` from its ``axis`` and ``M`` from its AMC values applied in ``dof`` order (``rx ry rz``:
M = Rz·Ry·Rx); it composes with its parent's, and the bone ends at its start + rotation · direction · length.
Joints are named like amc2bvh's BVH conversion (joint ``lfemur`` at the start of the femur bone, end points
``<bone>_end``), so the CMU rig table of :mod:`.bvh_reader` maps them; any other Acclaim skeleton goes through the
automatic mapping. The rest (units, up axis, sides, floor, resampling) is shared with BVH
(:func:`.bvh_reader.skeleton_to_clip`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bvh_parser import euler_to_matrix
from .bvh_reader import PosedSkeleton, skeleton_to_clip
from .motion_clip import (
    MAX_BVH_JOINTS,
    MAX_MOTION_FRAMES,
    MotionClip,
    PathLike,
    _check_file,
    _check_size,
    _positive_rate,
)
from .smpl22 import DEFAULT_FPS

__all__ = ["ASFSkeleton", "AMCMotion", "parse_asf", "parse_amc", "find_asf_for", "load_asf_amc", "asf_amc_positions"]

# Acclaim files carry no frame rate. CMU and HDM05 captured at 120 Hz (HDM05 names it: `..._120.amc`).
ACCLAIM_DEFAULT_FPS = 120.0
# HDM05 names end in `_<take>_<rate>` (`..._001_120.amc`); a CMU name (`16_30.amc`) ends in a trial number, not a rate.
_RATE_IN_NAME = re.compile(r"_\d{3}_(\d{2,3})$")
_CAPTURE_RATES = {24, 25, 30, 50, 60, 100, 120, 240, 480}
_ROT_DOFS = {"rx": "X", "ry": "Y", "rz": "Z"}
_TRANS_DOFS = {"tx", "ty", "tz", "l"}


@dataclass
class ASFBone:
    name: str
    direction: np.ndarray  # (3,) unit vector, world coordinates at rest
    length: float  # file length units
    axis: np.ndarray  # (3,) Euler angles (radians in `axis_matrix`), file angle units
    axis_order: str  # e.g. "XYZ"
    dof: list[str] = field(default_factory=list)  # e.g. ["rx", "ry", "rz"]


@dataclass
class ASFSkeleton:
    """A parsed ``.asf`` file. ``bones`` in file order; ``parent`` maps each bone to its parent (``"root"`` for the
    root's children); ``length_unit`` is ``:units length`` (metres per unit = 0.0254 / length_unit under the Acclaim
    inch convention); ``degrees`` is ``:units angle``."""

    bones: dict[str, ASFBone]
    parent: dict[str, str]
    root_order: list[str]  # AMC columns of the root, e.g. ["tx", "ty", "tz", "rx", "ry", "rz"]
    root_axis_order: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    length_unit: float = 1.0
    degrees: bool = True
    source: str = "<asf>"

    def order(self) -> list[str]:
        """Bones parents-first (file order is not guaranteed to be)."""
        out, seen = [], {"root"}
        pending = list(self.bones)
        while pending:
            progressed = False
            for name in list(pending):
                if self.parent.get(name) in seen:
                    out.append(name)
                    seen.add(name)
                    pending.remove(name)
                    progressed = True
            if not progressed:
                raise ValueError(f"{self.source}: bones {pending[:8]} are not connected to the root in :hierarchy")
        return out


@dataclass
class AMCMotion:
    """A parsed ``.amc`` file: per bone (and ``root``) a (T, n_dof) array of values in the file's angle unit."""

    values: dict[str, np.ndarray]
    num_frames: int
    degrees: bool | None  # from the file's :DEGREES / :RADIANS line, None when absent
    source: str = "<amc>"


def _read_text(path: PathLike, what: str) -> tuple[str, str]:
    """The file's text, its size bounded first (the motion readers' byte limit: a 10-minute 120 Hz CMU trial is
    ~35 MB of AMC)."""
    path = _check_file(path, what)
    _check_size(path, what)
    with open(path, "rb") as fh:
        data = fh.read()
    if b"\x00" in data[:4096]:
        raise ValueError(f"{path}: not a text {what} file (binary data)")
    return data.decode("utf-8", errors="replace"), path


def _floats(tokens: Sequence[str], n: int, where: str, what: str) -> np.ndarray:
    if len(tokens) < n:
        raise ValueError(f"{where}: {what} needs {n} numbers, got {list(tokens)}")
    try:
        vals = np.array([float(t) for t in tokens[:n]], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{where}: {what} has a non-number in {list(tokens[:n])}") from None
    if not np.isfinite(vals).all():
        raise ValueError(f"{where}: {what} is not finite: {list(tokens[:n])}")
    return vals


def _axis_order(token: str, where: str) -> str:
    order = token.upper()
    if len(order) != 3 or set(order) != set("XYZ"):
        raise ValueError(f"{where}: axis order must be a permutation of XYZ, got {token!r}")
    return order


def parse_asf(path: PathLike) -> ASFSkeleton:
    """Parse an Acclaim skeleton file; ValueError naming the file and line on anything malformed."""
    text, source = _read_text(path, "ASF skeleton")
    section = None
    units: dict[str, str] = {}
    root: dict[str, Any] = {"order": ["tx", "ty", "tz", "rx", "ry", "rz"], "axis": "XYZ",
                            "position": np.zeros(3), "orientation": np.zeros(3)}
    bones: dict[str, ASFBone] = {}
    parent: dict[str, str] = {}
    bone: dict[str, Any] | None = None
    seen_hierarchy = False

    def close_bone(lineno: int) -> None:
        where = f"{source}: line {lineno}"
        for key in ("name", "direction", "length"):
            if key not in bone:
                raise ValueError(f"{where}: bone block without '{key}'")
        if bone["name"] in bones or bone["name"] == "root":
            raise ValueError(f"{where}: bone {bone['name']!r} is defined twice")
        norm = float(np.linalg.norm(bone["direction"]))
        direction = bone["direction"] / norm if norm > 0 else bone["direction"]
        if len(bones) >= MAX_BVH_JOINTS:
            raise ValueError(f"{source}: more than {MAX_BVH_JOINTS} bones")
        bones[bone["name"]] = ASFBone(bone["name"], direction, bone["length"], bone.get("axis", np.zeros(3)),
                                      bone.get("axis_order", "XYZ"), bone.get("dof", []))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}: line {lineno}"
        tokens = line.split()
        key = tokens[0].lower()
        if key.startswith(":"):
            section = key
            if section == ":hierarchy":
                seen_hierarchy = True
            if section in (":version", ":name"):
                section = None
            continue
        if section == ":units":
            if len(tokens) >= 2:
                units[key] = tokens[1]
        elif section == ":root":
            if key == "order":
                order = [t.lower() for t in tokens[1:]]
                bad = [t for t in order if t not in _ROT_DOFS and t not in ("tx", "ty", "tz")]
                if bad or len(set(order)) != len(order):
                    raise ValueError(f"{where}: root order must list TX TY TZ RX RY RZ (each once), got {tokens[1:]}")
                root["order"] = order
            elif key == "axis":
                root["axis"] = _axis_order(tokens[1] if len(tokens) > 1 else "", where)
            elif key in ("position", "orientation"):
                root[key] = _floats(tokens[1:], 3, where, f"root {key}")
        elif section == ":bonedata":
            if key == "begin":
                if bone is not None:
                    raise ValueError(f"{where}: 'begin' inside a bone block (missing 'end')")
                bone = {}
            elif key == "end":
                if bone is None:
                    raise ValueError(f"{where}: 'end' without 'begin'")
                close_bone(lineno)
                bone = None
            elif bone is None:
                raise ValueError(f"{where}: {tokens[0]!r} outside a begin/end bone block")
            elif key == "name":
                if len(tokens) < 2:
                    raise ValueError(f"{where}: bone name missing")
                bone["name"] = tokens[1]
            elif key == "direction":
                bone["direction"] = _floats(tokens[1:], 3, where, "direction")
            elif key == "length":
                bone["length"] = float(_floats(tokens[1:], 1, where, "length")[0])
                if bone["length"] < 0:
                    raise ValueError(f"{where}: negative bone length {bone['length']}")
            elif key == "axis":
                bone["axis"] = _floats(tokens[1:], 3, where, "axis")
                bone["axis_order"] = _axis_order(tokens[4] if len(tokens) > 4 else "XYZ", where)
            elif key == "dof":
                dof = [t.lower() for t in tokens[1:]]
                bad = [t for t in dof if t not in _ROT_DOFS and t not in _TRANS_DOFS]
                if bad or len(set(dof)) != len(dof):
                    raise ValueError(f"{where}: dof must list rx ry rz (tx ty tz l) each at most once, got {tokens[1:]}")
                bone["dof"] = dof
        elif section == ":hierarchy":
            if key in ("begin", "end"):
                continue
            for child in tokens[1:]:
                if child in parent:
                    raise ValueError(f"{where}: bone {child!r} has two parents in :hierarchy")
                parent[child] = tokens[0]
    if bone is not None:
        raise ValueError(f"{source}: the last bone block has no 'end' (truncated?)")
    if not bones:
        raise ValueError(f"{source}: not an ASF skeleton (no :bonedata bones)")
    if not seen_hierarchy:
        raise ValueError(f"{source}: ASF file has no :hierarchy section (truncated?)")
    unknown = sorted({p for p in parent.values() if p != "root" and p not in bones} | {c for c in parent if c not in bones})
    if unknown:
        raise ValueError(f"{source}: :hierarchy names bones that :bonedata does not define: {unknown[:8]}")
    orphans = [b for b in bones if b not in parent]
    if orphans:
        raise ValueError(f"{source}: bones {orphans[:8]} have no parent in :hierarchy")
    try:
        length_unit = float(units.get("length", "1"))
    except ValueError:
        raise ValueError(f"{source}: :units length must be a number, got {units.get('length')!r}") from None
    if not (np.isfinite(length_unit) and length_unit > 0):
        raise ValueError(f"{source}: :units length must be positive, got {length_unit}")
    angle = units.get("angle", "deg").lower()
    if angle not in ("deg", "rad"):
        raise ValueError(f"{source}: :units angle must be deg or rad, got {angle!r}")
    skel = ASFSkeleton(bones=bones, parent=parent, root_order=root["order"], root_axis_order=root["axis"],
                       root_position=root["position"], root_orientation=root["orientation"],
                       length_unit=length_unit, degrees=angle == "deg", source=source)
    skel.order()  # raises on cycles / disconnected bones
    return skel


_FRAME_LINE = re.compile(r"^\d+$")


def parse_amc(path: PathLike, skeleton: ASFSkeleton) -> AMCMotion:
    """Parse an Acclaim motion file against its skeleton (each bone line must carry that bone's dof count)."""
    text, source = _read_text(path, "AMC motion")
    dof_count = {name: len(b.dof) for name, b in skeleton.bones.items()}
    dof_count["root"] = len(skeleton.root_order)
    rows: dict[str, list[list[float]]] = {}
    degrees: bool | None = None
    frame_bones: set[str] = set()
    frames = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            upper = line.upper()
            if upper.startswith(":DEGREES"):
                degrees = True
            elif upper.startswith(":RADIANS"):
                degrees = False
            continue
        if _FRAME_LINE.match(line):
            if frames and frame_bones != set(rows):
                missing = sorted(set(rows) - frame_bones)
                raise ValueError(f"{source}: frame {frames} lacks bones {missing[:6]} (line {lineno})")
            frames += 1
            if frames > MAX_MOTION_FRAMES:
                raise ValueError(f"{source}: more than {MAX_MOTION_FRAMES} frames")
            frame_bones = set()
            continue
        if frames == 0:
            raise ValueError(f"{source}: line {lineno}: bone values before the first frame number; not an AMC file?")
        tokens = line.split()
        name = tokens[0]
        if name not in dof_count:
            raise ValueError(f"{source}: line {lineno}: bone {name!r} is not in the skeleton {skeleton.source}; "
                             "is it the right .asf for this .amc?")
        if name in frame_bones:
            raise ValueError(f"{source}: line {lineno}: bone {name!r} appears twice in frame {frames}")
        if len(tokens) - 1 != dof_count[name]:
            raise ValueError(f"{source}: line {lineno}: bone {name!r} has {len(tokens) - 1} values, its dof in "
                             f"{skeleton.source} lists {dof_count[name]}")
        try:
            vals = [float(t) for t in tokens[1:]]
        except ValueError:
            raise ValueError(f"{source}: line {lineno}: non-number in {tokens[1:]}") from None
        if frames == 1:
            rows[name] = []
        elif name not in rows:
            raise ValueError(f"{source}: line {lineno}: bone {name!r} is missing from the first frame")
        rows[name].append(vals)
        frame_bones.add(name)
    if frames == 0:
        raise ValueError(f"{source}: AMC file has no frames")
    if frame_bones != set(rows):
        raise ValueError(f"{source}: the last frame ({frames}) lacks bones {sorted(set(rows) - frame_bones)[:6]} (truncated?)")
    if "root" not in rows:
        raise ValueError(f"{source}: AMC frames have no 'root' line")
    values = {name: np.asarray(v, dtype=np.float64).reshape(frames, dof_count[name]) for name, v in rows.items()}
    for name, arr in values.items():
        if not np.isfinite(arr).all():
            bad = int(np.argwhere(~np.isfinite(arr).all(axis=1))[0, 0])
            raise ValueError(f"{source}: bone {name!r} has NaN or infinite values (frame {bad + 1})")
    return AMCMotion(values=values, num_frames=frames, degrees=degrees, source=source)


def _extrinsic(dofs: Sequence[str], angles: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) of angles (T, k) in radians about the axes ``dofs`` applied in order (first listed first,
    about fixed axes: ``rx ry rz`` -> Rz·Ry·Rx)."""
    order = "".join(_ROT_DOFS[d] for d in dofs)
    return euler_to_matrix(order[::-1], np.degrees(angles[:, ::-1]))


def _axis_matrix(angles: np.ndarray, order: str, degrees: bool) -> np.ndarray:
    rad = np.radians(angles) if degrees else np.asarray(angles, dtype=np.float64)
    return _extrinsic([f"r{a.lower()}" for a in order], rad[None, :])[0]


def asf_amc_positions(skeleton: ASFSkeleton, motion: AMCMotion, frames: np.ndarray | None = None,
                      degrees: bool | None = None) -> tuple[list[str], list[int], list[bool], np.ndarray]:
    """(names, parents, is_end_site, world positions (T, J, 3) in file length units) of the joints of an ASF/AMC
    motion, named as amc2bvh names them: ``root``, each bone at its start, ``<bone>_end`` at a leaf bone's end."""
    if degrees is None:
        degrees = motion.degrees if motion.degrees is not None else skeleton.degrees
    take = slice(None) if frames is None else np.asarray(frames)
    T = motion.num_frames if frames is None else len(take)

    def dof_values(name: str, dofs: Sequence[str], kinds: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
        vals = motion.values.get(name)
        cols = [k for k, d in enumerate(dofs) if d in kinds]
        if vals is None or not cols:
            return [], np.zeros((T, 0))
        return [dofs[k] for k in cols], vals[take][:, cols]

    to_rad = np.pi / 180.0 if degrees else 1.0
    names, parents, ends = ["root"], [-1], [False]
    index = {"root": 0}
    # Root: translation (its AMC values, plus the ASF rest position) and rotation C·M·C⁻¹ in the :root axis order.
    root_t = np.broadcast_to(skeleton.root_position, (T, 3)).copy()
    order = skeleton.root_order
    root_vals = motion.values["root"][take]
    for k, d in enumerate(order):
        if d in ("tx", "ty", "tz"):
            root_t[:, "xyz".index(d[1])] += root_vals[:, k]
    rdofs = [d for d in order if d in _ROT_DOFS]
    C = _axis_matrix(skeleton.root_orientation, skeleton.root_axis_order, skeleton.degrees)
    M = _extrinsic(rdofs, root_vals[:, [order.index(d) for d in rdofs]] * to_rad) if rdofs else np.eye(3)[None]
    rot = {"root": C @ M @ C.T}
    end = {"root": root_t}
    positions = [root_t]
    for name in skeleton.order():
        bone = skeleton.bones[name]
        p = skeleton.parent[name]
        dofs, vals = dof_values(name, bone.dof, _ROT_DOFS)
        C = _axis_matrix(bone.axis, bone.axis_order, skeleton.degrees)
        local = C @ _extrinsic(dofs, vals * to_rad) @ C.T if dofs else np.eye(3)[None]
        rot[name] = rot[p] @ local
        start = end[p]
        end[name] = start + np.einsum("tij,j->ti", rot[name], bone.direction * bone.length)
        index[name] = len(names)
        names.append(name)
        parents.append(index[p])
        ends.append(False)
        positions.append(start)
    children = set(skeleton.parent.values())
    for name in skeleton.order():
        if name not in children:
            names.append(f"{name}_end")
            parents.append(index[name])
            ends.append(True)
            positions.append(end[name])
    return names, parents, ends, np.stack(positions, axis=1)


def find_asf_for(amc_path: PathLike) -> str:
    """The skeleton of an ``.amc`` file when none is given: the ``.asf`` beside it whose name the motion's name starts
    with (``HDM_bd.asf`` for ``HDM_bd_squat1Reps_001_120.amc``, ``16.asf`` for ``16_01.amc``), else the only ``.asf``
    in the folder."""
    amc_path = os.fspath(amc_path)
    folder = os.path.dirname(os.path.abspath(amc_path))
    stem = os.path.splitext(os.path.basename(amc_path))[0].lower()
    try:
        candidates = sorted(f for f in os.listdir(folder) if f.lower().endswith(".asf"))
    except OSError as err:
        raise FileNotFoundError(f"{amc_path}: cannot list its folder to find the .asf skeleton ({err})") from None
    prefixed = [f for f in candidates if stem.startswith(os.path.splitext(f)[0].lower())
                and (len(stem) == len(os.path.splitext(f)[0]) or not stem[len(os.path.splitext(f)[0])].isalnum())]
    if prefixed:
        return os.path.join(folder, max(prefixed, key=len))
    if len(candidates) == 1:
        return os.path.join(folder, candidates[0])
    if not candidates:
        raise FileNotFoundError(f"{amc_path}: an .amc motion needs its .asf skeleton; none is in its folder. Pass "
                                "skeleton='actor.asf' (humocon: --skeleton)")
    raise ValueError(f"{amc_path}: several .asf skeletons beside it ({', '.join(candidates[:6])}) and none whose name "
                     "starts its name; pass skeleton='actor.asf' (humocon: --skeleton)")


def load_asf_amc(
    path: PathLike,
    skeleton: PathLike | ASFSkeleton | None = None,
    fps: float | None = DEFAULT_FPS,
    source_fps: float | None = None,
    drop_tpose: str | bool = "auto",
    scale: float | None = None,
    up_axis: str = "auto",
    rig: str | None = None,
    joint_map: Mapping[str, Any] | None = None,
    canonical_facing: bool = False,
) -> MotionClip:
    """Read an Acclaim ``.amc`` motion with its ``.asf`` skeleton as SMPL-22 joints (metres, Y up) at ``fps``.

    Args:
        path: the ``.amc`` file.
        skeleton: the ``.asf`` file (or a parsed :class:`ASFSkeleton`); by default the one beside the motion
            (:func:`find_asf_for`).
        source_fps: the capture rate; Acclaim files do not store it. Default: the ``_<rate>`` at the end of the file
            name (HDM05's ``..._120.amc``), else 120 (CMU, HDM05).
        scale: metres per length unit; by default from ``:units length`` (the Acclaim inch convention: ``length
            0.45`` is 1/0.45 inch), unless that gives an implausible stature, then the unit giving a human stature.
        Others as in :func:`.bvh_reader.load_bvh` (CMU / HDM05 bone names map by the CMU rig table, other Acclaim
        skeletons automatically).
    """
    amc = os.fspath(path)
    _check_file(amc, "AMC motion")
    if skeleton is None:
        skeleton = find_asf_for(amc)
    skel = skeleton if isinstance(skeleton, ASFSkeleton) else parse_asf(skeleton)
    motion = parse_amc(amc, skel)
    if source_fps is None:
        match = _RATE_IN_NAME.search(os.path.splitext(os.path.basename(amc))[0])
        source_fps = float(match.group(1)) if match and int(match.group(1)) in _CAPTURE_RATES else ACCLAIM_DEFAULT_FPS
    source_fps = _positive_rate(source_fps, "source_fps", amc)
    if fps is not None:
        fps = _positive_rate(fps, "fps", amc)
    names, parents, ends, _ = asf_amc_positions(skel, motion, frames=np.zeros(1, dtype=np.int64))

    def positions(frames, joints):
        return asf_amc_positions(skel, motion, frames)[3]

    posed = PosedSkeleton(names=names, parents=parents, is_end_site=ends, num_frames=motion.num_frames,
                          positions=positions, source=amc)
    unit = (0.0254 / skel.length_unit, f"ASF :units length {skel.length_unit:g} (1/{skel.length_unit:g} inch)")
    return skeleton_to_clip(posed, source_fps=source_fps, fps=fps, drop_tpose=drop_tpose, scale=scale,
                            up_axis=up_axis, rig=rig, joint_map=joint_map, canonical_facing=canonical_facing,
                            info=dict(skeleton=skel.source, format="asf/amc"), scale_hint=unit)

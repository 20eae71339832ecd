"""BVH files: the parser (hierarchy, channels, motion block; every size bounded before allocating) and the forward
kinematics that turn Euler-angle channels into world joint positions."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .motion_clip import MAX_BVH_JOINTS, MAX_MOTION_FRAMES, PathLike, _check_file, _check_size

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


def parse_bvh(path: PathLike, max_bytes: int | None = None) -> BVHData:
    """Parse a BVH file into its hierarchy and channel values; raise ValueError on any corruption.

    Files larger than `max_bytes` (default ``$HUMOCON_MAX_MOTION_BYTES`` or `MAX_BVH_BYTES`, 64 MiB) are refused
    before reading: parsing holds about 4x the file in memory. A header declaring more than `MAX_MOTION_FRAMES`
    frames is refused before the motion data is parsed.
    """
    path = _check_file(path, "BVH")
    limit = _check_size(path, "BVH", max_bytes)
    with open(path, encoding="utf-8", errors="replace") as fh:
        # Only the checked size (and one more, to notice a file that grew since): read(n) allocates n up front.
        expected = min(limit, os.fstat(fh.fileno()).st_size)
        text = fh.read(expected + 1)
    if len(text) > expected:  # characters never outnumber bytes
        raise ValueError(f"BVH file {path} grew while it was read (more than {expected} bytes); read it once it is "
                         "complete")
    return _parse_bvh_text(text, path)


def _parse_bvh_text(text: str, source: str) -> BVHData:
    if not text.strip():
        raise ValueError(f"BVH file is empty: {source}")
    m = re.search(r"^\s*MOTION\s*$", text, flags=re.MULTILINE)
    if not text.lstrip().upper().startswith("HIERARCHY"):
        raise ValueError(f"{source}: not a BVH file (it does not start with HIERARCHY)")
    if m is None:
        raise ValueError(f"{source}: BVH file has no MOTION section (truncated?)")
    header, body_start = text[: m.start()], m.end()  # the motion block is not copied: it is most of the file

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
            repeated = sorted({c for c in chans if chans.count(c) > 1})
            if repeated:  # "Xrotation Xrotation Xrotation" or a 9-channel root would be read as other rotations
                raise ValueError(f"{source}: line {lineno}: CHANNELS lists {repeated} more than once; each of "
                                 "X/Y/Zposition and X/Y/Zrotation may appear once per joint")
            j = stack[-1]
            if channels[j]:
                raise ValueError(f"{source}: line {lineno}: a second CHANNELS line for joint {names[j]!r}")
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

    mf = re.compile(r"Frames:\s*(\S+)").search(text, body_start)
    mt = re.compile(r"Frame\s+Time:\s*(\S+)").search(text, body_start)
    if mf is None or mt is None:
        raise ValueError(f"{source}: MOTION section lacks 'Frames:' or 'Frame Time:' (truncated?)")
    try:
        n_frames = int(mf.group(1))
        frame_time = float(mt.group(1))
    except ValueError:
        raise ValueError(f"{source}: bad 'Frames:'/'Frame Time:' values {mf.group(1)!r}, {mt.group(1)!r}") from None
    if n_frames <= 0:
        raise ValueError(f"{source}: BVH declares {n_frames} frames; the motion is empty")
    if n_frames > MAX_MOTION_FRAMES:
        raise ValueError(f"{source}: BVH declares {n_frames} frames, more than the {MAX_MOTION_FRAMES} a motion may "
                         "have")
    start = text.find("\n", mt.end())
    data_text = text[start + 1:] if start >= 0 else ""
    # Every value takes at least two characters (a digit and a separator): a header asking for more is truncated.
    if n_frames * max(n_channels, 1) > (len(data_text) + 1) // 2:
        raise ValueError(f"{source}: corrupt or truncated MOTION data: header says {n_frames} frames x {n_channels} "
                         f"channels, more values than its {len(data_text)} characters can hold")
    rows = [ln for ln in data_text.splitlines() if ln.strip()]
    per_line = np.fromiter((len(ln.split()) for ln in rows), dtype=np.int64, count=len(rows))
    values = _parse_numbers(data_text, int(per_line.sum()))
    if values is None:
        bad = next(t for t in data_text.split() if not _is_float(t))
        raise ValueError(f"{source}: MOTION data contains a non-number {bad!r}") from None
    del data_text
    if values.size != n_frames * n_channels or len(rows) != n_frames:
        raise ValueError(
            f"{source}: corrupt or truncated MOTION data: header says {n_frames} frames x {n_channels} "
            f"channels = {n_frames * n_channels} values, found {values.size} values in {len(rows)} lines"
        )
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


def _parse_numbers(text: str, tokens: int) -> np.ndarray | None:
    """The `tokens` whitespace-separated numbers of `text` as float64, or None when one is not a number. numpy's text
    parser first: it builds no list of one Python string per token, as ``text.split()`` does (~60 bytes each, the
    bulk of a BVH parse's memory). Whatever it does not read as exactly `tokens` numbers goes through float()."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy warns, then stops, at the first non-number
        try:
            values = np.fromstring(text, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
    if values is not None and values.size == tokens:
        return values
    try:  # "1.5.5" or "1-2" read as two numbers, a non-number: the exact, slower way decides
        return np.array(text.split(), dtype=np.float64)
    except ValueError:
        return None


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

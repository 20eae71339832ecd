"""HumanML3D files: `new_joints` arrays (T, 22, 3) and the 263-dimensional feature vectors (joints recovered from
them), with the safe `.npy` / `.npz` loading the other readers use (no pickle, sizes from the header bounded)."""

from __future__ import annotations

import os

import numpy as np

from .motion_clip import MotionClip, _check_file, _positive_rate, resample_joints
from .smpl22 import DEFAULT_FPS, check_joints

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

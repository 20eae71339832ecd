"""The motion clip every reader returns (SMPL-22 joints in metres, Y up, at a frame rate), the limits that bound what
a file header may ask for, and the helpers the readers share (file checks, frame-rate checks, resampling)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .smpl22 import check_joints

PathLike = Union[str, "os.PathLike[str]"]


# The motion files every entry point accepts (processor, `humocon ask`, data set loaders): what `load_motion` reads.
MOTION_EXTENSIONS = (".bvh", ".amc", ".npy", ".npz")
# Longest motion a reader produces (frames after resampling): 24 h at 20 fps is ~1.7 M frames. Header values that
# imply more (a BVH "Frame Time: 1e6", fps=1e-6) are errors, not a reason to allocate gigabytes.
MAX_MOTION_FRAMES = 2_000_000
# Joints (end sites included) a BVH may define: rigs with full hands and faces have a few hundred.
MAX_BVH_JOINTS = 5000
# Largest BVH file the parser reads, in bytes (parsing holds about 4x the file in memory); the environment variable
# HUMOCON_MAX_MOTION_BYTES or a reader's `max_bytes` argument changes it. Real takes are far smaller: an hour of a
# 60-joint rig at 120 fps is ~500 MB, a typical CMU / Bandai take 0.2-5 MB.
MAX_BVH_BYTES = 64 * 1024**2
MAX_MOTION_BYTES_ENV = "HUMOCON_MAX_MOTION_BYTES"
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


def _check_file(path: PathLike, what: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{what} path is a directory, expected a file: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{what} file is empty: {path}")
    return path


def max_motion_bytes(limit: int | None = None) -> int:
    """The byte limit for a motion file: `limit` when given, else ``$HUMOCON_MAX_MOTION_BYTES``, else
    `MAX_BVH_BYTES`."""
    where = "max_bytes"
    if limit is None:
        value = os.environ.get(MAX_MOTION_BYTES_ENV, "").strip()
        if not value:
            return MAX_BVH_BYTES
        limit, where = value, MAX_MOTION_BYTES_ENV
    try:
        number = int(float(limit))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number of bytes, got {limit!r}") from None
    if number <= 0:
        raise ValueError(f"{where} must be a positive number of bytes, got {limit!r}")
    return number


def _check_size(path: str, what: str, limit: int | None = None) -> int:
    """`path`'s size, or a ValueError naming the file, its size and the limit when it is larger."""
    limit = max_motion_bytes(limit)
    size = os.path.getsize(path)
    if size > limit:
        raise ValueError(
            f"{what} file {path} is {size} bytes ({size / 2**20:.1f} MiB), more than the {limit} bytes "
            f"({limit / 2**20:.1f} MiB) this reader accepts; set {MAX_MOTION_BYTES_ENV} (or max_bytes=) to read it"
        )
    return limit


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

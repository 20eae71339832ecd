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

One module per format: `motion_clip.py` (the clip type and shared helpers), `bvh_parser.py` and `bvh_reader.py`
(BVH from any humanoid rig, with `bvh_skeleton.py`'s automatic mapping), `asf_amc_reader.py` (Acclaim ASF/AMC), `humanml3d_reader.py`, `smpl_reader.py`
(AMASS / Motion-X). This module is the entry point: `load_motion` picks the reader, and the readers' public names are
importable from here.
"""

from __future__ import annotations

import os
import re

import numpy as np

from .asf_amc_reader import find_asf_for, load_asf_amc, parse_amc, parse_asf
from .bvh_parser import BVHData, bvh_forward_kinematics, euler_to_matrix, parse_bvh
from .bvh_reader import BVH_RIG_TABLES, estimate_stature, load_bvh
from .humanml3d_reader import (
    HUMANML3D_VEC_DIM,
    _load_npy,
    _reject_degenerate,
    load_humanml3d_joints,
    load_humanml3d_vecs,
    recover_joints_from_humanml3d_vecs,
)
from .motion_clip import (
    MAX_BVH_JOINTS,
    MAX_MOTION_FRAMES,
    MOTION_EXTENSIONS,
    MotionClip,
    _check_file,
    resample_joints,
)
from .smpl22 import DEFAULT_FPS, check_joints
from .smpl_reader import load_amass_npz, load_motionx_smplx

__all__ = [
    "MOTION_EXTENSIONS",
    "MotionClip",
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
    "MAX_MOTION_FRAMES",
    "MAX_BVH_JOINTS",
    "euler_to_matrix",
    "load_motion",
    "load_asf_amc",
    "parse_asf",
    "parse_amc",
    "find_asf_for",
]


def load_motion(path_or_array, fps: float | None = DEFAULT_FPS, **kwargs) -> MotionClip:
    """Load any supported motion as a :class:`MotionClip` at ``fps``.

    * ``MotionClip``: resampled to ``fps``.
    * array (T, 22, 3): SMPL-22 joints at ``source_fps`` (default 20); (T, 263): HumanML3D features
      (``mean``/``std`` keywords); (T, 322): Motion-X SMPL-X parameters (``body_model_dir``).
    * ``.bvh``: :func:`load_bvh`; ``.amc``: :func:`load_asf_amc` (``skeleton="actor.asf"``, by default the ``.asf``
      beside it); ``.npy``: HumanML3D joints, HumanML3D features or Motion-X
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
    if ext == ".amc":
        return load_asf_amc(path, fps=fps, **kwargs)
    if ext == ".asf":
        raise ValueError(f"{path}: an .asf file is a skeleton without motion; load the .amc motion file (its "
                         "skeleton= is this file, found automatically when it lies beside the .amc)")
    if ext == ".npz":
        return load_amass_npz(path, fps=fps, **kwargs)
    if ext == ".npy":
        arr = _load_npy(_check_file(path, "motion"))
        if arr.ndim == 3:
            _reject_degenerate(check_joints(arr, path), path)
        return _load_array(arr, fps, path, **kwargs)
    _check_file(path, "motion")
    raise ValueError(f"{path}: unsupported motion file type {ext!r}; expected .bvh, .amc (with its .asf), .npy (HumanML3D / Motion-X) or .npz (AMASS)")


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

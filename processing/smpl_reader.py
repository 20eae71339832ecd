"""AMASS `.npz` and Motion-X SMPL-X parameter files to SMPL-22 joints through the `smplx` body models (optional
dependency; the body model files are licence-restricted and not shipped)."""

from __future__ import annotations

import os

import numpy as np

from .bvh_reader import _finish, _to_y_up
from .humanml3d_reader import _load_npy, _load_npz
from .motion_clip import _BODY_INSTALL_HINT, MotionClip, PathLike, _check_file, _positive_rate, resample_joints
from .smpl22 import DEFAULT_FPS, NUM_JOINTS, check_joints


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

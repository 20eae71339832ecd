"""Motion feature extractor: SMPL-22 joint positions -> normalised per-frame pose features, and back.

The motion encoder sees each frame as a D = 137 vector built from canonicalised joints (root at the
origin in XZ, floor at y = 0, facing +Z at frame 0). Everything is expressed relative to the body's
own heading so that the same movement gives the same features wherever and whichever way it happens;
the root's yaw and XZ velocity are kept as increments, so integrating them gives the trajectory back
and `inverse_transform` recovers the canonical joints exactly (up to float rounding).

Feature layout per frame t (indices into the last axis):

    [0]        root yaw angular velocity    theta[t+1] - theta[t], radians per frame (wrapped to [-pi, pi))
    [1:3]      root XZ linear velocity      (x, z) of root[t+1] - root[t], in the heading frame of t, m/frame
    [3]        root height                  y of the root (pelvis) above the floor, m
    [4:67]     local joint positions        joints 1..21 minus the root, in the heading frame of t (21 x 3), m
    [67:133]   local joint velocities       joints[t+1] - joints[t], all 22 joints, in the heading frame of t, m/frame
    [133:137]  foot contacts                {0, 1} for (left_ankle, left_foot, right_ankle, right_foot)

Velocities are forward differences; the last frame of a clip repeats the previous frame's velocity
(and a one-frame clip has zero velocity), so T frames of joints give T feature frames. "Heading" is
the yaw of the body's forward direction, taken as up x (right_hip - left_hip + right_shoulder -
left_shoulder) as HumanML3D does.

Batch computations are vectorised numpy over all frames of all clips at once (clips concatenated
along time, with per-frame clip indices for the floor and the clip-end velocity rule), then scattered
into the padded (batch, frames, 137) output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin
from transformers.utils import logging

from .motion_clip import resample_joints
from .smpl22 import DEFAULT_FPS, FACE_JOINTS, FEET_JOINTS, NUM_JOINTS, check_joints

logger = logging.get_logger(__name__)

# Feature layout (see module docstring).
ROOT_YAW_VELOCITY = slice(0, 1)
ROOT_XZ_VELOCITY = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
LOCAL_POSITIONS = slice(4, 4 + (NUM_JOINTS - 1) * 3)
LOCAL_VELOCITIES = slice(LOCAL_POSITIONS.stop, LOCAL_POSITIONS.stop + NUM_JOINTS * 3)
FOOT_CONTACTS = slice(LOCAL_VELOCITIES.stop, LOCAL_VELOCITIES.stop + len(FEET_JOINTS))
MOTION_FEATURE_SIZE = FOOT_CONTACTS.stop  # 137


# --------------------------------------------------------------------------------------------------
# Pure numpy geometry (batched over any leading axes)
# --------------------------------------------------------------------------------------------------


def heading_angles(joints: np.ndarray) -> np.ndarray:
    """Yaw (radians) of the body's forward direction per frame: 0 means facing +Z, pi/2 facing +X.

    joints: (..., 22, 3). Returns (...). The forward direction is up x across, with across the sum of
    the right-minus-left hip and shoulder vectors; a degenerate pose (zero across vector) gives 0.
    """
    r_hip, l_hip, r_sho, l_sho = FACE_JOINTS
    across = (joints[..., r_hip, :] - joints[..., l_hip, :]) + (joints[..., r_sho, :] - joints[..., l_sho, :])
    # forward = (0, 1, 0) x across = (across_z, 0, -across_x); yaw = atan2(forward_x, forward_z)
    return np.arctan2(across[..., 2], -across[..., 0])


def rotate_y(vectors: np.ndarray, angles: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rotate 3-vectors about +Y by `angles` (right-handed; +Z turns towards +X for a positive angle).

    vectors: (..., 3); angles broadcastable to vectors[..., 0]; `out` may be a preallocated (..., 3) view.
    """
    c, s = np.cos(angles), np.sin(angles)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    if out is None:
        out = np.empty(np.broadcast_shapes(vectors.shape, np.shape(angles) + (3,)), dtype=np.result_type(vectors, c))
    out[..., 0] = c * x + s * z
    out[..., 1] = y
    out[..., 2] = c * z - s * x
    return out


def _wrap_angle(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def canonicalize_batch(joints: np.ndarray) -> np.ndarray:
    """Canonicalise clips (B, T, 22, 3) of equal length: floor (lowest foot joint over the clip) at
    y = 0, root XZ at the origin at frame 0, facing +Z at frame 0. Returns float64 (B, T, 22, 3)."""
    out = np.array(joints, dtype=np.float64, copy=True)
    floor = out[:, :, list(FEET_JOINTS), 1].min(axis=(1, 2))  # (B,)
    out[..., 1] -= floor[:, None, None]
    out[..., 0] -= out[:, :1, :1, 0]
    out[..., 2] -= out[:, :1, :1, 2]
    yaw0 = heading_angles(out[:, 0])  # (B,)
    return rotate_y(out, -yaw0[:, None, None])


def joints_to_features(
    joints: np.ndarray,
    lengths: Sequence[int],
    fps: float,
    contact_speed_threshold: float,
    contact_height_thresholds: Sequence[float],
) -> np.ndarray:
    """Un-normalised features (N, 137) float64 of clips concatenated along frames (N, 22, 3).

    `lengths` gives each clip's frame count (they sum to N). Every feature except the root height is
    invariant to a rotation about Y and a horizontal shift, so the clips need no canonicalisation
    here: only the floor (lowest foot joint of each clip) is subtracted. Vectorised over all frames;
    coordinates are processed component-major ((3, N, 22) contiguous) because strided xyz access
    made the large-batch case memory-bound.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = int(lengths.sum())
    px, py, pz = np.asarray(joints, dtype=np.float64).reshape(n, NUM_JOINTS, 3).transpose(2, 0, 1).copy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    lasts = starts + lengths - 1
    multi = lengths > 1

    def forward_diff(a: np.ndarray) -> np.ndarray:
        # forward difference within each clip; a clip's last frame repeats the previous difference
        # (one-frame clips: zero)
        d = np.empty_like(a)
        d[:-1] = a[1:] - a[:-1]
        d[lasts[multi]] = d[lasts[multi] - 1]
        d[lasts[~multi]] = 0
        return d

    r_hip, l_hip, r_sho, l_sho = FACE_JOINTS
    across_x = px[:, r_hip] - px[:, l_hip] + px[:, r_sho] - px[:, l_sho]
    across_z = pz[:, r_hip] - pz[:, l_hip] + pz[:, r_sho] - pz[:, l_sho]
    yaw = np.arctan2(across_z, -across_x)  # as heading_angles
    yaw_src = yaw.copy()  # heading of the frame each velocity starts from
    yaw_src[lasts[multi]] = yaw[lasts[multi] - 1]
    dyaw = np.empty_like(yaw)
    dyaw[:-1] = _wrap_angle(yaw[1:] - yaw[:-1])
    dyaw[lasts[multi]] = dyaw[lasts[multi] - 1]
    dyaw[lasts[~multi]] = 0

    dx, dy, dz = forward_diff(px), forward_diff(py), forward_diff(pz)
    feats = np.empty((n, MOTION_FEATURE_SIZE), dtype=np.float64)
    feats[:, 0] = dyaw

    # rotation by -yaw: x' = c x - s z, z' = s x + c z
    c, s = np.cos(yaw_src)[:, None], np.sin(yaw_src)[:, None]
    vel = feats[:, LOCAL_VELOCITIES].reshape(n, NUM_JOINTS, 3)
    vel[..., 0] = c * dx - s * dz
    vel[..., 1] = dy
    vel[..., 2] = s * dx + c * dz
    feats[:, 1] = vel[:, 0, 0]
    feats[:, 2] = vel[:, 0, 2]

    feet = list(FEET_JOINTS)
    floor = np.repeat(np.minimum.reduceat(py[:, feet].min(axis=1), starts), lengths)  # (N,)
    feats[:, 3] = py[:, 0] - floor

    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    rx, rz = px[:, 1:] - px[:, :1], pz[:, 1:] - pz[:, :1]
    pos = feats[:, LOCAL_POSITIONS].reshape(n, NUM_JOINTS - 1, 3)
    pos[..., 0] = c * rx - s * rz
    pos[..., 1] = py[:, 1:] - py[:, :1]
    pos[..., 2] = s * rx + c * rz

    foot_speed = np.sqrt(dx[:, feet] ** 2 + dy[:, feet] ** 2 + dz[:, feet] ** 2) * fps  # (N, 4) m/s
    foot_height = py[:, feet] - floor[:, None]
    feats[:, FOOT_CONTACTS] = (foot_speed < contact_speed_threshold) & (
        foot_height < np.asarray(contact_height_thresholds, dtype=np.float64)
    )
    return feats


def features_to_joints_batch(features: np.ndarray) -> np.ndarray:
    """Recover canonical joints (B, T, 22, 3) float64 from un-normalised features (B, T, 137).

    The heading starts at 0 (facing +Z) and the root at the XZ origin, as canonicalisation leaves them;
    yaw and root position are integrated from the per-frame increments, then the local joints placed.
    """
    f = np.asarray(features, dtype=np.float64)
    bsz, t_max = f.shape[:2]
    yaw = np.zeros((bsz, t_max))
    yaw[:, 1:] = np.cumsum(f[:, :-1, ROOT_YAW_VELOCITY.start], axis=1)
    vel = np.zeros((bsz, t_max, 3))
    vel[..., [0, 2]] = f[..., ROOT_XZ_VELOCITY]
    world_vel = rotate_y(vel, yaw)
    root = np.zeros((bsz, t_max, 3))
    root[:, 1:] = np.cumsum(world_vel[:, :-1], axis=1)
    root[..., 1] = f[..., ROOT_HEIGHT.start]
    local = f[..., LOCAL_POSITIONS].reshape(bsz, t_max, NUM_JOINTS - 1, 3)
    joints = np.empty((bsz, t_max, NUM_JOINTS, 3))
    joints[:, :, 0] = root
    joints[:, :, 1:] = root[:, :, None, :] + rotate_y(local, yaw[:, :, None])
    return joints


# --------------------------------------------------------------------------------------------------
# The feature extractor
# --------------------------------------------------------------------------------------------------


class MotionFeatureExtractor(FeatureExtractionMixin):
    r"""Turns SMPL-22 joint sequences into normalised per-frame features for the motion encoder.

    Args:
        fps (`float`, defaults to 20.0): frame rate the features are computed at. Paths are loaded and
            `MotionClip`s resampled to it; plain arrays are assumed to already be at this rate.
        max_frames (`int`, defaults to 196): truncation length and the `padding="max_length"` length.
        do_normalize (`bool`, defaults to `True`): standardise features with `feature_mean`/`feature_std`.
        feature_mean, feature_std (`list[float]` of length 137, *optional*): normalisation statistics,
            usually set by [`~MotionFeatureExtractor.fit_normalization`]. Unset means identity (0 / 1).
        std_floor (`float`, defaults to 1e-3): lower bound on fitted standard deviations, so that
            near-constant dimensions (e.g. a contact that never fires) do not blow up.
        contact_speed_threshold (`float`, defaults to 0.9): foot contact needs the foot joint slower
            than this (m/s; HumanML3D's 0.002 m^2/frame^2 at 20 fps) ...
        contact_height_thresholds (`list[float]`, defaults to (0.12, 0.06, 0.12, 0.06)): ... and lower
            than this above the clip's floor (m; left ankle, left foot, right ankle, right foot).
        padding_value (`float`, defaults to 0.0): value of padded frames in `motion_values`.
    """

    model_input_names = ["motion_values", "motion_attention_mask"]

    def __init__(
        self,
        fps: float = DEFAULT_FPS,
        max_frames: int = 196,
        do_normalize: bool = True,
        feature_mean: Sequence[float] | None = None,
        feature_std: Sequence[float] | None = None,
        std_floor: float = 1e-3,
        contact_speed_threshold: float = 0.9,
        contact_height_thresholds: Sequence[float] = (0.12, 0.06, 0.12, 0.06),
        padding_value: float = 0.0,
        feature_size: int = MOTION_FEATURE_SIZE,
        **kwargs,
    ):
        if int(feature_size) != MOTION_FEATURE_SIZE:
            raise ValueError(f"feature_size: this extractor produces {MOTION_FEATURE_SIZE} features, got {feature_size}")
        if not float(fps) > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if int(max_frames) < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if not float(std_floor) > 0:
            raise ValueError(f"std_floor must be > 0, got {std_floor}")
        if len(contact_height_thresholds) != len(FEET_JOINTS):
            raise ValueError(
                f"contact_height_thresholds: expected {len(FEET_JOINTS)} values (left ankle, left foot, right ankle, "
                f"right foot), got {len(contact_height_thresholds)}"
            )
        self.fps = float(fps)
        self.max_frames = int(max_frames)
        self.do_normalize = bool(do_normalize)
        self.feature_mean = self._check_stat(feature_mean, "feature_mean")
        self.feature_std = self._check_stat(feature_std, "feature_std")
        if self.feature_std is not None and min(self.feature_std) <= 0:
            raise ValueError("feature_std: all standard deviations must be > 0")
        self.std_floor = float(std_floor)
        self.contact_speed_threshold = float(contact_speed_threshold)
        self.contact_height_thresholds = [float(h) for h in contact_height_thresholds]
        self.padding_value = float(padding_value)
        self.feature_size = MOTION_FEATURE_SIZE
        super().__init__(**kwargs)

    @staticmethod
    def _check_stat(values, name: str) -> list[float] | None:
        if values is None:
            return None
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.shape != (MOTION_FEATURE_SIZE,):
            raise ValueError(f"{name}: expected {MOTION_FEATURE_SIZE} values, got {arr.size}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        return [float(v) for v in arr]  # plain floats: JSON-serialisable and exact on reload

    # ---- statistics ------------------------------------------------------------------------------

    @property
    def mean(self) -> np.ndarray:
        """Normalisation mean (137,) float64; zeros when not fitted."""
        return np.zeros(MOTION_FEATURE_SIZE) if self.feature_mean is None else np.asarray(self.feature_mean)

    @property
    def std(self) -> np.ndarray:
        """Normalisation std (137,) float64; ones when not fitted."""
        return np.ones(MOTION_FEATURE_SIZE) if self.feature_std is None else np.asarray(self.feature_std)

    def fit_normalization(self, motions: Any, batch_size: int = 64) -> MotionFeatureExtractor:
        """Fit per-dimension mean/std over all (untruncated) frames of `motions`; returns self.

        `motions` accepts anything `__call__` does. Stored as `feature_mean`/`feature_std` and saved by
        `save_pretrained`. Standard deviations are floored at `std_floor`.
        """
        items = self._as_list(motions)
        total = np.zeros(MOTION_FEATURE_SIZE)
        total_sq = np.zeros(MOTION_FEATURE_SIZE)
        count = 0
        for start in range(0, len(items), batch_size):
            clips = [self._load_item(m, f"motions[{start + i}]") for i, m in enumerate(items[start : start + batch_size])]
            feats, lengths = self._raw_features(clips)
            valid = np.arange(feats.shape[1])[None, :] < lengths[:, None]
            frames = feats[valid]  # (N, D)
            total += frames.sum(axis=0)
            total_sq += np.square(frames).sum(axis=0)
            count += len(frames)
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        self.feature_mean = self._check_stat(mean, "feature_mean")
        self.feature_std = self._check_stat(np.maximum(np.sqrt(var), self.std_floor), "feature_std")
        return self

    # ---- single-clip helpers ---------------------------------------------------------------------

    def canonicalize(self, joints: Any) -> np.ndarray:
        """Canonical copy of one motion (T, 22, 3) float32: floor at y = 0, root XZ at the origin and
        facing +Z at frame 0 (left stays left: the person's left is +X)."""
        arr = check_joints(_to_numpy(joints, "joints"), "joints")
        return canonicalize_batch(arr[None])[0].astype(np.float32)

    def joints_to_features(self, joints: Any) -> np.ndarray:
        """Un-normalised features (T, 137) float32 of one motion (canonicalised first)."""
        feats, _ = self._raw_features([check_joints(_to_numpy(joints, "joints"), "joints")])
        return feats[0].astype(np.float32)

    # ---- batch API -------------------------------------------------------------------------------

    def __call__(
        self,
        motions: Any,
        padding: bool | str = "longest",
        max_frames: int | None = None,
        truncation: bool = True,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool = True,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Featurise one motion or a batch.

        Args:
            motions: a (T, 22, 3) array / tensor, a `MotionClip`, a file path (read with `load_motion`
                at `self.fps`), a list of those, or a (B, T, 22, 3) array of equal-length clips.
            padding: `"longest"` (or `True`) pads to the longest clip of the batch, `"max_length"` to
                `max_frames`, `False` / `"do_not_pad"` leaves lengths as they are (then with
                `return_tensors` all clips must have the same length).
            max_frames: overrides `self.max_frames` for truncation and `"max_length"` padding.
            truncation: keep only the first `max_frames` frames of longer clips.
            pad_to_multiple_of: round the padded length up to a multiple of this (e.g. the encoder stride).
            return_tensors: `"pt"`, `"np"` or `None` (lists of arrays when not padded, else numpy).

        Returns:
            `BatchFeature` with `motion_values` (B, T, 137) float32 (normalised when `do_normalize`; padded
            frames hold `padding_value`) and `motion_attention_mask` (B, T) int64, 1 = real frame.
        """
        if kwargs:
            logger.warning_once(f"MotionFeatureExtractor ignores unexpected arguments: {sorted(kwargs)}")
        max_frames = self.max_frames if max_frames is None else int(max_frames)
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if padding is True:
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        if padding not in ("longest", "max_length", "do_not_pad"):
            raise ValueError(f"padding must be 'longest', 'max_length' or False, got {padding!r}")

        items = self._as_list(motions)
        clips = [self._load_item(m, f"motions[{i}]") for i, m in enumerate(items)]
        if truncation:
            if any(len(c) > max_frames for c in clips):
                logger.warning_once(
                    f"motions longer than max_frames={max_frames} ({max_frames / self.fps:g} s at {self.fps:g} fps) "
                    "are truncated to their first max_frames frames; pass a larger max_frames or truncation=False "
                    "to keep more"
                )
            clips = [c[:max_frames] for c in clips]
        lengths = np.array([len(c) for c in clips], dtype=np.int64)

        if padding == "max_length":
            target = max(max_frames, int(lengths.max()))
        else:
            target = int(lengths.max())
        if pad_to_multiple_of and padding != "do_not_pad":
            target = -(-target // int(pad_to_multiple_of)) * int(pad_to_multiple_of)

        feats, lengths = self._raw_features(clips, target, normalize=self.do_normalize, dtype=np.float32)
        if not self.do_normalize and self.padding_value != 0.0:
            feats[np.arange(target)[None, :] >= lengths[:, None]] = self.padding_value
        mask = (np.arange(target)[None, :] < lengths[:, None]).astype(np.int64)

        if padding == "do_not_pad" and (lengths != lengths[0]).any():
            if return_tensors is not None:
                raise ValueError(
                    f"motions have different lengths {lengths.tolist()} and padding=False: cannot return "
                    f"{return_tensors!r} tensors; use padding='longest'"
                )
            data = {"motion_values": [feats[b, :n] for b, n in enumerate(lengths)]}
            if return_attention_mask:
                data["motion_attention_mask"] = [mask[b, :n] for b, n in enumerate(lengths)]
            return BatchFeature(data)

        data = {"motion_values": feats}
        if return_attention_mask:
            data["motion_attention_mask"] = mask
        return BatchFeature(data, tensor_type=return_tensors)

    def inverse_transform(self, motion_values: Any, motion_attention_mask: Any = None, mask: Any = None) -> list[np.ndarray]:
        """Normalised features back to canonical joints.

        Args:
            motion_values: (B, T, 137) or (T, 137) array / tensor as produced by `__call__`.
            motion_attention_mask (alias `mask`): (B, T) or (T,) with 1 for real frames (right padding);
                without it every frame is real.

        Returns:
            list of B float32 arrays (T_b, 22, 3), one per clip, trimmed to its real frames.
        """
        if motion_attention_mask is None:
            motion_attention_mask = mask
        values = _to_numpy(motion_values, "motion_values").astype(np.float64)
        if values.ndim == 2:
            values = values[None]
            if motion_attention_mask is not None:
                motion_attention_mask = _to_numpy(motion_attention_mask, "motion_attention_mask").reshape(1, -1)
        if values.ndim != 3 or values.shape[-1] != MOTION_FEATURE_SIZE:
            raise ValueError(
                f"motion_values: expected shape (batch, frames, {MOTION_FEATURE_SIZE}), got {tuple(values.shape)}"
            )
        bsz, t_max = values.shape[:2]
        if motion_attention_mask is None:
            lengths = np.full(bsz, t_max, dtype=np.int64)
        else:
            m = _to_numpy(motion_attention_mask, "motion_attention_mask")
            if m.shape != (bsz, t_max):
                raise ValueError(
                    f"motion_attention_mask: shape {tuple(m.shape)} does not match motion_values {(bsz, t_max)}"
                )
            m = m.astype(bool)
            lengths = m.sum(axis=1)
            prefix = np.arange(t_max)[None, :] < lengths[:, None]
            if (m != prefix).any():
                bad = int(np.flatnonzero((m != prefix).any(axis=1))[0])
                raise ValueError(
                    f"motion_attention_mask[{bad}]: real frames must come first (right padding), got a gap"
                )
        if not np.isfinite(values[np.arange(t_max)[None, :] < lengths[:, None]]).all():
            raise ValueError("motion_values: contains NaN or infinite values in real frames")
        if self.do_normalize:
            values = values * self.std + self.mean
        joints = features_to_joints_batch(values)
        return [joints[b, :n].astype(np.float32) for b, n in enumerate(lengths)]

    # ---- internals -------------------------------------------------------------------------------

    def _raw_features(
        self, clips: list[np.ndarray], target: int | None = None, normalize: bool = False, dtype=np.float64
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features (B, target, 137) of validated clips, `padding_value` after each clip's end, and
        their lengths; standardised when `normalize`."""
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
        target = int(lengths.max()) if target is None else target
        flat = joints_to_features(
            np.concatenate(clips), lengths, self.fps, self.contact_speed_threshold, self.contact_height_thresholds
        )
        if normalize:
            flat -= self.mean
            flat /= self.std
        out = np.full((len(clips), target, MOTION_FEATURE_SIZE), self.padding_value if normalize else 0.0, dtype=dtype)
        valid = np.arange(target)[None, :] < lengths[:, None]
        out[valid] = flat  # row-major order of `valid` matches the concatenation order
        return out, lengths

    @staticmethod
    def _as_list(motions: Any) -> list:
        if motions is None:
            raise ValueError("motions: expected a motion or a list of motions, got None")
        if _is_other_sequence(motions):  # e.g. a `datasets` column of paths
            motions = list(motions)
        if isinstance(motions, (list, tuple)):
            if len(motions) == 0:
                raise ValueError("motions: the batch is empty")
            # a single motion given as nested lists (T, 22, 3) is one item, not a batch
            if not isinstance(motions[0], (str, os.PathLike)) and np.ndim(motions[0]) == 2 and _is_numeric(motions):
                return [np.asarray(motions)]
            return list(motions)
        if hasattr(motions, "ndim") and motions.ndim == 4:  # a (B, T, 22, 3) array / tensor of equal-length clips
            return list(motions)
        return [motions]

    def _load_item(self, item: Any, name: str) -> np.ndarray:
        """One input -> validated float32 (T, 22, 3) joints at `self.fps`."""
        if isinstance(item, (str, os.PathLike)):
            from .motion_io import load_motion

            try:
                clip = load_motion(item, fps=self.fps)
            except (ValueError, FileNotFoundError) as err:
                raise type(err)(f"{name} ({os.fspath(item)}): {err}") from err
            return check_joints(clip.joints, f"{name} ({os.fspath(item)})")
        if hasattr(item, "joints") and hasattr(item, "fps"):  # MotionClip
            joints = check_joints(item.joints, name)
            return resample_joints(joints, float(item.fps), self.fps).astype(np.float32, copy=False)
        return check_joints(_to_numpy(item, name), name)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["contact_height_thresholds"] = list(out["contact_height_thresholds"])
        return out


def _is_numeric(obj) -> bool:
    try:
        return np.issubdtype(np.asarray(obj).dtype, np.number)
    except (ValueError, TypeError):
        return False


def _is_other_sequence(value: Any) -> bool:
    """An iterable of motions that is not a list/tuple, a path, an array/tensor, a MotionClip or a mapping."""
    return (
        hasattr(value, "__iter__")
        and not isinstance(value, (list, tuple, str, bytes, os.PathLike, Mapping))
        and not hasattr(value, "ndim")
        and not hasattr(value, "joints")
    )


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: cannot convert {type(x).__name__} to an array ({err})") from err


__all__ = [
    "MotionFeatureExtractor",
    "MOTION_FEATURE_SIZE",
    "canonicalize_batch",
    "joints_to_features",
    "features_to_joints_batch",
    "heading_angles",
    "rotate_y",
]

"""Video input for HuMoCon: decode, key-frame sampling, SigLIP-style normalisation and optical flow.

Stock transformers video processors (`BaseVideoProcessor`) need torchvision, which has no CPU build for our torch
(DESIGN §3), so this processor derives from transformers' backend-free `VideoProcessorMixin` (what a processor's
`video_processor` attribute must be, saved as `video_preprocessor_config.json`, loaded by `AutoVideoProcessor`) and
does its own work with numpy and OpenCV.

Which key frames are taken and how they are decoded from files is `video_decoding` (steps 1 and 2 below, described
there); this module does the rest for one video (a file path or a uint8 ``(N, H, W, 3)`` RGB array):

3. Resize every key frame to ``size`` without keeping the aspect ratio (as SiglipImageProcessor
   does), ``cv2.INTER_AREA`` when shrinking, ``INTER_LINEAR`` when enlarging; rescale by
   ``rescale_factor``, normalise with ``image_mean`` / ``image_std``; channels first.
4. Optional flow (the video velocity target): Farneback flow between consecutive key frames,
   computed on grayscale frames at ``flow_size`` (cheaper than the full size), converted to pixels of
   the resized ``size`` frame (x right, y down; a displacement per key-frame interval, not per
   second) and average-pooled over the tower's ``patch_size`` cells (the ``size // patch_size``
   grid the patch embedding covers; leftover border pixels are ignored like the convolution does).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import logging
from transformers.video_processing_utils import VideoProcessorMixin

from .smpl22 import DEFAULT_FPS

# cv2: OpenCV, or a stand-in that says how to install it (motion-only users need no OpenCV)
from .video_decoding import VIDEO_EXTENSIONS, cv2, load_key_frames, load_video, sample_frame_indices

logger = logging.get_logger(__name__)

DEFAULT_FLOW_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
}

VideoInput = str | os.PathLike | np.ndarray


# --------------------------------------------------------------------------------------------
# Frame ops
# --------------------------------------------------------------------------------------------
def _resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    interp = cv2.INTER_AREA if (height <= h and width <= w) else cv2.INTER_LINEAR
    return cv2.resize(frame, (width, height), interpolation=interp)


def pool_flow_to_patches(flow: np.ndarray, size: tuple[int, int], patch_size: int) -> np.ndarray:
    """Average a dense flow field (h, w, 2) given on a frame resized to ``size`` = (H, W) coordinates
    over the (H // p, W // p) patch cells; returns (2, H // p, W // p)."""
    height, width = size
    gh, gw = height // patch_size, width // patch_size
    fh, fw = flow.shape[:2]
    if fh % gh == 0 and fw % gw == 0 and height % patch_size == 0 and width % patch_size == 0:
        # Flow resolution is a multiple of the grid: exact block mean without resampling.
        pooled = flow.reshape(gh, fh // gh, gw, fw // gw, 2).mean(axis=(1, 3))
    else:
        full = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        full = full[: gh * patch_size, : gw * patch_size]
        pooled = full.reshape(gh, patch_size, gw, patch_size, 2).mean(axis=(1, 3))
    return np.ascontiguousarray(pooled.transpose(2, 0, 1), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------
def _hw(value: Any, name: str) -> dict:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = {"height": int(value), "width": int(value)}
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = {"height": int(value[0]), "width": int(value[1])}
    if not isinstance(value, dict) or set(value) != {"height", "width"}:
        raise ValueError(f"{name} must be an int or a dict with 'height' and 'width', got {value!r}")
    out = {"height": int(value["height"]), "width": int(value["width"])}
    if out["height"] < 1 or out["width"] < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return out


class HuMoConVideosKwargs(TypedDict, total=False):
    """What `HuMoConVideoProcessor` takes, at construction (saved settings) and per call (`videos_kwargs` of the
    processor): transformers reads this as the processor's `valid_kwargs` (`from_dict` overrides, kwargs routing)."""

    num_frames: int | None
    sampling_fps: float | None
    size: dict | int | None
    image_mean: Sequence[float] | None
    image_std: Sequence[float] | None
    rescale_factor: float | None
    patch_size: int | None
    flow_size: dict | int | None
    flow_params: dict | None
    decode_method: str | None
    do_rescale: bool | None
    do_normalize: bool | None
    do_sample_frames: bool | None
    fps: float | list[float | None] | None
    return_flow: bool | None
    return_tensors: str | None


class HuMoConVideoProcessor(VideoProcessorMixin):
    r"""Turns videos into key frames for a SigLIP tower, their timestamps and optical-flow targets.

    Args:
        num_frames (`int`, defaults to 8): key frames K per video (the video encoder's frame count).
        sampling_fps (`float`, *optional*): take key frames this many per second from the start of
            the clip instead of spreading them over the whole clip; K stays ``num_frames``.
        size (`dict` or `int`, defaults to ``{"height": 224, "width": 224}``): resized frame size.
        image_mean, image_std (`list[float]`, default 0.5 each): per-channel normalisation (SigLIP).
        rescale_factor (`float`, defaults to 1/255): scale from uint8 to [0, 1] before normalising.
        patch_size (`int`, defaults to 16): the tower's patch size; flow is pooled to its grid.
        flow_size (`dict` or `int`, *optional*): working resolution of the Farneback flow; defaults
            to half of ``size`` (at least the patch grid).
        flow_params (`dict`, *optional*): keyword arguments of ``cv2.calcOpticalFlowFarneback``.
        decode_method (`str`, defaults to ``"auto"``): ``"grab"``, ``"seek"`` or ``"auto"``.
        do_rescale, do_normalize (`bool`, default True): apply ``rescale_factor`` / ``image_mean`` and ``image_std``.
        do_sample_frames (`bool`, defaults to True): take ``num_frames`` key frames; False keeps every frame given
            (the video encoder takes any number of key frames; the processor expands ``<video>`` accordingly).

    Calling it returns a `BatchFeature` with ``pixel_values_videos`` (B, K, 3, H, W) float32,
    ``video_timestamps`` (B, K) float32 seconds and, with ``return_flow=True``, ``video_flow``
    (B, K-1, 2, H // patch_size, W // patch_size) float32 in pixels of the resized frame.
    """

    model_input_names = ["pixel_values_videos", "video_timestamps"]
    valid_kwargs = HuMoConVideosKwargs

    def __init__(
        self,
        num_frames: int = 8,
        sampling_fps: float | None = None,
        size: dict | int | None = None,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        rescale_factor: float = 1 / 255,
        patch_size: int = 16,
        flow_size: dict | int | None = None,
        flow_params: dict | None = None,
        decode_method: str = "auto",
        do_rescale: bool = True,
        do_normalize: bool = True,
        do_sample_frames: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_frames, (int, np.integer)) or isinstance(num_frames, bool) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
        if sampling_fps is not None and not (isinstance(sampling_fps, (int, float)) and sampling_fps > 0):
            raise ValueError(f"sampling_fps must be a positive number or None, got {sampling_fps!r}")
        if decode_method not in ("auto", "grab", "seek"):
            raise ValueError(f"decode_method must be 'auto', 'grab' or 'seek', got {decode_method!r}")
        self.num_frames = int(num_frames)
        self.sampling_fps = None if sampling_fps is None else float(sampling_fps)
        self.size = _hw(size if size is not None else 224, "size")
        self.image_mean = [float(v) for v in (image_mean if image_mean is not None else (0.5, 0.5, 0.5))]
        self.image_std = [float(v) for v in (image_std if image_std is not None else (0.5, 0.5, 0.5))]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError(
                f"image_mean/image_std must hold 3 values (RGB) with std > 0, got {image_mean!r} / {image_std!r}"
            )
        self.rescale_factor = float(rescale_factor)
        if not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
            raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
        if patch_size > min(self.size["height"], self.size["width"]):
            raise ValueError(f"patch_size {patch_size} is larger than the frame size {self.size}")
        self.patch_size = int(patch_size)
        grid = self.grid_size
        if flow_size is None:
            flow_size = {"height": max(grid[0], self.size["height"] // 2), "width": max(grid[1], self.size["width"] // 2)}
        self.flow_size = _hw(flow_size, "flow_size")
        if self.flow_size["height"] < grid[0] or self.flow_size["width"] < grid[1]:
            raise ValueError(f"flow_size {self.flow_size} is smaller than the patch grid {grid}")
        params = dict(DEFAULT_FLOW_PARAMS)
        unknown = set(flow_params or {}) - set(params)
        if unknown:
            raise ValueError(f"unknown flow_params {sorted(unknown)}; expected keys {sorted(params)}")
        params.update(flow_params or {})
        self.flow_params = params
        self.decode_method = decode_method
        self.do_rescale = bool(do_rescale)
        self.do_normalize = bool(do_normalize)
        self.do_sample_frames = bool(do_sample_frames)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_vision_config(cls, vision_config: Any, **kwargs) -> HuMoConVideoProcessor:
        """A processor matching a SigLIP vision tower: ``size`` from ``image_size`` and ``patch_size``.

        ``vision_config`` may be a `SiglipVisionConfig`, a `SiglipConfig` (its ``vision_config`` is
        used) or a dict. Mean/std are not part of the vision config; pass ``image_mean``/``image_std``
        when the checkpoint's image processor differs from SigLIP's 0.5/0.5.
        """
        cfg = vision_config
        if not isinstance(cfg, dict):
            cfg = getattr(cfg, "vision_config", None) or cfg
            cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else vars(cfg)
        elif isinstance(cfg.get("vision_config"), dict):
            cfg = cfg["vision_config"]
        if "image_size" not in cfg or "patch_size" not in cfg:
            raise ValueError(f"vision config needs 'image_size' and 'patch_size', got keys {sorted(cfg)}")
        kwargs.setdefault("size", cfg["image_size"])
        kwargs.setdefault("patch_size", cfg["patch_size"])
        return cls(**kwargs)

    @property
    def grid_size(self) -> tuple[int, int]:
        """(rows, cols) of the tower's patch grid."""
        return self.size["height"] // self.patch_size, self.size["width"] // self.patch_size

    def to_json_file(self, json_file_path: str | os.PathLike):
        """Write the JSON config atomically (temp file + rename) so a crash never leaves half a file."""
        json_file_path = os.fspath(json_file_path)
        directory = os.path.dirname(os.path.abspath(json_file_path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as writer:
                writer.write(self.to_json_string())
            os.replace(tmp, json_file_path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    # ------------------------------------------------------------------ decoding
    def load_video(self, path: str | os.PathLike) -> tuple[np.ndarray, float]:
        """All frames of a video file: (uint8 (N, H, W, 3) RGB, fps)."""
        return load_video(path)

    def _key_frames(self, video: Any, fps: float | None, num_frames: int, sampling_fps, where: str,
                    sample: bool = True):
        """(frames (K,H,W,3) uint8, timestamps (K,) float32) of one video input; with ``sample=False`` every frame."""
        if isinstance(video, (str, os.PathLike)):
            if sample:
                frames, ts, _, _ = load_key_frames(
                    video,
                    num_frames=num_frames,
                    sampling_fps=sampling_fps,
                    decode_method=self.decode_method,
                    fallback_fps=fps if fps is not None else DEFAULT_FPS,
                )
                return frames, ts
            frames, rate = self.load_video(video)
        else:
            frames = _check_frames(video, where)
            rate = float(fps) if fps is not None else DEFAULT_FPS
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"fps for {where} must be a positive number, got {fps!r}")
            if sample:
                idx = sample_frame_indices(frames.shape[0], num_frames, rate, sampling_fps)
                return frames[idx], (idx / rate).astype(np.float32)
        return frames, (np.arange(len(frames)) / rate).astype(np.float32)

    # ------------------------------------------------------------------ per-video transforms
    def normalize_frames(self, frames: np.ndarray, do_rescale: bool | None = None, rescale_factor: float | None = None,
                         do_normalize: bool | None = None, image_mean: Sequence[float] | None = None,
                         image_std: Sequence[float] | None = None) -> np.ndarray:
        """uint8 (K, h, w, 3) RGB → float32 (K, 3, H, W), resized, rescaled and normalised (the processor's settings
        unless given)."""
        h, w = self.size["height"], self.size["width"]
        out = np.stack([_resize(f, h, w) for f in frames]).astype(np.float32)
        if self.do_rescale if do_rescale is None else do_rescale:
            out *= np.float32(self.rescale_factor if rescale_factor is None else rescale_factor)
        if self.do_normalize if do_normalize is None else do_normalize:
            mean = np.asarray(self.image_mean if image_mean is None else image_mean, dtype=np.float32)
            std = np.asarray(self.image_std if image_std is None else image_std, dtype=np.float32)
            if mean.shape != (3,) or std.shape != (3,) or not (std > 0).all():
                raise ValueError(f"image_mean / image_std must hold 3 values (RGB) with std > 0, got {image_mean!r} / "
                                 f"{image_std!r}")
            out = (out - mean) / std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def compute_flow(self, frames: np.ndarray) -> np.ndarray:
        """Farneback flow between consecutive frames (K, h, w, 3) uint8 → (K-1, 2, H//p, W//p) float32,
        in pixels of the resized ``size`` frame (channel 0: x to the right, channel 1: y down)."""
        fh, fw = self.flow_size["height"], self.flow_size["width"]
        h, w = self.size["height"], self.size["width"]
        gray = [cv2.cvtColor(_resize(f, fh, fw), cv2.COLOR_RGB2GRAY) for f in frames]
        scale = np.array([w / fw, h / fh], dtype=np.float32)
        out = np.zeros((max(len(gray) - 1, 0), 2) + self.grid_size, dtype=np.float32)
        for k in range(len(gray) - 1):
            if np.array_equal(gray[k], gray[k + 1]):
                continue  # repeated key frame of a short clip: no motion
            flow = cv2.calcOpticalFlowFarneback(gray[k], gray[k + 1], None, flags=0, **self.flow_params)
            out[k] = pool_flow_to_patches(flow * scale, (h, w), self.patch_size)
        return out

    # ------------------------------------------------------------------ main entry
    def __call__(
        self,
        videos: VideoInput | Sequence[VideoInput],
        return_flow: bool = False,
        return_tensors: str | None = None,
        fps: float | Sequence[float] | None = None,
        num_frames: int | None = None,
        sampling_fps: float | None = None,
        do_sample_frames: bool | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Process one video or a batch.

        Args:
            videos: a path (MP4/MOV/AVI/GIF/...) or a uint8 (N, H, W, 3) RGB array (float arrays in
                [0, 255] are accepted too), or a list of those (one entry per video).
            return_flow: also return ``video_flow`` (needs at least 2 key frames).
            return_tensors: ``"pt"``, ``"np"`` or None (numpy arrays).
            fps: frame rate of array inputs (one number or one per video; default ``DEFAULT_FPS``);
                for files only used when the container reports no frame rate.
            num_frames / sampling_fps / do_sample_frames / do_rescale / rescale_factor / do_normalize / image_mean /
                image_std: per-call overrides of the processor's settings.
        """
        if kwargs:
            logger.warning(f"HuMoConVideoProcessor ignores unknown arguments {sorted(kwargs)}")
        num_frames = self.num_frames if num_frames is None else int(num_frames)
        sampling_fps = self.sampling_fps if sampling_fps is None else float(sampling_fps)
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        sample = self.do_sample_frames if do_sample_frames is None else bool(do_sample_frames)
        if return_flow and sample and num_frames < 2:
            raise ValueError("return_flow=True needs at least 2 key frames (num_frames >= 2)")
        batch = _as_batch(videos)
        if isinstance(fps, (list, tuple, np.ndarray)):
            if len(fps) != len(batch):
                raise ValueError(f"got {len(fps)} fps values for {len(batch)} videos")
            rates = list(fps)
        else:
            rates = [fps] * len(batch)

        pixels, stamps, flows = [], [], []
        for i, (video, rate) in enumerate(zip(batch, rates, strict=True)):
            where = f"videos[{i}]" if len(batch) > 1 or isinstance(videos, (list, tuple)) else "video"
            try:
                frames, ts = self._key_frames(video, rate, num_frames, sampling_fps, where, sample=sample)
            except ValueError as err:  # a file's errors name the file; say which of the batch's videos it is
                if where == "video" or not isinstance(video, (str, os.PathLike)):
                    raise
                raise ValueError(f"{where}: {err}") from None
            if pixels and len(frames) != len(pixels[0]):
                raise ValueError(f"{where} has {len(frames)} frames but the first video {len(pixels[0])}: without "
                                 "frame sampling (do_sample_frames=False) the videos of one call need equal lengths")
            if return_flow and len(frames) < 2:
                raise ValueError(f"return_flow=True needs at least 2 frames; {where} has {len(frames)}")
            pixels.append(self.normalize_frames(frames, do_rescale, rescale_factor, do_normalize, image_mean, image_std))
            stamps.append(ts)
            if return_flow:
                flows.append(self.compute_flow(frames))
        data = {"pixel_values_videos": np.stack(pixels), "video_timestamps": np.stack(stamps)}
        if return_flow:
            data["video_flow"] = np.stack(flows)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def preprocess(self, videos, **kwargs) -> BatchFeature:
        """The same as calling the processor (transformers' name for the entry point)."""
        return self(videos, **kwargs)


def _as_batch(videos: Any) -> list:
    if _is_array(videos) and getattr(videos, "ndim", 0) == 5:  # (videos, frames, ...) in one array
        return list(videos)
    if isinstance(videos, (str, os.PathLike)) or _is_array(videos):
        return [videos]
    if isinstance(videos, (list, tuple)):
        if len(videos) == 0:
            raise ValueError("videos is an empty list; expected at least one path or (N, H, W, 3) array")
        for i, v in enumerate(videos):
            if not (isinstance(v, (str, os.PathLike)) or _is_array(v)):
                raise ValueError(
                    f"videos[{i}] has unsupported type {type(v).__name__}; expected a file path or a "
                    "(N, H, W, 3) uint8 RGB array"
                )
        return list(videos)
    raise ValueError(
        f"unsupported video input of type {type(videos).__name__}; expected a file path, a (N, H, W, 3) "
        "uint8 RGB array, or a list of those"
    )


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"))


def _check_frames(video: Any, where: str) -> np.ndarray:
    """Validate an array video and return it as uint8 (N, H, W, 3). Channels-first frames (N, 3, H, W), the layout of
    torch tensors and of transformers' video processors, are transposed; a last axis of 3 means channels-last."""
    if not isinstance(video, np.ndarray):
        video = video.detach().cpu().numpy()
    if video.ndim == 4 and video.shape[-1] != 3 and video.shape[1] == 3:
        video = np.ascontiguousarray(video.transpose(0, 2, 3, 1))
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(
            f"{where} must be a (N, H, W, 3) RGB frame array (or channels-first (N, 3, H, W)), got shape "
            f"{tuple(video.shape)}"
            + (" (a single frame? add a leading frame axis)" if video.ndim == 3 and video.shape[-1] == 3 else "")
        )
    if video.shape[0] == 0:
        raise ValueError(f"{where} has no frames (shape {tuple(video.shape)})")
    if video.shape[1] == 0 or video.shape[2] == 0:
        raise ValueError(f"{where} has empty frames (shape {tuple(video.shape)})")
    if video.dtype == np.uint8:
        return video
    if video.dtype == np.bool_ or not (np.issubdtype(video.dtype, np.integer) or np.issubdtype(video.dtype, np.floating)):
        raise ValueError(f"{where} has dtype {video.dtype}; expected uint8 RGB (or numbers in [0, 255])")
    if np.issubdtype(video.dtype, np.floating) and not np.isfinite(video).all():
        raise ValueError(f"{where} contains NaN or infinite values")
    lo, hi = float(video.min()), float(video.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"{where} values must lie in [0, 255] (uint8 RGB), got range [{lo}, {hi}]")
    if np.issubdtype(video.dtype, np.floating) and 0 < hi <= 1.0:
        logger.warning(f"{where} is a float array with values in [0, 1]; frames are read as 0-255 intensities")
    return np.rint(video).astype(np.uint8) if np.issubdtype(video.dtype, np.floating) else video.astype(np.uint8)


__all__ = [
    "HuMoConVideoProcessor",
    "HuMoConVideosKwargs",
    "load_video",
    "load_key_frames",
    "sample_frame_indices",
    "pool_flow_to_patches",
    "VIDEO_EXTENSIONS",
]

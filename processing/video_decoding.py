"""Video decoding for HuMoCon: which key frames to take, and reading only those from a file with OpenCV.

Split from `video_processing_humocon` (the processor: resizing, normalisation, flow) because how frames are found
and decoded is its own problem with its own measurements. Exported with checkpoints for `trust_remote_code=True`
beside the processor, so it only imports external libraries and same-folder modules.

Pipeline for one video (a file path or a uint8 ``(N, H, W, 3)`` RGB array):

1. Key frames. ``num_frames`` (K) frame indices at the centres of K equal segments of the clip,
   ``idx_k = floor((k + 0.5) * N / K)``. Clips shorter than K frames therefore repeat frames
   (the same frame appears at consecutive key positions); their timestamps stay the real ones, so
   they are non-decreasing rather than strictly increasing. With ``sampling_fps`` set, key frames
   are ``1 / sampling_fps`` seconds apart starting at the beginning of the clip (the same side the
   motion feature extractor keeps when it truncates), K stays ``num_frames`` because the encoder's
   token count and the ``<video>`` placeholder expansion depend on it; a clip shorter than the
   ``num_frames / sampling_fps`` window falls back to uniform sampling over the whole clip.
2. Decoding only what is needed (files). Two primitives: sequential ``grab()`` with ``retrieve()``
   (colour conversion, copy) only at key frames, and seeking with ``CAP_PROP_POS_FRAMES``. A seek
   decodes from the codec's previous key frame, so which one wins depends on the GOP length, which
   OpenCV does not expose. Measured (benchmarks/bench_video_preprocessing.py): on the real H.264
   clips (long GOPs, gaps of 7-27 frames) seeking 8 key frames is 3.7-4.8x slower than grabbing; on a
   60 s 1080p MPEG-4 clip (GOP 12, gaps of 187 frames) it is ~6x faster. ``decode_method="auto"``
   therefore decides per key frame from measured costs: it times grabbed frames (a few first
   when the first key frame is far), probes one seek when a gap is at least ``SEEK_PROBE_GAP``
   frames, and from then on seeks only where the measured seek cost is below the measured cost of
   grabbing the gap.
   Container frame counts can be wrong: grabbing runs to the end of the stream and re-samples with
   the true count when it differs (a second pass only for frames not yet retrieved); a seek is
   checked (the decoder must land on the requested frame), and when seeking was used the end is
   checked too (frame ``count - 1`` decodes, frame ``count`` does not); any failure falls back to
   grabbing.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import time
from collections.abc import Sequence

try:
    import cv2
except ImportError:  # motion-only users (e.g. of an exported checkpoint) need no OpenCV: fail at the first video

    class _OpenCVMissing:
        def __getattr__(self, name):
            raise ImportError(
                "reading, resizing and optical flow of videos need OpenCV, which is not installed: "
                "pip install opencv-python-headless"
            )

    cv2 = _OpenCVMissing()
import numpy as np
from transformers.utils import logging

from .smpl22 import DEFAULT_FPS

logger = logging.get_logger(__name__)

# The video files every entry point accepts (processor, `humocon ask`, data set loaders): what OpenCV/FFmpeg decodes.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".gif", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# "auto" decoding only tries a seek across gaps of at least this many frames: below it grabbing is
# cheap however short the GOP, and a probe on a long-GOP file would cost more than it could save.
SEEK_PROBE_GAP = 32
_CALIBRATION_FRAMES = 8


# --------------------------------------------------------------------------------------------
# Key-frame indices
# --------------------------------------------------------------------------------------------
def sample_frame_indices(
    total_frames: int, num_frames: int, fps: float = DEFAULT_FPS, sampling_fps: float | None = None
) -> np.ndarray:
    """Indices (K,) int64 of the key frames of a clip of ``total_frames`` frames at ``fps``.

    Uniform: the centre frame of each of K equal segments. With ``sampling_fps``: one frame every
    ``1 / sampling_fps`` s from the start (centre of each interval); uniform when the clip is shorter
    than that window. Non-decreasing; repeats frames when the clip has fewer than K frames.
    """
    if total_frames < 1:
        raise ValueError(f"cannot sample key frames from a clip with {total_frames} frames")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    k = np.arange(num_frames, dtype=np.float64) + 0.5
    if sampling_fps is not None and total_frames / fps >= num_frames / sampling_fps:
        idx = np.floor(k / sampling_fps * fps)
    else:
        idx = np.floor(k * total_frames / num_frames)
    return np.clip(idx, 0, total_frames - 1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------
# Videos given by http(s) URL (as in transformers' chat messages, `{"type": "video", "url": ...}`) are downloaded once
# into this folder, named by the URL's hash, and decoded from there; downloads are capped at this many bytes.
URL_CACHE_DIR = os.path.join(tempfile.gettempdir(), "humocon_video_downloads")
MAX_DOWNLOAD_BYTES = 2 * 1024**3


def _fetch_url(url: str) -> str:
    """Local copy of a video URL (downloaded at most once per URL; the size is bounded before and while reading)."""
    import hashlib
    import urllib.request

    suffix = os.path.splitext(url.split("?", 1)[0])[1][:8] or ".mp4"
    target = os.path.join(URL_CACHE_DIR, hashlib.sha256(url.encode()).hexdigest()[:32] + suffix)
    if os.path.isfile(target):
        return target
    os.makedirs(URL_CACHE_DIR, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=URL_CACHE_DIR, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http(s) only
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"video URL {url} is {declared} bytes, more than the {MAX_DOWNLOAD_BYTES} allowed")
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"video URL {url} sent more than the {MAX_DOWNLOAD_BYTES} bytes allowed")
                out.write(chunk)
        os.replace(partial, target)
    except OSError as err:  # unreachable host, HTTP error, offline machine
        raise FileNotFoundError(f"video URL could not be downloaded: {url} ({err})") from err
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def _check_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if isinstance(path, str) and path.lower().startswith(("http://", "https://")):
        path = _fetch_url(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"video file not found: {path}")
    if not os.path.isfile(path):
        raise ValueError(f"video path is not a file: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"video file is empty (0 bytes): {path}")
    return path


def _open_capture(path: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise ValueError(
            f"cannot open video {path}: OpenCV/FFmpeg could not read it (corrupt, truncated or an "
            f"unsupported format; expected one of {', '.join(VIDEO_EXTENSIONS)})"
        )
    return cap


def _avi_states_no_rate(path: str) -> bool:
    """True for an AVI whose headers give no frame rate (video stream rate/scale 0 and no microseconds per frame):
    FFmpeg then silently assumes 25 fps, which OpenCV reports as if the file said so."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return False
    avih = head.find(b"avih")
    usec = struct.unpack("<I", head[avih + 8:avih + 12])[0] if 0 <= avih <= len(head) - 12 else 0
    start = 0
    while (strh := head.find(b"strh", start)) >= 0 and strh <= len(head) - 36:
        if head[strh + 8:strh + 12] == b"vids":
            scale, rate = struct.unpack("<II", head[strh + 28:strh + 36])
            return (scale == 0 or rate == 0) and usec == 0
        start = strh + 4
    return False


def _container_fps(cap: cv2.VideoCapture, path: str, fallback_fps: float) -> float:
    if _avi_states_no_rate(path):
        logger.warning(f"video {path}: its AVI headers give no frame rate (FFmpeg would assume 25 fps); timestamps "
                       f"assume {fallback_fps:g} fps")
        return float(fallback_fps)
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    # Below 1 fps is a broken header, not a video: an MP4 whose time scale is 0 reads as ~0.002 fps in FFmpeg.
    if not math.isfinite(fps) or fps < 1 or fps > 1000:
        logger.warning(f"video {path} reports no usable frame rate ({fps:g} fps, a broken container header?); "
                       f"timestamps assume {fallback_fps:g} fps")
        return float(fallback_fps)
    return fps


def _to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    if frame_bgr.ndim == 2:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2RGB)
    if frame_bgr.shape[2] == 4:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def _no_frames_error(path: str) -> ValueError:
    return ValueError(f"video {path} has no decodable frames (empty or corrupt stream)")


def load_video(path: str | os.PathLike, fallback_fps: float = DEFAULT_FPS) -> tuple[np.ndarray, float]:
    """Decode every frame of a video file.

    Returns ``(frames, fps)``: frames uint8 (N, H, W, 3) RGB and the container's frame rate
    (``fallback_fps`` when the container reports none). Use `load_key_frames` when only a few
    frames are needed: a long 1080p clip does not fit in memory decoded.
    """
    path = _check_path(path)
    cap = _open_capture(path)
    try:
        fps = _container_fps(cap, path, fallback_fps)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(_to_rgb(frame))
    finally:
        cap.release()
    if not frames:
        raise _no_frames_error(path)
    return np.stack(frames), fps


def _grab_frames(path: str, wanted: set, stop_after: int | None = None) -> tuple[dict, int]:
    """Sequential decode: retrieve only the ``wanted`` indices; returns (frames by index, frames decoded)."""
    cap = _open_capture(path)
    got: dict = {}
    i = 0
    try:
        while cap.grab():
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok:  # a frame that demuxes but does not decode ends the usable stream
                    break
                got[i] = _to_rgb(frame)
            i += 1
            if stop_after is not None and i > stop_after:
                break
    finally:
        cap.release()
    return got, i


def _seek_to(cap: cv2.VideoCapture, index: int) -> np.ndarray | None:
    """Seek and decode frame ``index``; ``None`` when the decoder does not land exactly there."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    if not ok or int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) != index + 1:
        return None
    return frame


def _count_is_exact(cap: cv2.VideoCapture, reported: int) -> bool:
    """Frame ``reported - 1`` decodes and nothing decodes after it."""
    return _seek_to(cap, reported - 1) is not None and not cap.grab()


def _seek_frames(path: str, indices: Sequence[int], reported: int) -> dict | None:
    """Seek to every key frame; ``None`` when a seek misbehaves or the reported count is wrong."""
    cap = _open_capture(path)
    got: dict = {}
    try:
        for t in sorted(set(int(i) for i in indices)):
            frame = _seek_to(cap, t)
            if frame is None:
                return None
            got[t] = _to_rgb(frame)
        if not _count_is_exact(cap, reported):
            return None
    finally:
        cap.release()
    return got


def _adaptive_frames(path: str, indices: Sequence[int], reported: int) -> tuple[dict | None, int | None]:
    """Mix grabbing and seeking per key frame by measured cost.

    Returns ``(frames by index, frames in the stream)``, or ``(None, None)`` when a seek misbehaved
    (the caller then decodes sequentially).
    """
    cap = _open_capture(path)
    got: dict = {}
    pos = 0  # index of the frame the next grab() returns
    grab_cost: float | None = None  # seconds per grabbed frame
    seek_cost: float | None = None  # seconds per seek + read
    seeked = False
    try:
        for t in sorted(set(int(i) for i in indices)):
            if grab_cost is None and t - pos >= SEEK_PROBE_GAP + _CALIBRATION_FRAMES:
                # Far first key frame: time a few grabs so a seek can be tried right away. The first
                # frames decode slower (start-up), which errs towards probing a seek.
                t0 = time.perf_counter()
                for _ in range(_CALIBRATION_FRAMES):
                    if not cap.grab():
                        return got, pos
                    pos += 1
                grab_cost = (time.perf_counter() - t0) / _CALIBRATION_FRAMES
            gap = t - pos
            if (
                grab_cost is not None
                and gap >= SEEK_PROBE_GAP
                and (seek_cost is None or seek_cost < gap * grab_cost)
            ):
                t0 = time.perf_counter()
                frame = _seek_to(cap, t)
                if frame is None:
                    return None, None
                cost = time.perf_counter() - t0
                seek_cost = cost if seek_cost is None else 0.5 * (seek_cost + cost)
                seeked = True
                got[t] = _to_rgb(frame)
                pos = t + 1
                continue
            t0 = time.perf_counter()
            while pos < t:
                if not cap.grab():
                    return got, pos  # stream shorter than reported
                pos += 1
            if not cap.grab():
                return got, pos
            ok, frame = cap.retrieve()
            if not ok:
                return got, pos
            pos += 1
            got[t] = _to_rgb(frame)
            cost = (time.perf_counter() - t0) / (gap + 1)
            grab_cost = cost if grab_cost is None else 0.5 * (grab_cost + cost)
        # Verify the frame count: grab to the end when that is cheap, else probe the end by seeking.
        remaining = reported - pos
        if seeked and seek_cost is not None and grab_cost is not None and remaining * grab_cost > 2 * seek_cost:
            return (got, reported) if _count_is_exact(cap, reported) else (None, None)
        while cap.grab():
            pos += 1
        return got, pos
    finally:
        cap.release()


def load_key_frames(
    path: str | os.PathLike,
    num_frames: int = 8,
    sampling_fps: float | None = None,
    decode_method: str = "auto",
    fallback_fps: float = DEFAULT_FPS,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Decode only the key frames of a video file.

    Returns ``(frames, timestamps, fps, total_frames)``: frames uint8 (K, H, W, 3) RGB, timestamps
    float32 (K,) in seconds (``index / fps``), the container frame rate and the number of frames in
    the stream (verified, see the module docstring). ``decode_method``: ``"grab"`` (sequential),
    ``"seek"`` or ``"auto"`` (per key frame by measured cost). All three return the same frames.
    """
    if decode_method not in ("auto", "grab", "seek"):
        raise ValueError(f"decode_method must be 'auto', 'grab' or 'seek', got {decode_method!r}")
    path = _check_path(path)
    cap = _open_capture(path)
    try:
        fps = _container_fps(cap, path, fallback_fps)
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()

    def indices_for(n: int) -> np.ndarray:
        return sample_frame_indices(n, num_frames, fps, sampling_fps)

    got, total, indices = None, None, None
    if reported > 0:
        indices = indices_for(reported)
        if decode_method == "seek":
            got = _seek_frames(path, indices, reported)
            total = reported if got is not None else None
        elif decode_method == "auto":
            got, total = _adaptive_frames(path, indices, reported)
        if got is None:
            if decode_method != "grab":
                logger.info(f"seeking in {path} was unreliable; decoding sequentially instead")
            got, total = _grab_frames(path, set(int(i) for i in indices))
    else:  # unknown length: count first, then fetch
        got, total = {}, _grab_frames(path, set())[1]
    if total == 0:
        raise _no_frames_error(path)
    if indices is None or total != reported:
        if reported > 0:
            logger.warning(f"video {path} reports {reported} frames but {total} decode (a damaged or oddly muxed "
                           "file?); key frames are sampled from the decodable ones")
        indices = indices_for(total)
        missing = {int(i) for i in indices} - set(got)
        if missing:
            more, _ = _grab_frames(path, missing, stop_after=max(missing))
            got.update(more)
            if not missing <= set(got):
                raise ValueError(f"video {path} decodes differently on a second pass (corrupt stream)")
    if total < num_frames:
        logger.warning(f"video {path} has {total} decodable frame(s) for {num_frames} key frames: frames repeat")
    frames = np.stack([got[int(i)] for i in indices])
    return frames, (indices / fps).astype(np.float32), fps, total


__all__ = ["VIDEO_EXTENSIONS", "SEEK_PROBE_GAP", "load_key_frames", "load_video", "sample_frame_indices"]

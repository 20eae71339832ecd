"""Tests of the numpy/OpenCV video processor: real clips, synthetic motion, round trips, bad input."""

import json

import cv2
import numpy as np
import pytest

# transformers' top-level name is a torchvision-requiring placeholder here; the class itself needs no torchvision
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from humocon_hf.processing.video_processing_humocon import (
    HuMoConVideoProcessor,
    load_key_frames,
    load_video,
    pool_flow_to_patches,
    sample_frame_indices,
)

REAL_CLIPS = ("COBRA_PUSH_UPS_clip2.mp4", "lift_weight.mp4", "sprint_run_18_clip1.mp4")


def _videos(shared_data):
    folder = shared_data / "videos"
    paths = [folder / name for name in REAL_CLIPS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"real clips missing from {folder}: {missing}")
    return paths


def _moving_square(n=16, size=448, step=8, square=96, textured=True, direction=(1, 0), seed=0):
    """uint8 (n, size, size, 3) frames of a square moving ``step`` px per frame along ``direction``."""
    rng = np.random.default_rng(seed)
    patch = rng.integers(40, 255, (square, square, 3), dtype=np.uint8) if textured else np.full(
        (square, square, 3), 230, np.uint8
    )
    frames = np.zeros((n, size, size, 3), np.uint8)
    x0, y0 = 40, (size - square) // 2
    if direction[1]:
        x0, y0 = (size - square) // 2, 40
    positions = []
    for t in range(n):
        x, y = x0 + direction[0] * step * t, y0 + direction[1] * step * t
        frames[t, y : y + square, x : x + square] = patch
        positions.append((x, y))
    return frames, positions


def _write_video(path, frames, fps=10.0, fourcc="mp4v"):
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


# ------------------------------------------------------------------------------ real clips
def test_real_clips_decode_key_frames(shared_data):
    for path in _videos(shared_data):
        frames, ts, fps, total = load_key_frames(path, num_frames=8)
        assert frames.dtype == np.uint8 and frames.shape[0] == 8 and frames.shape[-1] == 3
        assert frames.shape[1] >= 720 and frames.shape[2] >= 1280, path.name  # 720p-1080p landscape
        assert 20 <= fps <= 60, (path.name, fps)
        cap = cv2.VideoCapture(str(path))
        assert total == int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) and total >= 24, (path.name, total)
        cap.release()
        assert np.all(np.diff(ts) > 0) and ts[0] >= 0 and ts[-1] < total / fps
        assert frames.std() > 10  # real picture content, not blank frames
        assert not np.array_equal(frames[0], frames[-1])


def test_real_clip_decode_methods_agree(shared_data):
    path = _videos(shared_data)[1]
    grabbed, ts_g, _, n_g = load_key_frames(path, num_frames=4, decode_method="grab")
    for method in ("seek", "auto"):
        frames, ts, _, n = load_key_frames(path, num_frames=4, decode_method=method)
        assert n == n_g, method
        np.testing.assert_array_equal(ts, ts_g)
        np.testing.assert_array_equal(frames, grabbed)


def test_auto_decoding_probes_seeks_on_long_gaps(tmp_path, monkeypatch):
    import humocon_hf.processing.video_decoding as vp

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (400, 48, 64, 3), dtype=np.uint8)
    path = _write_video(tmp_path / "long.mp4", frames, fps=25.0)
    reference, ts_ref, _, n_ref = load_key_frames(path, num_frames=4, decode_method="grab")
    assert n_ref == 400
    seeks = []
    real_seek = vp._seek_to
    monkeypatch.setattr(vp, "_seek_to", lambda cap, i: seeks.append(i) or real_seek(cap, i))
    for method in ("auto", "seek"):
        got, ts, _, n = load_key_frames(path, num_frames=4, decode_method=method)
        assert n == 400
        np.testing.assert_array_equal(ts, ts_ref)
        np.testing.assert_array_equal(got, reference)
    # auto times a few grabs, then probes a seek to the first key frame (50 frames away)
    assert seeks and seeks[0] == sample_frame_indices(400, 4)[0]


def test_real_clips_processor_with_flow(shared_data):
    paths = _videos(shared_data)
    proc = HuMoConVideoProcessor(num_frames=6)
    out = proc([str(p) for p in paths], return_flow=True, return_tensors="np")
    pv, ts, flow = out["pixel_values_videos"], out["video_timestamps"], out["video_flow"]
    assert pv.shape == (3, 6, 3, 224, 224) and pv.dtype == np.float32
    assert ts.shape == (3, 6) and ts.dtype == np.float32
    assert flow.shape == (3, 5, 2, 14, 14) and flow.dtype == np.float32
    assert pv.min() >= -1.0 - 1e-6 and pv.max() <= 1.0 + 1e-6 and pv.std() > 0.1
    assert np.isfinite(flow).all()
    for b, path in enumerate(paths):
        cap = cv2.VideoCapture(str(path))
        duration = cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        assert np.all(np.diff(ts[b]) > 0) and ts[b, 0] >= 0 and ts[b, -1] < duration, path.name
        # People move in all three clips: some patch moves by more than a pixel between key frames.
        assert np.abs(flow[b]).max() > 1.0, path.name


# ------------------------------------------------------------------------------ synthetic motion
def _square_cells(position, square, scale, patch):
    """Patch-grid cells overlapping the square (given in source pixels) at the resized scale."""
    x, y = position
    x0, x1 = int(x * scale // patch), int(np.ceil((x + square) * scale / patch))
    y0, y1 = int(y * scale // patch), int(np.ceil((y + square) * scale / patch))
    return slice(y0, y1), slice(x0, x1)


@pytest.mark.parametrize("textured", [True, False])
def test_flow_moving_square_direction_and_magnitude(textured):
    n, step, square = 16, 8, 96
    frames, positions = _moving_square(n=n, step=step, square=square, textured=textured)
    static = np.repeat(frames[:1], n, axis=0)
    proc = HuMoConVideoProcessor(num_frames=8)  # 448 -> 224: flow is in pixels of the 224 frame
    out = proc([frames, static], return_flow=True, fps=10.0)
    moving_flow, static_flow = out["video_flow"][0], out["video_flow"][1]
    idx = sample_frame_indices(n, 8)
    expected = step * (idx[1] - idx[0]) * 224 / 448  # displacement between key frames, resized px
    for k in range(7):
        rows, cols = _square_cells(positions[idx[k]], square, 224 / 448, 16)
        fx = moving_flow[k, 0, rows, cols].mean()
        fy = moving_flow[k, 1, rows, cols].mean()
        assert fx > 0.6 * expected, (k, fx, expected)
        assert fx < 1.4 * expected, (k, fx, expected)
        assert abs(fy) < 0.25 * fx, (k, fy, fx)
    assert np.abs(static_flow).max() < 1e-3
    assert np.abs(moving_flow).mean() > 20 * (np.abs(static_flow).mean() + 1e-6)


def test_flow_moving_square_down_and_from_file(tmp_path):
    frames, positions = _moving_square(n=16, step=8, square=96, direction=(0, 1))
    path = _write_video(tmp_path / "down.mp4", frames, fps=10.0)
    proc = HuMoConVideoProcessor(num_frames=4, size=112, patch_size=8)
    out = proc(path, return_flow=True)
    flow = out["video_flow"][0]
    assert flow.shape == (3, 2, 14, 14)
    idx = sample_frame_indices(16, 4)
    np.testing.assert_allclose(out["video_timestamps"][0], idx / 10.0, rtol=1e-6)
    for k in range(3):
        rows, cols = _square_cells(positions[idx[k]], 96, 112 / 448, 8)
        fy, fx = flow[k, 1, rows, cols].mean(), flow[k, 0, rows, cols].mean()
        expected = 8 * (idx[k + 1] - idx[k]) * 112 / 448
        assert 0.6 * expected < fy < 1.4 * expected, (k, fy, expected)
        assert abs(fx) < 0.25 * fy


def test_pool_flow_to_patches_exact_and_uneven():
    flow = np.zeros((112, 112, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -1.5
    pooled = pool_flow_to_patches(flow, (224, 224), 16)
    assert pooled.shape == (2, 14, 14)
    np.testing.assert_allclose(pooled[0], 3.0)
    np.testing.assert_allclose(pooled[1], -1.5)
    # A SigLIP-384/14-style size that the patch size does not divide: grid = floor(size / patch).
    ramp = np.tile(np.arange(50, dtype=np.float32)[None, :, None], (50, 1, 2))
    pooled = pool_flow_to_patches(ramp, (100, 100), 14)
    assert pooled.shape == (2, 7, 7)
    assert np.all(np.diff(pooled[0], axis=1) > 0)  # left-to-right ramp survives pooling


# ------------------------------------------------------------------------------ sampling and arrays
def test_array_input_shapes_ranges_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (30, 60, 80, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (12, 100, 50, 3), dtype=np.uint8)
    proc = HuMoConVideoProcessor(num_frames=4, size={"height": 64, "width": 48}, patch_size=16)
    out = proc([a, b], fps=[30.0, 12.0], return_tensors="pt", return_flow=True)
    assert out["pixel_values_videos"].shape == (2, 4, 3, 64, 48)
    assert out["pixel_values_videos"].dtype == torch.float32
    assert out["video_flow"].shape == (2, 3, 2, 4, 3)
    ts = out["video_timestamps"].numpy()
    np.testing.assert_allclose(ts[0], sample_frame_indices(30, 4) / 30.0, rtol=1e-6)
    np.testing.assert_allclose(ts[1], sample_frame_indices(12, 4) / 12.0, rtol=1e-6)
    # Normalisation: a constant frame maps to (v/255 - mean) / std per channel.
    const = np.full((3, 20, 20, 3), (0, 128, 255), np.uint8)
    proc2 = HuMoConVideoProcessor(num_frames=3, size=32, patch_size=8, image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.25, 2.0])
    pv = proc2(const)["pixel_values_videos"][0, 0]
    np.testing.assert_allclose(pv[:, 0, 0], [(0 - 0.1) / 0.5, (128 / 255 - 0.2) / 0.25, (1 - 0.3) / 2.0], atol=1e-5)
    # torch tensors and float arrays in [0, 255] are accepted as inputs too.
    same = proc2(torch.from_numpy(const.astype(np.float32)))["pixel_values_videos"]
    np.testing.assert_allclose(same, proc2(const)["pixel_values_videos"], atol=1e-6)


def test_channels_first_frames_and_batched_arrays_read_like_channels_last():
    """(N, 3, H, W) frames (torch's and transformers' layout) and a (videos, N, H, W, 3) array give what the
    channels-last frames give; a last axis of 3 stays channels-last."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, (8, 30, 40, 3), dtype=np.uint8)
    proc = HuMoConVideoProcessor(num_frames=4, size={"height": 32, "width": 32}, patch_size=8)
    expected = proc(video, fps=10.0)["pixel_values_videos"]
    channels_first = video.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(proc(channels_first, fps=10.0)["pixel_values_videos"], expected)
    np.testing.assert_array_equal(proc(torch.from_numpy(channels_first), fps=10.0)["pixel_values_videos"], expected)
    both = proc(np.stack([video, video]), fps=10.0)["pixel_values_videos"]
    assert both.shape == (2, 4, 3, 32, 32)
    np.testing.assert_array_equal(both[1], expected[0])
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) RGB frame array \(or channels-first"):
        proc(rng.integers(0, 256, (8, 4, 30, 40), dtype=np.uint8), fps=10.0)


def test_short_clip_repeats_frames_with_real_timestamps():
    frames = np.stack([np.full((32, 32, 3), 20 * i, np.uint8) for i in range(3)])
    proc = HuMoConVideoProcessor(num_frames=8, size=32, patch_size=8)
    out = proc(frames, fps=5.0, return_flow=True)
    ts = out["video_timestamps"][0]
    assert np.all(np.diff(ts) >= 0)
    np.testing.assert_allclose(np.unique(ts), [0.0, 0.2, 0.4], atol=1e-6)
    pv = out["pixel_values_videos"][0]
    assert np.allclose(pv[0], pv[1])  # a repeated frame
    repeated = np.isclose(np.diff(ts), 0)
    assert np.all(out["video_flow"][0][repeated] == 0)


def test_sampling_fps_spacing_and_fallback():
    assert list(sample_frame_indices(100, 4, fps=10.0, sampling_fps=2.0)) == [2, 7, 12, 17]
    # A clip shorter than num_frames / sampling_fps seconds falls back to uniform sampling.
    assert list(sample_frame_indices(10, 4, fps=10.0, sampling_fps=2.0)) == list(sample_frame_indices(10, 4))
    frames = np.zeros((100, 16, 16, 3), np.uint8)
    proc = HuMoConVideoProcessor(num_frames=4, sampling_fps=2.0, size=16, patch_size=8)
    ts = proc(frames, fps=10.0)["video_timestamps"][0]
    np.testing.assert_allclose(np.diff(ts), 0.5, atol=1e-6)


def test_overreported_frame_count_is_resampled(tmp_path):
    """A truncated MJPG AVI keeps its header count (30) but decodes fewer frames."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (30, 48, 64, 3), dtype=np.uint8)
    full = _write_video(tmp_path / "full.avi", frames, fps=10.0, fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(cut))
    reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    decoded, _ = load_video(cut)
    assert reported == 30 and 0 < len(decoded) < reported
    for method in ("grab", "seek", "auto"):
        key, ts, fps, total = load_key_frames(cut, num_frames=6, decode_method=method)
        idx = sample_frame_indices(len(decoded), 6)
        assert total == len(decoded), method
        np.testing.assert_allclose(ts, idx / 10.0, rtol=1e-6)
        np.testing.assert_array_equal(key, decoded[idx])


def test_gif_input(tmp_path):
    anim = cv2.Animation()
    anim.frames = [np.full((24, 32, 3), 30 * i, np.uint8) for i in range(5)]
    anim.durations = [100] * 5
    path = tmp_path / "clip.gif"
    if not cv2.imwriteanimation(str(path), anim):
        pytest.skip("this OpenCV build cannot write GIF")
    frames, fps = load_video(path)
    assert frames.shape == (5, 24, 32, 3) and fps == pytest.approx(10.0)
    out = HuMoConVideoProcessor(num_frames=5, size=32, patch_size=8)(str(path))
    ts = out["video_timestamps"][0]
    np.testing.assert_allclose(ts, np.arange(5) / 10.0, atol=1e-6)


# ------------------------------------------------------------------------------ config round trip
def test_save_load_round_trip(tmp_path):
    proc = HuMoConVideoProcessor(
        num_frames=5,
        sampling_fps=4.0,
        size={"height": 96, "width": 128},
        image_mean=[0.4, 0.45, 0.5],
        image_std=[0.2, 0.25, 0.3],
        rescale_factor=1 / 127.5,
        patch_size=8,
        flow_size=64,
        flow_params={"winsize": 9},
        decode_method="grab",
    )
    proc.save_pretrained(tmp_path)
    # transformers' video processor file, read back by AutoVideoProcessor as well as by the class itself
    saved = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    assert saved["num_frames"] == 5 and saved["flow_size"] == {"height": 64, "width": 64}
    assert saved["video_processor_type"] == "HuMoConVideoProcessor"
    assert not list(tmp_path.glob(".tmp-*"))
    # a standalone save of the earlier feature-extractor version (preprocessor_config.json) still loads
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    old = {k: v for k, v in saved.items() if k != "video_processor_type"} | {"feature_extractor_type": "HuMoConVideoProcessor"}
    (legacy / "preprocessor_config.json").write_text(json.dumps(old))
    frames = np.random.default_rng(2).integers(0, 256, (20, 50, 70, 3), dtype=np.uint8)
    reference = proc(frames, return_flow=True)
    for loaded in (HuMoConVideoProcessor.from_pretrained(tmp_path), AutoVideoProcessor.from_pretrained(tmp_path),
                   HuMoConVideoProcessor.from_pretrained(legacy)):
        assert type(loaded) is HuMoConVideoProcessor
        for key in ("num_frames", "sampling_fps", "size", "image_mean", "image_std", "rescale_factor",
                    "patch_size", "flow_size", "flow_params", "decode_method"):
            assert getattr(loaded, key) == getattr(proc, key), key
        again = loaded(frames, return_flow=True)
        for key in reference:
            np.testing.assert_array_equal(reference[key], again[key])


def test_from_vision_config_matches_tower():
    from transformers import SiglipConfig, SiglipVisionConfig

    vision = SiglipVisionConfig(image_size=64, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64)
    proc = HuMoConVideoProcessor.from_vision_config(vision, num_frames=3)
    assert proc.size == {"height": 64, "width": 64} and proc.patch_size == 8 and proc.grid_size == (8, 8)
    full = SiglipConfig(vision_config=vision.to_dict())
    assert HuMoConVideoProcessor.from_vision_config(full).size == proc.size
    out = proc(np.zeros((6, 40, 40, 3), np.uint8), return_flow=True)
    assert out["pixel_values_videos"].shape == (1, 3, 3, 64, 64) and out["video_flow"].shape == (1, 2, 2, 8, 8)
    with pytest.raises(ValueError, match="image_size"):
        HuMoConVideoProcessor.from_vision_config({"hidden_size": 8})


# ------------------------------------------------------------------------------ bad input
def test_file_errors(tmp_path):
    proc = HuMoConVideoProcessor(num_frames=2, size=32, patch_size=8)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        proc(str(tmp_path / "missing.mp4"))
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        load_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4"):
        proc(str(empty))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(ValueError, match="corrupt.mp4"):
        proc(corrupt)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        load_key_frames(corrupt)
    with pytest.raises(ValueError, match="not a file"):
        load_video(tmp_path)


def test_array_and_argument_errors():
    proc = HuMoConVideoProcessor(num_frames=2, size=32, patch_size=8)
    ok = np.zeros((4, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="no frames"):
        proc(np.zeros((0, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*single frame"):
        proc(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        proc(np.zeros((1, 4, 16, 16, 4), np.uint8))  # four channels
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        proc(np.zeros((4, 2, 16, 16), np.uint8))  # neither channels-last nor channels-first RGB
    nan = ok.astype(np.float32)
    nan[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        proc([ok, nan])
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        proc(ok.astype(np.float32) - 1.0)
    with pytest.raises(ValueError, match="unsupported"):
        proc(42)
    with pytest.raises(ValueError, match=r"videos\[1\]"):
        proc([ok, {"frames": ok}])
    with pytest.raises(ValueError, match="empty list"):
        proc([])
    with pytest.raises(ValueError, match="fps"):
        proc([ok, ok], fps=[10.0])
    with pytest.raises(ValueError, match="fps"):
        proc(ok, fps=0.0)
    with pytest.raises(ValueError, match="num_frames >= 2"):
        proc(ok, num_frames=1, return_flow=True)
    with pytest.raises(ValueError, match="patch grid"):
        HuMoConVideoProcessor(size=224, patch_size=16, flow_size=8)
    with pytest.raises(ValueError, match="decode_method"):
        HuMoConVideoProcessor(decode_method="fast")
    with pytest.raises(ValueError, match="flow_params"):
        HuMoConVideoProcessor(flow_params={"window": 3})
    with pytest.raises(ValueError, match="image_mean"):
        HuMoConVideoProcessor(image_mean=[0.5, 0.5])


def test_broken_container_rate_and_missing_frames_warn(tmp_path, caplog):
    """An MP4 whose media time scale is 0: FFmpeg reads ~0.002 fps and decodes 1 of 12 frames. Timestamps fall back
    to the default rate, and both problems (and the repeated key frames) are warnings, not INFO."""
    import struct

    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    data = bytearray(_write_video(tmp_path / "ok.mp4", frames, fps=20.0).read_bytes())
    mdhd = data.find(b"mdhd")
    assert mdhd > 0 and data[mdhd + 4] == 0  # version 0: the time scale is the 32-bit field at +16
    data[mdhd + 16:mdhd + 20] = struct.pack(">I", 0)
    broken = tmp_path / "timescale0.mp4"
    broken.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        key, ts, fps, total = load_key_frames(broken, num_frames=4)
    assert fps == 20.0 and total < 12 and np.all(ts < 1.0)  # not seconds at 0.002 fps
    text = caplog.text
    assert "no usable frame rate" in text and "reports 12 frames but" in text and "frames repeat" in text


def test_avi_without_a_frame_rate_is_not_read_as_25_fps(tmp_path, caplog):
    """AVI headers with rate 0 and no microseconds per frame: FFmpeg assumes 25 fps and OpenCV reports it."""
    import struct

    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    data = bytearray(_write_video(tmp_path / "ok.avi", frames, fps=10.0, fourcc="MJPG").read_bytes())
    strh, avih = data.find(b"strh"), data.find(b"avih")
    data[strh + 32:strh + 36] = struct.pack("<I", 0)  # dwRate of the video stream
    data[avih + 8:avih + 12] = struct.pack("<I", 0)  # dwMicroSecPerFrame
    broken = tmp_path / "norate.avi"
    broken.write_bytes(bytes(data))
    cap = cv2.VideoCapture(str(broken))
    assert cap.get(cv2.CAP_PROP_FPS) == 25.0  # what FFmpeg makes of it
    cap.release()
    with caplog.at_level("WARNING"):
        _, ts, fps, _ = load_key_frames(broken, num_frames=4)
    assert fps == 20.0 and "give no frame rate" in caplog.text
    assert load_key_frames(tmp_path / "ok.avi", num_frames=4)[2] == 10.0


def test_a_video_url_is_downloaded_once_and_decoded_like_the_file(tmp_path, monkeypatch):
    """`{"type": "video", "url": ...}` as in transformers' chat messages: the processor fetches http(s) URLs (here from
    a local server; the machines have no internet) into a cache and reads them as the same file; a missing one says so."""
    import functools
    import http.server
    import threading

    import humocon_hf.processing.video_decoding as decoding

    monkeypatch.setattr(decoding, "URL_CACHE_DIR", str(tmp_path / "cache"))
    frames = np.random.default_rng(4).integers(0, 256, (20, 48, 64, 3), dtype=np.uint8)
    served = tmp_path / "served"
    served.mkdir()
    _write_video(served / "clip.mp4", frames)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        proc = HuMoConVideoProcessor(num_frames=4, size=32, patch_size=8)
        from_url, again = proc(url, return_tensors="np"), proc(url, return_tensors="np")
        from_file = proc(str(served / "clip.mp4"), return_tensors="np")
        for key in from_file:
            np.testing.assert_array_equal(from_url[key], from_file[key])
            np.testing.assert_array_equal(again[key], from_file[key])
        assert len([r for r in requests if "clip.mp4" in r]) == 1  # the second call read the cached copy
        with pytest.raises(FileNotFoundError, match="video URL could not be downloaded: http://127.0.0.1:.*/missing.mp4"):
            proc(url.replace("clip.mp4", "missing.mp4"))
        assert not list((tmp_path / "cache").glob("*.part"))
    finally:
        server.shutdown()

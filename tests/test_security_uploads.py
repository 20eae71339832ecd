"""Bounded uploads and motion files (issue 29, security): the Space sets an upload size limit, and the BVH parser
refuses files above a byte limit (naming the file, its size and the limit) and headers declaring more frames than a
motion may have, before it allocates anything for them; a parse holds a few times the file, not twelve."""

import importlib.util
import os
import socket
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from humocon_hf.processing.bvh_parser import parse_bvh
from humocon_hf.processing.motion_clip import MAX_BVH_BYTES, MAX_MOTION_FRAMES
from humocon_hf.processing.motion_io import load_motion

APP_PATH = Path(__file__).resolve().parents[1] / "app" / "app.py"

_HIERARCHY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
}
MOTION
"""


def _bvh(path: Path, frames: int, declared: int | None = None, seed: int = 0) -> Path:
    values = np.random.default_rng(seed).uniform(-90, 90, (frames, 9))
    body = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in values)
    path.write_text(_HIERARCHY + f"Frames: {declared or frames}\nFrame Time: 0.0333333\n" + body + "\n")
    return path


def test_a_bvh_above_the_byte_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("HUMOCON_MAX_MOTION_BYTES", raising=False)
    assert MAX_BVH_BYTES == 64 * 1024**2
    huge = tmp_path / "huge.bvh"
    with open(huge, "wb") as fh:  # sparse: 65 MiB on paper, nothing on disk
        fh.write(_HIERARCHY.encode())
        fh.truncate(65 * 1024**2)
    size = huge.stat().st_size
    with pytest.raises(ValueError, match=rf"BVH file {huge} is {size} bytes \(65.0 MiB\), more than the "
                                         rf"{MAX_BVH_BYTES} bytes \(64.0 MiB\) .*HUMOCON_MAX_MOTION_BYTES"):
        load_motion(huge)

    small = _bvh(tmp_path / "walk.bvh", 40)
    size = small.stat().st_size
    assert parse_bvh(small).motion.shape == (40, 9)
    with pytest.raises(ValueError, match=rf"walk.bvh is {size} bytes .*more than the 1000 bytes"):
        parse_bvh(small, max_bytes=1000)
    monkeypatch.setenv("HUMOCON_MAX_MOTION_BYTES", "1000")
    with pytest.raises(ValueError, match=rf"walk.bvh is {size} bytes .*more than the 1000 bytes"):
        load_motion(small)
    monkeypatch.setenv("HUMOCON_MAX_MOTION_BYTES", "lots")
    with pytest.raises(ValueError, match="HUMOCON_MAX_MOTION_BYTES must be a number of bytes"):
        load_motion(small)


def test_a_bvh_declaring_more_frames_than_a_motion_may_have_is_refused(tmp_path):
    path = _bvh(tmp_path / "long.bvh", 3, declared=MAX_MOTION_FRAMES + 1)
    with pytest.raises(ValueError, match=rf"declares {MAX_MOTION_FRAMES + 1} frames, more than the "
                                         rf"{MAX_MOTION_FRAMES}"):
        parse_bvh(path)


def test_a_bvh_parse_holds_a_few_times_the_file_not_twelve(tmp_path):
    path = _bvh(tmp_path / "big.bvh", 40_000)  # ~3.6 MB
    size = path.stat().st_size
    tracemalloc.start()
    try:
        bvh = parse_bvh(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert bvh.motion.shape == (40_000, 9)
    assert peak < 6 * size, f"peak {peak / size:.1f}x the file"  # was 12x (one Python string per number)
    np.testing.assert_allclose(bvh.motion[0], np.random.default_rng(0).uniform(-90, 90, (1, 9))[0], atol=1e-6)


def test_a_bvh_with_a_malformed_number_still_names_it(tmp_path):
    for bad in ("1.5.5", "1-2", "abc"):
        path = _bvh(tmp_path / "bad.bvh", 4)
        text = path.read_text().splitlines()
        text[-2] = text[-2].split(" ", 1)[1] + " " + bad
        path.write_text("\n".join(text) + "\n")
        with pytest.raises(ValueError, match=rf"non-number '{bad}'"):
            parse_bvh(path)


# ------------------------------------------------------------------------------------------ the Space


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_space_limits_the_size_of_uploads(tmp_path, monkeypatch):
    pytest.importorskip("gradio", reason='the app is an optional extra: pip install "humocon-hf[app]"')
    import httpx

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    spec = importlib.util.spec_from_file_location("humocon_space_app_limits", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class NoModel:  # the page without a checkpoint: only uploads are exercised
        def __init__(self, model_dir, device="auto"):
            pass

        def analyze(self, *inputs):
            return None, None, "ok"

        def ask(self, *inputs):
            yield inputs[-1]

    monkeypatch.setattr(module, "HuMoConChat", NoModel)
    default = getattr(module, "MAX_UPLOAD_BYTES", None)
    monkeypatch.setattr(module, "MAX_UPLOAD_BYTES", 4096, raising=False)
    app = module.build_app("unused", device="cpu")
    port = _free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/gradio_api/upload"
        small = httpx.post(url, files={"files": ("walk.bvh", b"x" * 1000)}, timeout=30)
        big = httpx.post(url, files={"files": ("walk.bvh", b"x" * 10_000)}, timeout=30)
    finally:
        app.close()
    assert small.status_code == 200, small.text
    assert big.status_code in (400, 413), (big.status_code, big.text)
    assert default == 100 * 1024**2

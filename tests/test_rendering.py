"""Skeleton renderer: camera projection, framing, drawing and GIF / MP4 previews."""

import os

import cv2
import numpy as np
import pytest

from humocon_hf.processing.rendering import (
    COLOR_BACKGROUND,
    COLOR_JOINT,
    COLOR_LEFT,
    COLOR_RIGHT,
    COLOR_SPINE,
    Camera,
    default_camera,
    render_motion,
    save_preview,
)
from humocon_hf.processing.smpl22 import JOINT_INDEX


def _walker(frames=12, speed=1.5, fps=20.0):
    """A simple upright figure (legs apart, arms out) moving along +Z, facing +Z."""
    pose = np.zeros((22, 3))
    for name, xyz in {
        "pelvis": (0, 0.95, 0), "left_hip": (0.1, 0.9, 0), "right_hip": (-0.1, 0.9, 0), "spine1": (0, 1.05, 0),
        "left_knee": (0.15, 0.5, 0), "right_knee": (-0.15, 0.5, 0), "spine2": (0, 1.2, 0),
        "left_ankle": (0.2, 0.08, 0), "right_ankle": (-0.2, 0.08, 0), "spine3": (0, 1.3, 0),
        "left_foot": (0.2, 0.02, 0.12), "right_foot": (-0.2, 0.02, 0.12), "neck": (0, 1.5, 0),
        "left_collar": (0.08, 1.45, 0), "right_collar": (-0.08, 1.45, 0), "head": (0, 1.65, 0.02),
        "left_shoulder": (0.2, 1.45, 0), "right_shoulder": (-0.2, 1.45, 0), "left_elbow": (0.45, 1.45, 0),
        "right_elbow": (-0.45, 1.45, 0), "left_wrist": (0.7, 1.45, 0), "right_wrist": (-0.7, 1.45, 0),
    }.items():
        pose[JOINT_INDEX[name]] = xyz
    z = np.arange(frames) * speed / fps
    return (pose[None] + np.stack([np.zeros(frames), np.zeros(frames), z], -1)[:, None]).astype(np.float32)


# ---- camera -------------------------------------------------------------------------------------------


def test_projection_of_known_points():
    cam = Camera(position=(0, 0, 5), look_at=(0, 0, 0), fov_deg=90.0, width=100, height=100)
    np.testing.assert_allclose(cam.focal, 50.0)
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 10]], dtype=float)
    pix, depth = cam.project(pts, return_depth=True)
    np.testing.assert_allclose(pix[0], (50, 50))  # the look-at point lands on the principal point
    np.testing.assert_allclose(pix[1], (60, 50))  # world +X is to the right when looking down -Z
    np.testing.assert_allclose(pix[2], (50, 40))  # world up is image up
    np.testing.assert_allclose(depth[:3], 5.0)
    assert np.isnan(pix[3]).all() and depth[3] < 0  # behind the camera


def test_projection_matches_opencv():
    cam = Camera(position=(2.0, 1.7, 3.5), look_at=(0.3, 0.9, 0.1), fov_deg=50.0, width=320, height=240)
    pts = np.random.default_rng(0).uniform(-1, 1, size=(30, 3))
    rvec, _ = cv2.Rodrigues(cam.rotation)
    expected, _ = cv2.projectPoints(pts, rvec, cam.translation, cam.intrinsics, None)
    np.testing.assert_allclose(cam.project(pts), expected[:, 0], atol=1e-6)
    assert np.allclose(cam.rotation @ cam.rotation.T, np.eye(3)) and np.linalg.det(cam.rotation) > 0


def test_camera_validation():
    with pytest.raises(ValueError, match="coincide"):
        Camera(position=(1, 1, 1), look_at=(1, 1, 1))
    with pytest.raises(ValueError, match="parallel"):
        Camera(position=(0, 5, 0), look_at=(0, 0, 0))
    with pytest.raises(ValueError, match="fov"):
        Camera(position=(0, 0, 5), look_at=(0, 0, 0), fov_deg=0)


def test_default_camera_keeps_the_whole_clip_in_frame(hml_joints):
    cam = default_camera(hml_joints, size=(180, 240))
    assert (cam.height, cam.width) == (180, 240)
    pix = cam.project(hml_joints.reshape(-1, 3))
    assert np.isfinite(pix).all()
    assert (pix[:, 0] > 0).all() and (pix[:, 0] < 240).all() and (pix[:, 1] > 0).all() and (pix[:, 1] < 180).all()
    # front three-quarter: the camera is in front of the person (who faces +Z here) and above them
    walker = _walker()
    cam = default_camera(walker)
    offset = cam.position - cam.look_at
    assert offset[2] > 0 and offset[1] > 0 and offset[0] > 0  # in front, above, towards the person's left
    # tight: some joint comes close to the frame's edge
    pix = cam.project(walker.reshape(-1, 3))
    margin = np.minimum(pix, 224 - pix).min()
    assert 0 < margin < 0.2 * 224


# ---- drawing -----------------------------------------------------------------------------------------


def test_skeleton_is_drawn_where_it_projects():
    walker = _walker()
    frames, cam = render_motion(walker, size=224, grid=False, return_camera=True)
    assert frames.shape == (12, 224, 224, 3) and frames.dtype == np.uint8
    bg = np.array(COLOR_BACKGROUND)
    for n in (0, 11):
        pix = np.round(cam.project(walker[n])).astype(int)
        colours = frames[n][pix[:, 1], pix[:, 0]].astype(int)
        # every joint centre is painted with (close to) the joint colour
        assert (np.abs(colours - np.array(COLOR_JOINT)).max(axis=1) < 60).all()
    # away from the skeleton the frame is background
    assert (frames[:, :5, :5] == bg).all()
    painted = (np.abs(frames.astype(int) - bg).sum(-1) > 30).mean()
    assert 0.002 < painted < 0.2
    # bone colours: the person's left and right limbs and the spine each appear
    flat = frames.reshape(-1, 3).astype(int)
    for colour in (COLOR_LEFT, COLOR_RIGHT, COLOR_SPINE):
        assert (np.abs(flat - np.array(colour)).max(axis=1) < 10).sum() > 20


def test_left_limbs_are_drawn_in_left_colour():
    walker = _walker(frames=1)
    frames, cam = render_motion(walker, size=224, grid=False, return_camera=True)
    mid = cam.project(0.5 * (walker[0, JOINT_INDEX["left_elbow"]] + walker[0, JOINT_INDEX["left_wrist"]]))
    u, v = np.round(mid).astype(int)
    np.testing.assert_allclose(frames[0, v, u], COLOR_LEFT, atol=40)
    mid = cam.project(0.5 * (walker[0, JOINT_INDEX["right_elbow"]] + walker[0, JOINT_INDEX["right_wrist"]]))
    u, v = np.round(mid).astype(int)
    np.testing.assert_allclose(frames[0, v, u], COLOR_RIGHT, atol=40)


def test_pixels_change_only_when_the_motion_moves():
    still = np.repeat(_walker(frames=1), 5, axis=0)
    frames = render_motion(still, size=96)
    assert all(np.array_equal(frames[0], f) for f in frames[1:])
    moving = render_motion(_walker(frames=5), size=96)
    assert all(not np.array_equal(a, b) for a, b in zip(moving[:-1], moving[1:]))


def test_real_motion_renders_with_fixed_camera(hml_joints):
    frames, cam = render_motion(hml_joints[:40], size=112, return_camera=True)
    again = render_motion(hml_joints[:40], size=112, camera=cam)
    np.testing.assert_array_equal(frames, again)
    # a frame rendered alone with the clip's camera equals the same frame of the clip (no per-frame zoom)
    single = render_motion(hml_joints[20:21], camera=cam, grid=False)
    clip = render_motion(hml_joints[:40], camera=cam, grid=False)
    np.testing.assert_array_equal(single[0], clip[20])


def test_output_fps_and_errors():
    walker = _walker(frames=20)
    assert render_motion(walker, size=64, fps=20.0, output_fps=10.0).shape[0] == 10
    assert render_motion(walker, size=64, fps=20.0, output_fps=30.0).shape[0] == 30
    bad = walker.copy()
    bad[3, 4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render_motion(bad)
    with pytest.raises(ValueError, match="shape"):
        render_motion(np.zeros((5, 17, 3)))
    with pytest.raises(ValueError, match="no frames"):
        render_motion(np.zeros((0, 22, 3)))


# ---- previews ----------------------------------------------------------------------------------------


def test_gif_preview_round_trip(tmp_path):
    import imageio.v2 as imageio

    walker = _walker(frames=15)
    path = save_preview(walker, tmp_path / "walk.gif", fps=20.0, size=96)
    frames = imageio.mimread(path)
    assert len(frames) == 15 and frames[0].shape[:2] == (96, 96)
    reader = imageio.get_reader(path)
    assert reader.get_meta_data()["duration"] == pytest.approx(50, abs=10)  # ms per frame at 20 fps
    assert [p.name for p in tmp_path.iterdir()] == ["walk.gif"]  # no temporary file left behind


def test_gif_of_real_motion_keeps_its_duration(tmp_path, hml_joints):
    from PIL import Image, ImageSequence

    path = save_preview(hml_joints, tmp_path / "clip.gif", fps=20.0, size=64)
    with Image.open(path) as gif:
        delays = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    # near-still frames may be merged by the GIF writer, but the playing time is the motion's
    assert 0.8 * len(hml_joints) <= len(delays) <= len(hml_joints)
    assert sum(delays) == pytest.approx(len(hml_joints) * 50, rel=0.02)


def test_mp4_preview_round_trip(tmp_path, hml_joints):
    path = save_preview(hml_joints[:30], tmp_path / "clip.mp4", fps=20.0, size=(96, 128))
    cap = cv2.VideoCapture(path)
    assert cap.isOpened()
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (96, 128, 3)
        count += 1
    assert count == 30 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(20.0)
    cap.release()
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]


def test_preview_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        save_preview(_walker(), tmp_path / "walk.avi")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_preview(_walker(), tmp_path / "missing" / "walk.gif")
    bad = _walker()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_preview(bad, tmp_path / "walk.gif")
    assert list(tmp_path.iterdir()) == []

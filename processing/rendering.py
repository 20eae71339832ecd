"""Skeleton renderer: SMPL-22 joints -> RGB video frames through a pinhole camera (numpy + OpenCV).

Rendering a motion gives a video that is frame-aligned with it by construction, which is how
humocon-hf makes motion-video pairs for the alignment objective when no paired capture exists; it
also makes GIF / MP4 previews. The camera is fixed for a clip: it looks at the centre of the clip's
bounding box from the front three-quarter of the person's frame-0 facing, far enough that every joint
of every frame projects inside the image (no per-frame zoom, so image motion reflects body motion).

Camera convention (OpenCV): camera axes x right, y down, z forward; pixel (u, v) with u to the right
and v downwards, the principal point at the image centre (width / 2, height / 2).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .smpl22 import DEFAULT_FPS, FACE_JOINTS, SMPL22_CHAINS, check_joints

# RGB colours by body part; "left" is the person's own left.
COLOR_LEFT = (50, 130, 240)
COLOR_RIGHT = (235, 70, 55)
COLOR_SPINE = (245, 200, 40)
COLOR_JOINT = (250, 250, 250)
COLOR_BACKGROUND = (32, 34, 40)
COLOR_GRID = (78, 82, 92)

_CHAIN_COLORS = (COLOR_RIGHT, COLOR_LEFT, COLOR_SPINE, COLOR_RIGHT, COLOR_LEFT)  # order of SMPL22_CHAINS
BONES = np.array([(c[i], c[i + 1]) for c in SMPL22_CHAINS for i in range(len(c) - 1)], dtype=np.int64)
BONE_COLORS = tuple(col for c, col in zip(SMPL22_CHAINS, _CHAIN_COLORS) for _ in range(len(c) - 1))

_NEAR = 0.05  # metres; geometry closer to the camera than this is not drawn
_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_SCALE = 1 << _SHIFT


@dataclass
class Camera:
    """A pinhole camera: `position` looking at `look_at`, vertical field of view `fov_deg`, image size.

    `rotation` (world -> camera, rows = right, down, forward), `translation` and `intrinsics` give the
    usual extrinsics / intrinsics; `project` maps world points to pixels.
    """

    position: np.ndarray
    look_at: np.ndarray
    fov_deg: float = 40.0
    width: int = 224
    height: int = 224
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))

    def __post_init__(self):
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        self.look_at = np.asarray(self.look_at, dtype=np.float64).reshape(3)
        self.up = np.asarray(self.up, dtype=np.float64).reshape(3)
        if not (0.0 < float(self.fov_deg) < 180.0):
            raise ValueError(f"Camera: fov_deg must be in (0, 180), got {self.fov_deg}")
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"Camera: image size must be positive, got {self.width}x{self.height}")
        forward = self.look_at - self.position
        if np.linalg.norm(forward) < 1e-9:
            raise ValueError("Camera: position and look_at coincide")
        if np.linalg.norm(np.cross(forward, self.up)) < 1e-9 * np.linalg.norm(forward):
            raise ValueError("Camera: viewing direction is parallel to the up vector")

    @property
    def rotation(self) -> np.ndarray:
        """World -> camera rotation (3, 3); rows are the camera's right, down and forward axes."""
        forward = self.look_at - self.position
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        return np.stack([right, down, forward])

    @property
    def translation(self) -> np.ndarray:
        """t in x_cam = R @ x_world + t."""
        return -self.rotation @ self.position

    @property
    def focal(self) -> float:
        """Focal length in pixels (square pixels), from the vertical field of view."""
        return 0.5 * self.height / np.tan(np.radians(self.fov_deg) / 2.0)

    @property
    def intrinsics(self) -> np.ndarray:
        """K (3, 3)."""
        f = self.focal
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera coordinates (..., 3)."""
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def project(self, points: np.ndarray, return_depth: bool = False):
        """World points (..., 3) -> pixels (..., 2) float64 (and depth (...) along the view axis).

        Points at or behind the camera (depth <= 0) get NaN pixels.
        """
        cam = self.to_camera(points)
        depth = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(depth > 0, 1.0 / depth, np.nan)
        f = self.focal
        pix = np.stack([f * cam[..., 0] * inv + self.width / 2.0, f * cam[..., 1] * inv + self.height / 2.0], -1)
        return (pix, depth) if return_depth else pix


def _image_size(size) -> tuple[int, int]:
    """`size` int (square) or (height, width) -> (height, width)."""
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        h, w = (int(s) for s in size)
    if h < 16 or w < 16:
        raise ValueError(f"size: expected at least 16 pixels per side, got {size}")
    return h, w


def default_camera(
    joints: np.ndarray,
    size=224,
    azimuth_deg: float = 35.0,
    elevation_deg: float = 15.0,
    fov_deg: float = 40.0,
    fill: float = 0.85,
) -> Camera:
    """A fixed camera that keeps every joint of every frame inside the image.

    It looks at the centre of the clip's bounding box from the person's frame-0 front, turned by
    `azimuth_deg` towards their left (front three-quarter) and raised by `elevation_deg`; its distance
    is the smallest at which all joints project within the central `fill` fraction of the image.
    """
    joints = check_joints(joints, "joints").astype(np.float64)
    h, w = _image_size(size)
    pts = joints.reshape(-1, 3)
    centre = 0.5 * (pts.min(0) + pts.max(0))

    r_hip, l_hip, r_sho, l_sho = FACE_JOINTS
    across = (joints[0, r_hip] - joints[0, l_hip]) + (joints[0, r_sho] - joints[0, l_sho])
    yaw = np.arctan2(across[2], -across[0])  # facing direction at frame 0 (0 = +Z)
    az, el = yaw + np.radians(azimuth_deg), np.radians(elevation_deg)
    view = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])  # centre -> camera

    probe = Camera(centre + view, centre, fov_deg=fov_deg, width=w, height=h)
    rot = probe.rotation
    rel = (pts - centre) @ rot.T  # camera-axis coordinates relative to the centre
    tan_v = np.tan(np.radians(fov_deg) / 2.0) * fill
    tan_h = tan_v * w / h
    # depth of a point = distance + rel_z; it must satisfy |x| <= depth * tan_h and |y| <= depth * tan_v
    need = np.maximum(np.abs(rel[:, 0]) / tan_h, np.abs(rel[:, 1]) / tan_v) - rel[:, 2]
    need = np.maximum(need, 0.5 - rel[:, 2])  # keep at least half a metre in front of every joint
    distance = float(max(need.max(), 0.5))
    return Camera(centre + view * distance, centre, fov_deg=fov_deg, width=w, height=h)


def _clip_segments(cam_a: np.ndarray, cam_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip camera-space segments (N, 3) to depth >= _NEAR; returns clipped ends and a keep mask."""
    za, zb = cam_a[:, 2], cam_b[:, 2]
    keep = (za >= _NEAR) | (zb >= _NEAR)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip((_NEAR - za) / (zb - za), 0.0, 1.0)[:, None]
    cut = cam_a + t * (cam_b - cam_a)
    a = np.where((za < _NEAR)[:, None], cut, cam_a)
    b = np.where((zb < _NEAR)[:, None], cut, cam_b)
    return a, b, keep


def _cam_to_pixels(camera: Camera, cam: np.ndarray) -> np.ndarray:
    f = camera.focal
    pix = np.stack([f * cam[:, 0] / cam[:, 2] + camera.width / 2.0, f * cam[:, 1] / cam[:, 2] + camera.height / 2.0], -1)
    return np.clip(pix, -1e4, 1e4)


def _background(camera: Camera, joints: np.ndarray, spacing: float = 0.5) -> np.ndarray:
    """Background image with a ground grid on the clip's floor (the lowest joint height)."""
    img = np.empty((camera.height, camera.width, 3), dtype=np.uint8)
    img[:] = COLOR_BACKGROUND
    pts = joints.reshape(-1, 3)
    floor = pts[:, 1].min()
    lo = np.floor((pts[:, [0, 2]].min(0) - 1.5) / spacing) * spacing
    hi = np.ceil((pts[:, [0, 2]].max(0) + 1.5) / spacing) * spacing
    xs = np.arange(lo[0], hi[0] + 1e-9, spacing)
    zs = np.arange(lo[1], hi[1] + 1e-9, spacing)
    seg_a = np.concatenate([np.stack([xs, np.full_like(xs, floor), np.full_like(xs, lo[1])], -1),
                            np.stack([np.full_like(zs, lo[0]), np.full_like(zs, floor), zs], -1)])
    seg_b = np.concatenate([np.stack([xs, np.full_like(xs, floor), np.full_like(xs, hi[1])], -1),
                            np.stack([np.full_like(zs, hi[0]), np.full_like(zs, floor), zs], -1)])
    a, b, keep = _clip_segments(camera.to_camera(seg_a), camera.to_camera(seg_b))
    pa = np.round(_cam_to_pixels(camera, a[keep]) * _SCALE).astype(np.int64)
    pb = np.round(_cam_to_pixels(camera, b[keep]) * _SCALE).astype(np.int64)
    for p, q in zip(pa, pb):
        cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), COLOR_GRID, 1, cv2.LINE_AA, _SHIFT)
    return img


def _frame_indices(num_frames: int, fps: float, output_fps: float | None) -> np.ndarray:
    if output_fps is None or output_fps == fps:
        return np.arange(num_frames)
    if not output_fps > 0:
        raise ValueError(f"output_fps must be > 0, got {output_fps}")
    duration = num_frames / fps
    n_out = max(1, int(round(duration * output_fps)))
    return np.minimum(np.floor(np.arange(n_out) * fps / output_fps + 1e-9).astype(np.int64), num_frames - 1)


def render_motion(
    joints: Any,
    size=224,
    fps: float | None = None,
    camera: Camera | None = None,
    output_fps: float | None = None,
    grid: bool = True,
    thickness: int | None = None,
    return_camera: bool = False,
):
    """Draw a skeleton video of a motion.

    Args:
        joints: (T, 22, 3) SMPL-22 joints in metres, Y up (array, tensor or `MotionClip`).
        size: `int` for square frames or `(height, width)`; ignored when `camera` is given.
        fps: frame rate of `joints` (defaults to the clip's own rate, else 20).
        camera: a fixed [`Camera`]; by default [`default_camera`] for this clip.
        output_fps: frame rate of the returned video (nearest earlier motion frame); defaults to `fps`,
            i.e. one video frame per motion frame.
        grid: draw the ground grid.
        thickness: bone thickness in pixels (default scales with the image, 2 at 224).
        return_camera: also return the camera used.

    Returns:
        uint8 RGB frames (N, H, W, 3) (and the [`Camera`] when `return_camera`).
    """
    if hasattr(joints, "joints") and hasattr(joints, "fps"):  # MotionClip
        fps = float(joints.fps) if fps is None else fps
        joints = joints.joints
    if hasattr(joints, "detach"):
        joints = joints.detach().cpu().numpy()
    joints = check_joints(joints, "joints").astype(np.float64)
    fps = DEFAULT_FPS if fps is None else float(fps)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if camera is None:
        camera = default_camera(joints, size)
    h, w = camera.height, camera.width
    thickness = max(1, int(round(min(h, w) / 112))) if thickness is None else int(thickness)
    radius = int(round((0.75 * thickness + 0.5) * _SCALE))  # in 1/_SCALE pixels

    background = _background(camera, joints) if grid else np.full((h, w, 3), COLOR_BACKGROUND, np.uint8)
    idx = _frame_indices(len(joints), fps, output_fps)
    sel = joints[idx]  # (N, 22, 3)
    cam = camera.to_camera(sel)  # (N, 22, 3)
    pix = np.round(_cam_to_pixels(camera, cam.reshape(-1, 3)).reshape(len(idx), -1, 2) * _SCALE).astype(np.int64)
    visible = cam[..., 2] >= _NEAR  # (N, 22)
    bone_depth = 0.5 * (cam[:, BONES[:, 0], 2] + cam[:, BONES[:, 1], 2])  # (N, n_bones)
    order = np.argsort(-bone_depth, axis=1)  # far bones first
    joint_order = np.argsort(-cam[..., 2], axis=1)

    frames = np.empty((len(idx), h, w, 3), dtype=np.uint8)
    for n in range(len(idx)):
        img = background.copy()
        p, vis = pix[n], visible[n]
        for k in order[n]:
            a, b = BONES[k]
            if vis[a] and vis[b]:
                cv2.line(img, (int(p[a, 0]), int(p[a, 1])), (int(p[b, 0]), int(p[b, 1])), BONE_COLORS[k],
                         thickness, cv2.LINE_AA, _SHIFT)
        for j in joint_order[n]:
            if vis[j]:
                cv2.circle(img, (int(p[j, 0]), int(p[j, 1])), radius, COLOR_JOINT, -1, cv2.LINE_AA, _SHIFT)
        frames[n] = img
    return (frames, camera) if return_camera else frames


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
    """Write frames as a looping GIF with one palette shared by all frames.

    Uses Pillow (imageio's own GIF backend, installed with it) directly: quantising once from a
    montage of sample frames instead of per frame is ~10x faster and keeps colours stable across
    frames. Identical consecutive frames are merged by the GIF writer (their delays add up).
    """
    from PIL import Image

    sample = frames[np.linspace(0, len(frames) - 1, min(8, len(frames))).round().astype(int)]
    palette = Image.fromarray(np.ascontiguousarray(sample.reshape(-1, *frames.shape[2:]))).quantize(
        colors=128, method=Image.Quantize.MEDIANCUT
    )
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    # GIF stores delays in 1/100 s; Pillow takes milliseconds.
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)


def draw_side_legend(frames: np.ndarray) -> np.ndarray:
    """Write "left" and "right" in their bone colours in the top-left corner of every frame (in place): a preview
    that does not say which colour is the person's left cannot show a swapped side."""
    h, w = frames.shape[1:3]
    scale = max(0.3, min(h, w) / 560)
    thickness = max(1, int(round(scale * 2)))
    (left_w, text_h), _ = cv2.getTextSize("left", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = max(2, w // 40), max(text_h + 2, h // 40 + text_h)
    for frame in frames:
        cv2.putText(frame, "left", (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, COLOR_LEFT, thickness, cv2.LINE_AA)
        cv2.putText(frame, "right", (x + left_w + 2 * x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, COLOR_RIGHT, thickness,
                    cv2.LINE_AA)
    return frames


def save_preview(joints: Any, path: str | os.PathLike, fps: float | None = None, size=224, camera: Camera | None = None,
                 legend: bool = True, **render_kwargs) -> str:
    """Render `joints` and write a `.gif` (Pillow) or `.mp4` (OpenCV, mp4v) preview atomically.

    `fps` is the motion's frame rate (defaults to a `MotionClip`'s own rate, else 20); the file plays
    at that rate. `legend` writes which colour is the person's left (blue) and right (red) in a corner.
    Returns the path written.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".mp4"):
        raise ValueError(f"save_preview: {path!r} must end in .gif or .mp4")
    if fps is None:
        fps = float(joints.fps) if hasattr(joints, "fps") else DEFAULT_FPS
    frames = render_motion(joints, size=size, fps=fps, camera=camera, **render_kwargs)
    if legend:
        draw_side_legend(frames)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save_preview: folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".preview-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        if ext == ".gif":
            _write_gif(tmp, frames, fps)
        else:
            h, w = frames.shape[1:3]
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
            if not writer.isOpened():
                raise RuntimeError(f"save_preview: OpenCV could not open an mp4v writer for {path!r}")
            try:
                for frame in frames:
                    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            finally:
                writer.release()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


__all__ = ["Camera", "default_camera", "render_motion", "save_preview", "BONES"]

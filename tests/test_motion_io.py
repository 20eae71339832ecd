"""Motion readers: real CMU BVH (three rigs), HumanML3D, synthetic BVH edge cases, AMASS error paths."""

import csv
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from humocon_tiny import BVH_NAMES, walk_rotations, write_synthetic_bvh
from scipy.spatial.transform import Rotation

from humocon_hf.processing import bvh_reader, motion_io, smpl_reader
from humocon_hf.processing.motion_io import (
    MotionClip,
    load_amass_npz,
    load_bvh,
    load_humanml3d_joints,
    load_humanml3d_vecs,
    load_motion,
    resample_joints,
)
from humocon_hf.processing.smpl22 import FEET_JOINTS
from humocon_hf.processing.smpl22 import JOINT_INDEX as J

# ----------------------------------------------------------------------------------------------
# Real CMU files
# ----------------------------------------------------------------------------------------------

_CLIPS = {}


def _bvh_files(shared_data):
    files = sorted((shared_data / "cmu_bvh").glob("*.bvh")) + sorted((shared_data / "cmu_bvh_iclone").glob("*.bvh"))
    assert len(files) == 43, [f.name for f in files]
    return files


def _clip(path, **kw):
    key = (str(path), tuple(sorted(kw.items())))
    if key not in _CLIPS:
        _CLIPS[key] = load_bvh(path, **kw)
    return _CLIPS[key]


def _trial_id(path: Path) -> str:
    subject, trial = path.stem.split("_")
    return f"{int(subject):02d}_{int(trial):02d}"


@pytest.fixture(scope="module")
def cmu_descriptions(shared_data):
    with open(shared_data / "cmu_index" / "CMU_data.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {f"{int(r['Subject']):02d}_{int(r['Trial #']):02d}": r["Motion Description"] for r in rows}


@pytest.fixture(scope="module")
def all_clips(shared_data):
    return {p: _clip(p) for p in _bvh_files(shared_data)}


def _bone(j, a, b):
    return np.linalg.norm(j[:, J[a]] - j[:, J[b]], axis=-1)


def _left_dot(joints, forward_xz):
    """Per-frame (left_hip - right_hip) . (up x forward); positive when the left hip is on the left."""
    left = joints[:, J["left_hip"]] - joints[:, J["right_hip"]]
    fx, fz = forward_xz[..., 0], forward_xz[..., 1]
    # Y up: up x (fx, 0, fz) = (fz, 0, -fx)
    return left[:, 0] * fz - left[:, 2] * fx


def test_every_bvh_maps_to_smpl22_with_human_anatomy(all_clips):
    rigs = set()
    for path, clip in all_clips.items():
        j = clip.joints
        rigs.add(clip.info["rig"])
        assert j.dtype == np.float32 and j.shape[1:] == (22, 3) and np.isfinite(j).all(), path
        assert clip.fps == 20.0 and j.shape[0] >= 20, path
        # Long bones in human ranges (metres) and rigid over the clip.
        for a, b, lo, hi in [
            ("left_hip", "left_knee", 0.30, 0.55), ("right_hip", "right_knee", 0.30, 0.55),
            ("left_knee", "left_ankle", 0.30, 0.55), ("right_knee", "right_ankle", 0.30, 0.55),
            ("left_shoulder", "left_elbow", 0.20, 0.40), ("right_elbow", "right_wrist", 0.18, 0.35),
            ("left_shoulder", "right_shoulder", 0.20, 0.45), ("left_hip", "right_hip", 0.10, 0.30),
            ("pelvis", "neck", 0.35, 0.70),  # raw CMU ASF trunks are short (16_01: 0.37)
        ]:
            length = _bone(j, a, b)
            assert lo < length.mean() < hi, (path.name, a, b, length.mean())
            if "neck" not in (a, b):  # pelvis-neck follows the spine's bending
                assert length.std() < 0.01 * length.mean(), (path.name, a, b, "bone length varies")
        # Spine is ordered bottom to top in the first frame (Y up).
        heights = j[0, [J["pelvis"], J["spine1"], J["spine2"], J["spine3"], J["neck"], J["head"]], 1]
        assert np.all(np.diff(heights) > 0), (path.name, heights)
        # Standing head height (head joint, below the crown) of an adult.
        feet_y = j[:, list(FEET_JOINTS), 1]
        grounded = feet_y.min(axis=1) < 0.1
        head = np.percentile(j[grounded, J["head"], 1], 90)
        assert 1.3 < head < 1.85, (path.name, head)
        # Floor at the lowest joint, which is a foot; the pelvis never nears the floor.
        assert abs(j[..., 1].min()) < 1e-5
        assert np.unravel_index(np.argmin(j[..., 1]), j.shape[:2])[1] in FEET_JOINTS, path.name
        assert j[:, J["pelvis"], 1].min() > 0.45, path.name
        # Feet stay near the floor (03_01 walks over obstacles; CMU floors tilt ~1 degree, so a
        # stance foot rises up to ~15 cm over a 4 m walk in subject 08).
        limit = 0.3 if _trial_id(path) == "03_01" else 0.2
        assert np.median(feet_y.min(axis=1)) < limit, path.name
        # Left/right: the left hip is on the left of where the toes point.
        toes = (j[:, [J["left_foot"], J["right_foot"]]] - j[:, [J["left_ankle"], J["right_ankle"]]]).mean(axis=1)
        assert np.median(_left_dot(j, toes[:, [0, 2]])) > 0, path.name
    assert rigs == {"cmu_daz", "cmu_amc2bvh", "iclone_cc"}


def test_walks_and_runs_move_forward_at_human_speeds(all_clips, cmu_descriptions):
    speeds = {"walk": [], "run": []}
    for path, clip in all_clips.items():
        desc = cmu_descriptions[_trial_id(path)].lower()
        kind = "run" if desc.startswith("run") else "walk" if "walk" in desc else None
        if kind is None:
            continue
        root = clip.joints[:, J["pelvis"], [0, 2]].astype(np.float64)
        disp = root[-1] - root[0]
        speed = np.linalg.norm(disp) / clip.duration
        speeds[kind].append(speed)
        if kind == "walk":
            # Uneven-terrain walking (03_01) is slow and careful.
            assert 0.5 < speed < 2.0, (path.name, desc, speed)
        else:
            assert speed > 2.5, (path.name, desc, speed)
        # Facing from the direction of travel agrees with the hips' left/right.
        assert np.median(_left_dot(clip.joints, disp[None])) > 0, path.name
    assert len(speeds["walk"]) >= 25 and len(speeds["run"]) == 7
    assert min(speeds["run"]) > max(speeds["walk"])


def _gravity_estimates(clip):
    """-2 x the quadratic coefficient of pelvis height during flight phases (m/s^2)."""
    j = clip.joints.astype(np.float64)
    airborne = j[:, list(FEET_JOINTS), 1].min(axis=1) > 0.06
    out, start = [], None
    for i, flag in enumerate(list(airborne) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= 5:
                t = np.arange(start, i) / clip.fps
                out.append(-2.0 * np.polyfit(t, j[start:i, J["pelvis"], 1], 2)[0])
            start = None
    return out


def test_jump_16_01_true_rate_gives_earth_gravity(shared_data):
    """16_01 (raw amc2bvh, CMU: "jump") says Frame Time 0.0333 but was captured at 120 fps.

    The ballistic flight of the pelvis is a ruler for both units and frame rate: at the true rate it
    falls at ~9.8 m/s^2, trusting the header slows time 4x and gravity 16x.
    """
    path = shared_data / "cmu_bvh" / "16_01.bvh"
    true_rate = load_bvh(path, fps=None, source_fps=120)
    header = load_bvh(path, fps=None)
    assert header.source_fps == pytest.approx(30.0, rel=1e-3) and true_rate.source_fps == 120
    assert true_rate.info["rig"] == "cmu_amc2bvh" and true_rate.info["unit"] == "cmu_asf"
    g_true, g_header = _gravity_estimates(true_rate), _gravity_estimates(header)
    assert len(g_true) >= 1 and all(8.5 < g < 11.5 for g in g_true), g_true
    assert all(g < 1.5 for g in g_header), g_header
    assert header.duration == pytest.approx(4 * true_rate.duration, rel=1e-4)
    # The same jump resampled to 20 fps keeps its physics.
    assert all(8.0 < g < 12.0 for g in _gravity_estimates(load_bvh(path, source_fps=120)))


def test_daz_jumps_give_earth_gravity(shared_data):
    # Units check independent of the skeleton-height heuristic: cm in the Daz conversion.
    g = _gravity_estimates(_clip(shared_data / "cmu_bvh" / "02_04.bvh"))
    assert g and all(8.5 < x < 11.0 for x in g), g


def test_tpose_frames_are_dropped(shared_data):
    daz = shared_data / "cmu_bvh" / "02_01.bvh"
    kept = load_bvh(daz, fps=None, drop_tpose=False)
    auto = _clip(daz, fps=None)
    assert bvh_reader._is_tpose(kept.joints[0]) and not bvh_reader._is_tpose(auto.joints[0])
    assert auto.info["dropped_frames"] == 1 and auto.num_frames == kept.num_frames - 1
    # 07_12 has a stray frame after its T-pose: both go.
    assert _clip(shared_data / "cmu_bvh" / "07_12.bvh", fps=None).info["dropped_frames"] == 2
    # Raw amc2bvh and iClone files start with motion: nothing dropped.
    assert _clip(shared_data / "cmu_bvh" / "16_01.bvh").info["dropped_frames"] == 0
    assert _clip(shared_data / "cmu_bvh_iclone" / "002_01.bvh").info["dropped_frames"] == 0


def test_iclone_walk_matches_daz_walk_of_same_trial(shared_data):
    """CMU 02_01 in two conversions: same speed and duration, different rigs."""
    daz = _clip(shared_data / "cmu_bvh" / "02_01.bvh")
    icl = _clip(shared_data / "cmu_bvh_iclone" / "002_01.bvh")
    assert icl.source_fps == pytest.approx(60.0, rel=1e-3) and daz.source_fps == pytest.approx(120.0, rel=1e-3)
    assert icl.duration == pytest.approx(daz.duration, abs=0.1)

    def speed(c):
        r = c.joints[:, J["pelvis"], [0, 2]]
        return np.linalg.norm(r[-1] - r[0]) / c.duration

    assert speed(icl) == pytest.approx(speed(daz), rel=0.2)


def test_output_rate_and_source_rate(shared_data):
    path = shared_data / "cmu_bvh" / "07_01.bvh"
    native = _clip(path, fps=None)
    at20 = _clip(path)
    assert native.fps == pytest.approx(120.0, rel=1e-4) and at20.fps == 20.0
    assert at20.source_fps == pytest.approx(native.source_fps)
    assert at20.num_frames == int((native.num_frames - 1) * 20 / native.source_fps + 1e-6) + 1
    # Every 6th native frame is an output frame (up to the floor/origin shift, removed here).
    a = native.joints[::6][: at20.num_frames] - native.joints[::6][:1, :1]
    b = at20.joints - at20.joints[:1, :1]
    np.testing.assert_allclose(a, b, atol=2e-3)


# ----------------------------------------------------------------------------------------------
# HumanML3D
# ----------------------------------------------------------------------------------------------


def test_humanml3d_joints_and_vecs_agree(shared_data):
    d = shared_data / "humanml3d_sample"
    truth = np.load(d / "new_joints_012314.npy")
    clip = load_humanml3d_joints(d / "new_joints_012314.npy")
    assert clip.joints.shape == (170, 22, 3) and clip.fps == 20.0 and clip.source_fps == 20.0
    vec = load_humanml3d_vecs(d / "new_joint_vecs_012314.npy", d / "Mean.npy", d / "Std.npy")
    assert vec.info["normalized"] is False
    np.testing.assert_allclose(vec.joints, truth, atol=1e-4)
    # Normalised features are detected and de-normalised.
    raw = np.load(d / "new_joint_vecs_012314.npy")
    mean, std = np.load(d / "Mean.npy"), np.load(d / "Std.npy")
    norm = load_humanml3d_vecs((raw - mean) / std, mean, std)
    assert norm.info["normalized"] is True
    np.testing.assert_allclose(norm.joints, truth, atol=1e-4)
    # Forcing the wrong interpretation gives a different motion (the check can fail).
    wrong = load_humanml3d_vecs(raw, mean, std, normalized=True)
    assert np.abs(wrong.joints - truth).max() > 0.1
    # Dispatcher: by shape.
    assert load_motion(d / "new_joints_012314.npy").joints.shape == (170, 22, 3)
    np.testing.assert_allclose(load_motion(d / "new_joint_vecs_012314.npy").joints, truth, atol=1e-4)
    half = load_motion(d / "new_joints_012314.npy", fps=10)
    assert half.num_frames == 85 and half.fps == 10
    np.testing.assert_allclose(half.joints, truth[::2], atol=1e-6)


# The error-path tests below are parametrized: each case builds its inputs (files included) outside `pytest.raises`
# and returns the call, a `partial`, that must raise.


def _with_nan(shape, index):
    array = np.zeros(shape)
    array[index] = np.nan
    return array


def _saved_npy(path, array):
    np.save(path, array)
    return path


def _written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make_call, error, match",
    [
        pytest.param(lambda t, mean, std: partial(load_humanml3d_vecs, np.zeros((10, 262)), mean, std),
                     ValueError, "263", id="vecs_of_262_values"),
        pytest.param(lambda t, mean, std: partial(load_humanml3d_vecs, _with_nan((10, 263), (3, 7))),
                     ValueError, "NaN", id="vecs_with_nan"),
        pytest.param(lambda t, mean, std: partial(load_humanml3d_vecs, np.zeros((10, 263)), mean=mean),
                     ValueError, "both mean and std", id="mean_without_std"),
        pytest.param(lambda t, mean, std: partial(load_humanml3d_vecs, np.zeros((10, 263)), mean[:100], std[:100]),
                     ValueError, "263 finite", id="short_mean_and_std"),
        pytest.param(lambda t, mean, std: partial(load_humanml3d_vecs, np.zeros((10, 263)), normalized=True),
                     ValueError, "mean and std", id="normalized_without_mean_and_std"),
        pytest.param(lambda t, mean, std: partial(load_humanml3d_joints, np.zeros((10, 21, 3))),
                     ValueError, r"\(frames, 22, 3\)", id="joints_of_21"),
        pytest.param(lambda t, mean, std: partial(load_motion, _saved_npy(t / "nan.npy", _with_nan((4, 22, 3), (2, 5, 1)))),
                     ValueError, "NaN", id="joints_file_with_nan"),
        pytest.param(lambda t, mean, std: partial(load_motion, _written(t / "corrupt.npy", b"\x93NUMPY garbage")),
                     ValueError, "not a valid .npy", id="corrupt_npy"),
        pytest.param(lambda t, mean, std: partial(load_motion, _written(t / "empty.npy", b"")),
                     ValueError, "empty", id="empty_npy"),
        pytest.param(lambda t, mean, std: partial(load_humanml3d_joints, t / "missing.npy"),
                     FileNotFoundError, None, id="missing_file"),
    ],
)
def test_humanml3d_bad_inputs(tmp_path, shared_data, make_call, error, match):
    d = shared_data / "humanml3d_sample"
    mean, std = np.load(d / "Mean.npy"), np.load(d / "Std.npy")
    call = make_call(tmp_path, mean, std)
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# Synthetic BVH files: Euler orders, axes, units, mirroring, position channels, errors
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("bvh")
    root, rots = walk_rotations(90)
    ref = write_synthetic_bvh(d / "ref.bvh", root, rots)
    return d, root, rots, load_bvh(ref, fps=None)


def test_synthetic_walk_reference(synth):
    _, root, _, ref = synth
    assert ref.info["rig"] == "mixamo" and ref.info["unit"] == "cm" and ref.info["dropped_frames"] == 0
    assert ref.fps == pytest.approx(60.0, rel=1e-5) and ref.num_frames == 90
    # Frame 0 by hand: arms lowered 75 degrees, hips turned 10 degrees about Y.
    j = ref.joints
    assert _bone(j, "left_hip", "left_knee").mean() == pytest.approx(0.42, abs=1e-4)
    speed = np.linalg.norm(j[-1, J["pelvis"], [0, 2]] - j[0, J["pelvis"], [0, 2]]) / (89 / 60)
    assert speed == pytest.approx(1.2, rel=0.05)
    # Left is +X when facing +Z.
    assert (j[:, J["left_hip"], 0] > j[:, J["right_hip"], 0]).all()
    # Turned 10 degrees about Y: the hip axis L-R is rotated by 10 degrees.
    axis = j[0, J["left_hip"]] - j[0, J["right_hip"]]
    assert np.degrees(np.arctan2(-axis[2], axis[0])) == pytest.approx(10.0, abs=0.1)
    wrist_drop = j[0, J["left_shoulder"], 1] - j[0, J["left_wrist"], 1]
    assert wrist_drop == pytest.approx(0.53 * np.sin(np.radians(75)), abs=2e-3)


@pytest.mark.parametrize(
    "variant",
    ["order_xyz", "order_yzx", "z_up", "x_down", "millimetres", "mixamo_prefix", "all_positions"],
)
def test_synthetic_variants_give_the_same_joints(synth, variant):
    d, root, rots, ref = synth
    kw = {}
    if variant == "order_xyz":
        kw = dict(order="XYZ")
    elif variant == "order_yzx":
        kw = dict(order="YZX")
    elif variant == "z_up":  # (x, y, z) -> (x, -z, y): Z up, a proper rotation
        kw = dict(transform=[[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    elif variant == "x_down":
        kw = dict(transform=[[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    elif variant == "millimetres":
        kw = dict(unit=10.0)
    elif variant == "mixamo_prefix":
        kw = dict(names={n: f"mixamorig:{n}" for n in BVH_NAMES})
    elif variant == "all_positions":
        kw = dict(all_positions=True)
    path = write_synthetic_bvh(d / f"{variant}.bvh", root, rots, **kw)
    clip = load_bvh(path, fps=None)
    np.testing.assert_allclose(clip.joints, ref.joints, atol=2e-4)


def test_crlf_tabs_and_braces_on_joint_lines(synth, tmp_path):
    _, _, _, ref = synth
    text = _text(synth)
    odd = "\n" + text.replace("\n  ", "\n\t").replace("\n{", " {\n").replace("\n", "\r\n")
    path = tmp_path / "odd.bvh"
    path.write_bytes(odd.encode())
    np.testing.assert_allclose(load_bvh(path, fps=None).joints, ref.joints, atol=1e-6)


def test_mirrored_coordinates_are_fixed_with_a_warning(synth):
    d, root, rots, ref = synth
    path = write_synthetic_bvh(d / "mirror.bvh", root, rots, transform=np.diag([-1.0, 1.0, 1.0]))
    with pytest.warns(UserWarning, match="mirror"):
        clip = load_bvh(path, fps=None)
    assert clip.info["mirrored"] is True
    np.testing.assert_allclose(clip.joints, ref.joints, atol=2e-4)


def test_scale_and_up_axis_overrides(synth):
    d, root, rots, ref = synth
    inches = load_bvh(d / "ref.bvh", fps=None, scale=0.0254)
    np.testing.assert_allclose(inches.joints, ref.joints * 2.54, atol=1e-3)
    assert inches.info["unit"] == "user"
    sideways = load_bvh(d / "ref.bvh", fps=None, up_axis="+z")
    assert sideways.info["up_axis"] == "+z"
    assert not np.allclose(sideways.joints, ref.joints, atol=0.05)
    with pytest.raises(ValueError, match="up_axis"):
        load_bvh(d / "ref.bvh", up_axis="w")
    with pytest.raises(ValueError, match="scale"):
        load_bvh(d / "ref.bvh", scale=-1)


def test_synthetic_tpose_auto_drop(tmp_path):
    root, rots = walk_rotations(60, tpose_frames=1)
    clip = load_bvh(write_synthetic_bvh(tmp_path / "t.bvh", root, rots), fps=None)
    assert clip.info["dropped_frames"] == 1 and clip.num_frames == 59
    # A subject who starts in a T-pose and lowers the arms smoothly keeps every frame.
    root, rots = walk_rotations(60)
    ramp = np.clip(np.arange(60) / 30.0, 0, 1)[:, None]
    for side, sign in (("Left", -1), ("Right", 1)):
        rv = np.zeros((60, 3))
        rv[:, 2] = sign * np.radians(75) * ramp[:, 0]
        rots[f"{side}Arm"] = Rotation.from_rotvec(rv)
    root[:, 2] = 0.0
    smooth = load_bvh(write_synthetic_bvh(tmp_path / "smooth.bvh", root, rots), fps=None)
    assert bvh_reader._is_tpose(smooth.joints[0]) and smooth.info["dropped_frames"] == 0
    assert load_bvh(tmp_path / "smooth.bvh", fps=None, drop_tpose=True).num_frames == 59
    with pytest.raises(ValueError, match="drop_tpose"):
        load_bvh(tmp_path / "smooth.bvh", drop_tpose="yes")


def test_source_fps_override_and_resampling(synth):
    d, _, _, ref = synth
    slow = load_bvh(d / "ref.bvh", fps=None, source_fps=30)
    assert slow.source_fps == 30 and slow.duration == pytest.approx(2 * ref.duration)
    at20 = load_bvh(d / "ref.bvh")
    assert at20.num_frames == 30  # 89 source intervals at 60 fps -> 29.67 s*20 -> 30 frames
    ramp = np.arange(7, dtype=np.float32)[:, None, None] * np.ones((1, 22, 3), np.float32)
    out = resample_joints(ramp, 6.0, 4.0)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(5) * 1.5)
    for bad in (0, -5, float("nan"), "fast"):
        with pytest.raises(ValueError, match="fps"):
            load_bvh(d / "ref.bvh", source_fps=bad)
    with pytest.raises(ValueError, match="fps"):
        load_bvh(d / "ref.bvh", fps=0)
    root, rots = walk_rotations(10)
    zero = write_synthetic_bvh(d / "zero_dt.bvh", root, rots, frame_time=0.0)
    with pytest.raises(ValueError, match="source_fps"):
        load_bvh(zero)
    assert load_bvh(zero, source_fps=60, fps=None).num_frames == 10


def _text(synth):
    return (synth[0] / "ref.bvh").read_text()


@pytest.mark.parametrize(
    "name, mutate, match",
    [
        ("empty", lambda s: "", "empty"),
        ("blank", lambda s: "  \n\n", "empty"),
        ("not_bvh", lambda s: "hello world\n", "not a BVH"),
        ("no_motion", lambda s: s.split("MOTION")[0], "MOTION"),
        ("truncated", lambda s: s[: len(s) - 40], "truncated"),
        ("extra_values", lambda s: s.rstrip("\n") + " 1.0\n", "values"),
        ("missing_line", lambda s: "\n".join(s.rstrip("\n").split("\n")[:-1]) + "\n", "90 frames"),
        ("nan", lambda s: s.rstrip("\n").rsplit(" ", 1)[0] + " nan\n", "NaN"),
        ("word", lambda s: s.rstrip("\n").rsplit(" ", 1)[0] + " abc\n", "non-number"),
        ("unbalanced", lambda s: s.replace("}\nMOTION", "MOTION", 1), "unclosed"),
        ("bad_offset", lambda s: s.replace("OFFSET 0.000000 10.000000", "OFFSET 0.0 ten", 1), "OFFSET"),
        ("bad_channels", lambda s: s.replace("CHANNELS 3 Z", "CHANNELS 4 Z", 1), "CHANNELS"),
        ("zero_frames", lambda s: s.replace("Frames: 90", "Frames: 0"), "empty"),
        ("no_frames_line", lambda s: s.replace("Frames: 90", ""), "Frames"),
    ],
)
def test_corrupt_bvh_raises_clear_errors(synth, tmp_path, name, mutate, match):
    path = tmp_path / f"{name}.bvh"
    path.write_text(mutate(_text(synth)))
    with pytest.raises(ValueError, match=match):
        load_bvh(path)


@pytest.mark.parametrize(
    "make_call, error, match",
    [
        pytest.param(lambda d, t: partial(load_bvh, d / "ref.bvh", rig="cmu_daz"),
                     ValueError, "lacks the 'cmu_daz' rig's joints", id="rig_whose_joints_are_missing"),
        pytest.param(lambda d, t: partial(load_bvh, d / "ref.bvh", rig="nonexistent"),
                     ValueError, "known rigs", id="unknown_rig"),
        pytest.param(lambda d, t: partial(load_bvh, t / "nowhere.bvh"),
                     FileNotFoundError, "nowhere.bvh", id="missing_file"),
        pytest.param(lambda d, t: partial(load_bvh, t), ValueError, "directory", id="directory"),
    ],
)
def test_unknown_rig_and_missing_file(synth, tmp_path, make_call, error, match):
    """(Rigs without a table map automatically: tests/test_bvh_skeleton.py.)"""
    call = make_call(synth[0], tmp_path)
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------------


def test_load_motion_dispatch(synth, tmp_path):
    d, _, _, ref = synth
    clip = load_motion(d / "ref.bvh", fps=None)
    np.testing.assert_allclose(clip.joints, ref.joints)
    again = load_motion(ref, fps=20)
    assert again.fps == 20 and again.num_frames == 30 and again.source_fps == ref.source_fps
    assert load_motion(ref, fps=None) is ref
    arr = load_motion(ref.joints, fps=30, source_fps=60)
    assert arr.num_frames == 45 and arr.source == "<array>"


@pytest.mark.parametrize(
    "make_call, error, match",
    [
        pytest.param(lambda t: partial(load_motion, np.zeros((5, 10))), ValueError, "cannot tell", id="2d_array"),
        pytest.param(lambda t: partial(load_motion, np.zeros((5, 23, 3))),
                     ValueError, r"\(frames, 22, 3\)", id="23_joints"),
        pytest.param(lambda t: partial(load_motion, _written(t / "m.txt", b"x")),
                     ValueError, "unsupported", id="unsupported_extension"),
        pytest.param(lambda t: partial(load_motion, t / "missing.bvh"), FileNotFoundError, None, id="missing_file"),
        pytest.param(lambda t: partial(load_motion, 42), ValueError, "expected a path", id="not_a_path"),
        pytest.param(lambda t: partial(MotionClip, joints=np.full((3, 22, 3), np.nan), fps=20, source_fps=20),
                     ValueError, "NaN", id="clip_of_nan"),
    ],
)
def test_load_motion_dispatch_refuses_bad_inputs(tmp_path, make_call, error, match):
    call = make_call(tmp_path)
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# AMASS / Motion-X (no body model files here: error paths and the conversion with a fake model)
# ----------------------------------------------------------------------------------------------


def _amass_file(path, T=240, rate=120.0, **over):
    data = dict(poses=np.zeros((T, 156)), trans=np.zeros((T, 3)), betas=np.zeros(16),
                gender=np.array("female"), mocap_framerate=np.array(rate))
    data["trans"][:, 1] = -np.linspace(0, 1.2 * (T - 1) / rate, T)  # 1.2 m/s along -Y, where the toes point
    data.update(over)
    np.savez(path, **data)
    return path


@pytest.mark.parametrize(
    "make_call, block_smplx, error, match",
    [
        pytest.param(lambda path, t: partial(load_amass_npz, path), False,
                     ValueError, r"body_model_dir.*humocon-hf\[body\].*smpl", id="no_body_model_dir"),
        pytest.param(lambda path, t: partial(load_amass_npz, path, body_model_dir=t / "nope"), False,
                     FileNotFoundError, "does not exist", id="missing_body_model_dir"),
        pytest.param(lambda path, t: partial(load_amass_npz, path, body_model_dir=t), True,
                     ImportError, r"pip install \"humocon-hf\[body\]\".*smpl-x\.is\.tue\.mpg\.de", id="no_smplx"),
        pytest.param(lambda path, t: partial(load_motion, np.zeros((4, 322))), True,
                     ValueError, "body_model_dir", id="motionx_array_without_body_model_dir"),
    ],
)
def test_amass_needs_body_models(tmp_path, monkeypatch, make_call, block_smplx, error, match):
    path = _amass_file(tmp_path / "a.npz")
    if block_smplx:
        monkeypatch.setitem(sys.modules, "smplx", None)  # import smplx -> ImportError
    call = make_call(path, tmp_path)
    with pytest.raises(error, match=match):
        call()


def _savez(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make_call, match",
    [
        pytest.param(lambda t: partial(load_amass_npz, _amass_file(t / "b1.npz", poses=np.zeros((240, 10))),
                                       body_model_dir=t), "poses", id="poses_of_10_values"),
        pytest.param(lambda t: partial(load_amass_npz, _amass_file(t / "b2.npz", trans=np.zeros((5, 3))),
                                       body_model_dir=t), "trans", id="trans_of_5_frames"),
        pytest.param(lambda t: partial(load_amass_npz, _amass_file(t / "b3.npz", poses=_with_nan((240, 156), (3, 3))),
                                       body_model_dir=t), "NaN", id="poses_with_nan"),
        pytest.param(lambda t: partial(load_amass_npz, _savez(t / "b4.npz", foo=np.zeros(3)), body_model_dir=t),
                     "lacks", id="no_poses_member"),
        pytest.param(lambda t: partial(load_amass_npz, _written(t / "b5.npz", b"PK\x03\x04 broken"), body_model_dir=t),
                     "readable", id="broken_zip"),
    ],
)
def test_amass_bad_files(tmp_path, make_call, match):
    call = make_call(tmp_path)
    with pytest.raises(ValueError, match=match):
        call()


class _FakeBodyModel:
    """Stands in for an smplx model: a fixed Z-up rest skeleton, turned by global_orient, moved by transl."""

    @staticmethod
    def _rest():
        """SMPL-like rest joints in a Z-up world facing -Y (AMASS): (x, y, z) with z up, left = +X."""
        ref = np.zeros((22, 3))
        up = {"pelvis": 0.95, "left_hip": 0.87, "right_hip": 0.87, "spine1": 1.07, "left_knee": 0.5,
              "right_knee": 0.5, "spine2": 1.2, "left_ankle": 0.1, "right_ankle": 0.1, "spine3": 1.26,
              "left_foot": 0.03, "right_foot": 0.03, "neck": 1.47, "left_collar": 1.38, "right_collar": 1.38,
              "head": 1.56, "left_shoulder": 1.41, "right_shoulder": 1.41, "left_elbow": 1.15,
              "right_elbow": 1.15, "left_wrist": 0.9, "right_wrist": 0.9}
        side = {"left_hip": 0.08, "left_knee": 0.09, "left_ankle": 0.09, "left_foot": 0.1, "left_collar": 0.07,
                "left_shoulder": 0.17, "left_elbow": 0.2, "left_wrist": 0.22}
        for n, h in up.items():
            ref[J[n], 2] = h - 0.95
        for n, x in side.items():
            ref[J[n], 0] = x
            ref[J[n.replace("left", "right")], 0] = -x
        ref[J["left_foot"], 1] = ref[J["right_foot"], 1] = -0.12  # toes point -Y (forward in AMASS)
        return ref

    def __init__(self, batch_size=None):
        self.batch_size = batch_size
        self.rest = self._rest()

    def __call__(self, global_orient, body_pose, transl, betas, **kw):
        import torch

        R = Rotation.from_rotvec(global_orient.numpy()).as_matrix()
        joints = np.einsum("tij,kj->tki", R, self.rest) + transl.numpy()[:, None]
        n = transl.shape[0]
        assert body_pose.shape == (n, 63) and betas.shape[0] == n and kw["left_hand_pose"].shape == (n, 45)
        assert self.batch_size in (None, n)  # smplx models have a fixed batch size

        class Out:
            pass

        out = Out()
        out.joints = torch.as_tensor(np.concatenate([joints, np.zeros((len(joints), 30, 3))], axis=1))
        return out


def test_amass_conversion_with_fake_body_model(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    calls = {}

    def fake_create(body_model_dir, model_type, gender, num_betas, batch_size):
        calls.update(model_type=model_type, gender=gender, num_betas=num_betas)
        return _FakeBodyModel(batch_size)

    monkeypatch.setattr(smpl_reader, "_create_body_model", fake_create)
    # Standing upright in AMASS means global_orient = identity with the Z-up skeleton above.
    clip = load_amass_npz(_amass_file(tmp_path / "walk.npz"), body_model_dir=tmp_path)
    assert calls == dict(model_type="smplh", gender="female", num_betas=16)
    assert clip.source_fps == 120 and clip.fps == 20 and clip.num_frames == 40
    j = clip.joints
    # Y up: head above pelvis above feet, floor at 0.
    assert j[0, J["head"], 1] > j[0, J["pelvis"], 1] > j[0, J["left_ankle"], 1]
    assert abs(j[..., 1].min()) < 1e-6 and j[0, J["pelvis"], 1] == pytest.approx(0.92, abs=1e-3)
    # Walks at 1.2 m/s horizontally, left hip on the left of the travel direction.
    disp = j[-1, J["pelvis"], [0, 2]] - j[0, J["pelvis"], [0, 2]]
    assert np.linalg.norm(disp) / ((clip.num_frames - 1) / 20) == pytest.approx(1.2, rel=0.02)
    assert np.median(_left_dot(j, disp[None])) > 0
    # Same joints from the dispatcher.
    np.testing.assert_allclose(load_motion(tmp_path / "walk.npz", body_model_dir=tmp_path).joints, j)


def test_body_model_batches_and_motionx(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(smpl_reader, "_create_body_model", lambda d, m, g, nb, batch_size: _FakeBodyModel(batch_size))
    T = 240
    rng = np.random.default_rng(0)
    params = dict(global_orient=rng.normal(size=(T, 3)) * 0.3, body_pose=np.zeros((T, 63)),
                  left_hand_pose=np.zeros((T, 45)), right_hand_pose=np.zeros((T, 45)),
                  transl=rng.normal(size=(T, 3)), betas=np.zeros((1, 10)))
    whole = smpl_reader._run_body_model(params, str(tmp_path), "smplx", "neutral", 10)
    chunks = smpl_reader._run_body_model(params, str(tmp_path), "smplx", "neutral", 10, batch_size=100)
    assert whole.shape == (T, 22, 3)
    np.testing.assert_allclose(chunks, whole, atol=1e-5)
    # Motion-X (T, 322) at 30 fps: up axis found from the skeleton (Z up here).
    arr = np.zeros((90, 322))
    arr[:, 309 + 1] = -np.linspace(0, 1.0 * 89 / 30, 90)  # trans: 1 m/s along -Y
    clip = load_motion(arr, body_model_dir=tmp_path)
    assert clip.info["format"] == "motionx" and clip.info["up_axis"] == "+z"
    assert clip.source_fps == 30 and clip.num_frames == 60
    j = clip.joints
    assert j[0, J["head"], 1] > j[0, J["pelvis"], 1] > j[0, J["left_ankle"], 1]
    with pytest.raises(ValueError, match="322"):
        motion_io.load_motionx_smplx(np.zeros((5, 300)), body_model_dir=tmp_path)


def test_body_model_file_lookup(tmp_path, monkeypatch):
    import types

    created = {}
    fake = types.SimpleNamespace(create=lambda path, **kw: created.update(kw, path=path) or "model")
    monkeypatch.setitem(sys.modules, "smplx", fake)
    with pytest.raises(FileNotFoundError, match=r"SMPLH_FEMALE\.npz.*smpl\.is\.tue\.mpg\.de"):
        smpl_reader._create_body_model(str(tmp_path), "smplh", "female", 16, 8)
    (tmp_path / "smplh").mkdir()
    (tmp_path / "smplh" / "SMPLH_FEMALE.pkl").write_bytes(b"x")
    assert smpl_reader._create_body_model(str(tmp_path), "smplh", "female", 16, 8) == "model"
    assert created["ext"] == "pkl" and created["model_type"] == "smplh" and created["batch_size"] == 8


# ----------------------------------------------------------------------------------------------
# Hostile and odd files: per-line counts, implausible rates, sizes from headers, zero skeletons
# ----------------------------------------------------------------------------------------------


def test_bvh_with_a_short_line_and_a_long_line_is_corrupt(synth, tmp_path):
    """Totals agree (one value moved from frame 60 to frame 61): without a per-line check every channel of frame 61
    would shift."""
    lines = _text(synth).rstrip("\n").split("\n")
    first = lines.index("MOTION") + 3
    a, b = lines[first + 60].split(), lines[first + 61].split()
    lines[first + 60], lines[first + 61] = " ".join(a[:-1]), " ".join(b + [a[-1]])
    path = tmp_path / "shifted.bvh"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"frame 60 has 68 values, the hierarchy has 69 channels"):
        load_bvh(path)


def test_implausible_frame_time_warns_and_huge_resampling_is_refused(synth, tmp_path):
    text = _text(synth)
    slow = tmp_path / "slow.bvh"
    slow.write_text(text.replace("Frame Time: 0.01666667", "Frame Time: 10"))
    with pytest.warns(UserWarning, match=r"0.1 fps .*implausible.* 900 s"):
        clip = load_bvh(slow, fps=None)
    assert clip.duration == pytest.approx(900.0)
    huge = tmp_path / "huge.bvh"
    huge.write_text(text.replace("Frame Time: 0.01666667", "Frame Time: 1e6"))
    with pytest.warns(UserWarning, match="implausible"), pytest.raises(ValueError, match="over the limit"):
        load_bvh(huge)  # 89 intervals of 11.6 days at 20 fps: refused before allocating
    clip = MotionClip(joints=synth[3].joints, fps=1e-6, source_fps=1e-6)
    with pytest.raises(ValueError, match="over the limit"):
        load_motion(clip, fps=20)


def test_npy_headers_are_bounded_and_objects_refused(tmp_path):
    hostile = tmp_path / "huge.npy"
    with open(hostile, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 22, 3)})
        fh.write(b"\0" * 1024)
    with pytest.raises(ValueError, match=r"declares shape \(1000000000, 22, 3\).*holds 1024 bytes"):
        load_motion(hostile)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects") as err:
        load_motion(objects)
    assert "allow_pickle" not in str(err.value)
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros((30, 22, 3), np.float32))
    with pytest.raises(ValueError, match="degenerate skeleton"):
        load_motion(zeros)
    with pytest.raises(ValueError, match="degenerate skeleton"):
        load_humanml3d_joints(zeros)


def test_npz_members_are_bounded_and_objects_refused(tmp_path):
    import zipfile

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, poses=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="holds Python objects") as err:
        load_amass_npz(pickled, body_model_dir=tmp_path)
    assert "allow_pickle" not in str(err.value)
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(huge, "w") as zf, zf.open("poses.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 156)})
        fh.write(b"\0" * 64)
    with pytest.raises(ValueError, match=r"member 'poses.npy' declares shape \(1000000000, 156\)"):
        load_amass_npz(huge, body_model_dir=tmp_path)


def test_num_motion_tokens_rejects_negative_counts():
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

    assert MotionVideoProcessor.num_motion_tokens(type("P", (), {"motion_token_stride": 4})(), 9) == 3
    for bad in (-8, 2.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            MotionVideoProcessor.num_motion_tokens(type("P", (), {"motion_token_stride": 4})(), bad)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YXZ", "ZYX", "XZY", "YZX", "ZXZ", "Y", "XY"])
def test_euler_to_matrix_matches_scipy_intrinsic_rotations(order):
    """The numpy Euler conversion (the exported remote code needs no scipy) equals scipy's intrinsic from_euler."""
    from humocon_hf.processing.motion_io import euler_to_matrix

    angles = np.random.default_rng(0).uniform(-360, 360, size=(50, len(order)))
    expected = Rotation.from_euler(order, angles, degrees=True).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(order, angles), expected, atol=1e-12)
    with pytest.raises(ValueError, match="Euler order"):
        euler_to_matrix("ABC", angles[:, :1].repeat(3, 1))

"""Plausibility warnings (issue 30): `humocon inspect` said `fixes: none` on a CMU run whose thighs were 177 degrees
apart at standing height. Synthetic bad poses are flagged with their frames; real clips that look right are not."""

import json

import numpy as np
import pytest

from humocon_hf.cli import main
from humocon_hf.processing.plausibility import check_plausibility, describe_frames, frame_ranges
from humocon_hf.processing.smpl22 import JOINT_INDEX as J

# A standing adult, metres, Y up, facing +Z, the person's left at +X (HumanML3D's convention).
_REST = {
    "pelvis": (0, 0.95, 0), "left_hip": (0.09, 0.90, 0), "right_hip": (-0.09, 0.90, 0), "spine1": (0, 1.05, 0),
    "left_knee": (0.10, 0.50, 0.01), "right_knee": (-0.10, 0.50, 0.01), "spine2": (0, 1.18, 0),
    "left_ankle": (0.10, 0.08, -0.02), "right_ankle": (-0.10, 0.08, -0.02), "spine3": (0, 1.30, 0),
    "left_foot": (0.11, 0.02, 0.11), "right_foot": (-0.11, 0.02, 0.11), "neck": (0, 1.50, 0),
    "left_collar": (0.07, 1.45, 0), "right_collar": (-0.07, 1.45, 0), "head": (0, 1.62, 0.03),
    "left_shoulder": (0.18, 1.43, 0), "right_shoulder": (-0.18, 1.43, 0), "left_elbow": (0.22, 1.15, 0),
    "right_elbow": (-0.22, 1.15, 0), "left_wrist": (0.24, 0.90, 0.03), "right_wrist": (-0.24, 0.90, 0.03),
}
FPS = 20.0


def standing(frames: int = 40) -> np.ndarray:
    rest = np.array([_REST[name] for name in sorted(_REST, key=J.get)], np.float32)
    sway = 0.01 * np.sin(np.linspace(0, 2 * np.pi, frames))[:, None, None] * np.array([1, 0, 0], np.float32)
    return rest[None] + sway


def _rotate_leg(pose: np.ndarray, side: str, degrees: float, axis: int = 0) -> None:
    """Turn one whole leg about its hip, about the X axis (forwards/backwards) or the Z axis (sideways)."""
    hip = pose[J[f"{side}_hip"]].copy()
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) if axis == 0 else np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    for joint in ("knee", "ankle", "foot"):
        pose[J[f"{side}_{joint}"]] = hip + rot @ (pose[J[f"{side}_{joint}"]] - hip)


def test_a_standing_person_is_plausible():
    assert check_plausibility(standing(), FPS) == []


def test_a_split_at_standing_height_is_flagged_with_its_frames():
    joints = standing()
    for t in range(10, 20):  # the left leg kicked up to a standing split
        _rotate_leg(joints[t], "left", -170.0)
    [warning] = check_plausibility(joints, FPS)
    assert warning.check == "thigh_spread" and warning.frames == [(10, 20)] and warning.worst > 160
    assert "frames 10-19 (0.50-0.95 s)" in warning.message and "deg apart" in warning.message


def test_thighs_apart_with_the_pelvis_low_are_not_flagged():
    """A side split on the floor, a deep squat, sitting, lying: thighs far apart with the pelvis low are poses people
    take (HDM05's deep squats reach 170 degrees)."""
    joints = standing(10)
    for t in range(10):
        _rotate_leg(joints[t], "left", 85.0, axis=2)
        _rotate_leg(joints[t], "right", -85.0, axis=2)
        drop = joints[t, [J["left_ankle"], J["right_ankle"]], 1].max() - 0.08
        joints[t, :, 1] -= drop  # the pelvis sinks until the feet are down again: a side split on the floor
    joints[..., 1] -= joints[..., 1].min()
    assert [w.check for w in check_plausibility(joints, FPS)] == []


@pytest.mark.parametrize("limb", ["knee", "elbow"])
def test_limbs_on_the_other_side_are_flagged(limb):
    joints = standing()
    left, right = J[f"left_{limb}"], J[f"right_{limb}"]
    joints[5:8, [left, right]] = joints[5:8, [right, left]]
    checks = [w for w in check_plausibility(joints, FPS) if w.check == "limbs_crossed"]
    assert len(checks) == 1 and checks[0].frames == [(5, 8)] and f"left {limb}" in checks[0].message


def test_feet_below_the_floor():
    joints = standing()
    joints[..., 1] -= 0.3  # the whole clip under the floor
    [warning] = check_plausibility(joints, FPS)
    assert warning.check == "below_floor" and warning.frames == [(0, 40)] and "below the floor (y = 0" in warning.message
    joints = standing()
    joints[20:22] -= np.array([0, 0.4, 0], np.float32)  # two glitch frames sink through the floor the feet rest on
    messages = [w.message for w in check_plausibility(joints, FPS) if w.check == "below_floor"]
    assert any("frames 20-21" in m and "rest at" in m for m in messages)


def test_a_limb_bone_that_stretches_is_flagged():
    joints = standing()
    knee, ankle = J["left_knee"], J["left_ankle"]
    joints[10:15, ankle] = joints[10:15, knee] + 1.4 * (joints[10:15, ankle] - joints[10:15, knee])
    joints[10:15, J["left_foot"]] += joints[10:15, ankle] - standing()[10:15, ankle]
    warnings = [w for w in check_plausibility(joints, FPS) if w.check == "bone_length"]
    assert [w.frames for w in warnings] == [[(10, 15)]] and "left shin" in warnings[0].message


def test_frame_ranges_and_their_text():
    mask = np.zeros(30, bool)
    mask[[3, 10, 11, 12, 29]] = True
    assert frame_ranges(mask) == [(3, 4), (10, 13), (29, 30)]
    assert describe_frames([(3, 4)], 20) == "frame 3 (0.15 s)"
    assert describe_frames(frame_ranges(mask), 20, most=2) == "frames 3 (0.15 s), 10-12 (0.50-0.60 s) and 1 more"
    with pytest.raises(ValueError, match="check_plausibility\\(joints\\)"):
        check_plausibility(np.zeros((5, 21, 3)))


def test_inspect_prints_the_warnings_and_the_sides_colours(tmp_path, capsys):
    joints = standing()
    for t in range(10, 20):
        _rotate_leg(joints[t], "left", -170.0)
    path = tmp_path / "split.npy"
    np.save(path, joints)
    assert main(["inspect", str(path), "--preview", str(tmp_path / "split.gif")]) == 0
    out = capsys.readouterr().out
    assert "pose:      1 warning(s)" in out and "warning:   thighs up to" in out and "frames 10-19" in out
    assert "blue: the person's left side, red: the right" in out
    assert main(["inspect", str(path), "--preview", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [w["check"] for w in report["plausibility"]] == ["thigh_spread"]
    assert report["plausibility"][0]["frames"] == [[10, 20]]
    np.save(path, standing())
    assert main(["inspect", str(path), "--preview", "none"]) == 0
    assert "pose:      plausible" in capsys.readouterr().out


def test_the_preview_says_which_colour_is_left(tmp_path):
    import imageio.v2 as imageio

    from humocon_hf.processing.rendering import COLOR_LEFT, COLOR_RIGHT, save_preview

    def corner_colours(path):
        frame = np.asarray(imageio.mimread(path)[0])[:30, :80, :3].astype(int)
        return [bool((np.abs(frame - np.array(c)).sum(-1) < 60).sum() > 5) for c in (COLOR_LEFT, COLOR_RIGHT)]

    assert corner_colours(save_preview(standing(), tmp_path / "a.gif", size=224)) == [True, True]
    assert corner_colours(save_preview(standing(), tmp_path / "b.gif", size=224, legend=False)) == [False, False]


def test_real_clips_that_look_right_give_no_warning(shared_data):
    """Every CMU trial but 07_12 (a brisk walk that loads with the thighs 147 degrees apart at standing height: a true
    alarm, see its preview), and Bandai Namco / HDM05 clips with the largest legitimate values: a dance, kicks, deep
    squats, an elbow-to-knee exercise, walking on uneven terrain (03_01)."""
    from humocon_hf.processing.motion_io import load_motion

    files = sorted((shared_data / "cmu_bvh").glob("*.bvh"))
    bandai, hdm = shared_data / "bandai_namco_1" / "data", shared_data / "hdm05_train"
    files += [bandai / f"dataset-1_{name}.bvh" for name in (
        "dance-short_normal_001", "kick_normal_001", "walk-right_feminine_001", "slash_normal_002", "run_angry_001")]
    files += sorted(hdm.glob("HDM_*_squat1Reps_02[3-6]_120.amc")) + sorted(hdm.glob("HDM_*_kickLFront1Reps_01[0-2]_120.amc"))
    files += sorted(hdm.glob("HDM_*_elbowToKnee1RepsLelbowStart_00[1-3]_120.amc"))
    files = [f for f in files if f.is_file()]
    assert len(files) > 45
    flagged = {}
    for path in files:
        kwargs = {"source_fps": 120} if path.name == "16_01.bvh" else {}
        warnings = check_plausibility(load_motion(str(path), fps=20, **kwargs))
        if warnings:
            flagged[path.name] = [w.message for w in warnings]
    assert list(flagged) == ["07_12.bvh"], flagged
    assert flagged["07_12.bvh"][0].startswith("thighs up to 147 deg apart")

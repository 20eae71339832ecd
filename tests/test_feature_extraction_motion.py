"""MotionFeatureExtractor: canonicalisation, features <-> joints round trip, batching, normalisation, errors."""

import json

import numpy as np
import pytest
import torch

from humocon_hf.processing.feature_extraction_motion import (
    FOOT_CONTACTS,
    LOCAL_POSITIONS,
    MOTION_FEATURE_SIZE,
    ROOT_HEIGHT,
    MotionFeatureExtractor,
    heading_angles,
    rotate_y,
)
from humocon_hf.processing.smpl22 import FEET_JOINTS, JOINT_INDEX


@pytest.fixture(scope="module")
def cmu_walk(shared_data):
    from humocon_hf.processing.motion_io import load_motion

    return load_motion(shared_data / "cmu_bvh" / "02_01.bvh", fps=20.0)


def _moved(joints, yaw=1.1, offset=(2.5, 0.3, -1.7)):
    """The same motion somewhere else, turned about Y."""
    return (rotate_y(joints.astype(np.float64), yaw) + np.asarray(offset)).astype(np.float32)


def _synthetic_walk(frames=40, speed=1.2, fps=20.0, yaw_rate=0.0):
    """A stick figure gliding forward (+Z of its own heading) while turning at `yaw_rate` rad/s."""
    rng = np.random.default_rng(0)
    rest = np.zeros((22, 3))
    rest[:, 1] = np.linspace(0.05, 1.6, 22)
    rest += rng.normal(scale=0.01, size=rest.shape)  # before the facing joints, which stay symmetric
    rest[JOINT_INDEX["left_hip"]] = (0.1, 0.9, 0.0)
    rest[JOINT_INDEX["right_hip"]] = (-0.1, 0.9, 0.0)
    rest[JOINT_INDEX["left_shoulder"]] = (0.2, 1.4, 0.0)
    rest[JOINT_INDEX["right_shoulder"]] = (-0.2, 1.4, 0.0)
    t = np.arange(frames) / fps
    yaw = yaw_rate * t
    step = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], -1) * speed / fps
    root = np.cumsum(step, axis=0)
    return (rotate_y(np.broadcast_to(rest, (frames, 22, 3)), yaw[:, None]) + root[:, None]).astype(np.float32)


# ---- canonicalisation -------------------------------------------------------------------------------


def test_canonicalize_properties(hml_joints):
    fe = MotionFeatureExtractor()
    moved = _moved(hml_joints)
    canon = fe.canonicalize(moved)
    assert canon.dtype == np.float32 and canon.shape == hml_joints.shape
    np.testing.assert_allclose(canon[0, 0, [0, 2]], 0.0, atol=1e-5)  # root XZ at the origin at frame 0
    assert abs(canon[:, list(FEET_JOINTS), 1].min()) < 1e-5  # lowest foot on the floor
    assert abs(heading_angles(canon[0])) < 1e-5  # faces +Z at frame 0
    # left stays left: the person's left hip is at +X when facing +Z
    assert canon[0, JOINT_INDEX["left_hip"], 0] > canon[0, JOINT_INDEX["right_hip"], 0]
    # a rigid motion of the input does not change the canonical form (HumanML3D's own clip is canonical)
    np.testing.assert_allclose(canon, fe.canonicalize(hml_joints), atol=1e-4)
    np.testing.assert_allclose(fe.canonicalize(hml_joints), hml_joints, atol=1e-4)


def test_heading_of_turned_figure():
    walk = _synthetic_walk(yaw_rate=0.5)
    np.testing.assert_allclose(heading_angles(walk.astype(np.float64)), 0.5 * np.arange(40) / 20.0, atol=0.05)


# ---- features <-> joints -----------------------------------------------------------------------------


def test_round_trip_humanml3d(hml_joints):
    fe = MotionFeatureExtractor()
    out = fe(_moved(hml_joints), return_tensors="np")
    assert out["motion_values"].shape == (1, len(hml_joints), MOTION_FEATURE_SIZE) == (1, 170, 137)
    rec = fe.inverse_transform(out["motion_values"], out["motion_attention_mask"])
    assert len(rec) == 1 and rec[0].shape == hml_joints.shape
    np.testing.assert_allclose(rec[0], fe.canonicalize(hml_joints), atol=1e-4)


def test_round_trip_cmu_bvh_with_fitted_normalisation(hml_joints, cmu_walk):
    fe = MotionFeatureExtractor().fit_normalization([hml_joints, cmu_walk])
    out = fe([cmu_walk, hml_joints], return_tensors="pt")
    rec = fe.inverse_transform(out["motion_values"], out["motion_attention_mask"])
    np.testing.assert_allclose(rec[0], fe.canonicalize(cmu_walk.joints), atol=1e-4)
    np.testing.assert_allclose(rec[1], fe.canonicalize(hml_joints), atol=1e-4)


def test_feature_semantics_on_synthetic_walk():
    fe = MotionFeatureExtractor(do_normalize=False)
    walk = _synthetic_walk(speed=1.2, yaw_rate=0.4)
    f = fe.joints_to_features(_moved(walk))
    assert f.shape == (40, 137)
    np.testing.assert_allclose(f[:, 0], 0.4 / 20.0, atol=2e-3)  # yaw velocity, rad/frame
    np.testing.assert_allclose(f[:, 1], 0.0, atol=2e-3)  # no sideways motion in the heading frame
    np.testing.assert_allclose(f[:, 2], 1.2 / 20.0, atol=2e-3)  # forward speed, m/frame
    np.testing.assert_allclose(f[:, ROOT_HEIGHT][:, 0], f[0, ROOT_HEIGHT][0], atol=1e-5)
    # local positions do not change for a rigid glide
    np.testing.assert_allclose(f[:, LOCAL_POSITIONS], f[:1, LOCAL_POSITIONS].repeat(40, 0), atol=1e-4)
    # last frame repeats the previous frame's velocity
    np.testing.assert_allclose(f[-1, :3], f[-2, :3], atol=1e-6)


def test_foot_contacts_follow_speed_and_height():
    fe = MotionFeatureExtractor(do_normalize=False)
    still = np.repeat(_synthetic_walk(frames=1), 10, axis=0)
    contacts = fe.joints_to_features(still)[:, FOOT_CONTACTS]
    # standing still: the lowest foot joint is on the floor; all four feet joints in the figure are low
    lowest = fe.canonicalize(still)[0, list(FEET_JOINTS), 1]
    expected = lowest < np.asarray(fe.contact_height_thresholds)
    assert expected.any() and (contacts == expected).all()
    running = _synthetic_walk(frames=10, speed=5.0)
    assert fe.joints_to_features(running)[:, FOOT_CONTACTS].sum() == 0  # 5 m/s feet are never planted


def test_single_frame_motion_has_zero_velocity():
    fe = MotionFeatureExtractor(do_normalize=False)
    f = fe.joints_to_features(_synthetic_walk(frames=1))
    assert f.shape == (1, 137) and np.all(f[0, :3] == 0)
    rec = fe.inverse_transform(f[None])[0]
    np.testing.assert_allclose(rec, fe.canonicalize(_synthetic_walk(frames=1)), atol=1e-5)


# ---- batching, padding, truncation ---------------------------------------------------------------------


def test_padding_longest_and_masks(hml_joints):
    fe = MotionFeatureExtractor().fit_normalization([hml_joints])
    batch = fe([hml_joints[:30], hml_joints[:50], hml_joints[10:20]], return_tensors="pt")
    values, mask = batch["motion_values"], batch["motion_attention_mask"]
    assert isinstance(values, torch.Tensor) and values.dtype == torch.float32 and mask.dtype == torch.int64
    assert values.shape == (3, 50, 137) and mask.sum(1).tolist() == [30, 50, 10]
    assert torch.all(values[0, 30:] == 0) and torch.all(values[2, 10:] == 0)
    assert torch.all(values[0, :30].abs().sum(-1) > 0)
    # a clip's features do not depend on what it is batched with
    alone = fe(hml_joints[:30], return_tensors="np")["motion_values"][0]
    np.testing.assert_allclose(values[0, :30].numpy(), alone, atol=1e-6)


def test_max_length_truncation_and_multiple(hml_joints):
    fe = MotionFeatureExtractor(max_frames=64)
    out = fe([hml_joints, hml_joints[:20]], padding="max_length", return_tensors="np")
    assert out["motion_values"].shape == (2, 64, 137)
    assert out["motion_attention_mask"].sum(1).tolist() == [64, 20]
    out = fe(hml_joints, max_frames=30, return_tensors="np")
    assert out["motion_values"].shape == (1, 30, 137)
    out = fe(hml_joints, truncation=False, return_tensors="np")
    assert out["motion_values"].shape == (1, 170, 137)
    out = fe(hml_joints[:21], pad_to_multiple_of=4, return_tensors="np")
    assert out["motion_values"].shape == (1, 24, 137) and out["motion_attention_mask"].sum() == 21


def test_no_padding_returns_ragged_lists(hml_joints):
    fe = MotionFeatureExtractor()
    out = fe([hml_joints[:12], hml_joints[:7]], padding=False)
    assert [v.shape for v in out["motion_values"]] == [(12, 137), (7, 137)]
    with pytest.raises(ValueError, match="different lengths"):
        fe([hml_joints[:12], hml_joints[:7]], padding=False, return_tensors="pt")


def test_inputs_paths_clips_tensors_and_lists(shared_data, hml_joints, cmu_walk):
    fe = MotionFeatureExtractor()
    path = shared_data / "cmu_bvh" / "02_01.bvh"
    from_path = fe(str(path), return_tensors="np")["motion_values"]
    from_clip = fe(cmu_walk, return_tensors="np")["motion_values"]
    np.testing.assert_allclose(from_path, from_clip, atol=1e-6)
    from_tensor = fe(torch.from_numpy(hml_joints), return_tensors="np")["motion_values"]
    from_nested = fe(hml_joints.tolist(), return_tensors="np")["motion_values"]
    np.testing.assert_allclose(from_tensor, from_nested, atol=1e-6)
    assert from_tensor.shape == (1, 170, 137)
    stacked = fe(np.stack([hml_joints[:40], hml_joints[50:90]]), return_tensors="np")["motion_values"]
    listed = fe([hml_joints[:40], hml_joints[50:90]], return_tensors="np")["motion_values"]
    np.testing.assert_array_equal(stacked, listed)


def test_motion_clip_at_other_rate_is_resampled(hml_joints):
    from humocon_hf.processing.motion_io import MotionClip

    fe = MotionFeatureExtractor()
    clip40 = MotionClip(
        joints=np.repeat(hml_joints, 2, axis=0)[:-1], fps=40.0, source_fps=40.0, source="test"
    )
    out = fe(clip40, return_tensors="np")
    assert out["motion_attention_mask"].sum() == 170


# ---- normalisation and save / load --------------------------------------------------------------------


def test_fit_normalization_statistics(hml_joints, cmu_walk):
    fe = MotionFeatureExtractor(std_floor=0.01)
    np.testing.assert_array_equal(fe.mean, 0.0)  # unfitted = identity
    np.testing.assert_array_equal(fe.std, 1.0)
    fe.fit_normalization([hml_joints, cmu_walk])
    raw = np.concatenate([MotionFeatureExtractor(do_normalize=False).joints_to_features(m) for m in (hml_joints, cmu_walk.joints)])
    np.testing.assert_allclose(fe.mean, raw.mean(0), atol=1e-5)
    np.testing.assert_allclose(fe.std, np.maximum(raw.std(0), 0.01), atol=1e-5)
    assert fe.std.min() >= 0.01
    normed = fe([hml_joints, cmu_walk], return_tensors="np")
    valid = normed["motion_attention_mask"].astype(bool)
    frames = normed["motion_values"][valid]
    varying = raw.std(0) > 0.01
    np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(frames.std(0)[varying], 1.0, atol=1e-3)


def test_save_pretrained_round_trip(tmp_path, hml_joints, cmu_walk):
    fe = MotionFeatureExtractor(fps=20.0, max_frames=120, contact_speed_threshold=0.7).fit_normalization(
        [hml_joints, cmu_walk]
    )
    fe.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert len(saved["feature_mean"]) == len(saved["feature_std"]) == 137 and saved["max_frames"] == 120
    loaded = MotionFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == fe.to_dict()
    a = fe([hml_joints, cmu_walk], return_tensors="np")
    b = loaded([hml_joints, cmu_walk], return_tensors="np")
    np.testing.assert_array_equal(a["motion_values"], b["motion_values"])
    np.testing.assert_array_equal(a["motion_attention_mask"], b["motion_attention_mask"])


# ---- errors ---------------------------------------------------------------------------------------------


def test_corrupt_file_error_names_item_and_path(tmp_path, hml_joints):
    bad = tmp_path / "broken.bvh"
    bad.write_text("HIERARCHY\nROOT hip\n")
    with pytest.raises(ValueError, match=r"motions\[1\] \(.*broken\.bvh\)"):
        MotionFeatureExtractor()([hml_joints, str(bad)])


def test_errors_name_the_bad_item(hml_joints):
    fe = MotionFeatureExtractor()
    bad = hml_joints.copy()
    bad[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"motions\[1\].*NaN"):
        fe([hml_joints, bad])
    with pytest.raises(ValueError, match=r"motions\[0\].*shape"):
        fe(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match=r"motions\[2\].*no frames"):
        fe([hml_joints, hml_joints, np.zeros((0, 22, 3))])
    with pytest.raises(ValueError, match="empty"):
        fe([])
    with pytest.raises(ValueError, match="padding"):
        fe(hml_joints, padding="shortest")
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        fe(["/nonexistent/does_not_exist.bvh"])


def test_inverse_transform_errors(hml_joints):
    fe = MotionFeatureExtractor()
    out = fe([hml_joints[:10], hml_joints[:6]], return_tensors="np")
    with pytest.raises(ValueError, match="motion_values.*137"):
        fe.inverse_transform(np.zeros((1, 10, 136)))
    with pytest.raises(ValueError, match="does not match"):
        fe.inverse_transform(out["motion_values"], out["motion_attention_mask"][:, :5])
    gap = out["motion_attention_mask"].copy()
    gap[1, 2] = 0
    with pytest.raises(ValueError, match=r"motion_attention_mask\[1\].*right padding"):
        fe.inverse_transform(out["motion_values"], gap)


def test_constructor_validation():
    with pytest.raises(ValueError, match="feature_mean.*137"):
        MotionFeatureExtractor(feature_mean=[0.0] * 10)
    with pytest.raises(ValueError, match="feature_std"):
        MotionFeatureExtractor(feature_std=[0.0] * 137)
    with pytest.raises(ValueError, match="feature_size"):
        MotionFeatureExtractor(feature_size=263)


def test_accepts_a_datasets_column_of_paths(tmp_path):
    import datasets

    paths = []
    for i, n in enumerate((12, 9)):
        path = tmp_path / f"m{i}.npy"
        np.save(path, _random_walk_for_column_test(n))
        paths.append(str(path))
    column = datasets.Dataset.from_dict({"motion_path": paths})["motion_path"]
    out = MotionFeatureExtractor()(column, return_tensors="np")
    assert out["motion_values"].shape[:2] == (2, 12)
    assert out["motion_attention_mask"].sum(axis=1).tolist() == [12, 9]


def _random_walk_for_column_test(num_frames):
    from humocon_hf.processing.smpl22 import SMPL22_PARENTS

    rng = np.random.default_rng(num_frames)
    joints = np.zeros((22, 3), np.float32)
    for j in range(1, 22):
        joints[j] = joints[SMPL22_PARENTS[j]] + rng.normal(0, 0.1, 3)
    clip = np.repeat(joints[None], num_frames, axis=0)
    clip[:, :, 2] += np.linspace(0, 1, num_frames)[:, None]
    return clip

"""Mirror augmentation: the mirrored motion really is the other side, and its labels say so."""

from pathlib import Path

import numpy as np
import pytest

from humocon_hf.data.augmentation import mirror_qa_split, mirror_segments, mirror_text
from humocon_hf.data.procedural import MotionSpec, SegmentSpec, generate_motion, generate_motion_qa
from humocon_hf.processing.motion_io import load_motion
from humocon_hf.processing.smpl22 import JOINT_INDEX, MIRROR_JOINT_PERMUTATION, SMPL22_PARENTS, mirror_joints

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _left_direction(joints: np.ndarray) -> np.ndarray:
    """The person's left (unit, horizontal) per frame, from where the feet point: Y up, left = up x forward."""
    fwd = (joints[:, [JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]]]
           - joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]]).mean(axis=1)
    fwd[:, 1] = 0.0
    left = np.cross(np.array([0.0, 1.0, 0.0]), fwd)
    return left / np.linalg.norm(left, axis=-1, keepdims=True)


def test_mirror_text_swaps_side_words_only_and_keeps_case():
    assert mirror_text("waves with the left hand") == "waves with the right hand"
    assert mirror_text("Right foot, then LEFT arm") == "Left foot, then RIGHT arm"
    assert mirror_text("turns clockwise, then counterclockwise") == "turns counterclockwise, then clockwise"
    assert mirror_text("spins anti-clockwise") == "spins clockwise"
    assert mirror_text("leftover rightly walks left-handed") == "leftover rightly walks left-handed"
    assert mirror_text("filter_direction([0], left)") == "filter_direction([0], right)"
    assert mirror_text(None) is None
    with pytest.raises(TypeError, match="expected a string"):
        mirror_text(3)
    assert mirror_segments([{"action": "kick", "body_part": "left leg", "direction": None, "start": 0, "end": 9}]) == [
        {"action": "kick", "body_part": "right leg", "direction": None, "start": 0, "end": 9}
    ]


def test_mirror_joints_is_an_involution_that_keeps_the_skeleton_valid():
    clip = load_motion(SHARED / "cmu_bvh" / "09_01.bvh")
    joints = clip.joints
    mirrored = mirror_joints(joints)
    assert mirrored.shape == joints.shape and mirrored.dtype == np.float32
    np.testing.assert_allclose(mirror_joints(mirrored), joints, atol=1e-6)
    # Bone lengths are unchanged and the left hip still lies on the person's left (not a mirrored rig).
    bones = lambda j: np.linalg.norm(j[:, 1:] - j[:, SMPL22_PARENTS[1:]], axis=-1)  # noqa: E731
    twin_bone = [MIRROR_JOINT_PERMUTATION[k] - 1 for k in range(1, 22)]  # bone k of the mirror = bone twin(k)
    np.testing.assert_allclose(bones(mirrored), bones(joints)[:, twin_bone], atol=1e-5)
    across = mirrored[:, JOINT_INDEX["left_hip"]] - mirrored[:, JOINT_INDEX["right_hip"]]
    assert np.median((across * _left_direction(mirrored)).sum(-1)) > 0
    # Midline joints stay themselves, paired joints swap.
    assert MIRROR_JOINT_PERMUTATION[JOINT_INDEX["head"]] == JOINT_INDEX["head"]
    assert MIRROR_JOINT_PERMUTATION[JOINT_INDEX["left_wrist"]] == JOINT_INDEX["right_wrist"]
    with pytest.raises(ValueError, match=r"mirror_joints\(joints\): expected SMPL-22"):
        mirror_joints(np.zeros((3, 21, 3)))


def test_a_mirrored_left_hand_wave_and_left_step_are_right_ones():
    rng = np.random.default_rng(0)
    spec = MotionSpec(segments=[SegmentSpec("walk", direction="left"), SegmentSpec("wave", side=1)])
    joints, segments = generate_motion(rng, spec)
    assert [s["body_part"] for s in segments] == [None, "left hand"]
    mirrored = mirror_joints(joints)

    def lateral_step(j):  # root displacement towards the person's left during the walk
        a, b = segments[0]["start"], segments[0]["end"] - 1
        return float(((j[b, 0] - j[a, 0]) * _left_direction(j)[a]).sum())

    def raised_wrist(j):  # which wrist goes higher during the wave
        a, b = segments[1]["start"], segments[1]["end"]
        lw, rw = j[a:b, JOINT_INDEX["left_wrist"], 1].max(), j[a:b, JOINT_INDEX["right_wrist"], 1].max()
        return "left" if lw > rw else "right"

    assert lateral_step(joints) > 0.3 and lateral_step(mirrored) < -0.3
    assert raised_wrist(joints) == "left" and raised_wrist(mirrored) == "right"


def test_mirror_qa_split_mirrors_files_and_labels(tmp_path):
    qa = generate_motion_qa(num_motions=6, seed=3, questions_per_motion=3, cache_dir=tmp_path / "cache",
                            splits=(1.0, 0.0, 0.0), max_frames=80)["train"]  # fmt: skip
    mirrored = mirror_qa_split(qa, tmp_path / "mirrored")
    assert len(mirrored) == len(qa) and mirrored.features == qa.features
    sided = 0
    for row, twin in zip(qa, mirrored):
        assert twin["id"] == "M" + row["id"] and twin["motion_id"] == "M" + row["motion_id"]
        assert twin["question"] == mirror_text(row["question"]) and twin["answer"] == mirror_text(row["answer"])
        assert twin["conversations"][1]["content"] == twin["answer"]
        assert twin["segments"] == mirror_segments(row["segments"])
        assert Path(twin["motion_path"]).parent == tmp_path / "mirrored"
        np.testing.assert_array_equal(np.load(twin["motion_path"]), mirror_joints(np.load(row["motion_path"])))
        sided += "left" in row["answer"] or "right" in row["answer"]
    assert sided > 0  # the fixture exercises sided answers
    # One mirrored file per distinct motion, however many questions share it.
    assert len(list((tmp_path / "mirrored").glob("*.npy"))) == len(set(qa["motion_id"]))
    # Rows holding joints are mirrored in place, no folder needed.
    with_joints = qa.map(lambda r: {"joints": np.load(r["motion_path"])}).remove_columns("motion_path")
    twin = mirror_qa_split(with_joints)[0]
    np.testing.assert_allclose(np.asarray(twin["joints"]), mirror_joints(np.asarray(with_joints[0]["joints"])))


def test_mirror_qa_split_refuses_what_it_cannot_mirror(tmp_path):
    import datasets

    rows = datasets.Dataset.from_dict({"question": ["q"], "answer": ["left"], "motion_path": ["m.npy"]})
    with pytest.raises(ValueError, match="pass motions_dir"):
        mirror_qa_split(rows)
    with pytest.raises(ValueError, match="needs a 'motion_path' or 'joints' column"):
        mirror_qa_split(rows.remove_columns("motion_path"))
    with_video = rows.add_column("video_path", ["v.mp4"])
    with pytest.raises(ValueError, match="video_path cannot be mirrored"):
        mirror_qa_split(with_video, tmp_path)

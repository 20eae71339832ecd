"""The SMPL-22 skeleton definition every other module relies on."""

import numpy as np
import pytest

from humocon_hf.processing import smpl22


def test_tree_is_consistent():
    assert len(smpl22.SMPL22_JOINT_NAMES) == smpl22.NUM_JOINTS == len(smpl22.SMPL22_PARENTS) == 22
    assert smpl22.SMPL22_PARENTS[0] == -1
    assert all(0 <= p < j for j, p in enumerate(smpl22.SMPL22_PARENTS) if j > 0)
    for chain in smpl22.SMPL22_CHAINS:  # every consecutive pair in a chain is a bone of the tree
        for parent, child in zip(chain[:-1], chain[1:]):
            assert smpl22.SMPL22_PARENTS[child] == parent
    # left joints are named left, right joints right
    r_hip, l_hip, r_sh, l_sh = smpl22.FACE_JOINTS
    assert smpl22.SMPL22_JOINT_NAMES[l_hip] == "left_hip" and smpl22.SMPL22_JOINT_NAMES[r_sh] == "right_shoulder"


def test_check_joints_accepts_valid_and_names_problems():
    ok = smpl22.check_joints(np.zeros((5, 22, 3), np.float64), "clip")
    assert ok.dtype == np.float32 and ok.shape == (5, 22, 3)
    with pytest.raises(ValueError, match=r"clip: expected SMPL-22 .* got shape \(5, 21, 3\)"):
        smpl22.check_joints(np.zeros((5, 21, 3)), "clip")
    with pytest.raises(ValueError, match="no frames"):
        smpl22.check_joints(np.zeros((0, 22, 3)), "clip")
    bad = np.zeros((4, 22, 3))
    bad[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN .*\[2\]"):
        smpl22.check_joints(bad, "clip")

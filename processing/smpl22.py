"""The SMPL-22 skeleton every motion in humocon-hf is expressed in.

Joint order, units and axes follow HumanML3D: 22 joints, metres, Y up, the person facing +Z at
frame 0 after canonicalisation, 20 frames per second unless a caller asks otherwise. Readers map
their rigs onto this layout, the feature extractor and the renderer consume it.
"""

from __future__ import annotations

import numpy as np

SMPL22_JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
NUM_JOINTS = len(SMPL22_JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(SMPL22_JOINT_NAMES)}

# Kinematic tree: parent of each joint (-1 for the root).
SMPL22_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19])

# Chains used for drawing and for bone-length checks (HumanML3D's t2m_kinematic_chain).
SMPL22_CHAINS = (
    (0, 2, 5, 8, 11),  # right leg
    (0, 1, 4, 7, 10),  # left leg
    (0, 3, 6, 9, 12, 15),  # spine and head
    (9, 14, 17, 19, 21),  # right arm
    (9, 13, 16, 18, 20),  # left arm
)

# Joints used to find the facing direction: (right_hip, left_hip, right_shoulder, left_shoulder).
FACE_JOINTS = (2, 1, 17, 16)
# Feet used for floor contact: (left_ankle, left_foot, right_ankle, right_foot).
FEET_JOINTS = (7, 10, 8, 11)

DEFAULT_FPS = 20.0

# Each joint's left/right twin (itself on the midline): the relabelling a mirror image needs.
MIRROR_JOINT_PERMUTATION = tuple(
    JOINT_INDEX[name.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for name in SMPL22_JOINT_NAMES
)


def check_joints(joints: np.ndarray, name: str = "joints") -> np.ndarray:
    """Validate a (T, 22, 3) joint array and return it as float32; raise a clear error otherwise."""
    arr = np.asarray(joints)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(
            f"{name}: expected SMPL-22 joint positions of shape (frames, {NUM_JOINTS}, 3), got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: the motion has no frames")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr).all(axis=(1, 2))).ravel()
        raise ValueError(f"{name}: contains NaN or infinite values (first bad frames: {bad[:5].tolist()})")
    return arr


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """The mirror image of a motion: X negated and every left joint swapped with its right twin.

    HumanML3D's augmentation: a person waving with the left hand becomes one waving with the right hand, a step
    to the left becomes a step to the right; the skeleton stays a valid (un-mirrored) SMPL-22 skeleton, so the
    result goes through the same feature extraction. Pair it with `humocon_hf.data.augmentation.mirror_text` for
    the motion's labels. Shape ``(T, 22, 3)`` in, same shape out (float32).
    """
    arr = check_joints(joints, "mirror_joints(joints)")
    out = arr[:, list(MIRROR_JOINT_PERMUTATION)].copy()
    out[..., 0] *= -1.0
    return out

"""Acclaim ASF/AMC: the kinematics against hand-computed poses, the same motion through a BVH conversion, physical facts
of real HDM05 optical mocap (stature, floor, sides, constant bones, a squat, a left kick, a right-hand reach), and bad
files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from humocon_hf.processing.asf_amc_reader import (
    asf_amc_positions,
    find_asf_for,
    load_asf_amc,
    parse_amc,
    parse_asf,
)
from humocon_hf.processing.bvh_reader import estimate_stature
from humocon_hf.processing.motion_io import MOTION_EXTENSIONS, load_bvh, load_motion
from humocon_hf.processing.smpl22 import JOINT_INDEX

J = JOINT_INDEX

_TWO_BONES = """:version 1.10
:name test
:units
  mass 1.0
  length 1.0
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 1 0 0
     length 2
     axis {axis} XYZ
    dof {dof}
  end
  begin
     id 2
     name b
     direction 0 1 0
     length 1
     axis 0 0 0 XYZ
  end
:hierarchy
  begin
    root a
    a b
  end
"""


def _two_bone_positions(tmp_path: Path, axis: str, dof: str, values: str) -> dict[str, np.ndarray]:
    asf = tmp_path / "s.asf"
    asf.write_text(_TWO_BONES.format(axis=axis, dof=dof))
    amc = tmp_path / "s.amc"
    amc.write_text(f":FULLY-SPECIFIED\n:DEGREES\n1\nroot 0 0 0 0 0 0\na {values}\n")
    skel = parse_asf(asf)
    names, parents, ends, pos = asf_amc_positions(skel, parse_amc(amc, skel))
    assert parents[names.index("b")] == names.index("a") and ends[names.index("b_end")]
    return {n: pos[0, i] for i, n in enumerate(names)}


def test_bone_rotation_is_applied_in_its_axis_frame(tmp_path):
    # No axis: rz = 90 turns bone a (+X, length 2) to +Y; bone b (+Y at rest) turns with it, to -X.
    p = _two_bone_positions(tmp_path, "0 0 0", "rz", "90")
    np.testing.assert_allclose(p["b"], [0, 2, 0], atol=1e-9)
    np.testing.assert_allclose(p["b_end"], [-1, 2, 0], atol=1e-9)
    # Axis frame turned 90 deg about Z: its local x is world +Y, so rx = 90 is a turn about world +Y (C·M·C⁻¹),
    # taking +X to -Z.
    p = _two_bone_positions(tmp_path, "0 0 90", "rx", "90")
    np.testing.assert_allclose(p["b"], [0, 0, -2], atol=1e-9)


def test_dof_order_is_the_order_of_application(tmp_path):
    # "rx ry rz" applies rx first about fixed axes: M = Rz·Ry·Rx. rx = 90 leaves +X alone, then rz = 90 turns it to +Y.
    p = _two_bone_positions(tmp_path, "0 0 0", "rx ry rz", "90 0 90")
    np.testing.assert_allclose(p["b"], [0, 2, 0], atol=1e-9)
    # Listed the other way round, rz first takes +X to +Y, then rx = 90 takes +Y to +Z.
    p = _two_bone_positions(tmp_path, "0 0 0", "rz rx", "90 90")
    np.testing.assert_allclose(p["b"], [0, 0, 2], atol=1e-9)


# -------------------------------------------------------------------------------------------------- real HDM05


@pytest.fixture(scope="module")
def hdm05(shared_data) -> Path:
    folder = shared_data / "hdm05_train"
    if not folder.is_dir():
        pytest.skip("hdm05_train is not in the shared data")
    return folder


def _clip(folder: Path, action: str, actor: str = "bd"):
    first = sorted(folder.glob(f"HDM_{actor}_{action}_*_120.amc"))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no side swap, no unit fallback, no rate warning on clean files
        return load_motion(first)


def _y(joints: np.ndarray, name: str) -> np.ndarray:
    return joints[:, J[name], 1]


def test_amc_is_a_motion_extension():
    assert ".amc" in MOTION_EXTENSIONS


@pytest.mark.parametrize("actor", ["bd", "bk", "dg"])
def test_hdm05_skeleton_is_a_human_standing_on_the_floor(hdm05, actor):
    clip = _clip(hdm05, "squat1Reps", actor)
    assert clip.info["rig"] == "cmu_amc2bvh" and clip.info["format"] == "asf/amc"
    assert clip.info["mirrored"] is False and clip.info["swapped_sides"] == []
    assert clip.source_fps == 120 and clip.fps == 20
    j = clip.joints
    assert 1.55 < estimate_stature(j[:1]) < 1.95  # standing first frame
    # Feet on the floor: the lower foot joint at most a few cm up in every frame of a squat.
    lower_foot = np.minimum(_y(j, "left_foot"), _y(j, "right_foot"))
    assert np.median(lower_foot) < 0.03 and lower_foot.max() < 0.1 and lower_foot.min() > -1e-6
    # The forearm is radius + wrist bones: elbow to (hand-bone) wrist is a whole forearm, about as long as the upper
    # arm (HDM05: 0.93-1.13 of it), not the mid-forearm start of the wrist bone (0.6 of it).
    forearm = np.linalg.norm(j[:, J["left_wrist"]] - j[:, J["left_elbow"]], axis=-1).mean()
    upper_arm = np.linalg.norm(j[:, J["left_elbow"]] - j[:, J["left_shoulder"]], axis=-1).mean()
    assert 0.22 < forearm < 0.36 and 0.85 < forearm / upper_arm < 1.25


def test_hdm05_bones_keep_their_length(hdm05):
    j = _clip(hdm05, "throwBasketball").joints
    for a, b in (("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_shoulder", "right_elbow"),
                 ("right_elbow", "right_wrist"), ("left_ankle", "left_foot")):
        length = np.linalg.norm(j[:, J[a]] - j[:, J[b]], axis=-1)
        assert length.std() < 1e-3, (a, b)


def test_hdm05_left_is_on_the_geometric_left(hdm05):
    j = _clip(hdm05, "sneak2StepsLStart").joints
    # Facing: where the toes point. Left = up x forward (Y up).
    fwd = (j[:, J["left_foot"]] - j[:, J["left_ankle"]]) + (j[:, J["right_foot"]] - j[:, J["right_ankle"]])
    fwd[:, 1] = 0
    left = np.cross(np.array([0.0, 1.0, 0.0]), fwd)
    across = j[:, J["left_hip"]] - j[:, J["right_hip"]]
    assert ((left * across).sum(-1) > 0).mean() > 0.95
    across = j[:, J["left_shoulder"]] - j[:, J["right_shoulder"]]
    assert ((left * across).sum(-1) > 0).mean() > 0.95


def test_hdm05_actions_do_what_their_names_say(hdm05):
    squat = _clip(hdm05, "squat1Reps").joints
    assert _y(squat, "pelvis").min() < 0.65 * _y(squat, "pelvis")[0]  # the pelvis drops by a third or more
    kick = _clip(hdm05, "kickLFront1Reps").joints
    assert _y(kick, "left_ankle").max() > _y(kick, "right_ankle").max() + 0.4  # the left foot kicks
    grab = _clip(hdm05, "grabHighR").joints
    assert _y(grab, "right_wrist").max() > _y(grab, "head").max()  # the right hand reaches above the head
    assert _y(grab, "left_wrist").max() < _y(grab, "head").max()
    deposit = _clip(hdm05, "depositFloorR").joints
    assert _y(deposit, "right_wrist").min() < 0.15 < _y(deposit, "left_wrist").min()  # the right hand to the floor
    lie = _clip(hdm05, "lieDownFloor").joints
    assert _y(lie, "head")[-1] < 0.4 and _y(lie, "head")[0] > 1.4


def _bvh_from_asf_amc(skel, motion) -> str:
    """The same motion written as BVH: each bone's world rotation C·M·C⁻¹ relative to its parent as Z-Y-X Euler
    channels, each joint's offset its parent bone's rest vector (amc2bvh's layout)."""
    from scipy.spatial.transform import Rotation

    from humocon_hf.processing.asf_amc_reader import _axis_matrix, _extrinsic

    T = motion.num_frames
    columns, lines = [], []

    def local(name):
        if name == "root":
            order = skel.root_order
            vals = motion.values["root"]
            rdofs = [d for d in order if d.startswith("r")]
            C = _axis_matrix(skel.root_orientation, skel.root_axis_order, True)
            M = _extrinsic(rdofs, np.radians(vals[:, [order.index(d) for d in rdofs]]))
            return C @ M @ C.T
        bone = skel.bones[name]
        if not bone.dof:
            return np.broadcast_to(np.eye(3), (T, 3, 3))
        C = _axis_matrix(bone.axis, bone.axis_order, True)
        return C @ _extrinsic(bone.dof, np.radians(motion.values[name])) @ C.T

    children = {}
    for child, parent in skel.parent.items():
        children.setdefault(parent, []).append(child)

    def write(name, offset, depth):
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if name == 'root' else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {offset[0]:.9f} {offset[1]:.9f} {offset[2]:.9f}")
        euler = Rotation.from_matrix(local(name)).as_euler("ZYX", degrees=True)
        if name == "root":
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation")
            columns.append(motion.values["root"][:, :3])
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Yrotation Xrotation")
        columns.append(euler)
        rest = np.zeros(3) if name == "root" else skel.bones[name].direction * skel.bones[name].length
        for child in children.get(name, []):
            write(child, rest, depth + 1)
        if name not in children:
            lines.append(f"{pad}  End Site")
            lines.append(pad + "  {")
            lines.append(f"{pad}    OFFSET {rest[0]:.9f} {rest[1]:.9f} {rest[2]:.9f}")
            lines.append(pad + "  }")
        lines.append(pad + "}")

    write("root", np.zeros(3), 0)
    data = np.concatenate(columns, axis=1)
    body = "\n".join(" ".join(f"{v:.9f}" for v in row) for row in data)
    return "HIERARCHY\n" + "\n".join(lines) + f"\nMOTION\nFrames: {T}\nFrame Time: {1 / 120:.9f}\n{body}\n"


def test_same_motion_through_asf_amc_and_a_bvh_conversion(hdm05, tmp_path):
    amc = sorted(hdm05.glob("HDM_bk_kickLFront1Reps_*_120.amc"))[0]
    skel = parse_asf(find_asf_for(amc))
    bvh = tmp_path / "kick.bvh"
    bvh.write_text(_bvh_from_asf_amc(skel, parse_amc(amc, skel)))
    via_amc = load_asf_amc(amc)
    via_bvh = load_bvh(bvh)
    assert via_bvh.info["rig"] == via_amc.info["rig"] == "cmu_amc2bvh"
    np.testing.assert_allclose(via_bvh.joints, via_amc.joints, atol=2e-3)


def test_skeleton_found_beside_the_motion(hdm05, tmp_path):
    amc = sorted(hdm05.glob("HDM_dg_squat1Reps_*_120.amc"))[0]
    assert Path(find_asf_for(amc)).name == "HDM_dg.asf"  # several .asf: the one the name starts with
    # One .asf under another name: taken; none: a clear error; several, none a prefix: a clear error.
    (tmp_path / "motion.amc").write_bytes(amc.read_bytes())
    with pytest.raises(FileNotFoundError, match="needs its .asf skeleton"):
        load_motion(tmp_path / "motion.amc")
    (tmp_path / "actor.asf").write_bytes((hdm05 / "HDM_dg.asf").read_bytes())
    explicit = load_motion(tmp_path / "motion.amc", skeleton=hdm05 / "HDM_dg.asf")
    np.testing.assert_allclose(load_motion(tmp_path / "motion.amc").joints, explicit.joints)
    (tmp_path / "other.asf").write_bytes((hdm05 / "HDM_bd.asf").read_bytes())
    with pytest.raises(ValueError, match="several .asf skeletons"):
        load_motion(tmp_path / "motion.amc")


def _broken(tmp_path, hdm05, asf_edit=None, amc_edit=None):
    asf_text = (hdm05 / "HDM_bd.asf").read_text(errors="replace")
    amc_text = (hdm05 / "HDM_bd_squat1Reps_001_120.amc").read_text(errors="replace")
    (tmp_path / "HDM_bd.asf").write_text(asf_edit(asf_text) if asf_edit else asf_text)
    (tmp_path / "HDM_bd_x_001_120.amc").write_text(amc_edit(amc_text) if amc_edit else amc_text)
    return tmp_path / "HDM_bd_x_001_120.amc"


@pytest.mark.parametrize("asf_edit, amc_edit, match", [
    (lambda t: t[: t.index(":hierarchy")], None, "no :hierarchy"),
    (lambda t: t.replace("name lfemur", "name lfemur\n     direction 1 2"), None, "direction needs 3 numbers"),
    (lambda t: t.replace("dof rx ry rz", "dof rx rx rz", 1), None, "dof must list"),
    (lambda t: t.replace("lfemur ltibia", "lfemur ltibia nosuchbone"), None, "does not define"),
    (None, lambda t: t.replace("ltibia 37.8774", "ltibia 37.8774 1.0"), "has 2 values"),
    (None, lambda t: t.replace("ltibia 37.8774", "lknee 37.8774"), "not in the skeleton"),
    (None, lambda t: t.replace("ltibia 37.8774", "ltibia nan"), "NaN or infinite"),
    (None, lambda t: t[: t.rindex("ltibia")], "lacks bones"),
    (None, lambda t: "\n".join(ln for ln in t.splitlines() if not ln[:1].isdigit()), "no frames|before the first frame"),
])
def test_corrupt_acclaim_files_are_named_errors(tmp_path, hdm05, asf_edit, amc_edit, match):
    amc = _broken(tmp_path, hdm05, asf_edit, amc_edit)
    with pytest.raises(ValueError, match=match):
        load_motion(amc)


def test_binary_and_skeleton_only_inputs(tmp_path, hdm05):
    (tmp_path / "a.asf").write_bytes(b"\x00\x01" * 100)
    (tmp_path / "a.amc").write_text("1\nroot 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match="binary"):
        load_motion(tmp_path / "a.amc")
    with pytest.raises(ValueError, match="skeleton without motion"):
        load_motion(hdm05 / "HDM_bd.asf")


def test_humocon_inspect_reads_asf_amc(hdm05, tmp_path, capsys):
    from humocon_hf.cli import main

    amc = sorted(hdm05.glob("HDM_bd_grabHighR_*_120.amc"))[0]
    (tmp_path / "take.amc").write_bytes(amc.read_bytes())  # no .asf beside it: --skeleton names it
    assert main(["inspect", str(tmp_path / "take.amc"), "--skeleton", str(hdm05 / "HDM_bd.asf"), "--json",
                 "--preview", "none"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rig"] == "cmu_amc2bvh" and report["skeleton"].endswith("HDM_bd.asf")
    assert 1.5 < report["stature_m"] < 1.9
    assert main(["inspect", str(hdm05 / "HDM_bd.asf"), "--preview", "none"]) != 0  # a skeleton alone: a clear error
    assert "skeleton without motion" in capsys.readouterr().err


def test_oversized_acclaim_files_are_refused_before_reading(tmp_path, hdm05, monkeypatch):
    amc = sorted(hdm05.glob("HDM_bd_squat1Reps_*_120.amc"))[0]
    monkeypatch.setenv("HUMOCON_MAX_MOTION_BYTES", str(amc.stat().st_size - 1))
    with pytest.raises(ValueError, match="HUMOCON_MAX_MOTION_BYTES"):
        load_motion(amc)


def test_hdm05_lie_down_clips_stay_y_up_and_on_the_floor(hdm05):
    """Clips spent mostly lying on the floor point ankles -> head along the floor; the up axis must still be Y (10 of
    the 14 were turned on their side before, the body floating up to 0.9 m above the floor)."""
    for path in sorted(hdm05.glob("HDM_*_lieDownFloor_*_120.amc")):
        clip = load_motion(path)
        y = clip.joints[..., 1]
        assert clip.info["up_axis"] == "+y", path.name
        # some joint near the floor in every frame (dg's clip 14 keeps ~0.2 m: its floor is set by one joint dipping
        # 0.2 m below the others, the clip's lowest joint)
        assert y.min(axis=1).max() < 0.3, path.name
        assert min(y[0, 0], y[-1, 0]) < 0.35 < max(y[0, 0], y[-1, 0]), path.name  # standing at one end, lying at the other

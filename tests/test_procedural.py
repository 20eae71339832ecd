"""Tests of the built-in procedural motion-QA benchmark.

The label checks are independent of the generator: they measure the generated joints (facing from the
hips, wrist paths, foot heights, pelvis displacement) and compare with the segment labels.
"""

import json
import re

import numpy as np
import pytest

from humocon_hf.data.procedural import (
    MotionQAGenerator,
    MotionSpec,
    enumerate_questions,
    generate_motion,
    generate_motion_qa,
    split_motion_indices,
)
from humocon_hf.processing.smpl22 import JOINT_INDEX, SMPL22_PARENTS

J = JOINT_INDEX
FPS = 20.0
MARGIN = 8  # frames trimmed from each side of a segment (transitions are up to 0.7 s wide)

ANSWER_VOCAB = {
    "action": {"walk", "place something", "take/pick something up", "knock", "throw", "catch", "stand up", "sit",
               "run", "squat", "jump", "kneel", "crouch", "kick", "jumping jacks", "jog", "crawl", "wave"},
    "direction": {"forward", "backwards", "right", "left"},
    "body_part": {"right hand", "right arm", "left hand", "left leg", "right foot", "right leg", "left arm", "left foot"},
}  # fmt: skip


# ------------------------------------------------------------------------------------ measurements


def body_frame(joints):
    """Unit (left, forward) horizontal vectors per frame, measured from the hips and shoulders."""
    across = (joints[:, J["left_hip"]] - joints[:, J["right_hip"]]) + (
        joints[:, J["left_shoulder"]] - joints[:, J["right_shoulder"]]
    )
    left = across * np.array([1.0, 0.0, 1.0])
    left /= np.linalg.norm(left, axis=-1, keepdims=True)
    forward = np.cross(left, np.array([0.0, 1.0, 0.0]))
    return left, forward


def core(seg):
    a, b = seg["start"] + MARGIN, seg["end"] - MARGIN
    assert b - a >= 4, seg
    return slice(a, b)


def path_length(x):
    return float(np.linalg.norm(np.diff(x, axis=0), axis=-1).sum())


def feet_min_height(joints):
    return joints[:, [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]], 1].min(axis=1)


def measured_direction(joints, seg):
    """Body-relative direction of the pelvis displacement over a segment's core."""
    sl = core(seg)
    left, forward = body_frame(joints[sl])
    disp = joints[sl.stop - 1, J["pelvis"]] - joints[sl.start, J["pelvis"]]
    l, f = float(disp @ left.mean(0)), float(disp @ forward.mean(0))
    dist = np.hypot(l, f)
    if dist < 0.15:
        return None, dist
    if abs(f) > abs(l):
        return ("forward" if f > 0 else "backwards"), dist
    return ("left" if l > 0 else "right"), dist


def check_segment(joints, seg):
    """Assert that a labelled segment is what the joints show."""
    a, d, bp = seg["action"], seg["direction"], seg["body_part"]
    sl = core(seg)
    seg_j = joints[sl]
    stand = joints[: max(2, MARGIN), J["pelvis"], 1].max()
    if d is not None:
        got, dist = measured_direction(joints, seg)
        assert got == d, (seg, got, dist)
    if a in ("walk", "jog", "run"):
        speed = np.linalg.norm(np.diff(seg_j[:, J["pelvis"], [0, 2]], axis=0), axis=-1).mean() * FPS
        lo, hi = {"walk": (0.2, 1.65), "jog": (1.1, 3.0), "run": (2.8, 5.5)}[a]
        if a == "walk" and d == "forward":
            lo = 0.95
        assert lo <= speed <= hi, (seg, speed)
        if a == "walk":  # a foot on the floor in every frame
            assert feet_min_height(seg_j).max() < 0.06, seg
    if a == "jump":
        assert feet_min_height(seg_j).max() > 0.06, seg  # both feet leave the floor
        if bp is not None:  # hop: the free foot is held higher than the hopping foot
            s, o = bp.split(" ")[0], "right" if bp.startswith("left") else "left"
            assert seg_j[:, J[f"{o}_ankle"], 1].mean() > seg_j[:, J[f"{s}_ankle"], 1].mean() + 0.1, seg
    if a == "jumping jacks":
        assert feet_min_height(seg_j).max() > 0.03, seg
        assert (seg_j[:, J["left_wrist"], 1] > seg_j[:, J["head"], 1]).any(), seg
        spread = np.abs(seg_j[:, J["left_ankle"], [0, 2]] - seg_j[:, J["right_ankle"], [0, 2]]).max(0)
        assert np.hypot(*spread) > 0.4, seg
    if a == "crawl":  # on all fours in the second half (the first half includes getting down)
        late = joints[(sl.start + sl.stop) // 2 : sl.stop]
        assert late[:, J["head"], 1].max() < 1.0, seg
        assert late[:, [J["left_wrist"], J["right_wrist"], J["left_knee"], J["right_knee"]], 1].max() < 0.2, seg
    if bp is not None and bp.endswith(("hand", "arm")):
        s, o = bp.split(" ")[0], "right" if bp.startswith("left") else "left"
        used, other = path_length(seg_j[:, J[f"{s}_wrist"]]), path_length(seg_j[:, J[f"{o}_wrist"]])
        assert used > 1.2 * other, (seg, used, other)
        if a == "wave":  # the waving hand is up, above its shoulder, for most of the segment
            above = seg_j[:, J[f"{s}_wrist"], 1] > seg_j[:, J[f"{s}_shoulder"], 1]
            assert above.mean() > 0.5, seg
        if a == "throw":  # the throwing hand goes above the head
            assert (seg_j[:, J[f"{s}_wrist"], 1] > seg_j[:, J["head"], 1]).any(), seg
        if a in ("take/pick something up", "place something"):  # reaching forward and down
            _, forward = body_frame(seg_j)
            reach = np.einsum("ti,ti->t", seg_j[:, J[f"{s}_wrist"]] - seg_j[:, J["pelvis"]], forward)
            assert reach.max() > 0.25, seg
            assert (seg_j[:, J[f"{s}_wrist"], 1] < seg_j[:, J["pelvis"], 1] - 0.1).any(), seg
    if a == "kick":
        s, o = bp.split(" ")[0], "right" if bp.startswith("left") else "left"
        assert seg_j[:, J[f"{s}_ankle"], 1].max() > seg_j[:, J[f"{o}_ankle"], 1].max() + 0.2, seg
    if a == "kneel":
        s, o = bp.split(" ")[0], "right" if bp.startswith("left") else "left"
        end = joints[seg["end"] - 3]
        assert end[J[f"{s}_knee"], 1] < 0.15 and end[J[f"{s}_knee"], 1] < end[J[f"{o}_knee"], 1] - 0.2, seg
    pel = joints[:, J["pelvis"], 1]
    if a in ("squat", "crouch"):
        assert pel[sl].min() < pel[: seg["start"] + 2].max() - 0.2 or pel[sl].min() < 0.75 * stand, seg
    if a == "sit":
        end = joints[seg["end"] - 3]
        assert pel[seg["end"] - 3] < pel[seg["start"]] - 0.2, seg
        assert end[J["left_knee"], 1] > pel[seg["end"] - 3] - 0.2, seg  # thighs roughly horizontal
    if a == "stand up":
        assert pel[seg["end"] - 3] > pel[seg["start"]] + 0.15, seg


# ------------------------------------------------------------------------------------ tests


def test_deterministic_and_seed_dependent():
    gen = MotionQAGenerator()
    a, b = gen.generate(0, 5), gen.generate(0, 5)
    np.testing.assert_array_equal(a["joints"], b["joints"])
    assert a["segments"] == b["segments"] and a["caption"] == b["caption"] and a["questions"] == b["questions"]
    c = gen.generate(1, 5)
    assert c["joints"].shape != a["joints"].shape or not np.allclose(c["joints"], a["joints"])


def test_shapes_units_and_constant_bone_lengths():
    gen = MotionQAGenerator()
    for i in range(25):
        j = gen.generate(3, i)["joints"]
        assert j.dtype == np.float32 and j.ndim == 3 and j.shape[1:] == (22, 3)
        assert 40 <= len(j) <= 196
        assert np.isfinite(j).all()
        assert j[..., 1].min() > -1e-3  # nothing under the floor
        bones = np.linalg.norm(j[:, 1:] - j[:, SMPL22_PARENTS[1:]], axis=-1)  # (T, 21)
        assert (bones.max(0) - bones.min(0)).max() < 2e-4, i
        thigh = bones[0, J["left_knee"] - 1]
        assert 0.3 < thigh < 0.5  # metres, adult proportions
        height = (j[:, J["head"], 1] - j[:, :, 1].min(1)).max()  # standing at some point
        assert 1.2 < height < 1.9


def test_left_is_plus_x_when_facing_plus_z():
    joints, _ = generate_motion(np.random.default_rng(0), MotionSpec([("wave", None, "left hand"), ("walk", "forward", None)], heading=0.0))
    left, forward = body_frame(joints[:5])
    assert left[:, 0].min() > 0.95 and forward[:, 2].min() > 0.95
    assert (joints[:5, J["left_hip"], 0] > joints[:5, J["right_hip"], 0]).all()


@pytest.mark.parametrize(
    "segments",
    [
        [("walk", "forward", None), ("walk", "left", None), ("walk", "backwards", None), ("walk", "right", None)],
        [("jog", "forward", None), ("jump", "left", None), ("run", "forward", None)],
        [("jump", "backwards", None), ("jump", "right", None), ("jog", "backwards", None)],
        [("wave", None, "left hand"), ("throw", None, "right arm"), ("knock", None, "left hand")],
        [("take/pick something up", None, "right hand"), ("place something", None, "left hand"), ("catch", None, "right hand")],
        [("kick", None, "left leg"), ("jump", None, "right foot"), ("squat", None, None)],
        [("sit", None, None), ("stand up", None, None), ("kneel", None, "right leg"), ("stand up", None, None)],
        [("jumping jacks", None, None), ("crawl", "forward", None), ("stand up", None, None)],
        [("crouch", None, None), ("stand up", None, None), ("wave", None, "right hand")],
    ],
)
def test_requested_segments_match_the_measured_motion(segments):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        joints, segs = generate_motion(rng, segments, max_frames=400)
        assert [s["action"] for s in segs] == [s[0] for s in segments]
        assert segs[0]["start"] == 0 and segs[-1]["end"] == len(joints)
        for s in segs:
            check_segment(joints, s)


def test_random_motions_labels_match_measurements():
    gen = MotionQAGenerator()
    seen = set()
    for i in range(120):
        rec = gen.generate(11, i)
        for s in rec["segments"]:
            check_segment(rec["joints"], s)
            seen.add(s["action"])
    assert len(seen) >= 15


def test_walk_is_slower_than_jog_and_run():
    speeds = {}
    for action in ("walk", "jog", "run"):
        v = []
        for seed in range(4):
            joints, segs = generate_motion(np.random.default_rng(seed), [(action, "forward", None), ("wave", None, "left hand")])
            sl = core(segs[0])
            v.append(np.linalg.norm(np.diff(joints[sl, J["pelvis"], [0, 2]], axis=0), axis=-1).mean() * FPS)
        speeds[action] = v
    assert 1.0 <= min(speeds["walk"]) and max(speeds["walk"]) <= 1.65
    assert max(speeds["walk"]) < min(speeds["jog"]) and max(speeds["jog"]) < min(speeds["run"])


def test_stance_feet_do_not_skate_when_walking():
    joints, segs = generate_motion(np.random.default_rng(2), [("walk", "forward", None), ("walk", "right", None)])
    for s in segs:
        sl = core(s)
        for foot in ("left_foot", "right_foot"):
            p = joints[sl, J[foot]]
            on_floor = p[1:, 1] < 0.035
            slide = np.linalg.norm(np.diff(p[:, [0, 2]], axis=0), axis=-1)[on_floor] * FPS
            assert on_floor.any() and np.median(slide) < 0.25, (s, np.median(slide))


def _eval_program(program, segments):
    """Independent interpreter of the BABEL-QA programs over segment labels."""
    sets = {}
    for step in program:
        lhs, rhs = step.split("=", 1)
        op, args = re.match(r"(\w+)\((.*)\)$", rhs).groups()
        if op == "scene":
            val = set(range(len(segments)))
        elif op.startswith("filter_"):
            kind, value = op[len("filter_"):], args.split(", ", 1)[1]
            val = {i for i, s in enumerate(segments) if s[kind] == value}
            assert len(val) == 1, f"filter {value!r} is ambiguous"
        elif op == "relate":
            ref, rel = re.match(r"\[(\d+)\], (\w+)", args).groups()
            (k,) = sets[ref]
            val = {k - 1} if rel == "before" else {k + 1}
            val &= set(range(len(segments)))
        elif op == "intersect":
            a, b = re.findall(r"\d+", args)
            val = sets[a] & sets[b]
        elif op.startswith("query_"):
            (k,) = sets[re.match(r"\[(\d+)\]", args).group(1)]
            return segments[k][op[len("query_"):]]
        sets[lhs.strip("[]")] = val
    raise AssertionError("program without a query")


_Q_RE = re.compile(
    r"^What (action does the person do|direction does the person move|body part does the person use) "
    r"(while|before|after) they (.+?)( and (before|after) they (.+))?\?$"
)


def test_questions_are_well_formed_unambiguous_and_in_vocabulary(shared_data):
    from humocon_hf.data.loaders import babel_query_type, babel_relation_type

    vocab = set(json.loads((shared_data / "babel_qa" / "BABELQA_answer_vocab.json").read_text()))
    per_type = {
        "action": set(json.loads((shared_data / "babel_qa" / "BABELQA_action_answer_vocab.json").read_text())),
        "direction": set(json.loads((shared_data / "babel_qa" / "BABELQA_direction_answer_vocab.json").read_text())),
        "body_part": set(json.loads((shared_data / "babel_qa" / "BABELQA_body_part_answer_vocab.json").read_text())),
    }
    gen = MotionQAGenerator()
    answers, kinds = set(), set()
    for i in range(150):
        rec = gen.generate(4, i, questions_per_motion=6)
        assert rec["questions"]
        texts = [q["question"] for q in rec["questions"]]
        assert len(set(texts)) == len(texts)
        for q in rec["questions"]:
            assert _Q_RE.match(q["question"]), q["question"]
            assert q["answer"] in vocab and q["answer"] in per_type[q["query_type"]]
            assert babel_query_type(q["program"]) == q["query_type"]
            assert babel_relation_type(q["program"]) == q["relation_type"]
            assert _eval_program(q["program"], rec["segments"]) == q["answer"]
            answers.add(q["answer"])
            kinds.add((q["query_type"], q["relation_type"]))
    assert ANSWER_VOCAB["direction"] <= answers and ANSWER_VOCAB["body_part"] <= answers
    assert len(ANSWER_VOCAB["action"] & answers) >= 16
    assert {r for _, r in kinds} == {"none", "before", "after", "in between"}
    assert {q for q, _ in kinds} == {"action", "direction", "body_part"}


def test_no_question_when_the_anchor_repeats():
    segs = [
        dict(action="walk", direction="forward", body_part=None, start=0, end=40),
        dict(action="wave", direction=None, body_part="left hand", start=40, end=80),
        dict(action="walk", direction="backwards", body_part=None, start=80, end=120),
    ]
    qs = enumerate_questions(segs)
    assert qs
    assert not any("they walk?" in q["question"] or "they walk and" in q["question"] for q in qs)
    assert any(q["question"] == "What action does the person do after they move forward?" and q["answer"] == "wave" for q in qs)
    assert not any(q["query_type"] == "direction" and q["relation_type"] == "none" and "wave" in q["question"] for q in qs)


def test_captions_describe_segments_in_order():
    gen = MotionQAGenerator()
    rec = gen.generate(0, 1)
    cap = rec["caption"]
    assert cap[0].isupper() and cap.endswith(".")
    _, segs = generate_motion(np.random.default_rng(0), [("walk", "forward", None), ("wave", None, "left hand")])
    from humocon_hf.data.procedural import make_caption

    cap = make_caption(segs, np.random.default_rng(0))
    assert "walks forward" in cap and "left hand" in cap and cap.index("walk") < cap.index("wave")


def test_splits_disjoint_dataset_and_cache(tmp_path, monkeypatch):
    idx = split_motion_indices(50, 0, (0.6, 0.2, 0.2))
    assert sum(map(len, idx.values())) == 50 and len(set().union(*map(set, idx.values()))) == 50
    dd = generate_motion_qa(num_motions=20, seed=7, questions_per_motion=2, cache_dir=tmp_path, splits=(0.6, 0.2, 0.2))
    assert set(dd) == {"train", "validation", "test"}
    ids = {k: set(dd[k]["motion_id"]) for k in dd}
    assert not (ids["train"] & ids["validation"]) and not (ids["train"] & ids["test"]) and not (ids["validation"] & ids["test"])
    assert sum(map(len, ids.values())) == 20
    row = dd["train"][0]
    for col in ("id", "motion_id", "motion_path", "fps", "question", "answer", "query_type", "relation_type", "segments", "caption", "program", "conversations"):
        assert col in row
    from humocon_hf.processing.motion_io import load_motion

    clip = load_motion(row["motion_path"])
    assert clip.joints.shape[1:] == (22, 3) and len(clip.joints) == row["num_frames"]
    assert row["segments"][-1]["end"] == row["num_frames"]

    # Second call: served from the cache (generation must not run again), identical content.
    def boom(*a, **k):
        raise AssertionError("regenerated instead of using the cache")

    monkeypatch.setattr(MotionQAGenerator, "generate", boom)
    dd2 = generate_motion_qa(num_motions=20, seed=7, questions_per_motion=2, cache_dir=tmp_path, splits=(0.6, 0.2, 0.2))
    assert dd2["train"]["question"] == dd["train"]["question"]
    with pytest.raises(AssertionError, match="regenerated"):
        generate_motion_qa(num_motions=20, seed=8, questions_per_motion=2, cache_dir=tmp_path, splits=(0.6, 0.2, 0.2))
    monkeypatch.undo()
    dd3 = generate_motion_qa(num_motions=20, seed=8, questions_per_motion=2, cache_dir=tmp_path, splits=(0.6, 0.2, 0.2))
    assert dd3["train"]["question"] != dd["train"]["question"] or dd3["train"]["motion_id"] != dd["train"]["motion_id"]
    motions = generate_motion_qa(num_motions=6, seed=7, cache_dir=tmp_path, rows="motions", include_joints=True)
    r = motions["train"].with_format("numpy")[0]
    assert r["joints"].shape == (r["num_frames"], 22, 3)
    assert "question" not in motions["train"].column_names


def test_extra_train_motions_leave_the_held_out_questions_unchanged(tmp_path):
    """A larger training set is compared with a smaller one on the same validation and test questions."""
    kw = dict(num_motions=20, seed=3, questions_per_motion=2, cache_dir=tmp_path, splits=(0.6, 0.2, 0.2))
    base = generate_motion_qa(**kw)
    grown = generate_motion_qa(**kw, extra_train_motions=5)
    for split in ("validation", "test"):
        assert grown[split]["id"] == base[split]["id"] and grown[split]["question"] == base[split]["question"]
    base_train, grown_train = set(base["train"]["motion_id"]), set(grown["train"]["motion_id"])
    assert base_train < grown_train and len(grown_train - base_train) == 5
    assert not grown_train & set(grown["test"]["motion_id"])
    with pytest.raises(ValueError, match="extra_train_motions must be a non-negative integer"):
        generate_motion_qa(**kw, extra_train_motions=-1)


def test_bad_inputs_raise_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown action"):
        generate_motion(rng, [("moonwalk", None, None)])
    with pytest.raises(ValueError, match="cannot have direction"):
        generate_motion(rng, [("wave", "left", "left hand")])
    with pytest.raises(ValueError, match="needs a side"):
        generate_motion(rng, [("wave", None, None)])
    with pytest.raises(ValueError, match="uses the"):
        generate_motion(rng, [("wave", None, "left foot")])
    with pytest.raises(ValueError, match="must be 'stand up'"):
        generate_motion(rng, [("sit", None, None), ("walk", "forward", None)])
    with pytest.raises(ValueError, match="must follow"):
        generate_motion(rng, [("walk", "forward", None), ("stand up", None, None)])
    with pytest.raises(ValueError, match="splits"):
        generate_motion_qa(num_motions=4, splits=(0.5, 0.6, 0.1), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="num_motions"):
        generate_motion_qa(num_motions=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="rng"):
        generate_motion(0, None)


def test_every_motion_has_questions_and_motions_vary():
    gen = MotionQAGenerator()
    headings, heights, starts = [], [], []
    for i in range(60):
        rec = gen.generate(9, i, questions_per_motion=3)
        assert 1 <= len(rec["questions"]) <= 3
        j = rec["joints"]
        _, forward = body_frame(j[:1])
        headings.append(np.arctan2(forward[0, 0], forward[0, 2]))
        heights.append(np.linalg.norm(j[0, J["left_knee"]] - j[0, J["left_hip"]]))
        starts.append(j[0, J["pelvis"], [0, 2]])
    assert np.ptp(headings) > 4.0  # facing spread over the circle
    assert np.std(heights) > 0.01  # body proportions vary
    assert np.ptp(np.array(starts), axis=0).min() > 2.0  # start positions vary


def test_dataset_feeds_the_processors_and_shared_qa_schema(tmp_path):
    from humocon_hf.data.loaders import QA_FEATURES, select_qa_columns
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.video_processing_humocon import load_video

    dd = generate_motion_qa(num_motions=3, seed=2, questions_per_motion=1, cache_dir=tmp_path, splits=(1.0, 0.0, 0.0),
                            render_video=True, video_size=64)  # fmt: skip
    assert len(dd["validation"]) == 0 and len(dd["test"]) == 0
    qa = select_qa_columns(dd["train"])
    assert list(qa.features) == list(QA_FEATURES)
    row = dd["train"][0]
    frames, fps = load_video(row["video_path"])
    assert frames.shape[1:] == (64, 64, 3) and abs(len(frames) - row["num_frames"]) <= 1 and fps == pytest.approx(20.0)
    feats = MotionFeatureExtractor()(list(dd["train"]["motion_path"]), return_tensors="np")
    assert feats["motion_values"].shape[0] == len(dd["train"]) and np.isfinite(feats["motion_values"]).all()
    assert feats["motion_attention_mask"].sum(1).tolist() == [min(n, 196) for n in list(dd["train"]["num_frames"])]


# ------------------------------------------------------------------------------------ domain randomisation


def test_realism_varies_training_motions_only_and_keeps_their_labels(tmp_path):
    """data.procedural_realism: the training motions vary (timing, amplitude, cuts), the held-out ones are the
    benchmark's exactly, and each training question is the one drawn without it (own random stream)."""
    kw = dict(num_motions=24, seed=4, questions_per_motion=2, cache_dir=tmp_path, splits=(0.5, 0.25, 0.25))
    plain = generate_motion_qa(**kw, rows="motions", include_joints=True)
    varied = generate_motion_qa(**kw, rows="motions", include_joints=True, realism=1.0)
    for split in ("validation", "test"):
        for a, b in zip(plain[split], varied[split]):
            assert np.array_equal(np.asarray(a["joints"]), np.asarray(b["joints"])) and a["segments"] == b["segments"]
    changed = lengths = 0
    for a, b in zip(plain["train"], varied["train"]):
        assert a["motion_id"] == b["motion_id"] and a["caption"] == b["caption"]
        labels = [(s["action"], s["direction"], s["body_part"]) for s in a["segments"]]
        assert labels == [(s["action"], s["direction"], s["body_part"]) for s in b["segments"]]
        changed += not np.array_equal(np.asarray(a["joints"]), np.asarray(b["joints"]))
        lengths += len(b["joints"]) < len(a["joints"])
    assert changed == len(plain["train"]) and lengths >= 2  # every motion varied; some start or end part-way
    q_plain = generate_motion_qa(**kw)
    q_varied = generate_motion_qa(**kw, realism=1.0)
    for split in ("train", "validation", "test"):
        assert q_plain[split]["question"] == q_varied[split]["question"]
        assert q_plain[split]["answer"] == q_varied[split]["answer"]
    assert q_plain["train"]["motion_path"] != q_varied["train"]["motion_path"]  # a cache of its own


def test_realism_keeps_bones_floor_and_what_the_labels_say():
    """Varied motions are still physical (constant bones, feet on the floor, contiguous segments covering the clip)
    and still show their labels: the measured checks above pass on nearly every varied segment (the speed bands
    and short cores of a few cut or sped-up segments are the exceptions)."""
    from humocon_hf.data.procedural_realism import Realism

    gen = MotionQAGenerator()
    realism = Realism.at(1.0)
    parents = [(j, p) for j, p in enumerate(SMPL22_PARENTS) if p >= 0]
    checked = failed = 0
    for i in range(80):
        rec = gen.generate(11, i, realism=realism)
        joints, segs = rec["joints"], rec["segments"]
        assert np.isfinite(joints).all() and len(joints) >= 20
        bones = np.stack([np.linalg.norm(joints[:, j] - joints[:, p], axis=-1) for j, p in parents], 1)
        assert (bones.max(0) - bones.min(0)).max() < 1e-4
        assert feet_min_height(joints).min() > -0.01
        assert segs[0]["start"] == 0 and segs[-1]["end"] == len(joints)
        assert all(s["end"] > s["start"] for s in segs) and all(a["end"] == b["start"] for a, b in zip(segs, segs[1:]))
        for s in segs:
            checked += 1
            try:
                check_segment(joints, s)
            except AssertionError:
                failed += 1
    assert failed <= 0.03 * checked, (failed, checked)


def test_realism_does_not_slide_the_feet():
    """A foot on the floor stays put as much with the variations as without (a stride lengthened at the same speed, or
    noise on the stance foot, would slide it): the mean horizontal speed of low feet, over the same 60 motions."""
    from humocon_hf.data.procedural_realism import Realism

    gen, realism = MotionQAGenerator(), Realism.at(1.0)

    def floor_foot_speed(joints):
        feet = joints[:, [J["left_foot"], J["right_foot"]]]
        speed = np.linalg.norm(np.diff(feet[:, :, [0, 2]], axis=0), axis=-1) * FPS
        return speed[feet[1:, :, 1] < 0.05]

    plain = np.concatenate([floor_foot_speed(gen.generate(3, i)["joints"]) for i in range(60)])
    varied = np.concatenate([floor_foot_speed(gen.generate(3, i, realism=realism)["joints"]) for i in range(60)])
    assert varied.mean() < 1.1 * plain.mean(), (varied.mean(), plain.mean())


def test_realism_strength():
    from humocon_hf.data.procedural_realism import Realism

    assert Realism.at(0) is None
    assert Realism.at(2.0).timing == pytest.approx(2 * Realism().timing) and Realism.at(5.0).partial == 1.0
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="realism strength must be a finite number >= 0"):
            Realism.at(bad)

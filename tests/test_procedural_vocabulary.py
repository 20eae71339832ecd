"""Procedural clips of what real motion is asked about (a raised hand, both hands, a turn): physical facts of each kind,
the turn measured back from the joints (and on real HDM05 circles), and the questions the data stage asks about them."""

from __future__ import annotations

import numpy as np
import pytest

from humocon_hf.data.procedural_vocabulary import (
    VOCABULARY_ACTION_WORDS,
    VOCABULARY_KINDS,
    measure_turn,
    vocabulary_clip,
    vocabulary_takes,
)
from humocon_hf.data.real_motion_qa import infer_active_side
from humocon_hf.processing.smpl22 import JOINT_INDEX, mirror_joints

BONES = [("pelvis", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
         ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
         ("spine3", "neck")]


@pytest.fixture(scope="module")
def clips():
    return {kind: [vocabulary_clip(kind, np.random.default_rng([3, i])) for i in range(3)] for kind in VOCABULARY_KINDS}


def test_every_clip_is_a_plausible_body(clips):
    for kind, takes in clips.items():
        for joints in takes:
            assert joints.dtype == np.float32 and joints.shape[1:] == (22, 3) and len(joints) >= 50, kind
            assert np.isfinite(joints).all(), kind
            assert 0.0 <= joints[:, :, 1].min() <= 0.03, f"{kind}: feet not on the floor"
            for a, b in BONES:  # rigid bones, also through the turn
                length = np.linalg.norm(joints[:, JOINT_INDEX[a]] - joints[:, JOINT_INDEX[b]], axis=-1)
                assert length.max() - length.min() < 1e-3, f"{kind}: bone {a}-{b} changes length"


def test_raised_hands_go_above_the_head_on_the_labelled_side_only(clips):
    for kind in ("raise-left-hand", "raise-right-hand", "raise-both-hands", "wave-both-hands"):
        part = VOCABULARY_KINDS[kind][1]
        for joints in clips[kind]:
            head = joints[:, JOINT_INDEX["head"], 1].max()
            for side in ("left", "right"):
                above = joints[:, JOINT_INDEX[f"{side}_wrist"], 1].max() - head
                if part.startswith(side) or part == "both hands":
                    assert above > 0.05, f"{kind}: {side} wrist not above the head"
                else:
                    assert above < -0.3, f"{kind}: the {side} wrist moved"
            expected = part.split()[0] if part != "both hands" else None
            assert infer_active_side(joints, "arm") == expected, kind


def test_turns_are_measured_back_with_their_side_and_travel(clips):
    for kind, (action, _, turn, _) in VOCABULARY_KINDS.items():
        for joints in clips[kind]:
            assert measure_turn(joints) == turn, kind
            if turn:
                assert measure_turn(mirror_joints(joints)) == {"left": "right", "right": "left"}[turn], kind
                travelled = np.linalg.norm(joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]])
                assert (travelled > 1.0) if action == "walk" else (travelled < 0.6), (kind, travelled)


def test_measure_turn_on_real_circles(shared_data):
    """HDM05 'jog on a left circle' turns left, and its mirror image right: the convention holds on real motion."""
    from humocon_hf.processing.motion_io import load_motion

    clips = sorted((shared_data / "hdm05_train").rglob("*jogLeftCircle*.amc"))
    if not clips:
        pytest.skip("hdm05_train is not in the shared data")
    for path in clips[:2]:
        joints = load_motion(path, fps=20.0).joints
        assert measure_turn(joints) == "left"
        assert measure_turn(mirror_joints(joints)) == "right"
    walk = shared_data / "cmu_bvh" / "02_01.bvh"
    if walk.is_file():
        assert measure_turn(load_motion(walk, fps=20.0).joints) is None


def test_measure_turn_names_a_bad_shape():
    with pytest.raises(ValueError, match=r"SMPL-22 joints.*\(10, 21, 3\)"):
        measure_turn(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match="unknown vocabulary clip kind 'jump'"):
        vocabulary_clip("jump", np.random.default_rng(0))


def test_takes_are_seeded_and_asked_like_real_takes():
    from humocon_hf.pipeline.data import real_qa_rows

    first = list(vocabulary_takes(2, seed=5))
    again = list(vocabulary_takes(2, seed=5))
    assert [t[0] for t in first] == [t[0] for t in again] and len(first) == 2 * len(VOCABULARY_KINDS)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    rows = [{"motion_path": f"{clip_id}.npy", "dataset": "vocabulary", **facts} for clip_id, _, facts in first]
    questions = real_qa_rows(rows, per_fact=1, seed=0)
    turn = [q for q in questions if "turn" in q["question"] and "left or right" in q["question"].lower()]
    assert {q["answer"] for q in turn} == {"left", "right"}
    raised = [q for q in questions if q["motion"].startswith("vocab_raise-both") and q["answer"] == "both hands"]
    assert raised, "no body-part question answered 'both hands'"
    assert any(w in q["question"] for q in questions for w in VOCABULARY_ACTION_WORDS if "Pick" in q["question"]
               or "Choose" in q["question"] or "Which of these" in q["question"] or "Is the person doing" in q["question"])


def test_the_vocabulary_line_is_reported_apart_from_the_real_lines():
    from humocon_hf.pipeline.data import heldout_real_questions
    from humocon_hf.pipeline.reporting import EXTRA_LINES, extra_line_summary, format_real_lines

    rows = [{"id": clip_id, "motion_path": f"{clip_id}.npy", "dataset": "vocabulary", **facts}
            for clip_id, _, facts in vocabulary_takes(1, seed=0, split="heldout")]
    assert all(r["id"].startswith("vocab_heldout_") for r in rows)
    questions = heldout_real_questions(rows)
    run = [{"id": q["id"], "query_type": q["query_type"], "prediction": q["answer"] if i % 2 else "forward",
            "answer": q["answer"], "correct": bool(i % 2)} for i, q in enumerate(questions)]
    evaluation = {"vocabulary_model": {"predictions": run}, "vocabulary_questions": questions}
    summary = extra_line_summary([evaluation], "vocabulary")
    assert set(summary["datasets"]) == {"vocabulary", "all"} and 0 < summary["options_compliance"] < 1
    title = EXTRA_LINES["vocabulary"][1]
    table = format_real_lines(summary, title=title)
    assert table.startswith(f"| {title} |") and "All real" not in table
    assert f"procedural, other people), {len(rows)} clips" in table
    assert extra_line_summary([{"real_model": {}}], "vocabulary") is None

"""Questions about real mocap: the facts each labelled source gives (HDM05 file names, Bandai labels + the side read
from the motion), trained phrasings vs paraphrases, option questions, held-out groups, and the real-lines summary."""

from __future__ import annotations

import numpy as np
import pytest

from humocon_hf.data.augmentation import mirror_text
from humocon_hf.data.real_motion_qa import (
    _ACTION_OPTION_Q,
    _ACTION_Q,
    _BODY_PART_Q,
    _DIRECTION_Q,
    _SIDE_OPTION_Q,
    _TURN_OPTION_Q,
    _VEER_OPTION_Q,
    HDM05_ACTIONS,
    answer_in_options,
    infer_active_side,
    load_hdm05,
    real_questions,
    resolve_sided_part,
)
from humocon_hf.processing.smpl22 import mirror_joints

_KICK = {"action": "kick", "body_part": "left leg", "direction": None, "turn": None, "veer": None,
         "caption": "a person kicks to the front with the left leg"}


def test_paraphrases_never_appear_in_training_templates():
    for trained, paraphrase in (_ACTION_Q, _BODY_PART_Q, _DIRECTION_Q, _SIDE_OPTION_Q, _TURN_OPTION_Q, _VEER_OPTION_Q,
                                _ACTION_OPTION_Q):
        assert not set(trained) & set(paraphrase)
    rng = np.random.default_rng(0)
    trained = {q["question"] for _ in range(20) for q in real_questions(_KICK, "trained", rng, per_type=3)}
    para = {q["question"] for _ in range(20) for q in real_questions(_KICK, "paraphrase", rng, per_type=3)}
    assert trained and para and not trained & para


def test_option_questions_are_answered_by_one_of_their_options():
    rng = np.random.default_rng(1)
    for phrasing in ("trained", "paraphrase"):
        for row in (_KICK, {"action": "jog", "turn": "left"}, {"action": "walk", "veer": "right"}):
            qs = real_questions(row, phrasing, rng, per_type=2)
            offered = [q for q in qs if q["options"]]
            assert offered
            for q in offered:
                assert answer_in_options(q["answer"], q["options"]), q
                for option in q["options"]:
                    assert option.split("/")[0].split()[0] in q["question"].lower() or option in q["question"]
    assert answer_in_options("Left.", ["left", "right"]) and not answer_in_options("forward", ["left", "right"])
    assert answer_in_options("the left leg", ["left leg", "right leg"])
    assert answer_in_options("right", ["left hand", "right hand"])  # names one option
    assert not answer_in_options("hand", ["left hand", "right hand"])  # names both


def test_option_answers_are_scored_on_the_option_they_name():
    from humocon_hf.evaluation import evaluate_motion_qa, resolve_option

    assert resolve_option("Right.", ["left hand", "right hand"]) == "right hand"
    assert resolve_option("the right hand", ["left", "right"]) == "right"
    assert resolve_option("left or right", ["left", "right"]) is None
    assert resolve_option("kick", ["walk", "kick", "squat"]) == "kick" and resolve_option("", ["a"]) is None
    rows = [{"id": "1", "question": "Left hand or right hand?", "answer": "right hand",
             "options": ["left hand", "right hand"], "query_type": "body_part"},
            {"id": "2", "question": "What body part?", "answer": "right hand", "options": None,
             "query_type": "body_part"}]
    result = evaluate_motion_qa(lambda batch: ["right" for _ in batch], rows, batch_size=2)
    assert [p["correct"] for p in result["predictions"]] == [True, False]  # "right" names an option only in row 1
    assert result["predictions"][0]["chosen_option"] == "right hand" and "chosen_option" not in result["predictions"][1]
    assert result["metrics"]["accuracy"] == 0.5


def test_facts_give_their_question_types():
    rng = np.random.default_rng(2)
    qs = real_questions(_KICK, "trained", rng, per_type=1, captions=True)
    types = [q["query_type"] for q in qs]
    assert types.count("action") == 2 and types.count("body_part") == 2 and types.count("caption") == 1
    assert {q["answer"] for q in qs if q["query_type"] == "body_part"} <= {"left leg", "left"}
    turn = real_questions({"action": "jog", "turn": "left"}, "trained", rng)
    assert [q["answer"] for q in turn if q["query_type"] == "direction"] == ["left"]
    assert real_questions({"action": None}, "trained", rng) == []
    with pytest.raises(ValueError, match="phrasing"):
        real_questions(_KICK, "other", rng)


def test_mirrored_questions_keep_their_answers_consistent():
    rng = np.random.default_rng(3)
    for q in real_questions(_KICK, "trained", rng, per_type=2):
        mirrored_answer = mirror_text(q["answer"])
        if q["options"]:
            assert answer_in_options(mirrored_answer, [mirror_text(o) for o in q["options"]])


@pytest.fixture(scope="module")
def hdm05(shared_data):
    folder = shared_data / "hdm05_train"
    if not folder.is_dir():
        pytest.skip("hdm05_train is not in the shared data")
    return folder


def test_hdm05_labels_come_from_the_file_names(hdm05):
    rows = load_hdm05(hdm05)
    assert len(rows) == 188 and {r["actor"] for r in rows} == {"bd", "bk", "dg"}
    assert {r["label"] for r in rows} == set(HDM05_ACTIONS)
    kicks = [r for r in rows if r["label"] == "kickLFront1Reps"]
    assert kicks and all(r["action"] == "kick" and r["body_part"] == "left leg" for r in kicks)
    grabs = [r for r in rows if r["label"] == "grabHighR"]
    assert all(r["body_part"] == "right hand" and r["action"] == "take/pick something up" for r in grabs)
    assert all(r["turn"] == "left" for r in rows if r["label"].startswith("jogLeftCircle"))
    assert all(r["source_fps"] == 120 for r in rows)


def test_side_read_from_the_motion(shared_data):
    from humocon_hf.processing.motion_io import load_motion

    data = shared_data / "bandai_namco_1" / "data"
    if not data.is_dir():
        pytest.skip("bandai_namco_1 is not in the shared data")
    bye = load_motion(sorted(data.glob("dataset-1_bye_normal_*.bvh"))[0]).joints
    assert infer_active_side(bye, "arm") == "right"  # this studio's actor waves goodbye with the right hand
    assert infer_active_side(mirror_joints(bye), "arm") == "left"
    assert resolve_sided_part("?hand", bye) == "right hand" and resolve_sided_part("both hands", bye) == "both hands"
    kick = load_motion(sorted(data.glob("dataset-1_kick_normal_*.bvh"))[0]).joints
    side = infer_active_side(kick, "leg")
    assert side in ("left", "right") and infer_active_side(mirror_joints(kick), "leg") == mirror_text(side)
    walk = load_motion(sorted(data.glob("dataset-1_walk_normal_*.bvh"))[0]).joints
    assert infer_active_side(walk, "leg") is None  # both legs alike: no side
    with pytest.raises(ValueError, match="limb"):
        infer_active_side(walk, "tail")


def test_labelled_real_takes_hold_out_actors_and_styles(shared_data):
    from humocon_hf.pipeline.data import labelled_real_takes
    from humocon_hf.recipes import DataArguments

    args = DataArguments(hdm05_dir=str(shared_data / "hdm05_train"), hdm05_holdout_actors=["dg"],
                         bandai_dir=str(shared_data / "bandai_namco_1"), bandai_holdout_styles=["old"])
    takes = labelled_real_takes(args)
    held = [t for t in takes if t["heldout"]]
    assert {(t["dataset"], t["group"]) for t in held} == {("hdm05", "dg"), ("bandai", "old")}
    assert not any(t["group"] in ("dg", "old") for t in takes if not t["heldout"])
    assert {t["dataset"] for t in takes} == {"hdm05", "bandai"}
    assert all(t["body_part"] in (None, "?hand", "?arm", "?leg", "both hands") for t in takes if t["dataset"] == "bandai")


def test_heldout_questions_pair_over_seeds_and_cover_both_phrasings():
    from humocon_hf.pipeline.data import heldout_real_questions

    rows = [{**_KICK, "id": "k1", "motion_path": "k1.npy", "dataset": "hdm05", "group": "dg"},
            {"action": "walk", "direction": "forward", "id": "w1", "motion_path": "w1.npy", "dataset": "bandai"}]
    a, b = heldout_real_questions(rows), heldout_real_questions(rows)
    assert a == b and len({q["id"] for q in a}) == len(a)
    assert {q["phrasing"] for q in a} == {"trained", "paraphrase"}
    assert sum(q["phrasing"] == "trained" for q in a) == sum(q["phrasing"] == "paraphrase" for q in a)


def test_real_lines_summary_per_dataset_with_option_compliance():
    from humocon_hf.pipeline.reporting import format_real_lines, real_lines_summary

    questions = [
        {"id": "a:trained:0", "dataset": "hdm05", "phrasing": "trained", "options": None, "query_type": "action"},
        {"id": "a:trained:1", "dataset": "hdm05", "phrasing": "trained", "options": ["left", "right"],
         "query_type": "body_part"},
        {"id": "a:paraphrase:0", "dataset": "hdm05", "phrasing": "paraphrase", "options": None, "query_type": "action"},
        {"id": "b:trained:0", "dataset": "bandai", "phrasing": "trained", "options": ["left", "right"],
         "query_type": "direction"},
        {"id": "b:paraphrase:0", "dataset": "bandai", "phrasing": "paraphrase", "options": None,
         "query_type": "action"},
    ]
    predictions = ["kick", "forward", "kick", "left", "jump"]
    truth = ["kick", "left", "kick", "left", "walk"]
    run = [{"id": q["id"], "query_type": q["query_type"], "prediction": p, "answer": t, "correct": p == t}
           for q, p, t in zip(questions, predictions, truth)]
    summary = real_lines_summary([{"real_model": {"predictions": run}, "real_questions": questions}])
    assert summary["option_questions"] == 2 and summary["options_compliance"] == 0.5  # "forward" is not an option
    hdm = summary["datasets"]["hdm05"]
    assert hdm["clips"] == 1 and hdm["trained"]["accuracy"]["model"]["mean"] == 0.5
    assert hdm["paraphrase"]["accuracy"]["model"]["mean"] == 1.0
    everything = summary["datasets"]["all"]
    assert everything["trained"]["questions"] == 3 and everything["paraphrase"]["accuracy"]["model"]["mean"] == 0.5
    assert summary["paraphrase_gap"] == pytest.approx(2 / 3 - 0.5)
    table = format_real_lines(summary)
    assert "HDM05 (held-out actors), 1 clips" in table and "50.0%" in table
    assert real_lines_summary([{"model": {}}]) is None

"""Procedural training questions that list their options (`tune.option_questions_share`)."""

import re

import pytest

from humocon_hf.data.real_motion_qa import answer_in_options
from humocon_hf.pipeline.data import LISTED_OPTION_FORMS, with_listed_options
from humocon_hf.recipes import RecipeError, TuneArguments

ACTIONS = ["walk", "jump", "throw", "kick", "take/pick something up"]
PARTS = ["left hand", "right hand", "left leg"]


def _rows(n=400):
    rows = []
    for i in range(n):
        if i % 3:
            rows.append({"id": i, "question": "What action does the person do after they sit?",
                         "answer": ACTIONS[i % len(ACTIONS)], "query_type": "action"})
        else:
            rows.append({"id": i, "question": "What body part does the person use while they throw?",
                         "answer": PARTS[(i // 3) % len(PARTS)], "query_type": "body_part"})
    return rows


def _listed(new_question: str, question: str) -> list[str] | None:
    """The options a rewritten question lists, parsed back from its form."""
    for form in LISTED_OPTION_FORMS:
        pattern = re.escape(form).replace(re.escape("{question}"), re.escape(question))
        match = re.fullmatch(pattern.replace(re.escape("{options}"), "(.+)"), new_question)
        if match:
            return match.group(1).replace(" or ", ", ").split(", ")
    return None


def test_share_of_rows_list_options_and_answer_is_among_them():
    rows = _rows()
    out = with_listed_options(rows, 0.25, seed=3)
    assert [r["id"] for r in out] == [r["id"] for r in rows]  # same rows, same order
    assert [r["answer"] for r in out] == [r["answer"] for r in rows]  # answers unchanged
    changed = [(o, r) for o, r in zip(out, rows) if o["question"] != r["question"]]
    assert 0.17 < len(changed) / len(rows) < 0.33
    for new, old in changed:
        listed = _listed(new["question"], old["question"])
        assert listed is not None and 2 <= len(listed) <= 3, new["question"]
        assert new["answer"] in listed and answer_in_options(new["answer"], listed)
        vocabulary = ACTIONS if new["query_type"] == "action" else PARTS  # distractors of the same query type
        assert set(listed) <= set(vocabulary), new["question"]
    # the answer is not always in the same place
    positions = {_listed(n["question"], o["question"]).index(n["answer"]) for n, o in changed}
    assert len(positions) >= 2


def test_no_evaluation_paraphrase_form_is_trained():
    out = with_listed_options(_rows(), 1.0, seed=0)
    assert all("Pick one" not in r["question"] for r in out)
    assert all(r["question"] != q["question"] for r, q in zip(out, _rows()))  # share 1: every row lists options


def test_zero_share_and_deterministic():
    rows = _rows(50)
    assert with_listed_options(rows, 0.0) == rows
    assert with_listed_options(rows, 0.5, seed=1) == with_listed_options(rows, 0.5, seed=1)
    assert with_listed_options(rows, 0.5, seed=1) != with_listed_options(rows, 0.5, seed=2)


def test_single_answer_query_type_is_left_alone():
    rows = [{"question": "Where?", "answer": "forward", "query_type": "direction"}] * 5
    assert with_listed_options(rows, 1.0) == rows


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_recipe_rejects_share_outside_unit_interval(share):
    with pytest.raises(RecipeError, match="option_questions_share"):
        TuneArguments(option_questions_share=share)

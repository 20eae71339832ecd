"""The question-prior baseline: the most common training answer per question, else per nearest training question."""

import json

import pytest

from humocon_hf.evaluation import evaluate_motion_qa
from humocon_hf.question_prior import QuestionPriorBaseline, question_words

TRAIN = [
    {"question": "What is the person doing?", "answer": "walk"},
    {"question": "What is the person doing?", "answer": "walk"},
    {"question": "What is the person doing?", "answer": "run"},
    {"question": "What body part does the person use while they wave?", "answer": "left hand"},
    {"question": "What body part does the person use while they wave?", "answer": "Right hand"},
    {"question": "What body part does the person use while they wave?", "answer": "right hand"},
    {"question": "What body part does the person use while they wave?", "answer": "right hand"},
    {"question": "What body part does the person use while they kick?", "answer": "left foot"},
    {"question": "Which way does the person turn, left or right?", "answer": "left"},
    {"question": "Which way does the person move?", "answer": "forward"},
    {"question": "Which way does the person move?", "answer": "forward"},
]


def test_most_common_answer_of_the_same_question_in_its_training_spelling():
    prior = QuestionPriorBaseline.fit(TRAIN)
    assert prior.answer("What is the person doing?") == "walk"
    assert prior.answer("  what is the PERSON doing ") == "walk"  # the same words
    # "right hand" three times (once capitalised): counted after normalisation, given back as most often written.
    assert prior.answer("What body part does the person use while they wave?") == "right hand"


def test_an_unseen_question_takes_the_answers_of_the_training_questions_nearest_in_words():
    prior = QuestionPriorBaseline.fit(TRAIN)
    # A paraphrase of the body-part questions: "wave" one is nearest (more words in common than the "kick" one).
    assert prior.answer("Which body part does the person use while they wave?") == "right hand"
    assert prior.answer("What body part does the person kick with?") == "left foot"
    # Nearest to "which way does the person move?" (4 of 6 words): "forward".
    assert prior.answer("Which way does the person walk?") == "forward"
    # No word in common: the most common answer of all (ties broken alphabetically, so runs repeat).
    assert prior.answer("Describe it.") == "right hand"
    assert question_words("  What body-part, LEFT?") == "what body part left"


def test_a_question_that_lists_options_gets_one_of_them():
    prior = QuestionPriorBaseline.fit(TRAIN)
    # Seen with "left" once: "left"; the options are listed in the other order, the answer keeps their spelling.
    assert prior.answer("Which way does the person turn, right or left?") == "left"
    # An unseen question: the option answered most often to any question ("right hand" 4 times, "left hand" once).
    assert prior.answer("Which hand is raised, the left hand or the right hand?") == "right hand"
    # Neither option was ever an answer: the first one listed.
    assert prior.answer("Does the person bow or squat?") == "bow"


def test_answers_evaluation_rows_and_conversations(tmp_path):
    prior = QuestionPriorBaseline.fit(TRAIN)
    rows = [{"question": "What is the person doing?", "answer": "walk", "query_type": "action"},
            {"question": "Which way does the person move?", "answer": "backward", "query_type": "direction"}]
    result = evaluate_motion_qa(prior, rows, batch_size=8, model_name="prior")
    assert result["metrics"]["accuracy"] == 0.5
    conversation = [{"role": "user", "content": [{"type": "motion"}, {"type": "text", "text": "What is the person doing?"}]}]
    assert prior([{"conversations": conversation}]) == ["walk"]
    # Saved and loaded: the same answers.
    prior.save(tmp_path / "prior.json")
    loaded = QuestionPriorBaseline.load(tmp_path / "prior.json")
    questions = [r["question"] for r in TRAIN] + ["Which way is the person facing?", "Describe it.", "Left or right?"]
    assert [loaded.answer(q) for q in questions] == [prior.answer(q) for q in questions]


def test_bad_training_rows_and_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="at least one training question"):
        QuestionPriorBaseline.fit([])
    with pytest.raises(ValueError, match="training row 1 has no answer"):
        QuestionPriorBaseline.fit([TRAIN[0], {"question": "What?", "answer": ""}])
    with pytest.raises(ValueError, match="needs a 'question' string"):
        QuestionPriorBaseline.fit([{"answer": "walk"}])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"levels": [], "counts": {}}))
    with pytest.raises(ValueError, match="not a question-prior table"):
        QuestionPriorBaseline.load(bad)

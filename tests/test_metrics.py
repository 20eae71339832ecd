"""BABEL-QA accuracy (hand-computed fixture, normalisation, synonyms) and the LLM-judge protocol."""

import json

import evaluate
import pytest

from humocon_hf.metrics.babel_qa_accuracy import METRIC_PATH as BABEL_METRIC_PATH
from humocon_hf.metrics.babel_qa_accuracy import (
    compute_babel_qa_accuracy,
    normalize_answer,
)
from humocon_hf.metrics.llm_judge import METRIC_PATH as JUDGE_METRIC_PATH
from humocon_hf.metrics.llm_judge import (
    PREFILL,
    RETRY_REMINDER,
    LLMJudge,
    parse_judge_reply,
)

# 10 examples: (prediction, reference, query type, relation type, correct by hand?)
FIXTURE = [
    ("Walking", "walk", "action", "before", True),
    ("run", "jog", "action", "after", False),
    ("sits down", "sit", "action", "none", True),
    ("kick", "throw", "action", "in between", False),
    ("Backward.", "backwards", "direction", "before", True),
    ("left", "right", "direction", "after", False),
    ("forwards", "forward", "direction", "none", True),
    ("hand left", "left hand", "body_part", "before", True),
    ("right leg", "right foot", "body_part", "after", False),
    ("Left feet", "left foot", "body_part", "in between", True),
]
# Hand computation from the last column:
#   overall    : rows 0,2,4,6,7,9 correct          -> 6/10 = 0.6
#   action     : rows 0-3, correct 0,2             -> 2/4  = 0.5
#   direction  : rows 4-6, correct 4,6             -> 2/3
#   body_part  : rows 7-9, correct 7,9             -> 2/3
#   before     : rows 0,4,7, all correct           -> 3/3  = 1.0
#   after      : rows 1,5,8, none correct          -> 0/3  = 0.0
#   in between : rows 3,9, correct 9               -> 1/2  = 0.5
#   none       : rows 2,6, both correct            -> 2/2  = 1.0
#   other      : in between + none = rows 2,3,6,9  -> 3/4  = 0.75
EXPECTED = {
    "accuracy": 0.6, "action": 0.5, "direction": 2 / 3, "body_part": 2 / 3,
    "before": 1.0, "after": 0.0, "in_between": 0.5, "none": 1.0, "other": 0.75,
}


def _columns():
    preds, refs, qts, rts, _ = zip(*FIXTURE)
    return list(preds), list(refs), list(qts), list(rts)


def test_babel_accuracy_matches_hand_computation_via_evaluate_load():
    preds, refs, qts, rts = _columns()
    metric = evaluate.load(BABEL_METRIC_PATH)
    out = metric.compute(predictions=preds, references=refs, query_types=qts, relation_types=rts)
    for key, value in EXPECTED.items():
        assert out[key] == pytest.approx(value), key
    assert out["counts"] == {"total": 10, "action": 4, "direction": 3, "body_part": 3, "before": 3,
                             "after": 3, "in_between": 2, "none": 2, "other": 4}
    # the per-example flags of the fixture agree with the normaliser
    assert [normalize_answer(p) == normalize_answer(r) for p, r, *_ in FIXTURE] == [c for *_, c in FIXTURE]


def test_babel_accuracy_without_types_and_empty_groups():
    out = compute_babel_qa_accuracy(["walk", "jump"], ["walk", "run"])
    assert out == {"accuracy": 0.5, "counts": {"total": 2}}
    out = compute_babel_qa_accuracy(["walk"], ["walk"], ["action"], ["before"])
    assert out["direction"] is None and out["after"] is None and out["counts"]["direction"] == 0


def test_babel_accuracy_input_errors():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        compute_babel_qa_accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="query_types has 1 entries but there are 2 predictions"):
        compute_babel_qa_accuracy(["a", "b"], ["a", "b"], ["action"])
    with pytest.raises(ValueError, match="unknown query type 'pose'"):
        compute_babel_qa_accuracy(["a"], ["a"], ["pose"])
    with pytest.raises(ValueError, match="unknown relation type 'during'"):
        compute_babel_qa_accuracy(["a"], ["a"], None, ["during"])
    with pytest.raises(ValueError, match="no predictions"):
        compute_babel_qa_accuracy([], [])


@pytest.mark.parametrize(
    "variant, canonical",
    [
        ("Backward", "backwards"), ("backwards.", "backwards"), ("The person moves backward.", "backwards"),
        ("jogging", "jog"), ("He is jogging", "jog"), ("sit down", "sit"), ("Sitting", "sit"),
        ("stands up", "stand up"), ("get up", "stand up"), ("jumping jack", "jumping jacks"),
        ("hand left", "left hand"), ("Left Hands", "left hand"), ("their right arm", "right arm"),
        ("the person's left foot", "left foot"), ("legs right", "right leg"), ("to the left", "left"),
        ("forwards", "forward"), ("pick something up", "take/pick something up"),
        ("picks up", "take/pick something up"), ("put something down", "place something"),
        ("Answer: kneel", "kneel"), ("crouching down", "crouch"), ("a cartwheel", "cartwheel"),
        ("Walk. Then the person turns.", "walk"), ("jumping", "jump"),
    ],
)
def test_normalisation_and_synonyms(variant, canonical):
    assert normalize_answer(variant) == canonical


@pytest.mark.parametrize(
    "a, b",
    [("left hand", "right hand"), ("left hand", "left arm"), ("walk", "run"), ("jump", "jumping jacks"),
     ("sit", "stand up"), ("forward", "backwards"), ("take/pick something up", "place something")],
)
def test_distinct_answers_stay_distinct(a, b):
    assert normalize_answer(a) != normalize_answer(b)


def test_answer_vocabulary_is_fixed_by_normalisation(shared_data):
    vocab = json.loads((shared_data / "babel_qa" / "BABELQA_answer_vocab.json").read_text())
    actions = json.loads((shared_data / "babel_qa" / "BABELQA_action_answer_vocab.json").read_text())
    words = set(vocab) | set(actions)
    assert len(vocab) == 32
    assert {w: normalize_answer(w) for w in words} == {w: w for w in words}
    assert len({normalize_answer(w) for w in words}) == len(words)


# ------------------------------------------------------------------------------------------- LLM judge


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("{'pred': 'yes', 'score': 4}", ("yes", 4.0)),
        ('{"pred": "no", "score": 1}', ("no", 1.0)),
        ("Sure! {'pred': 'no', 'score': '2'} is my verdict", ("no", 2.0)),
        ("{'Pred': 'Yes', 'Score': 5}", ("yes", 5.0)),
        ("{'pred': 'yes', 'score': 3.5}", ("yes", 3.5)),
        ("pred: yes, score = 4", ("yes", 4.0)),
        ("{'pred': 'no' 'score': 0", ("no", 0.0)),  # broken dict syntax
        ("Yes, the prediction matches. Score: 4", ("yes", 4.0)),
        ("No. I would give it 1/5.", ("no", 1.0)),
        ("", None),
        ("The dictionary is a Python dictionary.", None),
        ("{'pred': 'maybe', 'score': 3}", None),
        ("{'pred': 'yes', 'score': 9}", None),  # score out of 0-5
        ("Yes it is correct", None),  # no score
        ("score: 4", None),  # no verdict
    ],
)
def test_parse_judge_reply(reply, expected):
    assert parse_judge_reply(reply) == expected


class ScriptedJudge:
    """Stand-in judge LLM: returns scripted replies in order and records the prompts it saw."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, messages):
        self.calls.append(messages)
        return self.replies.pop(0) if self.replies else "no idea"


def test_judge_retries_change_the_prompt_and_then_succeed():
    script = ScriptedJudge(["hmm", "The answer looks fine", "yes', 'score': 4}"])
    verdict = LLMJudge(generate_fn=script, max_retries=3).judge("what is he doing", "running", "he runs")
    assert (verdict.pred, verdict.score, verdict.parsed, verdict.attempts) == ("yes", 4.0, True, 3)
    assert verdict.raw == PREFILL + "yes', 'score': 4}"
    first, second, third = script.calls
    assert RETRY_REMINDER not in first[-1]["content"] and RETRY_REMINDER in second[-1]["content"]
    assert third[-1] == {"role": "assistant", "content": PREFILL}
    assert "Predicted answer: he runs" in first[1]["content"]


def test_judge_prefill_from_the_first_attempt():
    script = ScriptedJudge(["yes', 'score': 5}"])
    verdict = LLMJudge(generate_fn=script, prefill_from_attempt=0).judge("q", "a", "a")
    assert (verdict.pred, verdict.score, verdict.attempts) == ("yes", 5.0, 1)
    assert script.calls[0][-1] == {"role": "assistant", "content": PREFILL}
    assert RETRY_REMINDER not in script.calls[0][1]["content"]
    with pytest.raises(ValueError, match="prefill_from_attempt"):
        LLMJudge(generate_fn=script, prefill_from_attempt=-1)


@pytest.mark.parametrize("max_retries", [0, 3])
def test_judge_retries_are_bounded_with_counted_fallback(max_retries):
    script = ScriptedJudge(["garbage"] * 10)
    judge = LLMJudge(generate_fn=script, max_retries=max_retries)
    verdict = judge.judge("q", "a", "p")
    assert len(script.calls) == max_retries + 1
    assert (verdict.pred, verdict.score, verdict.parsed) == ("no", 0.0, False)


def test_judge_aggregate_hand_computed():
    # example 1: yes/4; example 2: no/1; example 3: unparsable twice -> fallback no/0 (max_retries=1)
    script = ScriptedJudge(["{'pred': 'yes', 'score': 4}", "No, score: 1", "???", "???"])
    out = LLMJudge(generate_fn=script, max_retries=1).evaluate(["q1", "q2", "q3"], ["a1", "a2", "a3"], ["p1", "p2", "p3"])
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["score"] == pytest.approx((4 + 1 + 0) / 3)
    assert (out["num_examples"], out["num_fallbacks"], out["num_retries"]) == (3, 1, 1)


def test_judge_input_errors():
    with pytest.raises(ValueError, match="needs a model and its tokenizer"):
        LLMJudge()
    with pytest.raises(ValueError, match="max_retries must be a non-negative integer"):
        LLMJudge(generate_fn=lambda m: "", max_retries=-1)
    judge = LLMJudge(generate_fn=lambda m: "{'pred': 'yes', 'score': 5}")
    with pytest.raises(ValueError, match="2 questions, 2 answers and 1 predictions"):
        judge.evaluate(["a", "b"], ["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a string"):
        judge.evaluate(["a"], ["a"], [None])


def test_llm_judge_evaluate_module_with_a_plain_function():
    metric = evaluate.load(JUDGE_METRIC_PATH)
    replies = iter(["{'pred': 'yes', 'score': 5}", "{'pred': 'no', 'score': 2}"])
    out = metric.compute(predictions=["red", "two"], references=["red", "three"], questions=["color?", "how many?"],
                         judge=lambda messages: next(replies))
    assert out["accuracy"] == 0.5 and out["score"] == 3.5 and out["num_fallbacks"] == 0
    with pytest.raises(ValueError, match="needs `questions=`"):
        metric.compute(predictions=["a"], references=["a"], judge=lambda m: "")


class _CharTokenizer:
    """Stand-in tokenizer: one id per character; its chat template has no system role (like Gemma's)."""

    chat_template = "no-system"
    pad_token_id = None
    eos_token_id = 0

    def __init__(self):
        self.prompts = []

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, continue_final_message=False):
        if any(m["role"] == "system" for m in messages):
            raise ValueError("System role not supported")
        prompt = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        if add_generation_prompt:
            prompt += "<assistant>"
        self.prompts.append(prompt)
        return prompt

    def __call__(self, text, return_tensors=None, add_special_tokens=False):
        import torch

        return {"input_ids": torch.tensor([[ord(c) for c in text]])}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(int(i)) for i in ids)


class _ScriptedModel:
    """Stand-in causal LM: completes a pre-filled verdict, rambles otherwise; checks the decoding is greedy."""

    def generate(self, input_ids, do_sample, max_new_tokens, pad_token_id, stopping_criteria, **kwargs):
        import torch

        assert do_sample is False and pad_token_id == 0
        prompt = "".join(chr(int(i)) for i in input_ids[0])
        reply = "no', 'score': 2}" if prompt.endswith(PREFILL) else "I am not sure what to say."
        return torch.cat([input_ids, torch.tensor([[ord(c) for c in reply]])], dim=1)


def test_judge_model_path_folds_system_prompt_and_continues_prefill():
    tokenizer = _CharTokenizer()
    judge = LLMJudge(_ScriptedModel(), tokenizer, max_retries=2)
    verdict = judge.judge("how many dogs", "2", "three")
    # attempts 0 and 1 reply without the dict opening and fail to parse; attempt 2 continues the pre-fill
    assert (verdict.pred, verdict.score, verdict.attempts) == ("no", 2.0, 3)
    assert verdict.raw == PREFILL + "no', 'score': 2}"
    assert len(tokenizer.prompts) == 3
    assert tokenizer.prompts[0].startswith("<user>You grade answers") and "Predicted answer: three" in tokenizer.prompts[0]
    assert tokenizer.prompts[2].endswith("<assistant>" + PREFILL)


@pytest.mark.slow
def test_judge_with_the_real_local_llm(smollm2_gguf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = smollm2_gguf
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf).eval()
    judge = LLMJudge(model, tokenizer, max_retries=3, max_new_tokens=24)
    verdict = judge.judge("what is the man doing", "running", "he is running")
    assert 1 <= verdict.attempts <= 4
    # greedy decoding: asking again with the last attempt's prompt gives the same reply
    assert judge._generate(judge.messages("what is the man doing", "running", "he is running", verdict.attempts - 1)) == verdict.raw
    if verdict.parsed:
        assert verdict.pred in ("yes", "no") and 0 <= verdict.score <= 5
        assert parse_judge_reply(verdict.raw) == (verdict.pred, verdict.score)
    else:
        assert (verdict.pred, verdict.score) == ("no", 0.0)

"""A question that lists its options is answered with one of them (issue 28: the tuned model answered "forward" to
"Which way does the person turn, left or right?"): `listed_options` reads them, `AnswerOptionsLogitsProcessor`
enforces them in `generate`, and `humocon ask`, the Space and the evaluation use it."""

import pytest
import torch
from humocon_tiny import build_tiny_checkpoint, walk_joints

from humocon_hf.inference import load_checkpoint, make_answer_fn, stream_answer, user_message
from humocon_hf.processing.answer_options import AnswerOptionsLogitsProcessor, listed_options
from humocon_hf.recipes import ModelArguments


@pytest.mark.parametrize("question, options", [
    # the real-motion questions' own forms (data/real_motion_qa.py) ...
    ("Which way does the person turn, left or right?", ["left", "right"]),
    ("Left or right: which way is the turn?", ["left", "right"]),
    ("Is the person turning to the left or to the right?", ["left", "right"]),
    ("Which hand, the left hand or the right hand?", ["left hand", "right hand"]),
    ("Does the person use the left leg or the right leg?", ["left leg", "right leg"]),
    ("Which of these does the person do: walk, run or jump?", ["walk", "run", "jump"]),
    ("walk, run or jump: which one is the person doing?", ["walk", "run", "jump"]),
    ("Pick one: walk, run or jump. What is the person doing?", ["walk", "run", "jump"]),
    # ... and others a user writes
    ("What is the person doing? Options: wave, kick, or throw.", ["wave", "kick", "throw"]),
    ("Choose from kick or punch. What does the person do?", ["kick", "punch"]),
    ("Is the person doing walk, run or jump?", ["walk", "run", "jump"]),
    ("Which body part moves: left arm, right arm or both arms?", ["left arm", "right arm", "both arms"]),
    ("Does the person squat or jump, or neither?", ["squat", "jump", "neither"]),
    ("Pick one: take/pick something up, crawl or lie down.", ["take/pick something up", "crawl", "lie down"]),
    # where the first option starts is ambiguous, every reading is offered
    ("Does the person turn left or right?", ["left", "turn left", "right"]),
    ("Does the person pick up or throw?", ["up", "pick up", "throw"]),
    # no options
    ("What is the person doing?", None),
    ("Describe the motion.", None),
    ("Is the person walking?", None),
    ("Does the person wave with the left or the right hand?", None),  # "or" inside a phrase: not a list
])
def test_listed_options(question, options):
    assert listed_options(question) == options


def test_listed_options_rejects_a_non_string():
    with pytest.raises(TypeError, match="question must be a string"):
        listed_options(["left or right?"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, smollm2_tokenizer_dir):
    folder = build_tiny_checkpoint(tmp_path_factory.mktemp("options"), smollm2_tokenizer_dir)
    return load_checkpoint(str(folder), device="cpu")


def _batch(processor, questions):
    conversations = [[user_message(q, walk_joints(30, seed=i))] for i, q in enumerate(questions)]
    previous = processor.tokenizer.padding_side
    processor.tokenizer.padding_side = "left"
    try:
        return processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                             return_dict=True, return_tensors="pt")
    finally:
        processor.tokenizer.padding_side = previous


def _generate(model, processor, inputs, **kwargs):
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=False, max_new_tokens=6,
                             pad_token_id=processor.tokenizer.pad_token_id, **kwargs)
    return processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_generate_keeps_each_row_to_its_options_and_leaves_free_rows_alone(tiny):
    model, processor, _ = tiny
    questions = ["Which hand, the left hand or the right hand?", "What is the person doing?",
                 "Which of these: walk, jump, or pick up?"]
    inputs = _batch(processor, questions)
    free = _generate(model, processor, inputs)
    options = [["left hand", "right hand", "left"], None, ["walk", "jump", "pick up"]]
    kept = _generate(model, processor, inputs, **processor.answer_options_kwargs(inputs, options))
    assert kept[0] in options[0] and kept[2] in options[2]
    assert kept[1] == free[1]  # a row without options generates as without the processor
    assert free[0] not in options[0]  # the random tiny model, left free, answers outside them (what is fixed)
    assert processor.answer_options_kwargs(inputs, [None, None, None]) == {}


def test_answer_options_kwargs_checks_its_input(tiny):
    model, processor, _ = tiny
    inputs = _batch(processor, ["Left or right?", "Walk or run?"])
    with pytest.raises(ValueError, match=r"one entry .* per row of input_ids \(2\), got 1"):
        processor.answer_options_kwargs(inputs, [["left", "right"]])
    with pytest.raises(ValueError, match="options of row 1: expected at least one non-empty option"):
        processor.answer_options_kwargs(inputs, [["left", "right"], [" "]])
    with pytest.raises(ValueError, match="end_token_ids"):
        AnswerOptionsLogitsProcessor(processor.tokenizer, [["a"]], prompt_length=3, end_token_ids=[])


def test_the_allowed_tokens_follow_the_options_then_the_end_of_the_turn(tiny):
    _, processor, _ = tiny
    tok = processor.tokenizer
    lp = AnswerOptionsLogitsProcessor(tok, [["left", "left hand"], None], prompt_length=0, end_token_ids=[2],
                                      pad_token_id=2)
    left = tok("left", add_special_tokens=False)["input_ids"]
    hand = tok("left hand", add_special_tokens=False)["input_ids"][len(left):]
    assert lp.allowed_tokens(0, []) == left[:1]
    assert sorted(lp.allowed_tokens(0, left)) == sorted(hand[:1] + [2])  # "left" may end or go on to "left hand"
    assert lp.allowed_tokens(0, left + hand) == [2]
    assert lp.allowed_tokens(0, left + [2, 2]) == [2]  # finished: padding
    assert lp.allowed_tokens(1, [5, 6]) is None
    scores = torch.zeros(2, len(tok))
    out = lp(torch.tensor([left, left]), scores)
    assert torch.isinf(out[0]).sum() == len(tok) - 2 and not torch.isinf(out[1]).any()


def test_stream_answer_reads_the_options_from_the_question(tiny):
    model, processor, _ = tiny
    joints = walk_joints(30)
    question = "Is the person turning to the left or to the right?"
    conversation = [user_message(question, joints)]
    auto = "".join(stream_answer(model, processor, conversation, max_new_tokens=6)).strip()
    free = "".join(stream_answer(model, processor, conversation, max_new_tokens=6, options=None)).strip()
    given = "".join(stream_answer(model, processor, conversation, max_new_tokens=6, options=["jump", "squat"])).strip()
    assert auto in ("left", "right") and free not in ("left", "right") and given in ("jump", "squat")
    with pytest.raises(ValueError, match="options must be a list of answers, None or 'auto'"):
        list(stream_answer(model, processor, conversation, options="left"))


def test_make_answer_fn_answers_a_row_that_lists_options_with_one_of_them(tiny):
    model, processor, _ = tiny
    rows = [{"question": "Left or right: which hand moves?", "options": ["left", "right"], "joints": walk_joints(30)},
            {"question": "What is the person doing?", "options": None, "joints": walk_joints(30, seed=1)}]
    args = ModelArguments(max_length=256, system_prompt=None)
    kept = make_answer_fn(model, processor, args, 6, with_motion=True)(rows)
    free = make_answer_fn(model, processor, args, 6, with_motion=True, constrain_options=False)(rows)
    assert kept[0] in ("left", "right") and free[0] not in ("left", "right")
    assert kept[1] == free[1]


def test_the_readmes_checkpoint_snippets_run(tmp_path, smollm2_tokenizer_dir, shared_data):
    """The README's "Using a checkpoint" Python blocks, run as written on a tiny checkpoint (its path swapped): the
    answer to a question, then the answer kept to the options a question lists."""
    import re
    from pathlib import Path

    bvh = shared_data / "cmu_bvh" / "09_01.bvh"
    if not bvh.is_file():
        pytest.skip(f"{bvh} not present")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Using a checkpoint"):readme.index("## Fine-tuning a checkpoint")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    folder = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    scope: dict = {}
    for block in blocks:
        code = block.replace('"humocon_demo"', repr(str(folder))).replace('"../shared/data/cmu_bvh/09_01.bvh"',
                                                                         repr(str(bvh)))
        exec(compile(code, "README.md", "exec"), scope)
    assert scope["options"] == ["left", "right"]
    new = scope["answer"][:, scope["inputs"]["input_ids"].shape[1]:]
    text = scope["processor"].batch_decode(new, skip_special_tokens=True)[0].strip()
    assert text in ("left", "right")

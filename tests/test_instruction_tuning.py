"""Stages 2 and 3: the QA collator, projector-only training, LoRA instruction tuning, Accelerate."""

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import accelerate_launch_command
from humocon_tiny import tiny_config, tiny_text_config

from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
from humocon_hf.training.instruction_tuning import (
    DEFAULT_PROMPTS,
    HuMoConQACollator,
    InstructionTuningTrainer,
    ModalityTranslationTrainer,
    apply_lora,
    finetune_with_paper_recipe,
    freeze_for_modality_translation,
    load_adapter,
    merge_adapter,
    paper_recipes,
    trainable_parameter_names,
)

torch.set_num_threads(1)
REPO_ROOT = Path(__file__).resolve().parents[1]


# -------------------------------------------------------------------------------------------- fixtures


def _write_motion(path: Path, frames: int, direction: float, seed: int) -> str:
    """A synthetic (T, 22, 3) motion: a random rest pose translating along +-X."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.15, size=(1, 22, 3)) + np.array([0.0, 1.0, 0.0])
    pose[0, :, 1] = np.abs(pose[0, :, 1])
    t = np.linspace(0.0, 1.0, frames)[:, None, None]
    joints = pose + t * np.array([direction, 0.0, 0.0])
    np.save(path, joints.astype(np.float32))
    return str(path)


def _write_video(path: Path, frames: int, seed: int, size: int = 48) -> str:
    import cv2

    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (size, size)
    )
    for i in range(frames):
        frame = np.full((size, size, 3), (i * 20 + seed * 40) % 255, np.uint8)
        frame[rng.integers(0, size, 10), rng.integers(0, size, 10)] = 255
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def processor(smollm2_tokenizer_dir):
    from humocon_tiny import IMAGE_SIZE, NUM_KEY_FRAMES
    from transformers import AutoTokenizer

    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    config = tiny_config()
    return MotionVideoProcessor(
        tokenizer,
        MotionFeatureExtractor(),
        HuMoConVideoProcessor(num_frames=NUM_KEY_FRAMES, size=IMAGE_SIZE),
        motion_token_stride=config.motion_token_stride,
        video_tokens_per_frame=config.video_tokens_per_frame,
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa-media")
    return {
        "walk_left": _write_motion(folder / "walk_left.npy", 12, -1.0, 0),
        "walk_right": _write_motion(folder / "walk_right.npy", 16, 1.0, 1),
        "jump": _write_motion(folder / "jump.npy", 9, 0.0, 2),
        "video_a": _write_video(folder / "a.mp4", 6, 0),
        "video_b": _write_video(folder / "b.mp4", 8, 1),
    }


@pytest.fixture(scope="module")
def qa_dataset(media):
    from datasets import Dataset

    rows = [
        {
            "motion": media["walk_left"],
            "video": None,
            "question": "Which way does the person walk?",
            "answer": "To the left.",
            "conversations": None,
        },
        {
            "motion": media["walk_right"],
            "video": None,
            "question": "Which way does the person walk?",
            "answer": "To the right.",
            "conversations": None,
        },
        {
            "motion": None,
            "video": media["video_a"],
            "question": "What happens in the video?",
            "answer": "The scene gets brighter.",
            "conversations": None,
        },
        {
            "motion": media["jump"],
            "video": media["video_b"],
            "question": None,
            "answer": "A jump.",
            "conversations": None,
        },
        {
            "motion": media["walk_left"],
            "video": None,
            "question": None,
            "answer": None,
            "conversations": [
                {"role": "user", "content": "Look: <motion> Is the person moving?"},
                {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "Which way?"},
                {"role": "assistant", "content": "Left."},
            ],
        },
        {
            "motion": None,
            "video": None,
            "question": "Say hello.",
            "answer": "Hello.",
            "conversations": None,
        },
    ]
    return Dataset.from_list(rows)


def _model(processor, seed=0):
    torch.manual_seed(seed)
    config = tiny_config(
        text_config=tiny_text_config(vocab_size=len(processor.tokenizer)),
        motion_token_id=processor.motion_token_id,
        video_token_id=processor.video_token_id,
    )
    return HuMoConForCausalLM(config)


def _args(tmp_path, **kwargs):
    from transformers import TrainingArguments

    defaults = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 3,
        "learning_rate": 3e-3,
        "max_steps": 4,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "seed": 0,
        "disable_tqdm": True,
    }
    defaults.update(kwargs)
    return TrainingArguments(**defaults)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _mean_loss(model, collator, dataset):
    model.eval()
    with torch.no_grad():
        batch = collator([dataset[i] for i in range(len(dataset))])
        return float(model(**batch).loss)


# ------------------------------------------------------------------------------------------- collator


def test_collator_builds_answer_only_labels(processor, qa_dataset):
    collator = HuMoConQACollator(processor)
    batch = collator([qa_dataset[i] for i in range(len(qa_dataset))])
    assert batch["motion_values"].shape[0] == 4  # rows 0, 1, 3, 4 carry a motion
    assert batch["pixel_values_videos"].shape[0] == 2
    tok = processor.tokenizer
    for row, answers in (
        (0, ["To the left."]),
        (4, ["Yes.", "Left."]),
        (5, ["Hello."]),
    ):
        learned = tok.decode([t for t in batch["labels"][row].tolist() if t != -100])
        for answer in answers:
            assert answer in learned
        assert "Which way" not in learned and "Say hello" not in learned
    # Default prompt for a caption-style row with both modalities.
    text = tok.decode(batch["input_ids"][3])
    assert DEFAULT_PROMPTS["both"] in text
    assert int((batch["input_ids"] == processor.motion_token_id).sum()) == sum(
        -(-int(n) // processor.motion_token_stride)
        for n in batch["motion_attention_mask"].sum(1)
    )


def test_collator_conversation_formats(processor, media):
    collator = HuMoConQACollator(processor, system_prompt="You see motions.")
    share_gpt = {
        "motion": [media["jump"]],
        "conversations": [
            {"from": "human", "value": "What is it?"},
            {"from": "gpt", "value": "A jump."},
        ],
    }
    conv = collator.row_to_conversation(share_gpt)
    assert conv[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You see motions."}],
    }
    assert conv[1]["role"] == "user" and conv[1]["content"][0] == {
        "type": "motion",
        "motion": media["jump"],
    }
    assert conv[2] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "A jump."}],
    }
    caption = collator.row_to_conversation(
        {"video": media["video_a"], "caption": "Brighter."}
    )
    assert caption[1]["content"][-1]["text"] == DEFAULT_PROMPTS["video"]
    # The humocon_hf.data loaders' schema: motion_path / video_path and plain-text conversations.
    loader_row = {
        "id": "x",
        "question": "Which way?",
        "answer": "Left.",
        "motion_path": media["walk_left"],
        "video_path": None,
        "conversations": [
            {"role": "user", "content": "Which way?"},
            {"role": "assistant", "content": "Left."},
        ],
    }
    conv = collator.row_to_conversation(loader_row)
    assert conv[1]["content"][0] == {"type": "motion", "motion": media["walk_left"]}
    assert conv[1]["content"][-1] == {"type": "text", "text": "Which way?"}


def test_empty_system_prompt_is_an_explicit_empty_system_message(processor, media):
    """`system_prompt=""` puts an empty system message in front (chat templates such as SmolLM2's insert their own
    default system prompt when there is none); None leaves the conversation to the template. Training and
    inference (`build_conversation`) agree."""
    from humocon_hf.inference import build_conversation

    row = {"motion": media["jump"], "question": "What is it?", "answer": "A jump."}
    tok = processor.tokenizer
    empty, default = HuMoConQACollator(processor, system_prompt=""), HuMoConQACollator(processor)
    assert empty.row_to_conversation(row)[0]["role"] == "system"
    assert default.row_to_conversation(row)[0]["role"] == "user"
    empty_ids, default_ids = empty([row])["input_ids"][0], default([row])["input_ids"][0]
    assert tok.decode(empty_ids).startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user")
    assert "SmolLM" in tok.decode(default_ids) and len(empty_ids) < len(default_ids)
    qa_row = {"motion_path": media["jump"], "question": "What is it?"}
    assert build_conversation(qa_row, "")[0] == {"role": "system", "content": ""}
    assert build_conversation(qa_row, None)[0]["role"] == "user"


@pytest.mark.parametrize(
    "row, message",
    [
        ({"motion": "m.npy", "question": "q"}, "needs `answer`"),
        (
            {
                "motion": None,
                "conversations": [
                    {"role": "user", "content": "<motion> hi"},
                    {"role": "assistant", "content": "x"},
                ],
            },
            "more <motion> markers",
        ),
        (
            {
                "motion": ["a.npy", "b.npy"],
                "conversations": [
                    {"role": "user", "content": "<motion> hi"},
                    {"role": "assistant", "content": "x"},
                ],
            },
            "mark all",
        ),
        ({"conversations": [{"role": "user", "content": "hi"}]}, "no assistant answer"),
        (
            {"conversations": [{"speaker": "user", "text": "hi"}]},
            "expected keys role/content",
        ),
        ({"conversations": [{"role": "robot", "content": "hi"}]}, "unknown role"),
    ],
)
def test_collator_rejects_bad_rows(processor, row, message):
    with pytest.raises(ValueError, match=message):
        HuMoConQACollator(processor).row_to_conversation(row)


def test_collator_and_loader_read_the_same_role_names(processor, tmp_path):
    """One table of role names (ShareGPT's human / gpt, Gemini's model, any case) for the custom-QA loader and the
    collator: a conversation reads the same through both."""
    from humocon_hf.data import load_custom_qa
    from humocon_hf.data.loaders import ROLE_ALIASES

    spellings = [("HUMAN", "Model"), ("user", "bot"), ("Human", "GPT")]
    for user, assistant in spellings:
        row = {"conversations": [{"from": user, "value": "What?"}, {"role": assistant, "content": "walk"}]}
        roles = [m["role"] for m in HuMoConQACollator(processor).row_to_conversation(row)]
        assert roles == ["user", "assistant"], (user, assistant)
        path = tmp_path / f"{user}.jsonl"
        np.save(tmp_path / "walk.npy", np.random.default_rng(0).normal(size=(10, 22, 3)).astype(np.float32))
        path.write_text(json.dumps({"motion": "walk.npy", "conversations": [
            {"from": user, "value": "<motion> What?"}, {"from": assistant, "value": "walk"}]}) + "\n")
        loaded = load_custom_qa(str(path))
        assert [ROLE_ALIASES[m["role"]] for m in loaded[0]["conversations"]] == ["user", "assistant"]


def test_collator_rejects_empty_batch(processor):
    with pytest.raises(ValueError, match="empty batch"):
        HuMoConQACollator(processor)([])


# --------------------------------------------------------------------------------------------- stage 2


def test_modality_translation_trains_only_projectors(processor, qa_dataset, tmp_path):
    model = _model(processor)
    model.language_model.requires_grad_(
        True
    )  # whatever the state on entry, stage 2 freezes it
    frozen_before = {
        name: _state(getattr(model, name))
        for name in ("language_model", "motion_encoder", "video_encoder")
    }
    projector_before = _state(model.motion_projector)
    collator = HuMoConQACollator(processor)
    loss_before = _mean_loss(model, collator, qa_dataset)

    trainer = ModalityTranslationTrainer(
        model=model,
        args=_args(tmp_path, max_steps=8),
        processor=processor,
        train_dataset=qa_dataset,
    )
    names = trainable_parameter_names(model)
    assert names and all(
        n.startswith(("model.motion_projector.", "model.video_projector.")) for n in names
    )
    assert len(names) == len(list(model.motion_projector.parameters())) + len(
        list(model.video_projector.parameters())
    )
    assert trainer.args.remove_unused_columns is False
    trainer.train()

    for name, before in frozen_before.items():
        after = getattr(model, name).state_dict()
        for (
            key,
            value,
        ) in (
            before.items()
        ):  # parameters and buffers (VQ codebooks, EMA statistics) untouched
            torch.testing.assert_close(
                after[key], value, rtol=0, atol=0, msg=f"{name}.{key} changed"
            )
    changed = [
        k
        for k, v in projector_before.items()
        if not torch.equal(model.motion_projector.state_dict()[k], v)
    ]
    assert changed, "the motion projector did not train"
    assert _mean_loss(model, collator, qa_dataset) < loss_before


def test_predict_returns_only_logits(processor, qa_dataset, tmp_path):
    model = _model(processor)
    trainer = ModalityTranslationTrainer(
        model=model,
        args=_args(tmp_path, per_device_eval_batch_size=6),
        processor=processor,
        eval_dataset=qa_dataset,
    )
    output = trainer.predict(qa_dataset)
    assert isinstance(
        output.predictions, np.ndarray
    )  # no cache / modality features mixed into the logits
    assert output.predictions.ndim == 3 and output.predictions.shape[0] == len(
        qa_dataset
    )
    assert output.predictions.shape[-1] == len(processor.tokenizer)
    assert np.isfinite(output.metrics["test_loss"])


def test_gradient_accumulation_matches_full_batch(processor, qa_dataset, tmp_path):
    """The loss is normalised once over the accumulated batch (num_items_in_batch), not per micro-batch."""
    results = []
    for batch, accumulation in ((4, 1), (2, 2)):
        model = _model(processor, seed=1)
        args = _args(
            tmp_path / f"acc{accumulation}",
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            optim="sgd",
            learning_rate=1.0,
            lr_scheduler_type="constant",
        )
        trainer = ModalityTranslationTrainer(
            model=model,
            args=args,
            processor=processor,
            train_dataset=qa_dataset.select(range(4)),
        )
        trainer.train()
        results.append(
            (_state(model.motion_projector), trainer.state.log_history[0]["loss"])
        )
    (full, full_loss), (accumulated, accumulated_loss) = results
    for key in full:
        torch.testing.assert_close(accumulated[key], full[key], rtol=1e-4, atol=1e-6)
    assert accumulated_loss == pytest.approx(full_loss, rel=1e-4)


def test_trainer_loss_projects_only_supervised_positions_and_equals_the_model_loss(processor, qa_dataset, tmp_path):
    """compute_loss asks the LLM for logits at answer positions only; the value and the gradients are the model's own
    full-logit loss, with and without num_items_in_batch."""
    model = _model(processor, seed=2)
    trainer = ModalityTranslationTrainer(model=model, args=_args(tmp_path), processor=processor,
                                         train_dataset=qa_dataset)  # fmt: skip
    batch = HuMoConQACollator(processor)([qa_dataset[i] for i in range(4)])
    n_items = int((batch["labels"][:, 1:] != -100).sum())
    kept = []
    handle = model.lm_head.register_forward_hook(lambda m, args, out: kept.append(out.shape[:-1]))
    for num_items in (None, torch.tensor(2 * n_items)):
        model.zero_grad()
        sparse = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items)
        sparse.backward()
        sparse_grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        extra = {} if num_items is None else {"num_items_in_batch": num_items}
        full = model(**batch, **extra).loss
        full.backward()
        torch.testing.assert_close(sparse, full, rtol=1e-5, atol=1e-6)
        assert sparse_grads
        for key, grad in sparse_grads.items():
            torch.testing.assert_close(grad, dict(model.named_parameters())[key].grad, rtol=1e-4, atol=1e-6, msg=key)
    handle.remove()
    assert kept[0] == (n_items,)  # the sparse call projected only the supervised positions
    assert kept[1] == tuple(batch["labels"].shape)  # the model's own loss projects all of them


# --------------------------------------------------------------------------------------------- stage 3


def test_instruction_tuning_lora_trains_only_adapters_and_round_trips(
    processor, qa_dataset, tmp_path
):
    model = _model(processor)
    collator = HuMoConQACollator(processor)
    loss_before = _mean_loss(model, collator, qa_dataset)
    base_before = _state(model)
    trainer = InstructionTuningTrainer(
        model=model,
        args=_args(tmp_path, max_steps=8, learning_rate=1e-2),
        processor=processor,
        train_dataset=qa_dataset,
    )
    peft_model = trainer.model
    names = trainable_parameter_names(peft_model)
    assert names and all("lora_" in n and ".language_model." in n for n in names)
    assert {n.split(".")[-4] for n in names} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert peft_model.peft_config["default"].r == 8
    trainer.train()

    # Base weights (LLM, encoders, projectors) untouched; the adapters learned.
    base_model = peft_model.get_base_model()
    after = {
        k.replace(".base_layer", ""): v
        for k, v in base_model.state_dict().items()
        if "lora_" not in k
    }
    for key, value in base_before.items():
        torch.testing.assert_close(
            after[key], value, rtol=0, atol=0, msg=f"{key} changed"
        )
    assert _mean_loss(peft_model, collator, qa_dataset) < loss_before

    # Save, reload on a fresh copy of the base model, merge.
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    batch = collator([qa_dataset[i] for i in range(len(qa_dataset))])
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(**batch).logits
    fresh = _model(processor)
    fresh.load_state_dict(base_before)
    reloaded = load_adapter(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, expected, rtol=0, atol=0)
    prompt = collator.processor.apply_chat_template(
        [
            {
                "role": "user",
                "content": [
                    {"type": "motion", "motion": qa_dataset[0]["motion"]},
                    {"type": "text", "text": "Which way?"},
                ],
            }
        ],
        tokenize=True,
        add_generation_prompt=True,
        return_dict=True,
    )
    gen = {"max_new_tokens": 4, "min_new_tokens": 4, "do_sample": False}
    with torch.no_grad():
        peft_generated = reloaded.generate(**prompt, **gen).tolist()
    merged = merge_adapter(reloaded)
    assert isinstance(merged, HuMoConForCausalLM) and not hasattr(merged, "peft_config")
    assert not any("lora_" in k for k in merged.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            merged(**batch).logits, expected, rtol=1e-4, atol=1e-4
        )
    # Generation through the peft wrapper (modality inputs reach the prompt step) matches the merged model.
    with torch.no_grad():
        assert merged.generate(**prompt, **gen).tolist() == peft_generated
    merged.save_pretrained(tmp_path / "merged")
    again = HuMoConForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(
            again(**batch).logits, merged(**batch).logits, rtol=0, atol=0
        )


def test_instruction_tuning_resumes_from_checkpoint(processor, qa_dataset, tmp_path):
    def run(out, steps, resume=None):
        trainer = InstructionTuningTrainer(
            model=_model(processor),
            args=_args(
                out,
                max_steps=4,
                save_strategy="steps",
                save_steps=2,
                learning_rate=1e-2,
            ),
            processor=processor,
            train_dataset=qa_dataset,
        )
        trainer.train(resume_from_checkpoint=resume)
        return {
            k: v.detach().clone()
            for k, v in trainer.model.named_parameters()
            if v.requires_grad
        }

    straight = run(tmp_path / "a", 4)
    checkpoint = tmp_path / "a" / "out" / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file() and (
        checkpoint / "optimizer.pt"
    ).is_file()
    resumed = run(tmp_path / "b", 4, resume=str(checkpoint))
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-5, atol=1e-6)


def test_train_projectors_trains_them_with_the_adapters_saves_resumes_and_merges(processor, qa_dataset, tmp_path):
    """tune.train_projectors: the projectors train as peft modules_to_save; checkpoints carry them, resume restores
    them and the merged checkpoint holds the trained projector (not the stage-2 one)."""

    def trainer_for(out, max_steps):
        return InstructionTuningTrainer(
            model=_model(processor),
            args=_args(out, max_steps=max_steps, save_strategy="steps", save_steps=2, learning_rate=1e-2),
            processor=processor, train_dataset=qa_dataset, train_projectors=True,
        )  # fmt: skip

    before = _state(_model(processor))
    trainer = trainer_for(tmp_path / "a", 4)
    names = trainable_parameter_names(trainer.model)
    assert any("motion_projector" in n and "modules_to_save" in n for n in names)
    assert all(("lora_" in n and ".language_model." in n) or "modules_to_save" in n for n in names)
    assert not any("encoder" in n for n in names)
    trainer.train()
    checkpoint = tmp_path / "a" / "out" / "checkpoint-2"
    from safetensors.torch import load_file

    assert any("motion_projector" in k for k in load_file(checkpoint / "adapter_model.safetensors"))
    trained = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}

    resumed = trainer_for(tmp_path / "b", 4)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for key, value in resumed.model.named_parameters():
        if value.requires_grad:
            torch.testing.assert_close(value, trained[key], rtol=1e-5, atol=1e-6, msg=key)

    merged = merge_adapter(trainer.model).state_dict()
    changed = [k for k in before if "motion_projector" in k and not torch.equal(merged[k], before[k])]
    assert changed, "the merged model must hold the trained projector"
    for key in before:
        if "encoder" in key:
            torch.testing.assert_close(merged[key], before[key], rtol=0, atol=0, msg=key)
    with pytest.raises(ValueError, match="modules_to_save"):
        from peft import LoraConfig

        apply_lora(_model(processor), lora_config=LoraConfig(r=2, target_modules=["q_proj"]), train_projectors=True)


def test_instruction_tuning_with_gradient_checkpointing_trains_adapters(
    processor, qa_dataset, tmp_path
):
    trainer = InstructionTuningTrainer(
        model=_model(processor),
        args=_args(
            tmp_path, max_steps=1, gradient_checkpointing=True, learning_rate=1e-2
        ),
        processor=processor,
        train_dataset=qa_dataset,
    )
    before = {
        n: p.detach().clone()
        for n, p in trainer.model.named_parameters()
        if "lora_B" in n
    }
    trainer.train()
    after = dict(trainer.model.named_parameters())
    # lora_B (zero at start) only moves if gradients flowed through the checkpointed layers.
    assert any(not torch.equal(after[n], v) for n, v in before.items())
    assert trainer.model.get_base_model().language_model.gradient_checkpointing


def test_finetune_uses_the_paper_recipe(processor, qa_dataset, tmp_path):
    trainer = finetune_with_paper_recipe(
        "instruction_tuning",
        _model(processor),
        processor,
        qa_dataset,
        str(tmp_path / "ft"),
        per_device_train_batch_size=8,
        max_steps=1,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    assert (
        trainer.args.learning_rate
        == paper_recipes()["instruction_tuning"]["learning_rate"]
        == 3e-4
    )
    assert trainer.args.gradient_accumulation_steps == 2  # 16 = 8 per device x 2
    assert trainer.state.global_step == 1
    assert all("lora_" in n for n in trainable_parameter_names(trainer.model))
    with pytest.raises(ValueError, match="stage must be one of"):
        finetune_with_paper_recipe(
            "pretraining", _model(processor), processor, qa_dataset, str(tmp_path / "x")
        )


def test_apply_lora_rejects_targets_outside_the_llm_and_double_wrapping(processor):
    model = _model(processor)
    with pytest.raises(ValueError, match="matched no module|reach beyond the LLM"):
        apply_lora(model, target_modules=r".*motion_projector.*\.linear_1")
    wrapped = apply_lora(_model(processor))
    with pytest.raises(ValueError, match="already carries peft adapters"):
        apply_lora(wrapped)
    with pytest.raises(ValueError, match="not a peft-wrapped model"):
        ModalityTranslationTrainer(model=wrapped, processor=processor)


# ------------------------------------------------------------------------------------------ accelerate

_ACCELERATE_SCRIPT = """
import json, sys, torch
sys.path.insert(0, {tests!r})
from transformers import AutoTokenizer, TrainingArguments
from datasets import load_from_disk
from accelerate import PartialState
from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
from humocon_hf.processing.processing_humocon import MotionVideoProcessor
from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor
from humocon_hf.training.instruction_tuning import ModalityTranslationTrainer, InstructionTuningTrainer
from humocon_tiny import tiny_config, tiny_text_config, IMAGE_SIZE, NUM_KEY_FRAMES

torch.set_num_threads(1)
tok = AutoTokenizer.from_pretrained({tokenizer!r})
proc = MotionVideoProcessor(tok, MotionFeatureExtractor(), HuMoConVideoProcessor(num_frames=NUM_KEY_FRAMES, size=IMAGE_SIZE))
torch.manual_seed(0)
model = HuMoConForCausalLM(tiny_config(text_config=tiny_text_config(vocab_size=len(tok)),
                                       motion_token_id=proc.motion_token_id, video_token_id=proc.video_token_id))
ds = load_from_disk({dataset!r})
common = dict(per_device_train_batch_size=2, max_steps=2, learning_rate=1e-2, report_to=[], use_cpu=True,
              save_strategy="no", logging_steps=1, disable_tqdm=True)
t2 = ModalityTranslationTrainer(model=model, args=TrainingArguments({out!r} + "/s2", **common), processor=proc, train_dataset=ds)
t2.train()
t3 = InstructionTuningTrainer(model=model, args=TrainingArguments({out!r} + "/s3", **common), processor=proc, train_dataset=ds)
t3.train()
state = PartialState()
assert state.distributed_type.value == "MULTI_CPU", state.distributed_type
lora = [p.detach().sum().item() for n, p in t3.model.named_parameters() if "lora_B" in n]
proj = model.motion_projector.linear_1.weight.detach().sum().item()
json.dump({{"world": state.num_processes, "lora": lora, "proj": proj}},
          open({out!r} + f"/rank{{state.process_index}}.json", "w"))
state.wait_for_everyone()
torch.distributed.destroy_process_group()  # as `humocon` does: no gloo teardown at interpreter exit
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_both_stages_under_accelerate_launch_two_cpu_processes(
    processor, qa_dataset, tmp_path, smollm2_tokenizer_dir
):
    import json

    qa_dataset.save_to_disk(str(tmp_path / "ds"))
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(_ACCELERATE_SCRIPT).format(
            tests=str(REPO_ROOT / "tests"),
            tokenizer=str(smollm2_tokenizer_dir),
            dataset=str(tmp_path / "ds"),
            out=str(tmp_path),
        )
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # `--cpu` would pick accelerate's single-process launcher; `--multi_gpu` starts torchrun, and with
    # `use_cpu=True` the processes form a gloo group (DistributedType.MULTI_CPU).
    cmd = accelerate_launch_command(2, str(script), port=_free_port())
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert ranks[0]["world"] == 2 and ranks[1]["world"] == 2
    # DDP keeps the replicas identical: both processes end with the same trained weights.
    assert ranks[0]["proj"] == pytest.approx(ranks[1]["proj"])
    assert ranks[0]["lora"] == pytest.approx(ranks[1]["lora"]) and any(
        abs(v) > 0 for v in ranks[0]["lora"]
    )


@pytest.mark.slow
def test_stage2_on_real_cmu_captions_and_a_real_video_lowers_the_loss(
    processor, shared_data, tmp_path
):
    """Real CMU mocap trials with CMU's own descriptions (loaded by humocon_hf.data) plus a real video."""
    from datasets import Dataset

    from humocon_hf.data.loaders import load_cmu_bvh

    cmu = load_cmu_bvh(
        shared_data / "cmu_bvh", shared_data / "cmu_index" / "CMU_data.csv"
    )
    rows = [
        dict(r, video=None)
        for r in cmu.select(range(4)).select_columns(["motion_path", "caption"])
    ]
    rows.append(
        {
            "motion_path": None,
            "caption": "A person does push-ups.",
            "video": str(shared_data / "videos" / "COBRA_PUSH_UPS_clip2.mp4"),
        }
    )
    dataset = Dataset.from_list(rows)
    model = _model(processor)
    collator = HuMoConQACollator(processor)
    loss_before = _mean_loss(model, collator, dataset)
    trainer = ModalityTranslationTrainer(
        model=model,
        args=_args(
            tmp_path, max_steps=6, per_device_train_batch_size=5, learning_rate=1e-2
        ),
        processor=processor,
        train_dataset=dataset,
    )
    trainer.train()
    assert _mean_loss(model, collator, dataset) < loss_before


def test_length_grouped_batches_sort_raw_rows_by_the_collators_length_estimate(processor, tmp_path):
    """`train_sampling_strategy="group_by_length"` works on raw QA rows (transformers alone needs `input_ids`): the
    collator's estimate differs from the collated length by the same chat-template tokens for every row, so it
    orders rows as their real lengths do."""
    from humocon_tiny import walk_joints
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from humocon_hf.pipeline.runner import ListDataset

    rows = [{"motion": walk_joints(frames), "question": "What is the person doing?" + " Tell me." * extra,
             "answer": "walk"} for frames, extra in ((12, 0), (40, 3), (25, 1), (64, 5), (7, 2), (33, 0))]
    collator = HuMoConQACollator(processor, system_prompt="Answer with one or two words.")
    estimates = [collator.approximate_length(row, i) for i, row in enumerate(rows)]
    actual = [int(collator([row])["attention_mask"].sum()) for row in rows]
    assert len({a - e for a, e in zip(actual, estimates)}) == 1 and len(set(estimates)) == len(rows)
    trainer = InstructionTuningTrainer(
        model=_model(processor), args=_args(tmp_path, per_device_train_batch_size=2,
                                             train_sampling_strategy="group_by_length"),
        processor=processor, train_dataset=ListDataset(rows), data_collator=collator,
    )
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler) and list(sampler.lengths) == estimates
    assert sorted(sampler) == list(range(len(rows)))


# ----------------------------------------------------------------------------- frozen weights under bf16 autocast


def _llm_linear_dtypes(model) -> set:
    return {m.weight.dtype for m in model.language_model.modules()
            if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad}


def test_frozen_linear_weights_in_bf16_keep_the_numerics_and_come_back(processor, qa_dataset):
    """Inside the context the LLM's frozen linear weights are bf16 copies (embeddings, tied head and trainable
    weights stay float32); under autocast the loss and gradients are those of autocast's own casts, bit for bit;
    `originals()` and the exit put the very same float32 tensors back."""
    from humocon_hf.training.frozen_weights import FrozenLinearWeightsInDtype

    model = _model(processor)
    freeze_for_modality_translation(model)
    model.language_model.layers[0].mlp.down_proj.requires_grad_(True)  # a trainable linear stays float32
    batch = HuMoConQACollator(processor)([qa_dataset[i] for i in range(3)])
    originals = {n: (p.data_ptr(), p.dtype) for n, p in model.language_model.named_parameters()}

    def loss_and_grads():
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    expected_loss, expected_grads = loss_and_grads()
    with FrozenLinearWeightsInDtype(model.language_model) as frozen:
        linears = [m for m in model.language_model.modules() if isinstance(m, torch.nn.Linear)]
        assert frozen.num_weights == len(linears) - 1
        assert _llm_linear_dtypes(model) == {torch.bfloat16}
        assert model.language_model.layers[0].mlp.down_proj.weight.dtype == torch.float32
        assert model.get_input_embeddings().weight.dtype == torch.float32
        assert model.lm_head.weight.dtype == torch.float32
        loss, grads = loss_and_grads()
        with frozen.originals():
            assert _llm_linear_dtypes(model) == {torch.float32}
        assert _llm_linear_dtypes(model) == {torch.bfloat16}
    assert torch.equal(loss, expected_loss)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        assert torch.equal(grad, expected_grads[name]), name
    for name, p in model.language_model.named_parameters():
        assert (p.data_ptr(), p.dtype) == originals[name], name  # the same float32 storage, not a copy


@pytest.mark.parametrize("stage", ["translate", "tune"])
def test_bf16_trainers_hold_frozen_llm_weights_in_bf16_and_save_float32(processor, qa_dataset, tmp_path, stage):
    """Stage 2/3 under bf16 autocast: the LLM's frozen linear weights are bf16 while steps run, float32 in every
    checkpoint and after training (bit-identical to before); the trained weights are those of a run that lets
    autocast cast at every step."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from humocon_hf.training import qa_trainer_common

    class DtypesDuringSteps(TrainerCallback):
        def __init__(self, model):
            self.model, self.seen = model, set()

        def on_step_end(self, args, state, control, **kwargs):
            self.seen |= _llm_linear_dtypes(self.model)

    def run(out, hold: bool):
        model = _model(processor)
        before = {k: v.clone() for k, v in model.language_model.state_dict().items()}
        trainer_class = ModalityTranslationTrainer if stage == "translate" else InstructionTuningTrainer
        trainer = trainer_class(model=model, args=_args(out, max_steps=2, bf16=True, save_strategy="steps",
                                                        save_steps=1), processor=processor, train_dataset=qa_dataset)
        callback = DtypesDuringSteps(model)
        trainer.add_callback(callback)
        original = qa_trainer_common._HuMoConTrainerMixin._holds_frozen_weights_in_bf16
        trainer._holds_frozen_weights_in_bf16 = lambda: hold and original(trainer)
        trainer.train()
        return trainer, model, before, callback.seen

    trainer, model, before, seen = run(tmp_path / "held", hold=True)
    assert seen == {torch.bfloat16}
    assert _llm_linear_dtypes(model) == {torch.float32}
    after = {k.replace(".base_layer", ""): v for k, v in model.language_model.state_dict().items() if "lora_" not in k}
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    checkpoint = tmp_path / "held" / "out" / "checkpoint-1"
    weights = load_file(checkpoint / ("model.safetensors" if stage == "translate" else "adapter_model.safetensors"))
    assert weights and {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}
    if stage == "translate":  # the whole model: the LLM's weights are the float32 originals
        llm = {k: v for k, v in weights.items() if "language_model." in k and k.endswith("proj.weight")}
        assert llm and all(torch.equal(v, before["layers." + k.split(".layers.")[1]]) for k, v in llm.items())

    _, plain, _, seen = run(tmp_path / "cast", hold=False)
    assert seen == {torch.float32}
    trained = plain.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key]), key



@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_shared_motion_prompt_batches_train_exactly_the_rows_alone(tmp_path, smollm2_tokenizer_dir,
                                                                    attn_implementation):
    """`tune.share_motion_prompt`: the questions of a motion packed behind one copy of its prompt give the same loss
    and the same gradients as the same rows padded one per sequence (each answer sees the prompt and its own
    question only, at the positions it has alone), on fewer tokens."""
    from humocon_tiny import make_tiny_llm_dir, walk_joints
    from transformers import AutoModelForCausalLM

    from humocon_hf.pipeline.builders import build_concept_model, build_processor
    from humocon_hf.recipes import DataArguments, ModelArguments
    from humocon_hf.training.qa_collator import HuMoConQACollator, SharedMotionPromptCollator, group_rows_by_motion
    from humocon_hf.training.qa_trainer_common import supervised_positions_loss

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    model_args = ModelArguments(llm_name_or_path=str(llm_dir), motion_token_stride=8, system_prompt="")
    processor = build_processor(model_args, DataArguments(max_frames=64, cmu_bvh_dir=None))
    concept = build_concept_model(model_args)
    torch.manual_seed(0)
    llm = AutoModelForCausalLM.from_pretrained(llm_dir, attn_implementation=attn_implementation)
    model = HuMoConForCausalLM.from_parts(llm, concept.motion_encoder, concept.video_encoder, processor)
    model.freeze_encoders()
    walk, other = walk_joints(48, seed=1), walk_joints(40, seed=2)
    rows = [
        {"motion": walk, "question": "What is the person doing?", "answer": "walk"},
        {"motion": other, "question": "Which way does the person move, forward or backward?", "answer": "forward"},
        {"motion": walk, "question": "Which hand moves more?", "answer": "the left hand"},
        {"motion": walk, "question": "Describe the motion.", "answer": "A person walks forward slowly."},
        {"motion": other, "question": "Is the person running?", "answer": "no"},
    ]
    groups = group_rows_by_motion(rows)
    assert [len(g["rows"]) for g in groups] == [3, 2]
    plain = HuMoConQACollator(processor, system_prompt="")
    packed_batch = SharedMotionPromptCollator(plain)(groups)
    ordered = [r for g in groups for r in g["rows"]]  # the same rows, one per sequence
    plain_batch = plain(ordered)
    assert packed_batch["input_ids"].numel() < plain_batch["attention_mask"].sum()  # fewer tokens, padding aside
    assert packed_batch["attention_mask"].shape == (2, 1, *packed_batch["input_ids"].shape[1:] * 2)

    def loss_and_grads(batch):
        model.zero_grad()
        loss = supervised_positions_loss(model, batch)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_plain, grads_plain = loss_and_grads(plain_batch)
    loss_packed, grads_packed = loss_and_grads(packed_batch)
    torch.testing.assert_close(loss_packed, loss_plain, rtol=1e-5, atol=1e-6)
    assert grads_packed.keys() == grads_plain.keys() and any("motion_projector" in n for n in grads_plain)
    for name in grads_plain:
        torch.testing.assert_close(grads_packed[name], grads_plain[name], rtol=1e-4, atol=1e-6, msg=name)

    # A group whose rows do not share their prompt (another motion), or an item that is not a group, is refused.
    from humocon_hf.training.qa_collator import SharedMotionPromptCollator as Packer

    with pytest.raises(ValueError, match="prompt up to the motion differs"):
        Packer(plain)([{"rows": [rows[0], rows[1]]}])
    with pytest.raises(ValueError, match="expected a group"):
        Packer(plain)([rows[0]])
    with pytest.raises(ValueError, match="has no 'motion'"):
        group_rows_by_motion([{"question": "What?", "answer": "walk"}])

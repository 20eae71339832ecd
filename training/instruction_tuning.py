"""Stages 2 and 3 of HuMoCon: modality translation (projectors only) and LoRA instruction tuning.

Both stages fine-tune a [`HuMoConForCausalLM`] on a user's `datasets.Dataset` whose rows hold a motion and/or a
video (file paths or arrays) and either a question/answer pair (a caption counts as the answer to a default
"describe" prompt) or a multi-turn `conversations` list. [`HuMoConQACollator`] turns rows into model inputs with
the [`MotionVideoProcessor`]'s chat template, so only the assistant answers are learned.

* [`ModalityTranslationTrainer`]: encoders and LLM frozen, only `motion_projector` / `video_projector` train
  (paper: lr 1e-4, batch 32).
* [`InstructionTuningTrainer`]: LoRA (rank 8 by default) on the LLM's attention projections through peft on the
  whole wrapper (wrapping only the inner LLM would break the wrapper's save/load); encoders and projectors
  frozen (paper: lr 3e-4, batch 16). Checkpoints hold only the adapter; [`load_adapter`] and [`merge_adapter`]
  bring it back.

Both are plain `Trainer`s otherwise, so they run under `accelerate launch` (DDP, gloo on CPU) unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from humocon_hf.data.custom_qa import ROLE_ALIASES

logger = logging.get_logger(__name__)

# Regex on module names (peft `target_modules` as a string is matched with re.fullmatch): only the LLM's
# attention projections, never the encoders' (SigLIP also has q_proj/k_proj/v_proj).
DEFAULT_LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"

DEFAULT_PROMPTS = {
    "motion": "Describe the motion.",
    "video": "Describe what the person does in the video.",
    "both": "Describe the motion shown in the video and the motion sequence.",
}

_PLACEHOLDER_RE = re.compile(r"(<motion>|<video>)")


# --------------------------------------------------------------------------------------------------- collator


class HuMoConQACollator:
    """Turn dataset rows into a padded batch for [`HuMoConForCausalLM`] through the processor's chat template.

    A row is a mapping with

    * `motion` (path, (T, 22, 3) array, `MotionClip`, a list of those, or None) and/or `video` (path, uint8
      (N, H, W, 3) array, a list, or None); `motion_path` / `video_path` (the schema of the
      `humocon_hf.data` loaders) are read when `motion` / `video` are absent;
    * either `question` + `answer` (or `caption`: then the question defaults to a "describe" prompt), or
      `conversations`: a list of `{"role": "user" | "assistant" | "system", "content": str | list}` messages
      (ShareGPT `{"from": "human" | "gpt", "value": str}` is accepted too).

    In string content, `<motion>` / `<video>` mark where the row's motions / videos go (in order); without
    markers they are put in front of the first user message. Labels keep only the assistant answers.

    Args:
        processor: a `MotionVideoProcessor`.
        max_length: optional truncation length (the processor refuses to cut placeholder tokens).
        system_prompt: optional system message put in front of every conversation.
        column names: override the defaults above.
    """

    def __init__(
        self,
        processor,
        max_length: int | None = None,
        system_prompt: str | None = None,
        motion_column: str = "motion",
        video_column: str = "video",
        question_column: str = "question",
        answer_column: str = "answer",
        caption_column: str = "caption",
        conversations_column: str = "conversations",
        video_fps_column: str = "video_fps",
    ):
        self.processor = processor
        self.max_length = max_length
        self.system_prompt = system_prompt
        self.motion_column = motion_column
        self.video_column = video_column
        self.question_column = question_column
        self.answer_column = answer_column
        self.caption_column = caption_column
        self.conversations_column = conversations_column
        self.video_fps_column = video_fps_column

    # The placeholder strings the processor uses (they can be customised there).
    @property
    def _tokens(self) -> tuple[str, str]:
        return getattr(self.processor, "motion_token", "<motion>"), getattr(
            self.processor, "video_token", "<video>"
        )

    @staticmethod
    def _media_list(value) -> list:
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [v for v in value if v is not None]
        return [value]

    def row_to_conversation(self, row: Mapping[str, Any], index: int = 0) -> list[dict]:
        """One dataset row -> one conversation with typed content items."""
        if not isinstance(row, Mapping):
            raise TypeError(
                f"row {index}: expected a mapping (a datasets row), got {type(row).__name__}"
            )
        motions = self._media_list(
            _first_present(row, self.motion_column, f"{self.motion_column}_path")
        )
        videos = self._media_list(
            _first_present(row, self.video_column, f"{self.video_column}_path")
        )
        fps = row.get(self.video_fps_column)

        conversation = row.get(self.conversations_column)
        if conversation is not None:
            messages = [
                self._normalize_message(m, index, i) for i, m in enumerate(conversation)
            ]
            if not any(m["role"] == "assistant" for m in messages):
                raise ValueError(
                    f"row {index}: `{self.conversations_column}` holds no assistant answer to learn"
                )
        else:
            answer = row.get(self.answer_column)
            question = row.get(self.question_column)
            if answer is None and row.get(self.caption_column) is not None:
                answer = row[self.caption_column]
            if answer is None or (isinstance(answer, str) and not answer.strip()):
                raise ValueError(
                    f"row {index}: needs `{self.answer_column}` (or `{self.caption_column}`) or "
                    f"`{self.conversations_column}`"
                )
            if question is None:
                key = (
                    "both" if motions and videos else ("video" if videos else "motion")
                )
                question = DEFAULT_PROMPTS[key]
            messages = [
                {"role": "user", "content": str(question)},
                {"role": "assistant", "content": str(answer)},
            ]
        if self.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self._attach_media(messages, motions, videos, fps, index)

    @staticmethod
    def _normalize_message(message, index: int, position: int) -> dict:
        if not isinstance(message, Mapping):
            raise TypeError(
                f"row {index}, message {position}: expected a dict, got {type(message).__name__}"
            )
        if "role" in message and "content" in message:
            role, content = message["role"], message["content"]
        elif "from" in message and "value" in message:
            role, content = message["from"], message["value"]
        else:
            raise ValueError(
                f"row {index}, message {position}: expected keys role/content (or from/value), got {sorted(message)}"
            )
        if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
            raise ValueError(f"row {index}, message {position}: unknown role {role!r}")
        return {"role": ROLE_ALIASES[role.lower()], "content": content}

    def _attach_media(
        self, messages: list[dict], motions: list, videos: list, fps, index: int
    ) -> list[dict]:
        """Replace `<motion>` / `<video>` markers in string content by typed items carrying the row's media."""
        motion_token, video_token = self._tokens
        motion_iter, video_iter = iter(motions), iter(videos)
        used = {"motion": 0, "video": 0}
        out = []
        for message in messages:
            content = message["content"]
            if isinstance(content, str):
                items = []
                for piece in re.split(
                    f"({re.escape(motion_token)}|{re.escape(video_token)})", content
                ):
                    if piece == motion_token:
                        media = next(motion_iter, None)
                        if media is None:
                            raise ValueError(
                                f"row {index}: more {motion_token} markers than motions ({len(motions)})"
                            )
                        items.append({"type": "motion", "motion": media})
                        used["motion"] += 1
                    elif piece == video_token:
                        media = next(video_iter, None)
                        if media is None:
                            raise ValueError(
                                f"row {index}: more {video_token} markers than videos ({len(videos)})"
                            )
                        items.append(_video_item(media, fps))
                        used["video"] += 1
                    elif piece:
                        items.append({"type": "text", "text": piece})
            else:
                items = list(content)
                for item in items:
                    if isinstance(item, Mapping) and item.get("type") in used:
                        used[item["type"]] += 1
            out.append({"role": message["role"], "content": items})

        # Media without markers go in front of the first user message.
        leftover = [{"type": "motion", "motion": m} for m in motion_iter] + [
            _video_item(v, fps) for v in video_iter
        ]
        if leftover:
            if used["motion"] or used["video"]:
                raise ValueError(
                    f"row {index}: {len(leftover)} motion/video input(s) have no {motion_token}/{video_token} marker "
                    "while others do: mark all of them or none"
                )
            first_user = next((m for m in out if m["role"] == "user"), None)
            if first_user is None:
                raise ValueError(
                    f"row {index}: the conversation has no user message to attach the motion/video to"
                )
            first_user["content"] = (
                leftover + [{"type": "text", "text": "\n"}] + first_user["content"]
            )
        return out

    def __call__(self, rows: Sequence[Mapping[str, Any]]):
        if len(rows) == 0:
            raise ValueError("HuMoConQACollator got an empty batch")
        conversations = [self.row_to_conversation(row, i) for i, row in enumerate(rows)]
        kwargs = {}
        if self.max_length is not None:
            kwargs.update(truncation=True, max_length=self.max_length)
        batch = self.processor.apply_chat_template(
            conversations,
            tokenize=True,
            return_dict=True,
            return_labels=True,
            return_tensors="pt",
            **kwargs,
        )
        if "labels" not in batch:
            raise ValueError(
                "the processor returned no labels; MotionVideoProcessor must support return_labels=True"
            )
        return batch


def _first_present(row: Mapping[str, Any], *keys: str):
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def _video_item(media, fps) -> dict:
    item = {"type": "video", "video": media}
    if fps is not None:
        item["fps"] = fps
    return item


# ---------------------------------------------------------------------------------------------- parameter sets


def _unwrap(model):
    """The HuMoConForCausalLM inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def trainable_parameter_names(model) -> list[str]:
    """Names of the parameters that receive gradients (what a stage trains)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


PROJECTOR_MODULES = ("motion_projector", "video_projector")


def freeze_for_modality_translation(model) -> None:
    """Stage 2: only the two projectors train."""
    model.requires_grad_(False)
    for name in PROJECTOR_MODULES:
        getattr(model, name).requires_grad_(True)
    model.freeze_encoders()


def _prepare_args(
    args: TrainingArguments | None, output_dir: str | None
) -> TrainingArguments:
    if args is None:
        args = TrainingArguments(output_dir=output_dir or "humocon-output")
    if args.remove_unused_columns:
        # The collator needs the raw columns (paths, conversations); Trainer would drop them otherwise.
        args.remove_unused_columns = False
    return args


def supervised_positions_loss(model, inputs: Mapping[str, Any], num_items_in_batch=None):
    """Next-token cross-entropy of a `HuMoConForCausalLM` (or its peft wrapper), with logits computed only where a
    next token is supervised (`labels[:, 1:] != -100`).

    Labels cover the answers, a few tokens of each prompt; projecting every position onto the vocabulary costs
    about a fifth of a SmolLM2-135M training step for nothing (`benchmarks/bench_humocon_lm.py`). Same value and
    gradients as the model's own loss: summed over the supervised tokens, divided by `num_items_in_batch` when
    given (gradient accumulation), else averaged.
    """
    import torch
    import torch.nn.functional as F

    labels = inputs["labels"]
    targets_mask = labels[:, 1:] != -100
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets_mask  # the logits at t predict token t + 1
    outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, logits_to_keep=keep)
    targets = labels[:, 1:][targets_mask]  # row-major: the order of the kept logits
    loss = F.cross_entropy(outputs.logits.float(), targets, reduction="sum")
    return loss / (targets.numel() if num_items_in_batch is None else num_items_in_batch)


class _HuMoConTrainerMixin:
    """Shared setup: processor-based collator, raw columns kept, projector/encoder freezing kept in eval."""

    def _humocon_setup(
        self, model, args, processor, data_collator, max_length, system_prompt
    ):
        args = _prepare_args(args, None)
        if data_collator is None:
            if processor is None:
                raise ValueError(
                    f"{type(self).__name__} needs a `processor` (MotionVideoProcessor) or a `data_collator`"
                )
            data_collator = HuMoConQACollator(
                processor, max_length=max_length, system_prompt=system_prompt
            )
        return args, data_collator

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's next-token loss through [`supervised_positions_loss`] (logits at answer positions only)."""
        if return_outputs or inputs.get("labels") is None or self.label_smoother is not None or self.compute_loss_func is not None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = supervised_positions_loss(model, inputs, num_items_in_batch)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices:
            # As Trainer.compute_loss: num_items_in_batch was summed over the processes.
            scale = self.accelerator.num_processes // self.get_tp_size()
            loss = loss * (scale if self.args.n_gpu <= 1 else self.args.n_gpu)
        return loss


class ModalityTranslationTrainer(_HuMoConTrainerMixin, Trainer):
    """Stage 2 (modality translation): train only the motion and video projectors.

    The encoders and the LLM are frozen here, whatever their state on entry; the encoders also stay in eval
    mode, so their VQ codebooks are untouched. Typical data: captions (`motion`/`video` + `caption` rows).

    Args:
        model: a `HuMoConForCausalLM` (e.g. from `HuMoConForCausalLM.from_parts`).
        args: `TrainingArguments` (paper recipe: lr 1e-4, global batch 32); `remove_unused_columns` is forced off.
        processor: the `MotionVideoProcessor` (builds the default collator; saved with checkpoints).
        max_length / system_prompt: passed to the default [`HuMoConQACollator`].
        Other keyword arguments go to `Trainer`.
    """

    def __init__(
        self,
        model=None,
        args: TrainingArguments | None = None,
        processor=None,
        data_collator=None,
        max_length: int | None = None,
        system_prompt: str | None = None,
        **kwargs,
    ):
        if model is None:
            raise ValueError(
                "ModalityTranslationTrainer needs a HuMoConForCausalLM `model`"
            )
        if hasattr(model, "peft_config"):
            raise ValueError(
                "stage 2 trains the projectors of a plain HuMoConForCausalLM, not a peft-wrapped model"
            )
        freeze_for_modality_translation(model)
        args, data_collator = self._humocon_setup(
            model, args, processor, data_collator, max_length, system_prompt
        )
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            processing_class=processor,
            **kwargs,
        )


# ------------------------------------------------------------------------------------------------------- LoRA


def apply_lora(
    model,
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    target_modules: str | list[str] = DEFAULT_LORA_TARGET_MODULES,
    lora_config=None,
    train_projectors: bool = False,
):
    """Wrap a `HuMoConForCausalLM` in a peft LoRA model (rank `r` on the LLM's attention projections).

    Everything but the LoRA matrices is frozen, encoders included. The projectors are frozen too (the paper),
    unless `train_projectors`: then they train alongside the adapters as peft `modules_to_save` (LLaVA's
    fine-tuning stage), are saved in every adapter checkpoint and folded back by [`merge_adapter`].
    """
    from peft import LoraConfig, TaskType, get_peft_model

    if hasattr(model, "peft_config"):
        raise ValueError("the model already carries peft adapters")
    if lora_config is None:
        lora_config = LoraConfig(
            r=r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules,
            bias="none",
            task_type=TaskType.CAUSAL_LM,
            modules_to_save=list(PROJECTOR_MODULES) if train_projectors else None,
        )
    elif train_projectors:
        raise ValueError("train_projectors: set modules_to_save on your lora_config instead")
    model.requires_grad_(False)
    peft_model = get_peft_model(model, lora_config)
    saved = tuple(lora_config.modules_to_save or ())
    bad = [
        n
        for n in trainable_parameter_names(peft_model)
        if ("lora_" not in n or "language_model" not in n)
        and not ("modules_to_save" in n and any(m in n for m in saved))
    ]
    if bad:
        raise ValueError(f"LoRA target_modules reach beyond the LLM: {bad[:5]}")
    if not trainable_parameter_names(peft_model):
        raise ValueError(
            f"LoRA target_modules {lora_config.target_modules!r} matched no module of the LLM"
        )
    return peft_model


def load_adapter(model, adapter_path: str, is_trainable: bool = False):
    """Attach a saved LoRA adapter (a Trainer checkpoint or `save_pretrained` folder) to a `HuMoConForCausalLM`."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter_path, is_trainable=is_trainable)


def merge_adapter(peft_model):
    """Fold the LoRA weights into the LLM and return the plain `HuMoConForCausalLM` (one checkpoint to ship)."""
    return peft_model.merge_and_unload()


class InstructionTuningTrainer(_HuMoConTrainerMixin, Trainer):
    """Stage 3 (instruction tuning): LoRA adapters on the LLM; encoders frozen, projectors frozen unless
    `train_projectors`.

    Args:
        model: a `HuMoConForCausalLM` (wrapped here with [`apply_lora`]) or an already peft-wrapped one
            (e.g. from [`load_adapter`] with `is_trainable=True`).
        args: `TrainingArguments` (paper recipe: lr 3e-4, global batch 16). Checkpoints hold the adapter only;
            `trainer.train(resume_from_checkpoint=...)` resumes adapter, optimizer and scheduler.
        processor: the `MotionVideoProcessor`.
        lora_r / lora_alpha / lora_dropout / lora_target_modules / lora_config: LoRA settings.
        train_projectors: also train the motion / video projectors (see [`apply_lora`]).
        Other keyword arguments go to `Trainer`.
    """

    def __init__(
        self,
        model=None,
        args: TrainingArguments | None = None,
        processor=None,
        data_collator=None,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_target_modules: str | list[str] = DEFAULT_LORA_TARGET_MODULES,
        lora_config=None,
        train_projectors: bool = False,
        max_length: int | None = None,
        system_prompt: str | None = None,
        **kwargs,
    ):
        if model is None:
            raise ValueError(
                "InstructionTuningTrainer needs a HuMoConForCausalLM `model`"
            )
        if not hasattr(model, "peft_config"):
            model = apply_lora(
                model,
                r=lora_r,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                target_modules=lora_target_modules,
                lora_config=lora_config,
                train_projectors=train_projectors,
            )
        _unwrap(model).freeze_encoders()
        args, data_collator = self._humocon_setup(
            model, args, processor, data_collator, max_length, system_prompt
        )
        if getattr(args, "gradient_checkpointing", False):
            # Inputs of a frozen embedding need grad for checkpointed LoRA layers to receive gradients.
            _unwrap(model).enable_input_require_grads()
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            processing_class=processor,
            **kwargs,
        )


def _paper_stage(section: str) -> dict:
    from humocon_hf.recipes import paper_section

    values = paper_section(section)
    return {"learning_rate": float(values["learning_rate"]),
            "global_batch_size": int(values["per_device_train_batch_size"])
            * int(values.get("gradient_accumulation_steps", 1))}


# Paper recipes (HuMoCon, section 4), as `recipes/paper.yaml` states them: projectors on captions at lr 1e-4 / batch
# 32; LoRA at lr 3e-4 / batch 16.
PAPER_RECIPES = {
    "modality_translation": _paper_stage("translate"),
    "instruction_tuning": _paper_stage("tune"),
}


def finetune(
    stage: str,
    model,
    processor,
    train_dataset,
    output_dir: str,
    eval_dataset=None,
    per_device_train_batch_size: int = 4,
    num_train_epochs: float = 1.0,
    resume_from_checkpoint: str | bool | None = None,
    **training_kwargs,
):
    """Run stage 2 (`"modality_translation"`) or stage 3 (`"instruction_tuning"`) with the paper's learning rate
    and global batch size (reached through gradient accumulation over `per_device_train_batch_size` and the
    number of processes). Any `TrainingArguments` field can be overridden through `training_kwargs`.

    Returns:
        The trainer after training (`trainer.model` is the trained model; for stage 3 a peft model, see
        [`merge_adapter`]).
    """
    if stage not in PAPER_RECIPES:
        raise ValueError(f"stage must be one of {sorted(PAPER_RECIPES)}, got {stage!r}")
    recipe = PAPER_RECIPES[stage]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation = max(
        1, recipe["global_batch_size"] // (per_device_train_batch_size * world)
    )
    kwargs = {
        "output_dir": output_dir,
        "learning_rate": recipe["learning_rate"],
        "per_device_train_batch_size": per_device_train_batch_size,
        "gradient_accumulation_steps": accumulation,
        "num_train_epochs": num_train_epochs,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.03,
        "logging_steps": 10,
        "save_strategy": "epoch",
        "report_to": [],
        "remove_unused_columns": False,
    }
    kwargs.update(training_kwargs)
    args = TrainingArguments(**kwargs)
    trainer_class = (
        ModalityTranslationTrainer
        if stage == "modality_translation"
        else InstructionTuningTrainer
    )
    trainer = trainer_class(
        model=model,
        args=args,
        processor=processor,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
    )
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return trainer


__all__ = [
    "DEFAULT_LORA_TARGET_MODULES",
    "DEFAULT_PROMPTS",
    "PAPER_RECIPES",
    "HuMoConQACollator",
    "InstructionTuningTrainer",
    "ModalityTranslationTrainer",
    "apply_lora",
    "finetune",
    "freeze_for_modality_translation",
    "load_adapter",
    "merge_adapter",
    "trainable_parameter_names",
    "supervised_positions_loss",
]

"""Stage 3 of HuMoCon, LoRA instruction tuning, and `finetune_with_paper_recipe` (also named `finetune` here), which
runs stage 2 or 3 with the paper's recipe.

Both stages fine-tune a [`HuMoConForCausalLM`] on a user's `datasets.Dataset` whose rows hold a motion and/or a
video (file paths or arrays) and either a question/answer pair (a caption counts as the answer to a default
"describe" prompt) or a multi-turn `conversations` list. [`HuMoConQACollator`] turns rows into model inputs with
the [`MotionVideoProcessor`]'s chat template, so only the assistant answers are learned.

* [`ModalityTranslationTrainer`] (stage 2, `humocon_hf.training.modality_translation`): encoders and LLM frozen,
  only `motion_projector` / `video_projector` train (paper: lr 1e-4, batch 32).
* [`InstructionTuningTrainer`] (stage 3, here): LoRA (rank 8 by default) on the LLM's attention projections through
  peft on the whole wrapper (wrapping only the inner LLM would break the wrapper's save/load); encoders and
  projectors frozen (paper: lr 3e-4, batch 16). Checkpoints hold only the adapter; [`load_adapter`] and
  [`merge_adapter`] bring it back.

Both are plain `Trainer`s otherwise, so they run under `accelerate launch` (DDP, gloo on CPU) unchanged. The
collator lives in `humocon_hf.training.qa_collator`, what both trainers share in
`humocon_hf.training.qa_trainer_common`; this module re-exports their public names, so
`from humocon_hf.training.instruction_tuning import ModalityTranslationTrainer, HuMoConQACollator` keeps working.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from humocon_hf.training.modality_translation import ModalityTranslationTrainer, freeze_for_modality_translation
from humocon_hf.training.qa_collator import DEFAULT_PROMPTS, HuMoConQACollator
from humocon_hf.training.qa_trainer_common import (
    PROJECTOR_MODULES,
    _HuMoConTrainerMixin,
    _unwrap,
    supervised_positions_loss,
    trainable_parameter_names,
)

if TYPE_CHECKING:
    from peft import PeftModel

    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

logger = logging.get_logger(__name__)

# Regex on module names (peft `target_modules` as a string is matched with re.fullmatch): only the LLM's
# attention projections, never the encoders' (SigLIP also has q_proj/k_proj/v_proj).
DEFAULT_LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"


# ------------------------------------------------------------------------------------------------------- LoRA


def apply_lora(
    model: HuMoConForCausalLM,
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    target_modules: str | list[str] = DEFAULT_LORA_TARGET_MODULES,
    lora_config=None,
    train_projectors: bool = False,
) -> PeftModel:
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


def load_adapter(model: HuMoConForCausalLM, adapter_path: str, is_trainable: bool = False) -> PeftModel:
    """Attach a saved LoRA adapter (a Trainer checkpoint or `save_pretrained` folder) to a `HuMoConForCausalLM`."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter_path, is_trainable=is_trainable)


def merge_adapter(peft_model: PeftModel) -> HuMoConForCausalLM:
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
        model: HuMoConForCausalLM | PeftModel | None = None,
        args: TrainingArguments | None = None,
        processor: MotionVideoProcessor | None = None,
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


def build_instruction_tuning_trainer(
    model, args: TrainingArguments, processor, train_dataset, data_collator, tune_args, *,
    train_projectors: bool | None = None, eval_dataset=None, callbacks=(),
) -> InstructionTuningTrainer:
    """Stage 3's trainer as a recipe's `tune` section describes it (its `lora` as a `peft.LoraConfig`, whether the
    projectors train): the one place the pipeline's tune and baseline stages and `humocon finetune` build it.
    `train_projectors` overrides the section's (the text-only baseline has no motion to train them on)."""
    projectors = tune_args.train_projectors if train_projectors is None else train_projectors
    return InstructionTuningTrainer(
        model=model, args=args, processor=processor, train_dataset=train_dataset, eval_dataset=eval_dataset,
        data_collator=data_collator, lora_config=tune_args.lora_config(train_projectors=projectors),
        callbacks=list(callbacks),
    )


def _paper_stage(section: str) -> dict:
    from humocon_hf.recipes import paper_section

    values = paper_section(section)
    return {"learning_rate": float(values["learning_rate"]),
            "global_batch_size": int(values["per_device_train_batch_size"])
            * int(values.get("gradient_accumulation_steps", 1))}


def paper_recipes() -> dict[str, dict]:
    """The paper recipes (HuMoCon, section 4) as `recipes/paper.yaml` states them: projectors on captions at lr 1e-4 /
    batch 32; LoRA at lr 3e-4 / batch 16. Read when asked for, not when this module is imported."""
    return {"modality_translation": _paper_stage("translate"), "instruction_tuning": _paper_stage("tune")}


def finetune_with_paper_recipe(
    stage: str,
    model: HuMoConForCausalLM,
    processor: MotionVideoProcessor,
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
    recipes = paper_recipes()
    if stage not in recipes:
        raise ValueError(f"stage must be one of {sorted(recipes)}, got {stage!r}")
    recipe = recipes[stage]
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


# The earlier name, kept for existing imports; the package's top level exports `finetune_with_paper_recipe`, as
# `humocon_hf.finetune` is the module that fine-tunes a published checkpoint (`humocon finetune`).
finetune = finetune_with_paper_recipe


__all__ = [
    "DEFAULT_LORA_TARGET_MODULES",
    "DEFAULT_PROMPTS",
    "HuMoConQACollator",
    "InstructionTuningTrainer",
    "ModalityTranslationTrainer",
    "apply_lora",
    "build_instruction_tuning_trainer",
    "finetune",
    "finetune_with_paper_recipe",
    "freeze_for_modality_translation",
    "load_adapter",
    "merge_adapter",
    "paper_recipes",
    "trainable_parameter_names",
    "supervised_positions_loss",
]

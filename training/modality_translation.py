"""Stage 2 of HuMoCon, modality translation: encoders and LLM frozen, only `motion_projector` / `video_projector`
train (paper: lr 1e-4, batch 32), on captions or QA rows turned into batches by [`HuMoConQACollator`].

[`ModalityTranslationTrainer`] is a plain `Trainer` otherwise, so it runs under `accelerate launch` (DDP, gloo on CPU)
unchanged. `humocon_hf.training.instruction_tuning.finetune` runs it with the paper's recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers import Trainer, TrainingArguments

from humocon_hf.training.qa_trainer_common import PROJECTOR_MODULES, _HuMoConTrainerMixin

if TYPE_CHECKING:
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

__all__ = ["ModalityTranslationTrainer", "freeze_for_modality_translation"]


def freeze_for_modality_translation(model: HuMoConForCausalLM) -> None:
    """Stage 2: only the two projectors train."""
    model.requires_grad_(False)
    for name in PROJECTOR_MODULES:
        getattr(model, name).requires_grad_(True)
    model.freeze_encoders()


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
        model: HuMoConForCausalLM | None = None,
        args: TrainingArguments | None = None,
        processor: MotionVideoProcessor | None = None,
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

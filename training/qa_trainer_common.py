"""What the two LLM training stages (2: modality translation, 3: instruction tuning) share: the trainer setup
mixin (default collator, raw columns kept), the loss computed at supervised positions only, and parameter helpers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from transformers import TrainingArguments

from humocon_hf.training.qa_collator import HuMoConQACollator

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

__all__ = ["PROJECTOR_MODULES", "supervised_positions_loss", "trainable_parameter_names"]


def _unwrap(model):
    """The HuMoConForCausalLM inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def trainable_parameter_names(model: torch.nn.Module) -> list[str]:
    """Names of the parameters that receive gradients (what a stage trains)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


PROJECTOR_MODULES = ("motion_projector", "video_projector")


def _prepare_args(
    args: TrainingArguments | None, output_dir: str | None
) -> TrainingArguments:
    if args is None:
        args = TrainingArguments(output_dir=output_dir or "humocon-output")
    if args.remove_unused_columns:
        # The collator needs the raw columns (paths, conversations); Trainer would drop them otherwise.
        args.remove_unused_columns = False
    return args


def supervised_positions_loss(
    model: HuMoConForCausalLM | PeftModel, inputs: Mapping[str, Any], num_items_in_batch=None
):
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

    def _get_train_sampler(self, train_dataset=None):
        """transformers' samplers, and length-grouped batches (`train_sampling_strategy="group_by_length"`) for rows
        that are raw QA records rather than token ids: their lengths come from the collator's estimate
        (`HuMoConQACollator.approximate_length`), since transformers can only read `input_ids` or a length column.
        On the small recipe's stage-3 data, batches of 8 carry 9.9% padding in random order and 0.6% grouped."""
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if (self.args.train_sampling_strategy == "group_by_length" and dataset is not None
                and isinstance(self.data_collator, HuMoConQACollator)
                and self.args.length_column_name not in (getattr(dataset, "column_names", None) or [])):
            from transformers.trainer_pt_utils import LengthGroupedSampler

            lengths = [self.data_collator.approximate_length(dataset[i], i) for i in range(len(dataset))]
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=lengths)
        return super()._get_train_sampler(train_dataset)

    def train(self, *args, **kwargs):
        """`Trainer.train`, with the LLM's frozen linear weights held in bf16 while it runs under bf16 autocast
        ([`FrozenLinearWeightsInDtype`]: autocast would otherwise cast them at every forward; the products read the
        same bf16 values either way). Checkpoints and the model after training keep the float32 originals."""
        if not self._holds_frozen_weights_in_bf16():
            return super().train(*args, **kwargs)
        import torch

        from humocon_hf.training.frozen_weights import FrozenLinearWeightsInDtype

        with FrozenLinearWeightsInDtype(_unwrap(self.model).language_model, torch.bfloat16) as frozen:
            self._frozen_weights = frozen
            try:
                return super().train(*args, **kwargs)
            finally:
                self._frozen_weights = None

    def _holds_frozen_weights_in_bf16(self) -> bool:
        """bf16 autocast (`args.bf16`), with the parameters managed by this process (no DeepSpeed / FSDP)."""
        return bool(self.args.bf16) and not (self.is_deepspeed_enabled or self.is_fsdp_enabled) and hasattr(
            _unwrap(self.model), "language_model")

    def _save_checkpoint(self, model, trial):
        frozen = getattr(self, "_frozen_weights", None)
        with frozen.originals() if frozen is not None else contextlib.nullcontext():
            return super()._save_checkpoint(model, trial)

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

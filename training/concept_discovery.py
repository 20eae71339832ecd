"""Stage 1 of HuMoCon: concept discovery (encoder pre-training) with the Hugging Face `Trainer`.

* [`ConceptDiscoveryCollator`]: batches motion-only, video-only and paired dataset items into
  [`HuMoConForConceptDiscovery`] inputs (through `MotionFeatureExtractor` / `HuMoConVideoProcessor`, or from
  already-processed tensors).
* [`ConceptDiscoveryTrainer`]: logs every loss component (averaged over the logging window, the accumulation
  micro-batches and the processes), updates the VQ codebooks once per optimiser step with statistics reduced over
  micro-batches and processes (so batch 4 x accumulation 2 and 2 processes x batch 2 behave like batch 8), and
  never scales the loss twice under gradient accumulation (the model has `accepts_loss_kwargs = False`).
* [`ConceptDiscoverySchedule`]: the paper's two phases from one call — phase 1: motion encoder, reconstruction only
  (lr 1e-4, 60K iterations in the paper); phase 2: both encoders, total loss (lr 1e-5, 8K iterations) — with
  resumption from the last checkpoint of an interrupted phase.

Distributed: DDP is the supported path (tested: `accelerate launch` with 2 CPU processes, gloo, matches one process
at the same global batch), including the double backward of the velocity objective: the inner
`torch.autograd.grad` differentiates with respect to the encoder state, not to parameters, so DDP's gradient hooks
fire only in the outer backward. The recipe sets `ddp_find_unused_parameters=True` (a batch may lack a modality;
with `mask_ratio=0` the mask embedding is unused). FSDP is not tested: FSDP re-shards parameters after each forward/backward pass through hooks, and the
inner `autograd.grad(create_graph=True)` through the hyper-network is a second backward pass inside the forward that
those hooks do not expect; the models are small (the SigLIP tower is frozen), so plain DDP is enough.

Equivalence caveats: the per-objective losses are means over the batch, so accumulation / multi-process runs equal
one big batch exactly when every micro-batch has the same composition (modalities, lengths); otherwise the result is
the mean of micro-batch means, as usual with `Trainer`. Random token masking (mask_ratio > 0) and sampled negatives
(`dis_num_negatives`) draw different random numbers for different batch layouts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from humocon_hf.modeling.modeling_humocon_concept_discovery import LOSS_COMPONENTS, HuMoConForConceptDiscovery
from humocon_hf.processing.smpl22 import DEFAULT_FPS
from humocon_hf.recipes import paper_section
from humocon_hf.training.checkpoints import last_complete_checkpoint

logger = logging.get_logger(__name__)


# --------------------------------------------------------------------------------------------------- collator


def _has(item: Mapping, *keys: str) -> bool:
    return any(item.get(k) is not None for k in keys)


def _as_tensor(value, name: str, ndim: int) -> torch.Tensor:
    tensor = torch.as_tensor(
        np.asarray(value) if not isinstance(value, torch.Tensor) else value
    ).float()
    if tensor.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, got shape {tuple(tensor.shape)}"
        )
    return tensor


@dataclass
class ConceptDiscoveryCollator:
    """
    Batch dataset items for [`HuMoConForConceptDiscovery`].

    An item is a mapping with a motion and/or a video:

    * motion: `motion` (a (T, 22, 3) joint array, a `MotionClip` or a file path; turned into features by
      `feature_extractor`) or `motion_values` (already-extracted `(T, feature_size)` features);
    * video: `video` (uint8 `(N, H, W, 3)` RGB frames or a file path; processed by `video_processor` with optical
      flow, `video_fps` giving the frame rate of arrays) or `pixel_values_videos` `(K, 3, S, S)` with
      `video_timestamps` `(K,)` and optionally `video_flow` `(K - 1, 2, g, g)`;
    * `paired` (bool, optional): whether the motion and the video of the item are frame-aligned (default: `True`
      when both are present).

    The batch holds `motion_values` / `motion_attention_mask` for the items with a motion (in item order),
    `pixel_values_videos` / `video_timestamps` (/ `video_flow` when every video has flow) for the items with a
    video, and `paired`: `(P, 2)` (motion row, video row) indices. `modalities` drops the other modality (phase 1
    uses `("motion",)`); items left with nothing raise an error.
    """

    feature_extractor: Any = None
    video_processor: Any = None
    modalities: Sequence[str] = ("motion", "video")
    max_frames: int | None = None
    return_flow: bool = True

    def __post_init__(self):
        unknown = set(self.modalities) - {"motion", "video"}
        if unknown or not self.modalities:
            raise ValueError(
                f"modalities must be a non-empty subset of ('motion', 'video'), got {self.modalities}"
            )

    def _motions(self, items: list[Mapping]) -> dict[str, torch.Tensor]:
        raw = [it for it in items if it.get("motion") is not None]
        if raw and len(raw) != len(items):
            raise ValueError(
                "mix of raw `motion` and precomputed `motion_values` items in one batch; use one kind"
            )
        if raw:
            if self.feature_extractor is None:
                raise ValueError(
                    "items hold raw `motion` but the collator has no feature_extractor"
                )
            kwargs = {"padding": "longest", "return_tensors": "pt"}
            if self.max_frames is not None:
                kwargs.update(max_frames=self.max_frames, truncation=True)
            batch = self.feature_extractor([it["motion"] for it in raw], **kwargs)
            return {
                "motion_values": batch["motion_values"].float(),
                "motion_attention_mask": batch["motion_attention_mask"].long(),
            }
        values = [_as_tensor(it["motion_values"], "motion_values", 2) for it in items]
        if self.max_frames is not None:
            values = [v[: self.max_frames] for v in values]
        if any(v.shape[0] == 0 for v in values):
            raise ValueError("an item has motion_values with 0 frames")
        widths = {v.shape[1] for v in values}
        if len(widths) != 1:
            raise ValueError(
                f"motion_values of one batch must share the feature width, got {sorted(widths)}"
            )
        longest = max(v.shape[0] for v in values)
        out = torch.zeros(len(values), longest, widths.pop())
        mask = torch.zeros(len(values), longest, dtype=torch.long)
        for i, v in enumerate(values):
            out[i, : v.shape[0]] = v
            mask[i, : v.shape[0]] = 1
        return {"motion_values": out, "motion_attention_mask": mask}

    def _videos(self, items: list[Mapping]) -> dict[str, torch.Tensor]:
        raw = [it for it in items if it.get("video") is not None]
        if raw and len(raw) != len(items):
            raise ValueError(
                "mix of raw `video` and precomputed `pixel_values_videos` items in one batch; use one kind"
            )
        if raw:
            if self.video_processor is None:
                raise ValueError(
                    "items hold raw `video` but the collator has no video_processor"
                )
            fps = [it.get("video_fps") for it in raw]
            kwargs = {"return_flow": self.return_flow, "return_tensors": "pt"}
            if any(f is not None for f in fps):
                kwargs["fps"] = [f for f in fps]
            batch = self.video_processor([it["video"] for it in raw], **kwargs)
            return {
                k: v.float()
                for k, v in batch.items()
                if k in ("pixel_values_videos", "video_timestamps", "video_flow")
            }
        pixels = [
            _as_tensor(it["pixel_values_videos"], "pixel_values_videos", 4)
            for it in items
        ]
        shapes = {tuple(p.shape) for p in pixels}
        if len(shapes) != 1:
            raise ValueError(
                f"pixel_values_videos of one batch must share a shape (same key-frame count), got {shapes}"
            )
        out = {"pixel_values_videos": torch.stack(pixels)}
        if all(it.get("video_timestamps") is not None for it in items):
            out["video_timestamps"] = torch.stack(
                [
                    _as_tensor(it["video_timestamps"], "video_timestamps", 1)
                    for it in items
                ]
            )
        if self.return_flow and all(it.get("video_flow") is not None for it in items):
            out["video_flow"] = torch.stack(
                [_as_tensor(it["video_flow"], "video_flow", 4) for it in items]
            )
        return out

    def _crop_paired_video(self, item: Mapping) -> Mapping:
        """A paired motion longer than `max_frames` is truncated; its video (frame array) is cut to the same
        duration, so that the pair stays aligned instead of the video outlasting the motion it is paired with."""
        motion, video = item.get("motion"), item.get("video")
        if self.max_frames is None or not isinstance(motion, np.ndarray) or not isinstance(video, np.ndarray):
            return item
        if motion.shape[0] <= self.max_frames:
            return item
        motion_fps = float(getattr(self.feature_extractor, "fps", DEFAULT_FPS))
        video_fps = float(item.get("video_fps") or DEFAULT_FPS)  # the video processor's rate for frame arrays
        keep = max(1, int(math.floor(self.max_frames / motion_fps * video_fps)))
        return {**item, "video": video[:keep]}

    def __call__(self, items: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if len(items) == 0:
            raise ValueError("empty batch: the collator got no items")
        use_motion = "motion" in self.modalities
        use_video = "video" in self.modalities
        motion_rows, video_rows, pairs = [], [], []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise TypeError(
                    f"item {i} must be a mapping with motion and/or video keys, got {type(item).__name__}"
                )
            has_motion = use_motion and _has(item, "motion", "motion_values")
            has_video = use_video and _has(item, "video", "pixel_values_videos")
            if not (has_motion or has_video):
                raise ValueError(
                    f"item {i} has no {' or '.join(self.modalities)} input (keys: {sorted(item)}); expected "
                    "`motion`/`motion_values` and/or `video`/`pixel_values_videos`"
                )
            if has_motion and has_video and item.get("paired", True):
                pairs.append((len(motion_rows), len(video_rows)))
                item = self._crop_paired_video(item)
            if has_motion:
                motion_rows.append(item)
            if has_video:
                video_rows.append(item)
        batch: dict[str, torch.Tensor] = {}
        if motion_rows:
            batch.update(self._motions(motion_rows))
        if video_rows:
            batch.update(self._videos(video_rows))
        if motion_rows and video_rows:
            batch["paired"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        return batch


# --------------------------------------------------------------------------------------------------- trainer


class ConceptDiscoveryTrainer(Trainer):
    """
    `Trainer` for [`HuMoConForConceptDiscovery`].

    * Logs `loss_rec_motion`, `loss_rec_video`, `loss_dis`, `loss_velocity`, `loss_align`, `loss_commit` next to `loss`:
      each is the mean over the micro-batches (and processes) of the logging window that had it (a component is
      absent from a batch without its modality).
    * Codebooks: the model is switched to deferred VQ updates; after the last micro-batch of each optimiser step the
      recorded statistics are all-reduced across processes and folded into the EMA once.
    * `remove_unused_columns` is forced off (the collator builds the model inputs).
    """

    def __init__(
        self,
        model: HuMoConForConceptDiscovery | None = None,
        args: TrainingArguments | None = None,
        **kwargs,
    ):
        if args is not None and args.remove_unused_columns:
            args.remove_unused_columns = False
        super().__init__(model=model, args=args, **kwargs)
        self._unwrapped_concept_model()  # type check
        self._component_sums = torch.zeros(len(LOSS_COMPONENTS), dtype=torch.float64)
        self._component_counts = torch.zeros(len(LOSS_COMPONENTS), dtype=torch.float64)

    def _unwrapped_concept_model(self) -> HuMoConForConceptDiscovery:
        model = (
            self.accelerator.unwrap_model(self.model)
            if hasattr(self, "accelerator")
            else self.model
        )
        if not hasattr(model, "apply_codebook_updates"):
            raise ValueError(
                f"ConceptDiscoveryTrainer trains HuMoConForConceptDiscovery, got {type(model).__name__}"
            )
        return model

    def train(self, *args, **kwargs):
        """`Trainer.train` with deferred codebook updates; the model's previous update mode is restored after."""
        model = self._unwrapped_concept_model()
        was_deferred = not model._update_in_forward
        model.set_codebook_update_mode(deferred=True)
        try:
            return super().train(*args, **kwargs)
        finally:
            model.set_codebook_update_mode(deferred=was_deferred)

    def compute_loss(
        self, model, inputs, return_outputs=False, num_items_in_batch=None
    ):
        outputs = model(**inputs, return_dict=True)
        if model.training:
            # Accumulated on the loss's device without .item(): no host sync per micro-batch on GPUs.
            loss_device = outputs.loss.device
            if self._component_sums.device != loss_device:
                self._component_sums = self._component_sums.to(loss_device)
                self._component_counts = self._component_counts.to(loss_device)
            for i, name in enumerate(LOSS_COMPONENTS):
                value = getattr(outputs, name, None)
                if value is not None:
                    self._component_sums[i] += value.detach().to(torch.float64)
                    self._component_counts[i] += 1
        loss = outputs.loss
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.sync_gradients:
            self._unwrapped_concept_model().apply_codebook_updates(sync=True)
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Self-supervised: there are no labels, the evaluation result is the loss (the velocity objective still runs
        under `no_grad`, the model enables gradients for its inner `autograd.grad`)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: every process reaches this point together
            stats = torch.stack([self._component_sums, self._component_counts]).to(
                self.args.device
            )
            stats = stats.to(
                torch.float32 if stats.device.type == "mps" else torch.float64
            )
            if self.accelerator.num_processes > 1:
                stats = self.accelerator.reduce(stats, reduction="sum")
            for i, name in enumerate(LOSS_COMPONENTS):
                if float(stats[1, i]) > 0:
                    logs[name] = float(stats[0, i] / stats[1, i])
            self._component_sums.zero_()
            self._component_counts.zero_()
        super().log(logs, start_time)


# --------------------------------------------------------------------------------------------------- recipe


class _ItemsWith(torch.utils.data.Dataset):
    """The items of `dataset` that have a motion (phase 1)."""

    def __init__(self, dataset, keys=("motion", "motion_values")):
        self.dataset = dataset
        self.indices = [i for i in range(len(dataset)) if _has(dataset[i], *keys)]
        if not self.indices:
            raise ValueError(
                f"no item of the training set has any of {keys}; phase 1 trains on motions"
            )

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]


def _paper(key: str, kind: type):
    """A default read from `recipes/paper.yaml` when a recipe is made, not when this module is imported."""
    return field(default_factory=lambda: kind(paper_section("pretrain")[key]))


@dataclass
class ConceptDiscoverySchedule:
    """
    HuMoCon's stage-1 schedule from one call: [`ConceptDiscoverySchedule.run`].

    Phase 1 trains the motion encoder and its reconstruction decoder only (discriminative, actionable and alignment
    objectives off; everything else frozen) on the items with a motion. Phase 2 trains both encoders (the SigLIP
    tower stays frozen unless `video_config.freeze_vision_tower=False`) and all heads on the total loss. Each phase
    writes checkpoints to `output_dir/phase{1,2}` and its final weights to `output_dir/phase{1,2}/final`; a rerun
    skips finished phases and resumes an interrupted one from its last checkpoint.

    Args:
        output_dir: where the phases write.
        phase1_steps / phase1_learning_rate: paper 60 000 / 1e-4.
        phase2_steps / phase2_learning_rate: paper 8 000 / 1e-5.
        per_device_train_batch_size, gradient_accumulation_steps, logging_steps, save_steps, seed: as in
            `TrainingArguments`.
        training_args: extra `TrainingArguments` fields for both phases (e.g. `bf16`, `report_to`,
            `dataloader_num_workers`).
    """

    output_dir: str
    # The paper's schedule, as `recipes/paper.yaml` states it.
    phase1_steps: int = _paper("phase1_max_steps", int)
    phase1_learning_rate: float = _paper("phase1_learning_rate", float)
    phase2_steps: int = _paper("phase2_max_steps", int)
    phase2_learning_rate: float = _paper("phase2_learning_rate", float)
    per_device_train_batch_size: int = _paper("per_device_train_batch_size", int)
    gradient_accumulation_steps: int = 1
    logging_steps: int = 50
    save_steps: int = 1_000
    seed: int = 42
    training_args: dict = field(default_factory=dict)

    PHASE1_HEADS = ("motion_encoder", "motion_decoder")

    def training_arguments(self, phase: int) -> TrainingArguments:
        if phase not in (1, 2):
            raise ValueError(f"phase must be 1 or 2, got {phase}")
        steps = self.phase1_steps if phase == 1 else self.phase2_steps
        args = {
            "output_dir": str(Path(self.output_dir) / f"phase{phase}"),
            "max_steps": steps,
            "learning_rate": self.phase1_learning_rate
            if phase == 1
            else self.phase2_learning_rate,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "logging_steps": self.logging_steps,
            "save_steps": self.save_steps,
            "save_strategy": "steps",
            "seed": self.seed,
            "remove_unused_columns": False,
            "report_to": "none",
            # Phase 2: a batch may lack a modality. Phase 1: the mask embedding is unused when mask_ratio is 0.
            "ddp_find_unused_parameters": True,
            "lr_scheduler_type": "constant",
        }
        args.update(self.training_args)
        return TrainingArguments(**args)

    def run(
        self,
        model: HuMoConForConceptDiscovery,
        train_dataset,
        collator: ConceptDiscoveryCollator | None = None,
        resume: bool = True,
        callbacks=None,
    ) -> dict[str, Any]:
        """Run phase 1 then phase 2 on `train_dataset`; returns `{"phase1": metrics, "phase2": metrics}` with each
        phase's final training metrics and log history (empty for a phase skipped because it had finished)."""
        if not isinstance(model, HuMoConForConceptDiscovery):
            raise TypeError(
                f"the recipe trains a HuMoConForConceptDiscovery, got {type(model).__name__}"
            )
        if self.phase1_steps < 0 or self.phase2_steps < 0:
            raise ValueError("phase step counts must be >= 0")
        collator = collator if collator is not None else ConceptDiscoveryCollator()
        results: dict[str, Any] = {}
        for phase in (1, 2):
            if (self.phase1_steps, self.phase2_steps)[phase - 1] == 0:
                results[f"phase{phase}"] = {"skipped": "0 steps"}
                continue
            args = self.training_arguments(phase)
            final_dir = Path(args.output_dir) / "final"
            if resume and (final_dir / "model.safetensors").is_file():
                from safetensors.torch import load_file

                model.load_state_dict(
                    load_file(str(final_dir / "model.safetensors")), strict=True
                )
                results[f"phase{phase}"] = {
                    "skipped": f"finished earlier ({final_dir})"
                }
                logger.info(f"phase {phase} already finished; loaded {final_dir}")
                continue
            results[f"phase{phase}"] = self._run_phase(
                phase, model, train_dataset, collator, args, resume, callbacks
            )
            if args.process_index == 0:
                model.save_pretrained(final_dir)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.barrier()
        return results

    def _run_phase(
        self, phase, model, train_dataset, collator, args, resume, callbacks
    ):
        cfg = model.config
        saved_switches = {
            k: getattr(cfg, k)
            for k in ("use_discriminative", "use_velocity_reconstruction", "use_alignment")
        }
        saved_grad = {name: p.requires_grad for name, p in model.named_parameters()}
        try:
            if phase == 1:
                cfg.use_discriminative = cfg.use_velocity_reconstruction = cfg.use_alignment = False
                for name, p in model.named_parameters():
                    p.requires_grad_(
                        saved_grad[name] and name.split(".")[0] in self.PHASE1_HEADS
                    )
                dataset = _ItemsWith(train_dataset)
                collator = ConceptDiscoveryCollator(
                    feature_extractor=collator.feature_extractor,
                    video_processor=collator.video_processor,
                    modalities=("motion",),
                    max_frames=collator.max_frames,
                    return_flow=collator.return_flow,
                )
            else:
                dataset = train_dataset
            trainer = ConceptDiscoveryTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                data_collator=collator,
                callbacks=callbacks,
            )
            checkpoint = last_complete_checkpoint(args.output_dir) if resume else None
            output = trainer.train(resume_from_checkpoint=checkpoint)
            return {
                "metrics": output.metrics,
                "log_history": trainer.state.log_history,
                "resumed_from": checkpoint,
            }
        finally:
            for key, value in saved_switches.items():
                setattr(cfg, key, value)
            for name, p in model.named_parameters():
                p.requires_grad_(saved_grad[name])


def log_history_components(log_history: list[dict]) -> dict[str, list[float]]:
    """Per-component lists of logged training values (in step order), e.g. to check that every loss decreases."""
    out: dict[str, list[float]] = {}
    for entry in log_history:
        for name in ("loss", *LOSS_COMPONENTS):
            if (
                name in entry
                and isinstance(entry[name], (int, float))
                and math.isfinite(entry[name])
            ):
                out.setdefault(name, []).append(float(entry[name]))
    return out


# The class's name until December 2026 (it is a schedule of two training phases, not a recipe file).
ConceptDiscoveryRecipe = ConceptDiscoverySchedule

__all__ = [
    "ConceptDiscoveryCollator",
    "ConceptDiscoveryRecipe",
    "ConceptDiscoverySchedule",
    "ConceptDiscoveryTrainer",
    "log_history_components",
]

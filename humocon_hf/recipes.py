"""Training recipes: one YAML (or JSON) file describes all three HuMoCon stages and the evaluation.

A recipe has one section per concern, each parsed with `transformers.HfArgumentParser` into dataclasses (the
HF way), so every key is checked against a real field and unknown keys fail with the section and file named:

```yaml
model:      # -> ModelArguments: which LLM, vision tower and encoder size
data:       # -> DataArguments: the built-in benchmark, real CMU mocap, or your own QA file
pretrain:   # -> TrainingArguments + PretrainArguments (stage 1, concept discovery; two phases)
translate:  # -> TrainingArguments + TranslateArguments (stage 2, projectors on captions)
tune:       # -> TrainingArguments + TuneArguments (stage 3, LoRA instruction tuning)
evaluate:   # -> EvaluateArguments (held-out accuracy, text-only baseline)
```

Two recipes ship with the package: `small` (what `humocon demo` runs on 2 CPU cores) and `paper` (the
paper's models and hyper-parameters, for GPUs). `load_recipe("small")`, `load_recipe("path/to/my.yaml")`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from transformers import HfArgumentParser, TrainingArguments

from humocon_hf.precision import CPU_BF16_ENV, cpu_has_bf16, llm_precision  # noqa: F401 - CPU_BF16_ENV, cpu_has_bf16 re-exported

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
SHIPPED_RECIPES = ("small", "release", "paper")
SECTIONS = ("model", "data", "pretrain", "translate", "tune", "evaluate")


class RecipeError(ValueError):
    """A recipe file that cannot be used (unknown keys, wrong types, missing file): the message says what to fix."""


# ------------------------------------------------------------------------------------------------ dataclasses


def check_minimums(section_values, section: str) -> None:
    """The lower bounds a section declares (its `MINIMUMS`): a negative learning rate, loss weight or count would train
    nonsense without an error. Run by every section's `__post_init__`, so also when built in Python."""
    for name, low in type(section_values).MINIMUMS.items():
        value = getattr(section_values, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < low:
            raise RecipeError(f"{section}.{name} must be >= {low}, got {value!r}")


@dataclass
class ModelArguments:
    """Which models the stages build on."""

    # Lower bounds of the numeric fields (`check_minimums`).
    MINIMUMS: ClassVar[dict[str, int]] = {"codebook_size": 1, "motion_token_stride": 1, "max_length": 1}

    llm_name_or_path: str = field(
        default="SmolLM2-135M-Instruct",
        metadata={"help": "LLM: 'SmolLM2-135M-Instruct' (embedded, offline) or any Hub id / local folder "
                  "(paper: meta-llama/Llama-3.1-8B-Instruct)."},
    )
    vision_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "SigLIP vision tower for the video encoder (paper: google/siglip-base-patch16-224). "
                  "None: a small SigLIP initialised from scratch (offline)."},
    )
    encoder_preset: str = field(
        default="small", metadata={"help": "'small' (CPU-sized encoders) or 'paper' (paper sizes, codebook 512)."}
    )
    codebook_size: int | None = field(default=None, metadata={"help": "Concept codebook size (paper: 512)."})
    motion_token_stride: int = field(default=4, metadata={"help": "Motion frames per LLM token."})
    encoder_overrides: dict = field(
        default_factory=dict,
        metadata={"help": "Extra HuMoConConceptDiscoveryConfig fields (e.g. {motion_config: {hidden_size: 128}})."},
    )
    dtype: str = field(default="float32", metadata={"help": "Weights dtype of the LLM: float32, bfloat16, float16."})
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "Attention kernel of the LLM while training and evaluating: 'eager', 'sdpa', "
                  "'flash_attention_2'... (None: transformers' default, sdpa). On CPU, for the demo's ~60-token "
                  "prompts, eager trains faster than PyTorch's SDPA (benchmarks/bench_humocon_lm.py [attention]). "
                  "Not written into exported checkpoints: users load them with their own choice."},
    )
    system_prompt: str | None = field(
        default=None,
        metadata={"help": "System message put in front of every conversation. None: none, so the chat template's "
                  "default applies (SmolLM2's inserts 'You are a helpful AI assistant named SmolLM...'); '': an "
                  "explicit empty system message, the shortest prompt such templates allow."},
    )
    max_length: int | None = field(default=None, metadata={"help": "Truncate training sequences to this many "
                                                           "tokens."})
    use_motion_quantized: bool = field(
        default=True,
        metadata={"help": "Feed the LLM the motion encoder's quantised concept vectors (the paper) or, with false, its "
                  "continuous features before the codebook."},
    )
    motion_projector_reads_poses: bool = field(
        default=False,
        metadata={"help": "The motion projector also reads each token's own frames (normalised pose features) next "
                  "to the encoder's features: a residual path for what the concepts drop (the side of a limb action). "
                  "Not in the paper."},
    )
    float32_llm_steps_scale: float = field(
        default=1.0,
        metadata={"help": "Where a recipe asks for bf16 but the machine is a CPU without native bf16, its LLM stages "
                  "run in float32, about twice as slow: multiply their step budgets (stage 2, stage 3 and the "
                  "text-only baseline) by this, so that the run keeps to its time budget at some cost in accuracy. "
                  "The demo says so on its first line, in its summary and in results.json. 1: the same schedule "
                  "everywhere."},
    )

    def __post_init__(self):
        check_minimums(self, "model")
        if not (0 < self.float32_llm_steps_scale <= 1):
            raise RecipeError(f"model.float32_llm_steps_scale must be in (0, 1], got {self.float32_llm_steps_scale}")
        if self.encoder_preset not in ("small", "paper"):
            raise RecipeError(f"model.encoder_preset must be 'small' or 'paper', got {self.encoder_preset!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise RecipeError(f"model.dtype must be float32, bfloat16 or float16, got {self.dtype!r}")


@dataclass
class DataArguments:
    """Where the training and evaluation data come from."""

    # Lower bounds of the numeric fields (`check_minimums`).
    MINIMUMS: ClassVar[dict[str, int]] = {
        "num_train_motions": 1, "num_validation_motions": 0, "num_test_motions": 1, "questions_per_motion": 1,
        "extra_train_motions": 0, "seed": 0, "real_questions_per_fact": 1, "vocabulary_clips_per_kind": 0,
        "real_sequences": 0, "max_frames": 1, "procedural_realism": 0,
    }

    dataset: str = field(
        default="procedural",
        metadata={"help": "'procedural' (the built-in motion-QA benchmark) or a custom QA file / folder "
                  "(JSON lines with motion_path/video_path + question/answer or conversations)."},
    )
    num_train_motions: int = field(default=400, metadata={"help": "Procedural benchmark: training motions."})
    num_validation_motions: int = field(default=40, metadata={"help": "Procedural benchmark: validation motions."})
    num_test_motions: int = field(default=80, metadata={"help": "Procedural benchmark: held-out test motions."})
    questions_per_motion: int = field(default=3, metadata={"help": "Procedural benchmark: questions per motion."})
    extra_train_motions: int = field(
        default=0,
        metadata={"help": "Procedural benchmark: more training motions, drawn after the others, so the validation "
                  "and test questions stay those of the counts above (a larger training set is compared with a "
                  "smaller one on the same held-out questions)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the benchmark generator."})
    cmu_bvh_dir: str | None = field(
        default="auto",
        metadata={"help": "Folder of real CMU BVH files used as extra stage-1 motions and stage-2 captions; 'auto' "
                  "looks for ../shared/data/cmu_bvh (or $HUMOCON_SHARED_DATA/cmu_bvh); null disables."},
    )
    cmu_descriptions_csv: str | None = field(
        default="auto", metadata={"help": "CMU_data.csv with the trial descriptions ('auto': next to cmu_bvh_dir)."}
    )
    cmu_holdout_subjects: list[int] | None = field(
        default=None,
        metadata={"help": "CMU subjects whose trials are never trained on (no stage sees them, nor the motion "
                  "normalisation): the demo asks 'What is the person doing?' about each of their trials whose "
                  "description names an action (walk, run, jump...) and reports the accuracy as `real_cmu`."},
    )
    bandai_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of the Bandai Namco Research motion dataset 1 (real studio mocap with content/style "
                  "labels): extra stage-1 motions, stage-2 captions and stage-3 action/direction questions; 'auto' "
                  "looks for ../shared/data/bandai_namco_1 (or $HUMOCON_SHARED_DATA/bandai_namco_1); null (default) "
                  "leaves them out."},
    )
    bandai_holdout_styles: list[str] | None = field(
        default=None,
        metadata={"help": "Bandai Namco styles (e.g. [angry, old]) whose takes are never trained on: the demo asks about "
                  "them as the Bandai line of its real-motion table."},
    )
    hdm05_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of HDM05 ASF/AMC clips (HDM_<actor>_<action>_<take>_<fps>.amc): real optical mocap "
                  "with action and side labels, for every stage; 'auto' looks for ../shared/data/hdm05_train (or "
                  "$HUMOCON_SHARED_DATA/hdm05_train); null (default) leaves them out."},
    )
    hdm05_holdout_actors: list[str] | None = field(
        default=None,
        metadata={"help": "HDM05 actors (e.g. [dg]) whose clips are never trained on: the HDM05 line of the "
                  "real-motion table."},
    )
    real_questions_per_fact: int = field(
        default=2, metadata={"help": "Stage 3: phrasings per fact of each real training clip (action, side, ...)."}
    )
    vocabulary_clips_per_kind: int = field(
        default=0,
        metadata={"help": "Procedural clips per kind of what real motion is asked about and no shared source shows "
                  "(raise one hand / both hands, wave with both hands, turn on the spot / while walking, left and "
                  "right: humocon_hf.data.procedural_vocabulary), trained on like the real takes; 0 leaves them out."},
    )
    real_sequences: int = field(
        default=0,
        metadata={"help": "Sequences of 2-3 real training takes joined into one motion and asked BABEL-QA's before / "
                  "after / in-between questions in stage 3 (humocon_hf.data.real_sequences); a quarter as many from "
                  "the held-out takes make their own evaluation line. 0 leaves them out."},
    )
    max_frames: int = field(default=196, metadata={"help": "Longest motion (frames at 20 fps) fed to the encoders."})
    mirror_train: bool = field(
        default=False,
        metadata={"help": "Add the mirror image of every training motion with 'left'/'right' swapped in its questions, "
                  "answers and captions (HumanML3D's augmentation): balances sided answers so the model has to read "
                  "the side from the motion. Test motions are never mirrored."},
    )
    procedural_realism: float = field(
        default=0.0,
        metadata={"help": "Domain randomisation of the procedural training motions (0: none, 1: the defaults of "
                  "humocon_hf.data.procedural_realism.Realism): uneven timing and amplitude, one side moving more, "
                  "weight shifts, capture noise, actions cut at the clip's ends. Held-out motions are never varied."},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where generated data are cached."})

    def __post_init__(self):
        check_minimums(self, "data")
        subjects = self.cmu_holdout_subjects
        if subjects is not None and (not isinstance(subjects, (list, tuple)) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in subjects)):
            raise RecipeError(f"data.cmu_holdout_subjects must be a list of CMU subject numbers (e.g. [2, 8]) or null, "
                              f"got {subjects!r}")
        for name in ("bandai_holdout_styles", "hdm05_holdout_actors"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value)):
                raise RecipeError(f"data.{name} must be a list of names or null, got {value!r}")


@dataclass
class PretrainArguments:
    """Stage 1 (concept discovery): the paper's two phases. The shared `TrainingArguments` of the section give
    the batch size, logging, checkpointing; the phases set their own step counts and learning rates."""

    # Lower bounds of the numeric fields (`check_minimums`).
    MINIMUMS: ClassVar[dict[str, int]] = {
        "phase1_max_steps": 0, "phase1_learning_rate": 0, "phase2_max_steps": 0, "phase2_learning_rate": 0,
        "mask_ratio": 0, "lambda_dis": 0, "lambda_velocity": 0, "lambda_align": 0, "num_video_motions": 0,
    }

    phase1_max_steps: int = field(default=60000, metadata={"help": "Phase 1: motion encoder, reconstruction only."})
    phase1_learning_rate: float = field(default=1e-4, metadata={"help": "Phase 1 learning rate (paper 1e-4)."})
    phase2_max_steps: int = field(default=8000, metadata={"help": "Phase 2: both encoders, total loss."})
    phase2_learning_rate: float = field(default=1e-5, metadata={"help": "Phase 2 learning rate (paper 1e-5)."})
    mask_ratio: float | None = field(default=None, metadata={"help": "Masked-reconstruction ratio (None: config default)."})
    lambda_dis: float | None = field(default=None, metadata={"help": "Weight of the discriminative loss."})
    lambda_velocity: float | None = field(
        default=None, metadata={"help": "Weight of the velocity-reconstruction loss (the paper's actionable "
                                "informativeness; `lambda_act` in earlier recipes)."})
    lambda_align: float | None = field(default=None, metadata={"help": "Weight of the video-motion alignment loss."})
    use_video: bool = field(
        default=True,
        metadata={"help": "Train the video encoder in phase 2 on frame-aligned renderings of the motions."},
    )
    num_video_motions: int = field(
        default=64, metadata={"help": "How many training motions are rendered to videos for phase 2 (paired data)."}
    )

    def __post_init__(self):
        check_minimums(self, "pretrain")


@dataclass
class TranslateArguments:
    """Stage 2 (modality translation): projectors trained on captions; encoders and LLM frozen."""

    # Lower bounds of the numeric fields (`check_minimums`).
    MINIMUMS: ClassVar[dict[str, int]] = {"caption_repeats": 0}

    caption_repeats: int = field(
        default=1, metadata={"help": "How often each real (CMU) caption appears in the stage-2 data per epoch."}
    )

    def __post_init__(self):
        check_minimums(self, "translate")


# Stage 3's LoRA when a recipe names none (the paper's rank).
DEFAULT_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05}
# Loose keys of earlier recipes -> their `tune.lora` (peft.LoraConfig) names.
LORA_ALIASES = {"lora_r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout",
                "lora_target_modules": "target_modules"}


def _renamed_keys(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`sections` with the keys of earlier recipes under today's names: `pretrain.lambda_act` ->
    `lambda_velocity`, the loose `tune.lora_*` keys -> `tune.lora` (the same stage fingerprint either way)."""
    pretrain = dict(sections.get("pretrain", {}))
    if "lambda_act" in pretrain:
        if "lambda_velocity" in pretrain:
            raise RecipeError("pretrain: lambda_act is the old name of lambda_velocity; give one of them")
        pretrain["lambda_velocity"] = pretrain.pop("lambda_act")
    return {**sections, "pretrain": pretrain, "tune": _fold_lora_aliases(sections.get("tune", {}))}


def _fold_lora_aliases(tune: dict[str, Any]) -> dict[str, Any]:
    """`tune` with the loose `lora_*` keys of earlier recipes moved into its `lora` mapping (a recipe written either
    way gives the same section, so the same stage fingerprint)."""
    loose = {k: tune[k] for k in LORA_ALIASES if k in tune}
    if not loose:
        return tune
    lora = tune.get("lora", dict(DEFAULT_LORA))
    if not isinstance(lora, Mapping):
        raise RecipeError(f"tune.lora must be a mapping of peft.LoraConfig arguments, got {type(lora).__name__}")
    out = {k: v for k, v in tune.items() if k not in LORA_ALIASES}
    out["lora"] = {**lora, **{LORA_ALIASES[k]: v for k, v in loose.items() if v is not None}}
    return out


@dataclass
class TuneArguments:
    """Stage 3 (instruction tuning): LoRA on the LLM; encoders frozen, projectors frozen unless train_projectors."""

    MINIMUMS: ClassVar[dict[str, int]] = {}  # its one number, option_questions_share, checks its own range

    lora: dict = field(
        default_factory=lambda: dict(DEFAULT_LORA),
        metadata={"help": "`peft.LoraConfig` arguments: r (paper 8), lora_alpha, lora_dropout, target_modules (default: "
                  "the LLM's attention projections), ...; task_type and modules_to_save are the stage's (see "
                  "train_projectors). The loose keys lora_r / lora_alpha / lora_dropout / lora_target_modules of "
                  "earlier recipes are read into it."},
    )
    merge_adapter: bool = field(default=True, metadata={"help": "Merge LoRA into the LLM for the final checkpoint."})
    train_projectors: bool = field(
        default=False,
        metadata={"help": "Also train the motion / video projectors with the adapters (LLaVA's fine-tuning stage); "
                  "the paper keeps them frozen."},
    )
    balance_query_types: bool = field(
        default=False,
        metadata={"help": "Oversample the rarer query types (body part, direction...) of the training questions to "
                  "the count of the most frequent one (`humocon_hf.data.oversample_to_balance`); the baseline "
                  "trains on the same rows."},
    )
    option_questions_share: float = field(
        default=0.0,
        metadata={"help": "Share of the procedural training questions asked with their options listed (\"... "
                  "Options: walk, jump or throw.\"; the answer unchanged, `humocon_hf.pipeline.data."
                  "with_listed_options`): practice in answering with one of the options a question offers. The "
                  "baseline trains on the same rows; the evaluation's questions are unchanged."},
    )
    share_motion_prompt: bool = field(
        default=False,
        metadata={"help": "Pack the questions about one motion behind one copy of its prompt (`humocon_hf.training."
                  "qa_collator.SharedMotionPromptCollator`): every answer is computed as in its own sequence, on "
                  "~35% fewer tokens for the demo's 3 questions per motion. per_device_train_batch_size then counts "
                  "motions (with all their questions), not questions. Off: with 3 motions per step for 463 steps it "
                  "kept the procedural table but lost real-line accuracy (docs/results.md)."},
    )

    def __post_init__(self):
        if not 0.0 <= self.option_questions_share <= 1.0:
            raise RecipeError(f"tune.option_questions_share must be within [0, 1], got {self.option_questions_share}")
        reserved = sorted(set(self.lora) & {"task_type", "modules_to_save"})
        if reserved:
            raise RecipeError(f"tune.lora: {reserved} are set by the stage (a causal LM; the projectors train as "
                              "modules_to_save when tune.train_projectors is true)")
        self.lora_config(train_projectors=False)  # unknown keys and bad values, named now instead of mid-run

    def lora_config(self, train_projectors: bool):
        """The `peft.LoraConfig` of `lora` for stage 3 (the projectors as `modules_to_save` when they train)."""
        from peft import LoraConfig, TaskType

        from humocon_hf.training.instruction_tuning import DEFAULT_LORA_TARGET_MODULES, PROJECTOR_MODULES

        settings = {"target_modules": DEFAULT_LORA_TARGET_MODULES, "bias": "none", **self.lora}
        if not isinstance(settings.get("r"), int) or isinstance(settings["r"], bool) or settings["r"] < 1:
            raise RecipeError(f"tune.lora.r (the LoRA rank) must be an integer >= 1, got {settings.get('r')!r}")
        try:
            return LoraConfig(**settings, task_type=TaskType.CAUSAL_LM,
                              modules_to_save=list(PROJECTOR_MODULES) if train_projectors else None)
        except (TypeError, ValueError) as err:
            raise RecipeError(f"tune.lora: not a valid peft.LoraConfig ({err})") from None


@dataclass
class EvaluateArguments:
    """Held-out evaluation and the text-only baseline."""

    # Lower bounds of the numeric fields (`check_minimums`).
    MINIMUMS: ClassVar[dict[str, int]] = {
        "batch_size": 1, "max_new_tokens": 1, "max_samples": 1, "baseline_max_steps": 1, "num_examples": 0,
    }

    split: str = field(default="test", metadata={"help": "Split to evaluate on."})
    batch_size: int = field(default=16, metadata={"help": "Questions answered per generate() call."})
    max_new_tokens: int = field(default=8, metadata={"help": "Longest generated answer (answers are 1-3 words)."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate at most this many questions."})
    constrain_options: bool = field(
        default=True,
        metadata={"help": "A question that lists its options ('left or right?') is answered with one of them "
                  "(`AnswerOptionsLogitsProcessor`), as `humocon ask` and the Space answer it."})
    baseline: str = field(
        default="question_prior",
        metadata={"help": "What the question alone gives. 'question_prior': the most common training answer to the "
                  "same question text (`humocon_hf.question_prior`, counted in a second); 'text_only': the same LLM "
                  "LoRA-tuned with the same recipe on the questions without the motion (as long as stage 3); "
                  "'zero_shot': the LLM as is; 'none'."},
    )
    baseline_max_steps: int | None = field(
        default=None,
        metadata={"help": "Training steps of the text-only baseline (default: baseline_steps_fraction of "
                  "tune.max_steps; scaled by --steps-scale like the training stages). Fewer steps make a weaker "
                  "baseline and flatter the model: on the small recipe 150 instead of 450 steps lost 6.1 points "
                  "overall (seed 0, p=0.018)."},
    )
    baseline_steps_fraction: float = field(
        default=1.0,
        metadata={"help": "Without baseline_max_steps, the text-only baseline trains for this fraction of "
                  "tune.max_steps (at least 1 step), so a shorter or longer stage 3 shortens or lengthens it too."},
    )
    num_examples: int = field(default=5, metadata={"help": "Example questions and answers printed at the end."})

    def __post_init__(self):
        check_minimums(self, "evaluate")
        if not 0 < self.baseline_steps_fraction <= 10:
            raise RecipeError(f"evaluate.baseline_steps_fraction must be in (0, 10], got {self.baseline_steps_fraction}")
        if self.baseline not in ("question_prior", "text_only", "zero_shot", "none"):
            raise RecipeError(f"evaluate.baseline must be question_prior, text_only, zero_shot or none, "
                              f"got {self.baseline!r}")


# Dataclasses of each section, in order. TrainingArguments first: it owns `output_dir`, `learning_rate`, ...
SECTION_CLASSES: dict[str, tuple[type, ...]] = {
    "model": (ModelArguments,),
    "data": (DataArguments,),
    "pretrain": (TrainingArguments, PretrainArguments),
    "translate": (TrainingArguments, TranslateArguments),
    "tune": (TrainingArguments, TuneArguments),
    "evaluate": (EvaluateArguments,),
}
TRAINING_SECTIONS = ("pretrain", "translate", "tune")


# --------------------------------------------------------------------------------------------------- Recipe


@dataclass
class Recipe:
    """A parsed recipe. `sections` keeps the raw dicts so stages can re-parse `TrainingArguments` with their own
    `output_dir`; the typed views are the properties below."""

    name: str
    source: str
    sections: dict[str, dict[str, Any]]

    def parse(self, section: str, **overrides) -> tuple:
        """Parse one section (plus `overrides`) into its dataclasses."""
        return _parse_section(section, {**self.sections.get(section, {}), **overrides}, self.source)

    @property
    def model(self) -> ModelArguments:
        return self.parse("model")[0]

    @property
    def data(self) -> DataArguments:
        return self.parse("data")[0]

    @property
    def evaluate(self) -> EvaluateArguments:
        return self.parse("evaluate")[0]

    def training_args(self, section: str, output_dir: str | os.PathLike, **overrides) -> tuple[TrainingArguments, Any]:
        """`(TrainingArguments, stage arguments)` of a training section with `output_dir` set (the recipe's own
        `output_dir`, if any, is replaced: the pipeline decides where each stage writes)."""
        if section not in TRAINING_SECTIONS:
            raise RecipeError(f"{section!r} is not a training section; expected one of {TRAINING_SECTIONS}")
        values = {**self.sections.get(section, {}), **overrides, "output_dir": str(output_dir)}
        # Progress bars unless the recipe says otherwise (the Trainer's default hides them when transformers'
        # logging is quieter than WARNING, as it is in the demo).
        values.setdefault("disable_tqdm", False)
        values.update(llm_precision(values).training_changes)
        return _parse_section(section, values, self.source)

    def scaled(self, steps_scale: float, only: Iterable[str] | None = None) -> Recipe:
        """A copy with every step budget (of the sections in `only`, if given) multiplied by `steps_scale` (at least
        1 step where it was > 0)."""
        if not (steps_scale > 0 and math.isfinite(steps_scale)):
            raise RecipeError(f"steps_scale must be a positive number, got {steps_scale}")
        sections = copy.deepcopy(self.sections)
        for section, keys in (
            ("pretrain", ("phase1_max_steps", "phase2_max_steps")),
            ("translate", ("max_steps",)),
            ("tune", ("max_steps",)),
            ("evaluate", ("baseline_max_steps",)),
        ):
            if only is not None and section not in only:
                continue
            for key in keys:
                value = sections.get(section, {}).get(key)
                if isinstance(value, int) and value > 0:
                    sections[section][key] = max(1, int(round(value * steps_scale)))
        return Recipe(self.name, self.source, sections)

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> Recipe:
        """A copy with `{section: {key: value}}` merged in (checked like the file itself)."""
        sections = copy.deepcopy(self.sections)
        for section, values in overrides.items():
            if section not in SECTIONS:
                raise RecipeError(f"unknown recipe section {section!r}; expected one of {SECTIONS}")
            values = dict(values)
            current = sections.setdefault(section, {})
            if isinstance(values.get("lora"), Mapping) and isinstance(current.get("lora"), Mapping):
                values["lora"] = {**current["lora"], **values["lora"]}  # `tune.lora={r: 16}` changes the rank only
            current.update(values)
        recipe = Recipe(self.name, self.source, _renamed_keys(sections))
        recipe.validate()
        return recipe

    def validate(self) -> Recipe:
        for section in SECTIONS:
            if section in TRAINING_SECTIONS:
                # Keys and types only: mixed precision is a property of the machine that will run the stage
                # (the paper recipe asks for bf16 on GPUs and must still be readable on a laptop).
                self.training_args(section, output_dir="unused", bf16=False, fp16=False, tf32=None, use_cpu=False)
            else:
                self.parse(section)
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.sections)

    def fingerprint(self, *sections: str, exclude: Mapping[str, Iterable[str]] | None = None) -> str:
        """Stable hash of some sections (stage markers use it to tell whether a finished stage still applies),
        leaving out the fields `exclude` names per section (those the stage does not read)."""
        import hashlib

        skip = {s: set(fields) for s, fields in (exclude or {}).items()}
        chosen = {
            s: {k: v for k, v in self.sections.get(s, {}).items() if k not in skip.get(s, ())}
            for s in (sections or SECTIONS)
        }
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _numeric_kind(annotation) -> type | None:
    """`float` / `int` when a field is declared as one (optionally `| None`), else None."""
    args = typing.get_args(annotation)
    kinds = {a for a in (args or (annotation,)) if a is not type(None)}
    if kinds == {float} or kinds == {float, int}:
        return float
    return int if kinds == {int} else None


def _coerce_numbers(classes, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Numbers written as strings become numbers of the declared type: YAML 1.1 reads `3e-4` (no dot) as a string,
    which would otherwise reach the optimizer as text. A string that is not a number is named in the error."""
    out = dict(values)
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = _numeric_kind(hints.get(f.name))
            value = out.get(f.name)
            if kind is None or isinstance(value, bool) or not isinstance(value, (str, float)):
                continue
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if kind is int and not number.is_integer() or not math.isfinite(number) and isinstance(value, str):
                expected = "an integer" if kind is int else "a number"
                raise RecipeError(f"{where}: {f.name} must be {expected}, got {value!r}")
            out[f.name] = int(number) if kind is int else number
    return out


# Lower bounds of the TrainingArguments fields a recipe sets (our own sections declare theirs as `MINIMUMS`);
# max_steps keeps its -1 ("train by epochs").
TRAINING_ARGUMENT_MINIMUMS = {
    "learning_rate": 0, "weight_decay": 0, "warmup_ratio": 0, "warmup_steps": 0, "num_train_epochs": 0,
    "max_grad_norm": 0, "per_device_train_batch_size": 1, "per_device_eval_batch_size": 1,
    "gradient_accumulation_steps": 1, "dataloader_num_workers": 0, "logging_steps": 0, "save_steps": 0,
}


def _plain_kind(annotation) -> tuple[type | None, bool]:
    """``(kind, optional)`` for fields declared as one of bool / int / float / str / dict (optionally | None)."""
    args = typing.get_args(annotation)
    kinds = {a for a in (args or (annotation,)) if a is not type(None)}
    optional = type(None) in args
    if kinds == {float, int}:
        kinds = {float}
    if len(kinds) == 1:
        kind = next(iter(kinds))
        kind = typing.get_origin(kind) or kind
        if kind in (bool, int, float, str, dict):
            return kind, optional
    return None, optional


def _check_types(classes, values: dict[str, Any], where: str) -> None:
    """Every value has its field's declared type (after `_coerce_numbers`): a list where a learning rate goes, a
    number where a model name goes, `true` where a count goes, infinities and negative rates are named here
    instead of surfacing mid-training."""
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            kind, optional = _plain_kind(hints.get(f.name))
            if kind is None or (value is None and optional):
                continue
            expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                        dict: "a mapping"}[kind]
            ok = (isinstance(value, bool) if kind is bool
                  else isinstance(value, int) and not isinstance(value, bool) if kind is int
                  else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
                  else isinstance(value, kind))
            if not ok:
                raise RecipeError(f"{where}: {f.name} must be {expected}{' or null' if optional else ''}, got "
                                  f"{type(value).__name__} {value!r}")
            if kind in (int, float):
                if not math.isfinite(value):
                    raise RecipeError(f"{where}: {f.name} must be finite, got {value!r}")
                # Our sections check their own MINIMUMS when built (`check_minimums`); TrainingArguments' are here.
                low = None if hasattr(cls, "MINIMUMS") else TRAINING_ARGUMENT_MINIMUMS.get(f.name)
                if low is not None and value < low:
                    raise RecipeError(f"{where}: {f.name} must be >= {low}, got {value!r}")


def _parse_section(section: str, values: dict[str, Any], source: str) -> tuple:
    if section not in SECTION_CLASSES:
        raise RecipeError(f"{source}: unknown recipe section {section!r}; expected one of {SECTIONS}")
    if not isinstance(values, dict):
        raise RecipeError(f"{source}: section {section!r} must be a mapping of keys to values, got {type(values).__name__}")
    classes = SECTION_CLASSES[section]
    known = {f.name for cls in classes for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RecipeError(
            f"{source}: unknown key(s) {unknown} in section {section!r}. Allowed keys come from "
            f"{', '.join(c.__name__ for c in classes)}; check the spelling (see `humocon <command> --help` and the "
            f"shipped recipes in {RECIPE_DIR})."
        )
    values = _coerce_numbers(classes, values, f"{source}: section {section!r}")
    _check_types(classes, values, f"{source}: section {section!r}")
    parser = HfArgumentParser(classes)
    try:
        return tuple(parser.parse_dict(values, allow_extra_keys=False))
    except RecipeError as err:  # a section's own check (`__post_init__`): say which recipe
        raise RecipeError(f"{source}: {err}") from None
    except (TypeError, ValueError) as err:
        hint = ""
        if "bf16" in str(err) or "fp16" in str(err):
            hint = (f" (this recipe asks for mixed precision that this machine cannot run: add "
                    f"`--override {section}.fp16=false` / `--override {section}.bf16=false`)")
        raise RecipeError(f"{source}: section {section!r}: {err}{hint}") from err


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RecipeError(f"{path}: a recipe is UTF-8 text; byte {err.start} is not ({err.reason})") from None
    except OSError as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise RecipeError(f"{path}: recipe files must end in .yaml, .yml or .json")
    except RecipeError:
        raise
    except Exception as err:  # yaml.YAMLError / json.JSONDecodeError: say which file is broken
        raise RecipeError(f"{path}: cannot parse the recipe: {err}") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with sections {SECTIONS}, got {type(data).__name__}")
    return data


def resolve_recipe_path(name_or_path: str | os.PathLike) -> Path:
    """'small' / 'paper' -> the shipped file; anything else must be an existing .yaml/.yml/.json file."""
    text = str(name_or_path)
    if text in SHIPPED_RECIPES:
        return RECIPE_DIR / f"{text}.yaml"
    path = Path(text).expanduser()
    if not path.is_file():
        raise RecipeError(
            f"recipe {text!r} not found: give a shipped recipe name ({', '.join(SHIPPED_RECIPES)}) or the path of a "
            ".yaml/.json recipe file"
        )
    return path


@functools.cache
def _paper_sections() -> dict[str, dict[str, Any]]:
    return _read_file(resolve_recipe_path("paper"))


def paper_section(section: str) -> dict[str, Any]:
    """The paper recipe's values for one section (`recipes/paper.yaml`, the one place the paper's hyper-parameters are
    written down; the Python defaults of the trainers read them from here)."""
    return dict(_paper_sections()[section])


def _read_sections(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """A recipe file's sections. `base: NAME` (a shipped recipe, or a file path relative to this one) reads that recipe
    first; this file's keys then replace its keys one by one (`recipes/release.yaml` is the small recipe, longer)."""
    path = path.resolve()
    if path in seen:
        raise RecipeError(f"{path}: `base` recipes form a cycle ({' -> '.join(str(p) for p in (*seen, path))})")
    data = _read_file(path)
    base = data.pop("base", None)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise RecipeError(f"{path}: unknown section(s) {unknown}; a recipe has the sections {list(SECTIONS)} and "
                          "optionally `base`")
    for s in SECTIONS:
        if data.get(s) is not None and not isinstance(data[s], Mapping):
            raise RecipeError(f"{path}: section {s!r} must be a mapping of keys to values, got "
                              f"{type(data[s]).__name__} {data[s]!r}")
    sections = {s: dict(data.get(s) or {}) for s in SECTIONS}
    if base is None:
        return sections
    if not isinstance(base, str) or not base:
        raise RecipeError(f"{path}: base must name a recipe (e.g. base: small), got {base!r}")
    try:  # a shipped name, else a file beside this one
        base_path = resolve_recipe_path(base if base in SHIPPED_RECIPES else path.parent / base)
    except RecipeError:
        raise RecipeError(f"{path}: base recipe {base!r} not found (a shipped name {SHIPPED_RECIPES} or a file)") from None
    below = _read_sections(base_path, (*seen, path))
    return {s: {**below[s], **sections[s]} for s in SECTIONS}


def load_recipe(name_or_path: str | os.PathLike = "small", overrides: dict[str, dict[str, Any]] | None = None) -> Recipe:
    """Read and validate a recipe (shipped name or file path). `overrides`: `{section: {key: value}}`."""
    path = resolve_recipe_path(name_or_path)
    sections = _renamed_keys(_read_sections(path))
    name = str(name_or_path) if str(name_or_path) in SHIPPED_RECIPES else path.stem
    recipe = Recipe(name=name, source=str(path), sections=sections)
    if overrides:
        return recipe.with_overrides(overrides)
    return recipe.validate()


def parse_override(text: str) -> tuple[str, str, Any]:
    """'tune.max_steps=20' -> ('tune', 'max_steps', 20); the value is read as YAML (numbers, true, null, lists)."""
    import yaml

    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise RecipeError(f"override {text!r} must look like section.key=value (e.g. tune.max_steps=20)")
    key, raw = text.split("=", 1)
    section, name = key.split(".", 1)
    if section not in SECTIONS:
        raise RecipeError(f"override {text!r}: unknown section {section!r}; expected one of {SECTIONS}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise RecipeError(f"override {text!r}: cannot read the value: {err}") from err
    return section, name, value


def overrides_from_strings(items: list[str] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        section, key, value = parse_override(item)
        out.setdefault(section, {})[key] = value
    return out


__all__ = [
    "DataArguments",
    "EvaluateArguments",
    "ModelArguments",
    "PretrainArguments",
    "Recipe",
    "RecipeError",
    "SECTIONS",
    "SHIPPED_RECIPES",
    "TranslateArguments",
    "TuneArguments",
    "load_recipe",
    "overrides_from_strings",
    "parse_override",
    "resolve_recipe_path",
]

"""The sections of a training recipe as dataclasses, one per concern, parsed by `transformers.HfArgumentParser`
(`humocon_hf.recipes` reads the files, merges overrides and checks types). Each declares its fields with their help
and their lower bounds (`MINIMUMS`), so a section built in Python is checked as one read from a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from transformers import TrainingArguments


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

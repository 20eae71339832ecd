"""`humocon demo`: the whole HuMoCon pipeline, offline, in one command and one output folder.

Stages (each writes `<output_dir>/stages/<name>/` and a `stage.json` marker when it finishes; a re-run reuses
finished stages whose inputs did not change and resumes an interrupted training stage from its last Trainer
checkpoint):

1. `data`      – the built-in procedural motion-QA benchmark (train / validation / test, disjoint motions) plus the
                 real CMU mocap trials with CMU's own descriptions when `../shared/data/cmu_bvh` is present; the
                 processor (LLM tokenizer + motion feature extractor fitted on the training motions).
2. `pretrain`  – stage 1, concept discovery with the small encoders (paper phases; `ConceptDiscoveryRecipe`).
3. `translate` – stage 2, modality translation: projectors trained on captions, encoders and LLM frozen.
4. `tune`      – stage 3, LoRA instruction tuning on the benchmark's questions; adapter merged afterwards.
5. `baseline`  – the text-only baseline: the same LLM, LoRA-tuned with the same recipe on the same questions
                 without the motion (it can only learn answer priors from the question text).
6. `evaluate`  – held-out accuracy overall / per query type / per relation type for both.
7. `export`    – the checkpoint (AutoModel / AutoProcessor loadable, also with trust_remote_code), model card,
                 concept-timeline plot, rendered preview GIF, `results.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humocon_hf.recipes import Recipe, load_recipe

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "humocon_demo"
STAGES = ("data", "pretrain", "translate", "tune", "baseline", "evaluate", "export")
MARKER = "stage.json"
# Model fields only the LLM stages read: changing them keeps the finished data and concept-discovery stages.
LLM_ONLY_MODEL_FIELDS = ("dtype", "attn_implementation", "system_prompt", "max_length", "use_motion_quantized",
                         "motion_projector_reads_poses")
# Model fields only the motion path reads: the text-only baseline does not depend on them.
MOTION_PATH_MODEL_FIELDS = ("use_motion_quantized", "motion_projector_reads_poses")
CHAT_DEFAULTS = "humocon_chat.json"


# --------------------------------------------------------------------------------------------- small helpers


def _say(message: str = "") -> None:
    print(message, flush=True)


def _digest(text: str) -> str:
    """Short, stable digest of a stage fingerprint (what a later stage's fingerprint chains on)."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (a crash never leaves half a marker or results file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, default=_json_default)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def find_shared_data() -> Path | None:
    """The real-data folder: $HUMOCON_SHARED_DATA, else ../shared/data from the working directory or the repo."""
    candidates = []
    if os.environ.get("HUMOCON_SHARED_DATA"):
        candidates.append(Path(os.environ["HUMOCON_SHARED_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def _resolve_bandai(data_args) -> Path | None:
    """The Bandai Namco data set folder, or None when the recipe disables it or it is absent."""
    folder = data_args.bandai_dir
    if folder in (None, "", "none", False):
        return None
    if folder == "auto":
        shared = find_shared_data()
        found = shared / "bandai_namco_1" if shared is not None else None
        return found if found is not None and found.is_dir() else None
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data.bandai_dir={folder!r} is not a folder; fix the path or set it to null")
    return path


# How a user asks about a whole real take (`humocon ask`, the README): the benchmark's phrasing and the common one.
REAL_ACTION_QUESTIONS = ("What action does the person do?", "What is the person doing?")
HELD_OUT_ACTION_QUESTION = REAL_ACTION_QUESTIONS[1]


def _real_qa_rows(real_rows: list[dict]) -> list[dict]:
    """Stage-3 questions about the real takes whose labels answer them in the benchmark's vocabulary."""
    rows = []
    for r in real_rows:
        if r.get("action"):
            rows += [{"question": q, "answer": r["action"], "motion": r["motion_path"]} for q in REAL_ACTION_QUESTIONS]
        if r.get("direction"):
            rows.append({"question": "What direction does the person move?", "answer": r["direction"],
                         "motion": r["motion_path"]})
    return rows


def _resolve_cmu(data_args) -> tuple[Path | None, Path | None]:
    """(BVH folder, descriptions CSV) or (None, None) when the recipe disables CMU or it is absent."""
    bvh = data_args.cmu_bvh_dir
    if bvh in (None, "", "none", False):
        return None, None
    if bvh == "auto":
        shared = find_shared_data()
        if shared is None or not (shared / "cmu_bvh").is_dir():
            return None, None
        bvh_dir = shared / "cmu_bvh"
    else:
        bvh_dir = Path(bvh).expanduser()
        if not bvh_dir.is_dir():
            raise FileNotFoundError(f"data.cmu_bvh_dir={bvh!r} is not a folder; fix the path or set it to null")
    csv = data_args.cmu_descriptions_csv
    if csv in (None, "", "auto"):
        for candidate in (bvh_dir.parent / "cmu_index" / "CMU_data.csv", bvh_dir / "CMU_data.csv"):
            if candidate.is_file():
                return bvh_dir, candidate
        if csv == "auto" or csv is None:
            logger.warning("CMU BVH folder %s has no CMU_data.csv next to it; CMU motions are not used", bvh_dir)
            return None, None
    csv_path = Path(csv).expanduser()
    if not csv_path.is_file():
        raise FileNotFoundError(f"data.cmu_descriptions_csv={csv!r} does not exist")
    return bvh_dir, csv_path


def row_motion(row: Mapping):
    """The motion of a data set row: a (T, 22, 3) float32 array (`joints`) or a file path (`motion_path`)."""
    joints = row.get("joints")
    if joints is not None:
        return np.asarray(joints, dtype=np.float32)
    path = row.get("motion_path") or row.get("motion")
    return path if path else None


# ------------------------------------------------------------------------------------------------- stages


@dataclass
class StageRecord:
    name: str
    wall_time_s: float
    reused: bool
    info: dict = field(default_factory=dict)
    # CPU seconds of this process (all threads): with other jobs on the machine, wall time / CPU time shows
    # how much of the wall time was waiting for a core.
    cpu_time_s: float | None = None


class StageRunner:
    """Runs stages once: a finished stage leaves `stage.json` with a fingerprint of its inputs; a later run with the
    same fingerprint reuses the stage's outputs instead of recomputing them."""

    def __init__(self, root: Path, fresh: bool = False):
        self.root = root
        self.fresh = fresh
        self.records: dict[str, StageRecord] = {}

    def stage_dir(self, name: str) -> Path:
        return self.root / "stages" / name

    def run(self, name: str, fingerprint: dict, fn: Callable[[Path], dict], all_processes: bool = False) -> dict:
        """Run `fn(stage_folder)` unless a finished run with the same fingerprint exists. Under `accelerate launch`,
        training stages run on every process (the Trainer needs them all); the others on the main process while
        the rest wait; only the main process writes markers."""
        folder = self.stage_dir(name)
        marker = folder / MARKER
        key = json.dumps(fingerprint, sort_keys=True, default=str)
        main = _is_main()
        if marker.is_file() and not self.fresh:
            saved = json.loads(marker.read_text())
            if saved.get("fingerprint") == key:
                self.records[name] = StageRecord(name, saved["wall_time_s"], True, saved.get("info", {}),
                                                 saved.get("cpu_time_s"))
                if main:
                    _say(f"[{name}] reusing the finished stage in {folder} (took {saved['wall_time_s']:.0f} s); "
                         "delete it or pass --fresh to redo it")
                return saved.get("info", {})
            if main:
                _say(f"[{name}] inputs changed since the last run: redoing the stage")
                shutil.rmtree(folder)
        elif self.fresh and folder.exists() and main:
            shutil.rmtree(folder)
        _barrier()
        folder.mkdir(parents=True, exist_ok=True)
        if main:
            _say(f"[{name}] starting")
        start, cpu_start = time.perf_counter(), time.process_time()
        info = {}
        if all_processes or main:
            info = fn(folder) or {}
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if main:
            _write_json(marker, {"fingerprint": key, "wall_time_s": elapsed, "cpu_time_s": cpu, "info": info})
            _say(f"[{name}] done in {elapsed:.0f} s (CPU time {cpu:.0f} s)")
        _barrier()
        if not main:
            info = json.loads(marker.read_text()).get("info", {})
        self.records[name] = StageRecord(name, elapsed, False, info, cpu)
        return info


def _seed_before_init(seed: int) -> None:
    """Seed the global RNGs right before a stage initialises new weights. The Trainer seeds only when it is
    created, after the model exists; without this, the initial weights would depend on what the process did
    before (e.g. converting the GGUF LLM on a first run), and a resumed or reused pipeline would not reproduce
    a fresh one."""
    from transformers import set_seed

    set_seed(seed)


def _bf16_on_cpu(section: Mapping) -> dict:
    from humocon_hf.recipes import mixed_precision_for_this_machine

    return mixed_precision_for_this_machine(dict(section))


def _autocast(model, enabled: bool):
    """bf16 autocast for generation when the stage trained in bf16 (same numerics as training)."""
    import torch

    from humocon_hf.recipes import cpu_has_bf16

    device_type = model.device.type
    if not enabled or (device_type == "cpu" and not cpu_has_bf16()):
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def _state():
    from accelerate import PartialState

    return PartialState()


def _is_main() -> bool:
    """True on the main process (always, without `accelerate launch`)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return True
    return _state().is_main_process


def _barrier() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _state().wait_for_everyone()


# ----------------------------------------------------------------------------------------------- the pipeline


@dataclass
class DemoOptions:
    output_dir: str = DEFAULT_OUTPUT_DIR
    recipe: str = "small"
    steps_scale: float = 1.0
    seed: int | None = None
    overrides: dict = field(default_factory=dict)
    fresh: bool = False
    use_cmu: bool = True
    max_eval_samples: int | None = None
    command: str | None = None


class DemoPipeline:
    """The stages of `humocon demo` as methods; `run()` executes them in order (see the module docstring)."""

    def __init__(self, options: DemoOptions):
        self.options = options
        recipe = load_recipe(options.recipe, overrides=options.overrides or None)
        if options.seed is not None:
            recipe = recipe.with_overrides({
                "data": {"seed": options.seed},
                **{s: {"seed": options.seed} for s in ("pretrain", "translate", "tune")},
            })
        if options.steps_scale != 1.0:
            recipe = recipe.scaled(options.steps_scale)
        if not options.use_cmu:  # no real mocap at all: CMU and Bandai Namco
            recipe = recipe.with_overrides({"data": {"cmu_bvh_dir": None, "bandai_dir": None}})
        if options.max_eval_samples is not None:
            recipe = recipe.with_overrides({"evaluate": {"max_samples": options.max_eval_samples}})
        self.recipe: Recipe = recipe
        self.root = Path(options.output_dir).expanduser().resolve()
        self.runner = StageRunner(self.root, fresh=options.fresh)
        self._llm_cache = None

    # -------------------------------------------------------------------------------------- fingerprints
    def _fp(self, *sections: str, after: str | None = None, encoders_only: bool = False,
            text_only: bool = False) -> dict:
        exclude = {"model": LLM_ONLY_MODEL_FIELDS} if encoders_only else None
        if text_only:
            exclude = {"model": MOTION_PATH_MODEL_FIELDS}
        fp = {"recipe": self.recipe.fingerprint(*sections, exclude=exclude), "version": 1}
        if after is not None:
            # Chain: a stage is stale when the stage it builds on was redone.
            marker = self.runner.stage_dir(after) / MARKER
            fp["after"] = _digest(json.loads(marker.read_text())["fingerprint"]) if marker.is_file() else None
        return fp

    def training_args(self, section: str, output_dir: Path):
        """The section's `(TrainingArguments, stage arguments)`; bf16 on a machine without a GPU runs as CPU
        autocast where the CPU has native bf16 (AVX512-BF16 / AMX: about twice as fast here), else in float32."""
        return self.recipe.training_args(section, output_dir=output_dir)

    # ---------------------------------------------------------------------------------------------- run
    def stage_plan(self) -> list[tuple[str, dict, Callable[[Path], dict], bool]]:
        """(name, fingerprint, function, runs on every process) for each stage, in order. Fingerprints chain, so
        a redone stage makes the stages built on it stale."""
        plan = [
            ("data", lambda: self._fp("model", "data", encoders_only=True), self.stage_data, False),
            ("pretrain", lambda: self._fp("model", "pretrain", after="data", encoders_only=True), self.stage_pretrain,
             True),
            ("translate", lambda: self._fp("model", "translate", after="pretrain"), self.stage_translate, True),
            ("tune", lambda: self._fp("model", "tune", after="translate"), self.stage_tune, True),
        ]
        if self.recipe.evaluate.baseline == "text_only":
            plan.append(("baseline", lambda: self._fp("model", "tune", after="data", text_only=True), self.stage_baseline,
                         True))
        plan.append((
            "evaluate",
            lambda: {**self._fp("evaluate", after="tune"), "baseline": self._fp("tune", after="baseline")},
            self.stage_evaluate,
            False,
        ))
        plan.append(("export", lambda: self._fp(after="evaluate"), self.stage_export, False))
        return plan

    def run(self, until: str = "export") -> dict:
        """Run the stages up to and including `until` (finished ones are reused); the full demo by default."""
        import torch
        from transformers.utils import logging as hf_logging

        names = [name for name, *_ in self.stage_plan()]
        if until not in names:
            raise ValueError(f"unknown stage {until!r}; stages are {names}")
        hf_logging.set_verbosity_error()
        torch.manual_seed(self.recipe.data.seed)
        total_start = time.perf_counter()
        self.root.mkdir(parents=True, exist_ok=True)
        if _is_main():
            _say(f"HuMoCon {until if until != 'export' else 'demo'} -> {self.root}  (recipe: {self.recipe.source}, "
                 f"torch threads: {torch.get_num_threads()})")
        for name, fingerprint, fn, everywhere in self.stage_plan():
            self.runner.run(name, fingerprint(), fn, all_processes=everywhere)
            if name == until:
                break
        total = time.perf_counter() - total_start
        results = self._final_results(total)
        if _is_main():
            _write_json(self.root / "results.json", results)
            self._print_summary(results, full=until in ("evaluate", "export"))
        return results

    # --------------------------------------------------------------------------------------------- data
    def stage_data(self, folder: Path) -> dict:
        from tqdm.auto import tqdm

        data_args = self.recipe.data
        model_args = self.recipe.model
        qa = build_benchmark(data_args, folder / "cache")
        from humocon_hf.data.augmentation import mirror_joints, mirror_qa_split, mirror_text

        if data_args.mirror_train:
            import datasets

            mirrored = mirror_qa_split(qa["train"], folder / "mirrored")
            qa["train"] = datasets.concatenate_datasets([qa["train"], mirrored])
        qa.save_to_disk(str(folder / "qa"))
        info = {"splits": {k: len(v) for k, v in qa.items()}, "mirrored_train": bool(data_args.mirror_train)}

        real_motions: list[np.ndarray] = []  # kept for the normalisation fit below (no re-reading of the files)

        def store(subfolder: str, take: dict, fps_kwargs: dict, labels: dict, train: bool = True) -> list[dict]:
            """Load one real take as SMPL-22 joints at 20 fps and save it (and, for training, its mirror twin with
            labels mirrored). A held-out take (`train=False`) stays out of the normalisation fit."""
            from humocon_hf.processing.motion_io import load_motion

            try:
                joints = load_motion(take["motion_path"], fps=20.0, **fps_kwargs).joints[: data_args.max_frames * 4]
            except (ValueError, FileNotFoundError) as err:  # a file the reader cannot map: skip, say so
                logger.warning("skipping %s: %s", take["motion_path"], err)
                return []
            twins = [("", joints.astype(np.float32), take["caption"], labels)]
            if data_args.mirror_train and train:
                twins.append(("M", mirror_joints(joints), mirror_text(take["caption"]),
                              {k: mirror_text(v) if isinstance(v, str) else v for k, v in labels.items()}))
            rows = []
            for prefix, motion, caption, extra in twins:
                path = folder / subfolder / f"{prefix}{take['id']}.npy"
                np.save(path, motion)
                if train:
                    real_motions.append(motion)
                rows.append({"id": f"{prefix}{take['id']}", "caption": caption, "motion_path": str(path),
                             "source": take["motion_path"], **extra, **({"mirrored": True} if prefix else {})})
            return rows

        # Real CMU trials: captions for stage 2, action questions for stage 3, motions for stage 1; the trials of the
        # held-out subjects go to cmu_heldout.json only (the `real_cmu` evaluation), never to training.
        cmu_rows, heldout_rows = [], []
        holdout = set(data_args.cmu_holdout_subjects or ())
        bvh_dir, csv = _resolve_cmu(data_args)
        if bvh_dir is not None:
            from humocon_hf.data.loaders import load_cmu_bvh

            (folder / "cmu").mkdir(exist_ok=True)
            for row in tqdm(load_cmu_bvh(bvh_dir, csv), desc="CMU BVH -> SMPL-22 joints", unit="trial"):
                fps = {"source_fps": row["source_fps"]} if row.get("source_fps") else {}
                labels = {"action": row["action"], "subject": row["subject"]}
                if row["subject"] in holdout:
                    heldout_rows += store("cmu", row, fps, labels, train=False)
                else:
                    cmu_rows += store("cmu", row, fps, labels)
        _write_json(folder / "cmu.json", cmu_rows)
        _write_json(folder / "cmu_heldout.json", heldout_rows)
        info["cmu_trials"] = len(cmu_rows)
        info["cmu_heldout_trials"] = len(heldout_rows)
        info["cmu_heldout_subjects"] = sorted(holdout)
        info["cmu_source"] = str(bvh_dir) if bvh_dir else None

        # Real studio mocap of another rig (automatic skeleton mapping), with content/style labels.
        bandai_rows = []
        bandai_dir = _resolve_bandai(data_args)
        if bandai_dir is not None:
            from humocon_hf.data.loaders import load_bandai_namco

            (folder / "bandai").mkdir(exist_ok=True)
            for row in tqdm(load_bandai_namco(bandai_dir), desc="Bandai Namco BVH -> SMPL-22 joints", unit="take"):
                bandai_rows += store("bandai", row, {}, {"action": row["action"], "direction": row["direction"]})
        _write_json(folder / "bandai.json", bandai_rows)
        info["bandai_takes"] = len(bandai_rows)
        info["bandai_source"] = str(bandai_dir) if bandai_dir else None

        # Processor: the LLM's tokenizer (+ <motion>/<video>) and the motion normalisation fitted on training motions.
        processor = build_processor(model_args, data_args)
        train_motions = [row_motion(r) for r in _unique_motion_rows(qa["train"])] + real_motions
        processor.motion_feature_extractor.fit_normalization(train_motions)
        processor.save_pretrained(folder / "processor")
        info["normalization_motions"] = len(train_motions)
        return info

    def load_data(self):
        import datasets

        folder = self.runner.stage_dir("data")
        qa = datasets.load_from_disk(str(folder / "qa"))
        real_rows = json.loads((folder / "cmu.json").read_text())
        if (folder / "bandai.json").is_file():
            real_rows += json.loads((folder / "bandai.json").read_text())
        return qa, real_rows

    def load_processor(self):
        from humocon_hf.processing.processing_humocon import MotionVideoProcessor

        return MotionVideoProcessor.from_pretrained(self.runner.stage_dir("data") / "processor")

    # ----------------------------------------------------------------------------------------- pretrain
    def stage_pretrain(self, folder: Path) -> dict:
        from humocon_hf.training.concept_discovery import (
            ConceptDiscoveryCollator,
            ConceptDiscoveryRecipe,
            log_history_components,
        )

        model_args = self.recipe.model
        targs, pargs = self.training_args("pretrain", output_dir=folder)
        qa, real_rows = self.load_data()
        processor = self.load_processor()
        _seed_before_init(targs.seed)
        model = build_concept_model(model_args, pargs)

        items = [{"motion": row_motion(r)} for r in _unique_motion_rows(qa["train"])]
        items += [{"motion": np.load(r["motion_path"])} for r in real_rows]
        if pargs.use_video and pargs.phase2_max_steps > 0:
            items += _rendered_pairs(items[: pargs.num_video_motions], processor)
        raw = self.recipe.sections["pretrain"]
        own = {"phase1_max_steps", "phase1_learning_rate", "phase2_max_steps", "phase2_learning_rate", "mask_ratio",
               "lambda_dis", "lambda_act", "lambda_align", "use_video", "num_video_motions"}
        passed = {"per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps", "seed",
                  "output_dir"}
        extra = {k: v for k, v in raw.items() if k not in own and k not in passed}
        extra.update(_bf16_on_cpu(raw))
        extra["disable_tqdm"] = targs.disable_tqdm  # as the recipe resolved it (progress bars by default)
        schedule = ConceptDiscoveryRecipe(
            output_dir=str(folder),
            phase1_steps=pargs.phase1_max_steps,
            phase1_learning_rate=pargs.phase1_learning_rate,
            phase2_steps=pargs.phase2_max_steps,
            phase2_learning_rate=pargs.phase2_learning_rate,
            per_device_train_batch_size=targs.per_device_train_batch_size,
            gradient_accumulation_steps=targs.gradient_accumulation_steps,
            logging_steps=targs.logging_steps,
            save_steps=targs.save_steps,
            seed=targs.seed,
            training_args=extra,
        )
        collator = ConceptDiscoveryCollator(
            feature_extractor=processor.motion_feature_extractor,
            video_processor=processor.video_feature_extractor,
            max_frames=self.recipe.data.max_frames,
        )
        out = schedule.run(model, _ListDataset(items), collator=collator, resume=True)
        if _is_main():
            model.motion_encoder.save_pretrained(folder / "motion_encoder")
            model.video_encoder.save_pretrained(folder / "video_encoder")
        info = {"motions": len(items)}
        for phase, result in out.items():
            metrics = result.get("metrics") or {}
            history = [h for h in result.get("log_history", []) if "loss" in h]
            components = log_history_components(result.get("log_history", []))
            info[phase] = {
                "skipped": result.get("skipped"),
                "train_runtime_s": metrics.get("train_runtime"),
                "first_loss": history[0]["loss"] if history else None,
                "last_loss": history[-1]["loss"] if history else None,
                # first and last logged value of each objective (loss_rec_motion, loss_dis, loss_act, loss_align...)
                "objectives": {k: [v[0], v[-1]] for k, v in components.items() if k != "loss"},
            }
        # Concept usage on the training motions: how many of the codes the encoder actually uses.
        info["concepts_used"] = _concepts_used(model.motion_encoder, processor, [it["motion"] for it in items[:64]])
        return info

    def load_encoders(self):
        from humocon_hf.modeling.modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder

        folder = self.runner.stage_dir("pretrain")
        return (
            HuMoConMotionEncoder.from_pretrained(folder / "motion_encoder").eval(),
            HuMoConVideoEncoder.from_pretrained(folder / "video_encoder").eval(),
        )

    # ---------------------------------------------------------------------------------------- translate
    def _load_llm(self):
        import torch

        from humocon_hf.llm import load_llm

        model_args = self.recipe.model
        return load_llm(
            model_args.llm_name_or_path, dtype=getattr(torch, model_args.dtype), **self._attention(composite=False)
        )

    def _attention(self, composite: bool = True) -> dict:
        """`from_pretrained` kwargs choosing the LLM's attention kernel for training and evaluation: only the LLM's
        (`text_config` of a `HuMoConForCausalLM`); the encoders keep their own attention."""
        impl = self.recipe.model.attn_implementation
        if impl is None:
            return {}
        return {"attn_implementation": {"text_config": impl} if composite else impl}

    def stage_translate(self, folder: Path) -> dict:
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
        from humocon_hf.training.instruction_tuning import ModalityTranslationTrainer

        model_args = self.recipe.model
        targs, tr_args = self.training_args("translate", output_dir=folder / "checkpoints")
        qa, real_rows = self.load_data()
        processor = self.load_processor()
        llm, _ = self._load_llm()
        motion_encoder, video_encoder = self.load_encoders()
        _seed_before_init(targs.seed)
        model = HuMoConForCausalLM.from_parts(
            llm, motion_encoder, video_encoder, processor, use_motion_quantized=model_args.use_motion_quantized,
            motion_projector_reads_poses=model_args.motion_projector_reads_poses,
        )

        rows = [{"motion": r, "caption": c} for r, c in _caption_rows(qa["train"])]
        rows += [{"motion": r["motion_path"], "caption": r["caption"]} for r in real_rows] * tr_args.caption_repeats
        trainer = ModalityTranslationTrainer(
            model=model, args=targs, processor=processor, train_dataset=_ListDataset(rows),
            data_collator=_collator(processor, model_args),
        )
        metrics = _train(trainer, targs.output_dir)
        if _is_main():
            model.save_pretrained(folder / "model")
        return {"captions": len(rows), **_train_info(trainer, metrics)}

    # --------------------------------------------------------------------------------------------- tune
    def _qa_rows(self, split, with_motion: bool = True) -> list[dict]:
        rows = []
        for r in split:
            row = {"question": r["question"], "answer": r["answer"]}
            if with_motion:
                row["motion"] = row_motion(r)
            rows.append(row)
        return rows

    def _tune(self, model, folder: Path, with_motion: bool) -> dict:
        from humocon_hf.training.instruction_tuning import InstructionTuningTrainer, merge_adapter

        model_args = self.recipe.model
        targs, tune_args = self.training_args("tune", output_dir=folder / "checkpoints")
        qa, real_rows = self.load_data()
        processor = self.load_processor()
        _seed_before_init(targs.seed)  # LoRA weights are initialised when the trainer wraps the model
        lora = {}
        if tune_args.lora_target_modules:
            lora["lora_target_modules"] = tune_args.lora_target_modules
        train = qa["train"]
        if tune_args.balance_query_types:
            from humocon_hf.data import oversample_to_balance

            train = oversample_to_balance(list(train), "query_type", seed=targs.seed)
        real_qa = _real_qa_rows(real_rows)
        if not with_motion:  # the text-only baseline gets the same questions without the motion
            real_qa = [{k: v for k, v in r.items() if k != "motion"} for r in real_qa]
        trainer = InstructionTuningTrainer(
            model=model, args=targs, processor=processor,
            train_dataset=_ListDataset(self._qa_rows(train, with_motion) + real_qa),
            data_collator=_collator(processor, model_args),
            lora_r=tune_args.lora_r, lora_alpha=tune_args.lora_alpha, lora_dropout=tune_args.lora_dropout,
            train_projectors=tune_args.train_projectors and with_motion, **lora,
        )
        metrics = _train(trainer, targs.output_dir)
        info = _train_info(trainer, metrics)
        if _is_main():
            merge_adapter(trainer.model).save_pretrained(folder / "model")
        return {"questions": len(qa["train"]), "real_questions": len(real_qa), "training_rows": len(train) + len(real_qa),
                **info}

    def stage_tune(self, folder: Path) -> dict:
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

        model = HuMoConForCausalLM.from_pretrained(self.runner.stage_dir("translate") / "model", **self._attention())
        return self._tune(model, folder, with_motion=True)

    def stage_baseline(self, folder: Path) -> dict:
        """Same LLM, same LoRA recipe and questions, no motion: what the question text alone gives."""
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

        processor = self.load_processor()
        llm, _ = self._load_llm()
        motion_encoder, video_encoder = self.load_encoders()
        model = HuMoConForCausalLM.from_parts(llm, motion_encoder, video_encoder, processor)
        return self._tune(model, folder, with_motion=False)

    # ----------------------------------------------------------------------------------------- evaluate
    def stage_evaluate(self, folder: Path) -> dict:
        from humocon_hf.evaluation import evaluate_motion_qa
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

        ev = self.recipe.evaluate
        model_args = self.recipe.model
        qa, _ = self.load_data()
        if ev.split not in qa:
            raise ValueError(f"evaluate.split={ev.split!r} is not a split of the benchmark ({list(qa)})")
        split = qa[ev.split]
        processor = self.load_processor()
        n = len(split) if ev.max_samples is None else min(ev.max_samples, len(split))

        def run(model, name: str, with_motion: bool) -> dict:
            answer = make_answer_fn(model, processor, model_args, ev.max_new_tokens, with_motion,
                                    progress=(name, n, ev.batch_size),
                                    bf16=bool(self.recipe.sections["tune"].get("bf16")))
            result = evaluate_motion_qa(answer, split, batch_size=ev.batch_size, limit=ev.max_samples,
                                        model_name=name, dataset_name="HuMoCon procedural motion-QA",
                                        dataset_type="humocon-procedural-qa", split=ev.split)
            return result

        real = self._heldout_cmu_questions()

        def run_real(model, name: str, with_motion: bool) -> dict:
            answer = make_answer_fn(model, processor, model_args, ev.max_new_tokens, with_motion,
                                    bf16=bool(self.recipe.sections["tune"].get("bf16")))
            return evaluate_motion_qa(answer, real, batch_size=ev.batch_size, model_name=name,
                                      dataset_name="CMU mocap, held-out subjects", dataset_type="cmu-mocap",
                                      split="held-out subjects")

        model = HuMoConForCausalLM.from_pretrained(self.runner.stage_dir("tune") / "model", **self._attention()).eval()
        results = {"model": run(model, "HuMoCon (motion + question)", True)}
        if real:
            results["real_cmu_model"] = run_real(model, "HuMoCon (motion + question)", True)
        del model
        base, base_name = None, None
        if ev.baseline == "text_only":
            base = HuMoConForCausalLM.from_pretrained(
                self.runner.stage_dir("baseline") / "model", **self._attention()
            ).eval()
            base_name = "Text-only baseline (question only)"
        elif ev.baseline == "zero_shot":
            llm, _ = self._load_llm()
            enc = self.load_encoders()
            base = HuMoConForCausalLM.from_parts(llm, *enc, processor).eval()
            base_name = "Zero-shot LLM (question only)"
        if base is not None:
            results["baseline"] = run(base, base_name, False)
            if real:
                results["real_cmu_baseline"] = run_real(base, base_name, False)
        for key, value in results.items():
            _write_json(folder / f"{key}.json", value)
        return {key: value["metrics"] for key, value in results.items()}

    def _describe_concepts(self, model, processor, qa, real_rows, limit: int = 400) -> dict:
        """`describe_concepts` on (up to `limit`) training motions with their captions, real takes included."""
        from humocon_hf.concepts import describe_concepts
        from humocon_hf.processing.motion_io import load_motion

        rows = _unique_motion_rows(qa["train"])
        motions, captions = [], []
        for row in rows[: max(0, limit - len(real_rows))]:
            joints = row_motion(row)
            motions.append(load_motion(joints).joints if isinstance(joints, (str, os.PathLike)) else joints)
            captions.append(row.get("caption"))
        for row in real_rows[:limit]:
            motions.append(np.load(row["motion_path"]))
            captions.append(row.get("caption"))
        max_frames = self.recipe.data.max_frames
        return describe_concepts(model.motion_encoder, processor.motion_feature_extractor,
                                 [m[:max_frames] for m in motions], captions)

    def _heldout_cmu_questions(self) -> list[dict]:
        """"What is the person doing?" about every held-out CMU trial whose description names an action."""
        path = self.runner.stage_dir("data") / "cmu_heldout.json"
        rows = json.loads(path.read_text()) if path.is_file() else []
        return [{"id": r["id"], "question": HELD_OUT_ACTION_QUESTION, "answer": r["action"],
                 "motion_path": r["motion_path"], "query_type": "action"} for r in rows if r.get("action")]

    # ------------------------------------------------------------------------------------------- export
    def stage_export(self, folder: Path) -> dict:
        from humocon_hf.hub import save_for_remote_code
        from humocon_hf.model_card import render_model_card
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

        qa, real_rows = self.load_data()
        processor = self.load_processor()
        model = HuMoConForCausalLM.from_pretrained(self.runner.stage_dir("tune") / "model").eval()
        # The concepts in words, measured on the training motions, travel in the checkpoint's config.
        described = self._describe_concepts(model, processor, qa, real_rows)
        model.config.motion_config.concept_descriptions = {str(k): v["description"] for k, v in described.items()}
        _write_json(self.root / "concepts.json", {str(k): v for k, v in described.items()})
        # The checkpoint goes to the output folder's top level, next to the card: `from_pretrained(output_dir)`.
        save_for_remote_code(model, self.root, processor=processor)
        # The prompt format the model was tuned with, read back by `humocon ask` and the Gradio app.
        _write_json(self.root / CHAT_DEFAULTS, {
            "system_prompt": self.recipe.model.system_prompt,
            "max_new_tokens": self.recipe.evaluate.max_new_tokens,
        })
        info = {"checkpoint": str(self.root), "concepts_described": len(described)}

        test = qa[self.recipe.evaluate.split]
        row = test[0]
        joints = row_motion(row)
        if isinstance(joints, (str, os.PathLike)):
            from humocon_hf.processing.motion_io import load_motion

            joints = load_motion(joints).joints
        info["preview"] = str(save_motion_preview(joints, self.root / "preview.gif"))
        info["concept_timeline"] = str(
            save_concept_timeline(model, processor, joints, self.root / "concept_timeline.png",
                                  title=f"Concepts of a test motion: {row.get('caption') or row['question']}")
        )
        info["preview_caption"] = row.get("caption")
        evaluation = self._load_eval()
        card = render_model_card(
            results=evaluation.get("model"),
            baseline_results=evaluation.get("baseline"),
            recipe=self.recipe,
            command=self.options.command or "humocon demo",
            stage_times={name: rec.wall_time_s for name, rec in self.runner.records.items()},
            base_model=self.recipe.model.llm_name_or_path,
            model_name=self.root.name,
            datasets_used=self._datasets_used(),
            model=model,
            real_cmu=real_cmu_summary([evaluation]),
        )
        (self.root / "README.md").write_text(card, encoding="utf-8")
        return info

    def evaluate_checkpoint(self, model_dir: str) -> dict:
        """`humocon evaluate --model DIR`: any checkpoint on this recipe's held-out split (with the motion)."""
        from humocon_hf.cli import load_checkpoint
        from humocon_hf.evaluation import evaluate_motion_qa, format_table, write_results

        self.root.mkdir(parents=True, exist_ok=True)
        self.runner.run("data", self._fp("model", "data"), self.stage_data)
        ev = self.recipe.evaluate
        qa, _ = self.load_data()
        split = qa[ev.split]
        model, processor, defaults = load_checkpoint(model_dir)
        model_args = self.recipe.model
        if defaults.get("system_prompt") is not None:
            model_args.system_prompt = defaults["system_prompt"]
        n = len(split) if ev.max_samples is None else min(ev.max_samples, len(split))
        answer = make_answer_fn(model, processor, model_args, ev.max_new_tokens, True,
                                progress=(Path(model_dir).name, n, ev.batch_size))
        result = evaluate_motion_qa(answer, split, batch_size=ev.batch_size, limit=ev.max_samples,
                                    model_name=str(model_dir), dataset_name="HuMoCon procedural motion-QA",
                                    dataset_type="humocon-procedural-qa", split=ev.split)
        paths = write_results(result, self.root, stem=f"evaluation_{Path(model_dir).name or 'model'}")
        _say(format_table(result))
        _say("written: " + ", ".join(str(p) for p in paths.values()))
        return result

    def _load_eval(self) -> dict:
        folder = self.runner.stage_dir("evaluate")
        out = {}
        for key in ("model", "baseline", "real_cmu_model", "real_cmu_baseline"):
            path = folder / f"{key}.json"
            if path.is_file():
                out[key] = json.loads(path.read_text())
        return out

    def _datasets_used(self) -> list[str]:
        used = ["humocon-procedural-motion-qa"]
        data_info = json.loads((self.runner.stage_dir("data") / MARKER).read_text())["info"]
        if data_info.get("cmu_trials"):
            used.append("cmu-mocap")
        if data_info.get("bandai_takes"):
            used.append("bandai-namco-motiondataset")
        return used

    # ------------------------------------------------------------------------------------------ summary
    def _final_results(self, total_s: float) -> dict:
        evaluation = self._load_eval()
        return {
            "command": self.options.command or "humocon demo",
            "recipe": self.recipe.to_dict(),
            "recipe_source": self.recipe.source,
            "output_dir": str(self.root),
            "wall_time_s": {
                **{name: round(rec.wall_time_s, 1) for name, rec in self.runner.records.items()},
                "total_this_run": round(total_s, 1),
            },
            "cpu_time_s": {name: None if rec.cpu_time_s is None else round(rec.cpu_time_s, 1)
                           for name, rec in self.runner.records.items()},
            "reused_stages": [name for name, rec in self.runner.records.items() if rec.reused],
            "stages": {name: rec.info for name, rec in self.runner.records.items()},
            "metrics": {key: value["metrics"] for key, value in evaluation.items() if not key.startswith("real_")},
            "statistics": _statistics([evaluation]),
            "real_cmu": real_cmu_summary([evaluation]),
            "examples": _examples(evaluation, self.recipe.evaluate.num_examples),
        }

    def _print_summary(self, results: dict, full: bool = True) -> None:
        _say()
        _say("=" * 78)
        if not full:
            _say("Wall time per stage (s): " + ", ".join(
                f"{k}={v:.0f}" + (" (reused)" if k in results["reused_stages"] else "")
                for k, v in results["wall_time_s"].items()))
            _say(f"Stage outputs: {results['output_dir']}/stages")
            _say("=" * 78)
            return
        _say("Example questions on held-out motions (model | text-only baseline | truth):")
        for ex in results["examples"]:
            _say(f"  Q: {ex['question']}")
            base = f" | baseline: {ex['baseline']!r}" if "baseline" in ex else ""
            _say(f"     model: {ex['model']!r}{base} | truth: {ex['answer']!r}")
        _say()
        if results.get("statistics"):
            from humocon_hf.stats import format_ci_table

            _say(format_ci_table(results["statistics"]))
        else:
            _say(format_summary_table(results["metrics"]))
        if results.get("real_cmu"):
            _say(format_real_cmu_line(results["real_cmu"]))
        _say()
        _say("Wall time per stage (s): " + ", ".join(
            f"{k}={v:.0f}" + (" (reused)" if k in results["reused_stages"] else "")
            for k, v in results["wall_time_s"].items()))
        cpu = {k: v for k, v in results["cpu_time_s"].items() if v is not None}
        if cpu:
            _say("CPU time per stage (s, all threads): " + ", ".join(f"{k}={v:.0f}" for k, v in cpu.items()))
        _say(f"Checkpoint, model card, preview.gif, concept_timeline.png, results.json: {results['output_dir']}")
        _say(f'Try: humocon ask --model {results["output_dir"]} --motion <file.bvh> "What is the person doing?"')
        _say("=" * 78)


# --------------------------------------------------------------------------------------------- builders


def build_benchmark(data_args, cache_dir: Path):
    """The procedural motion-QA `DatasetDict` (train / validation / test) for the recipe's data section."""
    if data_args.dataset != "procedural":
        from humocon_hf.data.loaders import load_custom_qa

        loaded = load_custom_qa(data_args.dataset)
        if hasattr(loaded, "keys") and "test" in loaded:
            return loaded
        raise ValueError(
            f"data.dataset={data_args.dataset!r}: the demo needs train and test splits; give a folder / data set with "
            "both, or use the built-in 'procedural' benchmark"
        )
    from humocon_hf.data.procedural import generate_motion_qa

    n_train, n_val, n_test = data_args.num_train_motions, data_args.num_validation_motions, data_args.num_test_motions
    total = n_train + n_val + n_test
    return generate_motion_qa(
        num_motions=total,
        seed=data_args.seed,
        questions_per_motion=data_args.questions_per_motion,
        cache_dir=str(data_args.cache_dir or cache_dir),
        splits=(n_train / total, n_val / total, n_test / total),
        rows="questions",
        max_frames=data_args.max_frames,
    )


def _unique_motion_rows(split) -> list[dict]:
    """One row per distinct motion of a QA split (questions share motions)."""
    seen, out = set(), []
    key_col = next((c for c in ("motion_id", "motion_path", "caption") if c in split.column_names), None)
    for i, row in enumerate(split):
        key = row[key_col] if key_col else i
        if key in seen:
            continue
        seen.add(key)
        out.append(row)
    return out


def _caption_rows(split) -> list[tuple[Any, str]]:
    rows = []
    for row in _unique_motion_rows(split):
        caption = row.get("caption")
        if caption:
            rows.append((row_motion(row), caption))
    return rows


def build_concept_config(model_args, pargs=None):
    """`HuMoConConceptDiscoveryConfig` for the recipe: the small preset or paper sizes, with the recipe's codebook
    size, token stride and loss settings."""
    from humocon_hf.modeling.configuration_humocon_encoders import HuMoConConceptDiscoveryConfig

    overrides = dict(model_args.encoder_overrides or {})
    motion = dict(overrides.pop("motion_config", {}) or {})
    video = dict(overrides.pop("video_config", {}) or {})
    motion["motion_token_stride"] = model_args.motion_token_stride
    if model_args.codebook_size is not None:
        motion["codebook_size"] = model_args.codebook_size
        video["codebook_size"] = model_args.codebook_size
    if model_args.vision_model_name_or_path is not None:
        video["vision_model_name_or_path"] = model_args.vision_model_name_or_path
    if pargs is not None:
        if pargs.mask_ratio is not None:
            motion["mask_ratio"] = pargs.mask_ratio
            video["mask_ratio"] = pargs.mask_ratio
        for name in ("lambda_dis", "lambda_act", "lambda_align"):
            if getattr(pargs, name) is not None:
                overrides[name] = getattr(pargs, name)
    if model_args.encoder_preset == "small":
        if model_args.vision_model_name_or_path is not None:
            video.setdefault("vision_config", None)
        return HuMoConConceptDiscoveryConfig.small(motion_config=motion, video_config=video, **overrides)
    return HuMoConConceptDiscoveryConfig(motion_config=motion, video_config=video, **overrides)


def build_concept_model(model_args, pargs=None):
    from humocon_hf.modeling.modeling_humocon_encoders import HuMoConForConceptDiscovery

    config = build_concept_config(model_args, pargs)
    if model_args.vision_model_name_or_path:
        return HuMoConForConceptDiscovery.from_vision_tower(model_args.vision_model_name_or_path, config=config)
    return HuMoConForConceptDiscovery(config)


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    from humocon_hf.llm import DEFAULT_LLM_NAME, convert_smollm2

    if name_or_path in (None, DEFAULT_LLM_NAME):
        return AutoTokenizer.from_pretrained(convert_smollm2())
    return AutoTokenizer.from_pretrained(name_or_path)


def build_processor(model_args, data_args):
    """MotionVideoProcessor for the recipe: the LLM's tokenizer, a motion feature extractor at 20 fps truncating at
    `data.max_frames`, a video processor sized for the video encoder's tower."""
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    config = build_concept_config(model_args)
    vision = config.video_config.vision_config
    tokenizer = load_tokenizer(model_args.llm_name_or_path)
    return MotionVideoProcessor(
        tokenizer=tokenizer,
        chat_template=typed_chat_template(getattr(tokenizer, "chat_template", None)),
        motion_feature_extractor=MotionFeatureExtractor(max_frames=data_args.max_frames),
        video_feature_extractor=HuMoConVideoProcessor(size=vision.image_size, patch_size=vision.patch_size),
        motion_token_stride=config.motion_config.motion_token_stride,
        video_tokens_per_frame=config.video_config.video_tokens_per_frame,
    )


_RENDER_MACRO = (
    "{%- macro humocon_content(content) -%}{%- if content is string -%}{{ content }}{%- else -%}"
    "{%- for item in content -%}{%- if item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- elif item['type'] == 'motion' -%}{{ '<motion>' }}{%- elif item['type'] == 'video' -%}{{ '<video>' }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}"
)


def typed_chat_template(template: str | None) -> str | None:
    """The LLM's own chat template made to accept typed content (text / motion / video items).

    A saved processor stores the tokenizer's template as its own; reloaded, the processor then renders typed items
    with a template that expects strings. Rewriting `message['content']` through a small macro keeps the LLM's exact
    prompt format (checked below: same text as rendering flattened strings) and works for both."""
    if not template or "item['type']" in template:
        return template
    rewritten = template
    for needle in ("messages[0]['content']", "message['content']", 'message["content"]'):
        rewritten = rewritten.replace(needle, f"humocon_content({needle})")
    if rewritten == template:
        return None  # no content access we recognise: the processor falls back to its own handling
    from jinja2.exceptions import SecurityError

    env = _sandboxed_template_env()
    flat = [{"role": "user", "content": "<motion>\nhi"}, {"role": "assistant", "content": "yes"}]
    typed = [{"role": "user", "content": [{"type": "motion"}, {"type": "text", "text": "\nhi"}]},
             {"role": "assistant", "content": "yes"}]
    try:
        same = env.from_string(template).render(messages=flat, add_generation_prompt=True) == env.from_string(
            _RENDER_MACRO + rewritten).render(messages=typed, add_generation_prompt=True)
    except SecurityError as err:
        raise ValueError(f"the LLM tokenizer's chat template reaches unsafe attributes and was not used ({err})") from None
    except Exception:  # templates using HF-only globals (strftime_now...): trust the rewrite
        same = True
    return _RENDER_MACRO + rewritten if same else None


def _sandboxed_template_env():
    """Jinja environment for tokenizer chat templates, which come from untrusted folders or the Hub.

    Same sandbox and options as transformers' own chat-template rendering: attribute access that could reach
    Python internals (``cycler.__init__.__globals__``) raises ``SecurityError`` instead of running code."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    return env


class _ListDataset:
    """A plain list as a map-style data set (rows keep numpy arrays; no Arrow conversion)."""

    def __init__(self, rows: list[dict]):
        if not rows:
            raise ValueError("empty training data: the benchmark produced no rows for this stage")
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def _collator(processor, model_args):
    from humocon_hf.training.instruction_tuning import HuMoConQACollator

    return HuMoConQACollator(processor, max_length=model_args.max_length, system_prompt=model_args.system_prompt)


def _train(trainer, output_dir) -> dict:
    from humocon_hf.training.checkpoints import last_complete_checkpoint

    checkpoint = last_complete_checkpoint(output_dir)  # skips a checkpoint half-written by a killed process
    if checkpoint:
        _say(f"  resuming from {checkpoint}")
    return trainer.train(resume_from_checkpoint=checkpoint).metrics


def _train_info(trainer, metrics: dict) -> dict:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "train_runtime_s": metrics.get("train_runtime"),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "final_train_loss": metrics.get("train_loss"),
    }


def _rendered_pairs(items: list[dict], processor) -> list[dict]:
    """Frame-aligned motion-video pairs: each motion rendered to video frames (same clock, 20 fps)."""
    from tqdm.auto import tqdm

    from humocon_hf.processing.rendering import render_motion

    size = processor.video_feature_extractor.size
    side = size["height"] if isinstance(size, dict) else int(size)
    pairs = []
    for item in tqdm(items, desc="rendering motion-video pairs", unit="clip"):
        joints = item["motion"]
        if isinstance(joints, (str, os.PathLike)):
            from humocon_hf.processing.motion_io import load_motion

            joints = load_motion(joints).joints
        frames = render_motion(joints, size=max(64, side))
        pairs.append({"motion": joints, "video": frames, "video_fps": 20.0, "paired": True})
    return pairs


def _concepts_used(motion_encoder, processor, motions: list) -> int | None:
    import torch

    if not motions:
        return None
    batch = processor.motion_feature_extractor(motions, padding="longest", return_tensors="pt")
    with torch.no_grad():
        concepts = motion_encoder.get_concepts(batch["motion_values"], batch["motion_attention_mask"])
    return int(len({int(c) for item in concepts for c in item["token_concept_ids"].tolist()}))


def make_answer_fn(model, processor, model_args, max_new_tokens: int, with_motion: bool, progress=None,
                   bf16: bool = False):
    """Batched greedy answers (left padding) in exactly the training prompt format (`HuMoConQACollator`)."""
    import torch
    from tqdm.auto import tqdm

    collator = _collator(processor, model_args)
    tokenizer = processor.tokenizer
    bar = None
    if progress is not None:
        name, total, _ = progress
        bar = tqdm(total=total, desc=f"answering: {name}", unit="q")

    def answer_fn(rows: list[dict]) -> list[str]:
        conversations = []
        for i, row in enumerate(rows):
            qa_row = {"question": row["question"], "answer": row.get("answer") or "?"}
            if with_motion:
                qa_row["motion"] = row_motion(row)
            conv = collator.row_to_conversation(qa_row, i)
            conversations.append([m for m in conv if m["role"] != "assistant"])
        previous = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            inputs = processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                                   return_tensors="pt")
        finally:
            tokenizer.padding_side = previous
        with torch.no_grad(), _autocast(model, bf16):
            out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        if bar is not None:
            bar.update(len(rows))
        return [t.strip() for t in texts]

    return answer_fn


def save_motion_preview(joints, path: Path, fps: float = 20.0) -> Path:
    from humocon_hf.processing.rendering import save_preview

    return Path(save_preview(joints, path, fps=fps) or path)


def save_concept_timeline(model, processor, joints, path: Path, title: str | None = None) -> Path:
    """Concept timeline (which codebook entry is active when) of one motion under the model's motion encoder."""
    import torch

    from humocon_hf.concepts import plot_concept_timeline

    batch = processor.motion_feature_extractor([joints], padding="longest", return_tensors="pt")
    with torch.no_grad():
        concepts = model.motion_encoder.get_concepts(batch["motion_values"], batch["motion_attention_mask"])
    segments = concepts[0]["segments"]
    return Path(plot_concept_timeline(segments, path, fps=processor.motion_feature_extractor.fps, title=title,
                                      codebook_size=model.config.motion_config.codebook_size,
                                      descriptions=model.config.motion_config.concept_descriptions))


def _examples(evaluation: dict, n: int) -> list[dict]:
    model = (evaluation.get("model") or {}).get("predictions") or []
    base = (evaluation.get("baseline") or {}).get("predictions") or []
    out = []
    # Spread the examples over the test set (different motions / query types).
    step = max(1, len(model) // max(1, n))
    for i in range(0, len(model), step)[:n]:
        ex = {"question": model[i]["question"], "answer": model[i]["answer"], "model": model[i]["prediction"]}
        if i < len(base):
            ex["baseline"] = base[i]["prediction"]
        out.append(ex)
    return out


SUMMARY_COLUMNS = (
    ("Overall", "accuracy"),
    ("Action", "action"),
    ("Direction", "direction"),
    ("Body part", "body_part"),
    ("Before", "before"),
    ("After", "after"),
    ("Other", "other"),
)


def format_summary_table(metrics: dict[str, dict]) -> str:
    """Accuracy table: one row per model (+ a row with the difference when a baseline is present)."""
    names = {"model": "HuMoCon (motion + question)", "baseline": "Text-only baseline (question only)"}
    columns = [(h, k) for h, k in SUMMARY_COLUMNS if any(m.get(k) is not None for m in metrics.values())]
    header = ["Held-out accuracy", *(h for h, _ in columns)]
    rows = []
    for key in ("model", "baseline"):
        if key in metrics:
            rows.append([names[key], *(_pct(metrics[key].get(k)) for _, k in columns)])
    if "model" in metrics and "baseline" in metrics:
        diff = []
        for _, k in columns:
            a, b = metrics["model"].get(k), metrics["baseline"].get(k)
            diff.append("-" if a is None or b is None else f"{100 * (a - b):+.1f}")
        rows.append(["Difference (points)", *diff])
    counts = metrics.get("model", {}).get("counts") or {}
    if counts:
        keys = {"accuracy": "total"}
        rows.append(["Questions", *(str(counts.get(keys.get(k, k), "-")) for _, k in columns)])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    fmt = lambda r: " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(header), line, *(fmt(r) for r in rows)])


def _statistics(evaluations: list[dict]) -> dict | None:
    """Per query type: accuracy with 95% CIs for the model and the baseline and their paired comparison
    (`humocon_hf.stats.accuracy_table_with_ci`), from one evaluation per seed (``{"model": ..., "baseline": ...}``
    with per-question predictions); None when predictions were not kept."""
    from humocon_hf.stats import accuracy_table_with_ci

    if not evaluations or any("predictions" not in e.get("model", {}) for e in evaluations):
        return None
    with_baseline = all("predictions" in e.get("baseline", {}) for e in evaluations)
    table = accuracy_table_with_ci([e["model"]["predictions"] for e in evaluations],
                                   [e["baseline"]["predictions"] for e in evaluations] if with_baseline else None)
    real = _real_cmu_runs(evaluations)
    if real is not None:  # one more column: the held-out real CMU subjects' action questions
        table["real_cmu"] = accuracy_table_with_ci(*real)["accuracy"]
    return table


def _real_cmu_runs(evaluations: list[dict]) -> tuple[list, list | None] | None:
    """(model runs, baseline runs or None) of the held-out real CMU questions, one run per seed; None when a seed
    has none (no CMU data, or no held-out subjects)."""
    if not evaluations or any(not (e.get("real_cmu_model") or {}).get("predictions") for e in evaluations):
        return None
    with_baseline = all((e.get("real_cmu_baseline") or {}).get("predictions") for e in evaluations)
    return ([e["real_cmu_model"]["predictions"] for e in evaluations],
            [e["real_cmu_baseline"]["predictions"] for e in evaluations] if with_baseline else None)


def real_cmu_summary(evaluations: list[dict]) -> dict | None:
    """`results.json["real_cmu"]`: accuracy on the held-out CMU subjects' action questions (one evaluation per
    seed), with the text-only baseline, per action, and what always answering the most frequent action scores."""
    from collections import Counter

    from humocon_hf.stats import accuracy_table_with_ci

    real = _real_cmu_runs(evaluations)
    if real is None:
        return None
    model_runs, base_runs = real
    stats = accuracy_table_with_ci(model_runs, base_runs)["accuracy"]
    first = model_runs[0]
    answers = Counter(p["answer"] for p in first)
    per_action = {}
    for action in sorted(answers):
        hits = [sum(p["correct"] for p in run if p["answer"] == action) for run in model_runs]
        per_action[action] = {"questions": answers[action], "correct_per_seed": hits}
    return {
        "question": first[0]["question"],
        "trials": [p["id"] for p in first],
        "accuracy": stats["model"]["mean"],
        "baseline_accuracy": stats["baseline"]["mean"] if "baseline" in stats else None,
        "majority_answer": answers.most_common(1)[0][0],
        "majority_accuracy": answers.most_common(1)[0][1] / len(first),
        "per_action": per_action,
        "statistics": stats,
        "predictions_per_seed": [[{k: p[k] for k in ("id", "answer", "prediction", "correct")} for p in run]
                                 for run in model_runs],
    }


def format_real_cmu_line(summary: Mapping) -> str:
    """One line for the summary: accuracy on the held-out real CMU subjects, per action, against the baselines."""
    from humocon_hf.model_card import real_cmu_per_action

    stats = summary["statistics"]["model"]
    seeds = stats["n_seeds"]
    per = real_cmu_per_action(summary)
    base = summary.get("baseline_accuracy")
    return (f"Real CMU mocap, held-out subjects ({len(summary['trials'])} trials, {summary['question']!r}): "
            f"{100 * summary['accuracy']:.1f}% [{100 * stats['low']:.1f}, {100 * stats['high']:.1f}] ({per}"
            f"{f'; {seeds} seeds' if seeds > 1 else ''}); text-only "
            f"{'-' if base is None else f'{100 * base:.1f}%'}; always {summary['majority_answer']!r} "
            f"{100 * summary['majority_accuracy']:.1f}%")


def run_demo_seeds(options: DemoOptions, seeds: list[int]) -> dict:
    """`humocon demo --seeds 0 1 2`: the whole demo once per seed (benchmark draw and every training seed), each in
    `<output_dir>/seed<k>`, then the per-query-type table over seeds: mean ± std, hierarchical bootstrap 95% CI,
    and the model-vs-baseline paired test. Writes `<output_dir>/seeds.json` and `seeds.md`; finished seeds are
    reused on a re-run."""
    from humocon_hf.stats import format_ci_table

    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct seeds, got {seeds}")
    root = Path(options.output_dir).expanduser().resolve()
    evaluations, per_seed = [], {}
    for seed in seeds:
        folder = root / f"seed{seed}"
        _say(f"[seeds] seed {seed} -> {folder}")
        pipeline = DemoPipeline(dataclasses.replace(options, seed=seed, output_dir=str(folder)))
        results = pipeline.run()
        evaluations.append(pipeline._load_eval())
        per_seed[seed] = {"metrics": results["metrics"], "wall_time_s": results["wall_time_s"]}
    table = _statistics(evaluations)
    real = real_cmu_summary(evaluations)
    summary = {"seeds": seeds, "per_seed": per_seed, "statistics": table, "real_cmu": real}
    if _is_main():
        text = format_ci_table(table) if table else "(no per-question predictions kept)"
        if real:
            text += "\n\n" + format_real_cmu_line(real)
        _write_json(root / "seeds.json", summary)
        (root / "seeds.md").write_text(f"Held-out accuracy over seeds {seeds}\n\n{text}\n")
        _say()
        _say(f"Held-out accuracy over seeds {seeds}:")
        _say(text)
        _say(f"written: {root / 'seeds.json'}, {root / 'seeds.md'}")
    return summary


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def run_demo(output_dir: str = DEFAULT_OUTPUT_DIR, recipe: str = "small", steps_scale: float = 1.0,
             seed: int | None = None, overrides: dict | None = None, fresh: bool = False, use_cmu: bool = True,
             max_eval_samples: int | None = None, command: str | None = None) -> dict:
    """Run the demo pipeline and return the results dict (also written to `<output_dir>/results.json`)."""
    from humocon_hf.auto import register_auto_classes

    register_auto_classes()
    options = DemoOptions(output_dir=output_dir, recipe=recipe, steps_scale=steps_scale, seed=seed,
                          overrides=overrides or {}, fresh=fresh, use_cmu=use_cmu,
                          max_eval_samples=max_eval_samples, command=command or " ".join(["humocon", *sys.argv[1:]]))
    return DemoPipeline(options).run()


def _variant_folder(name: str) -> str:
    """'w/o masked reconstruction' -> 'wo_masked_reconstruction' (a folder name per ablation variant)."""
    slug = "".join(c if c.isalnum() else "_" for c in name.replace("w/o", "wo").lower())
    return "_".join(part for part in slug.split("_") if part)


# Ablation variants that change the recipe rather than an objective switch: no concept discovery at all (the same
# encoder, randomly initialised and frozen: stage 1 skipped).
RECIPE_VARIANTS: dict[str, dict] = {
    "no concept discovery": {"pretrain": {"phase1_max_steps": 0, "phase2_max_steps": 0}},
}
TEXT_ONLY_ROW = "text-only (no motion)"


def run_ablation_study(options: DemoOptions, variants: Mapping[str, Mapping] | None = None,
                       seeds: Sequence[int] | None = None) -> dict:
    """Paper Table 3: train every variant (the full model, one per removed stage-1 objective, no concept discovery)
    through stages 1-3 on the same benchmark and seed, evaluate each on the held-out split, print and write the
    table; with several `seeds`, once per seed, reported as mean ± std over seeds with 95% CIs and each variant
    compared with the full model on the same questions (paired bootstrap, McNemar).

    Each variant is a demo pipeline in `<output_dir>/[seed<k>/]<variant>/` whose recipe differs only in
    `model.encoder_overrides` (e.g. `use_actionable: false`) or, for `RECIPE_VARIANTS`, in the stage-1 budget, so
    finished variants are reused on a re-run and an interrupted one resumes. The full variant also trains the
    text-only baseline (a row of the table). Alignment needs paired video: with `pretrain.use_video: false` the
    "w/o alignment" variant is left out with a note.
    """
    from humocon_hf.evaluation import ABLATION_VARIANTS, write_ablation
    from humocon_hf.stats import accuracy_table_with_ci, format_ablation_ci_table

    variants = dict({**ABLATION_VARIANTS, **RECIPE_VARIANTS} if variants is None else variants)
    if not variants:
        raise ValueError("no ablation variants given")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise ValueError(f"--seeds needs distinct seeds, got {list(seeds)}")
    root = Path(options.output_dir).expanduser().resolve()
    base = DemoPipeline(options).recipe
    uses_video = bool(base.sections.get("pretrain", {}).get("use_video"))
    runs: dict[str, list[dict]] = {}  # variant -> one evaluation per seed
    for seed in seeds or [None]:
        seed_root = root if seed is None else root / f"seed{seed}"
        for name, switches in variants.items():
            if "use_alignment" in switches and not uses_video:
                if seed == (seeds or [None])[0]:
                    _say(f"[ablation] leaving out {name!r}: the recipe pre-trains without video (pretrain.use_video: "
                         "false), so there is no alignment objective to remove; pass --override pretrain.use_video=true")
                continue
            overrides = {section: dict(values) for section, values in (options.overrides or {}).items()}
            if name in RECIPE_VARIANTS:
                for section, values in RECIPE_VARIANTS[name].items():
                    overrides.setdefault(section, {}).update(values)
            else:
                encoder_overrides = {**(base.model.encoder_overrides or {}), **dict(switches)}
                overrides.setdefault("model", {})["encoder_overrides"] = encoder_overrides
            overrides.setdefault("evaluate", {})["baseline"] = "text_only" if name == "full" else "none"
            folder = seed_root / _variant_folder(name)
            _say(f"[ablation] variant {name!r}{'' if seed is None else f', seed {seed}'} -> {folder}")
            pipeline = DemoPipeline(dataclasses.replace(options, output_dir=str(folder), overrides=overrides,
                                                        seed=options.seed if seed is None else seed))
            pipeline.run(until="evaluate")
            evaluation = pipeline._load_eval()
            runs.setdefault(name, []).append(evaluation["model"])
            if "baseline" in evaluation:
                runs.setdefault(TEXT_ONLY_ROW, []).append(evaluation["baseline"])
    if not runs:
        raise ValueError("every ablation variant was left out; see the notes above")
    complete = {name: evals for name, evals in runs.items() if len(evals) == len(seeds or [None])}
    reference = "full" if "full" in complete else None
    stats = {}
    for name, evals in complete.items():
        preds = [e["predictions"] for e in evals]
        ref = None if reference is None or name == reference else [e["predictions"] for e in complete[reference]]
        stats[name] = accuracy_table_with_ci(preds, ref)
    table = format_ablation_ci_table(stats, reference=reference)
    results = {name: {"model_name": name, "variant_overrides": dict(variants.get(name, {})),
                      "metrics_per_seed": [e["metrics"] for e in evals], "metrics": evals[0]["metrics"],
                      "statistics": stats.get(name)}
               for name, evals in runs.items()}
    if _is_main():
        paths = write_ablation(results, root, table=table)
        _say()
        _say(f"Ablation (paper Table 3): held-out accuracy per stage-1 variant"
             f"{'' if seeds is None else f' over seeds {list(seeds)}'}")
        _say(table)
        _say("written: " + ", ".join(str(p) for p in paths.values()))
    return results


__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "DemoOptions",
    "DemoPipeline",
    "STAGES",
    "format_summary_table",
    "run_ablation_study",
    "run_demo",
    "run_demo_seeds",
]

"""`HuMoConPipeline`: the stages of the HuMoCon recipe over one recipe and one output folder.

Stages (each writes `<output_dir>/stages/<name>/` and a `stage.json` marker when it finishes; a re-run reuses
finished stages whose inputs did not change and resumes an interrupted training stage from its last Trainer
checkpoint):

1. `data`      - the built-in procedural motion-QA benchmark (train / validation / test, disjoint motions) plus the
                 real CMU mocap trials with CMU's own descriptions when `../shared/data/cmu_bvh` is present; the
                 processor (LLM tokenizer + motion feature extractor fitted on the training motions).
2. `pretrain`  - stage 1, concept discovery with the small encoders (paper phases; `ConceptDiscoveryRecipe`).
3. `translate` - stage 2, modality translation: projectors trained on captions, encoders and LLM frozen.
4. `tune`      - stage 3, LoRA instruction tuning on the benchmark's questions; adapter merged afterwards.
5. `baseline`  - the text-only baseline: the same LLM, LoRA-tuned with the same recipe on the same questions
                 without the motion (it can only learn answer priors from the question text).
6. `evaluate`  - held-out accuracy overall / per query type / per relation type for both.
7. `export`    - the checkpoint (AutoModel / AutoProcessor loadable, also with trust_remote_code), model card,
                 concept-timeline plot, rendered preview GIF, `results.json`.

The class is long (~600 lines) because its methods are the seven stages over shared state (recipe, folders, the
loaded data); what the stages share with other code lives in the sibling modules.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humocon_hf.inference import make_answer_fn, qa_collator, row_motion, write_chat_defaults
from humocon_hf.pipeline.builders import build_concept_model, build_processor, concepts_used
from humocon_hf.pipeline.data import (
    HELD_OUT_ACTION_QUESTION,
    build_benchmark,
    caption_rows,
    heldout_real_questions,
    labelled_real_takes,
    real_qa_rows,
    rendered_pairs,
    resolve_cmu,
    unique_motion_rows,
    with_listed_options,
)
from humocon_hf.pipeline.reporting import (
    EXTRA_LINES,
    example_answers,
    extra_line_summary,
    format_machine_reference,
    format_real_cmu_line,
    format_real_lines,
    format_summary_table,
    real_cmu_summary,
    real_lines_summary,
    save_concept_timeline,
    save_motion_preview,
    seed_statistics,
)
from humocon_hf.pipeline.runner import (
    MARKER,
    ListDataset,
    StageRunner,
    bf16_on_cpu,
    digest,
    is_main_process,
    resume_record,
    say,
    seed_before_init,
    train_info,
    train_resuming,
    write_json_atomic,
)
from humocon_hf.recipes import Recipe, load_recipe

logger = logging.getLogger(__name__)


DEFAULT_OUTPUT_DIR = "humocon_demo"
STAGES = ("data", "pretrain", "translate", "tune", "baseline", "evaluate", "export")
# Model fields only the motion path reads: the text-only baseline does not depend on them.
MOTION_PATH_MODEL_FIELDS = ("use_motion_quantized", "motion_projector_reads_poses")
# Model fields only the LLM stages read: changing them keeps the finished data and concept-discovery stages.
LLM_ONLY_MODEL_FIELDS = ("dtype", "attn_implementation", "system_prompt", "max_length", *MOTION_PATH_MODEL_FIELDS)
# Model fields no stage reads: their effect is already in the step budgets they scale.
SCHEDULE_MODEL_FIELDS = ("float32_llm_steps_scale",)



@dataclass
class PipelineOptions:
    output_dir: str = DEFAULT_OUTPUT_DIR
    recipe: str = "small"
    steps_scale: float = 1.0
    seed: int | None = None
    overrides: dict = field(default_factory=dict)
    fresh: bool = False
    use_cmu: bool = True
    max_eval_samples: int | None = None
    command: str | None = None
    # Train the text-only baseline in a second process alongside stage 3 (one thread each) where that pays: a CPU
    # run in one process with >= 2 threads (`side_process`). The CLI turns it on; off here so that library callers and
    # tests keep one process.
    baseline_alongside: bool = False


class HuMoConPipeline:
    """The stages of `humocon demo` as methods; `run()` executes them in order (see the module docstring)."""

    def __init__(self, options: PipelineOptions):
        self.options = options
        recipe = load_recipe(options.recipe, overrides=options.overrides or None)
        if options.seed is not None:
            recipe = recipe.with_overrides({
                "data": {"seed": options.seed},
                **{s: {"seed": options.seed} for s in ("pretrain", "translate", "tune")},
            })
        if options.steps_scale != 1.0:
            recipe = recipe.scaled(options.steps_scale)
        # A CPU without native bf16 runs the LLM stages in float32 (about 2x slower): the recipe may ask for a
        # lighter schedule there. None when the schedule is the recipe's own.
        self.float32_schedule: float | None = None
        scale = recipe.model.float32_llm_steps_scale
        if scale != 1.0 and recipe.sections["tune"].get("bf16") and bf16_on_cpu(recipe.sections["tune"]) == {"bf16": False}:
            recipe = recipe.scaled(scale, only=("translate", "tune", "evaluate"))
            self.float32_schedule = scale
        if not options.use_cmu:  # no real mocap at all: CMU, Bandai Namco, HDM05
            recipe = recipe.with_overrides({"data": {"cmu_bvh_dir": None, "bandai_dir": None, "hdm05_dir": None}})
        if options.max_eval_samples is not None:
            recipe = recipe.with_overrides({"evaluate": {"max_samples": options.max_eval_samples}})
        self.recipe: Recipe = recipe
        self.root = Path(options.output_dir).expanduser().resolve()
        self.runner = StageRunner(self.root, fresh=options.fresh)
        self._llm_cache = None
        self._side = None  # the SideStage training alongside, while it runs

    # -------------------------------------------------------------------------------------- fingerprints
    def _fp(self, *sections: str, after: str | None = None, encoders_only: bool = False,
            text_only: bool = False, skip_tune_steps: bool = False) -> dict:
        skip = (*SCHEDULE_MODEL_FIELDS, *(LLM_ONLY_MODEL_FIELDS if encoders_only else ()),
                *(MOTION_PATH_MODEL_FIELDS if text_only else ()))
        exclude = {"model": skip, **({"tune": ("max_steps",)} if skip_tune_steps else {})}
        fp = {"recipe": self.recipe.fingerprint(*sections, exclude=exclude), "version": 1}
        if after is not None:
            # Chain: a stage is stale when the stage it builds on was redone.
            marker = self.runner.stage_dir(after) / MARKER
            fp["after"] = digest(json.loads(marker.read_text())["fingerprint"]) if marker.is_file() else None
        return fp

    def _baseline_steps(self) -> int | None:
        """The text-only baseline's step budget where it differs from stage 3's, else None."""
        ev, tune_steps = self.recipe.evaluate, self.recipe.sections["tune"].get("max_steps")
        steps = ev.baseline_max_steps
        if steps is None and ev.baseline_steps_fraction != 1.0 and isinstance(tune_steps, int) and tune_steps > 0:
            steps = max(1, int(round(ev.baseline_steps_fraction * tune_steps)))
        return None if steps == tune_steps else steps

    def _baseline_fp(self) -> dict:
        # With a budget of its own (evaluate.baseline_max_steps) the baseline does not depend on stage 3's steps:
        # `--override tune.max_steps=...` keeps a finished baseline.
        own_budget = self.recipe.evaluate.baseline_max_steps
        fp = self._fp("model", "tune", after="data", text_only=True, skip_tune_steps=own_budget is not None)
        steps = own_budget if own_budget is not None else self._baseline_steps()
        if steps is not None:  # only then: finished baselines keep their fingerprint
            fp["max_steps"] = steps
        return fp

    @property
    def generation_bf16(self) -> bool:
        """Evaluation (and, through the checkpoint's chat settings, `humocon ask`) generates as stage 3 trained: under
        bf16 autocast where the recipe's tune stage uses bf16 and the CPU has it."""
        return bool(self.recipe.sections["tune"].get("bf16"))

    def training_args(self, section: str, output_dir: Path, **overrides):
        """The section's `(TrainingArguments, stage arguments)`; bf16 on a machine without a GPU runs as CPU
        autocast where the CPU has native bf16 (AVX512-BF16 / AMX: about twice as fast here), else in float32."""
        return self.recipe.training_args(section, output_dir=output_dir, **overrides)

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
            plan.append(("baseline", self._baseline_fp, self.stage_baseline, True))
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
        if is_main_process():
            say(f"HuMoCon {until if until != 'export' else 'demo'} -> {self.root}  (recipe: {self.recipe.source}, "
                f"torch threads: {torch.get_num_threads()}, LLM stages: {self.llm_precision()})")
        try:
            for name, fingerprint, fn, everywhere in self.stage_plan():
                if self._side is not None and name == self._side.stage:
                    self._adopt_side_stage(name, fingerprint(), fn, everywhere)
                else:
                    self.runner.run(name, fingerprint(), fn, all_processes=everywhere)
                if self._side is not None:
                    self._side.take_threads_back_if_done()
                if name == until:
                    break
                if name == "translate":  # the baseline needs only the data stage; see side_process for why not sooner
                    self._start_side_stage(names, until)
        finally:
            if self._side is not None:
                self._side.stop()
                self._side = None
        total = time.perf_counter() - total_start
        results = self._final_results(total)
        if is_main_process():
            write_json_atomic(self.root / "results.json", results)
            self._print_summary(results, full=until in ("evaluate", "export"))
        return results

    def run_single_stage(self, name: str) -> dict:
        """Run one stage whose inputs are finished (the side process's job; see `side_process`)."""
        import torch
        from transformers.utils import logging as hf_logging

        plan = {entry[0]: entry for entry in self.stage_plan()}
        if name not in plan:
            raise ValueError(f"unknown stage {name!r}; stages are {list(plan)}")
        hf_logging.set_verbosity_error()
        torch.manual_seed(self.recipe.data.seed)
        _, fingerprint, fn, everywhere = plan[name]
        return self.runner.run(name, fingerprint(), fn, all_processes=everywhere)

    def _start_side_stage(self, names: list[str], until: str) -> None:
        """Start the text-only baseline in a second process where that pays (`side_process`): the CLI asked for it,
        the run goes as far as the baseline, the baseline is not already finished while stage 3 still has to train,
        and this is a single-process CPU run with at least two threads to split."""
        import torch

        from humocon_hf.pipeline.side_process import SIDE_STAGE, SideStage

        if not self.options.baseline_alongside or SIDE_STAGE not in names:
            return
        if names.index(until) < names.index(SIDE_STAGE) or not is_main_process():
            return
        threads = torch.get_num_threads()
        if threads < 2 or torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return
        if not self.options.fresh:
            fingerprints = {name: fingerprint for name, fingerprint, _, _ in self.stage_plan()}
            if self.runner.finished(SIDE_STAGE, fingerprints[SIDE_STAGE]()) is not None:
                return  # reused below
            if self.runner.finished("tune", fingerprints["tune"]()) is not None:
                return  # stage 3 is reused: nothing to train alongside, the baseline gets every thread here
        options = dataclasses.replace(self.options, output_dir=str(self.root))
        self._side = SideStage(options, SIDE_STAGE, self.root / "stages", threads_after=threads)

    def _adopt_side_stage(self, name: str, fingerprint: dict, fn, everywhere: bool) -> None:
        side, self._side = self._side, None
        rc = side.finish()
        if rc == 0 and self.runner.adopt(name, fingerprint):
            record = self.runner.records[name]
            say(f"[{name}] done alongside stage 3 in {record.wall_time_s:.0f} s (CPU time "
                f"{record.cpu_time_s or 0:.0f} s; log: {side.log_path})")
            return
        say(f"[{name}] the second process failed (exit code {rc}; log: {side.log_path}): running the stage here")
        self.runner.run(name, fingerprint, fn, all_processes=everywhere)

    def _callbacks(self) -> list:
        """Trainer callbacks of stage 3: take both threads back as soon as the side process has finished."""
        from humocon_hf.pipeline.side_process import threads_callback

        return [] if self._side is None else [threads_callback(self._side)]

    # --------------------------------------------------------------------------------------------- data
    def stage_data(self, folder: Path) -> dict:
        from tqdm.auto import tqdm

        data_args = self.recipe.data
        model_args = self.recipe.model
        qa = build_benchmark(data_args, folder / "cache")
        from humocon_hf.data.augmentation import mirror_joints, mirror_qa_split, mirror_text
        from humocon_hf.data.real_motion_qa import resolve_sided_part

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
            if str(labels.get("body_part") or "").startswith("?"):  # a side the labels do not say: read it here
                labels = {**labels, "body_part": resolve_sided_part(labels["body_part"], joints)}
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
        bvh_dir, csv = resolve_cmu(data_args)
        if bvh_dir is not None:
            from humocon_hf.data.real_mocap import load_cmu_bvh

            (folder / "cmu").mkdir(exist_ok=True)
            for row in tqdm(load_cmu_bvh(bvh_dir, csv), desc="CMU BVH -> SMPL-22 joints", unit="trial"):
                fps = {"source_fps": row["source_fps"]} if row.get("source_fps") else {}
                labels = {"action": row["action"], "subject": row["subject"]}
                if row["subject"] in holdout:
                    heldout_rows += store("cmu", row, fps, labels, train=False)
                else:
                    cmu_rows += store("cmu", row, fps, labels)
        write_json_atomic(folder / "cmu.json", cmu_rows)
        write_json_atomic(folder / "cmu_heldout.json", heldout_rows)
        info["cmu_trials"] = len(cmu_rows)
        info["cmu_heldout_trials"] = len(heldout_rows)
        info["cmu_heldout_subjects"] = sorted(holdout)
        info["cmu_source"] = str(bvh_dir) if bvh_dir else None

        # Labelled real mocap of other actors and studios (HDM05 ASF/AMC, Bandai Namco BVH): facts for every stage;
        # the recipe's held-out actors / styles go to real_heldout.json only (the real-motion lines), never to training.
        real_rows, real_heldout = [], []
        takes = labelled_real_takes(data_args)
        for take in tqdm(takes, desc="real mocap -> SMPL-22 joints", unit="take"):
            (folder / take["dataset"]).mkdir(exist_ok=True)
            facts = {k: take[k] for k in ("action", "body_part", "direction", "turn", "veer", "dataset", "group",
                                          "label")}
            stored = store(take["dataset"], take, take["load_kwargs"], facts, train=not take["heldout"])
            (real_heldout if take["heldout"] else real_rows).extend(stored)
        real_heldout += [{**r, "dataset": "cmu"} for r in heldout_rows]
        # Procedural clips of what real motion is asked about and no source here shows (a raised hand, both hands,
        # a turn): trained on like the real takes, never evaluated as real.
        if data_args.vocabulary_clips_per_kind:
            from humocon_hf.data.procedural_vocabulary import vocabulary_takes

            (folder / "vocabulary").mkdir(exist_ok=True)
            per_kind = data_args.vocabulary_clips_per_kind
            heldout_vocabulary = []
            for split, count, rows in (("train", per_kind, real_rows), ("heldout", max(1, per_kind // 2), heldout_vocabulary)):
                for clip_id, joints, facts in vocabulary_takes(count, data_args.seed, split=split):
                    path = folder / "vocabulary" / f"{clip_id}.npy"
                    np.save(path, joints)
                    if split == "train":
                        real_motions.append(joints)
                    rows.append({"id": clip_id, "motion_path": str(path), "source": "procedural", **facts,
                                 "dataset": "vocabulary", "group": None})
            write_json_atomic(folder / "vocabulary_heldout.json", heldout_vocabulary)
            info["vocabulary_clips"] = sum(1 for r in real_rows if r["dataset"] == "vocabulary")
            info["vocabulary_heldout_clips"] = len(heldout_vocabulary)
        if data_args.real_sequences:
            info.update(self._store_real_sequences(folder, cmu_rows + real_rows, real_heldout))
        write_json_atomic(folder / "real.json", real_rows)
        write_json_atomic(folder / "real_heldout.json", real_heldout)
        info["real_takes"] = {name: sum(1 for t in takes if t["dataset"] == name and not t["heldout"])
                              for name in sorted({t["dataset"] for t in takes})}
        info["real_heldout_takes"] = {name: sum(1 for r in real_heldout if r["dataset"] == name)
                                      for name in sorted({r["dataset"] for r in real_heldout})}
        info["bandai_takes"] = sum(1 for r in real_rows if r["dataset"] == "bandai")
        info["hdm05_clips"] = sum(1 for r in real_rows if r["dataset"] == "hdm05")

        # Processor: the LLM's tokenizer (+ <motion>/<video>) and the motion normalisation fitted on training motions.
        processor = build_processor(model_args, data_args)
        train_motions = [row_motion(r) for r in unique_motion_rows(qa["train"])] + real_motions
        processor.motion_feature_extractor.fit_normalization(train_motions)
        processor.save_pretrained(folder / "processor")
        info["normalization_motions"] = len(train_motions)
        return info

    def _store_real_sequences(self, folder: Path, train_rows: list[dict], heldout_rows: list[dict]) -> dict:
        """Sequences of 2-3 real takes with before / after / in-between questions: `data.real_sequences` from the
        training takes for stage 3 (`sequences_train.json`), a quarter as many from the held-out takes for their line
        (`sequences_heldout.json`). The procedural vocabulary clips are not real takes and are left out."""
        from humocon_hf.data.real_sequences import sample_sequences

        data_args = self.recipe.data
        (folder / "sequences").mkdir(exist_ok=True)
        info = {}
        for split, rows, count in (("train", train_rows, data_args.real_sequences),
                                   ("heldout", heldout_rows, max(1, data_args.real_sequences // 4))):
            # The held-out draw is the same for every seed of a recipe, so seeds pair on the same questions.
            rng = np.random.default_rng([data_args.seed if split == "train" else 0, 4241])
            takes = [{**r, "joints": np.load(r["motion_path"])} for r in rows
                     if r.get("action") and r.get("dataset") != "vocabulary"]
            questions = []
            for i, (joints, facts, _, asked) in enumerate(sample_sequences(takes, count, rng, data_args.max_frames)):
                path = folder / "sequences" / f"{split}_{i:04d}.npy"
                np.save(path, joints)
                for k, q in enumerate(asked):
                    questions.append({"id": f"sequence_{split}_{i:04d}:{k}", "question": q["question"],
                                      "answer": q["answer"], "query_type": q["query_type"],
                                      "relation_type": q["relation_type"], "motion_path": str(path),
                                      "takes": [f["id"] for f in facts], "dataset": "sequences",
                                      "phrasing": "trained", "options": None})
            write_json_atomic(folder / f"sequences_{split}.json", questions)
            info[f"sequences_{split}_questions"] = len(questions)
        return info

    def load_data(self):
        import datasets

        folder = self.runner.stage_dir("data")
        qa = datasets.load_from_disk(str(folder / "qa"))
        real_rows = [{**r, "dataset": "cmu"} for r in json.loads((folder / "cmu.json").read_text())]
        if (folder / "real.json").is_file():
            real_rows += json.loads((folder / "real.json").read_text())
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
        seed_before_init(targs.seed)
        model = build_concept_model(model_args, pargs)

        items = [{"motion": row_motion(r)} for r in unique_motion_rows(qa["train"])]
        items += [{"motion": np.load(r["motion_path"])} for r in real_rows]
        if pargs.use_video and pargs.phase2_max_steps > 0:
            items += rendered_pairs(items[: pargs.num_video_motions], processor)
        raw = self.recipe.sections["pretrain"]
        own = {"phase1_max_steps", "phase1_learning_rate", "phase2_max_steps", "phase2_learning_rate", "mask_ratio",
               "lambda_dis", "lambda_act", "lambda_align", "use_video", "num_video_motions"}
        passed = {"per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps", "seed",
                  "output_dir"}
        extra = {k: v for k, v in raw.items() if k not in own and k not in passed}
        extra.update(bf16_on_cpu(raw))
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
            video_processor=processor.video_processor,
            max_frames=self.recipe.data.max_frames,
        )
        record = resume_record()
        out = schedule.run(model, ListDataset(items), collator=collator, resume=True, callbacks=[record])
        if is_main_process():
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
                # where a re-run after a kill picked the phase up (0: from the start)
                **record.info(folder / phase),
            }
        # Concept usage on the training motions: how many of the codes the encoder actually uses.
        info["concepts_used"] = concepts_used(model.motion_encoder, processor, [it["motion"] for it in items[:64]])
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
        from humocon_hf.training.modality_translation import ModalityTranslationTrainer

        model_args = self.recipe.model
        targs, tr_args = self.training_args("translate", output_dir=folder / "checkpoints")
        qa, real_rows = self.load_data()
        processor = self.load_processor()
        llm, _ = self._load_llm()
        motion_encoder, video_encoder = self.load_encoders()
        seed_before_init(targs.seed)
        model = HuMoConForCausalLM.from_parts(
            llm, motion_encoder, video_encoder, processor, use_motion_quantized=model_args.use_motion_quantized,
            motion_projector_reads_poses=model_args.motion_projector_reads_poses,
        )

        rows = [{"motion": r, "caption": c} for r, c in caption_rows(qa["train"])]
        rows += [{"motion": r["motion_path"], "caption": r["caption"]} for r in real_rows] * tr_args.caption_repeats
        trainer = ModalityTranslationTrainer(
            model=model, args=targs, processor=processor, train_dataset=ListDataset(rows),
            data_collator=qa_collator(processor, model_args),
        )
        metrics = train_resuming(trainer, targs.output_dir)
        if is_main_process():
            model.save_pretrained(folder / "model")
        return {"captions": len(rows), **train_info(trainer, metrics)}

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
        import torch

        from humocon_hf.calibration import StepFlopCounter, calibrate_machine
        from humocon_hf.training.instruction_tuning import InstructionTuningTrainer, merge_adapter

        model_args = self.recipe.model
        baseline_steps = None if with_motion else self._baseline_steps()
        steps = {} if baseline_steps is None else {"max_steps": baseline_steps}
        targs, tune_args = self.training_args("tune", output_dir=folder / "checkpoints", **steps)
        qa, real_rows = self.load_data()
        processor = self.load_processor()
        seed_before_init(targs.seed)  # LoRA weights are initialised when the trainer wraps the model
        lora = {}
        if tune_args.lora_target_modules:
            lora["lora_target_modules"] = tune_args.lora_target_modules
        train = qa["train"]
        if tune_args.balance_query_types:
            from humocon_hf.data import oversample_to_balance

            train = oversample_to_balance(list(train), "query_type", seed=targs.seed)
        if tune_args.option_questions_share:  # some procedural questions list their options
            train = with_listed_options(list(train), tune_args.option_questions_share, seed=targs.seed)
        real_qa = real_qa_rows(real_rows, self.recipe.data.real_questions_per_fact, seed=targs.seed)
        sequences = self.runner.stage_dir("data") / "sequences_train.json"
        if sequences.is_file():  # real takes in sequence, asked before / after / in-between questions
            real_qa += [{"question": q["question"], "answer": q["answer"], "motion": q["motion_path"]}
                        for q in json.loads(sequences.read_text())]
        if not with_motion:  # the text-only baseline gets the same questions without the motion
            real_qa = [{k: v for k, v in r.items() if k != "motion"} for r in real_qa]
        # The machine reference, measured now (beside whatever else runs), and the FLOPs of every batch: the stage's
        # achieved rate as a fraction of it (issue 31: a time alone cannot tell a slower machine from slower code).
        text_config = model.config.text_config
        reference = calibrate_machine(text_config.hidden_size, text_config.intermediate_size,
                                      tokens=64 * targs.per_device_train_batch_size)
        counter = StepFlopCounter(qa_collator(processor, model_args), text_config)
        trainer = InstructionTuningTrainer(
            model=model, args=targs, processor=processor,
            train_dataset=ListDataset(self._qa_rows(train, with_motion) + real_qa),
            data_collator=counter,
            lora_r=tune_args.lora_r, lora_alpha=tune_args.lora_alpha, lora_dropout=tune_args.lora_dropout,
            train_projectors=tune_args.train_projectors and with_motion,
            callbacks=[*self._callbacks(), counter.callback()], **lora,
        )
        counter.trainable_params = sum(p.numel() for name, p in trainer.model.named_parameters()
                                       if p.requires_grad and "lora_" in name)
        threads = torch.get_num_threads()
        metrics = train_resuming(trainer, targs.output_dir)
        info = train_info(trainer, metrics)
        info["machine_reference"] = reference
        info["threads_at_start"] = threads
        info.update(counter.report(metrics.get("train_runtime"), reference, targs.gradient_accumulation_steps))
        if is_main_process():
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
        # `from_parts` draws the (unused) projectors and the added tokens' embedding rows: seeded, so that the
        # checkpoint does not depend on whether stage 3 ran before it in this process (the side process: it did not).
        seed_before_init(self.recipe.training_args("tune", output_dir=folder / "checkpoints")[0].seed)
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
                                    bf16=self.generation_bf16)
            result = evaluate_motion_qa(answer, split, batch_size=ev.batch_size, limit=ev.max_samples,
                                        model_name=name, dataset_name="HuMoCon procedural motion-QA",
                                        dataset_type="humocon-procedural-qa", split=ev.split)
            return result

        real = self._heldout_cmu_questions()

        def run_real(model, name: str, with_motion: bool) -> dict:
            answer = make_answer_fn(model, processor, model_args, ev.max_new_tokens, with_motion,
                                    bf16=self.generation_bf16)
            return evaluate_motion_qa(answer, real, batch_size=ev.batch_size, model_name=name,
                                      dataset_name="CMU mocap, held-out subjects", dataset_type="cmu-mocap",
                                      split="held-out subjects")

        lines = self._heldout_real_questions()
        extra = {name: self._extra_line_questions(name) for name in EXTRA_LINES}

        def run_lines(model, name: str, with_motion: bool, questions: list[dict]) -> dict:
            answer = make_answer_fn(model, processor, model_args, ev.max_new_tokens, with_motion,
                                    progress=(f"{name}, real", len(questions), ev.batch_size), bf16=self.generation_bf16)
            return self._evaluate_real_lines(answer, questions, name)

        model = HuMoConForCausalLM.from_pretrained(self.runner.stage_dir("tune") / "model", **self._attention()).eval()
        results = {"model": run(model, "HuMoCon (motion + question)", True)}
        if real:
            results["real_cmu_model"] = run_real(model, "HuMoCon (motion + question)", True)
        if lines:
            results["real_model"] = run_lines(model, "HuMoCon (motion + question)", True, lines)
        for name, questions in extra.items():
            if questions:
                results[f"{name}_model"] = run_lines(model, "HuMoCon (motion + question)", True, questions)
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
            if lines:
                results["real_baseline"] = run_lines(base, base_name, False, lines)
        if lines:
            write_json_atomic(folder / "real_questions.json", lines)
        for name, questions in extra.items():
            if questions:
                write_json_atomic(folder / f"{name}_questions.json", questions)
        for key, value in results.items():
            write_json_atomic(folder / f"{key}.json", value)
        return {key: value["metrics"] for key, value in results.items()}

    def _describe_concepts(self, model, processor, qa, real_rows, limit: int = 400) -> dict:
        """`describe_concepts` on (up to `limit`) training motions with their captions, real takes included."""
        from humocon_hf.concepts import describe_concepts
        from humocon_hf.processing.motion_io import load_motion

        rows = unique_motion_rows(qa["train"])
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

    def _evaluate_real_lines(self, answer, lines: list[dict], name: str) -> dict:
        from humocon_hf.evaluation import evaluate_motion_qa

        return evaluate_motion_qa(answer, lines, batch_size=self.recipe.evaluate.batch_size, model_name=name,
                                  dataset_name="Real mocap, held-out actors / styles / subjects",
                                  dataset_type="real-mocap", split="held-out")

    def _heldout_real_questions(self) -> list[dict]:
        """Questions about every held-out real take (HDM05 actors, Bandai styles, CMU subjects), in trained phrasings
        and in paraphrases."""
        path = self.runner.stage_dir("data") / "real_heldout.json"
        rows = json.loads(path.read_text()) if path.is_file() else []
        return heldout_real_questions(rows)

    def _extra_line_questions(self, name: str) -> list[dict]:
        """The questions of a held-out line of `EXTRA_LINES`: about the vocabulary clips' facts (trained phrasings
        and paraphrases), or the sequences' own before / after / in-between questions."""
        path = self.runner.stage_dir("data") / EXTRA_LINES[name][0]
        rows = json.loads(path.read_text()) if path.is_file() else []
        return heldout_real_questions(rows) if name == "vocabulary" else rows

    def _heldout_cmu_questions(self) -> list[dict]:
        """"What is the person doing?" about every held-out CMU trial whose description names an action."""
        path = self.runner.stage_dir("data") / "cmu_heldout.json"
        rows = json.loads(path.read_text()) if path.is_file() else []
        return [{"id": r["id"], "question": HELD_OUT_ACTION_QUESTION, "answer": r["action"],
                 "motion_path": r["motion_path"], "query_type": "action"} for r in rows if r.get("action")]

    # ------------------------------------------------------------------------------------------- export
    def stage_export(self, folder: Path) -> dict:
        from humocon_hf.hub import save_for_remote_code
        from humocon_hf.model_card import card_media, render_model_card
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

        qa, real_rows = self.load_data()
        processor = self.load_processor()
        model = HuMoConForCausalLM.from_pretrained(self.runner.stage_dir("tune") / "model").eval()
        # The concepts in words, measured on the training motions, travel in the checkpoint's config.
        described = self._describe_concepts(model, processor, qa, real_rows)
        model.config.motion_config.concept_descriptions = {str(k): v["description"] for k, v in described.items()}
        write_json_atomic(self.root / "concepts.json", {str(k): v for k, v in described.items()})
        # The checkpoint goes to the output folder's top level, next to the card: `from_pretrained(output_dir)`.
        save_for_remote_code(model, self.root, processor=processor)
        # The prompt format the model was tuned with, read back by `humocon ask` and the Gradio app.
        write_chat_defaults(self.root, self.recipe.model.system_prompt, self.recipe.evaluate.max_new_tokens,
                            self.generation_bf16)
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
            real_lines=real_lines_summary([evaluation]),
            media=card_media(self.root, row.get("caption")),
        )
        (self.root / "README.md").write_text(card, encoding="utf-8")
        return info

    def evaluate_checkpoint(self, model_dir: str) -> dict:
        """`humocon evaluate --model DIR`: any checkpoint on this recipe's held-out split (with the motion) and on its
        real lines (the held-out real takes; `evaluation_<name>_real.json`)."""
        from humocon_hf.evaluation import evaluate_motion_qa, format_table, write_results
        from humocon_hf.inference import load_checkpoint

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
        say(format_table(result))
        lines = self._heldout_real_questions()
        if lines:  # the real lines: the recipe's held-out real takes, asked the same questions as the demo asks
            real = self._evaluate_real_lines(answer, lines, str(model_dir))
            result["real_lines"] = real_lines_summary([{"real_model": real, "real_questions": lines}])
            write_json_atomic(self.root / f"evaluation_{Path(model_dir).name or 'model'}_real.json", real)
            say(format_real_lines(result["real_lines"]))
        for name, (_, title) in EXTRA_LINES.items():  # procedural vocabulary clips, real takes in sequence
            questions = self._extra_line_questions(name)
            if questions:
                asked = self._evaluate_real_lines(answer, questions, str(model_dir))
                result[f"{name}_line"] = real_lines_summary([{"real_model": asked, "real_questions": questions}])
                write_json_atomic(self.root / f"evaluation_{Path(model_dir).name or 'model'}_{name}.json", asked)
                say(format_real_lines(result[f"{name}_line"], title=title))
        say("written: " + ", ".join(str(p) for p in paths.values()))
        return result

    def _load_eval(self) -> dict:
        folder = self.runner.stage_dir("evaluate")
        out = {}
        for key in ("model", "baseline", "real_cmu_model", "real_cmu_baseline", "real_model", "real_baseline",
                    "real_questions", *(f"{name}_{part}" for name in EXTRA_LINES for part in ("model", "questions"))):
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
        if data_info.get("hdm05_clips"):
            used.append("hdm05")
        return used

    # ------------------------------------------------------------------------------------------ summary
    def llm_precision(self) -> str:
        """How the LLM stages compute on this machine: what a recipe's `bf16: true` became (the same decision the
        training arguments take, `mixed_precision_for_this_machine`)."""
        section = dict(self.recipe.sections["tune"])
        if not section.get("bf16"):
            return "float32"
        resolved = bf16_on_cpu(section)
        if not resolved:  # a GPU, or a recipe that asks for CPU autocast itself (use_cpu)
            return "bf16 autocast (CPU, use_cpu)" if section.get("use_cpu") else "bf16 (GPU)"
        if resolved.get("use_cpu"):
            return "bf16 autocast (CPU with native bf16)"
        lighter = "" if self.float32_schedule is None else (
            f"; lighter schedule: LLM stages at {self.float32_schedule:g}x their steps (model.float32_llm_steps_scale), "
            "accuracy below the bf16 table's")
        return "float32 (this CPU has no native bf16" + lighter + ")"

    def _final_results(self, total_s: float) -> dict:
        evaluation = self._load_eval()
        tune = self.runner.records.get("tune")
        tune_info = (tune.info or {}) if tune is not None else {}
        return {
            "command": self.options.command or "humocon demo",
            "llm_precision": self.llm_precision(),
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
            "alongside_stages": [name for name, rec in self.runner.records.items() if rec.alongside],
            "stages": {name: rec.info for name, rec in self.runner.records.items()},
            "metrics": {key: value["metrics"] for key, value in evaluation.items()
                        if not key.startswith(("real_", *(f"{name}_" for name in EXTRA_LINES)))},
            "statistics": seed_statistics([evaluation]),
            "real_cmu": real_cmu_summary([evaluation]),
            "real_lines": real_lines_summary([evaluation]),
            **{f"{name}_line": extra_line_summary([evaluation], name) for name in EXTRA_LINES},
            # The tune stage's machine reference (GEMM rate at the LLM's shapes, measured as the stage began) and the
            # stage's achieved model FLOP/s as a fraction of it: times that compare across machines and days.
            "machine_reference": tune_info.get("machine_reference"),
            "tune_fraction_of_reference": tune_info.get("fraction_of_reference"),
            # ... and against the thread counts its steps ran on, weighted by their seconds (the number to compare)
            "tune_fraction_of_threads_used": tune_info.get("fraction_of_threads_used"),
            "tune_seconds_by_threads": tune_info.get("seconds_by_threads"),
            "examples": example_answers(evaluation, self.recipe.evaluate.num_examples),
        }

    def _print_summary(self, results: dict, full: bool = True) -> None:
        say()
        say("=" * 78)
        if not full:
            say("Wall time per stage (s): " + ", ".join(
                f"{k}={v:.0f}" + (" (reused)" if k in results["reused_stages"] else "")
                for k, v in results["wall_time_s"].items()))
            say(f"Stage outputs: {results['output_dir']}/stages")
            say("=" * 78)
            return
        say("Example questions on held-out motions (model | text-only baseline | truth):")
        for ex in results["examples"]:
            say(f"  Q: {ex['question']}")
            base = f" | baseline: {ex['baseline']!r}" if "baseline" in ex else ""
            say(f"     model: {ex['model']!r}{base} | truth: {ex['answer']!r}")
        say()
        if results.get("statistics"):
            from humocon_hf.stats import format_ci_table

            say(format_ci_table(results["statistics"]))
        else:
            say(format_summary_table(results["metrics"]))
        if results.get("real_cmu"):
            say(format_real_cmu_line(results["real_cmu"]))
        if results.get("real_lines"):
            say()
            say(format_real_lines(results["real_lines"]))
        for name, (_, title) in EXTRA_LINES.items():
            if results.get(f"{name}_line"):
                say()
                say(format_real_lines(results[f"{name}_line"], title=title))
        say()
        say(f"LLM stages: {results['llm_precision']}")
        say("Wall time per stage (s): " + ", ".join(
            f"{k}={v:.0f}" + (" (reused)" if k in results["reused_stages"] else "")
            + (" (alongside stage 3)" if k in results.get("alongside_stages", ()) else "")
            for k, v in results["wall_time_s"].items()))
        cpu = {k: v for k, v in results["cpu_time_s"].items() if v is not None}
        if cpu:
            say("CPU time per stage (s, all threads): " + ", ".join(f"{k}={v:.0f}" for k, v in cpu.items()))
        if results.get("machine_reference"):
            say(format_machine_reference(results["machine_reference"], results.get("tune_fraction_of_reference"),
                                         (results["stages"].get("tune") or {}).get("achieved_gflops"),
                                         results.get("tune_fraction_of_threads_used"),
                                         results.get("tune_seconds_by_threads")))
        say(f"Checkpoint, model card, preview.gif, concept_timeline.png, results.json: {results['output_dir']}")
        say(f'Try: humocon ask --model {results["output_dir"]} --motion <file.bvh> "What is the person doing?"')
        say("=" * 78)

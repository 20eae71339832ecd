"""`HuMoConPipeline`: the stages of the HuMoCon recipe over one recipe and one output folder.

Stages (each writes `<output_dir>/stages/<name>/` and a `stage.json` marker when it finishes; a re-run reuses
finished stages whose inputs did not change and resumes an interrupted training stage from its last Trainer
checkpoint):

1. `data`      - the built-in procedural motion-QA benchmark (train / validation / test, disjoint motions) plus the
                 real mocap found in `../shared/data` or the recipe's folders (`data.store_real_mocap`); the
                 processor (LLM tokenizer + motion feature extractor fitted on the training motions).
2. `pretrain`  - stage 1, concept discovery with the small encoders (paper phases; `ConceptDiscoverySchedule`).
3. `translate` - stage 2, modality translation: projectors trained on captions, encoders and LLM frozen.
4. `tune`      - stage 3, LoRA instruction tuning on the benchmark's questions; adapter merged afterwards.
5. `baseline`  - the text-only baseline: the same LLM, LoRA-tuned with the same recipe on the same questions
                 without the motion (it can only learn answer priors from the question text).
6. `evaluate`  - held-out accuracy overall / per query type / per relation type for both.
7. `export`    - the checkpoint (AutoModel / AutoProcessor loadable, also with trust_remote_code), model card,
                 concept-timeline plot, rendered preview GIF, `results.json`.

The methods are the seven stages over shared state (recipe, folders, the loaded data). What they share with other
code lives beside them: `fingerprints` (when a stage is reused), `data` (what the data stage stores and reads back),
`side_process` (the baseline alongside stage 3), `evaluation` (`humocon evaluate --model`), `reporting` (results.json
and the summary), `runner` (running a stage once).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humocon_hf.inference import make_answer_fn, qa_collator, row_motion, write_chat_defaults
from humocon_hf.io_utils import say, write_json_atomic
from humocon_hf.pipeline import fingerprints, side_process
from humocon_hf.pipeline.builders import build_concept_model, build_processor, concepts_used
from humocon_hf.pipeline.data import (
    build_benchmark,
    caption_rows,
    datasets_used,
    extra_line_questions,
    heldout_cmu_questions,
    heldout_line_questions,
    load_stored_data,
    real_qa_rows,
    rendered_pairs,
    store_real_mocap,
    unique_motion_rows,
    with_listed_options,
)
from humocon_hf.pipeline.evaluation import evaluate_real_lines
from humocon_hf.pipeline.reporting import (
    EXTRA_LINES,
    extra_line_summary,
    final_results,
    load_evaluation,
    print_summary,
    real_cmu_summary,
    real_lines_summary,
    save_concept_timeline,
    save_motion_preview,
)
from humocon_hf.pipeline.runner import (
    MARKER,
    ListDataset,
    StageRunner,
    is_main_process,
    resume_record,
    seed_before_init,
    train_info,
    train_resuming,
)
from humocon_hf.precision import llm_precision
from humocon_hf.recipes import Recipe, load_recipe

logger = logging.getLogger(__name__)


DEFAULT_OUTPUT_DIR = "humocon_demo"
STAGES = ("data", "pretrain", "translate", "tune", "baseline", "evaluate", "export")


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
        if scale != 1.0 and llm_precision(recipe.sections["tune"]).float32_fallback:
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
    def fingerprint(self, *sections: str, **kwargs) -> dict:
        """The fingerprint of a stage that reads these recipe sections (`fingerprints.stage_fingerprint`)."""
        return fingerprints.stage_fingerprint(self.recipe, self.runner, *sections, **kwargs)

    def data_fingerprint(self) -> dict:
        """The data stage's fingerprint: the recipe's data section and the model fields the encoders' data depend on.
        One definition for the pipeline and `humocon evaluate --model`, so each reuses the other's data stage."""
        return self.fingerprint("model", "data", encoders_only=True)

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
        fp = self.fingerprint
        plan = [
            ("data", self.data_fingerprint, self.stage_data, False),
            ("pretrain", lambda: fp("model", "pretrain", after="data", encoders_only=True), self.stage_pretrain, True),
            ("translate", lambda: fp("model", "translate", after="pretrain"), self.stage_translate, True),
            ("tune", lambda: fp("model", "tune", after="translate"), self.stage_tune, True),
        ]
        if self.recipe.evaluate.baseline == "text_only":
            baseline_fp = lambda: fingerprints.baseline_fingerprint(self.recipe, self.runner)  # noqa: E731
            plan.append(("baseline", baseline_fp, self.stage_baseline, True))
        evaluate_fp = lambda: {**fp("evaluate", after="tune"), "baseline": fp("tune", after="baseline")}  # noqa: E731
        plan.append(("evaluate", evaluate_fp, self.stage_evaluate, False))
        plan.append(("export", lambda: fp(after="evaluate"), self.stage_export, False))
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
                    side, self._side = self._side, None
                    side_process.adopt(self.runner, side, name, fingerprint(), fn, everywhere)
                else:
                    self.runner.run(name, fingerprint(), fn, all_processes=everywhere)
                if self._side is not None:
                    self._side.take_threads_back_if_done()
                if name == until:
                    break
                if name == "translate":  # the baseline needs only the data stage; see side_process for why not sooner
                    self._side = side_process.start_alongside(self, names, until)
        finally:
            if self._side is not None:
                self._side.stop()
                self._side = None
        total = time.perf_counter() - total_start
        results = final_results(self, total)
        if is_main_process():
            write_json_atomic(self.root / "results.json", results)
            print_summary(results, full=until in ("evaluate", "export"))
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

    def _callbacks(self) -> list:
        """Trainer callbacks of stage 3: take both threads back as soon as the side process has finished."""
        return [] if self._side is None else [side_process.threads_callback(self._side)]

    # --------------------------------------------------------------------------------------------- data
    def stage_data(self, folder: Path) -> dict:
        """The benchmark's splits (and the mirror twins of the training motions), the real mocap, and the processor
        with the motion normalisation fitted on every training motion."""
        data_args = self.recipe.data
        model_args = self.recipe.model
        qa = build_benchmark(data_args, folder / "cache")
        if data_args.mirror_train:
            import datasets

            from humocon_hf.data.augmentation import mirror_qa_split

            mirrored = mirror_qa_split(qa["train"], folder / "mirrored")
            qa["train"] = datasets.concatenate_datasets([qa["train"], mirrored])
        qa.save_to_disk(str(folder / "qa"))
        info = {"splits": {k: len(v) for k, v in qa.items()}, "mirrored_train": bool(data_args.mirror_train)}
        real_info, real_motions = store_real_mocap(data_args, folder)
        info.update(real_info)

        # Processor: the LLM's tokenizer (+ <motion>/<video>) and the motion normalisation fitted on training motions.
        processor = build_processor(model_args, data_args)
        train_motions = [row_motion(r) for r in unique_motion_rows(qa["train"])] + real_motions
        processor.motion_feature_extractor.fit_normalization(train_motions)
        processor.save_pretrained(folder / "processor")
        info["normalization_motions"] = len(train_motions)
        return info

    def load_data(self):
        return load_stored_data(self.runner.stage_dir("data"))

    def load_evaluation(self) -> dict:
        return load_evaluation(self.runner.stage_dir("evaluate"))

    def load_processor(self):
        from humocon_hf.processing.processing_humocon import MotionVideoProcessor

        return MotionVideoProcessor.from_pretrained(self.runner.stage_dir("data") / "processor")

    # ----------------------------------------------------------------------------------------- pretrain
    def stage_pretrain(self, folder: Path) -> dict:
        from humocon_hf.training.concept_discovery import (
            ConceptDiscoveryCollator,
            ConceptDiscoverySchedule,
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
               "lambda_dis", "lambda_velocity", "lambda_align", "use_video", "num_video_motions"}
        passed = {"per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps", "seed",
                  "output_dir"}
        extra = {k: v for k, v in raw.items() if k not in own and k not in passed}
        extra.update(llm_precision(raw).training_changes)
        extra["disable_tqdm"] = targs.disable_tqdm  # as the recipe resolved it (progress bars by default)
        schedule = ConceptDiscoverySchedule(
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
                # first and last logged value of each objective (loss_rec_motion, loss_dis, loss_velocity, loss_align...)
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

    def stage3_rows(self, with_motion: bool = True) -> tuple[list[dict], dict]:
        """Stage 3's training questions (`question`, `answer`, and `motion` where `with_motion`) and their counts:
        the benchmark's training split, then the questions about the real training takes. The text-only baseline
        and the question prior get the same questions without the motion."""
        targs, tune_args = self.training_args("tune", output_dir=self.runner.stage_dir("tune") / "checkpoints")
        seed = targs.seed
        qa, real_rows = self.load_data()
        train = qa["train"]
        if tune_args.balance_query_types:
            from humocon_hf.data import oversample_to_balance

            train = oversample_to_balance(list(train), "query_type", seed=seed)
        if tune_args.option_questions_share:  # some procedural questions list their options
            train = with_listed_options(list(train), tune_args.option_questions_share, seed=seed)
        real_qa = real_qa_rows(real_rows, self.recipe.data.real_questions_per_fact, seed=seed)
        sequences = self.runner.stage_dir("data") / "sequences_train.json"
        if sequences.is_file():  # real takes in sequence, asked before / after / in-between questions
            real_qa += [{"question": q["question"], "answer": q["answer"], "motion": q["motion_path"]}
                        for q in json.loads(sequences.read_text())]
        if not with_motion:
            real_qa = [{k: v for k, v in r.items() if k != "motion"} for r in real_qa]
        counts = {"questions": len(qa["train"]), "real_questions": len(real_qa),
                  "training_rows": len(train) + len(real_qa)}
        return self._qa_rows(train, with_motion) + real_qa, counts

    def _tune(self, model, folder: Path, with_motion: bool) -> dict:
        import torch

        from humocon_hf.calibration import StepFlopCounter, calibrate_machine
        from humocon_hf.training.instruction_tuning import build_instruction_tuning_trainer, merge_adapter

        model_args = self.recipe.model
        baseline_steps = None if with_motion else fingerprints.baseline_steps(self.recipe)
        steps = {} if baseline_steps is None else {"max_steps": baseline_steps}
        targs, tune_args = self.training_args("tune", output_dir=folder / "checkpoints", **steps)
        processor = self.load_processor()
        seed_before_init(targs.seed)  # LoRA weights are initialised when the trainer wraps the model
        rows, counts = self.stage3_rows(with_motion)
        # The machine reference, measured now (beside whatever else runs), and the FLOPs of every batch: the stage's
        # achieved rate as a fraction of it (issue 31: a time alone cannot tell a slower machine from slower code).
        text_config = model.config.text_config
        reference = calibrate_machine(text_config.hidden_size, text_config.intermediate_size,
                                      tokens=64 * targs.per_device_train_batch_size)
        collator = qa_collator(processor, model_args)
        if tune_args.share_motion_prompt and with_motion:  # a motion's questions behind one copy of its prompt
            from humocon_hf.training.qa_collator import SharedMotionPromptCollator, group_rows_by_motion

            rows, collator = group_rows_by_motion(rows), SharedMotionPromptCollator(collator)
        counter = StepFlopCounter(collator, text_config)
        trainer = build_instruction_tuning_trainer(
            model, targs, processor, ListDataset(rows), counter, tune_args,
            train_projectors=tune_args.train_projectors and with_motion,
            callbacks=[*self._callbacks(), counter.callback()],
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
        return {**counts, **info}

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
        from humocon_hf.evaluation import BASELINES, evaluate_motion_qa
        from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

        ev = self.recipe.evaluate
        model_args = self.recipe.model
        qa, _ = self.load_data()
        if ev.split not in qa:
            raise ValueError(f"evaluate.split={ev.split!r} is not a split of the benchmark ({list(qa)})")
        split = qa[ev.split]
        processor = self.load_processor()
        n = len(split) if ev.max_samples is None else min(ev.max_samples, len(split))

        real = heldout_cmu_questions(self.runner.stage_dir("data"))
        lines = heldout_line_questions(self.runner.stage_dir("data"))
        extra = {name: extra_line_questions(self.runner.stage_dir("data"), name) for name in EXTRA_LINES}

        def answerer(model, with_motion: bool):
            """`(progress label or None, count) -> answer_fn` of a model: its generation with the recipe's settings."""
            return lambda label, count: make_answer_fn(
                model, processor, model_args, ev.max_new_tokens, with_motion,
                progress=None if label is None else (label, count, ev.batch_size),
                bf16=self.generation_bf16, constrain_options=ev.constrain_options)

        def evaluate_all(answer_for, name: str, key: str, extra_lines: bool) -> dict:
            """The benchmark's split (`key`), the held-out CMU trials (`real_cmu_<key>`), the real lines
            (`real_<key>`) and, where `extra_lines`, the extra lines, each answered by `answer_for(label, count)`."""
            out = {key: evaluate_motion_qa(answer_for(name, n), split, batch_size=ev.batch_size, limit=ev.max_samples,
                                           model_name=name, dataset_name="HuMoCon procedural motion-QA",
                                           dataset_type="humocon-procedural-qa", split=ev.split)}
            if real:
                out[f"real_cmu_{key}"] = evaluate_motion_qa(
                    answer_for(None, len(real)), real, batch_size=ev.batch_size, model_name=name,
                    dataset_name="CMU mocap, held-out subjects", dataset_type="cmu-mocap", split="held-out subjects")
            named = [("real", lines)] + ([(line, qs) for line, qs in extra.items()] if extra_lines else [])
            for line, questions in named:
                if questions:
                    out[f"{line}_{key}"] = evaluate_real_lines(answer_for(f"{name}, real", len(questions)), questions,
                                                               name, ev.batch_size)
            return out

        model = HuMoConForCausalLM.from_pretrained(self.runner.stage_dir("tune") / "model", **self._attention()).eval()
        results = evaluate_all(answerer(model, True), "HuMoCon (motion + question)", "model", extra_lines=True)
        del model
        if ev.baseline == "question_prior":  # counted, not trained: see `humocon_hf.question_prior`
            from humocon_hf.question_prior import QuestionPriorBaseline

            prior = QuestionPriorBaseline.fit(self.stage3_rows(with_motion=False)[0])
            prior.save(folder / "question_prior.json")
            results.update(evaluate_all(lambda label, count: prior, BASELINES[ev.baseline][0], "baseline",
                                        extra_lines=False))
        elif ev.baseline in ("text_only", "zero_shot"):
            if ev.baseline == "text_only":
                base = HuMoConForCausalLM.from_pretrained(
                    self.runner.stage_dir("baseline") / "model", **self._attention()
                ).eval()
            else:
                llm, _ = self._load_llm()
                base = HuMoConForCausalLM.from_parts(llm, *self.load_encoders(), processor).eval()
            results.update(evaluate_all(answerer(base, False), BASELINES[ev.baseline][0], "baseline",
                                        extra_lines=False))
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
        evaluation = self.load_evaluation()
        card = render_model_card(
            results=evaluation.get("model"),
            baseline_results=evaluation.get("baseline"),
            recipe=self.recipe,
            command=self.options.command or "humocon demo",
            stage_times={name: rec.wall_time_s for name, rec in self.runner.records.items()},
            base_model=self.recipe.model.llm_name_or_path,
            model_name=self.root.name,
            datasets_used=datasets_used(json.loads((self.runner.stage_dir("data") / MARKER).read_text())["info"]),
            model=model,
            real_cmu=real_cmu_summary([evaluation]),
            real_lines=real_lines_summary([evaluation]),
            extra_lines={name: extra_line_summary([evaluation], name) for name in EXTRA_LINES},
            media=card_media(self.root, row.get("caption")),
        )
        (self.root / "README.md").write_text(card, encoding="utf-8")
        return info

    # ------------------------------------------------------------------------------------------ summary
    def llm_precision(self) -> str:
        """How the LLM stages compute on this machine (`humocon_hf.precision.llm_precision`), and the lighter schedule
        a float32 machine takes."""
        plan = llm_precision(self.recipe.sections["tune"])
        if not plan.float32_fallback:
            return plan.name
        lighter = "" if self.float32_schedule is None else (
            f"; lighter schedule: LLM stages at {self.float32_schedule:g}x their steps (model.float32_llm_steps_scale), "
            "accuracy below the bf16 table's")
        return plan.name[:-1] + lighter + ")"

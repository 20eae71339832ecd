"""What the pipeline prints and draws: the per-query-type summary table with confidence intervals, the statistics
over seeds (mean, spread, paired test against the baseline), the held-out real-CMU line, example answers, the
rendered motion preview and the concept timeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from humocon_hf.stats import TABLE1_COLUMNS, wilson_ci
from humocon_hf.tables import render_table

if TYPE_CHECKING:
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor


def save_motion_preview(joints, path: Path, fps: float = 20.0) -> Path:
    from humocon_hf.processing.rendering import save_preview

    return Path(save_preview(joints, path, fps=fps) or path)


def save_concept_timeline(
    model: HuMoConForCausalLM, processor: MotionVideoProcessor, joints, path: Path, title: str | None = None
) -> Path:
    """Concept timeline (which codebook entry is active when) of one motion under the model's motion encoder, its
    legend in the words a timeline shows for this clip (`clip_concept_words`: open parts and sides read from it)."""
    import numpy as np
    import torch

    from humocon_hf.concepts import clip_concept_words, plot_concept_timeline

    fe = processor.motion_feature_extractor
    batch = fe([joints], padding="longest", return_tensors="pt")
    with torch.no_grad():
        concepts = model.motion_encoder.get_concepts(batch["motion_values"], batch["motion_attention_mask"])
    segments = concepts[0]["segments"]
    words = clip_concept_words(np.asarray(joints)[: fe.max_frames], segments,
                               model.config.motion_config.concept_descriptions, fe.fps)
    return Path(plot_concept_timeline(segments, path, fps=fe.fps, title=title,
                                      codebook_size=model.config.motion_config.codebook_size, descriptions=words))


def example_answers(evaluation: dict, n: int) -> list[dict]:
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




def row_names(baseline_name: str | None = None) -> dict[str, str]:
    """The rows of the accuracy tables: the model and the run's baseline (its `evaluation.BASELINES` name)."""
    return {"model": "HuMoCon (motion + question)", "baseline": baseline_name or "Baseline (question only)"}


def format_summary_table(metrics: dict[str, dict], baseline_name: str | None = None) -> str:
    """Accuracy table: one row per model (+ a row with the difference when a baseline is present)."""
    names = row_names(baseline_name)
    columns = [(h, k) for h, k in TABLE1_COLUMNS if any(m.get(k) is not None for m in metrics.values())]
    header = ["Held-out accuracy", *(h for h, _ in columns)]
    rows = []
    for key in ("model", "baseline"):
        if key in metrics:
            rows.append([names[key], *(pct(metrics[key].get(k)) for _, k in columns)])
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
    return render_table(header, rows, console=True)


def seed_statistics(evaluations: list[dict]) -> dict | None:
    """Per query type: accuracy with 95% CIs for the model and the baseline and their paired comparison
    (`humocon_hf.stats.accuracy_table_with_ci`), from one evaluation per seed (``{"model": ..., "baseline": ...}``
    with per-question predictions); None when predictions were not kept."""
    from humocon_hf.stats import accuracy_table_with_ci

    if not evaluations or any("predictions" not in e.get("model", {}) for e in evaluations):
        return None
    with_baseline = all("predictions" in e.get("baseline", {}) for e in evaluations)
    table = accuracy_table_with_ci([e["model"]["predictions"] for e in evaluations],
                                   [e["baseline"]["predictions"] for e in evaluations] if with_baseline else None)
    real = real_cmu_runs(evaluations)
    if real is not None:  # one more column: the held-out real CMU subjects' action questions
        table["real_cmu"] = accuracy_table_with_ci(*real)["accuracy"]
    return table


def real_cmu_runs(evaluations: list[dict]) -> tuple[list, list | None] | None:
    """(model runs, baseline runs or None) of the held-out real CMU questions, one run per seed; None when a seed
    has none (no CMU data, or no held-out subjects)."""
    if not evaluations or any(not (e.get("real_cmu_model") or {}).get("predictions") for e in evaluations):
        return None
    with_baseline = all((e.get("real_cmu_baseline") or {}).get("predictions") for e in evaluations)
    return ([e["real_cmu_model"]["predictions"] for e in evaluations],
            [e["real_cmu_baseline"]["predictions"] for e in evaluations] if with_baseline else None)


def real_cmu_summary(evaluations: list[dict]) -> dict | None:
    """`results.json["real_cmu"]`: accuracy on the held-out CMU subjects' action questions (one evaluation per
    seed), with the baseline (the question alone), per action, and what always answering the most frequent action
    scores."""
    from collections import Counter

    from humocon_hf.stats import accuracy_table_with_ci

    real = real_cmu_runs(evaluations)
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
            f"{f'; {seeds} seeds' if seeds > 1 else ''}); question only "
            f"{'-' if base is None else f'{100 * base:.1f}%'}; always {summary['majority_answer']!r} "
            f"{100 * summary['majority_accuracy']:.1f}%")


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


_REAL_DATASETS = {"hdm05": "HDM05 (held-out actors)", "bandai": "Bandai Namco (held-out styles)",
                  "cmu": "CMU (held-out subjects)", "all": "All real",
                  "vocabulary": "Raise / both hands / turn (procedural, other people)",
                  "sequences": "HDM05 / Bandai / CMU held-out takes, 2-3 per sequence"}
_REAL_GROUPS = (("Overall", "accuracy"), ("Action", "action"), ("Direction", "direction"), ("Body part", "body_part"))


def real_lines_summary(evaluations: list[dict]) -> dict | None:
    """`results.json["real_lines"]`: accuracy on the held-out real takes per data set (HDM05 actors, Bandai styles,
    CMU subjects) and overall, in trained phrasings and in paraphrases no training question used, over seeds (one
    evaluation each, the same questions), with the baseline (the question alone), and how often an answer to a
    question that lists its options is one of them."""
    from humocon_hf.data.real_motion_qa import answer_in_options
    from humocon_hf.stats import accuracy_table_with_ci

    if not evaluations or any(not (e.get("real_model") or {}).get("predictions") or not e.get("real_questions")
                              for e in evaluations):
        return None
    questions = {q["id"]: q for q in evaluations[0]["real_questions"]}
    model_runs = [e["real_model"]["predictions"] for e in evaluations]
    with_base = all((e.get("real_baseline") or {}).get("predictions") for e in evaluations)
    base_runs = [e["real_baseline"]["predictions"] for e in evaluations] if with_base else None
    datasets = sorted({q["dataset"] for q in questions.values()})
    out: dict = {"datasets": {}, "seeds": len(evaluations)}
    for name in [*datasets, "all"]:
        entry = {}
        for phrasing in ("trained", "paraphrase"):
            def keep(p, name=name, phrasing=phrasing):
                q = questions[p["id"]]
                return q["phrasing"] == phrasing and (name == "all" or q["dataset"] == name)

            runs = [[p for p in run if keep(p)] for run in model_runs]
            if not runs[0]:
                continue
            base = [[p for p in run if keep(p)] for run in base_runs] if base_runs else None
            table = accuracy_table_with_ci(runs, base)
            entry[phrasing] = {"questions": len(runs[0]), **{key: table[key] for _, key in _REAL_GROUPS if key in table}}
        entry["clips"] = len({questions[p["id"]]["id"].split(":")[0] for p in model_runs[0]
                              if name == "all" or questions[p["id"]]["dataset"] == name})
        out["datasets"][name] = entry
    offered = [(p, questions[p["id"]]["options"]) for run in model_runs for p in run if questions[p["id"]].get("options")]
    out["option_questions"] = len(offered) // len(model_runs)
    out["options_compliance"] = (sum(answer_in_options(p["prediction"], opts) for p, opts in offered) / len(offered)
                                 if offered else None)
    trained = out["datasets"]["all"].get("trained", {}).get("accuracy", {}).get("model", {}).get("mean")
    para = out["datasets"]["all"].get("paraphrase", {}).get("accuracy", {}).get("model", {}).get("mean")
    out["paraphrase_gap"] = None if trained is None or para is None else trained - para
    return out


# Held-out lines reported apart from the real lines: name -> (the data stage's file, the table's title). "vocabulary":
# procedural clips of a raised hand, both hands, a turn (not real motion); "sequences": real held-out takes joined into
# sequences and asked before / after / in-between questions (real motion, but a question type of its own).
EXTRA_LINES = {
    "vocabulary": ("vocabulary_heldout.json", "Procedural vocabulary clips, held out"),
    "sequences": ("sequences_heldout.json", "Real takes in sequence (before / after / in between), held out"),
}


def extra_line_summary(evaluations: list[dict], name: str) -> dict | None:
    """`results.json["<name>_line"]` for a line of :data:`EXTRA_LINES`, summarised like the real lines (per data set,
    phrasing, query type, over seeds)."""
    if not evaluations or any(f"{name}_model" not in e for e in evaluations):
        return None
    return real_lines_summary([{"real_model": e[f"{name}_model"], "real_questions": e.get(f"{name}_questions")}
                               for e in evaluations])


def format_real_lines(summary: Mapping, title: str = "Real mocap, held out") -> str:
    """The real-motion table of the summary: per held-out data set, accuracy in trained phrasings (overall and per
    query type) and in paraphrases, against the baseline (the question alone)."""
    seeds = summary.get("seeds", 1)

    def cell(stats: Mapping | None) -> str:
        if not stats:
            return "-"
        s = stats["model"]
        spread = f" ± {100 * s['std']:.1f}" if s["n_seeds"] > 1 else ""
        low, high = s["low"], s["high"]
        if s["n_seeds"] == 1:  # one seed: the Wilson interval (a bootstrap of 21 of 21 right is [100, 100])
            ci = wilson_ci(round(s["mean"] * s["n_questions"]), s["n_questions"])
            low, high = ci["low"], ci["high"]
        return f"{100 * s['mean']:.1f}%{spread} [{100 * low:.0f}, {100 * high:.0f}] (n={s['n_questions']})"

    header = [title, *(h for h, _ in _REAL_GROUPS), "Paraphrased", "Question only (overall)"]
    rows = []
    for name, entry in summary["datasets"].items():
        if name == "all" and len(summary["datasets"]) == 2:  # one data set: its own row says it all
            continue
        trained = entry.get("trained", {})
        para = entry.get("paraphrase", {}).get("accuracy")
        base = (trained.get("accuracy") or {}).get("baseline")
        rows.append([
            f"{_REAL_DATASETS.get(name, name)}, {entry['clips']} clips",
            *(cell(trained.get(key)) for _, key in _REAL_GROUPS), cell(para),
            "-" if base is None else f"{100 * base['mean']:.1f}%",
        ])
    lines = [render_table(header, rows)]
    compliance = summary.get("options_compliance")
    gap = summary.get("paraphrase_gap")
    gap_text = "-" if gap is None else f"{100 * abs(gap):.1f} points {'below' if gap > 0 else 'above'}"
    lines.append(f"Answers to questions that list their options that are one of them: "
                 f"{'-' if compliance is None else f'{100 * compliance:.1f}%'} of {summary['option_questions']}"
                 f"{f' per seed, {seeds} seeds' if seeds > 1 else ''}; paraphrased questions: {gap_text} the trained "
                 "phrasings")
    return "\n".join(lines)


def format_machine_reference(reference: Mapping, fraction: Mapping | None, achieved_gflops: float | None,
                             fraction_of_threads_used: Mapping | None = None,
                             seconds_by_threads: Mapping | None = None) -> str:
    """One line: the machine reference (GEMM GFLOP/s at the LLM's shapes per precision and thread count), then stage
    3's achieved rate as a fraction of what the thread counts it ran on could do (weighted by their seconds) and of
    each thread count alone."""
    def threads(t) -> str:
        return f"{t} thread{'s' if str(t) != '1' else ''}"

    rates = "; ".join(f"{dtype} " + ", ".join(f"{g:.0f} on {threads(t)}" for t, g in per_thread.items())
                      for dtype, per_thread in reference["gflops"].items())
    line = f"Machine reference ({reference['name']}, GEMM GFLOP/s at the LLM's shapes, measured as stage 3 began): {rates}"
    if fraction and achieved_gflops is not None:
        each = ", ".join(f"{100 * f:.0f}% of {threads(t)}" for t, f in fraction.get("bfloat16", {}).items()
                         if f is not None)
        line += f"\nStage 3 achieved {achieved_gflops:.0f} GFLOP/s of model FLOPs"
        mix = (fraction_of_threads_used or {}).get("bfloat16")
        if mix is not None and seconds_by_threads:
            spent = ", ".join(f"{threads(t)} {sec:.0f} s" for t, sec in seconds_by_threads.items())
            fp32 = (fraction_of_threads_used or {}).get("float32")
            line += (f": {100 * mix:.0f}% of the bf16 rate of the threads it ran on ({spent})"
                     + (f", {100 * fp32:.0f}% of the float32 rate" if fp32 is not None else "") + f"; bf16 {each}")
        else:
            line += f": {each} in bf16"
    return line


# ------------------------------------------------------------------------------- a run's results and summary


def load_evaluation(folder: Path) -> dict:
    """What the evaluate stage wrote in `folder`: each evaluation (model, baseline, the real and extra lines) and the
    questions of the lines, by key."""
    import json

    out = {}
    for key in ("model", "baseline", "real_cmu_model", "real_cmu_baseline", "real_model", "real_baseline",
                "real_questions", *(f"{name}_{part}" for name in EXTRA_LINES for part in ("model", "questions"))):
        path = folder / f"{key}.json"
        if path.is_file():
            out[key] = json.loads(path.read_text())
    return out


def final_results(pipeline, total_s: float) -> dict:
    """`results.json` of a pipeline run: the recipe, the times, every stage's info, the metrics and their statistics,
    the real and extra lines, the machine reference, example answers."""
    evaluation = pipeline.load_evaluation()
    records = pipeline.runner.records
    tune = records.get("tune")
    tune_info = (tune.info or {}) if tune is not None else {}
    return {
        "command": pipeline.options.command or "humocon demo",
        "llm_precision": pipeline.llm_precision(),
        "recipe": pipeline.recipe.to_dict(),
        "recipe_source": pipeline.recipe.source,
        "output_dir": str(pipeline.root),
        "wall_time_s": {
            **{name: round(rec.wall_time_s, 1) for name, rec in records.items()},
            "total_this_run": round(total_s, 1),
        },
        "cpu_time_s": {name: None if rec.cpu_time_s is None else round(rec.cpu_time_s, 1)
                       for name, rec in records.items()},
        "reused_stages": [name for name, rec in records.items() if rec.reused],
        "alongside_stages": [name for name, rec in records.items() if rec.alongside],
        "stages": {name: rec.info for name, rec in records.items()},
        "metrics": {key: value["metrics"] for key, value in evaluation.items()
                    if not key.startswith(("real_", *(f"{name}_" for name in EXTRA_LINES)))},
        "statistics": seed_statistics([evaluation]),
        "baseline_name": (evaluation.get("baseline") or {}).get("model_name"),
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
        "examples": example_answers(evaluation, pipeline.recipe.evaluate.num_examples),
    }


def print_summary(results: dict, full: bool = True) -> None:
    """The summary a pipeline run ends with: example answers, the tables, times; only the times when it stopped
    before evaluating (`full=False`)."""
    from humocon_hf.io_utils import say

    say()
    say("=" * 78)
    if not full:
        say("Wall time per stage (s): " + ", ".join(
            f"{k}={v:.0f}" + (" (reused)" if k in results["reused_stages"] else "")
            for k, v in results["wall_time_s"].items()))
        say(f"Stage outputs: {results['output_dir']}/stages")
        say("=" * 78)
        return
    say("Example questions on held-out motions (model | baseline, the question alone | truth):")
    for ex in results["examples"]:
        say(f"  Q: {ex['question']}")
        base = f" | baseline: {ex['baseline']!r}" if "baseline" in ex else ""
        say(f"     model: {ex['model']!r}{base} | truth: {ex['answer']!r}")
    say()
    if results.get("statistics"):
        from humocon_hf.stats import format_ci_table

        say(format_ci_table(results["statistics"], row_names(results.get("baseline_name"))))
    else:
        say(format_summary_table(results["metrics"], results.get("baseline_name")))
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

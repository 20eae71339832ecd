"""The paper's Table 3 ablation on the pipeline: each variant (an objective switched off, or no concept discovery
at all) trained and evaluated over seeds, each in its own resumable folder, then one table with the paired tests
against the full model and the text-only row."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from humocon_hf.io_utils import say
from humocon_hf.pipeline.runner import is_main_process
from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions
from humocon_hf.tables import render_table


def variant_folder(name: str) -> str:
    """'w/o masked reconstruction' -> 'wo_masked_reconstruction' (a folder name per ablation variant)."""
    slug = "".join(c if c.isalnum() else "_" for c in name.replace("w/o", "wo").lower())
    return "_".join(part for part in slug.split("_") if part)


# Ablation variants that change the recipe rather than an objective switch: no concept discovery at all (the same
# encoder, randomly initialised and frozen: stage 1 skipped).
RECIPE_VARIANTS: dict[str, dict] = {
    "no concept discovery": {"pretrain": {"phase1_max_steps": 0, "phase2_max_steps": 0}},
}


# The row of the recipe's baseline (`evaluate.baseline`, trained or counted with the full variant).
BASELINE_ROWS = {"question_prior": "question prior (no motion)", "text_only": "text-only (no motion)",
                 "zero_shot": "zero-shot LLM (no motion)"}


def run_ablation_study(options: PipelineOptions, variants: Mapping[str, Mapping] | None = None,
                       seeds: Sequence[int] | None = None) -> dict:
    """Paper Table 3: train every variant (the full model, one per removed stage-1 objective, no concept discovery)
    through stages 1-3 on the same benchmark and seed, evaluate each on the held-out split, print and write the
    table; with several `seeds`, once per seed, reported as mean ± std over seeds with 95% CIs and each variant
    compared with the full model on the same questions (paired bootstrap, McNemar).

    Each variant is a demo pipeline in `<output_dir>/[seed<k>/]<variant>/` whose recipe differs only in
    `model.encoder_overrides` (e.g. `use_velocity_reconstruction: false`) or, for `RECIPE_VARIANTS`, in the stage-1 budget, so
    finished variants are reused on a re-run and an interrupted one resumes. The full variant also evaluates the
    recipe's baseline (`evaluate.baseline`: a row of the table). Alignment needs paired video: with
    `pretrain.use_video: false` the
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
    base = HuMoConPipeline(options).recipe
    uses_video = bool(base.sections.get("pretrain", {}).get("use_video"))
    runs: dict[str, list[dict]] = {}  # variant -> one evaluation per seed
    real_runs: dict[str, list[dict]] = {}  # variant -> the whole evaluation folder per seed (real lines included)
    for seed in seeds or [None]:
        seed_root = root if seed is None else root / f"seed{seed}"
        for name, switches in variants.items():
            if "use_alignment" in switches and not uses_video:
                if seed == (seeds or [None])[0]:
                    say(f"[ablation] leaving out {name!r}: the recipe pre-trains without video (pretrain.use_video: "
                         "false), so there is no alignment objective to remove; pass --override pretrain.use_video=true")
                continue
            overrides = {section: dict(values) for section, values in (options.overrides or {}).items()}
            if name in RECIPE_VARIANTS:
                for section, values in RECIPE_VARIANTS[name].items():
                    overrides.setdefault(section, {}).update(values)
            elif switches:  # the full variant is the recipe as it stands, so a demo run at that seed is reused
                encoder_overrides = {**(base.model.encoder_overrides or {}), **dict(switches)}
                overrides.setdefault("model", {})["encoder_overrides"] = encoder_overrides
            if name != "full":  # the full variant keeps the recipe's baseline (and so its demo folder)
                overrides.setdefault("evaluate", {})["baseline"] = "none"
            folder = seed_root / variant_folder(name)
            say(f"[ablation] variant {name!r}{'' if seed is None else f', seed {seed}'} -> {folder}")
            pipeline = HuMoConPipeline(dataclasses.replace(options, output_dir=str(folder), overrides=overrides,
                                                        seed=options.seed if seed is None else seed))
            pipeline.run(until="evaluate")
            evaluation = pipeline.load_evaluation()
            runs.setdefault(name, []).append(evaluation["model"])
            real_runs.setdefault(name, []).append(evaluation)
            if "baseline" in evaluation:
                runs.setdefault(BASELINE_ROWS[pipeline.recipe.evaluate.baseline], []).append(evaluation["baseline"])
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
    real_table = _real_lines_against(real_runs, reference, len(seeds or [None]))
    results = {name: {"model_name": name, "variant_overrides": dict(variants.get(name, {})),
                      "metrics_per_seed": [e["metrics"] for e in evals], "metrics": evals[0]["metrics"],
                      "statistics": stats.get(name), "real_lines": (real_table or {}).get(name)}
               for name, evals in runs.items()}
    if is_main_process():
        paths = write_ablation(results, root, table=table)
        say()
        say(f"Ablation (paper Table 3): held-out accuracy per stage-1 variant"
             f"{'' if seeds is None else f' over seeds {list(seeds)}'}")
        say(table)
        if real_table:
            say()
            say("On the held-out real mocap (trained phrasings, all data sets; paired with the full model):")
            say(_format_real_against(real_table, reference))
        say("written: " + ", ".join(str(p) for p in paths.values()))
    return results


def _real_lines_against(real_runs: Mapping[str, list[dict]], reference: str | None, n_seeds: int) -> dict | None:
    """Per variant: accuracy on the held-out real questions (trained phrasings; overall and body part) over seeds,
    paired with the reference variant on the same questions. None when the runs hold no real lines."""
    from humocon_hf.stats import accuracy_table_with_ci

    def trained(evaluation: dict) -> list[dict] | None:
        preds = (evaluation.get("real_model") or {}).get("predictions")
        questions = {q["id"]: q for q in evaluation.get("real_questions") or []}
        if not preds or not questions:
            return None
        return [p for p in preds if questions[p["id"]]["phrasing"] == "trained"]

    runs = {name: [trained(e) for e in evals] for name, evals in real_runs.items() if len(evals) == n_seeds}
    runs = {name: r for name, r in runs.items() if all(x is not None for x in r)}
    if not runs:
        return None
    return {name: accuracy_table_with_ci(r, runs[reference] if reference in runs and name != reference else None)
            for name, r in runs.items()}


def _format_real_against(table: Mapping[str, Mapping], reference: str | None) -> str:
    rows = []

    def cell(stats):
        if not stats:
            return "-"
        s = stats["model"]
        return f"{100 * s['mean']:.1f}% ± {100 * s['std']:.1f} [{100 * s['low']:.1f}, {100 * s['high']:.1f}]"

    for name, groups in table.items():
        diff = groups["accuracy"].get("difference")
        diff_text = "-" if not diff else (f"{100 * diff['diff']:+.1f} [{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}] "
                                         f"p={diff['p_value']:.2g}")
        rows.append([name, cell(groups.get("accuracy")), cell(groups.get("body_part")), diff_text])
    return render_table(["Variant", "Real overall", "Real body part", "Difference to the full model (overall)"], rows)

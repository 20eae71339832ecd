"""`humocon demo`: the whole HuMoCon recipe, offline, in one command and one output folder.

A thin recipe over `humocon_hf.pipeline`: `run_demo` runs every stage of `HuMoConPipeline` (see
`humocon_hf.pipeline.stages` for what each does), `run_demo_seeds` runs it once per seed and reports the table
over seeds.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from humocon_hf.io_utils import say, write_json_atomic
from humocon_hf.pipeline.ablation import run_ablation_study
from humocon_hf.pipeline.reporting import (
    format_real_cmu_line,
    format_real_lines,
    format_summary_table,
    real_cmu_summary,
    real_lines_summary,
    row_names,
    seed_statistics,
)
from humocon_hf.pipeline.runner import is_main_process
from humocon_hf.pipeline.stages import DEFAULT_OUTPUT_DIR, STAGES, HuMoConPipeline, PipelineOptions

logger = logging.getLogger(__name__)


def run_demo_seeds(options: PipelineOptions, seeds: list[int]) -> dict:
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
        say(f"[seeds] seed {seed} -> {folder}")
        pipeline = HuMoConPipeline(dataclasses.replace(options, seed=seed, output_dir=str(folder)))
        results = pipeline.run()
        evaluations.append(pipeline.load_evaluation())
        per_seed[seed] = {"metrics": results["metrics"], "wall_time_s": results["wall_time_s"]}
    table = seed_statistics(evaluations)
    real = real_cmu_summary(evaluations)
    lines = real_lines_summary(evaluations)
    summary = {"seeds": seeds, "per_seed": per_seed, "statistics": table, "real_cmu": real, "real_lines": lines}
    if is_main_process():
        names = row_names((evaluations[0].get("baseline") or {}).get("model_name"))
        text = format_ci_table(table, names) if table else "(no per-question predictions kept)"
        if real:
            text += "\n\n" + format_real_cmu_line(real)
        if lines:
            text += "\n\n" + format_real_lines(lines)
        write_json_atomic(root / "seeds.json", summary)
        (root / "seeds.md").write_text(f"Held-out accuracy over seeds {seeds}\n\n{text}\n")
        say()
        say(f"Held-out accuracy over seeds {seeds}:")
        say(text)
        say(f"written: {root / 'seeds.json'}, {root / 'seeds.md'}")
    return summary


def run_demo(output_dir: str = DEFAULT_OUTPUT_DIR, recipe: str = "small", steps_scale: float = 1.0,
             seed: int | None = None, overrides: dict | None = None, fresh: bool = False, use_cmu: bool = True,
             max_eval_samples: int | None = None, command: str | None = None) -> dict:
    """Run the demo pipeline and return the results dict (also written to `<output_dir>/results.json`)."""
    from humocon_hf.auto import register_auto_classes

    register_auto_classes()
    options = PipelineOptions(output_dir=output_dir, recipe=recipe, steps_scale=steps_scale, seed=seed,
                          overrides=overrides or {}, fresh=fresh, use_cmu=use_cmu,
                          max_eval_samples=max_eval_samples, command=command or " ".join(["humocon", *sys.argv[1:]]))
    return HuMoConPipeline(options).run()


__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "PipelineOptions",
    "HuMoConPipeline",
    "STAGES",
    "format_summary_table",
    "run_ablation_study",
    "run_demo",
    "run_demo_seeds",
]

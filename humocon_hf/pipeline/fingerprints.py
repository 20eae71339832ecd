"""When a finished stage is reused: each stage's fingerprint is the recipe sections it reads (less the fields it does
not), chained on the fingerprint of the stage it builds on, so that a redone stage makes the stages after it stale."""

from __future__ import annotations

import json

from humocon_hf.pipeline.runner import MARKER, StageRunner, digest
from humocon_hf.recipes import Recipe

# Model fields only the motion path reads: the text-only baseline does not depend on them.
MOTION_PATH_MODEL_FIELDS = ("use_motion_quantized", "motion_projector_reads_poses")
# Model fields only the LLM stages read: changing them keeps the finished data and concept-discovery stages.
LLM_ONLY_MODEL_FIELDS = ("dtype", "attn_implementation", "system_prompt", "max_length", *MOTION_PATH_MODEL_FIELDS)
# Model fields no stage reads: their effect is already in the step budgets they scale.
SCHEDULE_MODEL_FIELDS = ("float32_llm_steps_scale",)


def stage_fingerprint(recipe: Recipe, runner: StageRunner, *sections: str, after: str | None = None,
                      encoders_only: bool = False, text_only: bool = False, skip_tune_steps: bool = False) -> dict:
    skip = (*SCHEDULE_MODEL_FIELDS, *(LLM_ONLY_MODEL_FIELDS if encoders_only else ()),
            *(MOTION_PATH_MODEL_FIELDS if text_only else ()))
    exclude = {"model": skip, **({"tune": ("max_steps",)} if skip_tune_steps else {})}
    fp = {"recipe": recipe.fingerprint(*sections, exclude=exclude), "version": 1}
    if after is not None:
        # Chain: a stage is stale when the stage it builds on was redone.
        marker = runner.stage_dir(after) / MARKER
        fp["after"] = digest(json.loads(marker.read_text())["fingerprint"]) if marker.is_file() else None
    return fp


def baseline_steps(recipe: Recipe) -> int | None:
    """The text-only baseline's step budget where it differs from stage 3's, else None."""
    ev, tune_steps = recipe.evaluate, recipe.sections["tune"].get("max_steps")
    steps = ev.baseline_max_steps
    if steps is None and ev.baseline_steps_fraction != 1.0 and isinstance(tune_steps, int) and tune_steps > 0:
        steps = max(1, int(round(ev.baseline_steps_fraction * tune_steps)))
    return None if steps == tune_steps else steps


def baseline_fingerprint(recipe: Recipe, runner: StageRunner) -> dict:
    # With a budget of its own (evaluate.baseline_max_steps) the baseline does not depend on stage 3's steps:
    # `--override tune.max_steps=...` keeps a finished baseline.
    own_budget = recipe.evaluate.baseline_max_steps
    fp = stage_fingerprint(recipe, runner, "model", "tune", after="data", text_only=True,
                           skip_tune_steps=own_budget is not None)
    steps = own_budget if own_budget is not None else baseline_steps(recipe)
    if steps is not None:  # only then: finished baselines keep their fingerprint
        fp["max_steps"] = steps
    return fp

"""Hub model cards for HuMoCon checkpoints, filled with measured results only.

`render_model_card(...)` returns the README text: YAML metadata (library_name, tags, licence, base_model,
datasets and a `model-index` built from the evaluation results it is given), usage through `AutoModel` /
`AutoProcessor` and the processor's chat template, the training recipe, the evaluation table, limitations, data
licences and citations. It never writes a number it was not given: without results the card says so.

The template is `humocon_hf/templates/README.md.jinja` (the repository's `model_cards/README.md.jinja` points to it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from humocon_hf.stats import TABLE1_COLUMNS
from humocon_hf.tables import render_table

if TYPE_CHECKING:
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "README.md.jinja"

# Licence notes, one per data source a checkpoint may have been trained or evaluated on.
DATA_NOTES = {
    "humocon-procedural-motion-qa": (
        "**HuMoCon procedural motion-QA** (built into humocon-hf): motions synthesised by a parametric body model, "
        "questions in the BABEL-QA form and vocabulary; no third-party data; Apache-2.0 like the code."
    ),
    "cmu-mocap": (
        "**CMU Graphics Lab Motion Capture Database** (mocap.cs.cmu.edu): real motion capture used as stage-1 "
        "motions, stage-2 captions (CMU's trial descriptions) and stage-3 action questions (walk / run / jump from "
        "those descriptions), except the trials of the held-out subjects, kept for evaluation. Free for research and commercial use; please cite "
        "mocap.cs.cmu.edu (NSF EIA-0196217)."
    ),
    "bandai-namco-motiondataset": (
        "**Bandai Namco Research Motiondataset 1** (github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset): "
        "real studio motion capture used as stage-1 motions, stage-2 captions and stage-3 action / direction / "
        "side questions made from its content and style labels (the side of a one-handed wave or a kick read from "
        "the motion), except the held-out styles' takes, kept for evaluation. CC BY-NC 4.0: non-commercial research only; credit "
        "Bandai Namco Research Inc."
    ),
    "hdm05": (
        "**HDM05** (MPI Informatik / Universität Bonn): real optical motion capture (ASF/AMC) of three actors with "
        "action and side labels, used in every stage except the held-out actor's clips, kept for evaluation. Free "
        "for research; cite M. Müller et al., Documentation Mocap Database HDM05, Tech. Report CG-2007-2, Universität "
        "Bonn, 2007."
    ),
    "babel-qa": (
        "**BABEL / BABEL-QA**: labels from BABEL (babel.is.tue.mpg.de) on AMASS motions; non-commercial research "
        "use only, and the AMASS motions must be obtained from amass.is.tue.mpg.de under their licence."
    ),
    "kit-ml": (
        "**KIT Motion-Language** sentences: check the KIT-ML terms before redistribution; the motions come from "
        "AMASS / the KIT database under their own licences."
    ),
    "humanml3d": (
        "**HumanML3D**: the annotation code is MIT-licensed; the motions are derived from AMASS, whose licence "
        "(non-commercial research) applies to any model trained on them."
    ),
}
ALWAYS_NOTES = (
    "BABEL-QA, KIT-ML and HumanML3D are **not** redistributed with this model; to train on them, obtain them and "
    "the AMASS motions yourself under their licences (BABEL and AMASS: non-commercial research only).",
)

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
TAGS = ["humocon", "motion-understanding", "human-motion", "video-understanding", "motion-question-answering",
        "custom_code"]

def _check_results(results: Mapping | None, name: str) -> Mapping | None:
    if results is None:
        return None
    if not isinstance(results, Mapping) or not isinstance(results.get("metrics"), Mapping):
        raise ValueError(
            f"{name} must be an evaluation result with a 'metrics' mapping (humocon_hf.evaluation.evaluate_motion_qa "
            f"output), got {type(results).__name__}"
        )
    for key, value in results["metrics"].items():
        if key == "counts":
            continue
        if value is not None and not isinstance(value, (int, float)):
            raise ValueError(f"{name}: metric {key!r} must be a number or None, got {value!r}")
    return results


def results_table(results: Mapping, baseline_results: Mapping | None = None, digits: int = 3) -> str:
    """Markdown accuracy table: the model, the baseline (if any) and the difference, Table 1 columns."""
    rows = [(results.get("model_name", "this model"), results["metrics"])]
    if baseline_results is not None:
        rows.append((baseline_results.get("model_name", "baseline"), baseline_results["metrics"]))
    columns = [(h, k) for h, k in TABLE1_COLUMNS if any(m.get(k) is not None for _, m in rows)]
    fmt = lambda v: "-" if v is None else f"{v:.{digits}f}"  # noqa: E731
    body = [[name, *(fmt(metrics.get(k)) for _, k in columns)] for name, metrics in rows]
    if baseline_results is not None:
        a, b = results["metrics"], baseline_results["metrics"]
        body.append(["Difference", *("-" if a.get(k) is None or b.get(k) is None else f"{a[k] - b[k]:+.{digits}f}"
                                     for _, k in columns)])
    counts = results["metrics"].get("counts") or {}
    if counts:
        body.append(["Questions", *(str(counts.get("total" if k == "accuracy" else k, "-")) for _, k in columns)])
    return render_table(["Model", *(h for h, _ in columns)], body)


def _stage_rows(recipe, stage_times: Mapping[str, float] | None) -> list[dict]:
    if recipe is None:
        return []
    sections = recipe.sections if hasattr(recipe, "sections") else dict(recipe)
    pre, tr, tu = (sections.get(s, {}) for s in ("pretrain", "translate", "tune"))

    def batch(sec):
        b = sec.get("per_device_train_batch_size", 8)
        acc = sec.get("gradient_accumulation_steps", 1)
        return f"{b}" if acc == 1 else f"{b} x {acc}"

    def steps(sec):
        if sec.get("max_steps", -1) not in (None, -1):
            return str(sec["max_steps"])
        return f"{sec.get('num_train_epochs', 3)} epochs"

    def t(name):
        if not stage_times or name not in stage_times:
            return "-"
        return f"{stage_times[name]:.0f} s"

    rows = [
        {"name": "1. concept discovery, phase 1", "trains": "motion encoder + reconstruction decoder",
         "data": "motions", "steps": str(pre.get("phase1_max_steps", "-")), "lr": pre.get("phase1_learning_rate", "-"),
         "batch": batch(pre), "time": t("pretrain")},
    ]
    if pre.get("phase2_max_steps"):
        with_video = bool(pre.get("use_video"))
        rows.append({"name": "1. concept discovery, phase 2",
                     "trains": "both encoders, all four objectives" if with_video else
                               "motion encoder: masked reconstruction, discriminative and velocity objectives",
                     "data": "motions + rendered videos" if with_video else "motions",
                     "steps": str(pre["phase2_max_steps"]),
                     "lr": pre.get("phase2_learning_rate", "-"), "batch": batch(pre), "time": "(in stage 1)"})
    rows.append({"name": "2. modality translation", "trains": "motion / video projectors", "data": "captions",
                 "steps": steps(tr), "lr": tr.get("learning_rate", "-"), "batch": batch(tr), "time": t("translate")})
    tuned = f"LoRA rank {(tu.get('lora') or {}).get('r', tu.get('lora_r', 8))} on the LLM" + (" + the projectors" if tu.get("train_projectors") else "")
    rows.append({"name": "3. instruction tuning", "trains": tuned,
                 "data": "question / answer pairs", "steps": steps(tu), "lr": tu.get("learning_rate", "-"),
                 "batch": batch(tu), "time": t("tune")})
    return rows


def _num_parameters(model) -> str:
    if model is None:
        return "-"
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.1f} M" if n < 1e9 else f"{n / 1e9:.2f} B"


def card_metadata(metadata, dataset: bool = False) -> str:
    """The YAML of a card's header (between its `---` lines) as huggingface_hub writes it: `metadata` as a
    `ModelCardData` (or a `DatasetCardData` with `dataset`), or a dict of its fields. The one writer of every card's
    metadata here (the demo's, `humocon push`'s, `finetune`'s and the benchmark's), so the Hub reads back what was
    meant."""
    from huggingface_hub import DatasetCardData, ModelCardData

    if isinstance(metadata, Mapping):
        metadata = (DatasetCardData if dataset else ModelCardData)(**metadata)
    return metadata.to_yaml() + "\n"


def build_metadata(
    results: Mapping | None,
    *,
    base_model: str | None,
    model_name: str,
    datasets_used: Sequence[str],
    license: str,
    video_qa: bool = False,
) -> dict[str, Any]:
    """The card's YAML header as a dict (model-index only from the given results).

    `pipeline_tag: video-text-to-text` and the video tag only when the LLM was tuned to answer about videos
    (`video_qa`): the Hub has no motion-to-text task, and a checkpoint whose LLM never saw a video feature is not a
    video model. `datasets` lists only Hub data set ids (`owner/name`); the card's body describes the others."""
    meta: dict[str, Any] = {"library_name": "transformers", "license": license}
    if video_qa:
        meta["pipeline_tag"] = "video-text-to-text"
    meta["tags"] = [t for t in TAGS if video_qa or t != "video-understanding"]
    if base_model == "SmolLM2-135M-Instruct":
        base_model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    if public_name(base_model):  # a Hub id; a local folder is no base model the Hub knows (and names this machine)
        meta["base_model"] = base_model
    hub_ids = [d for d in datasets_used if _HUB_ID.fullmatch(d)]
    if hub_ids:
        meta["datasets"] = hub_ids
    if results is not None:
        from humocon_hf.evaluation import model_index

        meta["model-index"] = model_index(results, model_name=model_name)
    return meta


def real_cmu_per_action(summary: Mapping) -> str:
    """"jump 8/9, walk 28/30": right answers per action over all seeds of a `real_cmu_summary`."""
    seeds = summary["statistics"]["model"]["n_seeds"]
    return ", ".join(f"{a} {sum(v['correct_per_seed'])}/{v['questions'] * seeds}" for a, v in summary["per_action"].items())


def _real_cmu_context(summary: Mapping | None) -> dict | None:
    if not summary:
        return None
    from humocon_hf.stats import wilson_ci

    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    seeds = summary["statistics"]["model"]["n_seeds"]
    right = sum(sum(v["correct_per_seed"]) for v in summary["per_action"].values())
    asked = sum(v["questions"] for v in summary["per_action"].values()) * seeds
    ci = wilson_ci(right, asked)  # 13 trials: a bootstrap CI of 13/13 would be [100, 100]
    return {
        "question": summary["question"],
        "n": len(summary["trials"]),
        "count": f"{right} of {asked} right" + (f" over {seeds} seeds" if seeds > 1 else ""),
        "ci": f"95% CI {100 * ci['low']:.0f}-{100 * ci['high']:.0f}%",
        "accuracy_pct": pct(summary["accuracy"]),
        "baseline_pct": pct(summary.get("baseline_accuracy")),
        "majority_answer": summary["majority_answer"],
        "majority_pct": pct(summary["majority_accuracy"]),
        "per_action": real_cmu_per_action(summary),
    }


def _reads_poses(config, model_sec: dict) -> bool:
    value = getattr(config, "motion_projector_reads_poses", None)
    return bool(model_sec.get("motion_projector_reads_poses", False) if value is None else value)


def _real_lines_table(summary: Mapping | None) -> str | None:
    """The real-motion table of a `real_lines_summary` (held-out actors / styles / subjects), as Markdown."""
    if not summary:
        return None
    from humocon_hf.pipeline.reporting import format_real_lines

    return format_real_lines(summary)


def _extra_lines_tables(lines: Mapping[str, Mapping | None] | None) -> list[dict]:
    """[{title, table}] of the held-out lines beside the real ones (`EXTRA_LINES`), in their order; absent ones left out."""
    if not lines:
        return []
    from humocon_hf.pipeline.reporting import EXTRA_LINES, format_real_lines

    return [{"title": title, "table": format_real_lines(lines[name], title=title)}
            for name, (_, title) in EXTRA_LINES.items() if lines.get(name)]


def render_model_card(
    results: Mapping | None = None,
    *,
    baseline_results: Mapping | None = None,
    recipe=None,
    command: str | None = None,
    stage_times: Mapping[str, float] | None = None,
    base_model: str | None = None,
    model_name: str = "humocon",
    repo_id: str | None = None,
    datasets_used: Sequence[str] = ("humocon-procedural-motion-qa",),
    model: HuMoConForCausalLM | None = None,
    license: str = "apache-2.0",
    template_path: str | os.PathLike | None = None,
    video_qa: bool = False,
    real_cmu: Mapping | None = None,
    real_lines: Mapping | None = None,
    extra_lines: Mapping[str, Mapping | None] | None = None,
    media: Mapping[str, str] | None = None,
) -> str:
    """Render the Hub README of a HuMoCon checkpoint.

    Args:
        results: the model's evaluation (`humocon_hf.evaluation.evaluate_motion_qa` output); becomes the
            `model-index` and the evaluation table. `None`: the card says no results were recorded.
        baseline_results: the baseline's evaluation (the question alone; `humocon_hf.evaluation.BASELINES`), shown
            next to the model's (not in the model-index).
        recipe: the `Recipe` (or its `{section: dict}`) the checkpoint was trained with.
        command: the exact command that produced the checkpoint.
        stage_times: measured wall time per stage in seconds.
        base_model: the LLM the model was built from.
        model_name / repo_id: shown in the title and usage (`repo_id` defaults to `model_name`).
        datasets_used: keys of `DATA_NOTES` (licence notes) / Hub data set ids.
        model: the model itself, for its parameter count and config facts (optional).
        video_qa: whether stages 2-3 taught the LLM to answer about videos (sets the video pipeline tag).
        real_lines: the demo's real-motion lines (`humocon_hf.pipeline.reporting.real_lines_summary`): accuracy on the
            held-out real takes of each data set, shown as their own table.
        extra_lines: the demo's other held-out lines by name (`humocon_hf.pipeline.reporting.EXTRA_LINES`: the
            procedural vocabulary clips, real takes in sequence), each its own table under its title.
        real_cmu: the demo's held-out real CMU summary (`humocon_hf.pipeline.reporting.real_cmu_summary`), shown as its own line.
        media: files shown in the card, relative to it (they must be uploaded beside it): ``preview`` (a rendered
            test motion, `preview.gif`), ``concept_timeline`` (`concept_timeline.png`) and ``caption`` (what the
            motion is).
    """
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from humocon_hf.evaluation import baseline_description
    from humocon_hf.hub import REMOTE_CODE_PIP

    results = _check_results(results, "results")
    baseline_results = _check_results(baseline_results, "baseline_results")
    sections = recipe.sections if hasattr(recipe, "sections") else (dict(recipe) if recipe else {})
    model_sec = sections.get("model", {})
    base_model = base_model or model_sec.get("llm_name_or_path")
    if base_model and not public_name(base_model):
        base_model = local_name(base_model)
    command = public_command(command)
    config = getattr(model, "config", None)

    meta = build_metadata(results, base_model=base_model, model_name=model_name, datasets_used=datasets_used,
                          license=license, video_qa=video_qa)
    metadata_yaml = card_metadata(meta)

    codebook = getattr(getattr(config, "motion_config", None), "codebook_size", None) or model_sec.get("codebook_size")
    if codebook is None:
        codebook = 512 if model_sec.get("encoder_preset") == "paper" else 64
    quantized = getattr(config, "use_motion_quantized", None)
    if quantized is None:
        quantized = model_sec.get("use_motion_quantized", True)
    text_config = getattr(config, "text_config", None)
    llm_desc = (
        f"{text_config.model_type}, {text_config.num_hidden_layers} layers, hidden size {text_config.hidden_size}"
        if text_config is not None else "causal LM"
    )
    data_notes = [DATA_NOTES[d] for d in datasets_used if d in DATA_NOTES] + list(ALWAYS_NOTES)
    eval_ds = (results or {}).get("dataset", {})
    counts = ((results or {}).get("metrics") or {}).get("counts") or {}
    pre = sections.get("pretrain", {})

    context = {
        "metadata_yaml": metadata_yaml,
        "model_name": model_name,
        "repo_id": repo_id or model_name,
        "base_model": base_model or "unknown",
        "llm_desc": llm_desc,
        "codebook_size": codebook,
        "motion_features": ("the codebook's concept vectors" if quantized
                            else "the encoder's continuous features (before the codebook)")
        + (", with each token's own normalised pose frames beside them (`motion_projector_reads_poses`)"
           if _reads_poses(config, model_sec) else ""),
        "motion_token_stride": getattr(config, "motion_token_stride", None) or model_sec.get("motion_token_stride", 4),
        "motion_fps": 20,
        "video_tokens_per_frame": getattr(config, "video_tokens_per_frame", 1),
        "video_num_frames": 8,
        "num_parameters": _num_parameters(model),
        "system_prompt": model_sec.get("system_prompt"),
        "recipe_name": getattr(recipe, "name", None) or "custom",
        "command": command,
        "stages": _stage_rows(recipe, stage_times),
        "stage_times": bool(stage_times),
        "data_summary": None,
        "results_table": results_table(results, baseline_results) if results is not None else None,
        "has_baseline": baseline_results is not None,
        "baseline_description": baseline_description((baseline_results or {}).get("model_name")),
        "eval_dataset": eval_ds.get("name", "evaluation set"),
        "eval_split": eval_ds.get("split", "test"),
        "eval_count": counts.get("total", eval_ds.get("num_examples", "-")),
        "small_recipe": model_sec.get("encoder_preset", "small") == "small",
        "video_trained": bool(pre.get("use_video")) and bool(pre.get("phase2_max_steps")),
        "data_notes": data_notes,
        "uses_cmu": "cmu-mocap" in datasets_used,
        "remote_code_pip": REMOTE_CODE_PIP,
        "real_cmu": _real_cmu_context(real_cmu),
        "real_lines": _real_lines_table(real_lines),
        "extra_lines": _extra_lines_tables(extra_lines),
        "preview": (media or {}).get("preview"),
        "concept_timeline": (media or {}).get("concept_timeline"),
        "media_caption": (media or {}).get("caption"),
    }
    path = Path(template_path) if template_path is not None else TEMPLATE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found (is humocon-hf installed with its package data?)")
    # A user-given template_path is untrusted text: render it in jinja's sandbox, as transformers does.
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(path.read_text(encoding="utf-8")).render(**context)


def public_name(name_or_path) -> str | None:
    """`name_or_path` when it is a Hub id (``org/name``, not a folder here), else None."""
    from humocon_hf.hub import public_name as hub_public_name

    return hub_public_name(name_or_path)


def _is_local_path(text: str) -> bool:
    return text.startswith(("/", "~", "\\")) or bool(re.match(r"[A-Za-z]:[\\/]", text))


def local_name(path) -> str:
    """A local path as a card may show it: its last part only (``/home/me/runs/ft`` -> ``ft``)."""
    text = str(path).rstrip("/\\")
    return re.split(r"[\\/]", text)[-1] or text


def public_command(command: str | None) -> str | None:
    """`command` as a pushed card may show it: every absolute or home-relative path in it (``--data
    /home/me/qa.jsonl``, ``--output-dir=~/runs/x``, ``model.llm_name_or_path=/srv/llm``) shortened to its last part,
    so that no local folder (user names, mount points) reaches the Hub. Relative paths are kept."""
    if not command:
        return command
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    out, changed = [], False
    for token in tokens:
        key, sep, value = token.partition("=") if "=" in token and not _is_local_path(token) else ("", "", token)
        if _is_local_path(value):
            value, changed = local_name(value), True
        out.append(key + sep + value)
    # Re-quoted only when a path was shortened: a command without local paths is shown as it was given.
    return shlex.join(out) if changed else command


def card_from_output_dir(output_dir: str | os.PathLike, repo_id: str | None = None) -> str:
    """Re-render the card of a `humocon demo` (or `humocon evaluate`) output folder from its `results.json`."""
    from humocon_hf.pipeline.reporting import EXTRA_LINES

    folder = Path(output_dir)
    path = folder / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `humocon demo` / `humocon evaluate` for this folder first")
    saved = json.loads(path.read_text())
    evaluation = {}
    for key in ("model", "baseline"):
        candidate = folder / "stages" / "evaluate" / f"{key}.json"
        if candidate.is_file():
            evaluation[key] = json.loads(candidate.read_text())
    if not evaluation and isinstance(saved.get("evaluation"), Mapping):
        evaluation = saved["evaluation"]
    recipe_sections = saved.get("recipe") or {}
    stage_times = {k: v for k, v in (saved.get("wall_time_s") or {}).items() if k != "total_this_run"}
    datasets_used = ["humocon-procedural-motion-qa"]
    if ((saved.get("stages") or {}).get("data") or {}).get("cmu_trials"):
        datasets_used.append("cmu-mocap")
    return render_model_card(
        results=evaluation.get("model"),
        baseline_results=evaluation.get("baseline"),
        recipe=_SectionsRecipe(recipe_sections, Path(saved.get("recipe_source", "custom")).stem),
        command=saved.get("command"),
        stage_times=stage_times,
        model_name=repo_id.split("/")[-1] if repo_id else folder.name,
        repo_id=repo_id,
        datasets_used=datasets_used,
        real_cmu=saved.get("real_cmu"),
        real_lines=saved.get("real_lines"),
        extra_lines={name: saved.get(f"{name}_line") for name in EXTRA_LINES},
        media=card_media(folder, ((saved.get("stages") or {}).get("export") or {}).get("preview_caption")),
    )


CARD_MEDIA = {"preview": "preview.gif", "concept_timeline": "concept_timeline.png"}


def card_media(folder: str | os.PathLike, caption: str | None = None) -> dict[str, str]:
    """The `media` of `render_model_card` that `folder` holds (`preview.gif`, `concept_timeline.png`), by file name:
    the card shows them, and `humocon push` uploads them beside it."""
    media = {key: name for key, name in CARD_MEDIA.items() if (Path(folder) / name).is_file()}
    if media and caption:
        media["caption"] = caption
    return media


class _SectionsRecipe:
    def __init__(self, sections: dict, name: str):
        self.sections = sections
        self.name = name


__all__ = ["CARD_MEDIA", "DATA_NOTES", "TEMPLATE_PATH", "build_metadata", "card_from_output_dir", "card_media",
           "local_name", "public_command", "public_name", "render_model_card", "results_table"]

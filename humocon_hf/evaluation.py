"""Evaluation driver: run any model on a QA data set and report the paper's tables.

The model enters as ``answer_fn(rows) -> list[str]``: it gets a batch of data set rows (dicts with
`question`, `motion_path`, `video_path`, `conversations`, ...) and returns one answer per row, so any model
(HuMoConForCausalLM through a small adapter, a baseline, a scripted stand-in) can be evaluated the same way.

* `evaluate_motion_qa` - BABEL-QA style accuracy overall / per query type / per relation type (Table 1).
* `evaluate_video_qa` - ActivityNet-QA style LLM-judge accuracy and 0-5 score.
* `format_table` / `format_ablation_table` - paper-style text tables; `write_results` - JSON plus the
  `model-index` block of a Hub model card.
* `run_ablation` - trains and evaluates the paper's Table 3 variants through a user `train_fn`.
* `humocon_hf.inference.answer_fn_from_model` / `make_answer_fn` - a checkpoint as an `answer_fn`.

Command line: ``python -m humocon_hf.evaluation table results.json [more.json ...]`` prints the table of
saved results (several files: one row each).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets

from humocon_hf.io_utils import write_text_atomic
from humocon_hf.metrics.babel_qa_accuracy import (
    compute_babel_qa_accuracy,
    normalize_answer,
)
from humocon_hf.metrics.llm_judge import LLMJudge
from humocon_hf.stats import TABLE1_COLUMNS
from humocon_hf.tables import render_table

logger = logging.getLogger(__name__)

AnswerFn = Callable[[list[dict]], list[str]]

VIDEO_QA_COLUMNS = (("Accuracy", "accuracy"), ("Score", "score"))

# Paper Table 3 variants -> overrides handed to `train_fn`: field names of
# `HuMoConConceptDiscoveryConfig` (velocity reconstruction = the actionable-informativeness objective).
ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "w/o masked reconstruction": {"use_masked_reconstruction": False},
    "w/o discriminative": {"use_discriminative": False},
    "w/o velocity reconstruction": {"use_velocity_reconstruction": False},
    "w/o alignment": {"use_alignment": False},
}


# The baselines a run is compared with (`evaluate.baseline`): the row's name and what a model card says of it. Each
# answers from the question alone, so the difference to the model is what the motion adds.
BASELINES: dict[str, tuple[str, str]] = {
    "question_prior": ("Question prior (question only)",
                       "The question prior answers each question with the most common training answer to the same "
                       "question text (of its options, when it lists them): what the question alone gives, counted "
                       "without the motion."),
    "text_only": ("Text-only baseline (question only)",
                  "The text-only baseline is the same LLM trained with the same stage-3 recipe on the same questions "
                  "**without the motion**: it can only learn answer priors from the question text."),
    "zero_shot": ("Zero-shot LLM (question only)",
                  "The zero-shot baseline is the LLM before any training, asked the questions without the motion."),
}


def baseline_description(name: str | None) -> str:
    """What a model card says of the baseline row called `name` (a `BASELINES` name, or any other)."""
    for row_name, description in BASELINES.values():
        if row_name == name:
            return description
    return "The baseline answers from the question alone, without the motion."


def _batches(dataset, batch_size: int, limit: int | None):
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for start in range(0, n, batch_size):
        chunk = dataset[start : min(start + batch_size, n)]
        if isinstance(chunk, Mapping):  # datasets.Dataset slices are column dicts
            keys = list(chunk)
            yield [dict(zip(keys, values)) for values in zip(*(chunk[k] for k in keys))]
        else:
            yield list(chunk)


def _run_answer_fn(answer_fn: AnswerFn, dataset, batch_size: int, limit: int | None) -> tuple[list[dict], list[str]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(dataset) == 0:
        raise ValueError("the data set to evaluate is empty")
    rows, predictions = [], []
    batches = _batches(dataset, batch_size, limit)
    length = getattr(answer_fn, "approximate_length", None)
    order = None
    if length is not None:  # batch prompts of similar length together: less padding to prefill (answers keep order)
        every = [row for batch in batches for row in batch]
        order = list(range(len(every)))
        if "question" in every[0]:  # else the loop below names the missing column
            order.sort(key=lambda i: length(every[i]))
        batches = ([every[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size))
    for batch in batches:
        if "question" not in batch[0] or "answer" not in batch[0]:
            raise ValueError(f"evaluation rows need 'question' and 'answer' columns, got {sorted(batch[0])}")
        out = answer_fn(batch)
        if isinstance(out, str) or not isinstance(out, Sequence) or len(out) != len(batch):
            got = "a string" if isinstance(out, str) else f"{type(out).__name__} of length {len(out) if hasattr(out, '__len__') else '?'}"
            raise ValueError(f"answer_fn must return a list of {len(batch)} strings (one per row), got {got}")
        for i, answer in enumerate(out):
            if not isinstance(answer, str):
                raise ValueError(f"answer_fn returned {type(answer).__name__} for row {len(rows) + i}; expected str")
        rows.extend(batch)
        predictions.extend(out)
    if order is not None:  # back to the data set's order
        back = sorted(range(len(order)), key=order.__getitem__)
        rows, predictions = [rows[i] for i in back], [predictions[i] for i in back]
    return rows, predictions


def _column(rows: list[dict], key: str) -> list | None:
    values = [r.get(key) for r in rows]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f"column {key!r} is set for some rows and missing for others")
    return values


def resolve_option(prediction: str, options: Sequence[str]) -> str | None:
    """The one option a free-form answer names, or None: the option it equals (after the metric's normalisation),
    else the only option whose words include all of the answer's ("right" -> "right hand" of "left hand" / "right
    hand") or whose words the answer includes ("the right one, the right hand" -> "right hand")."""
    answer = normalize_answer(prediction)
    if not answer:
        return None
    normalized = {o: normalize_answer(o) for o in options}
    exact = [o for o, n in normalized.items() if n == answer]
    if len(exact) == 1:
        return exact[0]
    words = answer.split()

    def contains(big: list[str], small: list[str]) -> bool:
        return any(big[i:i + len(small)] == small for i in range(len(big) - len(small) + 1))

    within = [o for o, n in normalized.items() if contains(n.split(), words)]
    if len(within) == 1:
        return within[0]
    around = [o for o, n in normalized.items() if contains(words, n.split())]
    return around[0] if len(around) == 1 else None


def evaluate_motion_qa(
    answer_fn: AnswerFn,
    dataset: datasets.Dataset | Sequence[dict],
    *,
    batch_size: int = 8,
    limit: int | None = None,
    model_name: str = "model",
    dataset_name: str = "BABEL-QA",
    dataset_type: str = "babel-qa",
    split: str | None = "test",
    keep_predictions: bool = True,
) -> dict:
    """Run `answer_fn` over `dataset` and score it with the BABEL-QA accuracy metric.

    Per query type / relation type accuracies appear when the rows carry `query_type` / `relation_type`. A row that
    lists the ``options`` its question offers ("left or right?") is scored on the option the answer names
    (`resolve_option`: "right" to "the left hand or the right hand?" names "right hand"); its prediction row keeps
    the raw answer and adds ``chosen_option`` (None when the answer names none or several).
    Returns ``{"task", "model_name", "dataset": {name, type, split, num_examples}, "metrics": {...},
    "predictions": [...]}`` (JSON-serialisable).
    """
    rows, predictions = _run_answer_fn(answer_fn, dataset, batch_size, limit)
    references = [r["answer"] for r in rows]
    chosen = [resolve_option(p, r["options"]) if r.get("options") else None for r, p in zip(rows, predictions)]
    scored = [c if r.get("options") and c is not None else p for r, p, c in zip(rows, predictions, chosen)]
    metrics = compute_babel_qa_accuracy(
        scored, references, _column(rows, "query_type"), _column(rows, "relation_type")
    )
    results = {
        "task": "motion-qa",
        "model_name": model_name,
        "dataset": {"name": dataset_name, "type": dataset_type, "split": split, "num_examples": len(rows)},
        "metrics": metrics,
    }
    if keep_predictions:
        results["predictions"] = [
            {
                "id": r.get("id", str(i)),
                "question": r["question"],
                "answer": r["answer"],
                "prediction": p,
                "correct": normalize_answer(s) == normalize_answer(r["answer"]),
                # kept for per-group confidence intervals and paired tests (humocon_hf.stats)
                **{k: r[k] for k in ("query_type", "relation_type") if r.get(k) is not None},
                **({"chosen_option": c} if r.get("options") else {}),
            }
            for i, (r, p, s, c) in enumerate(zip(rows, predictions, scored, chosen))
        ]
    return results


def evaluate_video_qa(
    answer_fn: AnswerFn,
    dataset: datasets.Dataset | Sequence[dict],
    judge: LLMJudge,
    *,
    batch_size: int = 8,
    limit: int | None = None,
    model_name: str = "model",
    dataset_name: str = "ActivityNet-QA",
    dataset_type: str = "activitynet-qa",
    split: str | None = "test",
    keep_predictions: bool = True,
) -> dict:
    """Run `answer_fn` over `dataset` and grade each answer with the LLM judge (accuracy and 0-5 score)."""
    rows, predictions = _run_answer_fn(answer_fn, dataset, batch_size, limit)
    judged = judge.evaluate([r["question"] for r in rows], [r["answer"] for r in rows], predictions)
    verdicts = judged.pop("verdicts")
    results = {
        "task": "video-qa",
        "model_name": model_name,
        "dataset": {"name": dataset_name, "type": dataset_type, "split": split, "num_examples": len(rows)},
        "metrics": judged,
    }
    if keep_predictions:
        results["predictions"] = [
            {"id": r.get("id", str(i)), "question": r["question"], "answer": r["answer"], "prediction": p, **v}
            for i, (r, p, v) in enumerate(zip(rows, predictions, verdicts))
        ]
    return results


# ------------------------------------------------------------------------------------------------ tables


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _columns_for(metrics: Mapping) -> tuple[tuple[str, str], ...]:
    return VIDEO_QA_COLUMNS if "score" in metrics else TABLE1_COLUMNS


def format_table(results: Mapping | Sequence[Mapping], digits: int = 3) -> str:
    """Paper-style table (Markdown) of one results dict or several (one row per model).

    Motion QA: Overall | Action | Direction | Body part | Before | After | Other (accuracies in [0, 1]);
    video QA: Accuracy (%) | Score (0-5), as the paper reports ActivityNet-QA.
    """
    many = [results] if isinstance(results, Mapping) else list(results)
    if not many:
        raise ValueError("no results to format")
    columns = _columns_for(many[0]["metrics"])
    body = []
    for res in many:
        metrics = res["metrics"]
        if _columns_for(metrics) != columns:
            raise ValueError("cannot put motion-QA and video-QA results in one table")
        if columns is VIDEO_QA_COLUMNS:
            cells = [_fmt(None if metrics.get("accuracy") is None else 100 * metrics["accuracy"], 1),
                     _fmt(metrics.get("score"), 2)]
        else:
            cells = [_fmt(metrics.get(key), digits) for _, key in columns]
        body.append([res.get("model_name", "model"), *cells])
    header = ["Model", *(name for name, _ in columns)]
    title = many[0].get("dataset", {}).get("name")
    return (f"{title}\n" if title else "") + render_table(header, body, padded=True)


def format_ablation_table(results_by_variant: Mapping[str, Mapping], digits: int = 3) -> str:
    """Paper Table 3: one row per variant (full, w/o masked reconstruction, ...), Table 1 columns."""
    if not results_by_variant:
        raise ValueError("no ablation results to format")
    body = []
    for variant, res in results_by_variant.items():
        metrics = res["metrics"]
        body.append([variant, *(_fmt(metrics.get(key), digits) for _, key in TABLE1_COLUMNS)])
    return render_table(["Variant", *(name for name, _ in TABLE1_COLUMNS)], body, padded=True)


# ---------------------------------------------------------------------------------------------- writing


_METRIC_NAMES = {
    "accuracy": "Overall accuracy", "action": "Action accuracy", "direction": "Direction accuracy",
    "body_part": "Body part accuracy", "before": "Before accuracy", "after": "After accuracy",
    "other": "Other accuracy", "score": "GPT-style judge score (0-5)",
}
_TASKS = {"motion-qa": ("question-answering", "Motion question answering"),
          "video-qa": ("visual-question-answering", "Video question answering")}


def model_index(results: Mapping | Sequence[Mapping], model_name: str | None = None) -> list[dict]:
    """The `model-index` list of a Hub model card (task, dataset, metrics) for one or more results."""
    from huggingface_hub.repocard_data import EvalResult, eval_results_to_model_index

    many = [results] if isinstance(results, Mapping) else list(results)
    eval_results = []
    for res in many:
        task_type, task_name = _TASKS.get(res.get("task"), ("question-answering", res.get("task", "qa")))
        ds = res["dataset"]
        keys = [k for _, k in _columns_for(res["metrics"])]
        for key in keys:
            value = res["metrics"].get(key)
            if value is None:
                continue
            eval_results.append(EvalResult(
                task_type=task_type, task_name=task_name, dataset_type=ds["type"], dataset_name=ds["name"],
                dataset_split=ds.get("split"), metric_type="score" if key == "score" else "accuracy",
                metric_name=_METRIC_NAMES.get(key, key), metric_value=round(float(value), 4),
            ))
    if not eval_results:
        raise ValueError("no metric values to put in the model index")
    return eval_results_to_model_index(model_name or many[0].get("model_name", "model"), eval_results)


def write_results(results: Mapping, out_dir: str | os.PathLike, *, stem: str = "results") -> dict[str, Path]:
    """Write `<stem>.json` (everything), `<stem>_table.md` (the printed table) and `<stem>_model_index.yaml`
    (``model-index:`` block to paste into a model card's YAML header). Returns the paths."""
    import yaml

    out = Path(out_dir)
    paths = {"json": out / f"{stem}.json", "table": out / f"{stem}_table.md", "model_index": out / f"{stem}_model_index.yaml"}
    write_text_atomic(paths["json"], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(paths["table"], format_table(results) + "\n")
    index = {"model-index": model_index(results)}
    write_text_atomic(paths["model_index"], yaml.safe_dump(index, sort_keys=False, allow_unicode=True))
    return paths


# --------------------------------------------------------------------------------------------- ablation


def run_ablation(
    train_fn: Callable[[dict], AnswerFn],
    dataset,
    *,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    print_table: bool = True,
    **eval_kwargs,
) -> dict[str, dict]:
    """Train every variant on the same data and seed and evaluate it (paper Table 3).

    `train_fn(overrides) -> answer_fn` trains one model; `overrides` is a fresh copy of the variant's dict
    from `variants` (default `ABLATION_VARIANTS`, e.g. ``{"use_alignment": False}``, fields of
    `HuMoConConceptDiscoveryConfig`) plus ``"seed": seed``.
    The global RNGs are re-seeded before each variant. With `out_dir`, writes `ablation.json` and
    `ablation_table.md`. Returns ``{variant: results}``.
    """
    from transformers import set_seed

    variants = dict(ABLATION_VARIANTS if variants is None else variants)
    if not variants:
        raise ValueError("no ablation variants given")
    all_results = {}
    for name, overrides in variants.items():
        set_seed(seed)
        answer_fn = train_fn({**dict(overrides), "seed": seed})
        if not callable(answer_fn):
            raise ValueError(f"train_fn for variant {name!r} returned {type(answer_fn).__name__}, expected an answer_fn")
        res = evaluate_motion_qa(answer_fn, dataset, model_name=name, **eval_kwargs)
        res["variant_overrides"] = dict(overrides)
        all_results[name] = res
        logger.info("ablation %s: overall accuracy %.3f", name, res["metrics"]["accuracy"])
    table = format_ablation_table(all_results)
    if print_table:
        print(table)
    if out_dir is not None:
        write_ablation(all_results, out_dir, table=table)
    return all_results


def write_ablation(results_by_variant: Mapping[str, Mapping], out_dir: str | os.PathLike, *,
                   table: str | None = None) -> dict[str, Path]:
    """Write `ablation.json` (variant -> results) and `ablation_table.md` into `out_dir` (atomically)."""
    out = Path(out_dir)
    table = format_ablation_table(results_by_variant) if table is None else table
    paths = {"json": out / "ablation.json", "table": out / "ablation_table.md"}
    write_text_atomic(paths["json"], json.dumps(results_by_variant, indent=2, ensure_ascii=False, default=str) + "\n")
    write_text_atomic(paths["table"], table + "\n")
    return paths


# -------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m humocon_hf.evaluation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser("table", help="print the paper-style table of saved results JSON files")
    table.add_argument("files", nargs="+", type=Path)
    table.add_argument("--ablation", action="store_true", help="files are ablation.json (variant -> results)")
    args = parser.parse_args(argv)
    loaded = []
    for file in args.files:
        if not file.is_file():
            raise FileNotFoundError(f"{file}: results file not found")
        try:
            loaded.append(json.loads(file.read_text(encoding="utf-8")))
        except json.JSONDecodeError as err:
            raise ValueError(f"{file}: not a results JSON ({err})") from err
    if args.ablation:
        for res in loaded:
            print(format_ablation_table(res))
    else:
        for i, res in enumerate(loaded):
            if "metrics" not in res:
                raise ValueError(f"{args.files[i]}: no 'metrics' key; is it an ablation file (use --ablation)?")
        print(format_table(loaded))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""Statistics for accuracy on QA benchmarks: confidence intervals, paired tests, summaries over training seeds.

On our benchmark one training run decides nothing (seed-to-seed spread is several points overall and about
±10 on body part), so every comparison here is (a) over the *same* test questions and (b) over several seeds:

* `bootstrap_ci` - percentile bootstrap CI of an accuracy, resampling questions.
* `wilson_ci` - the Wilson score CI of k right of n: for few questions and accuracies at 0 or 100%.
* `paired_comparison` - model A vs model B answered the same questions: mean difference with a paired bootstrap
  CI and an exact McNemar test on the discordant pairs (questions one got right and the other wrong).
* `seed_summary` / `compare_over_seeds` - the same over several seeds, each seed with its own test questions:
  mean and standard deviation over seeds, and a hierarchical bootstrap CI (resample seeds, then questions within
  each drawn seed) so that both training noise and question sampling are in the interval; McNemar on the pooled
  discordant pairs.

Inputs are 0/1 correctness vectors (one per question); `group_masks` splits them by query and relation type
the way the BABEL-QA metric does (``other`` = in between + none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from humocon_hf.metrics.babel_qa_accuracy import QUERY_TYPES, RELATION_TYPES
from humocon_hf.metrics.babel_qa_accuracy.babel_qa_accuracy import _canonical_query, _canonical_relation
from humocon_hf.tables import render_table

GROUPS = ("accuracy", *QUERY_TYPES, "before", "after", "other")
# The columns of every accuracy table (paper Table 1: "Other" = in between + none): (header, key in the metrics). The
# one definition for the evaluation tables, the demo's summary and the tables with confidence intervals.
TABLE1_COLUMNS = (
    ("Overall", "accuracy"),
    ("Action", "action"),
    ("Direction", "direction"),
    ("Body part", "body_part"),
    ("Before", "before"),
    ("After", "after"),
    ("Other", "other"),
)
DEFAULT_RESAMPLES = 10_000


def _correct(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence of 0/1 correctness values, got shape {arr.shape}")
    if not np.isin(arr, (0, 1, True, False)).all():
        raise ValueError(f"{name}: correctness values must be 0/1 or booleans")
    return arr.astype(np.float64)


def bootstrap_ci(correct: Sequence, *, confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0) -> dict:
    """Accuracy of a 0/1 vector with a percentile bootstrap CI over questions: ``{mean, low, high, n}``."""
    c = _correct(correct, "correct")
    rng = np.random.default_rng(seed)
    means = c[rng.integers(0, c.size, size=(resamples, c.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean": float(c.mean()), "low": float(lo), "high": float(hi), "n": int(c.size)}


def wilson_ci(successes: int, n: int, *, confidence: float = 0.95) -> dict:
    """Accuracy `successes / n` with the Wilson score CI: ``{mean, low, high, n}``.

    For few questions or an accuracy at 0 or 100% (13 of 13 trials), where the bootstrap CI collapses to a point
    ([100, 100]) while 13 trials only show the accuracy is above ~77%."""
    from statistics import NormalDist

    if not (isinstance(n, (int, np.integer)) and n > 0):
        raise ValueError(f"wilson_ci: n must be a positive integer, got {n!r}")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_ci: successes must be in [0, {n}], got {successes!r}")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return {"mean": p, "low": low, "high": high, "n": int(n)}


def mcnemar_exact(a_correct: Sequence, b_correct: Sequence) -> dict:
    """Exact (binomial) two-sided McNemar test on paired 0/1 outcomes.

    Only discordant questions count: ``a_only`` (A right, B wrong) and ``b_only``; under "A and B are equally
    good" each discordant question is a fair coin. Returns ``{a_only, b_only, p_value}``."""
    a, b = _correct(a_correct, "a_correct"), _correct(b_correct, "b_correct")
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have the same length, got {a.size} and {b.size}")
    a_only = int(((a == 1) & (b == 0)).sum())
    b_only = int(((a == 0) & (b == 1)).sum())
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return {"a_only": 0, "b_only": 0, "p_value": 1.0}
    # P(X <= k) for X ~ Binomial(n, 1/2), doubled; exact in log space so large n does not overflow.
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return {"a_only": a_only, "b_only": b_only, "p_value": float(min(1.0, 2.0 * tail))}


def paired_comparison(a_correct: Sequence, b_correct: Sequence, *, confidence: float = 0.95,
                      resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = 0.05) -> dict:
    """A vs B on the same questions: ``{diff, low, high, p_value, a_only, b_only, significant, n}``.

    ``diff`` = accuracy(A) - accuracy(B); the CI resamples questions (both models together); ``p_value`` is the
    exact McNemar test; ``significant`` means p < alpha."""
    a, b = _correct(a_correct, "a_correct"), _correct(b_correct, "b_correct")
    test = mcnemar_exact(a, b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    diffs = (a[idx] - b[idx]).mean(axis=1)
    lo, hi = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"diff": float(a.mean() - b.mean()), "low": float(lo), "high": float(hi), **test,
            "significant": bool(test["p_value"] < alpha), "n": int(a.size)}


def _hierarchical_means(per_seed: Sequence[np.ndarray], resamples: int, rng) -> np.ndarray:
    """Bootstrap distribution of the mean over seeds: draw seeds with replacement, then questions within each."""
    k = len(per_seed)
    out = np.empty(resamples)
    seeds = rng.integers(0, k, size=(resamples, k))
    for r in range(resamples):
        total = 0.0
        for s in seeds[r]:
            v = per_seed[s]
            total += v[rng.integers(0, v.size, size=v.size)].mean()
        out[r] = total / k
    return out


def seed_summary(per_seed_correct: Sequence[Sequence], *, confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> dict:
    """Accuracy over several training seeds, each with its own questions.

    Returns ``{mean, std, low, high, per_seed, n_seeds, n_questions}``: ``mean`` of the per-seed accuracies,
    their sample ``std`` (ddof 1; 0 for one seed), and a hierarchical bootstrap CI. With one seed the CI is the
    plain question bootstrap."""
    vectors = [_correct(c, f"seed {i}") for i, c in enumerate(per_seed_correct)]
    if not vectors:
        raise ValueError("seed_summary: no seeds given")
    accs = np.array([v.mean() for v in vectors])
    rng = np.random.default_rng(seed)
    means = _hierarchical_means(vectors, resamples, rng)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean": float(accs.mean()), "std": float(accs.std(ddof=1)) if accs.size > 1 else 0.0,
            "low": float(lo), "high": float(hi), "per_seed": [float(x) for x in accs],
            "n_seeds": len(vectors), "n_questions": int(sum(v.size for v in vectors))}


def compare_over_seeds(a_per_seed: Sequence[Sequence], b_per_seed: Sequence[Sequence], *, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict:
    """A vs B over several seeds (per seed: the same questions for both).

    ``diff`` = mean over seeds of acc(A) - acc(B); CI by the hierarchical paired bootstrap; ``p_value`` from the
    exact McNemar test on the discordant pairs pooled over seeds; ``per_seed`` differences."""
    if len(a_per_seed) != len(b_per_seed) or not a_per_seed:
        raise ValueError(f"compare_over_seeds: {len(a_per_seed)} seeds for A and {len(b_per_seed)} for B")
    diffs = []
    for i, (a, b) in enumerate(zip(a_per_seed, b_per_seed)):
        a, b = _correct(a, f"A seed {i}"), _correct(b, f"B seed {i}")
        if a.shape != b.shape:
            raise ValueError(f"seed {i}: A answered {a.size} questions and B {b.size}; they must be the same")
        diffs.append(a - b)
    rng = np.random.default_rng(seed)
    means = _hierarchical_means(diffs, resamples, rng)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    test = mcnemar_exact(np.concatenate([_correct(a, "A") for a in a_per_seed]),
                         np.concatenate([_correct(b, "B") for b in b_per_seed]))
    per_seed = [float(d.mean()) for d in diffs]
    return {"diff": float(np.mean(per_seed)), "low": float(lo), "high": float(hi), **test,
            "significant": bool(test["p_value"] < alpha), "per_seed": per_seed, "n_seeds": len(diffs)}


def group_masks(predictions: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """Boolean masks of the BABEL-QA groups (overall, query types, before / after / other) over `predictions`
    (rows with ``query_type`` / ``relation_type``, as `evaluate_motion_qa` keeps them)."""
    n = len(predictions)
    masks = {"accuracy": np.ones(n, dtype=bool)}
    if n and all(p.get("query_type") is not None for p in predictions):
        qts = [_canonical_query(p["query_type"]) for p in predictions]
        for q in QUERY_TYPES:
            masks[q] = np.array([x == q for x in qts])
    if n and any("relation_type" in p for p in predictions):
        rts = [_canonical_relation(p.get("relation_type")) for p in predictions]
        for r in RELATION_TYPES[:2]:
            masks[r] = np.array([x == r for x in rts])
        masks["other"] = np.array([x in ("in_between", "none") for x in rts])
    return {k: v for k, v in masks.items() if v.any()}


def correctness(predictions: Sequence[Mapping]) -> np.ndarray:
    return np.array([bool(p["correct"]) for p in predictions], dtype=np.float64)


def accuracy_table_with_ci(model_runs: Sequence[Sequence[Mapping]], baseline_runs: Sequence[Sequence[Mapping]] | None,
                           *, resamples: int = 2000, seed: int = 0) -> dict:
    """Per group: the model's accuracy summary (`seed_summary`), the baseline's, and the paired comparison
    (`compare_over_seeds`). Each run is a list of prediction rows of one seed (``correct``, ``query_type``,
    ``relation_type``, ``id``); model and baseline runs of a seed must list the same questions in the same order."""
    if baseline_runs is not None:
        for i, (m, b) in enumerate(zip(model_runs, baseline_runs)):
            if [p.get("id") for p in m] != [p.get("id") for p in b]:
                raise ValueError(f"seed {i}: the model and the baseline answered different questions")
    masks = [group_masks(run) for run in model_runs]
    groups = [g for g in GROUPS if all(g in m for m in masks)]
    out: dict = {}
    for g in groups:
        model = [correctness(run)[m[g]] for run, m in zip(model_runs, masks)]
        entry = {"model": seed_summary(model, resamples=resamples, seed=seed)}
        if baseline_runs is not None:
            base = [correctness(run)[m[g]] for run, m in zip(baseline_runs, masks)]
            entry["baseline"] = seed_summary(base, resamples=resamples, seed=seed)
            entry["difference"] = compare_over_seeds(model, base, resamples=resamples, seed=seed)
        out[g] = entry
    return out


_HEADERS = {**{key: header for header, key in TABLE1_COLUMNS}, "real_cmu": "Real CMU (held-out subjects)"}


def format_ci_table(table: Mapping[str, Mapping], names: Mapping[str, str] | None = None) -> str:
    """Markdown table of `accuracy_table_with_ci`: mean (± std over seeds) [95% CI] per group, and the
    difference with its CI and McNemar p (``*`` when p < 0.05)."""
    names = names or {"model": "HuMoCon (motion + question)", "baseline": "Text-only baseline (question only)"}
    groups = list(table)
    header = ["Held-out accuracy", *(_HEADERS.get(g, g) for g in groups)]
    rows = []
    n_seeds = next(iter(table.values()))["model"]["n_seeds"] if table else 0

    def cell(s):
        spread = f" ± {100 * s['std']:.1f}" if s["n_seeds"] > 1 else ""
        return f"{100 * s['mean']:.1f}%{spread} [{100 * s['low']:.1f}, {100 * s['high']:.1f}]"

    for key in ("model", "baseline"):
        if all(key in table[g] for g in groups):
            rows.append([names.get(key, key), *(cell(table[g][key]) for g in groups)])
    if all("difference" in table[g] for g in groups):
        diff = []
        for g in groups:
            d = table[g]["difference"]
            star = "*" if d["significant"] else ""
            diff.append(f"{100 * d['diff']:+.1f}{star} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] p={_p(d['p_value'])}")
        rows.append(["Difference (points)", *diff])
    rows.append(["Questions", *(str(table[g]["model"]["n_questions"]) for g in groups)])
    lines = [render_table(header, rows)]
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    lines.append(f"\nMean{' ± std over seeds' if n_seeds > 1 else ''} [95% bootstrap CI] ({seeds}); difference: paired "
                 "bootstrap CI, exact McNemar p on the same questions, * = p < 0.05.")
    return "\n".join(lines)


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def format_ablation_ci_table(stats_by_variant: Mapping[str, Mapping], reference: str | None = "full") -> str:
    """Markdown ablation table: per variant and group, mean (± std over seeds) [95% CI]; for variants other than
    `reference`, the difference to it on the same questions with its McNemar p (``*`` when p < 0.05)."""
    if not stats_by_variant:
        raise ValueError("no ablation results to format")
    groups = [g for g in GROUPS if all(g in t for t in stats_by_variant.values())]
    header = ["Variant", *(_HEADERS.get(g, g) for g in groups)]
    rows = []
    n_seeds = 0
    for name, table in stats_by_variant.items():
        cells = []
        for g in groups:
            s = table[g]["model"]
            n_seeds = s["n_seeds"]
            text = f"{100 * s['mean']:.1f}" + (f" ± {100 * s['std']:.1f}" if s["n_seeds"] > 1 else "")
            text += f" [{100 * s['low']:.1f}, {100 * s['high']:.1f}]"
            d = table[g].get("difference")
            if d is not None:
                text += f" ({100 * d['diff']:+.1f}{'*' if d['significant'] else ''}, p={_p(d['p_value'])})"
            cells.append(text)
        rows.append([name, *cells])
    lines = [render_table(header, rows)]
    ref = f" (difference to {reference!r} on the same questions, exact McNemar p, * = p < 0.05)" if reference else ""
    lines.append(f"\nAccuracy % mean{' ± std over seeds' if n_seeds > 1 else ''} [95% bootstrap CI], {n_seeds} "
                 f"seed{'s' if n_seeds != 1 else ''}{ref}.")
    return "\n".join(lines)

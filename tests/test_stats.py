"""Confidence intervals, paired tests and seed summaries (humocon_hf.stats), on cases with known answers."""

import json
import math

import numpy as np
import pytest

from humocon_hf.stats import (
    accuracy_table_with_ci,
    bootstrap_ci,
    compare_over_seeds,
    format_ablation_ci_table,
    format_ci_table,
    group_masks,
    mcnemar_exact,
    paired_comparison,
    seed_summary,
    wilson_ci,
)


def _vector(n, k, seed=0):
    """n answers of which k are right, in a shuffled order."""
    v = np.zeros(n)
    v[:k] = 1
    return np.random.default_rng(seed).permutation(v)


def test_bootstrap_ci_matches_the_normal_approximation():
    ci = bootstrap_ci(_vector(400, 280))
    half = 1.96 * math.sqrt(0.7 * 0.3 / 400)  # 0.0449
    assert ci["mean"] == 0.7 and ci["n"] == 400
    assert ci["low"] == pytest.approx(0.7 - half, abs=0.01) and ci["high"] == pytest.approx(0.7 + half, abs=0.01)
    assert bootstrap_ci(np.ones(50)) == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 50}


def test_mcnemar_exact_known_values():
    a = np.array([1] * 6 + [0] * 1 + [1] * 20 + [0] * 10)
    b = np.array([0] * 6 + [1] * 1 + [1] * 20 + [0] * 10)
    out = mcnemar_exact(a, b)
    assert (out["a_only"], out["b_only"]) == (6, 1)
    assert out["p_value"] == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125: not significant with 7 discordant pairs
    assert mcnemar_exact(np.ones(10), np.zeros(10))["p_value"] == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(a, a)["p_value"] == 1.0
    big = mcnemar_exact(np.r_[np.ones(600), np.zeros(400)], np.r_[np.zeros(600), np.ones(400)])
    assert 0.0 < big["p_value"] < 1e-8  # no overflow with a thousand discordant pairs


def test_paired_comparison_on_a_constructed_pair():
    b = _vector(300, 150, seed=1)
    a = b.copy()
    wrong_in_b = np.flatnonzero(b == 0)[:45]
    a[wrong_in_b] = 1  # A = B plus 45 more right answers: +15 points
    out = paired_comparison(a, b)
    assert out["diff"] == pytest.approx(0.15) and out["a_only"] == 45 and out["b_only"] == 0
    assert out["significant"] and out["p_value"] < 1e-10 and 0.10 < out["low"] < 0.15 < out["high"] < 0.20
    same = paired_comparison(b, b)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0 and not same["significant"]
    with pytest.raises(ValueError, match="same length"):
        paired_comparison(a, b[:-1])
    with pytest.raises(ValueError, match="0/1"):
        paired_comparison(a * 2, b)


def test_seed_summary_spreads_over_seeds():
    runs = [_vector(200, 120, 0), _vector(200, 140, 1), _vector(200, 160, 2)]
    out = seed_summary(runs, resamples=1000)
    assert out["mean"] == pytest.approx(0.7) and out["std"] == pytest.approx(0.1)
    assert out["per_seed"] == pytest.approx([0.6, 0.7, 0.8]) and out["n_questions"] == 600
    assert out["low"] < 0.62 and out["high"] > 0.78  # seed noise widens the interval past question noise alone
    single = seed_summary(runs[:1], resamples=1000)
    assert single["std"] == 0.0 and single["low"] < 0.6 < single["high"]


def test_compare_over_seeds_consistent_gain_is_significant():
    base = [_vector(150, 75, s) for s in range(3)]
    better = []
    for v in base:
        w = v.copy()
        w[np.flatnonzero(v == 0)[:15]] = 1  # +10 points on each seed's own questions
        better.append(w)
    out = compare_over_seeds(better, base, resamples=500)
    assert out["diff"] == pytest.approx(0.1) and out["per_seed"] == pytest.approx([0.1] * 3)
    assert out["significant"] and out["low"] > 0
    with pytest.raises(ValueError, match="same"):
        compare_over_seeds([better[0]], [base[0][:-1]])
    with pytest.raises(ValueError, match="seeds"):
        compare_over_seeds(better, base[:2])


def _predictions(correct, seed=0):
    qts = ["action", "direction", "body_part"]
    rts = ["before", "after", "in between", "none"]
    return [{"id": f"q{i}", "correct": bool(c), "query_type": qts[i % 3], "relation_type": rts[i % 4]}
            for i, c in enumerate(correct)]


def test_group_masks_follow_the_babel_qa_groups():
    masks = group_masks(_predictions(np.ones(12)))
    assert set(masks) == {"accuracy", "action", "direction", "body_part", "before", "after", "other"}
    assert masks["other"].sum() == 6 and masks["action"].sum() == 4 and masks["accuracy"].all()


def test_accuracy_table_and_markdown():
    model = [_predictions(_vector(120, 90, s)) for s in range(2)]
    base = [_predictions(_vector(120, 40, s + 5)) for s in range(2)]
    table = accuracy_table_with_ci(model, base, resamples=300)
    assert table["accuracy"]["model"]["mean"] == pytest.approx(0.75)
    assert table["accuracy"]["difference"]["diff"] == pytest.approx(0.75 - 40 / 120)
    assert table["accuracy"]["difference"]["significant"]
    text = format_ci_table(table)
    assert text.startswith("| Held-out accuracy | Overall | Action | Direction | Body part | Before | After | Other |")
    assert "75.0% ± 0.0 [" in text and "Difference (points) | +41.7*" in text and "2 seeds" in text
    json.dumps(table)  # JSON-serialisable for results.json
    with pytest.raises(ValueError, match="different questions"):
        accuracy_table_with_ci(model, [base[0][::-1], base[1]])

    ablation = {"full": accuracy_table_with_ci(model, None, resamples=200),
                "no concept discovery": accuracy_table_with_ci(base, model, resamples=200)}
    text = format_ablation_ci_table(ablation)
    assert "| full | 75.0 ± 0.0 [" in text and "(-41.7*, p=" in text and "difference to 'full'" in text


def test_wilson_ci_known_values_and_the_edges():
    """13 of 13 right is not "100% [100, 100]" (the bootstrap's collapsed interval): Wilson gives [77.2, 100]."""
    all_right = wilson_ci(13, 13)
    assert all_right["mean"] == 1.0 and all_right["high"] == 1.0 and all_right["low"] == pytest.approx(0.7719, abs=1e-4)
    assert bootstrap_ci([1] * 13)["low"] == 1.0  # why the card does not use it here
    twelve = wilson_ci(12, 13)
    assert (twelve["low"], twelve["high"]) == pytest.approx((0.6669, 0.9863), abs=1e-4)
    none = wilson_ci(0, 13)
    assert none["low"] == 0.0 and none["high"] == pytest.approx(1 - all_right["low"])
    wide, narrow = wilson_ci(50, 100, confidence=0.99), wilson_ci(50, 100)
    assert wide["low"] < narrow["low"] < 0.5 < narrow["high"] < wide["high"]
    for bad in ((14, 13), (-1, 13), (1, 0)):
        with pytest.raises(ValueError, match="wilson_ci"):
            wilson_ci(*bad)

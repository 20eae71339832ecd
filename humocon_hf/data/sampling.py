"""Sampling helpers for instruction-tuning data.

Procedural and real QA sets are skewed towards some query types (the built-in benchmark asks about actions three
times as often as about body parts). Oversampling the rarer types gives each type the same share of the training
steps without dropping any question.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["oversample_to_balance"]


def oversample_to_balance(rows: Sequence[Mapping], key: str, seed: int = 0) -> list[Mapping]:
    """Every row once, plus repeats of the rows of the rarer `row[key]` values until each value has as many rows as
    the most frequent one. Repeats cycle through a seeded shuffle of their group, so no row is repeated twice
    before all of its group was repeated once.

    Args:
        rows: dict-like rows (e.g. QA rows with a "query_type").
        key: the column to balance; every row must have it.
        seed: seed of the shuffles choosing the repeats.

    Returns:
        A new list: the original rows in order, then the repeats grouped by value.
    """
    groups: dict = defaultdict(list)
    for index, row in enumerate(rows):
        if key not in row:
            raise KeyError(f"oversample_to_balance: row {index} has no {key!r} column (columns: {sorted(row)})")
        groups[row[key]].append(row)
    if not groups:
        return []
    target = max(len(group) for group in groups.values())
    rng = np.random.default_rng(seed)
    out = list(rows)
    for value in sorted(groups, key=str):
        group = groups[value]
        missing = target - len(group)
        while missing > 0:
            order = rng.permutation(len(group))[:missing]
            out.extend(group[i] for i in order)
            missing -= len(order)
    return out

"""`oversample_to_balance`: every query type gets the count of the most frequent one, nothing is dropped."""

from collections import Counter

import pytest

from humocon_hf.data import oversample_to_balance


def test_balances_counts_and_keeps_every_original_row_first():
    rows = [{"id": f"a{i}", "t": "action"} for i in range(7)]
    rows += [{"id": f"b{i}", "t": "body_part"} for i in range(3)]
    rows += [{"id": "d0", "t": "direction"}]
    out = oversample_to_balance(rows, "t", seed=0)
    assert out[: len(rows)] == rows
    assert Counter(r["t"] for r in out) == {"action": 7, "body_part": 7, "direction": 7}
    # Repeats cycle through the group: 4 extra body-part rows = the 3 once, then one of them again.
    extra = Counter(r["id"] for r in out[len(rows):] if r["t"] == "body_part")
    assert sorted(extra.values()) == [1, 1, 2]
    assert oversample_to_balance(rows, "t", seed=0) == out
    assert oversample_to_balance(rows, "t", seed=1) != out


def test_balanced_input_and_empty_input_are_unchanged():
    rows = [{"t": "x"}, {"t": "y"}]
    assert oversample_to_balance(rows, "t") == rows
    assert oversample_to_balance([], "t") == []


def test_missing_column_names_the_row_and_the_column():
    with pytest.raises(KeyError, match=r"row 1 has no 'query_type'"):
        oversample_to_balance([{"query_type": "action"}, {"question": "?"}], "query_type")

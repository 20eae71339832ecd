"""The package's one table renderer: the Markdown tables of model cards, reports and `docs/`, and the console table
the demo's summary prints."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(header: Sequence, rows: Sequence[Sequence], *, padded: bool = False, console: bool = False) -> str:
    """`header` and `rows` (cells turned into text with `str`) as a table.

    Markdown by default (`| a | b |` under a `|---|---|` rule); `padded` pads the columns to one width, for reading
    as plain text too. `console` is the demo summary's form: no outer bars, the first column left-aligned and the
    others right-aligned (numbers), a `---+---` rule under the header.
    """
    table = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    if not (padded or console):
        rule = "|" + "---|" * len(table[0])
        return "\n".join(["| " + " | ".join(table[0]) + " |", rule, *("| " + " | ".join(r) + " |" for r in table[1:])])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    if console:
        def line(cells):
            return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        return "\n".join([line(table[0]), "+".join("-" * (w + 2) for w in widths), *(line(r) for r in table[1:])])

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(table[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in table[1:])])

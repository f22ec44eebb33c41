"""Small-cell suppression for published counts, with secondary suppression (N-AGG).

A cell whose count is below the threshold is suppressed (primary). Publishing totals would let a
reader subtract the visible cells from a total and recover a lone suppressed one, so for every
margin the table implies (each dimension's groups, summed over the others) no group may hold
exactly one suppressed cell: the sweep below suppresses the smallest other cell of such a group
(secondary), and repeats until no group changes. A group with two or more suppressed cells only
reveals their sum.

Margins are judged on the full cross-classification: a group is the set of cells sharing the
values of all dimensions but one. A group of one cell has a margin equal to the cell, so such
margins must never be published next to a suppressed cell (the published tables carry no
margins at all; totals are the analyst's sum of visible cells).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SuppressionReport:
    cells: int
    primary: int
    secondary: int
    threshold: int

    @property
    def suppressed(self) -> int:
        return self.primary + self.secondary


def suppress_small_cells(
    table: pd.DataFrame, dimensions: list[str], count: str, threshold: int
) -> tuple[pd.DataFrame, SuppressionReport]:
    """Return `table` with a boolean `suppressed` column and `count` set to NA where suppressed.

    The input must hold one row per combination of `dimensions` (an aggregate), counts >= 0."""
    if table.duplicated(dimensions).any():
        raise ValueError(f"the table has more than one row per combination of {dimensions}")
    if (table[count] < 0).any():
        raise ValueError(f"column {count!r} holds negative counts")
    out = table.copy()
    values = out[count].to_numpy()
    suppressed = (values > 0) & (values < threshold)
    primary = int(suppressed.sum())
    groupings = [
        [d for d in dimensions if d != varying] for varying in dimensions
    ]  # cells sharing all dimensions but one
    keys = [
        out.groupby(g, sort=False).ngroup().to_numpy() if g else np.zeros(len(out), dtype=int)
        for g in groupings
    ]
    changed = True
    while changed:
        changed = False
        for key in keys:
            per_group = np.bincount(
                key, weights=suppressed, minlength=key.max() + 1 if len(key) else 0
            )
            lonely = np.flatnonzero(per_group == 1)
            for group in lonely:
                members = np.flatnonzero(key == group)
                open_cells = members[~suppressed[members]]
                if len(open_cells) == 0:
                    continue  # a one-cell group: its margin is the cell, so it is never published
                # The smallest non-zero cell hides best at least cost; a zero only if nothing else.
                nonzero = open_cells[values[open_cells] > 0]
                pool = nonzero if len(nonzero) else open_cells
                suppressed[pool[np.argmin(values[pool])]] = True
                changed = True
    out["suppressed"] = suppressed
    out[count] = out[count].astype("Int64").mask(out["suppressed"])
    report = SuppressionReport(
        cells=len(out),
        primary=primary,
        secondary=int(suppressed.sum()) - primary,
        threshold=threshold,
    )
    return out, report


def recoverable_cells(
    published: pd.DataFrame, original: pd.DataFrame, dimensions: list[str], count: str
) -> int:
    """How many suppressed cells a reader could recover exactly from the published cells and the
    margins (the true group totals over each dimension). Used by tests as the attacker's view."""
    merged = published.merge(
        original[[*dimensions, count]].rename(columns={count: "_true"}), on=dimensions
    )
    recovered = 0
    for varying in dimensions:
        group = [d for d in dimensions if d != varying]
        grouped = merged.groupby(group, sort=False) if group else [(None, merged)]
        for _, cells in grouped:
            hidden = cells["suppressed"].to_numpy()
            if hidden.sum() == 1 and len(cells) > 1:
                hidden_true = int(cells.loc[cells["suppressed"], "_true"].iloc[0])
                total = int(cells["_true"].sum())
                visible = int(cells.loc[~cells["suppressed"], count].fillna(0).sum())
                if total - visible == hidden_true and hidden_true > 0:
                    recovered += 1
    return recovered

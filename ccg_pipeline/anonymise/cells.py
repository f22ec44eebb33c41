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


def suppression_pattern(
    table: pd.DataFrame, dimensions: list[str], count: str, threshold: int
) -> tuple[np.ndarray, SuppressionReport]:
    """Which rows of an aggregate to hide, judged on `count`: primary (0 < count < threshold)
    plus secondary, so that no margin group holds exactly one hidden cell.

    Vectorised: each pass picks, for every group with a lone hidden cell, its smallest visible
    non-zero cell (a zero only if nothing else) by one lexsort, so it costs a few array passes
    per round rather than a scan per group."""
    if table.duplicated(dimensions).any():
        raise ValueError(f"the table has more than one row per combination of {dimensions}")
    values = pd.to_numeric(table[count], errors="raise").fillna(0).to_numpy()
    if (values < 0).any():
        raise ValueError(f"column {count!r} holds negative counts")
    suppressed = (values > 0) & (values < threshold)
    primary = int(suppressed.sum())
    keys = [
        table.groupby(others, sort=False).ngroup().to_numpy()
        if (others := [d for d in dimensions if d != varying])
        else np.zeros(len(table), dtype=np.int64)
        for varying in dimensions
    ]  # cells sharing all dimensions but one
    changed = bool(primary)
    while changed:
        changed = False
        for key in keys:
            hidden_per_group = np.bincount(key, weights=suppressed, minlength=int(key.max()) + 1)
            candidates = np.flatnonzero((hidden_per_group[key] == 1) & ~suppressed)
            if not len(candidates):
                continue  # a lone hidden cell with no open neighbour is a one-cell group
            order = np.lexsort(
                (values[candidates], values[candidates] == 0, key[candidates])
            )  # by group, then non-zero first, then smallest
            ranked = candidates[order]
            first_of_group = np.r_[True, key[ranked][1:] != key[ranked][:-1]]
            suppressed[ranked[first_of_group]] = True
            changed = True
    report = SuppressionReport(
        cells=len(table),
        primary=primary,
        secondary=int(suppressed.sum()) - primary,
        threshold=threshold,
    )
    return suppressed, report


def suppress_small_cells(
    table: pd.DataFrame, dimensions: list[str], count: str, threshold: int
) -> tuple[pd.DataFrame, SuppressionReport]:
    """Return `table` with a boolean `suppressed` column and `count` set to NA where suppressed.

    The input must hold one row per combination of `dimensions` (an aggregate), counts >= 0."""
    suppressed, report = suppression_pattern(table, dimensions, count, threshold)
    out = table.copy()
    out["suppressed"] = suppressed
    out[count] = out[count].astype("Int64").mask(suppressed)
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


def lone_suppressed_groups(frame: pd.DataFrame, dimensions: list[str], hidden: pd.Series) -> int:
    """Margin groups (cells sharing all dimensions but one) that hide exactly one of two or more
    cells: a reader holding the group's total could recover that cell."""
    lone = 0
    for varying in dimensions:
        others = [d for d in dimensions if d != varying]
        keys = [frame[d].astype(str) for d in others] if others else [pd.Series(0, frame.index)]
        grouped = hidden.groupby(keys, sort=False)
        per_group = pd.DataFrame({"hidden": grouped.sum(), "cells": grouped.size()})
        lone += int(((per_group["hidden"] == 1) & (per_group["cells"] > 1)).sum())
    return lone

"""k-anonymity by global recoding plus local suppression, an l-diversity check, and a report of
the information lost (N-AGG: published statistics must not single anyone out).

The search works on integer codes: every quasi-identifier is generalised once per level and
factorised, so judging a candidate (one level per quasi-identifier) is a mixed-radix key and a
`bincount`, about a millisecond per million rows. Candidates are visited by total generalisation
height, lowest first; the first height at which some candidate needs no more local suppression
than allowed wins, and among those the one that loses least information.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ccg_pipeline.anonymise.hierarchies import SUPPRESSED, Level


@dataclass(frozen=True)
class QuasiIdentifier:
    column: str
    levels: list[Level]


@dataclass
class AnonymisationReport:
    """What was done and lost; counts and levels only, never values."""

    k: int
    rows_in: int
    rows_out: int
    levels: dict[str, int]
    suppressed_rows: int
    min_group_size: int
    precision_loss: float  # mean of level / top level over quasi-identifiers (0 none, 1 all)
    candidates_checked: int
    notes: list[str] = field(default_factory=list)


class _Codes:
    """Each quasi-identifier generalised to a level, as dense integer codes; computed on first
    use, since the search rarely climbs far."""

    def __init__(self, frame: pd.DataFrame, qis: list[QuasiIdentifier]) -> None:
        self.frame = frame
        self.qis = qis
        self._cache: dict[tuple[int, int], tuple[np.ndarray, int, pd.Series]] = {}

    def level(self, q: int, level: int) -> tuple[np.ndarray, int, pd.Series]:
        if (q, level) not in self._cache:
            qi = self.qis[q]
            generalised = qi.levels[level](self.frame[qi.column])
            codes, uniques = pd.factorize(generalised, sort=False)
            self._cache[q, level] = (codes.astype(np.int64), max(len(uniques), 1), generalised)
        return self._cache[q, level]

    def group_sizes(self, node: tuple[int, ...]) -> np.ndarray:
        """Per row, the size of its equivalence class under generalisation `node`."""
        key = np.zeros(len(self.frame), dtype=np.int64)
        space = 1
        for q, level in enumerate(node):
            codes, size, _ = self.level(q, level)
            key = key * size + codes
            space *= size
        if space <= 50_000_000:
            counts = np.bincount(key, minlength=space)
            return counts[key]
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        return counts[inverse]


def _loss(node: tuple[int, ...], qis: list[QuasiIdentifier]) -> float:
    return float(
        np.mean([level / (len(qi.levels) - 1) for level, qi in zip(node, qis, strict=True)])
    )


def enforce_k_anonymity(
    frame: pd.DataFrame,
    qis: list[QuasiIdentifier],
    k: int,
    *,
    max_suppression: float = 0.05,
) -> tuple[pd.DataFrame, AnonymisationReport]:
    """Generalise the quasi-identifiers globally, then drop the rows still in classes smaller than
    k (local suppression), so every remaining class has at least k rows."""
    if k < 1:
        raise ValueError("k must be at least 1")
    missing = [qi.column for qi in qis if qi.column not in frame.columns]
    if missing:
        raise KeyError(f"quasi-identifier column(s) not in the data: {missing}")
    rows = len(frame)
    if rows == 0 or not qis:
        report = AnonymisationReport(k, rows, rows, {qi.column: 0 for qi in qis}, 0, rows, 0.0, 0)
        return frame.copy(), report
    codes = _Codes(frame, qis)
    tops = [len(qi.levels) - 1 for qi in qis]
    allowed = int(max_suppression * rows)
    checked = 0
    chosen: tuple[tuple[int, ...], np.ndarray] | None = None
    for height in range(sum(tops) + 1):
        best: tuple[float, tuple[int, ...], np.ndarray] | None = None
        for node in itertools.product(*(range(t + 1) for t in tops)):
            if sum(node) != height:
                continue
            checked += 1
            sizes = codes.group_sizes(node)
            small = int(np.count_nonzero(sizes < k))
            if small <= allowed:
                loss = _loss(node, qis)
                if best is None or loss < best[0]:
                    best = (loss, node, sizes)
        if best is not None:
            chosen = (best[1], best[2])
            break
    notes: list[str] = []
    if chosen is None:
        # Even one single class is smaller than k (fewer than k rows in all): nothing can be
        # published; generalise fully and suppress it all.
        top = tuple(tops)
        chosen = (top, codes.group_sizes(top))
        notes.append("no generalisation keeps suppression within the limit: fewer than k rows")
    node, sizes = chosen
    keep = sizes >= k
    out = frame.loc[keep].copy()
    for q, (qi, level) in enumerate(zip(qis, node, strict=True)):
        out[qi.column] = codes.level(q, level)[2].to_numpy()[keep]
    remaining = sizes[keep]
    report = AnonymisationReport(
        k=k,
        rows_in=rows,
        rows_out=len(out),
        levels={qi.column: level for qi, level in zip(qis, node, strict=True)},
        suppressed_rows=rows - len(out),
        min_group_size=int(remaining.min()) if len(remaining) else 0,
        precision_loss=_loss(node, qis),
        candidates_checked=checked,
        notes=notes,
    )
    return out, report


def min_group_size(frame: pd.DataFrame, columns: list[str]) -> int:
    """The size of the smallest equivalence class over `columns` (0 for no rows)."""
    if frame.empty:
        return 0
    if not columns:
        return len(frame)
    key = np.zeros(len(frame), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(frame[column].astype(str), sort=False)
        key = key * max(len(uniques), 1) + codes
    _, counts = np.unique(key, return_counts=True)
    return int(counts.min())


def is_k_anonymous(frame: pd.DataFrame, columns: list[str], k: int) -> bool:
    return frame.empty or min_group_size(frame, columns) >= k


def min_l_diversity(frame: pd.DataFrame, columns: list[str], sensitive: str) -> int:
    """The fewest distinct values of `sensitive` in any equivalence class (distinct l-diversity)."""
    if frame.empty:
        return 0
    groups = frame.groupby([frame[c].astype(str) for c in columns], sort=False, observed=True)
    return int(groups[sensitive].nunique(dropna=False).min())


__all__ = [
    "SUPPRESSED",
    "AnonymisationReport",
    "QuasiIdentifier",
    "enforce_k_anonymity",
    "is_k_anonymous",
    "min_group_size",
    "min_l_diversity",
]

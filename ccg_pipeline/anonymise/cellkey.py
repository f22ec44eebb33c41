"""Cell-key perturbation of published counts and sums (N-AGG), the ABS / ONS method.

Every contributor (a company, an invoice, a contact, a request) gets a **record key**: a keyed
hash of its id, uniform on [0, 2^20). A cell's **cell key** is the sum of its contributors' record
keys modulo 2^20, so the same contributors always give the same cell key, whichever release,
table or day computes it; nobody without the secret can compute a record key.

A count `n` is published as `n + d`, where `d` is read from a **perturbation table** at the row
for `n` and the column the cell key falls in. Each row is a distribution over the noise
`-D..D` (D = `max_count_noise`) with mean exactly zero, so sums of many cells stay unbiased, a
variance near `count_noise_variance`, and no output between 1 and `smallest_published_count - 1`
(a true 1 or 2 comes out as 0 or as 3 or more). Zeros stay zero. Because the noise is a function
of the contributors, repeating a cell repeats its noise: an attacker who collects every release
cannot average it away.

A sum is published as `sum + s * m * top`, where `top` is the cell's largest single contribution,
`m` = `sum_noise_scale`, and `s` is read from that largest contributor's own record key: a sign
and a magnitude in [`sum_noise_floor`, 1]. The noise is never near zero, so the largest
contributor is never known to better than `floor * m` of its value (the p% rule, with
p = floor * m); and because `s` belongs to the contributor, not the cell, a customer who is the
largest in many cells (month after month) has the same `s` in all of them, so a coalition that
reads t(1 + s m) off each cannot average `s` away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import brentq

from ccg_pipeline.policy.models import Perturbation

KEY_BITS = 20
KEY_SPACE = 1 << KEY_BITS
# An odd multiplier is a bijection modulo 2^20: it gives sums a cell-key variant of their own,
# so a count and a sum of the same contributors do not draw the same uniform.
_SUM_STREAM = 0x9E3B5


def record_keys(ids: Iterable[object], *, secret: str, domain: str) -> np.ndarray:
    """Keyed BLAKE2b of each `domain:id`, as integers in [0, KEY_SPACE)."""
    key = hashlib.blake2b(secret.encode(), digest_size=32, person=b"ccg-cellkey").digest()
    return np.fromiter(
        (
            int.from_bytes(
                hashlib.blake2b(f"{domain}:{i}".encode(), key=key, digest_size=4).digest(), "big"
            )
            >> (32 - KEY_BITS)
            for i in ids
        ),
        dtype=np.int64,
    )


def cell_keys(cell_codes: np.ndarray, keys: np.ndarray, cells: int) -> np.ndarray:
    """Sum of record keys per cell (codes 0..cells-1), modulo KEY_SPACE. Sums stay below 2^53
    for up to 2^33 contributors, so float64 bincount is exact."""
    sums = np.bincount(cell_codes, weights=keys.astype(np.float64), minlength=cells)
    return sums.astype(np.int64) % KEY_SPACE


def _uniform(cell_key: np.ndarray) -> np.ndarray:
    return (np.asarray(cell_key, dtype=np.float64) + 0.5) / KEY_SPACE


def _row(value: int, spec: Perturbation) -> np.ndarray:
    """Probabilities of noise -D..D for a true count `value`: a discretised normal on the allowed
    outputs, exponentially tilted so that the mean output is exactly `value`."""
    d = spec.max_count_noise
    noise = np.arange(-d, d + 1)
    out = value + noise
    allowed = (out >= 0) & ~((out > 0) & (out < spec.smallest_published_count))
    if value == 0 or d == 0:
        return (noise == 0).astype(np.float64)
    base = np.where(allowed, np.exp(-(noise**2) / (2 * max(spec.count_noise_variance, 1e-9))), 0)

    def tilted(lam: float) -> np.ndarray:
        w = base * np.exp(lam * noise)
        return w / w.sum()

    if abs(float(tilted(0.0) @ noise)) > 1e-12:
        lam = brentq(lambda lam: float(tilted(lam) @ noise), -60.0, 60.0, xtol=1e-14)
        return tilted(lam)
    return tilted(0.0)


@dataclass(frozen=True)
class CellKeyPerturbation:
    spec: Perturbation

    @cached_property
    def table(self) -> np.ndarray:
        """Cumulative probabilities, one row per true count 0..R; counts above R use row R
        (far enough from zero that no output is restricted, so every row from there is one)."""
        rows = self.spec.max_count_noise + self.spec.smallest_published_count + 1
        return np.cumsum([_row(v, self.spec) for v in range(rows + 1)], axis=1)

    @property
    def noise_values(self) -> np.ndarray:
        d = self.spec.max_count_noise
        return np.arange(-d, d + 1)

    def counts(self, true: np.ndarray, cell_key: np.ndarray) -> np.ndarray:
        """Perturbed counts: the noise column where the cell key's uniform falls in the row."""
        true = np.asarray(true, dtype=np.int64)
        if (true < 0).any():
            raise ValueError("counts to perturb must be >= 0")
        cdf = self.table[np.minimum(true, len(self.table) - 1)]
        column = (cdf < _uniform(cell_key)[:, None]).sum(axis=1)
        column = np.minimum(column, cdf.shape[1] - 1)  # guards the last cumsum's rounding
        return true + self.noise_values[column]

    def sums(self, true: np.ndarray, top: np.ndarray, top_key: np.ndarray) -> np.ndarray:
        """Perturbed sums: +- (floor..1) x scale x the largest contribution, never below zero,
        with sign and size from the largest contributor's record key (`top_key`)."""
        u = _uniform((np.asarray(top_key, dtype=np.int64) * _SUM_STREAM) % KEY_SPACE)
        sign = np.where(u < 0.5, -1.0, 1.0)
        magnitude = self.spec.sum_noise_floor + (1 - self.spec.sum_noise_floor) * (2 * u % 1.0)
        noise = sign * magnitude * self.spec.sum_noise_scale * np.asarray(top, dtype=np.float64)
        true = np.asarray(true, dtype=np.float64)
        return np.maximum(np.rint(true + noise), 0).astype(np.int64)

    def possible_true(self, published: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The smallest and largest true count that can come out as each published count: what
        an attacker who knows this perturbation table learns from one cell alone."""
        published = np.asarray(published, dtype=np.int64)
        d = self.spec.max_count_noise
        probabilities = np.diff(self.table, axis=1, prepend=0.0)
        last_row = len(self.table) - 1
        low = np.maximum(published - d, 0)
        high = published + d
        # Rows below the last are not plain shifts: read which true counts reach each output.
        for value in np.unique(published[published <= last_row + d]):
            sources = [
                t
                for t in range(max(value - d, 0), value + d + 1)
                if abs(value - t) <= d and (t > last_row or probabilities[t][value - t + d] > 0)
            ]
            at = published == value
            # A value no true count can produce was not perturbed by this table: take it as exact.
            low[at], high[at] = (min(sources), max(sources)) if sources else (value, value)
        return low, high

    def mean_and_variance(self, value: int) -> tuple[float, float]:
        """Of the noise for a true count (for the data dictionary and the tests)."""
        p = np.diff(self.table[min(value, len(self.table) - 1)], prepend=0.0)
        mean = float(p @ self.noise_values)
        return mean, float(p @ (self.noise_values - mean) ** 2)

"""Cell-key perturbation and the release audit: the invariants an attacker would probe."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.anonymise.audit import UNBOUNDED, AttackerView, attacker_intervals
from ccg_pipeline.anonymise.cellkey import (
    KEY_SPACE,
    CellKeyPerturbation,
    cell_keys,
    record_keys,
)
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Perturbation
from ccg_pipeline.validation.release_audit import audit_table

pytestmark = pytest.mark.unit

SPEC = load_notice().settings.perturbation
CKM = CellKeyPerturbation(SPEC)
counts = st.integers(min_value=0, max_value=400)
keys = st.integers(min_value=0, max_value=KEY_SPACE - 1)


@settings(max_examples=300, deadline=None)
@given(true=counts, key=keys)
def test_a_perturbed_count_is_bounded_never_small_and_zero_stays_zero(true: int, key: int) -> None:
    out = int(CKM.counts(np.array([true]), np.array([key]))[0])
    assert out >= 0
    assert abs(out - true) <= SPEC.max_count_noise
    assert not 0 < out < SPEC.smallest_published_count
    if true == 0:
        assert out == 0


@settings(max_examples=300, deadline=None)
@given(true=counts, key=keys)
def test_what_an_attacker_infers_from_one_cell_always_holds_the_truth(true: int, key: int) -> None:
    out = CKM.counts(np.array([true]), np.array([key]))
    low, high = CKM.possible_true(out)
    assert low[0] <= true <= high[0]


@pytest.mark.parametrize("true", range(0, 12))
def test_the_noise_has_mean_zero_for_every_true_count(true: int) -> None:
    # Over the whole key space, not a sample: the perturbation table itself is unbiased.
    every_key = np.arange(KEY_SPACE)
    noise = CKM.counts(np.full(KEY_SPACE, true), every_key) - true
    assert abs(noise.mean()) < 1e-3
    mean, variance = CKM.mean_and_variance(true)
    assert abs(mean) < 1e-9
    assert variance <= SPEC.max_count_noise**2


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.integers(0, 10**9), min_size=1, max_size=30, unique=True), seed=st.randoms())
def test_the_same_contributors_get_the_same_cell_key_in_any_order(ids, seed) -> None:
    shuffled = list(ids)
    seed.shuffle(shuffled)
    a = record_keys(ids, secret="s", domain="company")
    b = record_keys(shuffled, secret="s", domain="company")
    codes = np.zeros(len(ids), dtype=np.int64)
    assert cell_keys(codes, a, 1)[0] == cell_keys(codes, b, 1)[0]
    assert ((a >= 0) & (a < KEY_SPACE)).all()


def test_record_keys_depend_on_the_secret_and_the_domain() -> None:
    ids = list(range(200))
    base = record_keys(ids, secret="s", domain="company")
    assert (base != record_keys(ids, secret="t", domain="company")).mean() > 0.99
    assert (base != record_keys(ids, secret="s", domain="invoice")).mean() > 0.99


@settings(max_examples=200, deadline=None)
@given(
    contributions=st.lists(st.integers(1, 10**7), min_size=1, max_size=40),
    key=keys,
)
def test_a_sum_moves_by_floor_to_scale_of_its_largest_contribution(contributions, key) -> None:
    total, top = sum(contributions), max(contributions)
    out = int(CKM.sums(np.array([total]), np.array([top]), np.array([key]))[0])
    moved = abs(out - total)
    assert moved <= SPEC.sum_noise_scale * top + 0.5
    assert moved >= SPEC.sum_noise_floor * SPEC.sum_noise_scale * top - 0.5
    assert out >= 0


def _chain(quarters: int, rng: np.random.Generator) -> pd.DataFrame:
    """customers_by_quarter for one country and sector, exact: a stock and its flows."""
    rows, active = [], 0
    for q in range(quarters):
        new = int(rng.integers(0, 6))
        ceased = int(rng.integers(0, min(active + new, 4) + 1))
        active_in_q = active + new  # active at any time in the quarter
        rows.append(
            {
                "quarter": f"2024-Q{q + 1}" if q < 4 else f"2025-Q{q - 3}",
                "country": "SE",
                "sector": "Retail",
                "new_customers": new,
                "active_customers": active_in_q,
                "ceased_customers": ceased,
            }
        )
        active = active_in_q - ceased
    return pd.DataFrame(rows)


def _perturbed(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    for column in ("new_customers", "active_customers", "ceased_customers"):
        out[column] = CKM.counts(out[column].to_numpy(), rng.integers(0, KEY_SPACE, len(out)))
    return out[out[["new_customers", "active_customers", "ceased_customers"]].any(axis=1)]


def test_the_audit_fails_a_hidden_cell_the_stock_flow_identity_gives_away() -> None:
    # The attack of the independent audit: exact published counts around one suppressed cell.
    truth = _chain(6, np.random.default_rng(4))
    assert truth.loc[2, "new_customers"] > 0
    release = truth.astype(object)
    release.loc[2, "new_customers"] = None
    exact = Perturbation(max_count_noise=0)
    audit = audit_table("customers_by_quarter", release, exact)
    assert not audit.passed
    assert audit.hidden_cells == 1
    assert audit.inconsistent_components == 0
    assert "customers_by_quarter[2024-Q3|SE|Retail].new_customers" in audit.below_protection
    # The failure names cells, never a value.
    assert all("=" not in name for name in audit.below_protection)


def test_the_same_release_under_perturbation_passes_and_nothing_is_narrowed() -> None:
    rng = np.random.default_rng(2)
    release = _perturbed(_chain(8, rng), rng).astype(object)
    release.iloc[3, release.columns.get_loc("new_customers")] = None
    audit = audit_table("customers_by_quarter", release, SPEC)
    assert audit.passed, audit.below_protection
    assert audit.narrowest_width >= SPEC.count_protection_width
    assert audit.cells_checked > len(release) * 3  # the derived flows are audited too


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), quarters=st.integers(2, 8))
def test_every_attacker_interval_holds_the_truth(seed: int, quarters: int) -> None:
    """Soundness: the audit's intervals, exact LP ones included, never exclude the true value,
    so a width is a real lower bound on what the attacker cannot tell apart."""
    rng = np.random.default_rng(seed)
    truth = _chain(quarters, rng)
    release = _perturbed(truth, rng)
    view = AttackerView()
    index = {}
    for row in release.itertuples(index=False):
        for column in ("new_customers", "active_customers", "ceased_customers"):
            low, high = CKM.possible_true(np.array([getattr(row, column)]))
            index[(row.quarter, column)] = view.cell(f"{row.quarter}.{column}", low[0], high[0])
    for q in truth["quarter"]:
        for column in ("new_customers", "active_customers", "ceased_customers"):
            if (q, column) not in index:  # the row came out all zero
                low, high = CKM.possible_true(np.array([0]))
                index[(q, column)] = view.cell(f"{q}.{column}", low[0], high[0])
    labels = list(truth["quarter"])
    for before, now in itertools.pairwise(labels):
        view.equalities.append(
            {
                index[(now, "active_customers")]: 1.0,
                index[(before, "active_customers")]: -1.0,
                index[(now, "new_customers")]: -1.0,
                index[(before, "ceased_customers")]: 1.0,
            }
        )
    result = attacker_intervals(view)  # exact: no shortcut
    true = {
        f"{r.quarter}.{c}": getattr(r, c)
        for r in truth.itertuples(index=False)
        for c in ("new_customers", "active_customers", "ceased_customers")
    }
    assert result.inconsistent_components == 0
    for interval in result.intervals:
        assert interval.lower <= true[interval.name] <= interval.upper


def test_a_cell_nobody_constrains_keeps_its_box() -> None:
    view = AttackerView()
    view.cell("alone", 3, 9)
    view.cell("hidden", 0, UNBOUNDED)
    result = attacker_intervals(view)
    assert [(i.lower, i.upper) for i in result.intervals] == [(3, 9), (0, UNBOUNDED)]
    assert result.lp_solves == 0


def test_an_empty_release_has_nothing_to_judge() -> None:
    columns = [
        "quarter",
        "country",
        "sector",
        "new_customers",
        "active_customers",
        "ceased_customers",
    ]
    audit = audit_table("customers_by_quarter", pd.DataFrame(columns=columns), SPEC)
    assert audit.cells_checked == 0
    assert audit.narrowest_width is None

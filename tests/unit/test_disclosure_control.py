"""Cell-key perturbation and the release audit: the invariants an attacker would probe."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise.audit import UNBOUNDED, AttackerView, attacker_intervals
from ccg_pipeline.anonymise.cellkey import (
    KEY_SPACE,
    CellKeyPerturbation,
    cell_keys,
    record_keys,
)
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Perturbation
from ccg_pipeline.validation.release_audit import attacker_view, audit_table

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
    assert abs(noise.var() - variance) < 1e-2  # the table's variance is what the keys draw
    if true >= SPEC.smallest_published_count + SPEC.max_count_noise:
        # Away from zero nothing is forbidden: the discretised normal, derived here directly.
        support = np.arange(-SPEC.max_count_noise, SPEC.max_count_noise + 1)
        weights = np.exp(-(support**2) / (2 * SPEC.count_noise_variance))
        assert variance == pytest.approx((weights * support**2).sum() / weights.sum(), abs=1e-9)
    elif true:
        assert variance > 0.5  # small counts are protected by real noise, not just moved


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


def _se_retail(quarters: list[str], *, new: list, active: list, ceased: list) -> pd.DataFrame:
    """Published customers_by_quarter rows of one country and sector."""
    return pd.DataFrame(
        {
            "quarter": quarters,
            "country": "SE",
            "sector": "Retail",
            "new_customers": new,
            "active_customers": active,
            "ceased_customers": ceased,
        }
    )


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
    # The failure names cells by their dimensions and column, never a value.
    assert all(
        re.fullmatch(r"customers_by_quarter\[\d{4}-Q\d\|SE\|Retail\]\.\w+", name)
        for name in audit.below_protection
    )


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
    """Soundness of the audit's own model of the attacker (`attacker_view`): its exact LP
    intervals never exclude the true value, so a width is a real lower bound on what the
    attacker cannot tell apart. The truth is the chain before perturbation."""
    rng = np.random.default_rng(seed)
    truth = _chain(quarters, rng)
    release = _perturbed(truth, rng)
    view = attacker_view("customers_by_quarter", release, SPEC)
    result = attacker_intervals(view)  # exact: no shortcut
    true = {}
    for before, now in itertools.pairwise([None, *truth.itertuples(index=False)]):
        cell = f"customers_by_quarter[{now.quarter}|SE|Retail]"
        for column in ("new_customers", "active_customers", "ceased_customers"):
            true[f"{cell}.{column}"] = getattr(now, column)
        if before is not None:
            flow = now.active_customers - before.active_customers
            true[f"{cell}.new_minus_ceased_before"] = flow
    assert not result.inconsistent
    named = [i for i in result.intervals if i.name in true]
    assert len(named) == len(result.intervals)
    for interval in named:
        assert interval.lower <= true[interval.name] <= interval.upper


def test_published_values_no_truth_can_produce_fail_the_table() -> None:
    # Stocks that no flows within the noise bounds connect: the method was not followed.
    truth = _chain(3, np.random.default_rng(1))
    release = truth.copy()
    release.loc[1, "active_customers"] = truth.loc[0, "active_customers"] + 40
    audit = audit_table("customers_by_quarter", release, SPEC)
    assert audit.inconsistent_components == 1
    assert not audit.passed
    assert any("inconsistent" in name for name in audit.below_protection)


def test_identities_across_releases_are_dropped_where_a_change_broke_them() -> None:
    # 2025-Q1 was frozen by an earlier release; a restriction since took 20 companies out of the
    # later quarters only, so the published values break the identity between Q1 and Q2 by more
    # than any noise (4 cells x 3). Between periods of one release that cannot happen, and the
    # audit fails the table instead.
    release = _se_retail(
        ["2025-Q1", "2025-Q2", "2025-Q3"],
        new=[50, 6, 4],
        active=[50, 52 - 20, 53 - 20],
        ceased=[4, 3, 0],
    )
    across = audit_table("customers_by_quarter", release, SPEC, {"2025-Q1": "release-1"})
    assert across.inconsistent_components == 0 and across.relaxed_components == 1
    assert across.passed, across.below_protection
    within = audit_table("customers_by_quarter", release, SPEC)
    assert within.inconsistent_components == 1 and not within.passed


def test_only_the_broken_identity_is_dropped_the_others_still_pin() -> None:
    # Q1, Q2 and Q3 were frozen by three releases. Between Q1 and Q2 a change broke the identity;
    # between Q2 and Q3 it holds, and the published values sit at the noise extremes (true
    # active 40 -> 37, new 6 -> 3, ceased 4 -> 7, active 42 -> 45), so it pins all four. An
    # attacker keeps the identity that holds; so must the audit.
    release = _se_retail(
        ["2025-Q1", "2025-Q2", "2025-Q3"], new=[50, 5, 3], active=[70, 37, 45], ceased=[4, 7, 3]
    )
    releases = {"2025-Q1": "release-1", "2025-Q2": "release-2"}
    audit = audit_table("customers_by_quarter", release, SPEC, releases)
    assert audit.relaxed_components == 1 and audit.inconsistent_components == 0
    assert "customers_by_quarter[2025-Q3|SE|Retail].active_customers" in audit.below_protection
    assert "customers_by_quarter[2025-Q2|SE|Retail].ceased_customers" in audit.below_protection


def test_a_shown_revenue_row_tells_the_attacker_it_has_enough_invoices() -> None:
    minimum = SPEC.min_sum_contributors
    release = pd.DataFrame(
        {
            "month": ["2025-01"],
            "service": ["audit"],
            "invoices": [minimum + 1],
            "revenue_pence": [9],
        }
    )
    view = attacker_view("revenue_by_service_month", release, SPEC)
    assert view.lower == [minimum]  # not published - max noise
    assert audit_table("revenue_by_service_month", release, SPEC).passed


def test_the_sum_noise_hides_a_largest_contribution_from_a_coalition() -> None:
    """The coalition knows every other contribution, so it reads t * (1 + s * m) off the sum. Over
    every cell key, the values of t it cannot exclude span the policy's share of t on either side
    of each sign's branch, derived here from the published sums rather than the formula."""
    top, others = 1_000_000, 3_000_000
    every_key = np.arange(0, KEY_SPACE, 97)
    published = CKM.sums(
        np.full(len(every_key), top + others), np.full(len(every_key), top), every_key
    )
    readings = published - others  # what the coalition holds: t(1 + s m), rounded
    above, below = readings[readings > top], readings[readings < top]
    assert len(above) and len(below) and not (readings == top).any()
    # Which t could give each reading, given only the method: t = reading / (1 + s m).
    m, f = SPEC.sum_noise_scale, SPEC.sum_noise_floor
    for branch, (s_low, s_high) in ((above, (f, 1.0)), (below, (-1.0, -f))):
        t_high, t_low = branch / (1 + s_low * m), branch / (1 + s_high * m)
        assert ((t_low <= top + 1) & (top - 1 <= t_high)).all()  # the truth is always possible
        half_width = (t_high - t_low) / 2 / top
        assert half_width.min() >= SPEC.sum_protection_share - 1e-6
    assert (np.abs(readings - top) / top).min() >= SPEC.sum_protection_share - 1e-6


@settings(max_examples=50, deadline=None)
@given(key=keys, months=st.integers(2, 36), seed=st.integers(0, 2**32 - 1))
def test_a_coalition_gains_nothing_from_a_customer_s_many_months(key, months, seed) -> None:
    """The largest customer of a cell is often the largest every month. Its noise follows its
    own record key, so every month's reading t_i (1 + s m) has the same s: intersecting what the
    months allow leaves t within a branch as wide as one month does."""
    rng = np.random.default_rng(seed)
    tops = rng.integers(10_000, 10_000_000, months).astype(float)
    others = rng.integers(0, 10_000_000, months).astype(float)
    published = CKM.sums(tops + others, tops, np.full(months, key))
    readings = published - others
    m, f = SPEC.sum_noise_scale, SPEC.sum_noise_floor
    factors = readings / tops  # 1 + s m, what each month reveals given t
    assert np.ptp(factors) <= 2 / tops.min() + 1e-9  # one s for all months (up to pence)
    # A steady invoice (the same t every month): the months agree, so the candidates for t
    # are one month's branch, no narrower.
    steady = CKM.sums(np.full(months, 4e6), np.full(months, 1e6), np.full(months, key)) - 3e6
    above = steady[0] > 1e6
    s_low, s_high = (f, 1.0) if above else (-1.0, -f)
    t_low = (steady / (1 + s_high * m)).max()
    t_high = (steady / (1 + s_low * m)).min()
    assert (t_high - t_low) / 2 / 1e6 >= SPEC.largest_contribution_share - 1e-5


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


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"count_noise_variance": 0.0}, "count_noise_variance"),
        ({"max_count_noise": 1, "smallest_published_count": 3}, "max_count_noise"),
    ],
)
def test_a_perturbation_without_a_valid_table_is_refused(changes: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Perturbation(**changes)
    Perturbation(max_count_noise=0, count_noise_variance=0.0)  # no noise: nothing to tabulate


def _margin(quarter: str, region: str, sector: str, active: int, suppressed: int = 0):
    return pd.DataFrame(
        {
            "quarter": [quarter],
            "region": [region],
            "sector": [sector],
            "customer_since": ["*"],
            "records": [active],
            "records_suppressed": [suppressed],
            "snapshot_as_of": [None],
        }
    )


def test_a_profile_snapshot_that_pins_a_stock_fails_the_audit() -> None:
    # True active 20 and ceased 10 in 2026-Q3, published at the far ends of the noise (23, 7).
    # The snapshot of that quarter end counts 10 active records in the class: active - ceased =
    # 10 then only holds at the true values, which the audit must see as an attacker would.
    release = _se_retail(["2026-Q3"], new=[4], active=[23], ceased=[7])
    assert audit_table("customers_by_quarter", release, SPEC).passed
    region = str(h.country_to_region(pd.Series(["SE"]))[0])
    pinned = audit_table(
        "customers_by_quarter", release, SPEC, margins=_margin("2026-Q3", region, "Retail", 10)
    )
    assert not pinned.passed
    assert "customers_by_quarter[2026-Q3|SE|Retail].ceased_customers" in pinned.below_protection
    # A count the noise can explain in many ways (region * here) pins nothing.
    spread = audit_table(
        "customers_by_quarter", release, SPEC, margins=_margin("2026-Q3", "*", "Retail", 13)
    )
    assert spread.passed, spread.below_protection
    # With records suppressed locally the count is only a lower bound of the stock.
    loose = audit_table(
        "customers_by_quarter",
        release,
        SPEC,
        margins=_margin("2026-Q3", region, "Retail", 10, suppressed=4),
    )
    assert loose.passed, loose.below_protection


def test_a_profile_cohort_that_needs_every_possible_new_customer_fails_the_audit() -> None:
    # The snapshot shows 6 customers who started in 2026-Q3; the quarter's new customers were
    # published as 3, which only a true count from 1 to 6 can give: the cohort pins it at 6.
    release = _se_retail(["2026-Q3"], new=[3], active=[23], ceased=[7])
    margins = pd.concat(
        [_margin("2026-Q3", "*", "Retail", 6), _margin("2026-Q3", "*", "Retail", 10)],
        ignore_index=True,
    ).assign(customer_since=["2026-Q3", "2025"])
    audit = audit_table("customers_by_quarter", release, SPEC, margins=margins)
    assert "customers_by_quarter[2026-Q3|SE|Retail].new_customers" in audit.below_protection
    # Four in the cohort leave it 4 to 6: wide enough.
    margins.loc[0, "records"] = 4
    assert audit_table("customers_by_quarter", release, SPEC, margins=margins).passed

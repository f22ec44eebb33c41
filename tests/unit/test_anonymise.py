"""Generalisation hierarchies and k-anonymity enforcement (groundwork for the statistics zone)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise.cells import recoverable_cells, suppress_small_cells
from ccg_pipeline.anonymise.kanon import (
    QuasiIdentifier,
    enforce_k_anonymity,
    is_k_anonymous,
    min_group_size,
    min_l_diversity,
)

pytestmark = pytest.mark.unit


def test_dates_generalise_to_month_quarter_year() -> None:
    dates = pd.Series(pd.to_datetime(["2024-02-29", "2024-12-31", None]))
    day, month, quarter, year, five, top = (level(dates).tolist() for level in h.date_levels())
    assert day == ["2024-02-29", "2024-12-31", "*"]
    assert month == ["2024-02", "2024-12", "*"]
    assert quarter == ["2024-Q1", "2024-Q4", "*"]
    assert year == ["2024", "2024", "*"]
    assert five == ["2020-2024", "2020-2024", "*"]
    assert top == ["*", "*", "*"]


def test_sectors_group_and_bands_coarsen_one_level_up() -> None:
    sectors = pd.Series(["Retail", "Automotive", "Freight forwarding", "Mining", None])
    assert h.sector_group(sectors).tolist() == [
        "Selling goods",
        "Making goods",
        "Moving goods",
        "Other sectors",
        "*",
    ]
    assert h.employee_levels()[2](pd.Series([49, 50, 250, None])).tolist() == [
        "1-49",
        "50-249",
        "250+",
        "*",
    ]
    assert h.revenue_levels()[2](pd.Series([9_999_999, 10_000_000])).tolist() == [
        "<£10m",
        "£10m+",
    ]


def test_countries_sizes_revenue_and_job_titles() -> None:
    assert h.country_to_region(pd.Series(["gb", "SE", "PL", "US", "AQ", None])).tolist() == [
        "UK & Ireland",
        "Nordics",
        "Central & Eastern Europe",
        "North America",
        "Rest of world",
        "*",
    ]
    assert h.employee_levels()[1](pd.Series([1, 9, 10, 249, 250, 5000, None])).tolist() == [
        "1-9",
        "1-9",
        "10-49",
        "50-249",
        "250-999",
        "1000+",
        "*",
    ]
    assert h.revenue_levels()[1](pd.Series([999_999, 1_000_000, 75_000_000])).tolist() == [
        "<£1m",
        "£1m-£10m",
        "£50m+",
    ]
    assert h.job_family(
        pd.Series(
            [
                "Trade Compliance Officer",
                "Accounts Payable Clerk",
                "Chief Executive",
                "Import Coordinator",
                "Astronaut",
            ]
        )
    ).tolist() == [
        "Customs & compliance",
        "Finance",
        "Management",
        "Logistics & operations",
        "Other",
    ]


def test_user_agents_urls_and_ips() -> None:
    agents = pd.Series(
        [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        ]
    )
    assert h.browser_family(agents).tolist() == ["Edge", "Safari", "Bot", "Firefox"]
    assert h.os_family(agents).tolist() == ["Windows", "iOS", "Other", "Linux"]
    assert h.url_section(
        pd.Series(["/contact-us?email=a%40b.se", "/portal/invoices/77"])
    ).tolist() == ["contact-us", "portal"]
    assert set(h.ip_address(pd.Series(["81.2.69.160", "2001:db8::1"]))) == {"*"}


def _qis() -> list[QuasiIdentifier]:
    return [
        QuasiIdentifier("signup", h.date_levels()),
        QuasiIdentifier("country", h.country_levels()),
        QuasiIdentifier("employees", h.employee_levels()),
    ]


frames = st.integers(0, 400).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.dates(pd.Timestamp("2018-01-01").date(), pd.Timestamp("2026-12-31").date()),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.sampled_from(["GB", "IE", "SE", "DE", "PL", "US"]), min_size=n, max_size=n),
        st.lists(st.integers(1, 3000), min_size=n, max_size=n),
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(data=frames, k=st.integers(2, 12), max_suppression=st.sampled_from([0.0, 0.02, 0.1]))
def test_every_published_group_has_at_least_k_members(data, k: int, max_suppression: float) -> None:
    signup, country, employees, outcome = data
    frame = pd.DataFrame(
        {
            "signup": pd.to_datetime(signup),
            "country": country,
            "employees": employees,
            "outcome": outcome,
        }
    )
    out, report = enforce_k_anonymity(frame, _qis(), k, max_suppression=max_suppression)
    assert is_k_anonymous(out, ["signup", "country", "employees"], k)
    assert report.rows_out + report.suppressed_rows == len(frame) == report.rows_in
    # Beyond the suppression limit only when even the top of every hierarchy cannot keep it.
    top = {q.column: len(q.levels) - 1 for q in _qis()}
    assert report.suppressed_rows <= max(int(max_suppression * len(frame)), 0) or (
        report.levels == top
    )
    assert list(out.columns) == list(frame.columns)
    if len(out):
        assert report.min_group_size == min_group_size(out, ["signup", "country", "employees"])


def test_recoding_is_as_light_as_k_allows() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame(
        {
            "signup": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "country": rng.choice(["GB", "SE"], n),
            "employees": rng.choice([5, 20], n),
        }
    )
    _, loose = enforce_k_anonymity(frame, _qis(), 2)
    assert loose.levels == {"signup": 0, "country": 0, "employees": 0}
    _, strict = enforce_k_anonymity(frame, _qis(), 150)
    assert strict.levels["signup"] >= 1 and strict.precision_loss > loose.precision_loss


def test_fewer_rows_than_k_suppresses_everything_and_says_so() -> None:
    frame = pd.DataFrame(
        {"signup": pd.to_datetime(["2024-01-01"] * 3), "country": ["GB"] * 3, "employees": [5] * 3}
    )
    out, report = enforce_k_anonymity(frame, _qis(), 10)
    assert out.empty and report.suppressed_rows == 3 and report.notes


def test_l_diversity_counts_distinct_sensitive_values_per_class() -> None:
    frame = pd.DataFrame(
        {"region": ["N", "N", "N", "S", "S"], "outcome": ["a", "b", "b", "c", "c"]}
    )
    assert min_l_diversity(frame, ["region"], "outcome") == 1
    assert min_l_diversity(frame.iloc[:3], ["region"], "outcome") == 2


def test_bad_arguments_are_named() -> None:
    with pytest.raises(KeyError, match="salary"):
        enforce_k_anonymity(
            pd.DataFrame({"x": [1]}), [QuasiIdentifier("salary", h.employee_levels())], 2
        )
    with pytest.raises(ValueError, match="k must be at least 1"):
        enforce_k_anonymity(pd.DataFrame({"x": [1]}), [], 0)


cell_tables = st.integers(1, 6).flatmap(
    lambda rows: st.integers(1, 6).flatmap(
        lambda cols: st.lists(
            st.one_of(st.integers(0, 0), st.integers(1, 9), st.integers(10, 200)),
            min_size=rows * cols,
            max_size=rows * cols,
        ).map(
            lambda counts, rows=rows, cols=cols: pd.DataFrame(
                {
                    "country": [f"c{i // cols}" for i in range(rows * cols)],
                    "month": [f"m{i % cols}" for i in range(rows * cols)],
                    "n": counts,
                }
            )
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(table=cell_tables, threshold=st.sampled_from([5, 10]))
def test_no_suppressed_cell_can_be_recovered_through_margins(
    table: pd.DataFrame, threshold: int
) -> None:
    published, report = suppress_small_cells(table, ["country", "month"], "n", threshold)
    visible = published.loc[~published["suppressed"], "n"]
    assert (visible.isna() | (visible == 0) | (visible >= threshold)).all(), (
        "no small cell is shown"
    )
    small = table["n"].between(1, threshold - 1)
    assert published.loc[small.to_numpy(), "suppressed"].all()
    assert recoverable_cells(published, table, ["country", "month"], "n") == 0
    assert report.primary == int(small.sum())


def test_secondary_suppression_hides_the_lone_small_cell() -> None:
    table = pd.DataFrame(
        {
            "country": ["GB", "GB", "SE", "SE"],
            "month": ["01", "02", "01", "02"],
            "n": [3, 50, 40, 60],
        }
    )
    published, report = suppress_small_cells(table, ["country", "month"], "n", 10)
    assert (report.primary, report.secondary) >= (1, 1)
    assert published["suppressed"].sum() >= 2
    assert recoverable_cells(published, table, ["country", "month"], "n") == 0


def test_cell_suppression_rejects_non_aggregates() -> None:
    with pytest.raises(ValueError, match="more than one row"):
        suppress_small_cells(pd.DataFrame({"a": [1, 1], "n": [5, 5]}), ["a"], "n", 10)

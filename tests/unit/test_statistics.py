"""Statistics protection: row suppression, margins, identifying columns, and the hierarchies
used by the published tables. (The validation gate's own tests are in tests/expectations/.)"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise import labels
from ccg_pipeline.anonymise.cells import lone_suppressed_groups, recoverable_cells
from ccg_pipeline.policy import load_data_map
from ccg_pipeline.statistics.build import _stock_and_flows, protect_rows
from ccg_pipeline.validation.suites import forbidden_columns
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.unit

MEASURES = ["new_customers", "active_customers", "ceased_customers"]
DIMS = ["quarter", "country", "sector"]


def _wide_tables():
    """Aggregates with three dimensions and three counts, with zeros, small and large counts."""
    count = st.one_of(st.just(0), st.integers(1, 9), st.integers(10, 500))
    return st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)).flatmap(
        lambda shape: st.lists(
            st.tuples(count, count, count),
            min_size=shape[0] * shape[1] * shape[2],
            max_size=shape[0] * shape[1] * shape[2],
        ).map(
            lambda values, shape=shape: pd.DataFrame(
                [
                    {
                        "quarter": f"q{q}",
                        "country": f"c{c}",
                        "sector": f"s{x}",
                        **dict(zip(MEASURES, v, strict=True)),
                    }
                    for (q, c, x), v in zip(
                        (
                            (q, c, x)
                            for q in range(shape[0])
                            for c in range(shape[1])
                            for x in range(shape[2])
                        ),
                        values,
                        strict=True,
                    )
                ]
            )
        )
    )


@settings(max_examples=150, deadline=None)
@given(table=_wide_tables(), threshold=st.sampled_from([5, 10]))
def test_protected_rows_show_no_small_count_and_no_recoverable_cell(
    table: pd.DataFrame, threshold: int
) -> None:
    published, primary, secondary = protect_rows(table, DIMS, MEASURES, threshold)
    values = published[MEASURES]
    shown = values.notna()
    small = (values > 0) & (values < threshold)
    assert not bool((small & shown).to_numpy().any()), "a small count is visible"
    hidden = values.isna().all(axis=1)
    assert (values.isna().any(axis=1) == hidden).all(), "rows are suppressed whole"
    assert lone_suppressed_groups(published, DIMS, hidden) == 0
    for measure in MEASURES:
        attacker_view = published.assign(suppressed=hidden)
        assert recoverable_cells(attacker_view, table, DIMS, measure) == 0
    assert int(hidden.sum()) == primary + secondary


def test_a_row_is_judged_by_its_contributors_when_given() -> None:
    table = pd.DataFrame(
        {"month": ["m1", "m2", "m3"], "invoices": [40, 50, 60], "revenue_pence": [9, 9, 9]}
    )
    contributors = pd.Series([3, 30, 40])  # m1's 40 invoices come from only three customers
    out, primary, secondary = protect_rows(
        table, ["month"], ["invoices", "revenue_pence"], 10, driver=contributors
    )
    assert out["invoices"].isna().tolist() == [True, True, False]
    assert (primary, secondary) == (1, 1)


def test_stock_and_flows_count_each_customer_in_its_quarters() -> None:
    # 2024-Q1 .. 2024-Q3 active, then ceased; a second customer from 2024-Q2, still active.
    q = lambda year, quarter: year * 4 + quarter - 1  # noqa: E731
    records = pd.DataFrame(
        {
            "country": ["GB", "GB"],
            "sector": ["Retail", "Retail"],
            "start": [q(2024, 1), q(2024, 2)],
            "end": [q(2024, 3), float("nan")],
            "weight": [1, 1],
            "key": [5, 7],
        }
    )
    table = _stock_and_flows(records, now=q(2024, 4)).set_index("quarter")
    # Each cell's key is the sum of its contributors' record keys.
    assert table["_key_active_customers"].tolist() == [5, 12, 12, 7]
    assert table["_key_new_customers"].tolist() == [5, 7, 0, 0]
    assert table["_key_ceased_customers"].tolist() == [0, 0, 5, 0]
    assert table["new_customers"].to_dict() == {
        "2024-Q1": 1,
        "2024-Q2": 1,
        "2024-Q3": 0,
        "2024-Q4": 0,
    }
    assert table["active_customers"].to_dict() == {
        "2024-Q1": 1,
        "2024-Q2": 2,
        "2024-Q3": 2,
        "2024-Q4": 1,
    }
    assert table["ceased_customers"].to_dict() == {
        "2024-Q1": 0,
        "2024-Q2": 0,
        "2024-Q3": 1,
        "2024-Q4": 0,
    }


def test_no_published_table_has_a_direct_identifier_or_linking_column() -> None:
    forbidden = forbidden_columns(load_data_map())
    assert {"email", "subject_key", "ip_prefix", "user_agent"} <= forbidden
    for _build, published in s.PUBLISHED:
        assert not {c.name for c in published.columns} & forbidden, published.name


def test_visitor_region_comes_from_the_registry_country_of_the_network() -> None:
    assert labels.region_of_network("81.2.69.0/24") == "UK & Ireland"
    assert labels.region_of_network("8.8.8.0/24") == "North America"
    assert labels.region_of_network("10.1.2.0/24") == labels.UNKNOWN_REGION
    assert labels.region_of_network("192.168.0.0/24") == labels.UNKNOWN_REGION


def test_browser_family_and_url_section_drop_the_identifying_detail() -> None:
    assert (
        labels.browser_of("Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36 Edg/120.0")
        == "Edge"
    )
    assert labels.browser_of("Mozilla/5.0 (X11; Linux) Gecko/20100101 Firefox/121.0") == "Firefox"
    assert labels.browser_of("Googlebot/2.1 (+http://www.google.com/bot.html)") == "Bot"
    assert labels.browser_of(None) == "Other"
    sections = h.url_section(pd.Series(["/portal/login?email=a@b.se", "/?utm=1", "relative", None]))
    assert sections.tolist() == ["portal", "home", "other", "other"]
    assert set(h.ip_address(pd.Series(["81.2.69.0/24"]))) == {h.SUPPRESSED}

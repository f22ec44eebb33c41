"""The row labels that key the statistics' cell noise (`statistics.build._row_labels`): built a
column at a time, they are exactly the labels of the row-by-row join they replaced. A label that
changed would change a cell's noise between two releases, which is what a differencing attacker
needs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.statistics.build import _row_labels

pytestmark = pytest.mark.unit


def _row_by_row(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The labels as the build made them before (one Python join per row)."""
    return (
        frame[columns].astype(str).agg("|".join, axis=1) if len(frame) else frame.index.to_series()
    )


COLUMN_VALUES = {
    "int": st.lists(st.integers(-(2**40), 2**40), min_size=1),
    "float": st.lists(st.floats(allow_nan=False, allow_infinity=True), min_size=1),
    "text": st.lists(st.text(max_size=6), min_size=1),
    "day": st.lists(st.dates(dt.date(2000, 1, 1), dt.date(2040, 1, 1)), min_size=1),
    "bool": st.lists(st.booleans(), min_size=1),
}


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(sorted(COLUMN_VALUES)), min_size=1, max_size=4),
    data=st.data(),
    shuffled_index=st.booleans(),
)
def test_labels_in_columns_are_the_row_by_row_labels(
    kinds: list[str], data: st.DataObject, shuffled_index: bool
) -> None:
    size = data.draw(st.integers(0, 12))
    columns = {
        f"c{n}_{kind}": data.draw(
            COLUMN_VALUES[kind].map(lambda v, size=size: (v * size)[:size]) if size else st.just([])
        )
        for n, kind in enumerate(kinds)
    }
    frame = pd.DataFrame(columns)
    if shuffled_index:
        frame.index = np.arange(len(frame))[::-1] * 7
    names = list(columns)
    expected = _row_by_row(frame, names)
    got = _row_labels(frame, names)
    assert got.tolist() == expected.tolist()
    assert got.index.tolist() == expected.index.tolist()


def test_the_web_traffic_dimensions_label_as_before() -> None:
    frame = pd.DataFrame(
        {
            "day": [dt.date(2027, 1, 2), dt.date(2027, 1, 3)],
            "site_section": ["tariffs", "other"],
            "browser_family": ["Firefox", "Other"],
            "region": ["Europe", "Unknown"],
        }
    )
    labels = _row_labels(frame, list(frame.columns))
    assert labels.tolist() == [
        "2027-01-02|tariffs|Firefox|Europe",
        "2027-01-03|other|Other|Unknown",
    ]


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_key_column_with_a_missing_value_is_refused_by_name(missing: object) -> None:
    """The row-by-row join failed on one too (with a TypeError); a cell without its whole key
    would otherwise share another cell's noise."""
    frame = pd.DataFrame({"month": ["2027-01", "2027-02"], "country": ["SE", missing]})
    with pytest.raises(ValueError, match=r"missing values in key column\(s\) \['country'\]"):
        _row_labels(frame, ["month", "country"])

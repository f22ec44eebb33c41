"""`warehouse.sql.frame_of` hands pandas plain tuples instead of SQLAlchemy rows (pandas probes
every row object for a `dtype` attribute, and each miss costs an exception inside SQLAlchemy).
The frames that statistics, the gate and the release audit are built from must not change: same
values, same dtypes, same column order, for every kind of value the warehouse returns, None
included, with pandas' inference and with `dtype=object` (the gate's)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.warehouse.sql import frame_of

pytestmark = pytest.mark.unit

METADATA = sa.MetaData()
TABLE = sa.Table(
    "cells",
    METADATA,
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("count", sa.BigInteger),
    sa.Column("share", sa.Float),
    sa.Column("label", sa.Text),
    sa.Column("day", sa.Date),
    sa.Column("at", sa.DateTime),
    sa.Column("flag", sa.Boolean),
)

MAYBE = {
    "count": st.none() | st.integers(-(2**53), 2**53),
    "share": st.none() | st.floats(allow_nan=False, width=32),
    "label": st.none() | st.text(max_size=8),
    "day": st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2040, 1, 1)),
    "at": st.none()
    | st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2040, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    "flag": st.none() | st.booleans(),
}


@pytest.fixture(scope="module")
def engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    METADATA.create_all(engine)
    return engine


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.fixed_dictionaries(MAYBE), max_size=30),
    columns=st.lists(st.sampled_from(sorted(MAYBE)), min_size=1, max_size=6, unique=True),
    dtype=st.sampled_from([None, object]),
)
def test_the_frame_is_the_one_pandas_builds_from_the_rows(
    engine: sa.Engine, rows: list[dict], columns: list[str], dtype: type | None
) -> None:
    query = sa.select(*(TABLE.c[c] for c in columns)).order_by(TABLE.c.n)
    with engine.begin() as conn:
        conn.execute(sa.delete(TABLE))
        if rows:
            conn.execute(sa.insert(TABLE), [{"n": i, **row} for i, row in enumerate(rows)])
        result = conn.execute(query)
        from_rows = pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=dtype)
        frame = frame_of(conn.execute(query), dtype=dtype)
    pd.testing.assert_frame_equal(frame, from_rows, check_exact=True)
    assert list(frame.columns) == columns

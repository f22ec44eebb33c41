"""The column-at-a-time portal parser (`ccg_pipeline/ingest/portal_batch.py`) against the row
parsers it stands in for (`portal._company`, `portal._user`, ...): on the same source rows, the
same parsed rows (the same dicts, key order included), the same quarantined records with the same
reasons and details, the same counts, and the same error where a row parser fails outright; and
on a generated portal it takes nearly every row (the fast path is really used)."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccg_pipeline.devtools.generate import GenerateOptions, generate
from ccg_pipeline.ingest import portal, portal_batch
from ccg_pipeline.ingest.common import BatchResult

pytestmark = pytest.mark.unit
END = dt.datetime(2026, 11, 24)

# The source columns of each table, as the portal database has them (payments' company_id is
# the ingest's own look-up from the invoice).
COLUMNS = {
    table: sorted({source for _, source, _ in fields})
    for table, fields in portal_batch.FIELDS.items()
}

# Values in every form a database driver may hand over, clean and hostile alike.
PLAIN_VALUES = [
    None,
    0,
    7,
    -3,
    2**63,
    True,
    False,
    922.78,
    0.1 + 0.2,
    1e20,
    float("nan"),
    float("inf"),
    decimal.Decimal("1234.50"),
    decimal.Decimal("1E+2"),
    b"bytes",
    "",
    "   ",
    "12",
    " 12 ",
    "\u0663",
    "1234.5",
    "-0.05",
    "1.234",
    "1e3",
    "abc",
    " padded ",
    "trial",
    "full",
    "Trial",
    " full",
    "SE",
    "se",
    " GB",
    "GBR",
    "\u00c5\u00c4",
    "ulrika.wallin@example.se",
    " ULRIKA.WALLIN@EXAMPLE.SE ",
    "no-at",
    "a@b",
    "2024-05-01",
    "2024-05-01 ",
    "2024-02-30",
    "2024-05-01 03:59:53",
    "2024-05-01T03:59:53Z",
    "2024-05-01 03:59:53+02:00",
    "2024-05-01 03:59:53.250000",
    "2026-11-24 00:00:00",  # the window's end: in the future
    "2030-01-01 00:00:00",
    "2024-05-01 24:00:00",
    dt.date(2024, 5, 1),
    dt.datetime(2024, 5, 1, 3, 59, 53),
    dt.datetime(2024, 5, 1, 3, 59, 53, 1),
    dt.datetime(2024, 5, 1, 3, 59, 53, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 24),
]


def _clean(column: str, n: int) -> Any:
    """A value of the form the generated portal stores."""
    if column in ("id", "company_id", "user_id", "order_id", "invoice_id") or column.endswith(
        ("_count", "_revenue")
    ):
        return 1 + n
    if column.endswith(("_at", "updated_at")):
        return f"2024-05-{1 + n % 28:02d} 12:00:{n % 60:02d}"
    if column in ("start_date", "end_date", "issued_on", "due_on"):
        return f"2024-06-{1 + n % 28:02d}"
    if column in ("amount", "vat", "annual_fee"):
        return 100 + n + 0.25
    return {
        "email": f"person{n}@example.se",
        "country_code": "SE",
        "licence_type": "full",
        "name": "Sandgren HB",
        "username": f"user{n}",
    }.get(column, f"text {n}")


def _rows(table: str, draws: list[list[int | None]]) -> list[tuple[Any, ...]]:
    """Rows of `table`: a clean value where the draw is None, else the drawn plain value."""
    columns = COLUMNS[table]
    return [
        tuple(
            _clean(column, n) if pick is None else PLAIN_VALUES[pick]
            for column, pick in zip(columns, picks, strict=False)
        )
        for n, picks in enumerate(draws)
    ]


def _outcome(table: str, rows: list[tuple[Any, ...]], *, columnar: bool) -> Any:
    result = BatchResult(source=f"portal.{table}", source_ref=table)
    try:
        parsed, bad = portal.parse_rows(table, COLUMNS[table], rows, result, END, columnar=columnar)
    except Exception as exc:  # a row parser that fails outright must fail the same way
        return ("error", type(exc).__name__, str(exc))
    return (
        [list(row.items()) for row in parsed],
        bad,
        result.rows_read,
        dict(result.rejected),
    )


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself (a float amount may be one, in both ways alike)."""
    return repr(a) == repr(b)


DRAW = st.one_of(st.none(), st.none(), st.integers(0, len(PLAIN_VALUES) - 1))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.sampled_from(sorted(portal_batch.FIELDS)),
    draws=st.lists(st.lists(DRAW, min_size=20, max_size=20), max_size=12),
)
def test_the_column_path_gives_the_row_parsers_rows_and_verdicts(
    table: str, draws: list[list[int | None]]
) -> None:
    rows = _rows(table, draws)
    row_by_row = _outcome(table, rows, columnar=False)
    in_columns = _outcome(table, rows, columnar=True)
    assert _same(in_columns, row_by_row)


@pytest.mark.parametrize("table", sorted(portal_batch.FIELDS))
def test_every_hostile_value_in_every_column_reaches_the_row_parsers_verdict(table: str) -> None:
    """Exhaustively: each plain value in each column of an otherwise clean row."""
    width = len(COLUMNS[table])
    draws = [
        [None] * at + [pick] + [None] * (width - at - 1)
        for at in range(width)
        for pick in range(len(PLAIN_VALUES))
    ]
    for draw in draws:  # one row at a time: an outright failure must not hide the others
        rows = _rows(table, [draw])
        assert _same(_outcome(table, rows, columnar=True), _outcome(table, rows, columnar=False))


def test_the_fast_path_takes_nearly_every_generated_row(tmp_path: Path) -> None:
    """On a generated portal read as the ingest reads it, at least 95% of each table's rows are
    converted in columns, and the result is the row parsers'."""
    generate(GenerateOptions(out=tmp_path, seed=5, as_of=END.date(), companies=60, log_days=0))
    with sqlite3.connect(tmp_path / "portal.db") as db:
        for table in portal_batch.FIELDS:
            cursor = db.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            if table == "payments":
                invoice_company = dict(db.execute("SELECT id, company_id FROM invoices"))
                names.append("company_id")
                rows = [(*row, invoice_company.get(row[1])) for row in rows]
            assert rows, table
            assert portal_batch.fast_path_possible(table, names)
            prepared = portal_batch.parse_chunk(table, names, rows, END)
            taken = sum(row is not None for row in prepared)
            assert taken >= 0.95 * len(rows), (table, taken, len(rows))
            both = [
                portal.parse_rows(table, names, rows, BatchResult("p", table), END, columnar=c)
                for c in (True, False)
            ]
            assert _same(both[0], both[1])


def test_a_source_without_a_column_the_fields_read_goes_row_by_row() -> None:
    names = [c for c in COLUMNS["companies"] if c != "closed_at"]
    assert not portal_batch.fast_path_possible("companies", names)
    assert not portal_batch.fast_path_possible("companies", [*COLUMNS["companies"], "id"])
    assert portal_batch.fast_path_possible("companies", COLUMNS["companies"])

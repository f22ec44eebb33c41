"""The column-at-a-time CRM parser (`ccg_pipeline/ingest/crm_batch.py`) against the row parser it
stands in for: on the same export, the same rows (the same dicts, key order included), the same
quarantined records with the same reasons and details, and the same counts; and on a generated
export it takes nearly every row (the fast path is really used)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ccg_pipeline.devtools.generate import GenerateOptions, generate
from ccg_pipeline.devtools.world import CRM_HEADERS as HEADERS
from ccg_pipeline.ingest import crm, crm_batch
from ccg_pipeline.ingest.common import BatchResult, IngestContext
from ccg_pipeline.policy import load_data_map

pytestmark = pytest.mark.unit
END = dt.datetime(2026, 11, 24)

IDS = {"Record ID", "Activity ID", "Contact ID", "Number of Employees", "Annual Revenue"}
TIMES = {"Create Date", "Last Activity Date", "Activity Date"}

# Values in an unusual form, per kind of column: each must reach the row parser's verdict.
HOSTILE_IDS = ["", " 12", "12 ", "+5", "-3", "1_000", "\u0663", "12a", "9" * 19, "0012", "1.0"]
HOSTILE_TIMES = [
    "",
    " ",
    "2026-02-30 10:00:00",
    "2026-13-01 00:00:00",
    "2026-11-24 00:00:00",  # the window's end: future
    "2030-01-01 00:00:00",
    "2024-05-01T03:59:53",
    "2024-05-01 03:59:53Z",
    "2024-05-01 03:59:53+02:00",
    " 2024-05-01 03:59:53",
    "2024-05-01",
    "2024-05-01 24:00:00",
    "\uff12\uff10\uff12\uff14-05-01 03:59:53",
]
HOSTILE_TEXT = [
    "",
    "   ",
    " padded ",
    "x" * (crm.MAX_FIELD_CHARS + 1),
    "bad \udcff byte",
    "nul\x00",
    "tab\tand\x0bvt",
    "line\nbreak",
    'quote " inside',
    "comma, inside",
    "diagnosed with diabetes",
    "She is pregnant",
    "member of a trade union",
    "H\u00e4lsa: cancer",
    "caf\u00e9",
]
HOSTILE_EMAILS = ["", "no-at", "A@B.COM ", "a@b", "\uff41@\uff42.com", "a b@c.de", "a@@b.de"]
HOSTILE_COUNTRIES = ["se", " GB", "GBR", "\u00c5\u00c4", "G1", ""]


def _clean_row(kind: str, n: int) -> dict[str, str]:
    day = dt.datetime(2024, 1, 1) + dt.timedelta(hours=37 * n)
    when = f"{day:%Y-%m-%d %H:%M:%S}"
    if kind == "contacts":
        return {
            "Record ID": str(100_000 + n),
            "First Name": "Ulrika",
            "Last Name": "Wallin",
            "Email": f"ULRIKA.WALLIN{n}@EXAMPLE.SE",
            "Phone Number": "0290-810 03",
            "Job Title": "Clerk",
            "Company Name": "Sandgren HB",
            "Country/Region": "SE",
            "Lifecycle Stage": "customer",
            "Marketing Contact Status": "Marketing contact",
            "Create Date": "2018-10-08 12:00:00",
            "Last Activity Date": when if n % 3 else "",
        }
    if kind == "companies":
        return {
            "Record ID": str(500_000 + n),
            "Company Name": "Taylor-Baxter",
            "Company Domain Name": "taylorbaxter.com",
            "Country/Region": "GB",
            "Industry": "Food and drink",
            "Number of Employees": str(n) if n % 4 else "",
            "Annual Revenue": "250000",
            "Create Date": when,
        }
    return {
        "Activity ID": str(900_000 + n),
        "Contact ID": str(100_000 + n // 2),
        "Activity Type": "NOTE",
        "Activity Date": when,
        "Channel": "phone",
        "Subject": "Note" if n % 2 else "",
        "Body": "Interested in AEO consultancy next quarter.",
    }


# White space str.strip() removes and the plain forms do not allow, control and format
# characters it keeps.
EDGES = [
    " ",
    "\t",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1f",
    "\x85",
    "\xa0",
    "\u2028",
    "\u3000",
    "\ufeff",
    "\u200b",
]


def _hostile_value(column: str, clean: str) -> st.SearchStrategy[str]:
    wrapped = st.tuples(st.sampled_from(EDGES), st.booleans()).map(
        lambda edge: edge[0] + clean if edge[1] else clean + edge[0]
    )
    return wrapped | _unusual_value(column)


def _unusual_value(column: str) -> st.SearchStrategy[str]:
    if column in IDS:
        return st.sampled_from(HOSTILE_IDS)
    if column in TIMES:
        return st.sampled_from(HOSTILE_TIMES)
    if column == "Email":
        return st.sampled_from(HOSTILE_EMAILS)
    if column == "Country/Region":
        return st.sampled_from(HOSTILE_COUNTRIES)
    return st.sampled_from(HOSTILE_TEXT) | st.text(max_size=12)


def _header(draw: st.DrawFn, kind: str) -> tuple[list[str], list[str]]:
    """(the columns rows are written in, the header line's cells): in order, shuffled, one
    missing, one twice, with a BOM, or padded with white space the reader strips."""
    header = list(HEADERS[kind])
    variant = draw(
        st.sampled_from(["plain", "plain", "shuffled", "missing", "duplicate", "bom", "padded"])
    )
    if variant == "shuffled":
        header = draw(st.permutations(header))
    elif variant == "missing":
        header.remove(draw(st.sampled_from(header)))
    elif variant == "duplicate":
        header.append(draw(st.sampled_from(header)))
    if variant == "bom":
        return header, ["\ufeff" + header[0], *header[1:]]
    if variant == "padded":
        return header, [f" {name}\xa0" for name in header]
    return header, header


@st.composite
def exports(draw: st.DrawFn) -> tuple[str, str, int]:
    """(kind, CSV text, chunk size): clean rows, rows with one or two values in an unusual
    form, and lines that break the row's shape (short, long, blank, an open quote)."""
    kind = draw(st.sampled_from(sorted(HEADERS)))
    header, header_cells = _header(draw, kind)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow(header_cells)
    shapes = ["whole"] * 6 + ["short", "long", "blank", "quoted empty", "open quote"]
    for n in range(draw(st.integers(0, 14))):
        row = _clean_row(kind, n)
        for column in draw(st.lists(st.sampled_from(sorted(row)), max_size=2)):
            row[column] = draw(_hostile_value(column, row[column]))
        fields = [row.get(name, "") for name in header]
        shape = draw(st.sampled_from(shapes))
        if shape == "short":
            fields = fields[: draw(st.integers(0, len(fields) - 1))]
        elif shape == "long":
            fields = [*fields, "extra"]
        elif shape in ("blank", "quoted empty"):
            out.write("\n" if shape == "blank" else '""\n')
        elif shape == "open quote":
            out.write('"' + ",".join(fields) + "\n")
            continue
        writer.writerow(fields)
    return kind, out.getvalue(), draw(st.sampled_from([1, 3, 20_000]))


def _context() -> IngestContext:
    return IngestContext(
        engine=None,  # type: ignore[arg-type]  (parsing only: nothing is written)
        notice=None,  # type: ignore[arg-type]
        data_map=load_data_map(),
        pseudonym_key="test",
        run_id="test",
        window_start=None,
        window_end=END,
    )


def _parse(kind: str, text: str, *, columnar: bool) -> tuple[list, list, int, dict]:
    result = BatchResult(source=f"crm.{kind}", source_ref="export")
    rows, bad = [], []
    path = Path(f"{kind}_20261123.csv")
    fh = io.StringIO(text, newline="")
    for parsed, quarantined in crm.parsed_chunks(
        kind, fh, _context(), path, result, columnar=columnar
    ):
        rows += [list(row.items()) for row in parsed]  # key order counts too
        bad += quarantined
    return rows, bad, result.rows_read, dict(result.rejected)


def _check_same(kind: str, text: str) -> None:
    assert _parse(kind, text, columnar=True) == _parse(kind, text, columnar=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
@example(
    ("activities", "Activity ID,Contact ID,Activity Type,Activity Date,Channel,Subject,Body\n", 1)
)
def test_columns_at_a_time_give_the_row_parsers_rows_and_rejections(
    export: tuple[str, str, int],
) -> None:
    kind, text, chunk_rows = export
    with mock.patch.object(crm, "STREAM_CHUNK_ROWS", chunk_rows):
        _check_same(kind, text)


@pytest.mark.parametrize("kind", sorted(HEADERS))
def test_a_generated_export_takes_the_fast_path(kind: str, tmp_path: Path) -> None:
    generate(GenerateOptions(out=tmp_path, seed=7, as_of=dt.date(2026, 11, 23), companies=60))
    path = max((tmp_path / "crm").glob(f"{kind}_*.csv"), key=lambda p: p.stat().st_size)
    text = path.read_text(encoding="utf-8")
    _check_same(kind, text)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    rows = [row for row in reader if row]
    assert len(rows) >= 50 and crm_batch.fast_path_possible(kind, header)
    prepared, _ = crm_batch.parse_chunk(
        kind,
        header,
        rows,
        not_after=END,
        export_date=dt.date(2026, 11, 23),
        max_chars=crm.MAX_FIELD_CHARS,
        screened_clean=crm.screen_clean,
    )
    taken = sum(row is not None for row in prepared)
    assert taken >= 0.95 * len(rows), (kind, taken, len(rows))


def test_duplicate_or_missing_columns_leave_the_whole_file_to_the_row_parser() -> None:
    header = HEADERS["companies"]
    assert crm_batch.fast_path_possible("companies", header)
    assert not crm_batch.fast_path_possible("companies", [*header, "Industry"])
    assert not crm_batch.fast_path_possible("companies", header[:-1])


def test_as_dict_is_what_dictreader_gives() -> None:
    header = ["a", "b", "c"]
    rng = random.Random(3)
    for _ in range(50):
        row = [str(rng.random()) for _ in range(rng.randint(1, 5))]
        text = "a,b,c\n" + ",".join(row) + "\n"
        assert crm_batch.as_dict(header, row) == next(csv.DictReader(io.StringIO(text)))

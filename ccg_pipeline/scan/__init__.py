"""Scan tables and files for identifying data (`ccg scan`), with the detectors the validation
gate uses.

Speed comes from doing the common case in C++: every column becomes an Arrow string array, and
one RE2 pass with all detector patterns (`pyarrow.compute.match_substring_regex`) marks the cells
that hold any candidate. Only those cells are read in Python, where each detector's matches are
confirmed by its validator (checksums, ranges, context). Findings carry the row, the column, the
detector and a masked value, never the value itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ccg_pipeline.scan.detectors import DETECTORS, Detector, find, mask
from ccg_pipeline.scan.files import csv_delimiter, file_kind, is_gzip, open_binary, unique_names


class ScanInputError(ValueError):
    """The thing to scan cannot be read (unreadable file, unknown format or table)."""


@dataclass(frozen=True)
class Finding:
    row: int  # 0-based data row
    column: str
    detector: str
    masked: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _prefilter_pattern(detectors: Iterable[Detector]) -> str:
    return "|".join(f"(?:{d.pattern})" for d in detectors)


def _as_text(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    return pc.cast(values, pa.string())


def scan_arrow(
    table: pa.Table,
    detectors: tuple[Detector, ...] = DETECTORS,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Finding]:
    """Findings in every column of an Arrow table, in row order within each column.

    `progress(done, total, "")`, if given, is called before each column with the number of
    columns done, and once at the end. It is not told column names: a file without a header row
    has its first row of data as names."""
    prefilter = _prefilter_pattern(detectors)
    findings: list[Finding] = []
    for done, name in enumerate(table.column_names):
        if progress is not None:
            progress(done, table.num_columns, "")
        try:
            text = _as_text(table.column(name))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # binary or nested columns: nothing textual to scan
        hits = pc.match_substring_regex(text, prefilter)
        rows = pc.indices_nonzero(pc.fill_null(hits, False)).to_pylist()
        if not rows:
            continue
        values = pc.take(text, pa.array(rows)).to_pylist()
        for row, value in zip(rows, values, strict=True):
            for detector in detectors:
                for match in find(value, detector):
                    findings.append(Finding(row, name, detector.name, mask(match)))
    if progress is not None:
        progress(table.num_columns, table.num_columns, "")
    return findings


def scan_frame(frame: pd.DataFrame, detectors: tuple[Detector, ...] = DETECTORS) -> list[Finding]:
    columns = {str(c): frame[c].astype("string").to_numpy(na_value=None) for c in frame.columns}
    table = pa.table({name: pa.array(values, type=pa.string()) for name, values in columns.items()})
    return scan_arrow(table, detectors)


def _csv_header(path: Path, delimiter: str) -> list[str]:
    """The header row, read only to type every column as text; a byte that is not UTF-8 is left
    for the CSV reader to refuse."""
    import csv
    import io

    binary = open_binary(path)
    # utf-8-sig: a byte-order mark is not part of the first name (the CSV reader drops it too).
    with io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def read_file(path: Path) -> pa.Table:
    """CSV or TSV (every column read as text, so leading zeros survive) or Parquet."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ScanInputError(f"{path}: no such file")
    kind = file_kind(path)
    try:
        # Parquet compresses its own pages: a gzipped Parquet file is not a format read here.
        if kind == "parquet" and not is_gzip(path):
            return pq.read_table(path)
        if kind == "csv":
            delimiter = csv_delimiter(path)
            header = _csv_header(path, delimiter)
            table = pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
                ),
            )
            # A repeated header name (two `Email` columns) would make a column unaddressable.
            return table.rename_columns(unique_names(table.column_names))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        # The exception text can quote the offending row, so only its kind is reported.
        raise ScanInputError(f"{path}: cannot be read ({type(exc).__name__})") from None
    raise ScanInputError(f"{path}: unknown format; expected .csv, .tsv or .parquet")


def scan_path(
    path: Path, *, progress: Callable[[int, int, str], None] | None = None
) -> list[Finding]:
    return scan_arrow(read_file(path), progress=progress)


def read_table(engine, qualified: str, chunk_rows: int = 100_000) -> pa.Table:
    """A warehouse table (`zone.table`) as Arrow text columns, read in chunks."""
    import sqlalchemy as sa

    schema_name, _, table_name = qualified.partition(".")
    if not table_name:
        raise ScanInputError(f"{qualified!r} is neither a file nor a table named zone.table")
    inspector = sa.inspect(engine)
    if table_name not in inspector.get_table_names(schema=schema_name):
        raise ScanInputError(f"unknown table {qualified!r}")
    table = sa.Table(table_name, sa.MetaData(), schema=schema_name, autoload_with=engine)
    batches: list[pa.Table] = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(sa.select(table))
        columns = list(result.keys())
        for rows in result.partitions(chunk_rows):
            data = {
                c: [None if r[i] is None else str(r[i]) for r in rows]
                for i, c in enumerate(columns)
            }
            batches.append(pa.table({c: pa.array(v, type=pa.string()) for c, v in data.items()}))
    if not batches:
        return pa.table({c: pa.array([], type=pa.string()) for c in columns})
    return pa.concat_tables(batches)

"""Scan tables and files for identifying data (`ccg scan`), with the detectors the validation
gate uses.

Speed comes from doing the common case in C++: every column becomes an Arrow string array, and
one RE2 pass with all detector patterns (`pyarrow.compute.match_substring_regex`) marks the cells
that hold any candidate. Only those cells are read in Python, where each detector's matches are
confirmed by its validator (checksums, ranges, context). Findings carry the row, the column, the
detector and a masked value, never the value itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ccg_pipeline.scan.detectors import DETECTORS, Detector, find, mask
from ccg_pipeline.scan.files import csv_delimiter, file_kind, is_gzip, open_binary, unique_names

if TYPE_CHECKING:
    import pandas as pd


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


# Between the cells of a joined row: a control character that is neither a word character nor
# white space, so a cell's `\b` sees the same edge as at the start or end of a string.
CELL_SEPARATOR = "\x1f"
SLICE_ROWS = 131_072


def _as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
    """The column as strings, or None for binary or nested columns: nothing textual to scan."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _matches(values: pa.Array | pa.ChunkedArray, pattern: str) -> pa.Array | pa.ChunkedArray:
    """Whether each value holds a match; a null holds none."""
    hits = pc.match_substring_regex(values, pattern)
    return pc.and_kleene(hits, pc.is_valid(hits))


# pyarrow looks for pandas objects among Python and numpy values it converts (`pa.array`,
# `pa.scalar`, a plain `False` argument), and that imports pandas: about a second of `ccg scan`'s
# start. So the scan builds its few Arrow values from buffers.


@functools.cache
def _separator() -> pa.Scalar:
    """CELL_SEPARATOR as an Arrow string scalar."""
    data = CELL_SEPARATOR.encode()
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])[0]


def _positions(indices: pa.Array) -> np.ndarray:
    """`pc.indices_nonzero`'s result (uint64, no nulls) as numpy, read from its buffer."""
    data = indices.buffers()[1]
    if data is None or not len(indices):
        return np.zeros(0, dtype=np.int64)
    return np.frombuffer(data, dtype=np.uint64, count=len(indices), offset=indices.offset * 8)


def _int64s(values: np.ndarray) -> pa.Array:
    """Row numbers as an Arrow array, sharing the numpy buffer."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _candidate_rows(cells: pa.RecordBatch, prefilter: str) -> np.ndarray:
    """Rows of one batch in which any cell may hold an identifier: one RE2 pass over the row's
    cells joined by CELL_SEPARATOR.

    Joining keeps every cell's candidates, because no pattern is anchored and the separator
    looks like a string's edge to `\b`; a match across two cells only adds a candidate row,
    which the per-cell confirmation then clears."""
    if cells.num_columns == 1:
        joined = cells.column(0)
    else:
        joined = pc.binary_join_element_wise(
            *cells.columns, _separator(), null_handling="replace", null_replacement=""
        )
    hits = _matches(joined, prefilter)
    return _positions(pc.indices_nonzero(hits))


Progress = Callable[[int, int, str], None]


def _text_columns(table: pa.Table) -> pa.Table:
    """The table's textual columns as strings (numbers and dates as their text), in order."""
    texts = [
        (name, _as_text(values))
        for name, values in zip(table.column_names, table.columns, strict=True)
    ]
    kept = [(name, values) for name, values in texts if values is not None]
    return pa.Table.from_arrays([values for _, values in kept], [name for name, _ in kept])


def _candidates(text: pa.Table, prefilter: str, progress: Progress | None) -> pa.Array:
    """Numbers of the rows with any candidate, ascending, reporting rows done to `progress`."""
    from concurrent.futures import ThreadPoolExecutor

    total = text.num_rows
    if progress is not None:
        progress(0, total, "")
    if not text.num_columns:
        if progress is not None:
            progress(total, total, "")
        return _int64s(np.zeros(0, dtype=np.int64))
    # A reader's many small chunks are joined first: each kernel call compiles the pattern.
    if total and text.column(0).num_chunks > total // SLICE_ROWS + 1:
        text = text.combine_chunks()
    # Batches share their columns' buffers (no copy); Arrow's kernels release the GIL.
    batches = text.to_batches(max_chunksize=SLICE_ROWS)
    found: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, pa.cpu_count())) as pool:
        rows_of = pool.map(lambda batch: _candidate_rows(batch, prefilter), batches)
        for batch, rows in zip(batches, rows_of, strict=True):
            found.append(rows.astype(np.int64) + done)
            done += batch.num_rows
            if progress is not None:
                progress(done, total, "")
    return _int64s(np.concatenate(found))


def _confirmed(
    name: str, column: pa.ChunkedArray, rows: pa.Array, detectors: tuple[Detector, ...]
) -> Iterator[Finding]:
    """One column's findings on the candidate rows: an RE2 pass per detector picks the cells
    each may match, and only those meet the detector's Python pattern and validator."""
    values = pc.take(column, rows)
    maybe = np.zeros((len(detectors), len(values)), dtype=bool)
    for at, detector in enumerate(detectors):
        maybe[at, _positions(pc.indices_nonzero(_matches(values, detector.pattern)))] = True
    cells = np.flatnonzero(maybe.any(axis=0))
    if not len(cells):
        return
    texts = pc.take(values, _int64s(cells)).to_pylist()
    for cell, row, value in zip(
        cells, pc.take(rows, _int64s(cells)).to_pylist(), texts, strict=True
    ):
        for detector, hits in zip(detectors, maybe, strict=True):
            if hits[cell]:
                for match in find(value, detector):
                    yield Finding(row, name, detector.name, mask(match))


def scan_arrow(
    table: pa.Table,
    detectors: tuple[Detector, ...] = DETECTORS,
    *,
    progress: Progress | None = None,
) -> list[Finding]:
    """Findings in every column of an Arrow table, by column, then in row order.

    One RE2 pass over each row's cells joined finds the candidate rows (batch by batch, on as
    many threads as Arrow's CPU count); on those rows alone an RE2 pass per column and detector
    finds the candidate cells, and Python confirms each detector's matches in them.

    `progress(done, total, "")`, if given, is called with the number of rows done, before the
    first batch and after each. It is not told column names: a file without a header row has
    its first row of data as names."""
    text = _text_columns(table)
    rows = _candidates(text, _prefilter_pattern(detectors), progress)
    if not len(rows):
        return []
    return [
        finding
        for name, column in zip(text.column_names, text.columns, strict=True)
        for finding in _confirmed(name, column, rows, detectors)
    ]


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

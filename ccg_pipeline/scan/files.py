"""What a file is and how to open it, by its name: its kind, whether it is gzipped, its bytes, and
the delimiter of a CSV or TSV file.

Shared by `ccg scan` and the breach impact reader (`ccg_pipeline.breach.readers`), so that the
two commands agree on which files are which. It lives here because breach may import scan, and
scan may not import breach.

Everything goes by the name, never the content: a gzipped file whose name does not end in `.gz`
is read as it is, and a file whose name does is read as gzip (one that is not is refused by
whoever reads it, as unreadable).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Literal

FileKind = Literal["parquet", "csv", "json", "log"]

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


def is_gzip(path: Path) -> bool:
    """Whether the file is gzipped: its name ends in `.gz`, in any case."""
    return path.name.lower().endswith(".gz")


def file_kind(path: Path) -> FileKind:
    """The file's kind by its suffix, in any case and under one `.gz`: `x.csv.gz` is CSV. A name
    with none of the known suffixes is a log (text, one record a line).

    A gzipped Parquet file (`x.parquet.gz`) is of kind Parquet here; the readers refuse it."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    return "log"


def open_binary(path: Path) -> gzip.GzipFile | io.BufferedReader:
    """The file opened for reading bytes, decompressed when its name says it is gzipped."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def csv_delimiter(path: Path) -> str:
    """Tab when `.tsv` is anywhere in the (lower-cased) name, so `x.tsv.gz` is tab-separated;
    else comma."""
    return "\t" if ".tsv" in path.name.lower() else ","


def unique_names(names: list[str]) -> list[str]:
    """Header names made unique (`Email`, `Email #2`), so every column can be addressed."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique

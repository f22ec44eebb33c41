"""Breach impact (`ccg breach-impact`): who and what a leaked table or file affects, in counts.

A personal-data breach must be reported to the ICO within 72 hours where the law requires it
(N-SEC). The report needs, early: how many data subjects, which categories of personal data
(the notice's category ids, N-CAT), where the people are, and whether financial data is
involved. This package answers those questions for

- a warehouse table (`zone.table`): `tables.assess_table`, with categories from `TABLES` and the
  affected subjects reached by set-based SQL;
- a leaked file (CSV/TSV, Parquet, JSON lines or a log): `files.assess_file`, on the file as
  `readers` reads it, with headers matched to the data map and every cell run through the
  identifier detectors.

Identifiers found in free text are matched to known subjects by `matching`; the report itself,
`BreachImpact`, and what both assessments share are in `report`. `assess` takes either.

Everything returned, rendered, logged or raised is a count, a category id, a column name from
the warehouse or the data map, a detector name or a country code: never a value from the data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.engine import Engine

from ccg_pipeline.breach.files import assess_file
from ccg_pipeline.breach.matching import country_of_subject as country_of_subject
from ccg_pipeline.breach.matching import email_keys
from ccg_pipeline.breach.readers import CLF_TIME_FORMAT as CLF_TIME_FORMAT
from ccg_pipeline.breach.readers import DATE_COLUMN_SHARE as DATE_COLUMN_SHARE
from ccg_pipeline.breach.readers import DECODE_CHUNK_BYTES as DECODE_CHUNK_BYTES
from ccg_pipeline.breach.readers import INTERNAL_LABELS as INTERNAL_LABELS
from ccg_pipeline.breach.readers import LINE as LINE
from ccg_pipeline.breach.readers import LINE_TIMESTAMP as LINE_TIMESTAMP
from ccg_pipeline.breach.readers import LOG_COLUMNS as LOG_COLUMNS
from ccg_pipeline.breach.readers import SINCE_PREFERENCE as SINCE_PREFERENCE
from ccg_pipeline.breach.report import (
    COUNTS_ONLY,
    DETECTOR_CATEGORIES,
    BreachImpact,
    BreachInputError,
)
from ccg_pipeline.breach.report import FINANCIAL as FINANCIAL
from ccg_pipeline.breach.report import IP_DETECTORS as IP_DETECTORS
from ccg_pipeline.breach.report import PHONE_DETECTORS as PHONE_DETECTORS
from ccg_pipeline.breach.report import READ_CHUNK_ROWS as READ_CHUNK_ROWS
from ccg_pipeline.breach.report import UNKNOWN_COUNTRY as UNKNOWN_COUNTRY
from ccg_pipeline.breach.tables import assess_table
from ccg_pipeline.personal_model import RECORD_SOURCE as RECORD_SOURCE
from ccg_pipeline.personal_model import (
    TABLES,
    From,
    personal_zone_columns,
    unmapped_columns,
)
from ccg_pipeline.personal_model import WEB_LOG_SOURCE as WEB_LOG_SOURCE
from ccg_pipeline.personal_model import PersonalTable as PersonalTable
from ccg_pipeline.personal_model import category_of as category_of
from ccg_pipeline.purposes import declare_obligation, purpose_of, scope

# --- entry point ------------------------------------------------------------------------------

FILE_SUFFIXES = (
    ".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".log", ".txt", ".gz",
)  # fmt: skip


def looks_like_file(source: str) -> bool:
    path = Path(source)
    return (
        path.exists() or "/" in source or "\\" in source or source.lower().endswith(FILE_SUFFIXES)
    )


def parse_since(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise BreachInputError(f"--since {value!r} is not a date (YYYY-MM-DD)") from None


# N-BASIS: assessing a breach reads whatever the leaked table or file holds, to report it to
# the ICO and the people affected where the law requires (s.7).
BREACH_IMPACT = declare_obligation(
    "breach.impact",
    "security_and_accountability",
    "who and what a leaked table or file affects, in counts",
)


@purpose_of(BREACH_IMPACT)
def assess(source: str, engine: Engine | None, since: dt.date | None = None) -> BreachImpact:
    """A file path (existing, or named like one) or a warehouse table `zone.table`."""
    with scope(BREACH_IMPACT):
        if looks_like_file(source):
            return assess_file(Path(source), engine, since)
        if engine is None:
            raise BreachInputError(f"{source!r} names a table, but no warehouse was given")
        return assess_table(engine, source, since)


# The main API. The names imported above `as` themselves are re-exported as well, so that every
# public name of the former single module `ccg_pipeline.breach` stays importable from here.
__all__ = [
    "COUNTS_ONLY",
    "DETECTOR_CATEGORIES",
    "TABLES",
    "BreachImpact",
    "BreachInputError",
    "From",
    "assess",
    "assess_file",
    "assess_table",
    "email_keys",
    "parse_since",
    "personal_zone_columns",
    "unmapped_columns",
]

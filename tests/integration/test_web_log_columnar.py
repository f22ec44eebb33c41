"""The columnar web-log path writes what the per-line path writes: the same rows (byte for
byte, through COPY on PostgreSQL and positional tuples on SQLite), the same quarantine and the
same counts, on generated, real and hostile lines, with lines past retention and in the future."""

from __future__ import annotations

import datetime as dt
import gzip
import random
from functools import partial
from pathlib import Path

import pytest
from helpers import query

from ccg_pipeline.config import Settings
from ccg_pipeline.devtools.generate import _web_lines
from ccg_pipeline.ingest import ingest_source, logs
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
EXCERPT = Path(__file__).resolve().parents[1] / "fixtures" / "apache_access_excerpt.log"
END = dt.datetime(2026, 11, 24)
HOSTILE = [
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /\\"q\\" HTTP/1.1" 200 5 "-" "a\\"b"',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /å HTTP/1.1" 200 5 "-" "Säkerhet"',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5\t',
    '1.2.3.4 - - [30/Feb/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',
    '1.2.3.4 - - [24/Nov/2026:00:30:00 +0000] "GET /future HTTP/1.1" 200 5',
    '1.2.3.4 - - [24/Nov/2026:00:30:00 +0100] "GET /just-before-the-end HTTP/1.1" 200 5',
    '01.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',
    '2001:db8::7 - - [23/Nov/2026:10:00:00 +0000] "GET /v6 HTTP/1.1" 200 - "" ""',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "" 200 5',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /a b c HTTP/1.1" 404 99999999999999999999',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /nul\x00 HTTP/1.1" 200 5',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "PROPFIND-WITH-A-LONG-NAME /x HTTP/1.1" 200 5',
    "x" * (logs.MAX_LINE_CHARS + 1),
    "",  # blank and white-space lines are skipped, and still count in the line numbers
    "   ",
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /crlf HTTP/1.1" 200 5\r',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /cr HTTP/1.1" 200 5\r1.2.3.5 - - x',
    '1.2.3.4 - - [23/Nov/2026:10:00:00 +0000] "GET /after-the-blanks HTTP/1.1" 200 5',
]


def _ingest(url: str, logs_dir: Path, tmp_path: Path) -> dict:
    migrate.upgrade(create_warehouse_engine(url))
    settings = Settings.from_env(
        {
            "CCG_HOME": str(tmp_path / "home"),
            "CCG_WAREHOUSE_URL": url,
            "CCG_WEB_LOG_DIR": str(logs_dir),
        }
    )
    return ingest_source(settings, "web_logs", run_id="same", window_start=None, window_end=END)


def _written(url: str) -> dict[str, list[tuple]]:
    return {
        "rows": query(url, "SELECT * FROM personal.web_access ORDER BY source_file, line_no"),
        "quarantine": query(
            url,
            "SELECT source_ref, record_ref, reason, raw_record FROM personal.quarantine "
            "ORDER BY source_ref, record_ref",
        ),
        "batches": query(
            url,
            "SELECT source_ref, rows_read, rows_loaded, rows_quarantined, rows_retired, status "
            "FROM ops.ingest_batches ORDER BY source_ref",
        ),
        "reasons": query(
            url, "SELECT reason_code, row_count FROM ops.quarantine_summary ORDER BY reason_code"
        ),
    }


def test_the_columnar_path_writes_what_the_per_line_path_writes(
    warehouse_url: str,
    another_warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs_dir = tmp_path / "web"
    logs_dir.mkdir()
    generated = list(
        _web_lines(random.Random(8), dt.date(2026, 11, 23), 3_000, 0.02, ["a@b.example"])
    )
    with gzip.open(logs_dir / "access.log-20261123.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(generated + HOSTILE) + "\n")
    # Real lines of 2015: all past the 90 days of retention at this window's end.
    (logs_dir / "access.log-20150517").write_text(
        EXCERPT.read_text(encoding="utf-8"), encoding="utf-8"
    )

    columnar = _ingest(warehouse_url, logs_dir, tmp_path)
    # The previous implementation: every line read and parsed one by one.
    monkeypatch.setattr(logs, "load_web_log", partial(logs.load_web_log, columnar=False))
    per_line = _ingest(another_warehouse_url, logs_dir, tmp_path)

    assert columnar == per_line
    assert columnar["rows_retired"] >= 150 and columnar["rows_quarantined"] > 0
    assert _written(warehouse_url) == _written(another_warehouse_url)
    assert len(_written(warehouse_url)["rows"]) > 2_900

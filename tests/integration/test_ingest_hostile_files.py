"""Whole files that cannot be read are refused one by one; the rest of the source still loads."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from helpers import migrated_settings, query

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.ingest.common import IngestFailed

pytestmark = pytest.mark.integration
END = dt.datetime(2026, 11, 24)


def _settings(tmp_path: Path, sources: Path) -> tuple[Settings, str]:
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    return migrated_settings(url, sources, tmp_path), url


def test_truncated_gzip_is_refused_and_later_files_still_load(
    demo_sources: Path, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    first = sources / "logs" / "web" / "access.log-20261122.gz"
    first.write_bytes(first.read_bytes()[: len(first.read_bytes()) // 2])  # cut off mid-stream
    settings, url = _settings(tmp_path, sources)
    with pytest.raises(IngestFailed, match=r"unreadable file \((EOFError|BadGzipFile|error)\)"):
        ingest_source(settings, "web_logs", run_id="r", window_start=None, window_end=END)
    batches = dict(query(url, "SELECT source_ref, status FROM ops.ingest_batches"))
    assert batches == {"access.log-20261122.gz": "refused", "access.log-20261123.gz": "loaded"}
    assert query(
        url, "SELECT count(*) FROM personal.web_access WHERE source_file = 'access.log-20261122.gz'"
    ) == [(0,)], "nothing half-written"


def test_a_csv_without_its_header_row_is_refused_without_echoing_the_data(
    demo_sources: Path, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    contacts = sources / "crm" / "contacts_20261123.csv"
    lines = contacts.read_text(encoding="utf-8").splitlines(keepends=True)
    contacts.write_text("".join(lines[1:]), encoding="utf-8")
    first_row = lines[1]
    settings, url = _settings(tmp_path, sources)
    with pytest.raises(IngestFailed) as err:
        ingest_source(settings, "crm", run_id="r", window_start=None, window_end=END)
    email = next(cell for cell in first_row.split(",") if "@" in cell)
    assert "is the header row missing?" in str(err.value)
    assert email not in str(err.value)
    stored = query(url, "SELECT error FROM ops.ingest_batches WHERE status = 'refused'")
    assert len(stored) == 1 and email not in stored[0][0]
    loaded = query(url, "SELECT count(*) FROM ops.ingest_batches WHERE status = 'loaded'")[0][0]
    assert loaded == 5, "the other CRM files loaded"

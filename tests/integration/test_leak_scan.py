"""Leak-proof: run the whole demo, then scan everything it left behind outside the personal zone
for personal data, with the project's own detectors (`ccg scan`) and the known-identifier scan
against every identifier the generated sources hold. Expected: 0 hits. And secrets (the
pseudonym key, a webhook token, a warehouse password) are never written anywhere.

Scanned: the task logs of every DAG run and the demo's console output; Airflow's own log folder
and its XCom table; the GX validation results, suites and Data Docs; the evidence reports;
rejected-request reasons; every table of the ops, staging and statistics zones (the refusal and
failure texts among them) and the analyst's statistics file. Not scanned: the personal zone,
the sources, and the outputs that exist to carry personal data to their owner (the access
export package, the marketing list).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import env_for, query, run_dag, state_of

from ccg_pipeline.personal_model import PERSONAL_FILES
from ccg_pipeline.scan import scan_arrow
from ccg_pipeline.validation.known_identifiers import KnownIdentifiers

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PSEUDONYM_KEY = "pk-4c1d-never-logged-9e27"
WEBHOOK_TOKEN = "wh-tok-never-logged-31f0"
# A closed port: the alert's webhook post fails, and the failure itself must not print the URL.
WEBHOOK_URL = f"http://127.0.0.1:9/hooks/ccg?token={WEBHOOK_TOKEN}"
# GX's generated ids: a UUID's first group can read as a Companies House number ("fc296777").
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
# Airflow's OpenTelemetry context on each run and task (`context_carrier`): a random 32-hex trace
# id read as an IBAN ("be44..." passed mod-97, about one run in a hundred).
TRACEPARENT = re.compile(r"\b[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\b", re.I)


def identifiers_in(sources: Path) -> KnownIdentifiers:
    """Every name, email, username, phone and company name the generated sources hold."""
    texts: list[str | None] = []
    phones: list[str | None] = []
    with sqlite3.connect(f"file:{sources / 'portal.db'}?mode=ro", uri=True) as db:
        for email, username, first, last, phone in db.execute(
            "SELECT email, username, first_name, last_name, phone FROM users"
        ):
            texts += [email, username, f"{first or ''} {last or ''}"]
            phones.append(phone)
        texts += [name for (name,) in db.execute("SELECT name FROM companies")]
    for path in (sources / "crm").glob("contacts_*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                texts += [row["Email"], f"{row['First Name']} {row['Last Name']}"]
                texts.append(row["Company Name"])
                phones.append(row["Phone Number"])
    return KnownIdentifiers.from_values(texts, phones)


def _lines(path: Path) -> Iterator[str]:
    yield from path.read_text(encoding="utf-8", errors="replace").splitlines()


def _tables(database: Path) -> Iterator[tuple[str, str]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            for row in db.execute(f'SELECT * FROM "{name}"'):
                yield (
                    f"{database.name}:{name}",
                    " | ".join(
                        v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row
                    ),
                )


def left_behind(home: Path, airflow_home: Path, console: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for everything in scope, line by line or row by row."""
    files = [console, *sorted((home / "logs").glob("*.log"))]
    files += sorted(p for p in (airflow_home / "logs").rglob("*") if p.is_file())
    files += sorted(
        p
        for p in (home / "gx").rglob("*")
        if p.is_file() and "static" not in p.relative_to(home / "gx").parts  # GX's own assets
    )
    files += sorted(p for p in (home / "evidence").rglob("*") if p.is_file())
    files += sorted((home / "requests").rglob("*.reason"))
    for path in files:
        for line in _lines(path):
            yield str(path.relative_to(path.parents[1])), line
    yield from _tables(airflow_home / "airflow.db")  # XCom, task instances, callbacks, ...
    for zone in ("ops", "staging", "statistics"):
        yield from _tables(home / "warehouse" / f"{zone}.db")
    yield from _tables(home / "analyst" / "statistics.sqlite")


def leaks(texts: list[tuple[str, str]], index: KnownIdentifiers) -> dict[str, list[str]]:
    """Hits per detector (and `known_identifier`) -> where they are (never the value)."""
    found: dict[str, list[str]] = {}
    cleaned = [TRACEPARENT.sub("<traceparent>", UUID.sub("<uuid>", t)) for _where, t in texts]
    for (where, _text), text in zip(texts, cleaned, strict=True):
        if index.holds_any(text):
            found.setdefault("known_identifier", []).append(where)
    for finding in scan_arrow(pa.table({"text": pa.array(cleaned, type=pa.string())})):
        found.setdefault(finding.detector, []).append(texts[finding.row][0])
    return found


def secrets_in(folder: Path, secrets: list[str], skip: Path | None = None) -> list[str]:
    """Files under `folder` holding any secret, as bytes (databases and logs alike)."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and (skip is None or skip not in path.parents):
            data = path.read_bytes()
            found += [f"{path.name}: {s[:6]}..." for s in secrets if s.encode() in data]
    return found


def test_the_whole_demo_leaves_no_personal_data_and_no_secret_behind(tmp_path: Path) -> None:
    home, airflow_home, console = tmp_path / "home", tmp_path / "airflow", tmp_path / "demo.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCG_", "AIRFLOW"))}
    env.update(
        CCG_HOME=str(home),
        CCG_SOURCE_DIR=str(home / "sources"),
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        DEMO_AS_OF="2026-11-23",
        DEMO_RUN_DATE="2026-11-24",
        DEMO_SEED="42",
        DEMO_COMPANIES="200",
        DEMO_PROSPECTS="100",
        CCG_PSEUDONYM_KEY=PSEUDONYM_KEY,
        CCG_ALERT_WEBHOOK_URL=WEBHOOK_URL,
    )
    with console.open("w") as out:
        done = subprocess.run(
            ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    assert done.returncode == 0, console.read_text()[-3000:]
    assert "CCG ALERT" in (home / "logs" / "ccg_evidence.log").read_text(), "an alert was sent"

    texts = list(left_behind(home, airflow_home, console))
    assert len(texts) > 10_000, "the scan reads what the demo wrote"
    assert any(where.startswith("airflow.db:xcom") for where, _ in texts)
    assert any("data_docs" in where for where, _ in texts)
    index = identifiers_in(home / "sources")
    assert len(index) > 1_000
    _header, first_contact, *_ = _lines(home / "sources" / "crm" / "contacts_20261123.csv")
    probe = leaks([("probe", first_contact)], index)
    assert {"known_identifier", "email"} <= set(probe), "the scan finds a contact's row"
    assert leaks(texts, index) == {}
    assert secrets_in(tmp_path, [PSEUDONYM_KEY, WEBHOOK_TOKEN]) == []
    assert files_with_personal_data_outside_the_model(home) == []


_ADDRESS = re.compile(rb"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def files_with_personal_data_outside_the_model(home: Path) -> list[str]:
    """Every file the pipeline wrote that holds a person's email address is in a folder the
    personal-data model declares (or the warehouse's own files), and readable by its owner only
    (0600, folders 0700). Returns what breaks that, by path and mode."""
    emails = set()
    with sqlite3.connect(f"file:{home / 'sources' / 'portal.db'}?mode=ro", uri=True) as db:
        emails |= {e.strip().lower().encode() for (e,) in db.execute("SELECT email FROM users")}
    for path in (home / "sources" / "crm").glob("contacts_*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            emails |= {row["Email"].strip().lower().encode() for row in csv.DictReader(fh)}
    # The warehouse's zone files are 0600 in a folder the analyst's file may share.
    declared = [home / f.folder for f in PERSONAL_FILES]
    problems, checked = [], 0
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        if (home / "sources") in path.parents:
            continue  # the source systems' own data, as they gave it
        found = {m.lower() for m in _ADDRESS.findall(path.read_bytes())} & emails
        if not found:
            continue
        checked += 1
        where = path.relative_to(home).as_posix()
        if path.stat().st_mode & 0o077:
            problems.append(f"{where}: mode {path.stat().st_mode & 0o777:o}")
        if path.parent == home / "warehouse":
            continue
        folder = next((d for d in declared if d == path.parent or d in path.parents), None)
        if folder is None:
            problems.append(f"{where}: not in a folder the personal-data model declares")
            continue
        for parent in (path.parent, *path.parent.parents):
            if parent.stat().st_mode & 0o077:
                problems.append(f"{parent.relative_to(home).as_posix()}/: not owner-only")
            if parent == folder:
                break
    assert checked, "the demo wrote files with personal data (exports, the warehouse)"
    return sorted(set(problems))


@pytest.mark.postgres
def test_secrets_stay_out_of_logs_xcom_and_errors_when_a_run_fails(
    airflow_db: Path,
    demo_sources: Path,
    pg_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A warehouse password in the `ccg_warehouse` connection, a pseudonym key and a webhook
    token, through a failing ingest (a refused file, the failure alert, the webhook error)."""
    password = "pg-pw-never-logged-72b1"
    url = pg_server.create_database("secrets")  # trust authentication: any password works
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    contacts = sources / "crm" / "contacts_20261123.csv"
    header, *rows = contacts.read_text(encoding="utf-8").splitlines()
    contacts.write_text("\n".join([header + ",Fax", *(r + ",x" for r in rows)]) + "\n")
    monkeypatch.setenv(
        "AIRFLOW_CONN_CCG_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": pg_server.port,
                "login": "postgres",
                "password": password,
                "schema": "secrets",
            }
        ),
    )
    env = env_for("sqlite:///unused/main.db", sources, tmp_path / "home")
    env.update(CCG_PSEUDONYM_KEY=PSEUDONYM_KEY, CCG_ALERT_WEBHOOK_URL=WEBHOOK_URL)
    caplog.set_level(logging.DEBUG)
    run = run_dag(monkeypatch, "ccg_ingest", dt.datetime(2026, 11, 24, tzinfo=dt.UTC), env)
    assert state_of(run) == "failed"
    printed = capfd.readouterr()
    logged = caplog.text + printed.out + printed.err
    assert "ingest_crm" in logged and "CCG ALERT" in logged, "the failure was logged and alerted"
    secrets = [password, PSEUDONYM_KEY, WEBHOOK_TOKEN]
    errors = [
        e for (e,) in query(url, "SELECT error FROM ops.ingest_batches WHERE error IS NOT NULL")
    ]
    assert errors, "the refusal is recorded"
    with sqlite3.connect(airflow_db / "airflow.db") as db:
        xcom = [
            str(v) for (v,) in db.execute("SELECT value FROM xcom WHERE run_id = ?", (run.run_id,))
        ]
    assert xcom, "the run wrote XCom"
    for secret in secrets:
        assert secret not in logged
        assert not any(secret in text for text in [*errors, *xcom])
    assert secrets_in(tmp_path, secrets, skip=sources) == []
    assert secrets_in(airflow_db / "logs", secrets) == []

"""Faults in every stage, and the rerun that must heal them.

Each case starts from the same warehouse as an undisturbed reference run of the stage, breaks
the stage (SIGKILL of the process running it, the database connection cut mid-transaction, or a
second run of the same stage for the same interval at the same time), reruns the stage once as
a retried task would (same run id), and then requires the end state of the undisturbed run:
every row of every zone (no row lost, none doubled, no anonymised count added twice), the ops
evidence, the files the stage writes, and the invariants on their own: no expired unheld row is
left, and the audit ledger counts exactly the rows the stage affected.

The stages run in a child process (`stage_child.py`) so they can be killed for real; the fault
points are `ccg_pipeline.faults` (off unless CCG_FAULT_INJECT is set).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stage_child

from ccg_pipeline import faults
from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.retention.rules import targets
from ccg_pipeline.retention.sweep import plan
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration

CHILD = Path(stage_child.__file__)
RUN_ID = "scheduled__2026-11-24T00:00:00+00:00"
# Small retention chunks, so a sweep of the test population has dozens of commit points.
CHUNK_ROWS = 7
# Surrogate keys (numbered by the database, so a rolled-back insert leaves a gap on PostgreSQL)
# and wall-clock stamps: not part of the state a rerun must reproduce.
VOLATILE = {"quarantine_id", "batch_id", "audit_id", "hold_id", "published_at"}
# Logs of what a run did (wall-clock times, statements executed by the attempt that finished),
# not state a rerun must restore.
VOLATILE_TABLES = {
    "ops.validation_results",
    "ops.clause_evidence",
    "ops.evidence_reports",
    "ops.purpose_checks",
}


# --- warehouses to copy -------------------------------------------------------------------------


@dataclass
class Case:
    """One warehouse copy with its own home and sources, ready to run a stage against."""

    url: str
    home: Path
    sources: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "CCG_WAREHOUSE_URL": self.url,
            "CCG_HOME": str(self.home),
            "CCG_SOURCE_DIR": str(self.sources),
            "CCG_TEST_CHUNK_ROWS": str(CHUNK_ROWS),
        }

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)


class Bases:
    """Base warehouses per backend and stage (built once), copied for every case."""

    def __init__(self, tmp: Path, demo_sources: Path, pg_server: Callable[[], Any]) -> None:
        self.tmp, self.demo_sources, self._pg_server = tmp, demo_sources, pg_server
        self.built: dict[tuple[str, str], Case] = {}
        self.references: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}

    def _fresh(self, backend: str) -> Case:
        folder = self.tmp / uuid.uuid4().hex[:10]
        sources = folder / "sources"
        shutil.copytree(self.demo_sources, sources)
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'warehouse' / 'main.db'}"
        else:
            url = self._pg_server().create_database(f"f_{uuid.uuid4().hex[:12]}")
        return Case(url, folder / "home", sources)

    def copy(self, backend: str, stage: str) -> Case:
        base = self.base(backend, stage)
        case = self._fresh(backend)
        if backend == "sqlite":
            target = Path(sa.make_url(case.url).database or "").parent
            shutil.copytree(Path(sa.make_url(base.url).database or "").parent, target)
        else:
            name = sa.make_url(case.url).database
            admin = sa.create_engine(self._pg_server().url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}"')
                conn.exec_driver_sql(
                    f'CREATE DATABASE "{name}" TEMPLATE "{sa.make_url(base.url).database}"'
                )
            admin.dispose()
        shutil.copytree(base.sources, case.sources, dirs_exist_ok=True)
        if base.home.exists():
            shutil.copytree(base.home, case.home)
        return case

    def base(self, backend: str, stage: str) -> Case:
        if (backend, stage) not in self.built:
            case = self._fresh(backend)
            engine = create_warehouse_engine(case.url)
            migrate.upgrade(engine)
            engine.dispose()
            if stage in ("retention", "statistics", "requests"):
                stage_child.run("ingest", "load", env=case.env)
            if stage == "statistics":
                stage_child.run("retention", "sweep", env=case.env)
            if stage == "requests":
                _submit_requests(case)
            self.built[backend, stage] = case
        return self.built[backend, stage]

    def reference(self, backend: str, stage: str, point: str) -> tuple[dict[str, Any], int]:
        """The end state of an undisturbed run from the base, and how often it reached `point`."""
        if (backend, stage) not in self.references:
            case = self.copy(backend, stage)
            faults.HITS.clear()
            os.environ[faults.ENV] = f"raise:{point}:0"  # count the points, never fire
            try:
                stage_child.run(stage, RUN_ID, env=case.env)
            finally:
                del os.environ[faults.ENV]
            check_invariants(case, stage, self.demo_sources)
            self.references[backend, stage] = (end_state(case), faults.HITS[point])
        return self.references[backend, stage]


def _submit_requests(case: Case) -> None:
    """Six verified requests of five types, for people the demo population holds."""
    from ccg_pipeline import requests
    from ccg_pipeline.requests.intake import parse_submission, submit

    engine = create_warehouse_engine(case.url)
    with engine.connect() as conn:
        users = conn.execute(
            sa.text(
                "SELECT u.email FROM personal.portal_users u JOIN personal.crm_contacts c "
                "ON c.subject_id = u.subject_id ORDER BY u.user_id LIMIT 4"
            )
        ).scalars()
        customer, accessor, rectified, objector = list(users)
        prospect = conn.execute(
            sa.text(
                "SELECT email FROM personal.crm_contacts WHERE subject_id NOT IN "
                "(SELECT subject_id FROM personal.portal_users) ORDER BY crm_contact_id LIMIT 1"
            )
        ).scalar_one()
    wanted = [
        ("erase", customer, None),
        ("erase", prospect, None),
        ("access", accessor, {"export_name": "package"}),
        ("rectify", rectified, {"corrections": {"last_name": "Corrected"}}),
        ("object", objector, {"scope": "legitimate_interest"}),
        ("restrict", objector, None),
    ]
    at = stage_child.REQUESTS_AT.replace(hour=0)
    try:
        for kind, email, payload in wanted:
            submission = parse_submission(kind, email, payload, received_at=at, source="cli")
            requests.verify(engine, submit(engine, case.settings.pseudonym_key, submission), at)
    finally:
        engine.dispose()


# --- the state a run leaves -----------------------------------------------------------------------


def _digest(rows: list[Any]) -> str:
    text = "\n".join(sorted(repr(tuple(r)) for r in rows))
    return f"{len(rows)}:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _files(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def end_state(case: Case) -> dict[str, Any]:
    """Every table of every zone (subject ids as the subject's key), the files the stages write
    (exports, CRM outbox, the analyst's statistics file, by content) and the portal's users."""
    subject_key = {}
    state: dict[str, Any] = {}
    engine = create_warehouse_engine(case.url)
    try:
        with engine.connect() as conn:
            subject_key = dict(
                conn.execute(sa.select(s.subjects.c.subject_id, s.subjects.c.subject_key)).all()
            )
            for table in s.metadata.sorted_tables:
                name = f"{table.schema}.{table.name}"
                if name in VOLATILE_TABLES:
                    continue
                columns = [c for c in table.columns if c.name not in VOLATILE]
                if table is s.subjects:
                    columns = [c for c in columns if c.name != "subject_id"]
                rows = conn.execute(sa.select(*columns)).all()
                if "subject_id" in table.c and table is not s.subjects:
                    at = [c.name for c in columns].index("subject_id")
                    rows = [(*r[:at], subject_key.get(r[at], r[at]), *r[at + 1 :]) for r in rows]
                if table is s.audit_ledger:  # a hold's audit rows carry its (surrogate) id
                    rows = [(re.sub(r"^hold-\d+$", "hold-", r[0]), *r[1:]) for r in rows]
                state[name] = _digest(rows)
    finally:
        engine.dispose()
    for folder in ("exports", "outbox"):
        state[f"files:{folder}"] = _files(case.home / folder)
    analyst = case.home / "analyst"
    state["files:analyst"] = sorted(p.name for p in analyst.iterdir()) if analyst.exists() else []
    if (analyst / "statistics.sqlite").exists():
        with sqlite3.connect(f"file:{analyst / 'statistics.sqlite'}?mode=ro", uri=True) as db:
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            state["analyst tables"] = {
                n: _digest(db.execute(f'SELECT * FROM "{n}"').fetchall())
                for n in names
                if n != "publications"
            }
    portal = sa.create_engine(case.settings.portal_url)
    with portal.connect() as conn:
        state["portal.users"] = _digest(conn.execute(sa.text("SELECT * FROM users")).all())
    portal.dispose()
    return state


def _scalar(conn: sa.Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params).scalar()


def _portal_users(sources: Path) -> int:
    with sqlite3.connect(f"file:{sources / 'portal.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM users").fetchone()[0]


def check_invariants(case: Case, stage: str, demo_sources: Path) -> None:
    """What must hold after any stage, read from the data itself rather than the reference."""
    portal_rows_gone = _portal_users(demo_sources) - _portal_users(case.sources)
    engine = create_warehouse_engine(case.url)
    try:
        with engine.connect() as conn:
            # No row counted twice in the ops evidence: one batch row per run, source and file.
            dup = _scalar(
                conn,
                "SELECT count(*) FROM (SELECT run_id, source, source_ref FROM ops.ingest_batches "
                "GROUP BY run_id, source, source_ref HAVING count(*) > 1) d",
            )
            assert dup == 0, "an ingest batch is recorded twice"
            # Audit counts equal rows affected: ingest batches ...
            mismatched = _scalar(
                conn,
                "SELECT count(*) FROM ops.ingest_batches b JOIN ops.audit_ledger a "
                "ON a.run_id = b.run_id AND a.action = 'ingest' "
                "AND a.table_name = b.source || ':' || b.source_ref "
                "WHERE a.row_count <> b.rows_loaded",
            )
            assert mismatched == 0, "an ingest audit row disagrees with its batch"
            quarantined = _scalar(conn, "SELECT count(*) FROM personal.quarantine")
            counted = _scalar(
                conn, "SELECT coalesce(sum(rows_quarantined), 0) FROM ops.ingest_batches"
            )
            removed = _scalar(  # by retention (after 30 days) and by erasures
                conn,
                "SELECT coalesce(sum(row_count), 0) FROM ops.audit_ledger "
                "WHERE table_name = 'personal.quarantine' AND action IN ('retention', 'erase')",
            )
            assert quarantined == counted - removed, "quarantined rows lost or doubled"
            if stage in ("retention", "statistics"):
                # ... retention: nothing expired and unheld is left, and the ledger's deletions
                # per rule and table equal the sweep's own evidence of them.
                remaining = sum(
                    o.expired_unheld_remaining
                    for o in plan(engine, load_notice(), stage_child.AS_OF)
                )
                assert remaining == 0, "expired unheld rows are left"
                ledger = dict(
                    conn.execute(
                        sa.text(
                            "SELECT rule_id || '/' || table_name, row_count FROM ops.audit_ledger "
                            "WHERE action = 'retention' AND rule_id <> 'orphaned_subjects'"
                        )
                    ).all()
                )
                checks = dict(
                    conn.execute(
                        sa.text(
                            "SELECT rule_id || '/' || table_name, deleted FROM ops.retention_checks"
                        )
                    ).all()
                )
                assert ledger == checks and set(ledger) >= {
                    f"{t.rule_id}/{t.name}" for t in targets()
                }
            if stage == "statistics":
                published = sum(
                    _scalar(conn, f"SELECT count(*) FROM {published.fullname}")
                    for _build, published in s.PUBLISHED
                )
                audited = _scalar(
                    conn,
                    "SELECT row_count FROM ops.audit_ledger WHERE action = 'publish_statistics' "
                    "AND run_id = :r",
                    r=RUN_ID,
                )
                assert audited == published, "the publication's audit count is not its rows"
                assert _scalar(conn, "SELECT count(*) FROM statistics.publications") == 1
            if stage == "requests":
                open_requests = _scalar(
                    conn, "SELECT count(*) FROM ops.subject_requests WHERE status = 'verified'"
                )
                assert open_requests == 0, "a request was left unhandled"
                assert _scalar(conn, "SELECT count(*) FROM personal.request_payloads") == 0
                # The erasures' audit rows count the portal logins that are gone.
                audited = _scalar(
                    conn,
                    "SELECT sum(row_count) FROM ops.audit_ledger WHERE action = 'erase' "
                    "AND table_name = 'portal.users'",
                )
                assert audited == portal_rows_gone, "an erasure's portal deletion is miscounted"
    finally:
        engine.dispose()
    assert not list(case.home.rglob(".*.partial")), "a half-written file was left behind"


# --- running stages -------------------------------------------------------------------------------


def spawn(case: Case, stage: str, fault: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCG_")}
    env.update(case.env, CCG_TASK_RETRIES="0")
    if fault:
        env[faults.ENV] = fault
    return subprocess.Popen(
        [sys.executable, str(CHILD), stage, RUN_ID],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory, demo_sources: Path, request) -> Bases:
    return Bases(
        tmp_path_factory.mktemp("fault-bases"),
        demo_sources,
        lambda: request.getfixturevalue("pg_server"),
    )


@dataclass(frozen=True)
class Fault:
    stage: str  # ingest, retention, statistics, requests
    action: str  # kill, cut, concurrent
    point: str = ""  # a `ccg_pipeline.faults` point
    at: float = 1  # its Nth hit (>= 1), or a fraction of the reference run's hits (< 1)

    def __str__(self) -> str:
        if self.action == "concurrent":
            return f"{self.stage}-twice-at-once"
        at = f"{self.at:.0%}" if self.at < 1 else f"#{int(self.at)}"
        return f"{self.stage}-{self.action}-{self.point}{at}"


INGEST = "audit.ingest"
RETENTION = "audit.retention"
PUBLISH = "audit.publish_statistics"
REQUEST = "audit.*"
FAULTS: list[tuple[str, Fault]] = [
    # Ingest (6 portal tables, 6 CRM files, 2 web-log and 2 auth-log files, one transaction
    # each, its audit row the last write): killed in the first portal table, in a later one, in
    # the CRM files, in a web log, in the last auth log; the connection cut; two runs at once.
    *(("sqlite", Fault("ingest", "kill", INGEST, at)) for at in (1, 4, 0.5, 0.7, 0.85, 0.999)),
    *(("sqlite", Fault("ingest", "cut", INGEST, at)) for at in (2, 0.6)),
    ("sqlite", Fault("ingest", "concurrent")),
    ("postgres", Fault("ingest", "kill", INGEST, 0.6)),
    ("postgres", Fault("ingest", "kill", INGEST, 0.85)),
    ("postgres", Fault("ingest", "cut", INGEST, 2)),
    ("postgres", Fault("ingest", "concurrent")),
    # Retention: killed after the first chunk, at a quarter, half, three quarters, and in the
    # last transaction; the connection cut; two sweeps at once.
    *(("sqlite", Fault("retention", "kill", RETENTION, at)) for at in (2, 0.25, 0.5, 0.75, 0.999)),
    *(("sqlite", Fault("retention", "cut", RETENTION, at)) for at in (3, 0.6)),
    ("sqlite", Fault("retention", "concurrent")),
    ("postgres", Fault("retention", "kill", RETENTION, 0.5)),
    ("postgres", Fault("retention", "cut", RETENTION, 0.3)),
    ("postgres", Fault("retention", "concurrent")),
    # Statistics: killed while building, while publishing, after the publication committed but
    # before the analyst's file is in place; the connection cut; two publications at once.
    ("sqlite", Fault("statistics", "kill", "statistics.build.web_traffic_daily")),
    ("sqlite", Fault("statistics", "kill", PUBLISH)),
    ("sqlite", Fault("statistics", "kill", "statistics.export")),
    ("sqlite", Fault("statistics", "cut", PUBLISH)),
    ("sqlite", Fault("statistics", "concurrent")),
    ("postgres", Fault("statistics", "kill", PUBLISH)),
    ("postgres", Fault("statistics", "cut", "statistics.build.customer_profiles")),
    # Subject requests: killed inside the first erasure, inside a later request, at the last
    # write; the connection cut; two runs at once.
    *(("sqlite", Fault("requests", "kill", REQUEST, at)) for at in (2, 0.5, 0.999)),
    ("sqlite", Fault("requests", "cut", REQUEST, 3)),
    ("sqlite", Fault("requests", "concurrent")),
    ("postgres", Fault("requests", "kill", REQUEST, 4)),
    ("postgres", Fault("requests", "concurrent")),
]


@pytest.mark.parametrize(
    ("backend", "fault"),
    [
        pytest.param(b, f, id=f"{b}-{f}", marks=[pytest.mark.postgres] if b == "postgres" else [])
        for b, f in FAULTS
    ],
)
def test_a_rerun_after_the_fault_ends_like_an_undisturbed_run(
    bases: Bases, backend: str, fault: Fault
) -> None:
    point = fault.point or INGEST
    reference, hits = bases.reference(backend, fault.stage, point)
    case = bases.copy(backend, fault.stage)
    if fault.action == "concurrent":
        runs = [spawn(case, fault.stage) for _ in range(2)]
        outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in runs]
        refused = [err for code, err in outcomes if code != 0]
        if fault.stage == "statistics" and len(refused) == 1:
            # Build, validate and publish are three steps (three tasks in the DAG), each under
            # the stage lock: when the other run rebuilt staging between this run's validation
            # and its publication, the gate refuses the unvalidated build (the safe outcome), and
            # the task's retry publishes.
            assert "PublicationRefused" in refused[0], refused[0][-2000:]
            stage_child.run(fault.stage, RUN_ID, env=case.env)
        else:
            assert [code for code, _ in outcomes] == [0, 0], outcomes
    else:
        nth = int(fault.at) if fault.at >= 1 else max(1, round(hits * fault.at))
        assert nth <= hits, f"the reference run reaches {point} {hits} times"
        child = spawn(case, fault.stage, f"{fault.action}:{point}:{nth}")
        code = child.wait(timeout=600)
        stderr = child.stderr.read()
        if fault.action == "kill":
            assert code == -signal.SIGKILL, stderr[-2000:]
        else:
            assert code != 0, "the cut connection must fail the stage"
        assert "Traceback" not in stderr or fault.action == "cut", stderr[-2000:]
        # The retried task (for ingest, every source again), with the same run id.
        stage_child.run(fault.stage, RUN_ID, env=case.env)
    check_invariants(case, fault.stage, bases.demo_sources)
    assert end_state(case) == reference

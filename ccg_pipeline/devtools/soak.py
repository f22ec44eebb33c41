"""The soak: the real DAGs run for every simulated day of an evolving world, and after each day
oracles that read the world's truth (not the pipeline's tables' own logic) check the promises.

Per simulated day `d` the world writes what its systems would (see `devtools.world`), then the
harness runs, through Airflow's `dag.test()` in this process, the runs the scheduler would make
for the interval ending at midnight after `d`: `ccg_ingest`, `ccg_retention`,
`ccg_subject_requests` (after the operator verified what was taken in on earlier days; every
fifth request is extended by a month), `ccg_statistics` (as of `d`; daily, or every few days in
the quick profile) and, every few weeks, `ccg_evidence`. On a fault day one run is started with a
fault injected (a cut database connection, a crash at a write); it must fail cleanly and the
rerun, as Airflow's retry would do, must converge.

Invariants after each day (`Violation` names the day, the clause and counts, and stops the
soak):

- N-RET: no company's rows are held on or after its deadline (six years after its last business
  day, from the world's contracts, invoices, payments and closure; with `align_to_year_end`, from
  the first 5 April on or after it), unless the world restricted it; no web request past 90 days
  and no login event past 365 days;
- N-RET (quarantine): the malformed row of a fault day is in quarantine from that night until
  30 days after, then gone;
- N-RET (people): three months after a portal account closed its password hash and interests are
  gone; 30 days after a person's last word on marketing was an opt-out none of their marketing
  activities is held; two years after a lead's last activity their CRM record is gone;
- N-RET (nothing early): every company not yet due is held with all its contracts and invoices
  (a returning customer's new ones included), and every valid web log line of the last 90 days;
- N-RIGHTS: every request the world dropped is completed by its due date (one calendar month from
  receipt plus the days it waited for verification; extensions honoured);
- N-AGG: a period that had closed when a release was published is identical in every later
  release (the differencing attack on consecutive releases finds nothing), and every release
  survives the disclosure attacks of `devtools.attacks`: the stock-flow identity of
  `customers_by_quarter` and the profile snapshot's margins pin no count narrower than the
  protection width, and no published profile links to fewer than k companies of the day's CRM
  company export;
- evidence: no clause of `ccg_evidence` fails while the oracles find nothing;
- N-SEC: no address or full name of the world appears in a task log, an XCom or a stored
  validation result.

Run: `python -m ccg_pipeline.devtools.soak --profile quick|long [--backend sqlite|postgresql]`
(`make soak` runs the long profile on both backends and writes the report).
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from ccg_pipeline.devtools.world import DayReport, World, WorldOptions

PERSONAL_COMPANY_TABLES = (
    "companies",
    "contracts",
    "invoices",
    "orders",
    "payments",
    "portal_users",
)
WEB_DAYS, AUTH_DAYS, CUSTOMER_YEARS, QUARANTINE_DAYS = 90, 365, 6, 30
# The notice's other periods (policy s.8 decisions), restated: profile data three months after the
# account closes, marketing history 30 days after an opt-out, a prospect two years after their
# last activity.
PROFILE_MONTHS, MARKETING_DAYS, PROSPECT_YEARS = 3, 30, 2
# The CRM's own vocabulary for a person's word on marketing (what its export writes).
SAYS_STOP = {"MARKETING_OPT_OUT", "MARKETING_CONSENT_WITHDRAWN", "MAILING_LIST_UNSUBSCRIBE"}
SAYS_YES = {"MARKETING_CONSENT_GRANTED", "MAILING_LIST_SUBSCRIBE"}
REQUEST_DONE = {"completed", "duplicate"}
# Statuses of an erasure whose warehouse part is done (the CRM's part may still be open).
ERASURE_CARRIED_OUT = {"completed", "awaiting_crm"}
FAULT_ENV = "CCG_FAULT_INJECT"
# Bad data that makes ingest refuse a whole file (and fail its run, with an alert) by design.
REFUSING_FAULTS = {"unknown_column", "truncated_gzip"}
ORACLE_CLAUSES = ("N-RET", "N-RIGHTS", "N-AGG", "N-SEC")


class Violation(AssertionError):
    """An invariant broken on a simulated day: the day, the clause and counts (never data)."""

    def __init__(self, day: dt.date, clause: str, detail: str) -> None:
        super().__init__(f"{day}: {clause}: {detail}")
        self.day, self.clause, self.detail = day, clause, detail


@dataclass(frozen=True)
class Profile:
    name: str
    days: int
    world: WorldOptions
    statistics_every: int = 1
    evidence_every: int = 7
    # Day index -> (DAG id, fault spec for CCG_FAULT_INJECT) for one run of that day.
    dag_faults: dict[int, tuple[str, str]] = field(default_factory=dict)
    align_to_year_end: bool = False
    # 1: the DAGs run every simulated day. More: the world still changes daily, but outside
    # dense days (see `Soak.is_run_day`) the DAGs run only every `stride_days`, as a scheduler
    # catching up after a pause would.
    stride_days: int = 1


Offset = TypeVar("Offset")


def _on_days(start: dt.date, offsets: dict[int, Offset]) -> dict[dt.date, Offset]:
    """Day offsets from `start` as dates."""
    return {start + dt.timedelta(days=k): v for k, v in offsets.items()}


def quick_profile(seed: int = 13) -> Profile:
    """About 60 days from 1 March: a month end, a quarter end and the 5 April year end. With this
    seed, customers' six-year deadlines fall on days 3, 7, 9, 20, 32, 34-36 and 47; one customer
    comes back just before its deadline and one after its data went. A closed account's profile
    data falls due on day 6, an inactive lead on day 8 and an opt-out's marketing history on day
    10 (days counted from 0)."""
    start = dt.date(2026, 3, 1)
    return Profile(
        name="quick",
        days=60,
        world=WorldOptions(
            seed=seed,
            start=start,
            companies=45,
            prospects=20,
            scripted_returns=_on_days(start, {5: "before_deadline", 11: "after_deadline"}),
            scripted_people=_on_days(
                start,
                {6: "profile_after_closure", 8: "prospect_inactive", 10: "marketing_after_opt_out"},
            ),
            history_log_days=95,
            web_lines_per_day=20,
            faults=_on_days(
                start,
                {
                    3: "malformed_row",
                    9: "unknown_column",
                    15: "truncated_gzip",
                    21: "late_file",
                    27: "duplicate_export",
                },
            ),
        ),
        statistics_every=7,
        evidence_every=20,
        dag_faults={
            12: ("ccg_ingest", "cut:audit.ingest*:2"),
            33: ("ccg_retention", "raise:audit.*:1"),
        },
    )


def long_profile(seed: int = 11, years: int = 2) -> Profile:
    """Two simulated years, daily, at small scale, with the faults spread over them."""
    # The DAGs start on 2026-01-01: Airflow runs no task for an earlier interval.
    start = dt.date(2026, 1, 2)
    faults = {}
    for n, day in enumerate(range(20, 365 * years, 45)):
        faults[day] = (
            "malformed_row",
            "unknown_column",
            "truncated_gzip",
            "late_file",
            "duplicate_export",
        )[n % 5]
    dag_faults = {}
    for n, day in enumerate(range(40, 365 * years, 97)):
        dag_faults[day] = (
            ("ccg_ingest", "cut:audit.ingest*:2"),
            ("ccg_retention", "raise:audit.*:1"),
            ("ccg_statistics", "raise:statistics.build.*:1"),
        )[n % 3]
    return Profile(
        name="long",
        days=365 * years,
        world=WorldOptions(
            seed=seed, start=start, companies=80, prospects=40, faults=_on_days(start, faults)
        ),
        # Weekly releases keep two years near an hour on two cores; the differencing check
        # compares each with the one before (daily releases: the quick profile and
        # tests/integration/test_release_differencing.py).
        statistics_every=7,
        evidence_every=30,
        dag_faults=dag_faults,
    )


def years_profile(seed: int = 17, years: int = 7) -> Profile:
    """Seven simulated years: the world changes daily, the DAGs run monthly except on dense days
    (the first two weeks, 1-10 April around the 5 April year end, three days either side of
    each quarter end, and every day a customer's deadline falls). Customers who cease in the
    first week reach their deadline in the seventh year."""
    start = dt.date(2026, 1, 2)
    return Profile(
        name=f"years{years}",
        days=365 * years + years // 4,
        world=WorldOptions(
            seed=seed,
            start=start,
            companies=60,
            prospects=30,
            joins_per_day=0.05,
            requests_per_day=0.05,
            scripted_ceases=_on_days(start, {2: 2, 5: 1}),
            faults=_on_days(
                start, {400: "late_file", 900: "unknown_column", 1500: "truncated_gzip"}
            ),
        ),
        statistics_every=1,
        evidence_every=12,
        dag_faults={30: ("ccg_ingest", "cut:audit.ingest*:2")},
        stride_days=30,
    )


PROFILES = {"quick": quick_profile, "long": long_profile, "years": years_profile}


# --- first-principles date arithmetic (the oracle's own, not the pipeline's) --------------------


def _plus_years(day: dt.date, years: int) -> dt.date:
    last = calendar.monthrange(day.year + years, day.month)[1]
    return dt.date(day.year + years, day.month, min(day.day, last))


def _plus_months(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _count_in(conn: sa.Connection, sql: str, ids: list[int]) -> int:
    """`sql` counts rows whose key is in `ids` (an expanding `:ids`); 0 for no ids."""
    if not ids:
        return 0
    statement = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    return int(conn.execute(statement, {"ids": sorted(set(ids))}).scalar_one())


def customer_deadline(last_business_day: dt.date, *, align_to_year_end: bool) -> dt.date:
    start = last_business_day
    if align_to_year_end:
        year_end = dt.date(start.year, 4, 5)
        start = year_end if start <= year_end else dt.date(start.year + 1, 4, 5)
    return _plus_years(start, CUSTOMER_YEARS)


def last_closed_quarter(day: dt.date) -> str:
    """The latest quarter whose last day is on or before `day`, as published ("2026-Q3")."""
    index = day.year * 4 + (day.month - 1) // 3
    current = f"{index // 4}-Q{index % 4 + 1}"
    if period_end(current) <= day:
        return current
    return f"{(index - 1) // 4}-Q{(index - 1) % 4 + 1}"


def period_end(label: str) -> dt.date:
    """The last day of a published period label: a day, a month or a quarter."""
    if len(label) >= 10:
        return dt.date.fromisoformat(label[:10])
    year, _, rest = label.partition("-")
    month = int(rest[1:]) * 3 if rest.startswith("Q") else int(rest)
    return dt.date(int(year), month, calendar.monthrange(int(year), month)[1])


# Months a period's figures may still move after it ends (requests complete up to three months
# after they arrive); the notice's request clock, restated here.
PERIOD_COLUMNS = {
    "customers_by_quarter": ("quarter", 0),
    "revenue_by_service_month": ("month", 0),
    "web_traffic_daily": ("day", 0),
    "marketing_consent_monthly": ("month", 0),
    "subject_requests_monthly": ("month", 3),
}


# --- the harness ---------------------------------------------------------------------------------


@dataclass
class DayFigures:
    day: dt.date
    seconds: float
    personal_rows: int
    published_rows: int
    requests_open: int
    requests_answered: int
    checks: int
    world: DayReport


@dataclass
class SoakResult:
    profile: str
    backend: str
    days: list[DayFigures] = field(default_factory=list)
    checks_passed: int = 0
    requests_answered: int = 0
    deadlines_met: int = 0
    dag_runs: int = 0
    fault_runs_recovered: int = 0
    refused_runs: int = 0
    attacks_run: int = 0
    # Days the quarantine oracle found a fault day's row held (before due) or gone (after).
    quarantine_judged: Counter[str] = field(default_factory=Counter)
    # People the CRM and profile rules judged due: rule -> people (rows checked gone or emptied).
    people_judged: Counter[str] = field(default_factory=Counter)
    # The most CRM records of erased people checked absent on one day.
    erased_records_judged: int = 0
    # Companies whose six-year deadline fell on a simulated day (not already past at the start).
    deadlines_in_soak: set[int] = field(default_factory=set)
    dag_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Soak:
    def __init__(
        self,
        profile: Profile,
        warehouse_url: str,
        home: Path,
        *,
        progress: bool = False,
        sources: Path | None = None,
    ) -> None:
        self.profile = profile
        self.progress = progress
        self.home = home
        self.sources = sources or home / "sources"
        # Folders of service logs scanned for leaks besides the task logs (a deployment's).
        self.extra_logs: list[Path] = []
        self.attach(warehouse_url)
        self.world = World(
            profile.world,
            self.sources,
            request_inbox=home / "requests" / "inbox",
            outbox=home / "outbox" / "crm",
        )
        self.result = SoakResult(profile.name, sa.make_url(warehouse_url).get_backend_name())
        self.verified: dict[str, dt.date] = {}
        self.extended: dict[str, int] = {}
        self.previous_release: tuple[dt.date, dict[tuple, tuple]] | None = None
        self.deadlines_seen: set[int] = set()
        self._previous_deadlines: dict[int, dt.date | None] = {}
        self._last_checked: dt.date | None = None
        self._run_ids: set[str] = set()
        self._gx_offsets: dict[Path, int] = {}
        self._fault_done: set[int] = set()
        self._answered: set[str] = set()
        self._pattern: tuple[int, re.Pattern[str]] | None = None
        self.returned_after_deletion: dict[int, dt.date] = {}
        self._log_offsets: dict[Path, int] = {}
        self._engine: sa.Engine | None = None
        # The index of the next simulated day: a resumed soak goes on from here.
        self.next_index = 0

    def attach(self, warehouse_url: str) -> None:
        """Point this process's DAG runs and the oracles at the warehouse (again, when a resumed
        soak's PostgreSQL server came back on another port)."""
        self.url = warehouse_url
        self._engine = None
        os.environ.update(
            {
                "CCG_WAREHOUSE_URL": warehouse_url,
                "CCG_SOURCE_DIR": str(self.sources),
                "CCG_HOME": str(self.home),
                "CCG_TASK_RETRIES": "0",
            }
        )
        os.environ.pop(FAULT_ENV, None)

    def __getstate__(self) -> dict[str, Any]:
        # A checkpoint keeps the world and the oracles' memory, not a live connection pool.
        return {**self.__dict__, "_engine": None}

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            from ccg_pipeline.warehouse.engine import create_warehouse_engine

            self._engine = create_warehouse_engine(self.url)
        return self._engine

    def run(
        self, days: int | None = None, *, after_day: Callable[[Soak], None] | None = None
    ) -> SoakResult:
        """Simulate from `next_index` (0, or where a resumed soak stopped) to the profile's end
        (or `days`); `after_day` is called after each day the DAGs ran (the checkpoints)."""
        total = days if days is not None else self.profile.days
        began, spent = time.monotonic(), self.result.seconds
        start = self.profile.world.start
        try:
            while self.next_index < total:
                index = self.next_index
                day = start + dt.timedelta(days=index)
                if not (index == total - 1 or self.is_run_day(index, day)):
                    self.world.advance(day)
                    self.next_index += 1
                    continue
                figures = self.run_day(index, day)
                self.next_index += 1
                self.result.seconds = spent + time.monotonic() - began
                if self.progress and len(self.result.days) % 30 == 0:
                    print(
                        f"{figures.day}: day {index + 1}, {self.result.checks_passed} checks "
                        f"passed, {self.result.seconds / 60:.1f} min",
                        flush=True,
                    )
                if after_day is not None:
                    after_day(self)
        finally:
            self.result.seconds = spent + time.monotonic() - began
            self.dispose()
        return self.result

    def is_run_day(self, index: int, day: dt.date) -> bool:
        """Every day at stride 1; else the stride, and the dense days: the first two weeks,
        1-10 April, three days either side of a quarter end, and every day on which some
        customer's deadline falls (from the world's truth)."""
        if self.profile.stride_days <= 1 or index < 14 or index % self.profile.stride_days == 0:
            return True
        if day.month == 4 and day.day <= 10:
            return True
        quarter_end = period_end(f"{day.year}-Q{(day.month - 1) // 3 + 1}")
        previous_end = dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1) - dt.timedelta(days=1)
        if (quarter_end - day).days < 3 or (day - previous_end).days <= 3:
            return True
        tomorrow = dt.timedelta(days=1)
        return any(d in (day, day - tomorrow) for d in self._deadlines().values() if d)

    def run_day(self, index: int, day: dt.date) -> DayFigures:
        began = time.monotonic()
        report = self.world.advance(day)
        midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        align = {"align_to_year_end": True} if self.profile.align_to_year_end else None
        self._dag(index, day, "ccg_ingest", midnight)
        self._dag(index, day, "ccg_retention", midnight, align)
        # The operator verifies what was taken in on earlier days; the run then takes in the
        # day's files and handles the verified requests.
        self.operate(day)
        self._dag(index, day, "ccg_subject_requests", midnight)
        runs = len(self.result.days) + 1
        last = index == self.profile.days - 1
        published = (runs - 1) % self.profile.statistics_every == 0 or last
        if published:
            self._dag(index, day, "ccg_statistics", midnight, {"as_of": day.isoformat()})
        if runs % self.profile.evidence_every == 0 or last:
            self._dag(
                index,
                day,
                "ccg_evidence",
                midnight + dt.timedelta(hours=6),
                {"as_of": day.isoformat()},
            )
            self._check_evidence(day)
        checks = self._check_day(day, published)
        figures = DayFigures(
            day=day,
            seconds=time.monotonic() - began,
            personal_rows=self._personal_rows(),
            published_rows=self._published_rows(),
            requests_open=sum(1 for r in self.world.requests if r.file_name not in self._answered),
            requests_answered=len(self._answered),
            checks=checks,
            world=report,
        )
        self.result.days.append(figures)
        self.result.checks_passed += checks
        return figures

    # --- DAG runs -------------------------------------------------------------------------------

    def _dag(
        self, index: int, day: dt.date, dag_id: str, when: dt.datetime, conf: dict | None = None
    ) -> None:
        from ccg_pipeline.dagrun import run_dag

        fault = self.profile.dag_faults.get(index)
        if fault and fault[0] == dag_id and index not in self._fault_done:
            self._fault_done.add(index)
            with _env(FAULT_ENV, fault[1]):
                from ccg_pipeline import faults

                faults.HITS.clear()
                state = self._run_logged(run_dag, day, dag_id, when, conf)
                reached = sum(faults.HITS.values())
            self.result.dag_runs += 1
            if state == "success" or not reached:
                raise Violation(
                    day,
                    "faults",
                    f"{dag_id} ended {state} with {fault[1]} injected, reached {reached} times",
                )
            # The retry: the same interval again, without the fault, must converge.
            self.result.fault_runs_recovered += 1
        state = self._run_logged(run_dag, day, dag_id, when, conf)
        self.result.dag_runs += 1
        if (
            state != "success"
            and dag_id == "ccg_ingest"
            and self.world_fault(day) in REFUSING_FAULTS
            and self._refused_in_log(day)
        ):
            # Refusing the file and failing the run (with an alert) is the promised behaviour;
            # the world sends a corrected file the next day and that run must load it.
            self.result.refused_runs += 1
            return
        if state != "success":
            raise Violation(day, "runs", f"{dag_id} ended {state} (log: {self._log_of(day)})")

    def _refused_in_log(self, day: dt.date) -> bool:
        """The run failed because it refused the day's bad file (named in its log), not for
        another reason."""
        text = self._log_of(day).read_text(encoding="utf-8", errors="replace")
        return re.search(rf"'refused': \[[^\]]*{day:%Y%m%d}", text) is not None

    def world_fault(self, day: dt.date) -> str | None:
        return self.profile.world.faults.get(day)

    def _log_of(self, day: dt.date) -> Path:
        return self.home / "soak-logs" / f"{day.isoformat()}.log"

    def _run_logged(
        self, run_dag: Any, day: dt.date, dag_id: str, when: dt.datetime, conf: dict | None
    ) -> str:
        """A DAG run with its task log (stdout and stderr under `dag.test()`) kept per day."""
        path = self._log_of(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        try:
            with _captured_output(path):
                run = run_dag(dag_id, when, conf)
        finally:
            spent = self.result.dag_seconds
            spent[dag_id] = spent.get(dag_id, 0.0) + time.monotonic() - began
        # A run Airflow marks successful without running a task (a logical date before the
        # DAG's start date, say) judged nothing: it must not count as a day done.
        self._run_ids.add(str(run.run_id))
        if not _task_instances(dag_id, str(run.run_id)):
            raise Violation(day, "runs", f"{dag_id} ran no task for {when:%Y-%m-%d %H:%M}")
        return _state(run)

    def operate(self, day: dt.date) -> None:
        """The operator verifies each request the day after it was taken in, and extends every
        fifth one by a month on the day of verification."""
        from ccg_pipeline import requests
        from ccg_pipeline.warehouse import schema as s

        r = s.subject_requests
        with self.engine.connect() as conn:
            waiting = conn.execute(
                sa.select(r.c.request_id, r.c.source_ref, r.c.received_at).where(
                    r.c.status == s.AWAITING_VERIFICATION
                )
            ).all()
        at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 10))
        for request_id, source_ref, received in waiting:
            if received.date() >= day:
                continue
            requests.verify(self.engine, request_id, at)
            self.verified[source_ref] = at.date()
            if len(self.verified) % 5 == 0:
                requests.extend(self.engine, request_id, 1, "complex request", at.date())
                self.extended[source_ref] = 1

    def judge(self, as_of: dt.date, run_ids: set[str]) -> int:
        """The oracles on a warehouse that another driver ran (the real scheduler of
        `devtools.scheduled_soak`), as of retention's last day: the day's invariants, the
        attacks on the latest release, evidence agreement, the leak scan of `run_ids`' XCom.
        Returns the checks passed."""
        self._run_ids = set(run_ids)
        checks = self._check_day(as_of, published=False)
        with self.engine.connect() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(sa.column("as_of"))).select_from(
                    sa.table("publications", schema="statistics")
                )
            ).scalar()
        if newest is None:
            raise Violation(as_of, "N-AGG", "no release was published")
        checks += self._check_release(dt.date.fromisoformat(str(newest)[:10]))
        self._check_evidence(as_of)
        return checks + 1

    # --- oracles --------------------------------------------------------------------------------

    def _check_day(self, day: dt.date, published: bool) -> int:
        checks = 0
        deadlines = self._deadlines()
        with self.engine.connect() as conn:
            counts = self._company_counts(conn)
            checks += self._check_retention(conn, day, counts, deadlines)
            checks += self._check_nothing_early(conn, day, counts, deadlines)
            checks += self._check_requests(conn, day)
            checks += self._check_quarantine(conn, day)
            checks += self._check_people_rules(conn, day)
            checks += self._check_leaks(conn, day)
        if published:
            checks += self._check_release(day)
        return checks

    def _company_counts(self, conn: sa.Connection) -> dict[str, dict[int, int]]:
        out = {}
        for table in PERSONAL_COMPANY_TABLES:
            rows = conn.execute(
                sa.text(f"SELECT company_id, count(*) FROM personal.{table} GROUP BY company_id")
            )
            out[table] = {int(c): int(n) for c, n in rows if c is not None}
        return out

    def _deadlines(self) -> dict[int, dt.date | None]:
        return {
            company_id: None
            if last is None
            else customer_deadline(last, align_to_year_end=self.profile.align_to_year_end)
            for company_id, last in self.world.last_business_days().items()
        }

    def _check_retention(
        self,
        conn: sa.Connection,
        day: dt.date,
        counts: dict[str, dict[int, int]],
        deadlines: dict[int, dt.date | None],
    ) -> int:
        excused = self.world.restricted_companies
        overdue: dict[str, int] = {}
        since = self._last_checked
        for company_id, back_on in self.world.returned_on.items():
            # Came back (since the last run) after its deadline had passed: its old rows went,
            # its new ones stay.
            before = self._previous_deadlines.get(company_id)
            fresh = since is None or back_on > since
            if fresh and back_on <= day and before is not None and before <= back_on:
                self.returned_after_deletion[company_id] = back_on
        self._last_checked = day
        self._previous_deadlines = deadlines
        for company_id, deadline in deadlines.items():
            if deadline is None or deadline > day or company_id in excused:
                continue
            self.deadlines_seen.add(company_id)
            if deadline >= self.profile.world.start:
                self.result.deadlines_in_soak.add(company_id)
            for table, per_company in counts.items():
                if per_company.get(company_id):
                    overdue[table] = overdue.get(table, 0) + per_company[company_id]
        if overdue:
            raise Violation(day, "N-RET", f"rows held past the six-year deadline: {overdue}")
        self.result.deadlines_met = len(self.deadlines_seen)
        web_cut = dt.datetime.combine(day - dt.timedelta(days=WEB_DAYS - 1), dt.time())
        auth_cut = dt.datetime.combine(day - dt.timedelta(days=AUTH_DAYS - 1), dt.time())
        old_web = conn.execute(
            sa.text("SELECT count(*) FROM personal.web_access WHERE requested_at < :cut"),
            {"cut": web_cut},
        ).scalar_one()
        # A restricted person's login events are held (storage only) past their year.
        held = sorted(self.world.restricted_user_ids) or [-1]
        old_auth = conn.execute(
            sa.text(
                "SELECT count(*) FROM personal.auth_events WHERE occurred_at < :cut "
                "AND (user_id IS NULL OR user_id NOT IN :held)"
            ).bindparams(sa.bindparam("held", expanding=True)),
            {"cut": auth_cut, "held": held},
        ).scalar_one()
        if old_web or old_auth:
            raise Violation(
                day, "N-RET", f"log rows past their period: web {old_web}, auth {old_auth}"
            )
        # One check per company judged against its deadline, and the two log rules.
        return len(deadlines) + 2

    def _check_nothing_early(
        self,
        conn: sa.Connection,
        day: dt.date,
        counts: dict[str, dict[int, int]],
        deadlines: dict[int, dt.date | None],
    ) -> int:
        world = self.world.rows
        # A customer back after its old rows went is owed only the rows from its return on.
        back_on = {c: d.isoformat() for c, d in self.returned_after_deletion.items()}
        expected_contracts = _per_company(world["contracts"].values(), "start_date", back_on)
        expected_invoices = _per_company(world["invoices"].values(), "issued_on", back_on)
        missing: dict[str, int] = {}
        judged = 0
        for company_id, deadline in deadlines.items():
            if deadline is not None and deadline <= day:
                continue
            judged += 1
            for table, expected in (
                ("companies", 1),
                ("contracts", expected_contracts.get(company_id, 0)),
                ("invoices", expected_invoices.get(company_id, 0)),
            ):
                held = counts[table].get(company_id, 0)
                if held < expected:
                    missing[table] = missing.get(table, 0) + expected - held
        if missing:
            raise Violation(day, "N-RET", f"rows of companies not yet due are missing: {missing}")
        # Web lines: every valid line of the last 90 days whose file has arrived is held.
        since = day - dt.timedelta(days=WEB_DAYS - 1)
        held_by_day: dict[dt.date, int] = {}
        for (stamp,) in conn.execute(
            sa.text("SELECT requested_at FROM personal.web_access WHERE requested_at >= :since"),
            {"since": dt.datetime.combine(since, dt.time())},
        ):
            when = (
                stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(str(stamp))
            )
            held_by_day[when.date()] = held_by_day.get(when.date(), 0) + 1
        pending = self.world.incomplete_log_days()
        short = 0
        for log_day, valid in self.world.valid_web_lines.items():
            if log_day < since or log_day in pending:
                continue
            short += max(0, valid - held_by_day.get(log_day, 0))
        if short:
            raise Violation(
                day, "N-RET", f"{short} valid web log lines of the last 90 days missing"
            )
        return judged + sum(1 for d in self.world.valid_web_lines if d >= since)

    def _check_quarantine(self, conn: sa.Connection, day: dt.date) -> int:
        """N-RET for `quarantine_raw`: the malformed row the world wrote into a day's CRM export
        is quarantined by that night's load (nothing lost) and held until 30 days after, then
        gone. Judged by the export's own day, from the world's fault calendar."""
        judged = 0
        for fault_day, fault in self.profile.world.faults.items():
            if fault != "malformed_row" or fault_day > day:
                continue
            held = conn.execute(
                sa.text(
                    "SELECT count(*) FROM personal.quarantine WHERE source = 'crm.contacts' "
                    "AND source_ref = :name"
                ),
                {"name": f"contacts_{fault_day:%Y%m%d}.csv"},
            ).scalar_one()
            # Quarantined at the end of the first run day on or after the fault day (the DAGs
            # may not run daily); due 30 days after that.
            loaded = min(d for d in [*(f.day for f in self.result.days), day] if d >= fault_day)
            due = loaded + dt.timedelta(days=1 + QUARANTINE_DAYS)
            if day >= due and held:
                raise Violation(
                    day, "N-RET", f"{held} quarantined rows of {fault_day} held past {due}"
                )
            if day < due and not held:
                raise Violation(
                    day, "N-RET", f"the malformed row of {fault_day} is not in quarantine"
                )
            self.result.quarantine_judged["held" if held else "gone"] += 1
            judged += 1
        return judged

    def _check_people_rules(self, conn: sa.Connection, day: dt.date) -> int:
        """N-RET for the rules about people rather than companies, from the world's portal users,
        CRM contacts and activities:

        - profile_after_closure: three months after a portal account closed, its password hash
          and interests are gone;
        - marketing_after_opt_out: 30 days after a person's last word on marketing was an
          opt-out, none of their marketing activities (any CRM record with their address) is held;
        - prospect_inactive: two years after a lead's last activity, their CRM record is gone.

        Judged only where every reading of the rule agrees: restricted people are excused (their
        data is held, storage only), and a lead whose address ever had a portal login is left to
        the customer rules."""
        world = self.world
        restricted = {
            u["email"].strip().lower()
            for u in world.rows["users"].values()
            if u["id"] in world.restricted_user_ids
        }
        judged: Counter[str] = Counter()
        overdue: Counter[str] = Counter()

        due_profiles = [
            u["id"]
            for u in world.rows["users"].values()
            if u["closed_at"]
            and _plus_months(dt.date.fromisoformat(u["closed_at"][:10]), PROFILE_MONTHS) <= day
            and u["id"] not in world.restricted_user_ids
            and u["company_id"] not in world.restricted_companies
        ]
        judged["profile_after_closure"] = len(due_profiles)
        overdue["profile_after_closure"] = _count_in(
            conn,
            "SELECT count(*) FROM personal.portal_users WHERE user_id IN :ids "
            "AND (password_hash IS NOT NULL OR interests IS NOT NULL)",
            due_profiles,
        )

        address_of = {cid: c["Email"].strip().lower() for cid, c in world.contacts.items()}
        last_word: dict[str, tuple[str, str]] = {}
        for activity in world.pop.activities:
            kind = activity["Activity Type"]
            if kind in SAYS_STOP or kind in SAYS_YES:
                address = address_of.get(activity["Contact ID"])
                if address and (
                    address not in last_word or activity["Activity Date"] >= last_word[address][0]
                ):
                    last_word[address] = (activity["Activity Date"], kind)
        opted_out = {
            address
            for address, (when, kind) in last_word.items()
            if kind in SAYS_STOP
            and dt.date.fromisoformat(when[:10]) + dt.timedelta(days=MARKETING_DAYS) <= day
            and address not in restricted
        }
        judged["marketing_after_opt_out"] = len(opted_out)
        overdue["marketing_after_opt_out"] = _count_in(
            conn,
            "SELECT count(*) FROM personal.crm_activities WHERE crm_contact_id IN :ids "
            f"AND activity_type IN ({', '.join(repr(t) for t in sorted(SAYS_STOP | SAYS_YES))})",
            [cid for cid, address in address_of.items() if address in opted_out],
        )

        ever_logged_in = {u["email"].strip().lower() for u in world.rows["users"].values()}
        due_prospects = [
            cid
            for cid, c in world.contacts.items()
            if c["Lifecycle Stage"] != "customer"
            and address_of[cid] not in ever_logged_in | restricted
            and _plus_years(
                dt.date.fromisoformat((c["Last Activity Date"] or c["Create Date"])[:10]),
                PROSPECT_YEARS,
            )
            <= day
        ]
        judged["prospect_inactive"] = len(due_prospects)
        overdue["prospect_inactive"] = _count_in(
            conn,
            "SELECT count(*) FROM personal.crm_contacts WHERE crm_contact_id IN :ids",
            due_prospects,
        )

        if +overdue:
            raise Violation(day, "N-RET", f"people's rows held past their rule: {dict(+overdue)}")
        self.result.people_judged |= judged  # the most judged due on one day, per rule
        return sum(judged.values())

    def _check_requests(self, conn: sa.Connection, day: dt.date) -> int:
        rows = {
            ref: (status, completed)
            for ref, status, completed in conn.execute(
                sa.text("SELECT source_ref, status, completed_at FROM ops.subject_requests")
            )
        }
        late: list[str] = []
        inbox = self.home / "requests" / "inbox"
        with sqlite3.connect(f"file:{self.sources / 'portal.db'}?mode=ro", uri=True) as portal:
            portal_logins = {e.lower() for (e,) in portal.execute("SELECT email FROM users")}
        portal.close()
        for request in self.world.requests:
            status, completed = rows.get(request.file_name, (None, None))
            if status is None and (inbox / "rejected" / request.file_name).exists():
                late.append(f"{request.request_type} rejected at intake")
                continue
            if (
                status is None
                and _receipt_status(inbox / "processed" / request.file_name) == "duplicate"
            ):
                self._answered.add(request.file_name)
                continue
            if status in REQUEST_DONE:
                self._answered.add(request.file_name)
            verified = self.verified.get(request.file_name)
            if verified is None:
                # Taken in by the first run after it arrived, verified at the next one.
                runs_since = sum(1 for d in self.result.days if d.day > request.received)
                if runs_since >= 2:
                    late.append(f"{request.request_type} never taken in or verified")
                continue
            due = _plus_months(request.received, 1) + (verified - request.received)
            if request.file_name in self.extended:
                due = _plus_months(due, self.extended[request.file_name])
            if day <= due:
                continue
            done_on = _as_date(completed)
            if (
                status not in REQUEST_DONE
                or (status == "completed" and done_on is None)
                or (done_on is not None and done_on > due)
            ):
                late.append(
                    f"{request.request_type} {status or 'missing'} after its due date {due}"
                )
            elif request.request_type == "erase" and request.email in portal_logins:
                late.append("erase completed while the portal still holds the login")
        if late:
            raise Violation(day, "N-RIGHTS", f"{len(late)} requests late: {sorted(set(late))}")
        self.result.requests_answered = len(self._answered)
        return len(self.world.requests) + 1 + self._check_erased_records(conn, day, rows)

    def _check_erased_records(
        self, conn: sa.Connection, day: dt.date, statuses: dict[str, tuple]
    ) -> int:
        """N-RIGHTS from the CRM's side: once an erasure is carried out, no contact row of the
        erased address, and no activity the CRM logged under any of its records (before or
        after the erasure), is held. The world's records, not the pipeline's links."""
        erased = {
            request.email.strip().lower()
            for request in self.world.requests
            if request.request_type == "erase"
            and statuses.get(request.file_name, (None,))[0] in ERASURE_CARRIED_OUT
        }
        records = [
            cid for cid, c in self.world.contacts.items() if c["Email"].strip().lower() in erased
        ]
        held = _count_in(
            conn,
            "SELECT count(*) FROM personal.crm_activities WHERE crm_contact_id IN :ids",
            records,
        ) + _count_in(
            conn, "SELECT count(*) FROM personal.crm_contacts WHERE crm_contact_id IN :ids", records
        )
        if held:
            raise Violation(day, "N-RIGHTS", f"{held} CRM rows of erased people held")
        self.result.erased_records_judged = max(self.result.erased_records_judged, len(records))
        return len(records)

    def _check_release(self, day: dt.date) -> int:
        """The differencing attacker: two consecutive releases (the published zone analysts
        query), every period closed at the first must be identical in the second."""
        cells: dict[tuple, tuple] = {}
        with self.engine.connect() as conn:
            published_today = conn.execute(
                sa.text("SELECT count(*) FROM statistics.publications WHERE as_of = :day"),
                {"day": day},
            ).scalar()
            if not published_today:
                raise Violation(day, "N-AGG", "the statistics run published no release for the day")
            for table, (column, lag) in PERIOD_COLUMNS.items():
                result = conn.execute(sa.text(f"SELECT * FROM statistics.{table}"))
                names = list(result.keys())
                at = names.index(column)
                for row in result:
                    cells[(table, *map(str, row))] = (str(row[at]), lag)
        if self.previous_release is not None:
            before, old = self.previous_release
            closed_old = {
                k
                for k, (label, lag) in old.items()
                if _plus_months(period_end(label), lag) <= before
            }
            closed_new = {
                k
                for k, (label, lag) in cells.items()
                if _plus_months(period_end(label), lag) <= before
            }
            changed = Counter(k[0] for k in closed_old - set(cells))
            appeared = Counter(k[0] for k in closed_new - set(old))
            if changed or appeared:
                raise Violation(
                    day,
                    "N-AGG",
                    f"closed periods differ between the releases of {before} and {day}: cells "
                    f"changed or withdrawn {dict(changed)}, appeared {dict(appeared)}",
                )
        compared = len(self.previous_release[1]) if self.previous_release else 0
        self.previous_release = (day, cells)
        return compared + 1 + self._attack_release(day)

    def _attack_release(self, day: dt.date) -> int:
        """The disclosure attacker on the release (devtools.attacks, not the gate's audit). Closed
        periods are frozen (checked above), so attacking each release in turn attacks every
        release so far."""
        import pandas as pd

        from ccg_pipeline.devtools import attacks
        from ccg_pipeline.policy import load_notice

        def published(table: str) -> pd.DataFrame:
            with self.engine.connect() as conn:
                # Read with pandas directly, not through the pipeline's own reader
                # (`warehouse.sql.frame_of`): the attacker must see the published tables
                # whatever that reader does.
                result = conn.execute(sa.text(f"SELECT * FROM statistics.{table}"))
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)

        spec, k = attacks.SPEC, load_notice().settings.k_anonymity
        quarters, profiles = published("customers_by_quarter"), published("customer_profiles")
        try:
            widths = attacks.stock_flow_widths(quarters, spec)
            widths += attacks.margin_widths(profiles, quarters, last_closed_quarter(day), spec)
            matches = attacks.linkage_matches(profiles, attacks.crm_company_export(self.sources))
        except AssertionError as impossible:
            # The attacker's arithmetic found published values that cannot all be true.
            raise Violation(day, "N-AGG", f"the release contradicts itself: {impossible}") from None
        pinned = sum(w < spec.count_protection_width for w in widths)
        linked = sum(m < k for m in matches)
        if pinned or linked:
            raise Violation(
                day,
                "N-AGG",
                f"the attacks succeed on the release: {pinned} of {len(widths)} counts or flows "
                f"narrower than {spec.count_protection_width}, {linked} of {len(matches)} "
                f"profiles linked to fewer than {k} companies",
            )
        self.result.attacks_run += len(widths) + len(matches)
        return len(widths) + len(matches)

    def _check_evidence(self, day: dt.date) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT clause, passed, figures FROM ops.clause_evidence WHERE run_id = "
                    "(SELECT run_id FROM ops.evidence_reports ORDER BY created_at DESC LIMIT 1)"
                )
            ).all()
        if not rows:
            raise Violation(day, "evidence", "the evidence run stored no clause")
        status = {
            clause: "no data" if not passed and "no_data" in str(figures) else bool(passed)
            for clause, passed, figures in rows
        }
        # The clauses the oracles judge a second way must pass; the others (N-XFER, which the
        # notice's own wording fails, for one) are the evidence's business alone.
        # With the year-end alignment passed to the retention runs only, the evidence judges
        # retention by the notice's own setting (not aligned) and rightly finds rows due.
        judged = [
            c for c in ORACLE_CLAUSES if not (c == "N-RET" and self.profile.align_to_year_end)
        ]
        # "No data" agrees only where the oracles had nothing to judge either.
        nothing = {"N-RIGHTS": not self.world.requests}
        disagree = sorted(
            c
            for c in judged
            if status.get(c) is not True and not (status.get(c) == "no data" and nothing.get(c))
        )
        if disagree:
            raise Violation(
                day, "evidence", f"clauses not passing while the oracles pass: {disagree}"
            )

    def _check_leaks(self, conn: sa.Connection, day: dt.date) -> int:
        pattern = self._leak_pattern()
        hits: dict[str, int] = {}
        folders = [Path(os.environ.get("AIRFLOW_HOME", "")) / "logs", *self.extra_logs]
        logs = [self._log_of(day), *(p for folder in folders for p in folder.rglob("*"))]
        scanned = 0
        for path in logs:
            if not path.is_file():
                continue
            offset = self._log_offsets.get(path, 0)
            size = path.stat().st_size
            if size <= offset:
                continue
            with path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace").lower()
            self._log_offsets[path] = size
            scanned += len(text)
            if pattern.search(text):
                hits["task logs"] = hits.get("task logs", 0) + 1
        if self._unscanned_results_leak(conn, pattern):
            hits["validation results"] = 1
        if _airflow_xcom_leaks(
            pattern, self._run_ids, self.__dict__.setdefault("_scanned_xcom", set())
        ):
            hits["xcom"] = 1
        for path in sorted((self.home / "gx").rglob("*")):
            # The GX store and Data Docs (validation results, samples of unexpected values).
            if path.is_file() and path.stat().st_size != self._gx_offsets.get(path):
                self._gx_offsets[path] = path.stat().st_size
                if pattern.search(path.read_text(encoding="utf-8", errors="replace").lower()):
                    hits["gx store"] = hits.get("gx store", 0) + 1
        if hits:
            raise Violation(day, "N-SEC", f"personal data found in {hits}")
        if not scanned:
            raise Violation(day, "N-SEC", "no task log was captured to scan (nothing to judge)")
        return 1

    def _unscanned_results_leak(self, conn: sa.Connection, pattern: re.Pattern[str]) -> bool:
        """Whether a row of `ops.validation_results` not scanned before matches: each row's
        text once (a rerun that rewrites a run's rows is scanned again). Scanning every row
        every day took 16 s a day by the fourth simulated year of the seven-year profile. A row
        can only hold people who existed when it was written, so a later, larger pattern need
        not see it again."""
        # Kept on the soak, so checkpoints carry it (and a checkpoint older than it starts empty).
        seen: set[bytes] = self.__dict__.setdefault("_scanned_results", set())
        rows = conn.execute(sa.text("SELECT * FROM ops.validation_results"))
        texts = (repr(tuple(row)).lower() for row in rows)
        return _any_new_match(pattern, seen, ((text, text) for text in texts))

    def _leak_pattern(self) -> re.Pattern[str]:
        plain = self.world.emails() | {n.lower() for n in self.world.names()}
        # The same values as JSON stores them (non-ASCII escaped) and as URLs carry addresses.
        needles = sorted(
            plain
            | {json.dumps(n)[1:-1] for n in plain}
            | {e.replace("@", "%40") for e in self.world.emails()},
            key=len,
        )
        key = hash(tuple(needles))
        if self._pattern is None or self._pattern[0] != key:
            self._pattern = (key, re.compile("|".join(re.escape(n) for n in reversed(needles))))
        return self._pattern[1]

    # --- figures --------------------------------------------------------------------------------

    def _personal_rows(self) -> int:
        from ccg_pipeline.warehouse import schema as s

        with self.engine.connect() as conn:
            return sum(
                conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in s.INGESTED_TABLES
                if t.schema == s.PERSONAL
            )

    def _published_rows(self) -> int:
        with self.engine.connect() as conn:
            return sum(
                int(conn.execute(sa.text(f"SELECT count(*) FROM statistics.{t}")).scalar_one())
                for t in PERIOD_COLUMNS
            )


def _per_company(rows: Any, day_column: str, since: dict[int, str]) -> dict[int, int]:
    """Rows per company, counting for the companies in `since` only those dated on or after
    their day there (ISO dates compare as text)."""
    counts: Counter[int] = Counter()
    for row in rows:
        company_id = row["company_id"]
        if company_id not in since or row[day_column] >= since[company_id]:
            counts[company_id] += 1
    return dict(counts)


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.datetime.fromisoformat(str(value)).date()


def _receipt_status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        return None


def _state(run: Any) -> str:
    return str(getattr(run, "state", "unknown")).rsplit(".", 1)[-1].lower()


@contextmanager
def _captured_output(path: Path) -> Iterator[None]:
    """Everything this process writes to stdout and stderr (Airflow's task logs under
    `dag.test()`) goes to `path` instead, at the file-descriptor level, and every log record
    reaching the root logger is written there as well."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    # Log records too, however the host process (a test runner, say) routes its streams.
    records = logging.FileHandler(path, encoding="utf-8")
    records.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(records)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            root.removeHandler(records)
            records.close()


def _airflow_metadata() -> sa.Engine:
    """Airflow's metadata database: the configured one (a deployment's PostgreSQL), else the
    SQLite file in AIRFLOW_HOME that `dag.test()` uses. Read only."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if not url:
        db = Path(os.environ.get("AIRFLOW_HOME", "")) / "airflow.db"
        if not db.is_file():
            raise FileNotFoundError("the Airflow metadata database is not where AIRFLOW_HOME says")
        url = f"sqlite:///file:{db}?mode=ro&uri=true"
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _task_instances(dag_id: str, run_id: str) -> int:
    engine = _airflow_metadata()
    try:
        with engine.connect() as conn:
            count = conn.execute(
                sa.text(
                    "SELECT count(*) FROM task_instance WHERE dag_id = :dag AND run_id = :run "
                    "AND state IS NOT NULL"
                ),
                {"dag": dag_id, "run": run_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(count)


def _any_new_match(
    pattern: re.Pattern[str], seen: set[bytes], items: Iterable[tuple[str, str]]
) -> bool:
    """Whether `pattern` is in the text of an item judged for the first time. An item is (its
    identity with its content, the text to search); `seen` remembers the digests of those judged,
    so each is searched once, and again when its content changes. What was written before a
    day can only name people who existed then, so a later, larger pattern need not see it."""
    leaked = False
    for identity, text in items:
        digest = hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=12).digest()
        if digest not in seen:
            seen.add(digest)
            leaked = bool(pattern.search(text)) or leaked
    return leaked


def _airflow_xcom_leaks(pattern: re.Pattern[str], run_ids: set[str], seen: set[bytes]) -> bool:
    """Whether an XCom value of the soak's runs not judged before holds personal data (every
    value every day grew with the runs behind it: about half the leak oracle in the second
    simulated year)."""
    engine = _airflow_metadata()
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT dag_id, run_id, task_id, map_index, key, value FROM xcom")
            ).all()
    finally:
        engine.dispose()
    items = ((repr(tuple(row)), str(row[-1]).lower()) for row in rows if row[1] in run_ids)
    return _any_new_match(pattern, seen, items)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


# --- the report ----------------------------------------------------------------------------------


def write_report(results: list[dict], out: Path) -> Path:
    """`soak.md` and one SVG plot per run, from the JSON results the runs saved."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Soak report",
        "",
        "| profile | backend | simulated days | DAG runs | faulted runs recovered | files "
        "refused (by design) | invariant checks passed | requests answered | six-year deadlines "
        "met | wall time | median s per simulated day |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        per_day = sorted(d["seconds"] for d in r["days"])
        median = per_day[len(per_day) // 2] if per_day else 0.0
        lines.append(
            f"| {r['profile']} | {r['backend']} | {len(r['days'])} | {r['dag_runs']} | "
            f"{r['fault_runs_recovered']} | {r.get('refused_runs', 0)} | {r['checks_passed']:,} | "
            f"{r['requests_answered']} | {r['deadlines_met']} | {r['seconds'] / 60:.1f} min | "
            f"{median:.2f} |"
        )
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in results]
    for r in results:
        lines += [
            "",
            f"## {r['profile']} on {r['backend']}, by simulated month",
            "",
            "| month | joined | ceased | returned | invoices | payments | requests | web lines "
            "in | personal rows (month end) | published rows (month end) | s per day |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        months: dict[str, list[dict]] = {}
        for d in r["days"]:
            months.setdefault(d["day"][:7], []).append(d)
        for month, days in months.items():
            total: Counter[str] = Counter()
            for d in days:
                total.update({k: v for k, v in d["world"].items() if isinstance(v, int)})
            lines.append(
                f"| {month} | {total['joined']} | {total['ceased']} | {total['returned']} | "
                f"{total['invoices']} | {total['payments']} | {total['requests']} | "
                f"{total['web_lines']:,} | {days[-1]['personal_rows']:,} | "
                f"{days[-1]['published_rows']:,} | "
                f"{sum(d['seconds'] for d in days) / len(days):.2f} |"
            )
        svg = out / f"soak-{r['profile']}-{r['backend']}.svg"
        svg.write_text(_plot(r), encoding="utf-8")
        lines += ["", f"![personal zone and statistics over simulated time]({svg.name})"]
    report = out / "soak.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def _plot(result: dict) -> str:
    """Two lines over simulated days: personal-zone rows and published statistics rows."""
    width, height, pad = 720, 300, 40
    days = result["days"]
    series = {
        "personal zone rows": ([d["personal_rows"] for d in days], "#1f77b4"),
        "published statistics rows": ([d["published_rows"] for d in days], "#d62728"),
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{pad}" y="16">{result["profile"]} soak on {result["backend"]}: '
        f"{len(days)} simulated days</text>",
    ]
    for n, (label, (values, colour)) in enumerate(series.items()):
        top = max(values, default=1) or 1
        points = " ".join(
            f"{pad + (width - 2 * pad) * i / max(len(values) - 1, 1):.1f},"
            f"{height - pad - (height - 2 * pad) * v / top:.1f}"
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'
        )
        parts.append(
            f'<text x="{pad + 260 * n}" y="{height - 10}" fill="{colour}">{label} '
            f"(max {top:,})</text>"
        )
    if days:
        parts.append(f'<text x="{pad}" y="{height - pad + 14}">{days[0]["day"]}</text>')
        parts.append(
            f'<text x="{width - pad - 60}" y="{height - pad + 14}">{days[-1]["day"]}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


# --- command line --------------------------------------------------------------------------------


def _migrate_airflow(airflow_home: Path) -> None:
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    # Airflow writes absolute paths into the airflow.cfg it generates: a checkpoint restored in
    # another --work folder would otherwise use (and migrate) the original soak's database and
    # logs, beside that soak if it still runs.
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{airflow_home / 'airflow.db'}"
    os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(airflow_home / "logs")
    os.environ["AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY"] = str(
        airflow_home / "logs" / "dag_processor"
    )
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(airflow_home / "plugins")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault(
        "AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[2] / "dags")
    )
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )


def report_main(argv: list[str]) -> int:
    """`report RESULT.json... --out DIR`: the Markdown summary and plots of saved soak runs."""
    parser = argparse.ArgumentParser(prog="soak report")
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    results = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
    print(f"wrote {write_report(results, args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--years", type=int, help="simulated years (long: 2, daily; years: 7, stepping monthly)"
    )
    parser.add_argument("--days", type=int, help="stop after this many days")
    parser.add_argument("--align-to-year-end", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--work",
        type=Path,
        help="keep the soak's files in this folder and checkpoint there; the same command "
        "again resumes a stopped soak from its last checkpoint",
    )
    parser.add_argument(
        "--checkpoint-minutes", type=float, default=10.0, help="with --work: at most this often"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="with --work: discard its checkpoint, start again"
    )
    args = parser.parse_args(argv)
    if args.profile == "long":
        profile = long_profile(years=args.years or 2)
    elif args.profile == "years":
        profile = years_profile(years=args.years or 7)
    else:
        profile = quick_profile()
    if args.align_to_year_end:
        profile = replace(profile, align_to_year_end=True, name=f"{profile.name}-aligned")

    from ccg_pipeline.devtools import soak_checkpoint

    work: Path | None = args.work.resolve() if args.work else None
    if work is not None and args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    saved, saved_pg = None, None
    if work is not None and soak_checkpoint.latest(work) is not None:
        saved, saved_pg = soak_checkpoint.restore(work)
        if (saved.soak.profile.name, saved.backend) != (profile.name, args.backend):
            raise SystemExit(
                f"{work} holds a checkpoint of the {saved.soak.profile.name} soak on "
                f"{saved.backend}; name another --work folder, or add --fresh"
            )
        if saved.soak.home != soak_checkpoint.home_of(work):
            # The world and the pipeline's settings hold the home's absolute path: a copy
            # resumed elsewhere would write into the original soak's files.
            raise SystemExit(
                f"this checkpoint was taken with --work {saved.soak.home.parent}; resume it "
                "there (a copy of a --work folder cannot be resumed in another place)"
            )
    # Kept after a violation (its logs name what failed); removed after a clean soak.
    home = soak_checkpoint.home_of(work) if work else Path(tempfile.mkdtemp(prefix="ccg-soak-"))
    home.mkdir(parents=True, exist_ok=True)
    _migrate_airflow(home / "airflow")
    # Two weeks of gate runs in GX's store (production keeps 90): the Data Docs index reads every
    # kept result each day, which is seconds of each simulated day and proves nothing the soak
    # checks; the full record stays in ops.validation_results, and pruning runs every day.
    os.environ.setdefault("CCG_GX_RUNS_KEPT", "14")
    server = None
    if args.backend == "postgresql":
        from ccg_pipeline.devtools.postgres import start_server

        server = start_server(data_from=saved_pg)
        url = server.url("soak") if saved_pg else server.create_database("soak")
    else:
        url = f"sqlite:///{home / 'warehouse' / 'main.db'}"
    try:
        if saved is not None:
            soak = saved.soak
            soak.progress = True
            soak.attach(url)
            argv = saved.argv
            resumed_on = profile.world.start + dt.timedelta(days=soak.next_index)
            print(f"resuming on {resumed_on} (day {soak.next_index + 1}) from {work}", flush=True)
        else:
            soak = Soak(profile, url, home, progress=True)
        checkpoints = (
            soak_checkpoint.Checkpoints(
                work, args.checkpoint_minutes * 60, args.backend, argv, server
            )
            if work is not None
            else None
        )
        result = _run_reporting(soak, args.days, checkpoints)
    finally:
        if server is not None:
            server.stop()
    shutil.rmtree(work or home, ignore_errors=True)
    command = "python -m ccg_pipeline.devtools.soak " + " ".join(recorded_arguments(argv))
    partial = args.out / f"soak-{profile.name}-{result.backend}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    partial.write_text(
        json.dumps(_result_json(result, command), indent=1, default=str), encoding="utf-8"
    )
    print(
        f"soak {profile.name} on {result.backend}: {len(result.days)} days, "
        f"{result.checks_passed} checks passed, 0 violations, {result.seconds / 60:.1f} min"
    )
    return 0


# Options whose value is a local path: the recorded command leaves them out.
LOCAL_OPTIONS = ("--out", "--work")


def recorded_arguments(argv: list[str]) -> list[str]:
    """The command line as the result records it: without `--out DIR` or `--work DIR`, local
    paths, nor `--fresh`."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith(tuple(f"{o}=" for o in LOCAL_OPTIONS)) or arg == "--fresh":
            skip = False
            continue
        skip = arg in LOCAL_OPTIONS
        if not skip:
            kept.append(arg)
    return kept


def _run_reporting(
    soak: Soak, days: int | None, after_day: Callable[[Soak], None] | None
) -> SoakResult:
    try:
        return soak.run(days, after_day=after_day)
    except Violation as violation:
        print(
            f"VIOLATION on {violation.day}: {violation.clause}: {violation.detail}", file=sys.stderr
        )
        raise SystemExit(1) from None


def _result_json(result: SoakResult, command: str) -> dict:
    return {
        "command": command,
        "profile": result.profile,
        "backend": result.backend,
        "seconds": result.seconds,
        "checks_passed": result.checks_passed,
        "requests_answered": result.requests_answered,
        "deadlines_met": result.deadlines_met,
        "deadlines_fell_in_soak": len(result.deadlines_in_soak),
        "dag_runs": result.dag_runs,
        "fault_runs_recovered": result.fault_runs_recovered,
        "refused_runs": result.refused_runs,
        "attacks_run": result.attacks_run,
        "quarantine_judged": dict(result.quarantine_judged),
        "people_judged": dict(result.people_judged),
        "erased_records_judged": result.erased_records_judged,
        "dag_seconds": {k: round(v, 1) for k, v in result.dag_seconds.items()},
        "days": [
            {
                "day": d.day.isoformat(),
                "seconds": round(d.seconds, 3),
                "personal_rows": d.personal_rows,
                "published_rows": d.published_rows,
                "checks": d.checks,
                "world": {k: v for k, v in vars(d.world).items() if k != "day"},
            }
            for d in result.days
        ],
    }


if __name__ == "__main__":
    raise SystemExit(main())

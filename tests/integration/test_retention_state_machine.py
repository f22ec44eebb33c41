"""Hypothesis state machine: whatever the order of data, holds, releases and clock moves,
no expired unheld row survives a sweep, and no unexpired row is ever deleted."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from retention_world import World

from ccg_pipeline.policy import load_notice
from ccg_pipeline.retention.sweep import sweep
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.integration
NOTICE = load_notice()
START = dt.date(2024, 1, 1)


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


class RetentionMachine(RuleBasedStateMachine):
    """The model: companies with a ceased date and web hits with a day, plus the set of held
    companies. Deadlines are computed here independently of the sweep's SQL."""

    @initialize()
    def setup(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="ccg-retention-sm-")
        self.world = World(f"sqlite:///{Path(self.folder.name) / 'main.db'}")
        self.today = START
        self.companies: dict[int, dict] = {}  # id -> {ceased, email, hold, deleted}
        self.hits: dict[dt.date, int] = {}
        self.runs = 0

    def teardown(self) -> None:
        self.world.engine.dispose()
        self.folder.cleanup()

    @rule(
        days_before=st.one_of(st.integers(0, 9 * 365), st.integers(5 * 365, 6 * 365 + 5)),
        active=st.booleans(),
    )
    def add_customer(self, days_before: int, active: bool) -> None:
        ceased = None if active else self.today - dt.timedelta(days=days_before)
        cid, email = self.world.customer(ceased)
        self.companies[cid] = {"ceased": ceased, "email": email, "hold": None, "deleted": False}

    @rule(offset=st.integers(-2, 2))
    def add_customer_at_the_line(self, offset: int) -> None:
        """A customer whose six years end `offset` days from today (the off-by-one zone)."""
        ceased = _years_later(self.today, -6) + dt.timedelta(days=offset)
        cid, email = self.world.customer(ceased)
        self.companies[cid] = {"ceased": ceased, "email": email, "hold": None, "deleted": False}

    @rule(
        days_before=st.lists(
            st.one_of(st.integers(0, 200), st.integers(88, 92)), min_size=1, max_size=5
        )
    )
    def add_web_hits(self, days_before: list[int]) -> None:
        days = [self.today - dt.timedelta(days=d) for d in days_before]
        self.world.web_hits(days)
        for day in days:
            self.hits[day] = self.hits.get(day, 0) + 1

    @rule(data=st.data())
    def hold_a_company(self, data: st.DataObject) -> None:
        candidates = [
            c for c, v in self.companies.items() if not v["deleted"] and v["hold"] is None
        ]
        if candidates:
            cid = data.draw(st.sampled_from(candidates))
            self.companies[cid]["hold"] = self.world.hold(self.companies[cid]["email"])

    @rule(data=st.data())
    def release_a_hold(self, data: st.DataObject) -> None:
        candidates = [c for c, v in self.companies.items() if v["hold"] is not None]
        if candidates:
            cid = data.draw(st.sampled_from(candidates))
            # Released during the day before the clock's current day: no longer in force.
            self.world.release(
                self.companies[cid]["hold"],
                at=dt.datetime.combine(self.today, dt.time()) - dt.timedelta(hours=1),
            )
            self.companies[cid]["hold"] = None

    @rule(days=st.one_of(st.integers(1, 3), st.integers(1, 900)))
    def clock_moves_on(self, days: int) -> None:
        self.today += dt.timedelta(days=days)

    @rule()
    def run_sweep(self) -> None:
        self.runs += 1
        sweep(self.world.engine, NOTICE, self.today, f"run-{self.runs}", chunk_rows=3)
        for company in self.companies.values():
            due = company["ceased"] is not None and _years_later(company["ceased"], 6) <= self.today
            if due and company["hold"] is None:
                company["deleted"] = True
        self.hits = {
            day: n for day, n in self.hits.items() if day + dt.timedelta(days=90) > self.today
        }

    @invariant()
    def database_matches_the_model(self) -> None:
        if not hasattr(self, "world"):
            return
        present = self.world.ids(s.companies)
        assert present == {c for c, v in self.companies.items() if not v["deleted"]}, "companies"
        assert self.world.ids(s.invoices) == present, "tax records follow their company"
        logged = self.world.scalar("SELECT count(*) FROM personal.web_access")
        assert logged == sum(self.hits.values()), "web hits"


RetentionMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_retention_state_machine = RetentionMachine.TestCase

"""The quick soak profile: 60 simulated days of an evolving world through the real DAGs, with
invariants checked every day against the world's truth (`ccg_pipeline/devtools/soak.py`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccg_pipeline.devtools.soak import Soak, Violation, quick_profile
from ccg_pipeline.retention import deadlines

pytestmark = pytest.mark.integration


@pytest.fixture
def soak_home(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The soak points the pipeline's settings at its own folders; restored after the test.
    for name in ("CCG_WAREHOUSE_URL", "CCG_SOURCE_DIR", "CCG_HOME"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("CCG_TASK_RETRIES", "0")
    return tmp_path


def test_quick_profile_keeps_every_promise_for_sixty_days(soak_home: Path) -> None:
    profile = quick_profile()
    soak = Soak(profile, f"sqlite:///{soak_home / 'warehouse' / 'main.db'}", soak_home)
    result = soak.run()

    assert len(result.days) == profile.days == 60
    # The soak judged something on each promise: deadlines fell due inside it, customers came
    # back, requests were answered, faults were injected and recovered, bad files refused.
    assert len(result.deadlines_in_soak) >= 5
    assert sum(day.world.returned for day in result.days) >= 2
    assert soak.returned_after_deletion  # one came back after its old rows had gone
    assert result.requests_answered >= 5
    assert result.fault_runs_recovered == len(profile.dag_faults) == 2
    assert result.refused_runs == 2
    assert result.days[-1].published_rows > 0
    assert result.attacks_run > 0  # the disclosure attacks had counts and profiles to work on
    # The malformed row of day 4 was judged held in quarantine, then gone after its 30 days.
    assert result.quarantine_judged["held"] > 0 and result.quarantine_judged["gone"] > 0
    # The people rules judged someone due, the scripted cases included.
    assert set(result.people_judged) == {
        "profile_after_closure",
        "marketing_after_opt_out",
        "prospect_inactive",
    }
    assert all(result.people_judged.values())


@pytest.mark.parametrize(
    ("unit", "day", "detail"),
    [
        # With this seed the first customer deadline inside the soak falls on its fourth day.
        pytest.param("years", 3, "six-year deadline", id="six-year-rule"),
        # The world closed an account so that its three months end on day 6.
        pytest.param("months", 6, "profile_after_closure", id="profile-after-closure"),
    ],
)
def test_a_period_one_day_late_is_caught_on_the_day_it_affects(
    soak_home: Path, monkeypatch: pytest.MonkeyPatch, unit: str, day: int, detail: str
) -> None:
    """A planted bug: periods counted in `unit` end one day late in the pipeline's own date
    arithmetic (its sweep and its evidence both use it). The soak's oracles do their own, from
    the world's truth, and must stop on the first day a row is held too long."""
    original = deadlines.add_period

    def one_day_late(start: dt.date, period) -> dt.date:  # type: ignore[no-untyped-def]
        shifted = original(start, period)
        return shifted + dt.timedelta(days=1) if getattr(period, unit) else shifted

    monkeypatch.setattr(deadlines, "add_period", one_day_late)
    profile = quick_profile()
    soak = Soak(profile, f"sqlite:///{soak_home / 'warehouse' / 'main.db'}", soak_home)

    with pytest.raises(Violation) as caught:
        soak.run(days=day + 2)

    assert caught.value.clause == "N-RET", str(caught.value)
    assert caught.value.day == profile.world.start + dt.timedelta(days=day)
    assert detail in caught.value.detail


def test_an_address_in_a_task_log_is_caught_the_same_day(
    soak_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted leak: a task logs a customer's address. The scan must see it in the day's task
    log (the check is not one that cannot fail)."""
    import logging

    from ccg_pipeline import dag_support

    profile = quick_profile()
    soak = Soak(profile, f"sqlite:///{soak_home / 'warehouse' / 'main.db'}", soak_home)
    address = sorted(soak.world.emails())[0]
    settings_of = dag_support.task_settings

    def leaky_settings():  # type: ignore[no-untyped-def]
        logging.getLogger("ccg_pipeline.ingest").info("loading for %s", address)
        return settings_of()

    monkeypatch.setattr(dag_support, "task_settings", leaky_settings)
    with pytest.raises(Violation) as caught:
        soak.run(days=1)

    assert caught.value.clause == "N-SEC", str(caught.value)
    assert caught.value.day == profile.world.start
    assert "task logs" in caught.value.detail
    assert address not in str(caught.value)


def test_an_unperturbed_release_waved_through_the_gate_is_caught_by_the_attacker(
    soak_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted disclosure bug: the statistics are built with the noise off and the validation
    gate is bypassed, so the release goes out. The soak's attacker (devtools.attacks, which
    knows only the notice's published method) must find counts pinned down on the first
    release."""
    from ccg_pipeline import publication
    from ccg_pipeline import statistics as statistics_zone
    from ccg_pipeline.policy import load_notice
    from ccg_pipeline.policy.models import Perturbation
    from ccg_pipeline.validation import gate
    from ccg_pipeline.warehouse import schema

    notice = load_notice()
    exact = Perturbation(max_count_noise=0, sum_noise_scale=0.0)
    unsafe = notice.model_copy(
        update={"settings": notice.settings.model_copy(update={"perturbation": exact})}
    )

    def waved_through(engine: sa.Engine, run_id: str, home: Path) -> gate.GateReport:
        with engine.begin() as conn:  # every staged table recorded as passed, nothing checked
            r = schema.statistics_reports
            conn.execute(sa.update(r).where(r.c.run_id == run_id).values(passed=True))
        return gate.GateReport(run_id)

    monkeypatch.setattr(statistics_zone, "load_notice", lambda: unsafe)
    monkeypatch.setattr(publication, "validate_staging", waved_through)
    profile = quick_profile()
    soak = Soak(profile, f"sqlite:///{soak_home / 'warehouse' / 'main.db'}", soak_home)

    with pytest.raises(Violation) as caught:
        soak.run(days=2)

    assert caught.value.clause == "N-AGG", str(caught.value)
    assert caught.value.day == profile.world.start  # the first release
    assert "narrower than" in caught.value.detail

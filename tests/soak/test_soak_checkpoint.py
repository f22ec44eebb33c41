"""A soak stopped part-way resumes from its last checkpoint and judges the same days the same
way as one that never stopped (`ccg_pipeline/devtools/soak_checkpoint.py`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccg_pipeline.devtools import soak_checkpoint
from ccg_pipeline.devtools.postgres import PostgresUnavailable, start_server
from ccg_pipeline.devtools.soak import Soak, SoakResult, quick_profile, recorded_arguments

pytestmark = pytest.mark.integration

DAYS = 6  # the quick profile's first days: a malformed row (day 3), deadlines (days 3 and 5)


class Stopped(Exception):
    """The machine went away (a session ended, a restart)."""


@pytest.fixture
def soak_env(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CCG_WAREHOUSE_URL", "CCG_SOURCE_DIR", "CCG_HOME"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("CCG_TASK_RETRIES", "0")


def _figures(result: SoakResult) -> list[tuple]:
    return [
        (d.day, d.personal_rows, d.published_rows, d.checks, vars(d.world)) for d in result.days
    ]


def test_a_soak_stopped_after_its_checkpoint_resumes_and_judges_the_same_days(
    soak_env: None, tmp_path: Path
) -> None:
    profile = quick_profile()
    unbroken_home = tmp_path / "unbroken"
    unbroken = Soak(profile, f"sqlite:///{unbroken_home / 'warehouse' / 'main.db'}", unbroken_home)
    expected = unbroken.run(days=DAYS)

    work = tmp_path / "work"
    home = soak_checkpoint.home_of(work)
    checkpoints = soak_checkpoint.Checkpoints(work, 0, "sqlite", ["--profile", "quick"])

    def checkpoint_then_stop(soak: Soak) -> None:
        # Checkpoints after days 0-2; day 3 runs (its DAG runs write the warehouse and the
        # Airflow records, and quarantine the malformed row) and the machine goes away before
        # its checkpoint.
        if soak.next_index == 4:
            raise Stopped
        checkpoints(soak)

    first = Soak(profile, f"sqlite:///{home / 'warehouse' / 'main.db'}", home)
    with pytest.raises(Stopped):
        first.run(days=DAYS, after_day=checkpoint_then_stop)
    assert checkpoints.written == 3

    saved, pg_data = soak_checkpoint.restore(work)
    assert pg_data is None and saved.backend == "sqlite"
    resumed = saved.soak
    assert resumed.next_index == 3 and len(resumed.result.days) == 3
    resumed.attach(f"sqlite:///{home / 'warehouse' / 'main.db'}")
    result = resumed.run(days=DAYS)

    assert _figures(result) == _figures(expected)
    assert result.checks_passed == expected.checks_passed > 0
    assert result.seconds >= saved.soak.result.seconds


def test_no_checkpoint_means_nothing_to_resume(tmp_path: Path) -> None:
    assert soak_checkpoint.latest(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="no soak checkpoint"):
        soak_checkpoint.restore(tmp_path)


def test_a_half_written_checkpoint_is_never_the_one_resumed(tmp_path: Path) -> None:
    """A checkpoint is only in place once whole: one interrupted while being written (its
    folder still `checkpoint.tmp`) is ignored, and the one it was replacing is used."""
    complete = tmp_path / "checkpoint.old"
    (complete / "home").mkdir(parents=True)
    (complete / soak_checkpoint.STATE_FILE).write_bytes(b"state")
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / soak_checkpoint.STATE_FILE).write_bytes(b"half")

    assert soak_checkpoint.latest(tmp_path) == complete


def test_a_saved_postgresql_data_directory_starts_a_server_with_the_same_rows(
    tmp_path: Path,
) -> None:
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL is part of the suite: {exc}")
    saved = tmp_path / "pg"
    try:
        engine = sa.create_engine(server.create_database("soak"))
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (n integer)"))
            conn.execute(sa.text("INSERT INTO kept VALUES (1), (2), (3)"))
        engine.dispose()
        server.pause()
        shutil.copytree(server.data_dir / "data", saved, symlinks=True)
        server.resume()
        with sa.create_engine(server.url("soak")).begin() as conn:
            conn.execute(sa.text("INSERT INTO kept VALUES (4)"))  # after the copy: not in it
    finally:
        server.stop()

    copy = start_server(data_from=saved)
    try:
        engine = sa.create_engine(copy.url("soak"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT sum(n) FROM kept")).scalar_one() == 6
        engine.dispose()
    finally:
        copy.stop()
    assert saved.is_dir()  # the saved data stays for another resume


def test_the_recorded_command_leaves_out_local_folders() -> None:
    argv = ["--profile", "years", "--work", "/x/w", "--out=/x/o", "--fresh", "--backend", "sqlite"]
    assert recorded_arguments(argv) == ["--profile", "years", "--backend", "sqlite"]


def test_a_copied_work_folder_is_refused_instead_of_writing_into_the_original(
    tmp_path: Path,
) -> None:
    """The soak and its world hold the home's absolute path: a copy of a --work folder resumed
    in another place would run the original's files (and, beside it, break the original soak).
    It is refused by name, and the original's files are untouched."""
    from ccg_pipeline.devtools import soak as soak_module

    work = tmp_path / "work"
    home = soak_checkpoint.home_of(work)
    soak = Soak(quick_profile(), f"sqlite:///{home / 'warehouse' / 'main.db'}", home)
    home.mkdir(parents=True, exist_ok=True)
    soak_checkpoint.Checkpoints(work, 0, "sqlite", ["--profile", "quick"])(soak)
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)
    before = sorted(p.relative_to(work) for p in work.rglob("*"))

    with pytest.raises(SystemExit, match=r"taken with --work .*work; resume it there"):
        soak_module.main(["--profile", "quick", "--work", str(copy), "--out", str(tmp_path)])
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before

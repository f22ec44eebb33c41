"""Shared fixtures: an isolated Airflow home, generated sources, and warehouses on SQLite and on
a real PostgreSQL server started for the session."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SHARED = ROOT.parent / "shared"

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ccg-airflow-home-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__UNIT_TEST_MODE="False",
)
for name in [k for k in os.environ if k.startswith("CCG_")]:
    del os.environ[name]
# The DAGs' default args are read once, when dag_support is first imported; whichever test does
# that first, a failing task in a test run fails at once instead of waiting out its retries.
os.environ["CCG_TASK_RETRIES"] = "0"

from ccg_pipeline.devtools.postgres import PostgresUnavailable, start_server  # noqa: E402

# Every test is marked by the folder it lives in, so `-m unit` and the other selections never
# skip a module that forgot its `pytestmark`.
FOLDER_MARKERS = ("unit", "dags", "integration", "expectations", "deployment", "soak")


# The folders of the longest tests (minutes each): collected first, so that with two test
# processes (`make test`) they start at once, beside the rest, instead of last, side by side.
LONG_FIRST = ("soak", "deployment")


def _folder(item: pytest.Item) -> str:
    tests = Path(__file__).parent
    return item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _folder(item) in FOLDER_MARKERS:
            item.add_marker(_folder(item))
    # Stable: the order within each group is kept.
    items.sort(key=lambda item: LONG_FIRST.index(f) if (f := _folder(item)) in LONG_FIRST else 9)


AS_OF = dt.date(2026, 11, 23)
RUN_DATE = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)  # the run whose interval ends after AS_OF


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite) in the isolated AIRFLOW_HOME."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=600,
    )
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small generated sources, shared read-only by the tests (copy before changing)."""
    from ccg_pipeline.devtools.generate import GenerateOptions, generate

    out = tmp_path_factory.mktemp("sources")
    generate(
        GenerateOptions(
            out=out,
            seed=7,
            as_of=AS_OF,
            companies=60,
            prospects=40,
            log_days=2,
            log_lines_per_day=400,
        )
    )
    return out


@pytest.fixture(scope="session")
def pg_server() -> Iterator:
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


def _fresh_pg_database(server) -> str:
    return server.create_database(f"wh_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty warehouse on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}"
    return _fresh_pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def another_warehouse_url(
    request: pytest.FixtureRequest, warehouse_url: str, tmp_path: Path
) -> str:
    """A second fresh warehouse on the same backend as `warehouse_url` (for side-by-side runs)."""
    if warehouse_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'warehouse-2' / 'main.db'}"
    return _fresh_pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def settings_for(tmp_path: Path):
    """Build Settings for a warehouse URL and a sources folder."""
    from ccg_pipeline.config import Settings

    def build(warehouse_url: str, sources: Path) -> Settings:
        return Settings.from_env(
            {
                "CCG_HOME": str(tmp_path / "home"),
                "CCG_SOURCE_DIR": str(sources),
                "CCG_WAREHOUSE_URL": warehouse_url,
            }
        )

    return build

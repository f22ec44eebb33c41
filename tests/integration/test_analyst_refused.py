"""The analyst cannot read the personal or ops zones, table by table: on PostgreSQL the
`ccg_analyst` role holds no privilege on any table of personal, ops or staging; on SQLite
another operating-system user cannot open the zone files an analyst's copy was made from."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine
from ccg_pipeline.warehouse.roles import ANALYST_ROLE

pytestmark = pytest.mark.integration
CLOSED = (s.PERSONAL, s.STAGING, s.OPS)


@pytest.mark.postgres
def test_the_analyst_role_has_no_privilege_on_any_personal_staging_or_ops_table(pg_server) -> None:
    engine = create_warehouse_engine(pg_server.create_database("analyst_tables"))
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            from ccg_pipeline.warehouse.roles import ensure_analyst_role

            assert ensure_analyst_role(conn)
        with engine.connect() as conn:
            tables = [t for t in s.metadata.sorted_tables if t.schema in CLOSED]
            assert len(tables) > 25
            for table in tables:
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                    granted = conn.execute(
                        sa.text("SELECT has_table_privilege(:r, :t, :p)"),
                        {"r": ANALYST_ROLE, "t": table.fullname, "p": privilege},
                    ).scalar_one()
                    assert not granted, f"{ANALYST_ROLE} may {privilege} {table.fullname}"
            for zone in CLOSED:
                usage = conn.execute(
                    sa.text("SELECT has_schema_privilege(:r, :z, 'USAGE')"),
                    {"r": ANALYST_ROLE, "z": zone},
                ).scalar_one()
                assert not usage, f"{ANALYST_ROLE} may use schema {zone}"
            published = conn.execute(
                sa.text("SELECT has_table_privilege(:r, 'statistics.customer_profiles', 'SELECT')"),
                {"r": ANALYST_ROLE},
            ).scalar_one()
            assert published, "the analyst reads the statistics zone"
    finally:
        engine.dispose()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="needs root to act as another operating-system user",
)
def test_another_user_cannot_open_the_sqlite_personal_or_ops_zone() -> None:
    # A folder every user may enter (pytest's own temporary folders are closed to others, which
    # would make the test pass for the wrong reason).
    folder = Path(tempfile.mkdtemp(prefix="ccg-zones-"))
    try:
        folder.chmod(0o755)
        engine = create_warehouse_engine(f"sqlite:///{folder / 'main.db'}")
        migrate.upgrade(engine)
        engine.dispose()
        control = folder / "control.txt"
        control.write_text("readable by all\n")
        control.chmod(0o644)

        def read_as_nobody(path: Path) -> subprocess.CompletedProcess:
            command = ["runuser", "-u", "nobody", "--", "head", "-c", "16", str(path)]
            return subprocess.run(command, capture_output=True, text=True)

        assert read_as_nobody(control).returncode == 0, "the probe itself works"
        for zone in (s.PERSONAL, s.OPS):
            path = folder / f"{zone}.db"
            assert path.stat().st_mode & 0o077 == 0, f"{zone}.db is readable beyond its owner"
            refused = read_as_nobody(path)
            assert refused.returncode != 0 and "Permission denied" in refused.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Analyst access (N-AGG): on PostgreSQL a read-only role that sees the statistics schema and
nothing else; on SQLite the statistics zone is its own file, which is what an analyst receives.
Part of the warehouse layer: migration 0004 and the statistics build both set the role up.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.warehouse.schema import OPS, PERSONAL, STAGING, STATISTICS

log = logging.getLogger(__name__)

ANALYST_ROLE = "ccg_analyst"

_GRANTS = f"""
GRANT USAGE ON SCHEMA {STATISTICS} TO {ANALYST_ROLE};
GRANT SELECT ON ALL TABLES IN SCHEMA {STATISTICS} TO {ANALYST_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA {STATISTICS} GRANT SELECT ON TABLES TO {ANALYST_ROLE};
REVOKE ALL ON SCHEMA {PERSONAL}, {STAGING}, {OPS} FROM PUBLIC;
REVOKE ALL ON SCHEMA {PERSONAL}, {STAGING}, {OPS} FROM {ANALYST_ROLE};
"""


def analyst_role_sql() -> str:
    """The SQL that sets the role up, for a DBA to run when the pipeline's user may not."""
    create = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ANALYST_ROLE}') "
        f"THEN CREATE ROLE {ANALYST_ROLE} NOLOGIN; END IF; END $$;"
    )
    return create + "\n" + _GRANTS.strip()


def ensure_analyst_role(conn: Connection) -> bool:
    """PostgreSQL (through `backend_of(conn).set_up_analyst_access`): create the `ccg_analyst`
    role if missing and grant it SELECT on statistics only.

    Idempotent. Runs in a savepoint: a pipeline user without CREATEROLE gets a warning naming the
    SQL to hand to a DBA (`ccg statistics role-sql`), not a failed migration. Returns whether it ran.
    """
    try:
        with conn.begin_nested():
            for statement in analyst_role_sql().split(";\n"):
                conn.execute(sa.text(statement))
    except sa.exc.ProgrammingError as exc:  # insufficient privilege
        log.warning(
            "could not set up role %s (%s); run `ccg statistics role-sql` as a DBA",
            ANALYST_ROLE,
            type(exc.orig).__name__,
        )
        return False
    return True

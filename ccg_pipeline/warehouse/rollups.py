"""Roll-ups written when raw data is loaded, so retention can later delete raw rows in one pass.

Web-log lines are counted per log file, day, site section, status class, browser family and visitor region into
`staging.anon_web_traffic`. A file's roll-up is replaced from its raw rows whenever the file is
(re)loaded, and the retention sweep only deletes lines of files that have one, so the statistical
value of every line is kept exactly once (N-ANON).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.sql import day_label, insert_for


def _web_counts(conn: Connection, where: sa.ColumnElement[bool]) -> sa.Select:
    w = s.web_access
    day = day_label(w.c.requested_at)
    status_class = sa.cast(w.c.status // 100, sa.Text) + "xx"
    return (
        sa.select(
            w.c.source_file,
            day.label("day"),
            w.c.site_section,
            status_class.label("status_class"),
            w.c.browser_family,
            w.c.visitor_region.label("region"),
            sa.func.count().label("requests"),
        )
        .where(where)
        .group_by(
            w.c.source_file,
            day,
            w.c.site_section,
            status_class,
            w.c.browser_family,
            w.c.visitor_region,
        )
    )


def roll_up_web_file(conn: Connection, source_file: str) -> None:
    """Replace one file's roll-up from its raw lines (call after loading the file)."""
    anon = s.anon_web_traffic
    conn.execute(sa.delete(anon).where(anon.c.source_file == source_file))
    rows = _web_counts(conn, s.web_access.c.source_file == source_file)
    conn.execute(insert_for(conn, anon).from_select([c.name for c in rows.selected_columns], rows))


# The distinct log files, found by hopping along the primary key (file name first) instead of
# reading every line: one index probe per file, on SQLite and PostgreSQL alike.
_FILES_WITHOUT_ROLL_UP = sa.text(
    """
    WITH RECURSIVE files(name) AS (
        SELECT min(source_file) FROM personal.web_access
        UNION ALL
        SELECT (SELECT min(w.source_file) FROM personal.web_access w WHERE w.source_file > files.name)
        FROM files WHERE files.name IS NOT NULL
    )
    SELECT name FROM files
    WHERE name IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM staging.anon_web_traffic a WHERE a.source_file = files.name)
    """
).execution_options(personal_columns_read=("personal.web_access.source_file",))


def roll_up_missing_web_files(conn: Connection) -> list[str]:
    """Roll up every file that has raw lines but no roll-up (loaded before roll-ups existed, or
    written by something other than the ingest). Returns the files it rolled up."""
    missing = [name for (name,) in conn.execute(_FILES_WITHOUT_ROLL_UP)]
    for name in missing:
        roll_up_web_file(conn, name)
    return missing

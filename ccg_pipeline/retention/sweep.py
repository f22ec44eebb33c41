"""The retention sweep: anonymise, then delete, in short set-based transactions, with evidence.

For every target (rule x table) the sweep repeats one transaction per chunk of expired, unheld
rows: write the chunk's statistical value to staging; delete (or null) the chunk; add the count
to the run's audit row. Chunks advance along the table's key (or the event-time index), each
starting after the previous one; on PostgreSQL, event-time targets are cut into ranges of heap
pages instead, read in physical order as one bulk DELETE would read them. Anonymising and
deleting a chunk commit together, so a crash between chunks loses nothing and double-counts
nothing: the rerun continues where the last commit stopped. Companies retired under the six-year
rule are listed once in a worklist before any of their rows go, so a sweep interrupted halfway
through a company's tables still finishes that company on rerun.

After the sweep, each target is checked again: any expired, unheld row still present fails the
run (`RetentionCheckFailed`) after the evidence is written to `ops.retention_checks`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.policy.models import Notice
from ccg_pipeline.purposes import NotAProcessing, purpose_of
from ccg_pipeline.retention.rules import (
    SweepDates,
    Target,
    ceased_company_ids,
    check_against_policy,
    company_keys,
    held_subject_ids,
    opted_out_subject_ids,
    retired_customer_subjects,
    targets,
)
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.rollups import roll_up_missing_web_files
from ccg_pipeline.warehouse.sql import IdQuery, add_into, audit, insert_for, upsert_row

log = logging.getLogger(__name__)

# Well under a second per transaction at the measured delete rates: short locks, few commits.
DEFAULT_CHUNK_ROWS = 250_000


class RetentionCheckFailed(RuntimeError):
    """Expired, unheld rows survived a sweep (the evidence is in ops.retention_checks)."""


@dataclass
class TargetOutcome:
    rule_id: str
    table: str
    due: int
    held: int
    anonymised: int = 0
    deleted: int = 0
    expired_unheld_remaining: int = 0

    @property
    def passed(self) -> bool:
        return self.expired_unheld_remaining == 0


def _count(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()


def _unheld(target: Target, dates: SweepDates) -> sa.ColumnElement[bool]:
    expired = target.expired(dates)
    return expired if target.held is None else sa.and_(expired, sa.not_(target.held(dates)))


def expired_unheld_query(target: Target, dates: SweepDates) -> sa.Select:
    """Count of the target's rows past their deadline and not held: what must be zero (N-RET)."""
    return sa.select(sa.func.count()).select_from(target.table).where(_unheld(target, dates))


def _tally(conn: Connection, target: Target, dates: SweepDates) -> tuple[int, int, int]:
    """(expired, of those held, of those not held) in one pass over the expired rows; a sweep
    plan took three passes before."""
    expired = target.expired(dates)
    if target.held is None:
        due = _count(conn, target.table, expired)
        return due, 0, due
    held = target.held(dates)
    statement = (
        sa.select(
            sa.func.count(),
            sa.func.count().filter(held),
            sa.func.count().filter(sa.not_(held)),
        )
        .select_from(target.table)
        .where(expired)
    )
    due, held_rows, unheld_rows = conn.execute(statement).one()
    return due, held_rows, unheld_rows


def plan(
    engine: Engine, notice: Notice, as_of: dt.date, *, align_to_year_end: bool | None = None
) -> list[TargetOutcome]:
    """What a sweep as of `as_of` would do, per rule and table, as counts. Changes nothing."""
    dates = SweepDates.for_date(
        notice, as_of, use_worklist=False, align_to_year_end=align_to_year_end
    )
    outcomes = []
    with engine.connect() as conn:
        for target in targets():
            due, held, would = _tally(conn, target, dates)
            outcomes.append(
                TargetOutcome(
                    target.rule_id,
                    target.name,
                    due,
                    held,
                    anonymised=would if target.anonymise_into is not None else 0,
                    deleted=would,
                    expired_unheld_remaining=would,
                )
            )
    return outcomes


def _add_to_worklist(
    conn: Connection, rule_id: str, entity: str, ids: IdQuery, run_id: str
) -> None:
    """List entity ids (one-column select) for a rule; ids already listed keep their entry."""
    w = s.retention_worklist
    listed = ids.subquery()
    stmt = insert_for(conn, w).from_select(
        ["rule_id", "entity", "entity_id", "run_id"],
        sa.select(
            sa.literal(rule_id), sa.literal(entity), next(iter(listed.c)), sa.literal(run_id)
        ).where(sa.true()),
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["rule_id", "entity", "entity_id"]))


def _prepare(conn: Connection, dates: SweepDates, run_id: str) -> None:
    """Before any row goes: list retiring companies, and suppress opted-out people for good."""
    _add_to_worklist(conn, "customer_basic", "company", ceased_company_ids(dates), run_id)
    # The next queries join the companies just listed: without fresh statistics PostgreSQL
    # takes the worklist for empty and rescans it per row (54 s at S on a new warehouse).
    backend_of(conn).analyze(conn, "personal.retention_worklist")
    # Their people, while the portal rows still show who they are: once those are deleted, only
    # this entry says that a CRM record is a former customer's.
    _add_to_worklist(conn, "customer_basic", "subject", retired_customer_subjects(dates), run_id)
    _add_to_worklist(
        conn, "marketing_after_opt_out", "subject", opted_out_subject_ids(dates), run_id
    )
    subj = s.subjects
    suppress = insert_for(conn, s.marketing_suppression).from_select(
        ["subject_key", "reason", "suppressed_at"],
        sa.select(
            subj.c.subject_key,
            sa.literal("marketing_after_opt_out"),
            sa.literal(dt.datetime.combine(dates.as_of, dt.time()), sa.DateTime()),
        ).where(
            subj.c.subject_id.in_(opted_out_subject_ids(dates)),
            subj.c.subject_id.not_in(held_subject_ids(dates)),
        ),
    )
    conn.execute(suppress.on_conflict_do_nothing(index_elements=["subject_key"]))
    roll_up_missing_web_files(conn)
    # Fresh planner statistics for the chunk queries that join the worklist.
    backend_of(conn).analyze(conn, "personal.retention_worklist")


def _key_chunks(
    engine: Engine, keys: list[sa.Column], unheld: sa.ColumnElement[bool], chunk_rows: int
) -> Iterator[sa.ColumnElement[bool]]:
    """Chunks of `chunk_rows` expired rows along `keys`. Each chunk starts after the previous
    boundary, so no scan passes over rows already handled (or their dead versions)."""
    done_up_to = None
    while True:
        rest = (
            unheld
            if done_up_to is None
            else sa.and_(unheld, sa.tuple_(*keys) > sa.tuple_(*done_up_to))
        )
        with engine.connect() as conn:
            boundary = conn.execute(
                sa.select(*keys).where(rest).order_by(*keys).offset(chunk_rows - 1).limit(1)
            ).first()
        if boundary is None:
            yield rest
            return
        yield sa.and_(rest, sa.tuple_(*keys) <= sa.tuple_(*boundary))
        done_up_to = tuple(boundary)


def _physical_chunks(
    engine: Engine, table: sa.Table, unheld: sa.ColumnElement[bool], chunk_rows: int
) -> Iterator[sa.ColumnElement[bool]]:
    """Chunks as ranges of the table's physical order: SQLite rowids, PostgreSQL heap pages (TID
    range scans). Every row is read once, in storage order, as one bulk DELETE would read them,
    instead of hopping through an index. The last range is open-ended, so rows stored past the
    end while sweeping are included."""
    with engine.connect() as conn:
        ranges = backend_of(engine).physical_ranges(
            conn, f"{table.schema}.{table.name}", chunk_rows
        )
    if ranges is None:  # empty table
        return
    start, step, position = ranges.low, ranges.step, ranges.position
    while start <= ranges.high:
        lower = position >= ranges.bound(start)
        yield (
            sa.and_(unheld, lower)
            if start + step > ranges.high
            else sa.and_(unheld, lower, position < ranges.bound(start + step))
        )
        start += step


def _retire_keys(
    conn: Connection, target: Target, chunk: sa.ColumnElement[bool], as_of: dt.date
) -> None:
    """Remember the keys of source rows about to go (or whose columns are about to be nulled,
    under `<table>#nulled`), so ingest does not bring the data back."""
    (key,) = target.table.primary_key.columns
    name = target.table.name if target.action == "delete" else f"{target.table.name}#nulled"
    rows = sa.select(
        sa.literal(name),
        sa.cast(key, sa.Text),
        sa.literal(target.rule_id),
        sa.literal(as_of, sa.Date()),
    ).where(chunk)
    stmt = insert_for(conn, s.retired_keys).from_select(
        ["table_name", "key", "rule_id", "retired_on"], rows
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["table_name", "key"]))


def _apply_chunk(
    conn: Connection, target: Target, chunk: sa.ColumnElement[bool], as_of: dt.date
) -> int:
    """Anonymise then delete (or null) one chunk, in the caller's transaction."""
    table = target.table
    if target.chunk_by is None:
        # Rows of source systems that keep them (portal, CRM); event logs are time-guarded at
        # ingest instead.
        _retire_keys(conn, target, chunk, as_of)
    if target.anonymiser is not None and backend_of(conn).deletes_into_anonymised:
        return _delete_and_anonymise_in_one_pass(conn, target, chunk)
    if target.action == "delete":
        if target.anonymiser is not None and target.anonymise_into is not None:
            add_into(conn, target.anonymise_into, target.anonymiser(table, chunk))
        return conn.execute(sa.delete(table).where(chunk)).rowcount
    return conn.execute(
        sa.update(table).where(chunk).values(dict.fromkeys(target.null_columns))
    ).rowcount


def _sweep_target(
    engine: Engine, target: Target, dates: SweepDates, run_id: str, chunk_rows: int
) -> int:
    """Anonymise-then-delete (or null) expired unheld rows chunk by chunk; returns rows affected.
    Each chunk is one transaction with its audit increment, so a crash loses nothing."""
    unheld = _unheld(target, dates)
    at = dt.datetime.combine(dates.as_of, dt.time())
    record: dict[str, Any] = {
        "run_id": run_id,
        "action": "retention",
        "rule_id": target.rule_id,
        "table_name": target.name,
        "at": at,
        "accumulate": True,
    }
    # One audit row per rule, table and run, even when nothing is due.
    with write_transaction(engine) as conn:
        audit(conn, row_count=0, **record)
    if target.chunk_by is not None:  # big, append-only event tables
        chunks = _physical_chunks(engine, target.table, unheld, chunk_rows)
    else:
        keys = (
            [target.chunk_by]
            if target.chunk_by is not None
            else list(target.table.primary_key.columns)
        )
        chunks = _key_chunks(engine, keys, unheld, chunk_rows)
    affected = 0
    for chunk in chunks:
        with write_transaction(engine) as conn:
            count = _apply_chunk(conn, target, chunk, dates.as_of)
            audit(conn, row_count=count, **record)
        affected += count
    return affected


def _delete_and_anonymise_in_one_pass(
    conn: Connection, target: Target, chunk: sa.ColumnElement[bool]
) -> int:
    """PostgreSQL: `WITH gone AS (DELETE ... RETURNING *) INSERT INTO anon SELECT ... FROM gone`,
    so the expired rows are read once, and anonymised exactly as they are deleted."""
    assert target.anonymiser is not None and target.anonymise_into is not None
    gone = sa.delete(target.table).where(chunk).returning(*target.table.c).cte("gone")
    rows = target.anonymiser(gone, sa.true())
    anon = target.anonymise_into
    keys = [c.name for c in anon.primary_key.columns]
    columns = [c.name for c in rows.selected_columns]
    insert = insert_for(conn, anon).from_select(columns, rows)
    insert = (
        insert.on_conflict_do_update(
            index_elements=keys,
            set_={c: anon.c[c] + insert.excluded[c] for c in columns if c not in keys},
        )
        .returning(sa.literal(1))
        .cte("stored")
    )
    counted = sa.select(
        sa.select(sa.func.count()).select_from(gone).scalar_subquery(),
        sa.select(sa.func.count()).select_from(insert).scalar_subquery(),
    )
    return int(conn.execute(counted).one()[0])


def _finish(conn: Connection, dates: SweepDates) -> int:
    """Drop finished companies from the worklist and subjects no table refers to any more."""
    w = s.retention_worklist
    # Listed companies no table holds any more, as one set difference: correlated with each
    # worklist entry, SQLite rebuilt the union of every company-keyed table once per entry
    # (5 s at 2,000 companies), and PostgreSQL may rescan a large NOT IN list per row.
    keys = company_keys().subquery("company_keys")
    companies = [w.c.rule_id == "customer_basic", w.c.entity == "company"]
    gone = (
        sa.select(w.c.entity_id)
        .where(*companies)
        .except_(sa.select(keys.c.company_id))
        .subquery("gone")
    )
    conn.execute(sa.delete(w).where(*companies, w.c.entity_id.in_(sa.select(gone.c.entity_id))))
    # Opted-out subjects are re-derived each run (a held one keeps its opt-out events until then).
    conn.execute(sa.delete(w).where(w.c.rule_id == "marketing_after_opt_out"))
    subj = s.subjects
    referenced = [
        ~sa.exists().where(table.c.subject_id == subj.c.subject_id)
        for table in (s.portal_users, s.crm_contacts, s.crm_activities, s.auth_events)
    ]
    held = held_subject_ids(dates).subquery()
    orphans = conn.execute(
        sa.delete(subj).where(
            *referenced, ~sa.exists().where(held.c.subject_id == subj.c.subject_id)
        )
    ).rowcount
    # A former customer is remembered while any row of theirs is left.
    conn.execute(
        sa.delete(w).where(
            w.c.rule_id == "customer_basic",
            w.c.entity == "subject",
            ~sa.exists().where(subj.c.subject_id == w.c.entity_id),
        )
    )
    return orphans


def sweep(
    engine: Engine,
    notice: Notice,
    as_of: dt.date,
    run_id: str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    align_to_year_end: bool | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[TargetOutcome]:
    """Run every retention rule as of `as_of`. Raises RetentionCheckFailed if rows survive.

    `progress(done, total, table)`, if given, is called before each target with the number of
    targets done and the table it starts on, and once at the end with `table` empty."""
    check_against_policy(notice)
    dates = SweepDates.for_date(
        notice, as_of, use_worklist=True, align_to_year_end=align_to_year_end
    )
    with write_transaction(engine) as conn:
        _prepare(conn, dates, run_id)
    outcomes: list[TargetOutcome] = []
    todo = targets()
    for done, target in enumerate(todo):
        if progress is not None:
            progress(done, len(todo), target.name)
        affected = _sweep_target(engine, target, dates, run_id, chunk_rows)
        with engine.connect() as conn:
            # Counted after the sweep (held rows stay), which saves a full pass before it.
            _, held, remaining = _tally(conn, target, dates)
        outcome = TargetOutcome(
            target.rule_id,
            target.name,
            affected + held + remaining,
            held,
            anonymised=affected if target.anonymise_into is not None else 0,
            deleted=affected,
            expired_unheld_remaining=remaining,
        )
        log.info("retention %s on %s: %s", target.rule_id, target.name, asdict(outcome))
        outcomes.append(outcome)
    if progress is not None:
        progress(len(todo), len(todo), "")
    with engine.connect() as conn:
        # A retried run reports what all its attempts deleted, as its audit rows do.
        ledger = s.audit_ledger
        totals = {
            (rule, table): count
            for rule, table, count in conn.execute(
                sa.select(ledger.c.rule_id, ledger.c.table_name, ledger.c.row_count).where(
                    ledger.c.run_id == run_id, ledger.c.action == "retention"
                )
            )
        }
    anonymising = {(t.rule_id, t.name) for t in targets() if t.anonymise_into is not None}
    for outcome in outcomes:
        total = totals.get((outcome.rule_id, outcome.table), outcome.deleted)
        if (outcome.rule_id, outcome.table) in anonymising:  # a retry may have anonymised none
            outcome.anonymised = total
        outcome.due += total - outcome.deleted
        outcome.deleted = total
    with write_transaction(engine) as conn:
        orphans = _finish(conn, dates)
        audit(
            conn,
            run_id=run_id,
            action="retention",
            rule_id="orphaned_subjects",
            table_name="personal.subjects",
            row_count=orphans,
            at=dt.datetime.combine(as_of, dt.time()),
            accumulate=True,  # a retried run finds none left: it adds 0 to what it deleted
        )
        _record_checks(conn, run_id, as_of, outcomes)
    backend_of(engine).checkpoint(engine)
    failed = [o for o in outcomes if not o.passed]
    if failed:
        detail = ", ".join(f"{o.rule_id}/{o.table}: {o.expired_unheld_remaining}" for o in failed)
        raise RetentionCheckFailed(f"expired unheld rows remain after the sweep: {detail}")
    return outcomes


def _record_checks(
    conn: Connection, run_id: str, as_of: dt.date, outcomes: list[TargetOutcome]
) -> None:
    for o in outcomes:
        row = {
            "run_id": run_id,
            "rule_id": o.rule_id,
            "table_name": o.table,
            "as_of": as_of,
            "due": o.due,
            "held": o.held,
            "anonymised": o.anonymised,
            "deleted": o.deleted,
            "expired_unheld_remaining": o.expired_unheld_remaining,
            "passed": o.passed,
        }
        upsert_row(conn, s.retention_checks, row)


@purpose_of(NotAProcessing("reclaims the space of deleted rows; reads no row"))
def vacuum_personal_zone(engine: Engine, *, rewrite: bool = False) -> list[str]:
    """Make deleted personal data leave the database files, not only the tables.

    PostgreSQL: `VACUUM (ANALYZE)` the tables retention deletes from, so dead row versions
    become free space promptly instead of whenever autovacuum gets there. Free space is reused,
    not wiped: a deleted row's bytes stay in its page until a new row overwrites them. With
    `rewrite`, `VACUUM (FULL, ANALYZE)` writes every personal-zone table and its indexes anew
    from the live rows and drops the old files, so no deleted row is left in them; then
    `pg_statistic` too, whose dead rows keep the sampled column values (most common values,
    histogram bounds) of earlier ANALYZE runs. That needs the catalogue's owner: any other user
    gets a warning from PostgreSQL, and the rest still runs.

    SQLite: secure_delete zeroes what a DELETE frees, and the sweep checkpoints the WAL; but
    copies of rows that B-tree rebalancing moved to another page earlier stay in the old page's
    unused space. With `rewrite`, `VACUUM` rebuilds the personal zone's file from its live rows,
    and the WAL is checkpointed and truncated."""
    if rewrite:
        names = sorted(t.name for t in s.metadata.sorted_tables if t.schema == s.PERSONAL)
    else:
        names = sorted({t.table.name for t in targets()} | {"subjects"})
    return backend_of(engine).reclaim_space(engine, s.PERSONAL, names, rewrite=rewrite)

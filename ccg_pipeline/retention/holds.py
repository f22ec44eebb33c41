"""Legal holds: set by a restriction request or an operator, they block deletion and exclude the
subject from every processing step except storage (N-RIGHTS restriction, N-RET).

Holds live in ops and name the subject only by keyed pseudonym, so a hold can be placed before
the person's data arrives, and ops never holds a raw identifier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.identity import normalise_email, pseudonym
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.sql import audit

MAX_REASON_CHARS = 500
ORIGINS = ("operator", "restriction_request", "legal")


class HoldError(ValueError):
    """A hold request is invalid (the message names the field, never echoes the value)."""


@dataclass(frozen=True)
class Hold:
    hold_id: int
    subject: str  # masked pseudonym, safe to show
    reason: str
    origin: str
    created_at: dt.datetime
    released_at: dt.datetime | None


def add_hold(
    engine: Engine, key: str, email: str, reason: str, *, origin: str = "operator", at: dt.datetime
) -> int:
    reason = (reason or "").strip()
    if not reason:
        raise HoldError("a hold needs a reason")
    if len(reason) > MAX_REASON_CHARS:
        raise HoldError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    if origin not in ORIGINS:
        raise HoldError(f"origin must be one of {ORIGINS}")
    try:
        subject_key = pseudonym(key, normalise_email(email))
    except ValueError:
        raise HoldError("the email is not a valid address") from None
    with write_transaction(engine) as conn:
        return place_hold(conn, subject_key, reason, origin, at)


def place_hold(
    conn: Connection, subject_key: str, reason: str, origin: str, at: dt.datetime
) -> int:
    """Insert a hold and its audit row inside the caller's transaction (checked input only)."""
    result = conn.execute(
        sa.insert(schema.legal_holds).values(
            subject_key=subject_key, reason=reason, origin=origin, created_at=at
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always returns its key
    hold_id = int(key[0])
    audit(
        conn,
        run_id=f"hold-{hold_id}",
        action="hold_add",
        table_name="ops.legal_holds",
        row_count=1,
        subject_pseudonym=subject_key,
        at=at,
    )
    return hold_id


def open_hold_id(conn: Connection, subject_key: str, origin: str) -> int | None:
    """The subject's unreleased hold of `origin`, if any (so a retried request adds none)."""
    h = schema.legal_holds
    return conn.execute(
        sa.select(h.c.hold_id)
        .where(h.c.subject_key == subject_key, h.c.origin == origin, h.c.released_at.is_(None))
        .limit(1)
    ).scalar()


def release_hold(engine: Engine, hold_id: int, *, at: dt.datetime, note: str = "") -> None:
    h = schema.legal_holds
    with write_transaction(engine) as conn:
        found = conn.execute(
            sa.select(h.c.released_at, h.c.subject_key).where(h.c.hold_id == hold_id)
        ).first()
        if found is None:
            raise HoldError(f"no hold with id {hold_id}")
        if found.released_at is not None:
            raise HoldError(f"hold {hold_id} is already released")
        audit(
            conn,
            run_id=f"hold-{hold_id}",
            action="hold_release",
            table_name="ops.legal_holds",
            row_count=1,
            subject_pseudonym=found.subject_key,
            at=at,
        )
        conn.execute(
            sa.update(h)
            .where(h.c.hold_id == hold_id)
            .values(released_at=at, release_note=note[:MAX_REASON_CHARS])
        )


def list_holds(engine: Engine, *, include_released: bool = False) -> list[Hold]:
    h = schema.legal_holds
    query = sa.select(h).order_by(h.c.hold_id)
    if not include_released:
        query = query.where(h.c.released_at.is_(None))
    with engine.connect() as conn:
        return [
            Hold(
                r.hold_id, f"{r.subject_key[:8]}…", r.reason, r.origin, r.created_at, r.released_at
            )
            for r in conn.execute(query)
        ]

"""The marketing list (N-MKT): who may be sent marketing on a date, and the suppression that
overrides everything else.

The notice allows marketing on request, after a purchase without an opt-out (soft opt-in), or
with consent, and an opt-out stops it at any time. A person is on the list when the CRM marks
them a marketing contact, they have a basis (a consent or sign-up on record, or an invoiced
purchase by their company), their last word on marketing is not an opt-out, and they are not
suppressed (`ops.marketing_suppression`), erased (`ops.erasure_tombstones`) or restricted (a
hold, or an objection to legitimate-interest processing).

`ccg marketing-list` writes the list as an owner-only CSV under `$CCG_HOME/exports/marketing/`,
for the campaign tool, and removes its earlier lists; the evidence step checks every CSV file
there (hand-made extracts too) against the suppressions in force.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline import purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import LawfulBasis
from ccg_pipeline.private_files import private_dir, write_private
from ccg_pipeline.purposes import Kind, declare, purpose_of
from ccg_pipeline.retention.deadlines import end_of_day
from ccg_pipeline.retention.rules import (
    CONSENT_TYPES,
    SweepDates,
    opted_out_before,
    restricted_subject_ids,
)
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.migrate import migrated
from ccg_pipeline.warehouse.sql import IdQuery

log = logging.getLogger(__name__)

MARKETING_CONTACT = "Marketing contact"
EXTRACT_HEADER = ("email", "first_name", "basis")

# N-BASIS: promotional offers to the people on the marketing list (li16). It uses a name and an
# address; whether someone may be on the list at all is read from their consents, opt-outs and
# purchases (N-MKT), which is the basis's evidence, not use for the purpose.
MARKETING_LIST = declare(
    "marketing.list",
    purpose="suggestions_and_recommendations",
    basis=LawfulBasis.LEGITIMATE_INTEREST,
    kind=Kind.MARKETING,
    categories=("identity", "contact"),
    description="who may receive marketing on a date: email, first name and the basis",
    basis_evidence=(
        "personal.crm_activities.activity_type",
        "personal.crm_activities.occurred_at",
        "personal.crm_contacts.lifecycle_stage",
        "personal.crm_contacts.marketing_status",
        "personal.invoices.issued_on",
    ),
)


def marketing_exports(settings: Settings) -> Path:
    """Where marketing extracts live; the evidence step checks every CSV file here."""
    return settings.home / "exports" / "marketing"


def consented_as_of(as_of: dt.date) -> sa.Select:
    """Subject ids with a consent or mailing-list sign-up on record by the date."""
    a = s.crm_activities
    return sa.select(a.c.subject_id).where(
        a.c.subject_id.is_not(None),
        a.c.activity_type.in_(CONSENT_TYPES),
        a.c.occurred_at < end_of_day(as_of),
    )


def purchased_as_of(as_of: dt.date) -> IdQuery:
    """Subject ids with a purchase on record (soft opt-in): a portal user whose company was
    invoiced by the date, or a CRM contact the CRM records as a customer."""
    u, i, c = s.portal_users, s.invoices, s.crm_contacts
    return sa.union(
        sa.select(u.c.subject_id).where(
            u.c.company_id.in_(sa.select(i.c.company_id).where(i.c.issued_on <= as_of))
        ),
        sa.select(c.c.subject_id).where(c.c.lifecycle_stage == "customer"),
    )


def do_not_market_keys(as_of: dt.date) -> IdQuery:
    """Keyed pseudonyms that must not receive marketing on the date: suppressed or erased."""
    m, e = s.marketing_suppression, s.erasure_tombstones
    return sa.union(
        sa.select(m.c.subject_key).where(m.c.suppressed_at < end_of_day(as_of)),
        sa.select(e.c.subject_key).where(e.c.erased_at < end_of_day(as_of)),
    )


def eligible(as_of: dt.date, dates: SweepDates) -> sa.Select:
    """The marketing list on a date: email, first name and the basis relied on."""
    c, subj = s.crm_contacts, s.subjects
    consented = c.c.subject_id.in_(consented_as_of(as_of))
    return (
        sa.select(
            c.c.email,
            c.c.first_name,
            sa.case((consented, sa.literal("consent")), else_=sa.literal("purchase")).label(
                "basis"
            ),
        )
        .join(subj, subj.c.subject_id == c.c.subject_id)
        .where(
            c.c.marketing_status == MARKETING_CONTACT,
            sa.or_(consented, c.c.subject_id.in_(purchased_as_of(as_of))),
            c.c.subject_id.not_in(opted_out_before(end_of_day(as_of), as_of_only=True)),
            c.c.subject_id.not_in(restricted_subject_ids(dates)),
            subj.c.subject_key.not_in(do_not_market_keys(as_of)),
        )
        .order_by(c.c.crm_contact_id)
    )


def marketing_list(conn: Connection, as_of: dt.date) -> list[dict[str, Any]]:
    dates = SweepDates.for_date(load_notice(), as_of, use_worklist=False)
    seen: set[str] = set()
    rows = []
    for row in conn.execute(eligible(as_of, dates)).mappings():
        if row["email"].lower() not in seen:  # one line per address, however often the CRM has it
            seen.add(row["email"].lower())
            rows.append(dict(row))
    return rows


@purpose_of(MARKETING_LIST)
def write_marketing_list(settings: Settings, as_of: dt.date) -> dict[str, Any]:
    """Write `marketing-list-<date>.csv` (0600, atomic) and return counts and the path."""
    run_id = f"marketing-list-{as_of.isoformat()}"
    with (
        migrated(settings.warehouse_url) as engine,
        purposes.violations_recorded(engine, run_id, as_of),
        write_transaction(engine) as conn,
    ):
        with purposes.scope(MARKETING_LIST) as read:
            rows = marketing_list(conn, as_of)
        purposes.record(conn, read, run_id=run_id, as_of=as_of)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXTRACT_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder = marketing_exports(settings)
    private_dir(folder)
    target = folder / f"marketing-list-{as_of.isoformat()}.csv"
    write_private(target, buffer.getvalue())
    # Only the current list is kept: an older one would go on naming people who opted out since.
    for stale in folder.glob("marketing-list-*.csv"):
        if stale != target:
            stale.unlink()
    by_basis = {b: sum(r["basis"] == b for r in rows) for b in ("consent", "purchase")}
    log.info("marketing list as of %s: %d recipients %s", as_of, len(rows), by_basis)
    return {"as_of": as_of.isoformat(), "recipients": len(rows), **by_basis, "file": str(target)}

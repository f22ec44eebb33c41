"""What each verified request does (N-RIGHTS, N-MKT). One transaction per request in the
warehouse; the customer-portal database and the files written (export package, CRM outbox) are
written before the warehouse transaction commits, and every step is idempotent, so a retried
request ends in the same state.

- access: an export package (JSON, plus CSV per table) of everything held about the subject,
  with the notice's purposes, lawful bases, recipients, retention periods and sources;
- rectify: corrections applied to the personal zone and to the portal database;
- erase: everything not under the tax hold deleted; tax records restricted (retention deletes
  them when due); the portal login deleted; a CRM erasure instruction in the outbox; a tombstone
  so that re-ingest does not bring the person back;
- restrict: a hold (no processing but storage, no deletion);
- object / withdraw-consent: marketing suppression; an objection to legitimate-interest
  processing also leaves the subject out of the statistics.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.config import Settings
from ccg_pipeline.identity import normalise_email
from ccg_pipeline.ingest.common import note_erased_crm_contacts
from ccg_pipeline.ingest.crm import records_in_latest_contacts_export
from ccg_pipeline.oracles import erasure_leftovers
from ccg_pipeline.personal_model import TABLES, Erasure, Requester, personal_tables
from ccg_pipeline.policy import load_data_map, load_notice
from ccg_pipeline.policy.models import LawfulBasis
from ccg_pipeline.private_files import private_dir, write_private
from ccg_pipeline.purposes import ALL_CATEGORIES, Kind, Processing, declare
from ccg_pipeline.retention import holds
from ccg_pipeline.retention.rules import ERASURE_RESTRICTION
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.sql import audit, upsert_row

log = logging.getLogger(__name__)

# Columns of the portal's `users` table a rectification may change (same names as in the
# personal zone). Only these names are ever put into the UPDATE statement; values are bound.
PORTAL_COLUMNS = ("first_name", "last_name", "phone", "job_title")
# What a rectification may change, per table: declared in the personal-data model.
WAREHOUSE_RECTIFIABLE = {
    table: TABLES[name].rectifiable
    for name, table in personal_tables().items()
    if TABLES[name].rectifiable
}
# Profile data an erasure deletes even from a customer contact kept for tax.
PROFILE_COLUMNS = ("password_hash", "interests", "time_zone", "last_login_at", "job_title")


@dataclass(frozen=True)
class Request:
    request_id: str
    request_type: str
    subject_key: str
    scope: str | None
    email: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    status: str
    counts: dict[str, Any]


def exports_root(settings: Settings) -> Path:
    return settings.home / "exports" / "requests"


def crm_outbox_dir(settings: Settings) -> Path:
    return settings.home / "outbox" / "crm"


def _subject_ids(conn: Connection, subject_key: str) -> list[int]:
    return list(
        conn.execute(
            sa.select(s.subjects.c.subject_id).where(s.subjects.c.subject_key == subject_key)
        ).scalars()
    )


def _rows(conn: Connection, query: sa.Select) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]


def _requester(conn: Connection, request: Request) -> Requester:
    return Requester(_subject_ids(conn, request.subject_key), request.subject_key, request.email)


def _subject_data(
    conn: Connection, subject_key: str, email: str
) -> dict[str, list[dict[str, Any]]]:
    """Every row held about the subject, per `zone.table`: each personal table the model links
    to a person, and the ops records of their requests, holds and choices."""
    who = Requester(_subject_ids(conn, subject_key), subject_key, email)
    queries = {
        table: sa.select(table).where(rows_of(table, who))
        for name, table in personal_tables().items()
        if (rows_of := TABLES[name].rows_of) is not None
        and TABLES[name].erasure is not Erasure.WITH_THE_REQUEST
    }
    queries.update(
        {
            s.legal_holds: sa.select(s.legal_holds).where(
                s.legal_holds.c.subject_key == subject_key
            ),
            s.marketing_suppression: sa.select(s.marketing_suppression).where(
                s.marketing_suppression.c.subject_key == subject_key
            ),
            s.processing_objections: sa.select(s.processing_objections).where(
                s.processing_objections.c.subject_key == subject_key
            ),
            s.subject_requests: sa.select(
                *(
                    c
                    for c in s.subject_requests.columns
                    if c.name not in {"dedup_key", "subject_key", "outcome"}
                )
            ).where(s.subject_requests.c.subject_key == subject_key),
        }
    )
    return {f"{t.schema}.{t.name}": _rows(conn, q) for t, q in queries.items()}


def _policy_section() -> dict[str, Any]:
    """Art. 15 content from the policy: purposes and lawful bases, recipients, transfers,
    retention periods and sources."""
    notice, data_map = load_notice(), load_data_map()
    return {
        "controller": notice.controller,
        "purposes": [
            {
                "purpose": a.purpose,
                "categories": a.categories,
                "lawful_bases": [str(b) for b in a.lawful_bases],
                "legitimate_interests": a.legitimate_interests,
            }
            for a in notice.processing_activities
        ],
        "recipients": [{"name": r.name, "location": r.location} for r in notice.recipients],
        "transfers": [
            {"recipient": t.recipient, "destination": t.destination, "safeguard": t.safeguard}
            for t in notice.transfers
        ],
        "retention": [
            {
                "rule": r.id,
                "categories": r.categories,
                "period": r.period.model_dump(exclude_defaults=True),
                "trigger": str(r.trigger),
                "action": str(r.action),
            }
            for r in notice.retention_rules
        ],
        "sources": {name: m.origin for name, m in data_map.sources.items()},
        "your_rights": "access, rectification, erasure, restriction, objection, withdrawal of "
        "consent; complaints to the ICO",
        "not_linked_to_you": "web server logs are kept with the address cut to its network "
        "(/24 or /48) and are not linked to a person",
    }


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else str(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    from io import StringIO

    out = StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _json_default(v) if v is not None else "" for k, v in row.items()})
    return out.getvalue()


def write_export(settings: Settings, conn: Connection, request: Request, at: dt.datetime) -> dict:
    """The access package: `<exports>/<request id>[-<export name>]/` with `data.json` (all data
    and the policy section), one CSV per table that holds rows, and `manifest.json` (sha256)."""
    name = request.request_id
    if request.payload.get("export_name"):
        name += "-" + request.payload["export_name"]  # validated at intake: no separators
    root = exports_root(settings)
    target = (root / name).resolve()
    if target.parent != root.resolve():
        raise ValueError("the export path escapes the exports folder")
    private_dir(root)
    private_dir(target)
    data = _subject_data(conn, request.subject_key, request.email)
    document = {
        "request_id": request.request_id,
        "generated_at": at.isoformat(),
        "data": data,
        "about_the_processing": _policy_section(),
    }
    files = {"data.json": json.dumps(document, indent=2, default=_json_default)}
    for table, rows in data.items():
        if rows:
            files[f"{table}.csv"] = _csv_text(rows)
    for file_name, text in files.items():
        write_private(target / file_name, text)
    manifest = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in files.items()}
    write_private(target / "manifest.json", json.dumps(manifest, indent=2))
    return {
        "export": str(target.relative_to(settings.home)),
        "tables": {t: len(rows) for t, rows in data.items() if rows},
        "files": len(files) + 1,
    }


def _portal_engine(settings: Settings) -> Engine:
    """The portal database with write access (`CCG_PORTAL_WRITE_URL` / `ccg_portal_write`)."""
    return sa.create_engine(settings.portal_url_for_writes, hide_parameters=True)


def rectify(settings: Settings, conn: Connection, request: Request, at: dt.datetime) -> dict:
    corrections: dict[str, str] = request.payload["corrections"]
    ids = _subject_ids(conn, request.subject_key)
    counts: dict[str, int] = {}
    for table, allowed in WAREHOUSE_RECTIFIABLE.items():
        values = {k: v for k, v in corrections.items() if k in allowed}
        if values and ids:
            changed = conn.execute(
                sa.update(table).where(table.c.subject_id.in_(ids)).values(**values)
            ).rowcount
            counts[f"personal.{table.name}"] = changed
            audit(
                conn,
                run_id=f"request-{request.request_id}",
                action="rectify",
                table_name=f"personal.{table.name}",
                row_count=changed,
                subject_pseudonym=request.subject_key,
                at=at,
            )
    portal_values = {k: v for k, v in corrections.items() if k in PORTAL_COLUMNS}
    if portal_values:
        engine = _portal_engine(settings)
        try:
            with engine.begin() as portal:
                assignments = ", ".join(f"{column} = :{column}" for column in portal_values)
                changed = portal.execute(
                    sa.text(f"UPDATE users SET {assignments} WHERE lower(trim(email)) = :email"),
                    {**portal_values, "email": request.email},
                ).rowcount
        finally:
            engine.dispose()
        counts["portal.users"] = changed
    return counts


def _tax_held(conn: Connection, ids: list[int]) -> bool:
    """A customer contact whose company is still in the personal zone: its contact, identity,
    financial and transaction data are kept for tax until retention retires the company."""
    u = s.portal_users
    return bool(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(u.join(s.companies, s.companies.c.company_id == u.c.company_id))
            .where(u.c.subject_id.in_(ids))
        ).scalar_one()
    )


class ErasureIncomplete(RuntimeError):
    """The erasure oracle still found the requester outside what the tax hold keeps (tables
    named, counts only); the request stays open."""


def _earlier_exports(settings: Settings, conn: Connection, subject_key: str) -> list[Path]:
    """The folders of the requester's earlier access exports."""
    r = s.subject_requests
    ids = conn.execute(
        sa.select(r.c.request_id).where(
            r.c.subject_key == subject_key, r.c.request_type == "access"
        )
    ).scalars()
    root = exports_root(settings)
    return [
        folder
        for request_id in ids
        for folder in (root.glob(f"{request_id}*") if root.is_dir() else [])
        if folder.is_dir()
    ]


def erase(settings: Settings, conn: Connection, request: Request, at: dt.datetime) -> dict:
    """Every table the model links to the person: deleted, or (tax records of a company still
    kept) restricted, with the login's profile data nulled."""
    who = _requester(conn, request)
    ids = who.subject_ids
    u = s.portal_users
    counts: dict[str, int] = {}
    # The CRM records to instruct the CRM about: those the warehouse holds, and those the CRM's
    # newest export still lists (a record retention already retired from the warehouse).
    crm_ids = sorted(
        set(
            conn.execute(
                sa.select(s.crm_contacts.c.crm_contact_id).where(
                    s.crm_contacts.c.subject_id.in_(ids)
                )
            ).scalars()
        )
        | records_in_latest_contacts_export(settings, normalise_email(request.email))
    )
    tax_held = _tax_held(conn, ids)
    tables = personal_tables()
    for name, spec in TABLES.items():
        table = tables[name]
        if spec.rows_of is None or spec.erasure is not Erasure.DELETE:
            continue
        counts[name] = conn.execute(sa.delete(table).where(spec.rows_of(table, who))).rowcount
    if tax_held:
        counts["personal.portal_users (profile data nulled)"] = conn.execute(
            sa.update(u).where(u.c.subject_id.in_(ids)).values(dict.fromkeys(PROFILE_COLUMNS))
        ).rowcount
        _hold_once(
            conn,
            request,
            ERASURE_RESTRICTION,
            f"erasure request {request.request_id}: tax records restricted until retention "
            "deletes them",
            at,
        )
    else:
        user_ids = sa.select(u.c.user_id).where(u.c.subject_id.in_(ids))
        conn.execute(
            sa.update(s.orders).where(s.orders.c.user_id.in_(user_ids)).values(user_id=None)
        )
        for name, spec in TABLES.items():
            if spec.erasure is Erasure.PROFILE_UNLESS_TAX and spec.rows_of is not None:
                table = tables[name]
                counts[name] = conn.execute(
                    sa.delete(table).where(spec.rows_of(table, who))
                ).rowcount
    exports = _earlier_exports(settings, conn, request.subject_key)
    for folder in exports:
        shutil.rmtree(folder)
    counts["files: earlier access exports"] = len(exports)
    counts["files: rejected request files"] = _delete_rejected_files(settings, request.email)
    counts["files: marketing list lines"] = _drop_from_marketing_lists(settings, request.email)
    if crm_ids:
        # Activities of these records that ever arrived without a matched contact.
        a = s.crm_activities
        counts["personal.crm_activities"] += conn.execute(
            sa.delete(a).where(a.c.crm_contact_id.in_(crm_ids))
        ).rowcount
    upsert_row(
        conn,
        s.erasure_tombstones,
        {
            "subject_key": request.subject_key,
            "request_id": request.request_id,
            "erased_at": at,
            "last_seen_in_crm_at": None,
        },
    )
    # The CRM may log new activities under these records until it carries out the erasure.
    note_erased_crm_contacts(
        conn, settings.pseudonym_key, dict.fromkeys(crm_ids, request.subject_key), at
    )
    engine = _portal_engine(settings)
    try:
        with engine.begin() as portal:
            portal.execute(
                sa.text("DELETE FROM users WHERE lower(trim(email)) = :email"),
                {"email": request.email},
            )
    finally:
        engine.dispose()
    counts["portal.users"] = _portal_logins_noted(conn, request)
    for target, count in counts.items():
        audit(
            conn,
            run_id=f"request-{request.request_id}",
            action="erase",
            table_name=target,
            row_count=count,
            subject_pseudonym=request.subject_key,
            at=at,
        )
    counts["tax_records_restricted"] = int(tax_held)
    if crm_ids:
        outbox = crm_outbox_dir(settings)
        private_dir(outbox)
        file_name = f"{request.request_id}.json"
        instruction = {"instruction": "erase", "crm_record_ids": sorted(crm_ids)}
        write_private(outbox / file_name, json.dumps(instruction))
        upsert_row(
            conn,
            s.crm_outbox,
            {
                "request_id": request.request_id,
                "subject_key": request.subject_key,
                "instruction": "erase",
                "file_name": file_name,
                "created_at": at,
                "confirmed_at": None,
            },
        )
        counts["crm_outbox"] = 1
    # Not done until a search of every zone and file the pipeline writes finds none of it.
    leftovers = erasure_leftovers(
        conn, request.email, request.subject_key, _personal_folders(settings)
    )
    if leftovers:
        raise ErasureIncomplete(f"the requester is still found in {sorted(leftovers.items())}")
    return counts


def _personal_folders(settings: Settings) -> list[Path]:
    from ccg_pipeline.marketing import marketing_exports
    from ccg_pipeline.requests import inbox

    return [
        exports_root(settings),
        marketing_exports(settings),
        inbox(settings),
        crm_outbox_dir(settings),
    ]


def _drop_from_marketing_lists(settings: Settings, email: str) -> int:
    """The requester's lines of the current marketing list (the next list leaves them out
    anyway, by the tombstone): the list is rewritten without them."""
    from ccg_pipeline.marketing import marketing_exports

    needle = email.strip().lower()
    dropped = 0
    folder = marketing_exports(settings)
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if needle not in line.lower()]
        if len(kept) != len(lines):
            write_private(path, "".join(kept))
            dropped += len(lines) - len(kept)
    return dropped


def _delete_rejected_files(settings: Settings, email: str) -> int:
    """Rejected request files (kept for an engineer to replay) that hold the address."""
    from ccg_pipeline.requests import inbox

    rejected = inbox(settings) / "rejected"
    if not rejected.is_dir():
        return 0
    needle = email.strip().lower().encode()
    deleted = 0
    for path in sorted(rejected.iterdir()):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes().lower():
            path.unlink()
            path.with_name(path.name + ".reason").unlink(missing_ok=True)
            deleted += 1
    return deleted


def _portal_audit(request: Request) -> sa.Select:
    ledger = s.audit_ledger
    return sa.select(ledger.c.row_count).where(
        ledger.c.run_id == f"request-{request.request_id}",
        ledger.c.action == "erase",
        ledger.c.table_name == "portal.users",
    )


def note_portal_logins(
    engine: Engine, settings: Settings, request: Request, at: dt.datetime
) -> None:
    """Before an erasure: record, once and committed, how many portal logins it will delete.

    The portal is another database, so its DELETE commits before the warehouse transaction
    does; a retry after a crash in between finds the logins already gone. Counting them up front
    keeps the audit equal to the rows the erasure removed, whichever attempt removed them."""
    with write_transaction(engine) as conn:
        if conn.execute(_portal_audit(request)).first() is not None:
            return
        portal = _portal_engine(settings)
        try:
            with portal.connect() as source:
                found = source.execute(
                    sa.text("SELECT count(*) FROM users WHERE lower(trim(email)) = :email"),
                    {"email": request.email},
                ).scalar_one()
        finally:
            portal.dispose()
        audit(
            conn,
            run_id=f"request-{request.request_id}",
            action="erase",
            table_name="portal.users",
            row_count=found,
            subject_pseudonym=request.subject_key,
            at=at,
        )


def _portal_logins_noted(conn: Connection, request: Request) -> int:
    return conn.execute(_portal_audit(request)).scalar_one()


def _hold_once(
    conn: Connection, request: Request, origin: str, reason: str, at: dt.datetime
) -> None:
    if holds.open_hold_id(conn, request.subject_key, origin) is None:
        holds.place_hold(conn, request.subject_key, reason, origin, at)


def restrict(settings: Settings, conn: Connection, request: Request, at: dt.datetime) -> dict:
    reason = f"restriction request {request.request_id}"
    _hold_once(conn, request, "restriction_request", reason, at)
    return {"ops.legal_holds": 1}


def suppress_marketing(
    settings: Settings, conn: Connection, request: Request, at: dt.datetime
) -> dict:
    reason = "consent withdrawn" if request.request_type == "withdraw-consent" else "objection"
    upsert_row(
        conn,
        s.marketing_suppression,
        {"subject_key": request.subject_key, "reason": reason, "suppressed_at": at},
    )
    counts = {"ops.marketing_suppression": 1}
    if request.scope == "legitimate_interest":
        upsert_row(
            conn,
            s.processing_objections,
            {
                "subject_key": request.subject_key,
                "scope": "legitimate_interest",
                "request_id": request.request_id,
                "recorded_at": at,
            },
        )
        counts["ops.processing_objections"] = 1
    return counts


Handler = Callable[[Settings, Connection, Request, dt.datetime], dict]


def _rights(request_type: str, description: str) -> Processing:
    """Answering a right reaches every category the requester's rows hold (s.9, Schedule 1
    part 3), under the legal obligation to answer."""
    return declare(
        f"request.{request_type}",
        purpose="legal_rights",
        basis=LawfulBasis.LEGAL_OBLIGATION,
        kind=Kind.REQUEST,
        categories=ALL_CATEGORIES,
        description=description,
    )


INTAKE = _rights("intake", "takes requests in from the drop folder and keys them to a person")
PROCESSINGS: dict[str, Processing] = {
    "access": _rights("access", "the requester's rows of every table, as a private export"),
    "rectify": _rights("rectify", "corrects the requester's rectifiable columns"),
    "erase": _rights("erase", "deletes, or restricts tax records of, the requester's rows"),
    "restrict": _rights("restrict", "holds the requester's rows out of processing"),
    "object": _rights("object", "records an objection: suppression, and legitimate interest"),
    "withdraw-consent": _rights("withdraw-consent", "suppresses marketing to the requester"),
}
HANDLERS: dict[str, Handler] = {
    "access": write_export,
    "rectify": rectify,
    "erase": erase,
    "restrict": restrict,
    "object": suppress_marketing,
    "withdraw-consent": suppress_marketing,
}

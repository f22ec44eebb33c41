"""Intake of data-subject requests: from `ccg request submit` or from JSON files in a drop folder
(what a portal form writes). Every request is validated with errors that name the field and never
echo its value; duplicates are refused; nothing half-written (one transaction per request).

The ops zone gets the request with a keyed pseudonym and a masked email; the email itself and the
request details (corrections, an export name) go to `personal.request_payloads` until the request
is closed.

A drop-folder file is not kept: an accepted or duplicate request leaves a receipt in `processed/`
that holds ids only (the request, its type, dates, the file's name). A rejected file is kept as it
came, owner-only, in `rejected/` beside a `.reason` file, so that it can be fixed and dropped again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.identity import pseudonym
from ccg_pipeline.private_files import copy_private, private_dir, write_private
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.sql import audit

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 16_384
MAX_VALUE_CHARS = 200
MAX_NOTE_CHARS = 1_000
# Stricter than ingest's matching key: a request must name a plausible mailbox.
EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+'-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,62}\.)+[a-z]{2,24}")
EXPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
RECTIFIABLE = ("first_name", "last_name", "phone", "job_title", "company_name")
OBJECTION_SCOPES = ("marketing", "legitimate_interest")
FILE_FIELDS = {"type", "email", "payload", "received_at"}
# An unknown field is named in an error only if it looks like a field name: a key can carry data
# (an address, a name) as well as a value can.
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
# Template and expression syntax (Jinja, ${...} for EL/JNDI and shells, #{...}, ERB): no name,
# title or note needs it, and a value carrying it attacks whatever renders it later.
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\$\{|#\{|<%")
_LETTERS = r"[^\W\d_]"
# What a corrected value may hold: a name has letters, spaces, apostrophes, hyphens and dots;
# a phone number digits and separators; a title or company name also digits and , & ( ) / +.
# Quotes, semicolons and comment markers (an SQL injection's tools) fit none of them.
CORRECTION_CHARS = {
    "first_name": re.compile(rf"(?:{_LETTERS}|[ .'’-])+"),
    "last_name": re.compile(rf"(?:{_LETTERS}|[ .'’-])+"),
    "phone": re.compile(r"\+?[0-9 ().-]{6,30}"),
    "job_title": re.compile(r"(?:[^\W_]|[ .,'’&()/+-])+"),
    "company_name": re.compile(r"(?:[^\W_]|[ .,'’&()/+-])+"),
}
PAYLOAD_FIELDS = {
    "access": {"export_name", "note"},
    "rectify": {"corrections", "note"},
    "erase": {"note"},
    "restrict": {"note"},
    "object": {"scope", "note"},
    "withdraw-consent": {"note"},
}


def _field_names(keys: Iterable[object]) -> str:
    """`['admin', 'sql']`, or `['admin'] and 2 more` when some keys do not look like field names."""
    names = sorted(str(k) for k in keys)
    named = [k for k in names if FIELD_NAME.fullmatch(k)]
    hidden = len(names) - len(named)
    return f"{named}" + (f" and {hidden} more" if hidden else "")


class RequestError(ValueError):
    """A request is invalid. `code` is stable for counting; the message names the field only."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DuplicateRequest(RequestError):
    def __init__(self, original: str) -> None:
        super().__init__("duplicate", f"duplicate of open request {original}")
        self.original = original


@dataclass(frozen=True)
class Submission:
    request_type: str
    email: str  # normalised
    payload: dict[str, Any]
    received_at: dt.datetime
    source: str
    source_ref: str | None = None


def mask_email(email: str) -> str:
    """`anna.svensson@example.se` -> `an***@ex***.se`: enough for an operator to tell requests
    apart, not enough to read the address."""
    local, _, domain = email.partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:2]}***@{host[:2]}***.{tld}"


def _email(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RequestError("bad_email", "email is missing")
    value = raw.strip().lower()
    if len(value) > 254 or not EMAIL.fullmatch(value):
        raise RequestError("bad_email", "email is not a valid address")
    return value


def _text(name: str, raw: object, limit: int) -> str:
    if not isinstance(raw, str):
        raise RequestError("bad_payload", f"{name} must be text")
    value = raw.strip()
    if not value or len(value) > limit:
        raise RequestError("bad_payload", f"{name} must be 1 to {limit} characters")
    if any(ord(ch) < 32 for ch in value):
        raise RequestError("bad_payload", f"{name} contains control characters")
    if TEMPLATE_SYNTAX.search(value):
        raise RequestError("bad_payload", f"{name} contains template syntax")
    return value


def _export_name(raw: object) -> str:
    """An access request's export name: it becomes a file name, so no path may hide in it."""
    if not isinstance(raw, str) or not EXPORT_NAME.fullmatch(raw):
        raise RequestError(
            "bad_export_name",
            "export_name must be 1-64 letters, digits, '-' or '_' (no paths)",
        )
    return raw


def _corrections(raw: object) -> dict[str, str]:
    """A rectify request's corrections: only rectifiable fields, each value text made of the
    characters such a field uses."""
    if not isinstance(raw, dict) or not raw:
        raise RequestError("bad_payload", "rectify needs a non-empty corrections object")
    fields = sorted(set(raw) - set(RECTIFIABLE))
    if fields:
        raise RequestError(
            "bad_payload", f"fields that cannot be rectified: {_field_names(fields)}"
        )
    corrections: dict[str, str] = {}
    for name, value in sorted(raw.items()):
        text = _text(f"corrections.{name}", value, MAX_VALUE_CHARS)
        if not CORRECTION_CHARS[name].fullmatch(text):
            raise RequestError(
                "bad_payload", f"corrections.{name} holds characters a {name} does not use"
            )
        corrections[name] = text
    return corrections


def validate_payload(request_type: str, payload: object) -> dict[str, Any]:
    """The payload of one request type, checked field by field and normalised."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise RequestError("bad_payload", "payload must be a JSON object")
    unknown = sorted(set(payload) - PAYLOAD_FIELDS[request_type])
    if unknown:
        raise RequestError(
            "bad_payload",
            f"unknown payload field(s) for {request_type}: {_field_names(unknown)}",
        )
    out: dict[str, Any] = {}
    if "note" in payload:
        out["note"] = _text("note", payload["note"], MAX_NOTE_CHARS)
    if request_type == "access" and "export_name" in payload:
        out["export_name"] = _export_name(payload["export_name"])
    if request_type == "rectify":
        out["corrections"] = _corrections(payload.get("corrections"))
    if request_type == "object":
        scope = payload.get("scope", "marketing")
        if scope not in OBJECTION_SCOPES:
            raise RequestError("bad_payload", f"scope must be one of {list(OBJECTION_SCOPES)}")
        out["scope"] = scope
    return out


def parse_submission(
    request_type: object,
    email: object,
    payload: object,
    *,
    received_at: dt.datetime,
    source: str,
    source_ref: str | None = None,
) -> Submission:
    if request_type not in s.REQUEST_TYPES:
        raise RequestError("unknown_type", f"type must be one of {list(s.REQUEST_TYPES)}")
    assert isinstance(request_type, str)
    return Submission(
        request_type,
        _email(email),
        validate_payload(request_type, payload),
        received_at,
        source,
        source_ref,
    )


def read_payload_file(path: Path) -> dict[str, Any]:
    """A `--payload FILE` for the command line: JSON, at most MAX_PAYLOAD_BYTES."""
    try:
        size = path.stat().st_size
    except OSError:
        raise RequestError("unreadable", "the payload file cannot be read") from None
    if size > MAX_PAYLOAD_BYTES:
        raise RequestError("oversized", f"the payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RequestError("bad_json", "the payload file is not valid JSON") from None


def _dedup_key(key: str, submission: Submission, subject_key: str) -> str:
    canonical = json.dumps(
        [submission.request_type, subject_key, submission.payload], sort_keys=True
    )
    return pseudonym(key, canonical)


def submit(engine: Engine, pseudonym_key: str, submission: Submission) -> str:
    """Store a validated request (awaiting verification); refuse a duplicate of an open one or a
    drop-folder file already taken in. Returns the request id."""
    subject_key = pseudonym(pseudonym_key, submission.email)
    dedup = _dedup_key(pseudonym_key, submission, subject_key)
    r = s.subject_requests
    request_id = str(uuid.uuid4())
    with write_transaction(engine) as conn:
        same = sa.or_(
            sa.and_(r.c.dedup_key == dedup, r.c.status.in_(s.OPEN_STATUSES)),
            sa.and_(
                r.c.source == submission.source,
                r.c.source_ref == submission.source_ref,
                r.c.source_ref.is_not(None),
            ),
        )
        original = conn.execute(sa.select(r.c.request_id).where(same).limit(1)).scalar()
        if original:
            raise DuplicateRequest(original)
        conn.execute(
            sa.insert(r).values(
                request_id=request_id,
                request_type=submission.request_type,
                subject_key=subject_key,
                status=s.AWAITING_VERIFICATION,
                received_at=submission.received_at,
                email_masked=mask_email(submission.email),
                source=submission.source,
                source_ref=submission.source_ref,
                dedup_key=dedup,
                scope=submission.payload.get("scope"),
                updated_at=submission.received_at,
            )
        )
        conn.execute(
            sa.insert(s.request_payloads).values(
                request_id=request_id,
                email=submission.email,
                payload=json.dumps(submission.payload, sort_keys=True),
            )
        )
        audit(
            conn,
            run_id=f"request-{request_id}",
            action="request_received",
            table_name="ops.subject_requests",
            row_count=1,
            subject_pseudonym=subject_key,
            at=submission.received_at,
        )
    log.info("request %s (%s) received, awaiting verification", request_id, submission.request_type)
    return request_id


@dataclass
class DropFolderReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
        }


def _parse_file(path: Path, now: dt.datetime) -> Submission:
    if path.stat().st_size > MAX_PAYLOAD_BYTES:
        raise RequestError("oversized", f"the file is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RequestError("bad_json", "the file is not valid JSON") from None
    if not isinstance(document, dict):
        raise RequestError("bad_json", "the file must hold one JSON object")
    unknown = sorted(set(document) - FILE_FIELDS)
    if unknown:
        raise RequestError("unknown_field", f"unknown field(s): {_field_names(unknown)}")
    received = now
    if "received_at" in document:
        try:
            received = dt.datetime.fromisoformat(str(document["received_at"]))
        except ValueError:
            raise RequestError("bad_date", "received_at is not an ISO 8601 date-time") from None
        received = received.astimezone(dt.UTC).replace(tzinfo=None) if received.tzinfo else received
        if received > now:
            raise RequestError("bad_date", "received_at is in the future")
    return parse_submission(
        document.get("type"),
        document.get("email"),
        document.get("payload"),
        received_at=received,
        source="drop_folder",
        source_ref=path.name,
    )


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `stem.2.json`, `stem.3.json`, ... when the same name was dropped before:
    both are kept."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    copies = 1
    while target.exists():
        copies += 1
        target = folder / f"{stem}.{copies}{suffix}"
    return target


def _receipt(
    path: Path,
    folder: Path,
    submission: Submission,
    now: dt.datetime,
    *,
    request_id: str | None = None,
    duplicate: DuplicateRequest | None = None,
) -> None:
    """Replace a taken-in file by a receipt in `processed/` holding ids only: the email and the
    request details live in `personal.request_payloads` until the request closes, and nowhere
    else. The request is already stored, so a crash before the original is deleted loses
    nothing: the next run finds the file again, as a duplicate of that request."""
    duplicate_of = duplicate.original if duplicate else None
    receipt: dict[str, Any] = {
        "request_id": request_id,
        "duplicate_of": duplicate_of,
        "type": submission.request_type,
        "received_at": submission.received_at.isoformat(),
        "taken_in_at": now.isoformat(),
        "source_ref": path.name,
        "status": "accepted" if duplicate_of is None else "duplicate",
    }
    receipt = {k: v for k, v in receipt.items() if v is not None}
    private_dir(folder)
    target = _free_name(folder, path.name)
    write_private(target, json.dumps(receipt, indent=2, sort_keys=True) + "\n")
    if duplicate is not None:  # ids only, as in the receipt
        write_private(target.with_name(target.name + ".reason"), f"{duplicate}\n")
    path.unlink()


def _reject(path: Path, folder: Path, reason: str) -> None:
    """Keep a rejected file as it came (to be fixed and dropped again), owner-only, with a
    `.reason` file that names the problem and never a value."""
    private_dir(folder)
    target = _free_name(folder, path.name)
    copy_private(path, target)
    write_private(target.with_name(target.name + ".reason"), reason + "\n")
    path.unlink()


def take_in_drop_folder(
    engine: Engine, pseudonym_key: str, folder: Path, now: dt.datetime
) -> DropFolderReport:
    """Read every `*.json` in `folder` (made owner-only, as are `processed/` and `rejected/`):
    valid requests are stored and the file is replaced by an id-only receipt in `processed/`
    (a duplicate too); a rejected file moves to `rejected/` with a `.reason` file naming the
    problem. Nothing is lost: every file read ends as a receipt or in `rejected/`."""
    report = DropFolderReport()
    if not folder.is_dir():
        return report
    processed, rejected = folder / "processed", folder / "rejected"
    try:
        private_dir(folder)
    except PermissionError:
        # The portal owns the drop folder: its files are still taken in; only the folders the
        # pipeline writes (processed/, rejected/) must be owner-only.
        log.warning("the request drop folder belongs to another user; left as it is")
    for sub in (processed, rejected):
        if sub.is_dir():
            private_dir(sub)
    for path in sorted(folder.glob("*.json")):
        if not path.is_file() or path.is_symlink():
            report.rejected["not_a_file"] += 1
            continue
        try:
            submission = _parse_file(path, now)
        except RequestError as exc:
            report.rejected[exc.code] += 1
            log.warning("rejected request file %s: %s", path.name, exc)
            _reject(path, rejected, f"{exc.code}: {exc}")
            continue
        try:
            request_id = submit(engine, pseudonym_key, submission)
        except DuplicateRequest as exc:
            report.duplicates += 1
            _receipt(path, processed, submission, now, duplicate=exc)
            continue
        report.accepted.append(request_id)
        _receipt(path, processed, submission, now, request_id=request_id)
    return report

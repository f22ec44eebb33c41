"""Hostile input, case by case: every case is rejected with a named error, the valid data beside
it is kept, and nothing of it is half-written.

Ingest cases add one extra file to clean sources (a valid record, then the hostile one) or plant
one hostile row in the portal database. A hostile record must end in `personal.quarantine` with
its reason code, while every other table equals a control run that got the valid record alone.
A hostile file must be refused as a batch, naming the problem, with none of its rows loaded.
Request cases drop a hostile request file beside a valid one: the valid request is stored, the
hostile file lands in `rejected/` with a reason that starts with its code, and nothing of it
reaches the warehouse. No error text may echo the planted value.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import PERSONAL_TABLES, fingerprint, query

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.ingest.common import IngestFailed
from ccg_pipeline.requests import intake
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
END = dt.datetime(2026, 11, 24)
MARK = "HOSTILE-7f3a"  # planted in every hostile value that can carry text
NOT_QUARANTINE = [t for t in PERSONAL_TABLES if t is not s.quarantine]

# --- ingest: one extra file per case ------------------------------------------------------------

CONTACTS_HEADER = (
    "Record ID,First Name,Last Name,Email,Phone Number,Job Title,Company Name,Country/Region,"
    "Lifecycle Stage,Marketing Contact Status,Create Date,Last Activity Date"
)
CONTACT = [
    "999002", "Hostile", MARK, "hostile.row@example.org", "0113 4960998", "Analyst",
    "Valid Ltd", "GB", "lead", "Marketing contact", "2020-01-01 12:00:00", "",
]  # fmt: skip
VALID_CONTACT = (
    "999001,Hedda,Valid,hedda.valid@example.org,0113 4960999,Analyst,Valid Ltd,GB,lead,"
    "Marketing contact,2020-01-01 12:00:00,"
)
ACTIVITIES_HEADER = "Activity ID,Contact ID,Activity Type,Activity Date,Channel,Subject,Body"
VALID_ACTIVITY = "999001,999001,NOTE,2026-11-23 10:00:00,email,Call back,Asked about AEO"
VALID_WEB = (
    '81.136.54.186 - - [23/Nov/2026:10:00:00 +0000] "GET /services/aeo HTTP/1.1" 200 512 '
    '"-" "Mozilla/5.0"'
)
VALID_AUTH = {
    "ts": "2026-11-23T10:00:00Z",
    "event": "login",
    "outcome": "success",
    "username": "valid9999",
    "user_id": 999999,
    "ip": "212.90.204.95",
    "user_agent": "Mozilla/5.0",
}


def contact(**changes: str) -> str:
    row = dict(zip(CONTACTS_HEADER.split(","), CONTACT, strict=True))
    row.update(changes)
    return ",".join(row.values())


def web(line: str) -> str:
    return line


def auth(**changes: object) -> str:
    event = {**VALID_AUTH, "username": f"u-{MARK}", "user_id": 999998, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not ...})


@dataclass(frozen=True)
class FileCase:
    source: str  # crm, web_logs, auth_logs
    name: str  # extra file's name
    content: bytes  # the whole file
    code: str  # quarantine reason code, or the refusal's text for a refused file
    refused: bool = False


def crm_file(hostile: str, kind: str = "contacts") -> bytes:
    header, valid = (
        (CONTACTS_HEADER, VALID_CONTACT)
        if kind == "contacts"
        else (ACTIVITIES_HEADER, VALID_ACTIVITY)
    )
    return f"{header}\n{valid}\n{hostile}\n".encode()


def lines(valid: str, hostile: str | bytes) -> bytes:
    tail = hostile if isinstance(hostile, bytes) else hostile.encode()
    return valid.encode() + b"\n" + tail + b"\n"


CONTACTS = "contacts_20261123_extra.csv"
ACTIVITIES = "activities_20261123_extra.csv"
WEB = "access.log-20261123-extra"
AUTH = "auth-20261123-extra.jsonl"
GOOD_LINE = VALID_WEB.replace("81.136.54.186", "81.136.54.187")
FILE_CASES: dict[str, FileCase] = {
    # CRM export rows
    "csv-extra-field": FileCase("crm", CONTACTS, crm_file(contact() + ",surplus"), "wrong_column_count"),
    "csv-missing-fields": FileCase("crm", CONTACTS, crm_file(",".join(CONTACT[:6])), "wrong_column_count"),
    "csv-bad-date": FileCase("crm", CONTACTS, crm_file(contact(**{"Create Date": "2020-13-45 12:00:00"})), "bad_date"),
    "csv-future-date": FileCase("crm", CONTACTS, crm_file(contact(**{"Create Date": "2031-01-01 00:00:00"})), "future_date"),
    "csv-bad-email": FileCase("crm", CONTACTS, crm_file(contact(Email=f"{MARK}-no-at-sign")), "bad_email"),
    "csv-huge-field": FileCase("crm", CONTACTS, crm_file(contact(**{"Job Title": MARK * 2000})), "oversized_record"),
    "csv-latin1-bytes": FileCase("crm", CONTACTS, crm_file(contact()).replace(b"Hostile", b"Hostil\xe9"), "bad_encoding"),
    "csv-nul-byte": FileCase("crm", CONTACTS, crm_file(contact(**{"First Name": "Ho\x00stile"})), "bad_encoding"),
    "csv-bad-country": FileCase("crm", CONTACTS, crm_file(contact(**{"Country/Region": "Sweden"})), "bad_country"),
    "csv-missing-id": FileCase("crm", CONTACTS, crm_file(contact(**{"Record ID": ""})), "missing_field"),
    "csv-non-numeric-id": FileCase("crm", CONTACTS, crm_file(contact(**{"Record ID": "99x"})), "bad_number"),
    "csv-unclosed-quote": FileCase("crm", CONTACTS, crm_file(contact(**{"First Name": f'"{MARK}'})), "wrong_column_count"),
    "csv-special-category-note": FileCase(
        "crm", ACTIVITIES,
        crm_file(f"999002,999001,NOTE,2026-11-23 11:00:00,email,{MARK},Diagnosed with diabetes", "activities"),
        "special_category",
    ),
    "csv-activity-future-date": FileCase(
        "crm", ACTIVITIES, crm_file("999002,999001,NOTE,2027-01-01 11:00:00,email,Call,x", "activities"), "future_date"
    ),
    # CRM export files
    "csv-unknown-column": FileCase(
        "crm", CONTACTS, f"{CONTACTS_HEADER},Fax Number\n{VALID_CONTACT},{MARK}\n".encode(),
        "not in the data map: 'Fax Number'", refused=True,
    ),
    "csv-header-missing": FileCase(
        "crm", CONTACTS, f"{VALID_CONTACT}\n".encode(), "is the header row missing?", refused=True
    ),
    "csv-utf16-file": FileCase(
        "crm", CONTACTS, f"{CONTACTS_HEADER}\n{VALID_CONTACT}\n".encode("utf-16"), "not UTF-8 text", refused=True
    ),
    "csv-empty-file": FileCase("crm", CONTACTS, b"", "file has no header row", refused=True),
    "csv-gzip-named-csv": FileCase(
        "crm", CONTACTS, gzip.compress(crm_file(contact())), "not UTF-8 text", refused=True
    ),
    # Web access-log lines
    "log-garbage-line": FileCase("web_logs", WEB, lines(GOOD_LINE, f"{MARK} is not a log line"), "malformed_line"),
    "log-truncated-line": FileCase("web_logs", WEB, lines(GOOD_LINE, VALID_WEB[:70]), "malformed_line"),
    "log-bad-time": FileCase("web_logs", WEB, lines(GOOD_LINE, VALID_WEB.replace("23/Nov", "32/Nov")), "bad_date"),
    "log-future-time": FileCase("web_logs", WEB, lines(GOOD_LINE, VALID_WEB.replace("2026", "2027")), "future_date"),
    "log-client-not-an-ip": FileCase(
        "web_logs", WEB, lines(GOOD_LINE, VALID_WEB.replace("81.136.54.186", f"{MARK}.example")), "bad_ip"
    ),
    "log-huge-line": FileCase(
        "web_logs", WEB, lines(GOOD_LINE, VALID_WEB.replace("/services/aeo", "/" + MARK * 2000)), "oversized_record"
    ),
    "log-invalid-utf8": FileCase("web_logs", WEB, lines(GOOD_LINE, VALID_WEB.encode().replace(b"aeo", b"a\xff\xfeo")), "bad_encoding"),
    "log-nul-byte": FileCase("web_logs", WEB, lines(GOOD_LINE, VALID_WEB.replace("aeo", "a\x00eo")), "bad_encoding"),
    "log-bad-status": FileCase("web_logs", WEB, lines(GOOD_LINE, VALID_WEB.replace(" 200 ", " OK ")), "malformed_line"),
    "log-truncated-gzip": FileCase(
        "web_logs", WEB + ".gz", gzip.compress(lines(GOOD_LINE, VALID_WEB) * 50)[:60], "unreadable file", refused=True
    ),
    # Authentication-log lines (JSON)
    "auth-not-json": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), f"{{{MARK}"), "malformed_line"),
    "auth-json-array": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), f'["{MARK}"]'), "malformed_line"),
    "auth-unknown-field": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(password=MARK)), "unknown_column"),
    "auth-missing-ts": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(ts=...)), "missing_field"),
    "auth-bad-ts": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(ts=f"{MARK}T10")), "bad_date"),
    "auth-future-ts": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(ts="2030-01-01T00:00:00Z")), "future_date"),
    "auth-user-id-text": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(user_id="12")), "bad_number"),
    "auth-event-not-text": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(event=7)), "bad_value"),
    "auth-ip-not-an-ip": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(ip=f"{MARK}.example")), "bad_ip"),
    "auth-huge-line": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(user_agent=MARK * 3000)), "oversized_record"),
    "auth-nul-in-field": FileCase("auth_logs", AUTH, lines(json.dumps(VALID_AUTH), auth(username="a\x00b")), "bad_encoding"),
}  # fmt: skip


@dataclass(frozen=True)
class PortalCase:
    table: str
    row: dict[str, object]
    code: str
    refused: bool = False


USER = {
    "id": 999999, "company_id": 1, "email": "planted.user@example.org", "username": f"u{MARK}",
    "first_name": "Planted", "last_name": MARK, "created_at": "2020-01-01 12:00:00",
    "updated_at": "2026-11-20 12:00:00",
}  # fmt: skip
PORTAL_CASES: dict[str, PortalCase] = {
    "portal-bad-email": PortalCase("users", {**USER, "email": f"{MARK} at example"}, "bad_email"),
    "portal-future-date": PortalCase("users", {**USER, "created_at": "2026-11-25 09:00:00"}, "future_date"),
    "portal-bad-date": PortalCase("users", {**USER, "created_at": f"{MARK} 12:00"}, "bad_date"),
    "portal-missing-username": PortalCase("users", {**USER, "username": "  "}, "missing_field"),
    "portal-bad-licence": PortalCase(
        "contracts",
        {"id": 999999, "company_id": 1, "licence_type": MARK, "start_date": "2020-01-01",
         "annual_fee": 10, "updated_at": "2026-11-20 12:00:00"},
        "bad_value",
    ),
    "portal-bad-amount": PortalCase(
        "invoices",
        {"id": 999999, "company_id": 1, "issued_on": "2020-01-01", "due_on": "2020-02-01",
         "amount": "12,50", "vat": 0, "updated_at": "2026-11-20 12:00:00"},
        "bad_number",
    ),
    "portal-bad-country": PortalCase(
        "companies",
        {"id": 999999, "name": "Planted Ltd", "country_code": "Sweden",
         "created_at": "2020-01-01 12:00:00", "updated_at": "2026-11-20 12:00:00"},
        "bad_country",
    ),
    "portal-unknown-column": PortalCase("users", {}, "not in the data map: 'fax'", refused=True),
}  # fmt: skip


# --- shared baselines -----------------------------------------------------------------------------


class Baselines:
    """A migrated empty warehouse to copy, and per source the fingerprints of a clean run and of
    a control run whose extra file holds the valid record alone."""

    def __init__(self, tmp: Path, sources: Path) -> None:
        self.tmp, self.sources = tmp, sources
        self.template = tmp / "template"
        engine = create_warehouse_engine(f"sqlite:///{self.template / 'main.db'}")
        migrate.upgrade(engine)
        engine.dispose()
        self._runs: dict[tuple[str, str], dict[str, str]] = {}
        self.count = 0

    def warehouse(self) -> str:
        self.count += 1
        folder = self.tmp / f"wh{self.count}"
        shutil.copytree(self.template, folder)
        return f"sqlite:///{folder / 'main.db'}"

    def copy_sources(self) -> Path:
        self.count += 1
        target = self.tmp / f"src{self.count}"
        shutil.copytree(self.sources, target)
        return target

    def run(self, source: str, extra: tuple[str, bytes] | None) -> dict[str, str]:
        key = (source, extra[0] if extra else "")
        if key not in self._runs:
            sources = self.copy_sources()
            if extra:
                _place(sources, source, *extra)
            url = self.warehouse()
            ingest(url, sources, source)
            self._runs[key] = fingerprint(url)
        return self._runs[key]


def _folder(sources: Path, source: str) -> Path:
    return {"crm": sources / "crm", "web_logs": sources / "logs" / "web"}.get(
        source, sources / "logs" / "auth"
    )


def _place(sources: Path, source: str, name: str, content: bytes) -> None:
    (_folder(sources, source) / name).write_bytes(content)


def _control_content(case: FileCase) -> bytes:
    """The case's file with the valid record only (what must be loaded)."""
    if case.source == "crm":
        valid = VALID_CONTACT if case.name == CONTACTS else VALID_ACTIVITY
        header = CONTACTS_HEADER if case.name == CONTACTS else ACTIVITIES_HEADER
        return f"{header}\n{valid}\n".encode()
    return ((GOOD_LINE if case.source == "web_logs" else json.dumps(VALID_AUTH)) + "\n").encode()


def ingest(url: str, sources: Path, source: str) -> str | None:
    """Ingest one source; the refusal's message when a batch was refused."""
    settings = Settings.from_env(
        {"CCG_HOME": str(sources.parent), "CCG_WAREHOUSE_URL": url, "CCG_SOURCE_DIR": str(sources)}
    )
    try:
        ingest_source(settings, source, run_id="hostile", window_start=None, window_end=END)
    except IngestFailed as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory, demo_sources: Path) -> Baselines:
    return Baselines(tmp_path_factory.mktemp("hostile"), demo_sources)


def _quarantined(url: str) -> set[tuple[str, str, str, str]]:
    return set(query(url, "SELECT source, source_ref, record_ref, reason FROM personal.quarantine"))


def _without_quarantine(prints: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in prints.items() if k != "personal.quarantine"}


def _assert_not_echoed(url: str, *texts: str | None) -> None:
    stored = query(url, "SELECT coalesce(error, '') FROM ops.ingest_batches")
    stored += query(url, "SELECT reason FROM personal.quarantine")
    for text in [*texts, *(row[0] for row in stored)]:
        assert MARK not in (text or ""), "an error text echoes the hostile value"


@pytest.mark.parametrize("name", list(FILE_CASES))
def test_a_hostile_file_or_record_is_rejected_by_name(baselines: Baselines, name: str) -> None:
    case = FILE_CASES[name]
    sources = baselines.copy_sources()
    _place(sources, case.source, case.name, case.content)
    url = baselines.warehouse()
    error = ingest(url, sources, case.source)
    batches = dict(
        query(
            url,
            f"SELECT source_ref, status FROM ops.ingest_batches WHERE source_ref = '{case.name}'",
        )
    )
    if case.refused:
        assert error is not None and case.code in error, error
        assert batches == {case.name: "refused"}
        # Nothing of the file was written: the other files loaded exactly as without it.
        assert fingerprint(url) == baselines.run(case.source, None)
    else:
        assert error is None, error
        assert batches == {case.name: "loaded"}
        control = baselines.run(case.source, (case.name, _control_content(case)))
        # The valid record beside the hostile one was loaded, and nothing else changed ...
        assert _without_quarantine(fingerprint(url)) == _without_quarantine(control)
        # ... the hostile one is quarantined whole, under its reason code, and counted.
        new = [q for q in _quarantined(url) if q[1] == case.name]
        assert len(new) == 1 and new[0][3].startswith(f"{case.code}: "), new
        assert query(
            url, f"SELECT rows_quarantined FROM ops.ingest_batches WHERE source_ref = '{case.name}'"
        ) == [(1,)]
    _assert_not_echoed(url, error)


@pytest.mark.parametrize("name", list(PORTAL_CASES))
def test_a_hostile_portal_row_is_rejected_by_name(baselines: Baselines, name: str) -> None:
    case = PORTAL_CASES[name]
    sources = baselines.copy_sources()
    with sqlite3.connect(sources / "portal.db") as db:
        if case.refused:
            db.execute("ALTER TABLE users ADD COLUMN fax TEXT")
        else:
            columns = ", ".join(case.row)
            marks = ", ".join("?" for _ in case.row)
            db.execute(
                f"INSERT INTO {case.table} ({columns}) VALUES ({marks})", list(case.row.values())
            )
    db.close()
    url = baselines.warehouse()
    error = ingest(url, sources, "portal")
    clean = baselines.run("portal", None)
    after = fingerprint(url)
    if case.refused:
        assert error is not None and case.code in error, error
        assert query(url, "SELECT status FROM ops.ingest_batches WHERE source_ref = 'users'") == [
            ("refused",)
        ]
        assert query(url, "SELECT count(*) FROM personal.portal_users") == [(0,)]
        kept = [t for t in ("personal.companies", "personal.contracts", "personal.invoices")]
        assert {k: after[k] for k in kept} == {k: clean[k] for k in kept}, "other tables kept"
    else:
        assert error is None, error
        assert _without_quarantine(after) == _without_quarantine(clean)
        new = [q for q in _quarantined(url) if q[2] == "id 999999"]
        assert len(new) == 1 and new[0][3].startswith(f"{case.code}: "), new
    _assert_not_echoed(url, error)


# --- subject requests: the drop folder ---------------------------------------------------------------

NOW = dt.datetime(2026, 11, 24, 9)
VALID_REQUEST = {"type": "access", "email": "valid.requester@example.org"}


def request(**changes: object) -> bytes:
    document = {"type": "rectify", "email": "hostile.requester@example.org", **changes}
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def corrections(**values: str) -> bytes:
    return request(payload={"corrections": values})


REQUEST_CASES: dict[str, tuple[bytes, str]] = {
    "request-unknown-type": (request(type=f"sell-{MARK}"), "unknown_type"),
    "request-missing-type": (request(type=...), "unknown_type"),
    "request-sql-in-email": (request(email=f"x' OR '1'='1 --{MARK}@example.org"), "bad_email"),
    "request-email-missing": (request(email=...), "bad_email"),
    "request-export-path-traversal": (request(type="access", payload={"export_name": f"../../{MARK}"}), "bad_export_name"),
    "request-export-absolute-path": (request(type="access", payload={"export_name": f"/etc/{MARK}"}), "bad_export_name"),
    "request-export-windows-path": (request(type="access", payload={"export_name": f"..\\..\\{MARK}"}), "bad_export_name"),
    "request-export-nul": (request(type="access", payload={"export_name": "a\x00b"}), "bad_export_name"),
    "request-sql-in-correction": (corrections(last_name=f"Ek'); DROP TABLE ops.subject_requests;--{MARK}"), "bad_payload"),
    "request-template-in-correction": (corrections(first_name="{{ 7*7 }}" + MARK), "bad_payload"),
    "request-template-in-job-title": (corrections(job_title="{% include '/etc/passwd' %}"), "bad_payload"),
    "request-jndi-in-note": (request(type="erase", payload={"note": "${jndi:ldap://" + MARK + "}"}), "bad_payload"),
    "request-control-chars": (corrections(last_name="Ek\x1b[31m"), "bad_payload"),
    "request-huge-correction": (corrections(last_name=MARK * 100), "bad_payload"),
    "request-unrectifiable-field": (corrections(password_hash=MARK), "bad_payload"),
    "request-unknown-payload-field": (request(type="erase", payload={"sql": MARK}), "bad_payload"),
    "request-payload-not-object": (request(payload=[MARK]), "bad_payload"),
    "request-bad-scope": (request(type="object", payload={"scope": MARK}), "bad_payload"),
    "request-unknown-field": (request(type="erase", admin=True), "unknown_field"),
    "request-bad-received-at": (request(type="erase", received_at=f"{MARK}"), "bad_date"),
    "request-future-received-at": (request(type="erase", received_at="2030-01-01T00:00:00"), "bad_date"),
    "request-not-json": (f"{{{MARK}".encode(), "bad_json"),
    "request-not-an-object": (json.dumps([MARK]).encode(), "bad_json"),
    "request-latin1-file": (request(type="erase").replace(b"hostile", b"h\xf6stile"), "bad_json"),
    "request-oversized-file": (request(type="erase", payload={"note": "x" * intake.MAX_PAYLOAD_BYTES}), "oversized"),
}  # fmt: skip


def _requests_warehouse(baselines: Baselines) -> sa.Engine:
    return create_warehouse_engine(baselines.warehouse())


def _stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        requests = conn.execute(sa.select(sa.func.count()).select_from(s.subject_requests))
        payloads = conn.execute(sa.select(sa.func.count()).select_from(s.request_payloads))
        return requests.scalar_one(), payloads.scalar_one()


@pytest.mark.parametrize("name", list(REQUEST_CASES))
def test_a_hostile_request_is_rejected_by_name(
    baselines: Baselines, tmp_path: Path, name: str
) -> None:
    content, code = REQUEST_CASES[name]
    engine = _requests_warehouse(baselines)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a-valid.json").write_text(json.dumps(VALID_REQUEST))
    (inbox / "b-hostile.json").write_bytes(content)
    try:
        report = intake.take_in_drop_folder(engine, "key", inbox, NOW)
        assert report.rejected == {code: 1} and len(report.accepted) == 1, report
        assert _stored(engine) == (1, 1), "the valid request is stored, nothing of the hostile one"
        with engine.connect() as conn:
            stored = conn.execute(sa.select(s.request_payloads.c.email)).scalar_one()
    finally:
        engine.dispose()
    assert stored == VALID_REQUEST["email"]
    reason = (inbox / "rejected" / "b-hostile.json.reason").read_text()
    assert reason.startswith(f"{code}: ") and MARK not in reason
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []
    assert [p.name for p in (inbox / "processed").iterdir()] == ["a-valid.json"]


@pytest.mark.parametrize("how", ["same-request-again", "same-file-name-again"])
def test_a_duplicate_request_is_refused_by_name(
    baselines: Baselines, tmp_path: Path, how: str
) -> None:
    engine = _requests_warehouse(baselines)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "first.json").write_text(json.dumps(VALID_REQUEST))
    try:
        first = intake.take_in_drop_folder(engine, "key", inbox, NOW)
        assert len(first.accepted) == 1
        again = {**VALID_REQUEST, "email": VALID_REQUEST["email"].upper()}
        if how == "same-file-name-again":  # the portal writes the same file twice
            again = {**VALID_REQUEST, "type": "erase"}
        (inbox / ("first.json" if how == "same-file-name-again" else "second.json")).write_text(
            json.dumps(again)
        )
        second = intake.take_in_drop_folder(engine, "key", inbox, NOW)
        assert second.duplicates == 1 and not second.accepted and not second.rejected
        assert _stored(engine) == (1, 1)
    finally:
        engine.dispose()
    processed = sorted(p.name for p in (inbox / "processed").iterdir())
    kept = "first.2.json" if how == "same-file-name-again" else "second.json"
    assert processed == sorted(["first.json", kept, f"{kept}.reason"]), "nothing lost"
    reason = (inbox / "processed" / f"{kept}.reason").read_text()
    assert reason.startswith("duplicate of open request")

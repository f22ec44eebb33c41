"""Real `ccg_subject_requests` DAG runs on SQLite and PostgreSQL: every request type end to end,
erasure then re-ingest of the same sources, the CRM erasure confirmed by a later export, and the
tax restriction against retention over time."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import env_for, query, run_dag, state_of

from ccg_pipeline import requests
from ccg_pipeline.config import Settings
from ccg_pipeline.ingest.common import normalise_email
from ccg_pipeline.retention import run_retention
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
RUN = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
NOW = RUN.replace(tzinfo=None)


def _emails(url: str) -> dict[str, str]:
    """People to make requests for, chosen by what the demo population holds."""
    contact_and_user = query(
        url,
        "SELECT u.email FROM personal.portal_users u "
        "JOIN personal.crm_contacts c ON c.subject_id = u.subject_id "
        "JOIN personal.companies co ON co.company_id = u.company_id "
        "ORDER BY u.user_id",
    )
    prospect = query(
        url,
        "SELECT c.email FROM personal.crm_contacts c WHERE c.subject_id NOT IN "
        "(SELECT subject_id FROM personal.portal_users) ORDER BY c.crm_contact_id",
    )
    users = [row[0] for row in contact_and_user]
    return {
        "erase_customer": users[0],
        "access": users[1],
        "rectify": users[2],
        "restrict": users[3],
        "object": users[4],
        "withdraw-consent": users[5],
        "erase_prospect": prospect[0][0],
    }


def _drop(inbox: Path, name: str, document: dict) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / f"{name}.json").write_text(json.dumps(document))


def _statuses(url: str) -> dict[str, str]:
    return dict(
        query(url, "SELECT request_type || '/' || request_id, status FROM ops.subject_requests")
    )


def _request_events(run, since: dt.datetime) -> list[dict]:
    """The `ccg://warehouse/requests` events this run emitted. A run for the same logical date
    has the same run id (as a cleared and rerun Airflow run keeps its id), so the events of an
    earlier run in the same Airflow database (the other backend's case) are told apart by time."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent.extra).join(
            AssetModel, AssetEvent.asset_id == AssetModel.id
        )
        return [
            extra
            for (extra,) in rows.filter(
                AssetModel.uri == "ccg://warehouse/requests",
                AssetEvent.source_run_id == run.run_id,
                AssetEvent.timestamp >= since,
            )
        ]


def test_every_request_type_through_the_dag_and_erasure_survives_reingest(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)  # erasure and rectification change the portal DB
    env = env_for(warehouse_url, sources, tmp_path)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", RUN, env)) == "success"
    people = _emails(warehouse_url)
    inbox = tmp_path / "requests" / "inbox"
    # The customer's erasure arrived 27 days ago: still open afterwards (CRM), so it is due soon.
    _drop(
        inbox,
        "erase-customer",
        {
            "type": "erase",
            "email": people["erase_customer"],
            "received_at": (NOW - dt.timedelta(days=27)).isoformat(),
        },
    )
    _drop(inbox, "erase-prospect", {"type": "erase", "email": people["erase_prospect"]})
    _drop(
        inbox,
        "access",
        {
            "type": "access",
            "email": people["access"].upper(),
            "payload": {"export_name": "for-the-subject"},
        },
    )
    _drop(
        inbox,
        "rectify",
        {
            "type": "rectify",
            "email": people["rectify"],
            "payload": {"corrections": {"last_name": "Corrected-Name"}},
        },
    )
    _drop(inbox, "restrict", {"type": "restrict", "email": people["restrict"]})
    _drop(
        inbox,
        "object",
        {"type": "object", "email": people["object"], "payload": {"scope": "legitimate_interest"}},
    )
    _drop(inbox, "withdraw", {"type": "withdraw-consent", "email": people["withdraw-consent"]})
    _drop(
        inbox,
        "hostile",
        {"type": "access", "email": people["access"], "payload": {"export_name": "../../../etc"}},
    )

    # First run: taken in, waiting for verification, clock stopped, nothing done.
    assert state_of(run_dag(monkeypatch, "ccg_subject_requests", RUN, env)) == "success"
    assert set(_statuses(warehouse_url).values()) == {s.AWAITING_VERIFICATION}
    assert len(_statuses(warehouse_url)) == 7
    assert (inbox / "rejected" / "hostile.json.reason").read_text().startswith("bad_export_name")

    engine = create_warehouse_engine(warehouse_url)
    try:
        for request in requests.queue(engine, NOW.date()):
            verified_at = NOW - dt.timedelta(days=27) if request.received_on < NOW.date() else NOW
            requests.verify(engine, request.request_id, verified_at)
    finally:
        engine.dispose()

    # Second run: every type handled.
    second = RUN + dt.timedelta(hours=1)
    started = dt.datetime.now(dt.UTC)
    second_run = run_dag(monkeypatch, "ccg_subject_requests", second, env)
    assert state_of(second_run) == "success"
    # Erasures, restrictions and an objection changed who is counted: the statistics rebuild
    # the current release, and with none published yet the event names no day of its own.
    assert _request_events(second_run, started) == [{"run_id": second_run.run_id}]
    statuses = _statuses(warehouse_url)
    erasures = {k: v for k, v in statuses.items() if k.startswith("erase/")}
    assert set(erasures.values()) == {s.AWAITING_CRM}  # both were in the CRM
    assert {v for k, v in statuses.items() if not k.startswith("erase/")} == {s.COMPLETED}
    # The emails and details are dropped from the personal zone once a request is handled.
    assert query(warehouse_url, "SELECT count(*) FROM personal.request_payloads") == [(0,)]

    # Access: a private package with the data and the notice's art. 15 content.
    (package,) = (tmp_path / "exports" / "requests").iterdir()
    assert package.name.endswith("-for-the-subject")
    assert stat.S_IMODE(package.stat().st_mode) == 0o700
    document = json.loads((package / "data.json").read_text())
    assert document["data"]["personal.portal_users"][0]["email"].lower() == people["access"]
    assert document["about_the_processing"]["purposes"]
    assert document["about_the_processing"]["retention"]
    assert stat.S_IMODE((package / "data.json").stat().st_mode) == 0o600
    manifest = json.loads((package / "manifest.json").read_text())
    assert "personal.portal_users.csv" in manifest

    # Rectification: personal zone and the portal database.
    assert query(
        warehouse_url,
        f"SELECT last_name FROM personal.portal_users WHERE email = '{people['rectify']}'",
    ) == [("Corrected-Name",)]
    portal = sa.create_engine(f"sqlite:///{sources / 'portal.db'}")
    with portal.connect() as conn:
        corrected = conn.execute(
            sa.text("SELECT last_name FROM users WHERE lower(email) = :e"),
            {"e": people["rectify"]},
        ).all()
        erased_login = conn.execute(
            sa.text("SELECT count(*) FROM users WHERE lower(email) = :e"),
            {"e": people["erase_customer"]},
        ).scalar()
    portal.dispose()
    assert corrected == [("Corrected-Name",)] and erased_login == 0

    # Erasure of a customer contact: CRM rows gone, profile nulled, tax records restricted.
    customer = people["erase_customer"]
    assert query(
        warehouse_url, f"SELECT count(*) FROM personal.crm_contacts WHERE email = '{customer}'"
    ) == [(0,)]
    (profile,) = query(
        warehouse_url,
        f"SELECT password_hash, interests FROM personal.portal_users WHERE email = '{customer}'",
    )
    assert profile == (None, None)
    origins = sorted(r[0] for r in query(warehouse_url, "SELECT origin FROM ops.legal_holds"))
    assert origins == ["erasure_restriction", "restriction_request"]
    # Erasure of a prospect: nothing left but the tombstone.
    prospect = people["erase_prospect"]
    assert query(
        warehouse_url, f"SELECT count(*) FROM personal.subjects WHERE email_norm = '{prospect}'"
    ) == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM ops.erasure_tombstones") == [(2,)]
    assert len(list((tmp_path / "outbox" / "crm").glob("*.json"))) == 2
    # Objection and withdrawal: suppressed; the objection also stops legitimate interests.
    assert query(warehouse_url, "SELECT count(*) FROM ops.marketing_suppression") == [(2,)]
    assert query(warehouse_url, "SELECT scope FROM ops.processing_objections") == [
        ("legitimate_interest",)
    ]
    # The erasure received 27 days ago is open and due within 7 days: the alert lists it.
    due = requests.run_due_check(Settings.from_env(env), NOW.date())
    assert [d["type"] for d in due] == ["erase"] and due[0]["days_left"] <= 7

    # Re-ingest of the same sources (every file read again) brings neither erased person back.
    reingest = run_dag(monkeypatch, "ccg_ingest", RUN, env, {"full_refresh": True})
    assert state_of(reingest) == "success"
    for email in (customer, prospect):
        assert query(
            warehouse_url, f"SELECT count(*) FROM personal.crm_contacts WHERE email = '{email}'"
        ) == [(0,)]
    assert query(warehouse_url, "SELECT sum(rows_erased) FROM ops.ingest_batches")[0][0] >= 2

    # The CRM carries out the instruction: the next export lacks them, and the erasures close.
    crm = sources / "crm"
    latest = sorted(crm.glob("contacts_*.csv"))[-1]
    erased = {normalise_email(customer), normalise_email(prospect)}

    def still_held(row: list[str]) -> bool:
        try:
            return normalise_email(row[3]) in erased  # the Email column
        except (IndexError, ValueError):
            return False  # a damaged row stays as it is

    with latest.open(newline="", encoding="utf-8") as fh:
        rows = [row for row in csv.reader(fh) if not still_held(row)]
    with (crm / "contacts_20261124.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    next_day = RUN + dt.timedelta(days=1)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", next_day, env)) == "success"
    assert state_of(run_dag(monkeypatch, "ccg_subject_requests", next_day, env)) == "success"
    assert set(_statuses(warehouse_url).values()) == {s.COMPLETED}


def test_tax_records_restricted_by_an_erasure_are_deleted_when_retention_is_due(
    demo_sources: Path, warehouse_url: str, tmp_path: Path, settings_for
) -> None:
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.requests.intake import parse_submission, submit

    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)  # the erasure deletes a portal login
    settings = settings_for(warehouse_url, sources)
    engine = create_warehouse_engine(warehouse_url)
    migrate.upgrade(engine)
    engine.dispose()
    for source in ("portal", "crm"):
        ingest_source(settings, source, run_id="load", window_start=None, window_end=NOW)
    # Two people at companies that closed within the six years: one erased (its tax records
    # restricted), one under a restriction request's hold.
    closed = query(
        warehouse_url,
        "SELECT u.email, u.company_id FROM personal.portal_users u JOIN personal.companies c "
        "ON c.company_id = u.company_id WHERE c.closed_at >= '2023-01-01' ORDER BY u.user_id",
    )
    erased, erased_company = closed[0]
    # At another company: a hold on anyone at a company holds the company's shared tax records.
    restricted = next(email for email, company in closed if company != erased_company)
    engine = create_warehouse_engine(warehouse_url)
    try:
        for kind, email in (("erase", erased), ("restrict", restricted)):
            request_id = submit(
                engine,
                settings.pseudonym_key,
                parse_submission(kind, email, None, received_at=NOW, source="cli"),
            )
            requests.verify(engine, request_id, NOW)
        report = requests.process_requests(engine, settings, NOW)
    finally:
        engine.dispose()
    assert report.failed == [] and report.handled == {"erase": 1, "restrict": 1}

    def present(email: str) -> bool:
        return query(
            warehouse_url,
            f"SELECT count(*) FROM personal.portal_users WHERE email = '{email}'",
        ) == [(1,)]

    # Within the six years both are kept: the erased person's tax records only restricted.
    run_retention(settings, NOW.date(), "retention-now")
    assert present(erased) and present(restricted)
    # Long after the six years, retention deletes the restricted tax records; a restriction
    # request's hold still blocks deletion.
    run_retention(settings, dt.date(2045, 1, 1), "retention-2045")
    assert not present(erased)
    assert present(restricted)


def test_an_erasure_reaches_quarantine_and_files_and_is_not_done_while_anything_is_left(
    demo_sources: Path, tmp_path: Path, settings_for
) -> None:
    """An erased prospect's quarantined record, earlier access export, rejected request file
    and marketing-list line all go; while a copy the erasure cannot reach remains, the request
    stays verified (the erasure oracle), and it completes once that copy is gone."""
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.ingest.common import pseudonym
    from ccg_pipeline.marketing import marketing_exports
    from ccg_pipeline.requests.handlers import crm_outbox_dir, exports_root
    from ccg_pipeline.requests.intake import parse_submission, submit

    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    settings = settings_for(url, sources)
    engine = create_warehouse_engine(url)
    migrate.upgrade(engine)
    for source in ("portal", "crm"):
        ingest_source(settings, source, run_id="load", window_start=None, window_end=NOW)
    email = _emails(url)["erase_prospect"]
    key = pseudonym(settings.pseudonym_key, normalise_email(email))
    with engine.begin() as conn:
        conn.execute(
            sa.insert(s.quarantine).values(
                source="crm.contacts",
                source_ref="contacts_20261120.csv",
                record_ref="row 9",
                reason="bad_date: Create Date",
                raw_record="{}",  # found by the key read from the record, not by its text
                run_id="load",
                quarantined_at=NOW,
                subject_key=key,
            )
        )

    def request(kind: str) -> str:
        request_id = submit(
            engine,
            settings.pseudonym_key,
            parse_submission(kind, email, None, received_at=NOW, source="cli"),
        )
        requests.verify(engine, request_id, NOW)
        return request_id

    try:
        request("access")
        assert requests.process_requests(engine, settings, NOW).handled == {"access": 1}
        rejected = requests.inbox(settings) / "rejected"
        rejected.mkdir(parents=True)
        (rejected / "typo.json").write_text(json.dumps({"type": "erasee", "email": email}))
        marketing_exports(settings).mkdir(parents=True)
        (marketing_exports(settings) / "marketing-list-2026-11-23.csv").write_text(
            f"email,first_name,basis\n{email},A,consent\nother@example.org,B,consent\n"
        )
        # A copy nothing in the pipeline should ever write: the erasure must not call itself done.
        crm_outbox_dir(settings).mkdir(parents=True)
        stray = crm_outbox_dir(settings) / "stray.txt"
        stray.write_text(f"call {email.upper()} back\n")

        erase_id = request("erase")
        report = requests.process_requests(engine, settings, NOW)
        assert report.failed == [erase_id]
        assert _statuses(url)[f"erase/{erase_id}"] == "verified"
        stray.unlink()
        report = requests.process_requests(engine, settings, NOW)
        assert report.failed == [] and report.handled == {"erase": 1}
    finally:
        engine.dispose()
    assert _statuses(url)[f"erase/{erase_id}"] in {"completed", "awaiting_crm"}
    assert query(url, f"SELECT count(*) FROM personal.quarantine WHERE subject_key = '{key}'") == [
        (0,)
    ]
    needle = email.lower()
    for folder in (exports_root(settings), requests.inbox(settings), marketing_exports(settings)):
        for path in folder.rglob("*"):
            if path.is_file():
                assert needle not in path.read_text(encoding="utf-8").lower(), path.name
    assert (
        "other@example.org"
        in (marketing_exports(settings) / "marketing-list-2026-11-23.csv").read_text()
    )


def test_activities_the_crm_logs_under_an_erased_persons_record_are_not_held(
    demo_sources: Path, warehouse_url: str, tmp_path: Path, settings_for
) -> None:
    """Found by the seven-year soak: the CRM keeps an erased person's record (and logs an
    opt-out under it) until it carries out the erasure. Activity rows carry the record id but no
    address, so the tombstone alone let them in, unmatched, where no rule ever reached them."""
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.requests.intake import parse_submission, submit

    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    settings = settings_for(warehouse_url, sources)
    engine = create_warehouse_engine(warehouse_url)
    migrate.upgrade(engine)

    def ingest_crm(at: dt.datetime) -> None:
        ingest_source(settings, "crm", run_id=f"crm-{at:%Y%m%d}", window_start=None, window_end=at)

    ingest_source(settings, "portal", run_id="load", window_start=None, window_end=NOW)
    ingest_crm(NOW)
    email = _emails(warehouse_url)["erase_prospect"]
    ((record, first_name, last_name),) = query(
        warehouse_url,
        "SELECT crm_contact_id, first_name, last_name FROM personal.crm_contacts "
        f"WHERE email = '{email}'",
    )
    other = query(
        warehouse_url,
        f"SELECT min(crm_contact_id) FROM personal.crm_contacts WHERE email <> '{email}'",
    )[0][0]
    # Retention already retired the record from the warehouse; the CRM still lists it.
    with engine.begin() as conn:
        for table in (s.crm_activities, s.crm_contacts):
            conn.execute(sa.delete(table).where(table.c.crm_contact_id == record))
    try:
        request_id = submit(
            engine,
            settings.pseudonym_key,
            parse_submission("erase", email, None, received_at=NOW, source="cli"),
        )
        requests.verify(engine, request_id, NOW)
        assert requests.process_requests(engine, settings, NOW).handled == {"erase": 1}
    finally:
        engine.dispose()
    # So the CRM is told to erase the record all the same, and the erasure waits for it.
    (instruction,) = (tmp_path / "home" / "outbox" / "crm").glob("*.json")
    assert json.loads(instruction.read_text())["crm_record_ids"] == [record]
    assert set(_statuses(warehouse_url).values()) == {s.AWAITING_CRM}

    crm = sources / "crm"
    header = "Activity ID,Contact ID,Activity Type,Activity Date,Channel,Subject,Body\n"
    # The next day the CRM, which still holds the record, logs a note and an opt-out under it;
    # and it has re-created the person under a new record whose activity arrives a day before
    # the contacts export that lists it.
    recreated = 999_001
    (crm / "activities_20261125.csv").write_text(
        header
        + f"990001,{record},NOTE,2026-11-25 10:00:00,phone,Note,Called back.\n"
        + f"990002,{record},MARKETING_OPT_OUT,2026-11-25 11:00:00,email,Unsubscribed,\n"
        + f"990003,{recreated},NOTE,2026-11-25 12:00:00,phone,Note,New record.\n"
        + f"990004,{other},NOTE,2026-11-25 13:00:00,phone,Note,Someone else.\n"
    )
    ingest_crm(NOW + dt.timedelta(days=2))
    held = "SELECT activity_id FROM personal.crm_activities WHERE activity_id >= 990001"
    assert query(warehouse_url, held) == [(990003,), (990004,)]

    latest = sorted(crm.glob("contacts_*.csv"))[-1]
    with latest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows.append(
        [
            str(recreated),
            first_name,
            last_name,
            email.upper(),
            "",
            "",
            "",
            "GB",
            "lead",
            "",
            "2026-11-25 12:00:00",
            "2026-11-25 12:00:00",
        ]
    )
    with (crm / "contacts_20261126.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    (crm / "activities_20261126.csv").write_text(header)
    ingest_crm(NOW + dt.timedelta(days=3))
    assert query(warehouse_url, held) == [(990004,)]
    assert query(
        warehouse_url,
        f"SELECT count(*) FROM personal.crm_contacts WHERE "
        f"crm_contact_id IN ({record}, {recreated})",
    ) == [(0,)]
    (erased_by_ingest,) = query(
        warehouse_url,
        "SELECT sum(rows_erased) FROM ops.ingest_batches WHERE source = 'crm.activities' "
        "AND run_id <> 'crm-20261124'",
    )[0]
    assert erased_by_ingest == 3
    # ops keeps keyed hashes of the two records, never the ids themselves.
    keys = [k for (k,) in query(warehouse_url, "SELECT contact_key FROM ops.erased_crm_contacts")]
    assert len(keys) == 2 and all(len(k) == 64 and str(record) not in k for k in keys)

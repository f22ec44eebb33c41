"""Subject requests without a DAG: the one-month clock, validation of hostile input, the drop
folder, duplicates and the operator queue, on a throw-away SQLite warehouse."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from ccg_pipeline import requests
from ccg_pipeline.requests import clock, intake
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.unit
KEY = "test-key"
NOW = dt.datetime(2026, 11, 24, 9, 0)


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


# --- the clock ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), dt.date(2028, 2, 29)),
        (dt.date(2026, 3, 31), dt.date(2026, 4, 30)),
        (dt.date(2026, 12, 15), dt.date(2027, 1, 15)),
        (dt.date(2026, 2, 28), dt.date(2026, 3, 28)),
    ],
)
def test_due_one_calendar_month_after_receipt_or_the_shorter_months_last_day(
    received: dt.date, due: dt.date
) -> None:
    assert clock.due_date(received, received) == due


def test_the_clock_stops_while_the_request_awaits_verification() -> None:
    received = dt.date(2026, 11, 2)
    assert clock.due_date(received, dt.date(2026, 11, 12)) == dt.date(2026, 12, 12)
    with pytest.raises(clock.ClockError):
        clock.due_date(received, dt.date(2026, 11, 1))


def test_an_extension_is_one_or_two_months_decided_within_the_first() -> None:
    first_due = dt.date(2026, 12, 31)
    assert clock.extended_due_date(first_due, 2, dt.date(2026, 12, 31)) == dt.date(2027, 2, 28)
    with pytest.raises(clock.ClockError, match="within the first month"):
        clock.extended_due_date(first_due, 1, dt.date(2027, 1, 1))
    with pytest.raises(clock.ClockError, match="1 to 2 months"):
        clock.extended_due_date(first_due, 3, dt.date(2026, 12, 1))


@given(
    received=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    waited=st.integers(0, 60),
)
def test_due_date_invariants(received: dt.date, waited: int) -> None:
    verified = received + dt.timedelta(days=waited)
    due = clock.due_date(received, verified)
    unpaused = due - dt.timedelta(days=waited)
    assert 28 <= (unpaused - received).days <= 31
    assert (unpaused.year * 12 + unpaused.month) - (received.year * 12 + received.month) == 1
    assert unpaused.day == received.day or unpaused.day < received.day  # clamped only when short


# --- validation of hostile input -----------------------------------------------------------------


def _parse(request_type: object = "access", email: object = "anna@example.se", payload=None):
    return intake.parse_submission(
        request_type, email, payload, received_at=NOW, source="cli", source_ref=None
    )


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"request_type": "delete-everything"}, "unknown_type", "type must be one of"),
        ({"request_type": None}, "unknown_type", "type must be one of"),
        ({"email": "not-an-email"}, "bad_email", "not a valid address"),
        ({"email": "anna@example"}, "bad_email", "not a valid address"),
        ({"email": "a@@example.se"}, "bad_email", "not a valid address"),
        ({"email": "x' OR '1'='1@example.se"}, "bad_email", "not a valid address"),
        ({"email": "a@example.se'; DROP TABLE ops.subject_requests;--"}, "bad_email", "valid"),
        ({"email": ""}, "bad_email", "email is missing"),
        ({"payload": {"export_name": "../../etc/passwd"}}, "bad_export_name", "no paths"),
        ({"payload": {"export_name": "a/b"}}, "bad_export_name", "no paths"),
        ({"payload": {"export_name": ".hidden"}}, "bad_export_name", "no paths"),
        ({"payload": {"sql": "1; DROP TABLE x"}}, "bad_payload", "unknown payload field"),
        ({"payload": ["not", "an", "object"]}, "bad_payload", "must be a JSON object"),
        (
            {"request_type": "rectify", "payload": {"corrections": {"password_hash": "x"}}},
            "bad_payload",
            "cannot be rectified",
        ),
        (
            {"request_type": "rectify", "payload": {"corrections": {"first_name": "A" * 201}}},
            "bad_payload",
            "1 to 200 characters",
        ),
        (
            {"request_type": "rectify", "payload": {"corrections": {"first_name": "A\x00B"}}},
            "bad_payload",
            "control characters",
        ),
        ({"request_type": "object", "payload": {"scope": "everything"}}, "bad_payload", "scope"),
    ],
)
def test_hostile_requests_are_rejected_with_named_errors(
    kwargs: dict, code: str, message: str
) -> None:
    with pytest.raises(intake.RequestError, match=message) as raised:
        _parse(**kwargs)
    assert raised.value.code == code
    for value in kwargs.values():  # the message names the field, never echoes the value
        if isinstance(value, str) and len(value) > 12:
            assert value not in str(raised.value)


def test_an_unknown_key_is_named_only_if_it_looks_like_a_field_name() -> None:
    """A key can carry data as well as a value can: an address used as a key is counted, not
    echoed (the message goes to a `.reason` file and the log)."""
    payload = {"sql": 1, "anna.svensson@example.se": "x", "Anna Svensson": "y"}
    with pytest.raises(intake.RequestError) as raised:
        _parse("erase", payload=payload)
    assert str(raised.value) == "unknown payload field(s) for erase: ['sql'] and 2 more"
    corrections = {"password_hash": "x", "anna.svensson@example.se": "y"}
    with pytest.raises(intake.RequestError) as raised:
        _parse("rectify", payload={"corrections": corrections})
    assert str(raised.value) == "fields that cannot be rectified: ['password_hash'] and 1 more"
    assert "svensson" not in str(raised.value).lower()


def test_an_oversized_payload_file_is_rejected(tmp_path: Path) -> None:
    big = tmp_path / "payload.json"
    big.write_text(json.dumps({"note": "x" * (intake.MAX_PAYLOAD_BYTES + 1)}))
    with pytest.raises(intake.RequestError, match="larger than") as raised:
        intake.read_payload_file(big)
    assert raised.value.code == "oversized"


def test_sql_in_a_correction_is_refused_and_a_real_name_with_quotes_is_stored_as_text(
    engine,
) -> None:
    injection = "Robert'); DROP TABLE ops.subject_requests;--"
    with pytest.raises(intake.RequestError, match="characters a last_name does not use"):
        _parse("rectify", payload={"corrections": {"last_name": injection}})
    name = "O'Brien-Åkesson"
    submission = _parse("rectify", payload={"corrections": {"last_name": name}})
    request_id = intake.submit(engine, KEY, submission)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(s.request_payloads.c.payload).where(
                s.request_payloads.c.request_id == request_id
            )
        ).scalar_one()
        assert json.loads(stored)["corrections"]["last_name"] == name
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(s.subject_requests)).scalar() == 1
        )


# --- intake, duplicates, queue -------------------------------------------------------------------


def test_submit_stores_a_pseudonym_and_a_masked_email_only_in_ops(engine) -> None:
    request_id = intake.submit(engine, KEY, _parse(email="Anna.Svensson@Example.se"))
    with engine.connect() as conn:
        row = conn.execute(sa.select(s.subject_requests)).one()
    assert row.request_id == request_id
    assert row.status == s.AWAITING_VERIFICATION and row.due_on is None
    assert row.email_masked == "an***@ex***.se"
    assert "svensson" not in " ".join(str(v) for v in row).lower()


def test_an_open_duplicate_is_refused_but_a_new_request_after_completion_is_not(engine) -> None:
    first = intake.submit(engine, KEY, _parse())
    with pytest.raises(intake.DuplicateRequest, match=first):
        intake.submit(engine, KEY, _parse(email=" ANNA@example.se "))
    intake.submit(engine, KEY, _parse("erase"))  # another type is another request
    with engine.begin() as conn:
        conn.execute(sa.update(s.subject_requests).values(status=s.COMPLETED))
    intake.submit(engine, KEY, _parse())


def test_the_drop_folder_keeps_valid_requests_and_quarantines_the_rest(engine, tmp_path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = {
        "a-ok.json": {
            "type": "access",
            "email": "anna@example.se",
            "received_at": "2026-11-20T10:00",
        },
        "b-dup.json": {"type": "access", "email": "anna@example.se"},
        "unknown-type.json": {"type": "sell-my-data", "email": "b@example.se"},
        "extra-field.json": {"type": "erase", "email": "b@example.se", "admin": True},
        "future.json": {"type": "erase", "email": "b@example.se", "received_at": "2030-01-01"},
        "bad-date.json": {"type": "erase", "email": "b@example.se", "received_at": "yesterday"},
    }
    for name, document in files.items():
        (inbox / name).write_text(json.dumps(document))
    (inbox / "broken.json").write_text("{not json")
    (inbox / "huge.json").write_text(" " * (intake.MAX_PAYLOAD_BYTES + 1))
    report = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    assert len(report.accepted) == 1 and report.duplicates == 1
    assert report.rejected == {
        "unknown_type": 1,
        "unknown_field": 1,
        "bad_date": 2,
        "bad_json": 1,
        "oversized": 1,
    }
    assert not list(inbox.glob("*.json"))  # nothing left behind, nothing lost
    assert {p.name for p in (inbox / "processed").glob("*.json")} == {"a-ok.json", "b-dup.json"}
    receipts = [json.loads(p.read_text()) for p in sorted((inbox / "processed").glob("*.json"))]
    assert [(r["status"], r["source_ref"]) for r in receipts] == [
        ("accepted", "a-ok.json"),
        ("duplicate", "b-dup.json"),
    ]
    assert receipts[0]["request_id"] == receipts[1]["duplicate_of"] == report.accepted[0]
    assert not any("anna" in p.read_text() for p in (inbox / "processed").iterdir())
    rejected = inbox / "rejected"
    assert len(list(rejected.glob("*.json"))) == 6
    assert (rejected / "extra-field.json.reason").read_text().startswith("unknown_field")
    # Reading the folder again takes nothing twice.
    again = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    assert again.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": {}}
    with engine.connect() as conn:
        received = conn.execute(sa.select(s.subject_requests.c.received_at)).scalar_one()
    assert received == dt.datetime(2026, 11, 20, 10, 0)


def test_verify_extend_and_the_queue(engine) -> None:
    request_id = intake.submit(
        engine,
        KEY,
        intake.parse_submission(
            "erase", "anna@example.se", None, received_at=dt.datetime(2026, 11, 1, 8), source="cli"
        ),
    )
    assert requests.queue(engine, dt.date(2026, 11, 3))[0].days_left is None  # clock stopped
    with pytest.raises(requests.RequestStateError, match="only an open, verified request"):
        requests.extend(engine, request_id, 1, "complex", dt.date(2026, 11, 3))
    due = requests.verify(engine, request_id, dt.datetime(2026, 11, 4, 12))
    assert due == dt.date(2026, 12, 4)
    with pytest.raises(requests.RequestStateError, match="awaiting verification"):
        requests.verify(engine, request_id, dt.datetime(2026, 11, 5))
    assert [e.days_left for e in requests.due_soon(engine, dt.date(2026, 11, 27))] == [7]
    assert requests.due_soon(engine, dt.date(2026, 11, 26)) == []
    with pytest.raises(requests.RequestStateError, match="reason"):
        requests.extend(engine, request_id, 1, " ", dt.date(2026, 11, 20))
    assert requests.extend(engine, request_id, 2, "many sources", dt.date(2026, 11, 20)) == (
        dt.date(2027, 2, 4)
    )
    with pytest.raises(requests.RequestStateError, match="already extended"):
        requests.extend(engine, request_id, 1, "again", dt.date(2026, 11, 21))
    (entry,) = requests.queue(engine, dt.date(2026, 11, 20))
    assert (entry.email_masked, entry.status, entry.due_on) == (
        "an***@ex***.se",
        s.VERIFIED,
        dt.date(2027, 2, 4),
    )


def test_an_alert_is_one_error_line_with_ids_and_counts(caplog) -> None:
    from ccg_pipeline.dag_support import alert

    with caplog.at_level("ERROR"):
        alert(
            {"run_id": "r1"}, "subject requests due within 7 days", {"requests": [{"days_left": 3}]}
        )
    (record,) = caplog.records
    assert record.getMessage().startswith("CCG ALERT subject requests due within 7 days")
    assert "'run_id': 'r1'" in record.getMessage()

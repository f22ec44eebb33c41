"""What the request drop folder keeps, on real files and a real SQLite warehouse: a taken-in
request leaves an id-only receipt (no email, no payload values), a rejected file is kept as it
came but owner-only with a reason that echoes nothing, every folder is owner-only, the same name
dropped twice keeps both receipts, and a crash between the receipt and the deletion of the
original loses nothing and takes nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccg_pipeline import requests
from ccg_pipeline.config import Settings
from ccg_pipeline.requests import intake
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
KEY = "test-key"
NOW = dt.datetime(2026, 11, 24, 9, 0)
EMAIL = "ingrid.lindqvist@example.se"
LOCAL_PART = EMAIL.partition("@")[0]
CORRECTED = "Lindqvist-Holm"
RECTIFY = {
    "type": "rectify",
    "email": EMAIL,
    "received_at": "2026-11-20T10:00",
    "payload": {"corrections": {"last_name": CORRECTED}, "note": "married in October"},
}
RECEIPT_FIELDS = {"request_id", "type", "received_at", "taken_in_at", "source_ref", "status"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A drop folder as a portal would leave it: world-readable, with world-readable files."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    folder.chmod(0o755)
    return folder


def _drop(inbox: Path, name: str, content: dict | bytes) -> Path:
    path = inbox / name
    if isinstance(content, dict):
        path.write_text(json.dumps(content), encoding="utf-8")
    else:
        path.write_bytes(content)
    path.chmod(0o644)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tree(inbox: Path) -> list[Path]:
    return sorted(inbox.rglob("*"))


def _assert_owner_only(inbox: Path) -> None:
    assert _mode(inbox) == 0o700
    for path in _tree(inbox):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path


def _assert_nowhere(inbox: Path, *values: str) -> None:
    for path in _tree(inbox):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace").lower()
            for value in values:
                assert value.lower() not in text, (path.name, value)


def _receipt(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _accepted(request_id: str) -> dict[str, str]:
    """The receipt of the rectification file taken in at NOW: ids and dates only."""
    return {
        "request_id": request_id,
        "type": "rectify",
        "received_at": "2026-11-20T10:00:00",
        "taken_in_at": NOW.isoformat(),
        "source_ref": "rectify.json",
        "status": "accepted",
    }


def _requests(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(s.subject_requests.c.request_id)).scalars())


def test_an_accepted_file_leaves_a_receipt_with_ids_only(engine, inbox: Path) -> None:
    _drop(inbox, "rectify.json", RECTIFY)
    report = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    (request_id,) = report.accepted
    assert [p.relative_to(inbox).as_posix() for p in _tree(inbox)] == [
        "processed",
        "processed/rectify.json",
    ]
    assert _receipt(inbox / "processed" / "rectify.json") == _accepted(request_id)
    _assert_nowhere(inbox, EMAIL, LOCAL_PART, CORRECTED, "married")
    _assert_owner_only(inbox)
    # The email and the correction are held once: in the personal zone, until the request closes.
    with engine.connect() as conn:
        email, payload = conn.execute(
            sa.select(s.request_payloads.c.email, s.request_payloads.c.payload)
        ).one()
    assert email == EMAIL and json.loads(payload)["corrections"] == {"last_name": CORRECTED}


def test_a_duplicate_leaves_a_receipt_naming_the_request_it_duplicates(engine, inbox) -> None:
    _drop(inbox, "a-first.json", RECTIFY)
    _drop(inbox, "b-again.json", {**RECTIFY, "email": EMAIL.upper()})
    report = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    (request_id,) = report.accepted
    assert report.duplicates == 1 and _requests(engine) == [request_id]
    receipt = _receipt(inbox / "processed" / "b-again.json")
    assert set(receipt) == RECEIPT_FIELDS - {"request_id"} | {"duplicate_of"}
    assert (receipt["status"], receipt["duplicate_of"]) == ("duplicate", request_id)
    assert receipt["source_ref"] == "b-again.json"
    reason = (inbox / "processed" / "b-again.json.reason").read_text()
    assert reason == f"duplicate of open request {request_id}\n"
    assert not list(inbox.glob("*.json"))
    _assert_nowhere(inbox, EMAIL, LOCAL_PART, CORRECTED, "married")
    _assert_owner_only(inbox)


def test_a_rejected_file_is_kept_as_it_came_but_owner_only(engine, inbox) -> None:
    mark = "PLANTED-c41e"
    hostile = json.dumps(
        {
            "type": "rectify",
            "email": EMAIL,
            "payload": {"corrections": {"last_name": f"Ek'); DROP TABLE x;--{mark}"}},
        }
    ).encode()
    unknown_key = {"type": "erase", "email": EMAIL, "admin": True, f"{LOCAL_PART}@x.se": mark}
    latin1 = json.dumps(
        {"type": "erase", "email": EMAIL, "payload": {"note": "från Åsa"}}, ensure_ascii=False
    ).encode("latin-1")
    _drop(inbox, "hostile.json", hostile)
    _drop(inbox, "unknown-key.json", unknown_key)
    _drop(inbox, "latin1.json", latin1)
    report = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    assert report.rejected == {"bad_payload": 1, "unknown_field": 1, "bad_json": 1}
    assert not report.accepted and _requests(engine) == []
    rejected = inbox / "rejected"
    assert (rejected / "hostile.json").read_bytes() == hostile  # to be fixed and dropped again
    assert (rejected / "latin1.json").read_bytes() == latin1
    assert json.loads((rejected / "unknown-key.json").read_text()) == unknown_key
    reasons = {p.name: p.read_text() for p in rejected.glob("*.reason")}
    assert reasons == {
        "hostile.json.reason": "bad_payload: corrections.last_name holds characters a last_name "
        "does not use\n",
        "unknown-key.json.reason": "unknown_field: unknown field(s): ['admin'] and 1 more\n",
        "latin1.json.reason": "bad_json: the file is not valid JSON\n",
    }
    for reason in reasons.values():
        for value in (mark, EMAIL, LOCAL_PART, "DROP TABLE"):
            assert value not in reason
    assert not list(inbox.glob("*.json")) and not (inbox / "processed").exists()
    _assert_owner_only(inbox)


def test_the_same_name_dropped_twice_keeps_both_receipts(engine, inbox) -> None:
    _drop(inbox, "form.json", RECTIFY)
    first = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    _drop(inbox, "form.json", {"type": "erase", "email": EMAIL})  # the portal reuses the name
    second = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    _drop(inbox, "form.json", {"type": "access", "email": EMAIL})
    third = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    (request_id,) = first.accepted
    assert second.duplicates == third.duplicates == 1  # a file name is taken in once
    processed = inbox / "processed"
    assert sorted(p.name for p in processed.iterdir()) == [
        "form.2.json",
        "form.2.json.reason",
        "form.3.json",
        "form.3.json.reason",
        "form.json",
    ]
    assert _receipt(processed / "form.json")["request_id"] == request_id
    assert [_receipt(processed / f"form.{n}.json")["type"] for n in (2, 3)] == ["erase", "access"]
    assert {_receipt(processed / f"form.{n}.json")["duplicate_of"] for n in (2, 3)} == {request_id}
    _assert_nowhere(inbox, EMAIL, LOCAL_PART, CORRECTED)
    _assert_owner_only(inbox)


def test_a_crash_after_submit_loses_nothing_and_a_rerun_takes_nothing_twice(engine, inbox) -> None:
    """The request row is committed before the file is touched; the file left behind by a crash
    is found again by the next run, as a duplicate of that request, and replaced by a receipt."""
    path = _drop(inbox, "rectify.json", RECTIFY)
    request_id = intake.submit(engine, KEY, intake._parse_file(path, NOW))  # then the crash
    rerun = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    assert rerun.as_dict() == {"accepted": 0, "duplicates": 1, "rejected": {}}
    assert _requests(engine) == [request_id]
    receipt = _receipt(inbox / "processed" / "rectify.json")
    assert (receipt["status"], receipt["duplicate_of"]) == ("duplicate", request_id)
    before = {p: p.read_bytes() for p in _tree(inbox) if p.is_file()}
    again = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    assert again.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": {}}
    assert {p: p.read_bytes() for p in _tree(inbox) if p.is_file()} == before
    _assert_nowhere(inbox, EMAIL, LOCAL_PART, CORRECTED)
    _assert_owner_only(inbox)


def test_a_crash_between_the_receipt_and_the_deletion_loses_nothing(
    engine, inbox, monkeypatch
) -> None:
    original = _drop(inbox, "rectify.json", RECTIFY)
    unlink = Path.unlink

    def crash(self: Path, missing_ok: bool = False) -> None:
        if self == original:
            raise OSError("crash before the original is deleted")
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(OSError, match="crash"):
        intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    monkeypatch.undo()
    (request_id,) = _requests(engine)
    assert original.exists() and _receipt(inbox / "processed" / "rectify.json") == _accepted(
        request_id
    )
    rerun = intake.take_in_drop_folder(engine, KEY, inbox, NOW)
    assert rerun.as_dict() == {"accepted": 0, "duplicates": 1, "rejected": {}}
    assert _requests(engine) == [request_id] and not original.exists()
    # The rerun's receipt names the same request; a further run changes nothing.
    assert _receipt(inbox / "processed" / "rectify.2.json")["duplicate_of"] == request_id
    assert intake.take_in_drop_folder(engine, KEY, inbox, NOW).as_dict() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": {},
    }
    _assert_nowhere(inbox, EMAIL, LOCAL_PART, CORRECTED)
    _assert_owner_only(inbox)


def test_intake_makes_existing_folders_owner_only(engine, inbox) -> None:
    for name in ("processed", "rejected"):
        (inbox / name).mkdir(mode=0o755)
        (inbox / name).chmod(0o755)
    report = intake.take_in_drop_folder(engine, KEY, inbox, NOW)  # nothing dropped
    assert report.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": {}}
    assert [_mode(p) for p in (inbox, inbox / "processed", inbox / "rejected")] == [0o700] * 3


def test_the_entry_point_the_dag_runs_keeps_no_email(tmp_path: Path, inbox) -> None:
    settings = Settings.from_env(
        {"CCG_HOME": str(tmp_path / "home"), "CCG_REQUEST_INBOX": str(inbox)}
    )
    _drop(inbox, "rectify.json", RECTIFY)
    _drop(inbox, "broken.json", b"{not json")
    assert requests.run_intake(settings, NOW) == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": {"bad_json": 1},
    }
    assert sorted(p.relative_to(inbox).as_posix() for p in _tree(inbox)) == [
        "processed",
        "processed/rectify.json",
        "rejected",
        "rejected/broken.json",
        "rejected/broken.json.reason",
    ]
    _assert_nowhere(inbox, EMAIL, LOCAL_PART, CORRECTED)
    _assert_owner_only(inbox)

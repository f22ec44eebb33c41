"""`ccg breach-impact` (N-SEC): the warehouse column map is complete, leaked files are read
into counts and categories, identifiers match known subjects, and bad input fails by name
without echoing the data."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from ccg_pipeline import breach
from ccg_pipeline.breach import (
    DETECTOR_CATEGORIES,
    TABLES,
    BreachInputError,
    From,
    assess,
    assess_file,
    email_keys,
    parse_since,
    unmapped_columns,
)
from ccg_pipeline.cli import main
from ccg_pipeline.policy import load_data_map, load_notice
from ccg_pipeline.scan.detectors import DETECTORS
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.unit

CATEGORY_IDS = {c.id for c in load_notice().categories}
CARD = "4111 1111 1111 1111"
IBAN = "GB82 WEST 1234 5698 7654 32"
UNKNOWN_PHONE = "+44 20 7946 0958"
# Planted in the leaked files below; none may appear in a report.
PLANTED = [
    "anna.svensson",
    "ANNA.SVENSSON",
    "j.smith",
    "stranger",
    "nowhere",
    "exempel",
    "Anna",
    "Zed",
    "Maria",
    CARD,
    "4111",
    IBAN,
    "WEST",
    "7946",
    "card_details",  # a header the data map does not know: shown by position only
    "free_notes",
    "81.2.69.160",
    "10.1.2.3",
    "dhoward",
]


def _assert_no_values(*texts: str) -> None:
    for text in texts:
        leaked = [value for value in PLANTED if value.lower() in text.lower()]
        assert leaked == [], leaked


def _both(report: breach.BreachImpact) -> str:
    return report.render() + "\n" + report.to_json()


# --- the column map ------------------------------------------------------------------------------


def test_every_personal_zone_column_is_mapped() -> None:
    assert unmapped_columns() == []


def test_the_completeness_check_fails_for_a_new_column_or_table() -> None:
    metadata = sa.MetaData()
    for table in s.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["personal.portal_users"].append_column(sa.Column("nickname", sa.Text))
    sa.Table("loyalty_cards", metadata, sa.Column("card_no", sa.Text), schema=s.PERSONAL)
    assert set(unmapped_columns(metadata)) == {
        "personal.portal_users.nickname",
        "personal.loyalty_cards.card_no",
    }


def test_the_map_names_only_real_columns_and_valid_categories() -> None:
    data_map = load_data_map()
    personal = breach.personal_zone_columns()
    assert set(TABLES) == set(personal), "every map entry is a personal-zone table, and back"
    for name, spec in TABLES.items():
        assert list(spec.columns) == personal[name], f"{name}: stale or reordered columns"
        for column, tag in spec.columns.items():
            if isinstance(tag, From):
                assert tag.column in data_map.sources[tag.source].columns, (name, column)
            elif tag is not None and tag != breach.RECORD_SOURCE:
                assert tag in CATEGORY_IDS, (name, column, tag)
        used = [spec.time_column, spec.address_column, *spec.free_text]
        assert {c for c in used if c} <= set(spec.columns), name


def test_categories_follow_the_data_map() -> None:
    data_map = load_data_map()
    payments = TABLES["personal.payments"].columns
    assert breach.category_of(payments["card_masked"], data_map) == "financial"
    assert breach.category_of(payments["bank_account_masked"], data_map) == "financial"
    users = TABLES["personal.portal_users"].columns
    assert breach.category_of(users["email"], data_map) == "contact"
    assert breach.category_of(users["user_id"], data_map) is None


def test_every_detector_has_a_category() -> None:
    assert set(DETECTOR_CATEGORIES) == {d.name for d in DETECTORS}
    assert set(DETECTOR_CATEGORIES.values()) <= CATEGORY_IDS
    financial = {d for d, c in DETECTOR_CATEGORIES.items() if c == "financial"}
    assert {"payment_card", "iban", "uk_sort_code", "uk_account_number"} <= financial


def test_email_keys_normalise_like_the_known_identifier_index() -> None:
    assert email_keys("Mail ANNA.Svensson@Example.CO.UK. today") == {"anna svensson example co uk"}
    assert email_keys("anna (at) example [dot] se") == {"anna example se"}
    assert email_keys("ANNA.SVENSSON @ EXAMPLE.SE") == {"anna svensson example se"}
    assert email_keys("no address here, 2024-11-23") == set()


# --- leaked files, without a warehouse ---------------------------------------------------------


def _leaked_csv(tmp_path: Path) -> Path:
    path = tmp_path / "leak.csv"
    path.write_text(
        "Email,First Name,Phone Number,card_details,free_notes,Create Date\n"
        f'ANNA.SVENSSON@example.se,Anna,,,"paid by {CARD}",2026-01-10 10:00:00\n'
        f"j.smith@example.co.uk,John,,{IBAN},,2026-03-01 09:00:00\n"
        f"stranger@nowhere.example,Zed,,,ring {UNKNOWN_PHONE},2026-05-05 08:00:00\n"
        "maria (at) exempel (dot) de,Maria,,,,\n",
        encoding="utf-8",
    )
    return path


def test_a_leaked_csv_with_a_card_number_is_financial(tmp_path: Path) -> None:
    report = assess_file(_leaked_csv(tmp_path))

    assert (report.kind, report.rows_total, report.rows_in_scope) == ("file", 4, 4)
    assert report.financial is True
    assert any("payment_card" in e and "column 5" in e for e in report.financial_evidence)
    assert any("iban" in e and "column 4" in e for e in report.financial_evidence)
    assert report.detector_cells["payment_card"] == 1 and report.detector_cells["iban"] == 1
    assert report.categories["contact"][0] == "Email"
    assert report.categories["identity"] == ["First Name"]
    assert "Phone Number" not in report.categories["contact"], "an empty column discloses nothing"
    assert report.unmapped_columns == ["column 4", "column 5"]
    # Without a warehouse nothing is matched; the identifiers are still counted.
    assert report.subjects_identifiable and report.identifiers_unmatched == {"email": 4, "phone": 1}
    assert report.subjects_affected is None and report.subjects_via == "no warehouse given"
    assert "identifiable, not matched to known subjects" in report.render()
    assert breach.COUNTS_ONLY in report.render()
    _assert_no_values(_both(report))


def test_since_filters_on_the_files_date_column_and_keeps_undated_rows(tmp_path: Path) -> None:
    report = assess_file(_leaked_csv(tmp_path), since=dt.date(2026, 2, 1))
    assert report.since_column == "Create Date"
    assert report.rows_in_scope == 3, "two dated after 1 February, one undated kept"
    assert "1 row(s) without a parsable date" in report.since_note
    assert report.financial is True, "the IBAN row is in scope"
    assert report.detector_cells.get("payment_card") is None, "the card row is not"


def test_since_is_not_applicable_without_a_date_column(tmp_path: Path) -> None:
    path = tmp_path / "emails.csv"
    path.write_text("Email,amount\nj.smith@example.co.uk,2025\n", encoding="utf-8")
    report = assess_file(path, since=dt.date(2026, 1, 1))
    assert report.since_column is None and report.since_note.startswith("not applicable")
    assert report.rows_in_scope == 1
    assert report.financial is False


def test_json_lines_auth_log(tmp_path: Path) -> None:
    path = tmp_path / "auth.jsonl"
    lines = [
        {"ts": "2026-11-22T08:00:00Z", "username": "dhoward1", "ip": "81.2.69.160"},
        {"ts": "2026-11-23T09:00:00Z", "username": "dhoward1", "ip": "10.1.2.3"},
        {"ts": "2026-11-23T10:00:00+01:00", "username": "dhoward2", "ip": "10.1.2.3"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json: Zed@nowhere.example\n"
    path.write_text(text, encoding="utf-8")

    report = assess_file(path, since=dt.date(2026, 11, 23))

    assert report.since_column == "ts"
    assert (report.rows_total, report.rows_in_scope) == (4, 3), "the non-JSON line is undated"
    assert report.categories["identity"] == ["username"]
    assert "ip" in report.categories["technical"]
    assert report.addresses == 1 and report.addresses_label == "distinct IP addresses"
    assert report.identifiers_unmatched == {"email": 1, "username": 2}
    assert any("not JSON" in note for note in report.notes)
    _assert_no_values(_both(report))


def test_web_log_subjects_not_identifiable(tmp_path: Path) -> None:
    path = tmp_path / "access.log.gz"
    lines = [
        '81.2.69.160 - - [22/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8"',
        '10.1.2.3 - - [23/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8"',
        '10.1.2.3 - - [23/Nov/2026:11:00:00 +0000] "GET /b HTTP/1.1" 404 12 "-" "curl/8"',
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    report = assess_file(path, since=dt.date(2026, 11, 23))

    assert report.rows_in_scope == 2 and report.since_column == "time"
    assert not report.subjects_identifiable and report.subjects_affected is None
    assert "subjects not identifiable; 1 distinct IP addresses" in report.render()
    assert {"technical", "usage"} <= set(report.categories)
    assert report.financial is False
    _assert_no_values(_both(report))


def test_a_file_without_a_header_row_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text(f"anna.svensson@example.se,{CARD}\nj.smith@example.co.uk,x\n", "utf-8")
    report = assess_file(path)
    assert report.unmapped_columns == ["column 1", "column 2"]
    assert report.financial is True
    assert any("header row holds identifiers" in n for n in report.notes)
    assert report.identifiers_unmatched == {"email": 2}
    _assert_no_values(_both(report))


def test_repeated_headers_ragged_rows_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "Email,Email,amount\nanna.svensson@example.se,j.smith@example.co.uk,1\n"
        f"stranger@nowhere.example,,2,{CARD}\n",
        encoding="utf-8",
    )
    report = assess_file(path)
    assert report.rows_total == 2
    assert report.categories["contact"][:2] == ["Email", "Email #2"]
    assert report.identifiers_unmatched == {"email": 3}
    assert report.financial is True, "the field past the header is scanned too"
    assert any("as many fields as the header" in note for note in report.notes)
    _assert_no_values(_both(report))

    parquet = tmp_path / "leak.parquet"
    pq.write_table(pa.table({"card_number_masked": ["************1111"], "n": [1]}), parquet)
    report = assess_file(parquet)
    assert report.financial is True and report.financial_evidence == ["card_number_masked"]
    assert report.unmapped_columns == ["column 2"]


# --- leaked files matched against a (small, SQLite) warehouse ------------------------------------

T0 = dt.datetime(2026, 1, 1)


@pytest.fixture
def warehouse(tmp_path: Path) -> sa.Engine:
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'wh' / 'main.db'}")
    migrate.upgrade(engine)
    people = [  # subject id, email, company (country) or CRM country
        (1, "anna.svensson@example.se", ("company", 10, "SE")),
        (2, "j.smith@example.co.uk", ("company", 20, "GB")),
        (3, "maria@exempel.de", ("crm", None, "DE")),
        (4, "not.leaked@example.se", ("company", 10, "SE")),
    ]
    with engine.begin() as conn:
        for company_id, country in ((10, "SE"), (20, "GB")):
            conn.execute(
                sa.insert(s.companies).values(
                    company_id=company_id,
                    name=f"Company {company_id}",
                    country=country,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        for subject_id, email, (kind, company_id, country) in people:
            conn.execute(
                sa.insert(s.subjects).values(
                    subject_id=subject_id,
                    email_norm=email,
                    subject_key=f"key{subject_id}",
                    first_seen_at=T0,
                    updated_at=T0,
                )
            )
            if kind == "company":
                conn.execute(
                    sa.insert(s.portal_users).values(
                        user_id=subject_id,
                        company_id=company_id,
                        subject_id=subject_id,
                        email=email,
                        username=f"user{subject_id}",
                        created_at=T0,
                        updated_at=T0,
                    )
                )
            if kind == "crm" or subject_id == 1:  # Anna is also a CRM contact, elsewhere
                conn.execute(
                    sa.insert(s.crm_contacts).values(
                        crm_contact_id=100 + subject_id,
                        subject_id=subject_id,
                        email=email.upper(),
                        country=country if kind == "crm" else "FR",
                        lifecycle_stage="lead",
                        marketing_status="Marketing contact",
                        created_at=T0,
                        export_date=T0.date(),
                    )
                )
        pu = s.portal_users
        conn.execute(sa.update(pu).where(pu.c.user_id == 1).values(phone="08-123 456 78"))
        # A switchboard number two people share.
        conn.execute(sa.update(pu).where(pu.c.user_id.in_([2, 4])).values(phone="020 7946 0000"))
    yield engine
    engine.dispose()


def test_identifiers_in_a_leaked_file_are_matched_to_known_subjects(
    tmp_path: Path, warehouse: sa.Engine
) -> None:
    report = assess_file(_leaked_csv(tmp_path), warehouse)

    # Anna (case differs), J. Smith (co.uk), Maria (obfuscated, CRM only); not the stranger.
    # Anna counts where her company is (SE), not where her CRM record says (FR).
    assert report.subjects_affected == 3
    assert report.identifiers_matched == {"email": 3, "phone": 0}
    assert report.identifiers_unmatched == {"email": 1, "phone": 1}
    assert report.countries == {"DE": 1, "GB": 1, "SE": 1}
    _assert_no_values(_both(report))

    since = assess_file(_leaked_csv(tmp_path), warehouse, dt.date(2026, 2, 1))
    assert since.subjects_affected == 2 and since.countries == {"DE": 1, "GB": 1}


def test_a_phone_number_counts_a_subject_only_when_one_known_person_has_it(
    tmp_path: Path, warehouse: sa.Engine
) -> None:
    path = tmp_path / "phones.csv"
    path.write_text("Phone Number\n+46 8 123 456 78\n+44 20 7946 0000\n", encoding="utf-8")

    report = assess_file(path, warehouse)

    assert report.identifiers_matched == {"phone": 2}
    assert report.subjects_affected == 1 and report.countries == {"SE": 1}
    assert any("belong to several known people" in note for note in report.notes)
    _assert_no_values(_both(report))


def test_bad_table_names_are_refused_by_name(warehouse: sa.Engine) -> None:
    with pytest.raises(BreachInputError, match=r"unknown table 'personal\.nope'"):
        assess("personal.nope", warehouse)
    with pytest.raises(BreachInputError, match="not a personal-zone table"):
        assess("ops.audit_ledger", warehouse)
    with pytest.raises(BreachInputError, match="neither an existing file nor a table"):
        assess("nonsense", warehouse)
    with warehouse.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE personal.loyalty (card_no TEXT)")
    with pytest.raises(BreachInputError, match="not in the breach column map"):
        assess("personal.loyalty", warehouse)


# --- bad input -----------------------------------------------------------------------------------


def test_missing_and_unreadable_files_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(BreachInputError, match="no such file"):
        assess_file(tmp_path / "missing.csv")
    with pytest.raises(BreachInputError, match="not a file"):
        assess_file(tmp_path)

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("Email\nandré.anna.svensson@example.se\n".encode("latin-1"))
    with pytest.raises(
        BreachInputError, match=r"unreadable encoding: not UTF-8 .*offset 10"
    ) as err:
        assess_file(latin1)
    _assert_no_values(str(err.value))

    broken = tmp_path / "broken.json"
    broken.write_text('[{"email": "anna.svensson@example.se", ', encoding="utf-8")
    with pytest.raises(BreachInputError, match=r"not valid JSON \(line 1") as err:
        assess_file(broken)
    _assert_no_values(str(err.value))

    truncated = tmp_path / "access.log.gz"
    whole = gzip.compress(b"81.2.69.160 - - [22/Nov/2026:10:00:00 +0000] x\n" * 200)
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BreachInputError, match=r"cannot be read \((EOFError|BadGzipFile)"):
        assess_file(truncated)


def test_a_bad_since_is_refused_by_name() -> None:
    assert parse_since("2026-11-23") == dt.date(2026, 11, 23)
    with pytest.raises(BreachInputError, match=r"--since '2026-02-30' is not a date"):
        parse_since("2026-02-30")


def test_cli_exit_codes_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCG_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'wh' / 'main.db'}")
    leak = _leaked_csv(tmp_path)

    assert main(["breach-impact", "--source", str(leak), "--format", "json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["financial"] is True and report["counts_only"] == breach.COUNTS_ONLY
    _assert_no_values(out)

    assert main(["breach-impact", "--source", str(tmp_path / "gone.jsonl")]) == 2
    assert "gone.jsonl: no such file" in capsys.readouterr().err

    latin1 = tmp_path / "latin1.log"
    latin1.write_bytes("Zed \xe9 anna.svensson@example.se\n".encode("latin-1"))
    assert main(["breach-impact", "--source", str(latin1)]) == 2
    err = capsys.readouterr().err
    assert "unreadable encoding" in err
    _assert_no_values(err)

    assert main(["breach-impact", "--source", str(leak), "--since", "23/11/2026"]) == 2
    assert "'--since': '23/11/2026' is not a date" in capsys.readouterr().err

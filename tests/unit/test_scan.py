"""Identifier detectors and `ccg scan`: planted leaks, obfuscated variants, clean look-alikes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ccg_pipeline.cli import main
from ccg_pipeline.scan import scan_frame
from ccg_pipeline.scan.detectors import DETECTORS, luhn_ok

pytestmark = pytest.mark.unit

PLANTED = {
    "email": ["anna.svensson@example.se", "Contact: J.Smith+ccg@Example.CO.UK today"],
    "phone_uk": ["+44 20 7946 0958", "07700 900123", "call 020-7946-0958 now"],
    "phone_se": ["08-123 456 78", "+46 70 123 45 67", "070 123 45 67"],
    "phone_international": ["+1 415 555 2671", "0049 30 1234 5678"],
    "ipv4": ["81.2.69.160", "from 10.1.2.3 at noon", "81.2.69.0/24"],
    "ipv6": ["2001:db8::1", "fe80::1ff:fe23:4567:890a"],
    "iban": ["GB82 WEST 1234 5698 7654 32", "SE4550000000058398257466", "gb82west12345698765432"],
    "uk_sort_code": ["sort code 20-00-00", "20-00-00 12345678"],
    "uk_account_number": ["account no 12345678", "A/C: 87654321"],
    "payment_card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "card 4111111111111111 exp"],
    "uk_postcode": ["SW1A 1AA", "lives at ec1a1bb", "M1 1AE"],
    "uk_nino": ["AB 12 34 56 C", "ab123456c"],
    "uk_vat": ["GB 123 4567 82", "vat gb123456782"],
    "eori": ["GB123456789000", "XI123456789000"],
    "companies_house": ["company no 01234567", "SC123456", "CRN: 12345678"],
    "se_personnummer": ["19121212-1212", "121212-1212", "20121212+1212"],
    "se_orgnummer": ["556036-0793", "5560360793"],
    "url_with_identifier": [
        "https://ccg.example/portal?email=a%40b.se",
        "/portal/login?uid=99&next=/",
        "see www.ccg.example/track?session=abc123 for details",
    ],
}

OBFUSCATED = {
    "email": ["anna (at) example [dot] se", "ANNA.SVENSSON @ EXAMPLE.SE", "anna[at]example.se"],
    "phone_uk": ["+44 (0) 20 7946 0958", "0044 7700 900123"],
    "payment_card": ["4111-1111-1111-1111", "The card was 4111 1111 1111 1111, thanks"],
    "iban": ["iban:GB82WEST12345698765432."],
    "uk_nino": ["NI number AB123456C in a sentence"],
}

CLEAN = [
    "order 12345678",
    "INV-2024-000123",
    "invoice 2024-000123 due",
    "2024-11-23",
    "23/11/2024",
    "2024-11-23T10:15:00",
    "£1,234,567.89",
    "amount 1234567.89 GBP",
    "version 1.24.1",
    "release 10.0.19041.1",
    "commodity code 0702 00 00 00",
    "commodity 8471300000",
    "CN 84713000",
    "MRN 24GB1234567890ABC1",
    "MRN 25SE00000000123456",
    "4111 1111 1111 1112",  # 16 digits, fails Luhn
    "1234567812345678",
    "time 12:30:45",
    "https://ccg.example/services?page=2",
    "/blog/post?lang=en",
    "site section portal",
    "Nordics",
]


def _findings(texts: list[str]) -> list[tuple[int, str]]:
    return [(f.row, f.detector) for f in scan_frame(pd.DataFrame({"value": texts}))]


@pytest.mark.parametrize("detector", sorted(PLANTED))
def test_every_planted_identifier_is_found_by_its_detector(detector: str) -> None:
    texts = PLANTED[detector] + OBFUSCATED.get(detector, [])
    found = {row for row, name in _findings(texts) if name == detector}
    assert found == set(range(len(texts))), [texts[i] for i in set(range(len(texts))) - found]


def test_every_detector_class_has_planted_cases() -> None:
    assert {d.name for d in DETECTORS} == set(PLANTED)


def test_clean_look_alikes_are_not_flagged() -> None:
    assert [(CLEAN[row], name) for row, name in _findings(CLEAN)] == []


def test_findings_are_masked_and_point_at_the_row_and_column() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "note": ["fine", "mail anna.svensson@example.se", None]})
    (finding,) = scan_frame(frame)
    assert (finding.row, finding.column, finding.detector) == (1, "note", "email")
    assert "svensson" not in finding.masked and "example" not in finding.masked


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_scan_command_exit_codes_and_json(tmp_path: Path, capsys) -> None:
    clean = tmp_path / "clean.csv"
    clean.write_text("order,amount\n00012345,12.50\n", encoding="utf-8")
    leaky = tmp_path / "leaky.csv"
    leaky.write_text("order,note\n1,ok\n2,call +44 20 7946 0958\n", encoding="utf-8")
    assert main(["scan", str(clean)]) == 0
    capsys.readouterr()
    assert main(["scan", str(leaky), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == [
        {"row": 1, "column": "note", "detector": "phone_uk", "masked": "+4************58"}
    ]
    assert main(["scan", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    assert main(["scan", str(tmp_path / "notes.txt")]) == 2
    parquet = tmp_path / "leaky.parquet"
    pd.DataFrame({"n": ["4111 1111 1111 1111"]}).to_parquet(parquet)
    assert main(["scan", str(parquet)]) == 1

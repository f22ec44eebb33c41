"""Identifier samples shared by the detector tests (tests/unit/test_scan.py) and the validation
gate's tests (tests/expectations/): planted leaks for every detector, obfuscated variants, and
clean look-alikes that must never be flagged. All values are documentation or test values."""

PLANTED = {
    "email": ["anna.svensson@example.se", "Contact: J.Smith+ccg@Example.CO.UK today"],
    "phone_uk": ["+44 20 7946 0958", "07700 900123", "call 020-7946-0958 now"],
    "phone_se": ["08-123 456 78", "+46 70 123 45 67", "070 123 45 67"],
    "phone_international": ["+1 415 555 2671", "0049 30 1234 5678"],
    "ipv4": ["81.2.69.160", "from 10.1.2.3 at noon", "81.2.69.0/24"],
    "ipv6": ["2001:db8::1", "fe80::1ff:fe23:4567:890a"],
    "iban": [
        "GB82 WEST 1234 5698 7654 32",
        "SE4550000000058398257466",
        "gb82west12345698765432",
        "Refund to SE45 5000 0000 0583 9825 7466 as requested.",
    ],
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
    "Client build 27.27.28.19",  # a four-part version, not an address
    "commodity code 0702094053",  # ten digits, Luhn-valid, a plausible date: still goods
    "CN 8471619554",
    "4300 0098 4001 1867",  # a grouped 16-digit number failing Luhn, not a phone inside it
    "6397 0020 0699 9844",
    # Epoch seconds with a fraction (GX Data Docs' '_run_time_sort'): ten Luhn-valid digits, not
    # an organisationsnummer.
    "'_run_time_sort': 1795562188.402107,",
]

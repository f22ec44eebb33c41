"""Detectors for identifying data in text: a regular expression that finds candidates, and a
validator that confirms them (checksums, ranges, context), so look-alikes such as order numbers,
dates, amounts, version strings, commodity codes and MRNs are not flagged.

Every pattern is written in the common subset of Python `re` and RE2 (no look-around, no
back-references): the scanner runs all of them as one RE2 pass over Arrow arrays to find the few
cells worth a closer look, then confirms matches in Python on those cells only.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

Validator = Callable[[str], bool]


@dataclass(frozen=True)
class Detector:
    name: str
    pattern: str  # RE2- and Python-compatible
    validate: Validator
    description: str
    # Python pattern (case-insensitive) for the text just before a match that makes it something
    # else: a version number, a commodity code, the tail of a longer number. RE2 has no
    # look-behind, so this is checked in the confirmation step only.
    vetoed_after: str | None = None

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        # ASCII: `\d`, `\w` and `\b` then mean what they mean to RE2, so the prefilter marks
        # every cell in which this pattern can match (an Arabic-Indic digit is no digit to it).
        return re.compile(self.pattern, re.ASCII)

    @functools.cached_property
    def veto(self) -> re.Pattern[str] | None:
        return re.compile(f"(?:{self.vetoed_after})$", re.IGNORECASE) if self.vetoed_after else None

    def confirms(self, text: str, match: re.Match[str]) -> bool:
        if self.veto and self.veto.search(
            text[max(0, match.start() - CONTEXT_CHARS) : match.start()]
        ):
            return False
        return self.validate(match.group(0))


CONTEXT_CHARS = 24
# Before a number: part of a longer, grouped number (`4300 0098 4001 1867`), not a phone.
AFTER_DIGIT_GROUP = r"\d[ .-]?"
AFTER_VERSION_WORD = r"\b(?:version|ver|build|release|v)\.? ?"
AFTER_GOODS_CODE_WORD = r"\b(?:commodity|cn|hs|taric|tariff)(?: ?code)?\W{0,3}"


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_ok(number: str) -> bool:
    """The Luhn (mod 10) check used by payment cards and Swedish identity numbers."""
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for position, ch in enumerate(reversed(number)):
        value = int(ch)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# --- validators -----------------------------------------------------------------------------------


def _always(_text: str) -> bool:
    return True


def _card(text: str) -> bool:
    number = digits(text)
    return 13 <= len(number) <= 19 and number[0] in "23456" and luhn_ok(number)


# ISO 13616 lengths for the countries CCG deals with most; others need 15-34 characters.
IBAN_LENGTHS = {
    "GB": 22, "IE": 22, "SE": 24, "DE": 22, "FR": 27, "NL": 18, "PL": 28, "ES": 24, "BE": 16,
    "DK": 18, "FI": 18, "NO": 15, "IT": 27, "PT": 25, "AT": 20, "CH": 21, "LU": 20,
}  # fmt: skip


def _iban(text: str) -> bool:
    compact = re.sub(r"\s", "", text).upper()
    expected = IBAN_LENGTHS.get(compact[:2])
    # The pattern's optional short tail may have taken the next word ("... 7466 as requested").
    compact = compact[:expected] if expected else compact
    if (expected and len(compact) != expected) or not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def _parses_as(kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> Validator:
    """A real address of `kind` (prefix length ignored): `12:30:45` and `999.1.1.1` are not."""

    def validate(text: str) -> bool:
        try:
            kind(text.split("/", 1)[0].strip("[]"))
        except ValueError:
            return False
        return True

    return validate


def _uk_phone(text: str) -> bool:
    number = digits(text)
    if text.lstrip().startswith(("+", "00")):
        number = number.removeprefix("00")
        if not number.startswith("44"):
            return False
        number = number[2:]
        number = number[1:] if len(number) == 11 and number[0] == "0" else number  # "(0)"
        return len(number) == 10 and number[0] in "12378"
    return len(number) == 11 and number[:2] in ("01", "02", "03", "07", "08")


def _international_phone(text: str) -> bool:
    number = digits(text).removeprefix("00")
    # UK and Swedish numbers are judged by their own, stricter detectors.
    return 8 <= len(number) <= 15 and not number.startswith(("44", "46"))


def _se_phone(text: str) -> bool:
    number = digits(text)
    if text.lstrip().startswith(("+", "00")):
        number = "0" + number.removeprefix("00").removeprefix("46")
    return 8 <= len(number) <= 10


def _hmrc_vat(nine: str) -> bool:
    """HMRC's modulus 97 check (and the 9755 variant for numbers issued since 2010)."""
    total = sum(int(d) * w for d, w in zip(nine[:7], range(8, 1, -1), strict=True))
    total += int(nine[7:9])
    return total % 97 == 0 or (total + 55) % 97 == 0


def _uk_vat(text: str) -> bool:
    number = digits(text)
    if len(number) not in (9, 12):
        return bool(re.search(r"(?i)GD[0-4]\d{2}|HA[5-9]\d{2}", text))
    return _hmrc_vat(number[:9])


NINO_BAD_PREFIXES = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def _nino(text: str) -> bool:
    compact = re.sub(r"\s", "", text).upper()
    return compact[:2] not in NINO_BAD_PREFIXES


def _personnummer(text: str) -> bool:
    number = digits(text)
    ten = number[-10:]
    if len(number) not in (10, 12) or not luhn_ok(ten):
        return False
    month, day = int(ten[2:4]), int(ten[4:6])
    day = day - 60 if day > 60 else day  # samordningsnummer: day plus 60
    return 1 <= month <= 12 and 1 <= day <= 31


def _orgnummer(text: str) -> bool:
    if "." in text:  # the whole part of a decimal number
        return False
    number = digits(text)
    ten = number[-10:]
    # The first digit is the kind of organisation (1-3, 5-9); the third is 2 or more.
    return len(ten) == 10 and ten[0] in "12356789" and int(ten[2]) >= 2 and luhn_ok(ten)


IDENTIFYING_PARAMETERS = frozenset(
    {
        "email", "e-mail", "mail", "user", "username", "userid", "user_id", "uid", "login", "name",
        "firstname", "lastname", "phone", "tel", "mobile", "token", "session", "sessionid", "sid",
        "ssn", "nino", "personnummer", "account", "customer", "customer_id", "contact", "id",
    }
)  # fmt: skip


def _url_with_identifier(text: str) -> bool:
    query = text.split("?", 1)[1] if "?" in text else ""
    for name, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=False):
        if name.lower() in IDENTIFYING_PARAMETERS and value:
            return True
        if "@" in value or (value.isdigit() and len(value) >= 6):
            return True
    return False


# --- the detectors --------------------------------------------------------------------------------

_AT = r"(?:@|\(at\)|\[at\]|\{at\})"
_DOT = r"(?:\.|\(dot\)|\[dot\]|\{dot\})"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "email",
        rf"(?i)[a-z0-9._%+-]+ ?{_AT} ?[a-z0-9-]+(?: ?{_DOT} ?[a-z0-9-]+)*? ?{_DOT} ?[a-z]{{2,24}}\b",
        _always,
        "email addresses, also with (at)/[dot] and spaces",
    ),
    Detector(
        "phone_uk",
        r"(?:(?:\+|00)44 ?(?:\(0\) ?)?|\b0)(?:\d[ -]?){9,10}\d\b",
        _uk_phone,
        "UK numbers: +44 or 0 then ten digits",
        AFTER_DIGIT_GROUP,
    ),
    Detector(
        "phone_se",
        r"(?:(?:\+|00)46 ?(?:\(0\) ?)?\d{1,3}|\b0\d{1,3}-|\b07[02369] )[ -]?\d{2,3}(?:[ -]?\d{2,3}){1,3}\b",
        _se_phone,
        "Swedish numbers: +46, or an area code and a hyphen, or a spaced mobile",
        AFTER_DIGIT_GROUP,
    ),
    Detector(
        "phone_international",
        r"(?:\+|\b00)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}\b",
        _international_phone,
        "numbers in international format (+ or 00 and a country code)",
        AFTER_DIGIT_GROUP,
    ),
    Detector(
        "ipv4",
        r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?:/\d{1,2})?\b",
        _parses_as(ipaddress.IPv4Address),
        "IPv4 addresses and prefixes",
        AFTER_VERSION_WORD,
    ),
    Detector(
        "ipv6",
        r"(?i)\b(?:[0-9a-f]{1,4}:){1,7}(?::|(?::[0-9a-f]{1,4}){1,6}|[0-9a-f]{1,4})(?:/\d{1,3})?",
        _parses_as(ipaddress.IPv6Address),
        "IPv6 addresses and prefixes",
    ),
    Detector(
        "iban",
        r"(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?\b",
        _iban,
        "IBANs (mod-97 checked)",
    ),
    Detector(
        "uk_sort_code",
        r"(?i)\bsort ?code\W{0,3}\d{2}[ -]?\d{2}[ -]?\d{2}\b|\b\d{2}-\d{2}-\d{2}[ ,;/]+\d{8}\b",
        _always,
        "UK sort codes, named or next to an account number",
    ),
    Detector(
        "uk_account_number",
        r"(?i)\b(?:account|acct|a/c)(?: ?(?:no|number|nr))?\W{0,3}\d{8}\b",
        _always,
        "UK account numbers, named",
    ),
    Detector(
        "payment_card",
        r"\b[2-6]\d{3}(?:[ -]?\d){9,15}\b",
        _card,
        "payment card numbers (Luhn checked)",
    ),
    Detector(
        "uk_postcode",
        r"(?i)\b(?:gir ?0aa|[a-pr-uwyz][a-hk-y]?\d[a-z\d]? ?\d[abd-hjlnp-uw-z]{2})\b",
        _always,
        "full UK postcodes",
    ),
    Detector(
        "uk_nino",
        r"(?i)\b[a-ceghj-pr-tw-z][a-ceghj-npr-tw-z] ?\d{2} ?\d{2} ?\d{2} ?[a-d]\b",
        _nino,
        "UK National Insurance numbers",
    ),
    Detector(
        "uk_vat",
        r"(?i)\bgb ?(?:\d{3} ?\d{4} ?\d{2}(?: ?\d{3})?|gd[0-4]\d{2}|ha[5-9]\d{2})\b",
        _uk_vat,
        "UK VAT numbers (HMRC mod-97 checked)",
    ),
    Detector(
        "eori",
        r"(?i)\b(?:gb|xi)\d{12}(?:\d{3})?\b",
        _always,
        "UK and Northern Ireland EORI numbers",
    ),
    Detector(
        "companies_house",
        r"(?i)\b(?:sc|ni|oc|so|nc|lp|sl|fc|sf|nf|ce|cs)\d{6}\b"
        r"|\b(?:company|registration|reg|crn|companies house)(?: ?(?:no|number|nr))?\W{0,3}\d{8}\b",
        _always,
        "Companies House numbers: prefixed, or named",
    ),
    Detector(
        "se_personnummer",
        r"\b(?:19|20)?\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])[-+ ]?\d{4}\b",
        _personnummer,
        "Swedish personnummer and samordningsnummer (Luhn checked)",
        AFTER_GOODS_CODE_WORD,
    ),
    Detector(
        "se_orgnummer",
        # A decimal fraction is taken into the match so the check can refuse it: epoch seconds
        # such as 1795562188.402107 are not organisation numbers (and RE2 has no lookahead).
        r"\b(?:16)?\d{2}[2-9]\d{3}-?\d{4}(?:\.\d+)?\b",
        _orgnummer,
        "Swedish organisationsnummer (Luhn checked)",
        AFTER_GOODS_CODE_WORD,
    ),
    Detector(
        "url_with_identifier",
        r"(?i)(?:https?://|www\.|/)[^\s?#]*\?[^\s#]*=[^\s#]+",
        _url_with_identifier,
        "URLs whose query string carries an identifier",
    ),
)

BY_NAME = {d.name: d for d in DETECTORS}


def mask(value: str) -> str:
    """Enough to find the cell again, never enough to read the identifier."""
    value = value.strip()
    if len(value) <= 6:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def find(text: str, detector: Detector) -> list[str]:
    """Confirmed matches of one detector in one text."""
    return [m.group(0) for m in detector.regex.finditer(text) if detector.confirms(text, m)]

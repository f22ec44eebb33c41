"""Matching keys for people, the same in every stage: how an address, a name or a phone number
is normalised, and how a key is pseudonymised.

A leaf module (standard library only), so that ingest, retention, requests, validation and the
breach report can share it without importing one another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

PHONE_KEY_DIGITS = 9

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_PHONE_RUN = re.compile(r"\+?\d[\d\s().\-/]{7,}\d")


class NotAnAddress(ValueError):
    """The text is not an email address (the message never repeats it)."""


def normalise_email(raw: str | None) -> str:
    """The matching key across sources: NFKC, trimmed, lower-cased. Raises NotAnAddress."""
    value = unicodedata.normalize("NFKC", raw or "").strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or value.count("@") != 1 or len(value) > 254:
        raise NotAnAddress("email is not a valid address")
    return value


def pseudonym(key: str, value: str) -> str:
    """Keyed hash (HMAC-SHA256): pseudonymisation, not anonymisation. Stays in personal/ops."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def crm_contact_key(key: str, crm_contact_id: int | str) -> str:
    """The keyed hash kept of an erased person's CRM record id (ops holds no raw source id)."""
    return pseudonym(key, f"crm_contact:{crm_contact_id}")


def normalise(text: str) -> str:
    """Accents folded, case folded, punctuation and spaces collapsed to single spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return _NON_ALNUM.sub(" ", folded).strip()


def phone_keys(text: str) -> set[str]:
    """The last nine digits of every phone-like run of digits and separators in `text`."""
    keys = set()
    for run in _PHONE_RUN.findall(text):
        number = re.sub(r"\D", "", run)
        if len(number) >= PHONE_KEY_DIGITS:
            keys.add(number[-PHONE_KEY_DIGITS:])
    return keys

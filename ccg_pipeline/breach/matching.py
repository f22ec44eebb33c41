"""Evidence from text, and matching identifiers to known data subjects in the warehouse.

Free text (a table's notes, a leaked file's cells) goes through the identifier detectors
(`ccg_pipeline.scan`); the email addresses, phone numbers and usernames found are normalised as
the known-identifier index normalises them and matched against the personal zone. The subjects
found are counted per country. Nothing found here is returned: only counts leave this module.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.breach.report import (
    DETECTOR_CATEGORIES,
    IP_DETECTORS,
    PHONE_DETECTORS,
    UNKNOWN_COUNTRY,
)
from ccg_pipeline.identity import normalise, phone_keys
from ccg_pipeline.scan import scan_arrow
from ccg_pipeline.scan.detectors import BY_NAME, find
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import in_chunks

# A whole address, also written `(at)`/`[dot]`: the email detector's lazy domain part can stop
# early (`a@b.co` of `a@b.co.uk`), enough to flag a cell but not to match the address.
_AT = r"(?:\s?@\s?|\s?[(\[{]at[)\]}]\s?)"
_DOT = r"(?:\.|\s?[(\[{]dot[)\]}]\s?)"
_WHOLE_EMAIL = re.compile(rf"[\w.%+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
_OBFUSCATION = re.compile(r"\s?[(\[{](at|dot)[)\]}]\s?", re.IGNORECASE)


def email_keys(text: str) -> set[str]:
    """Addresses in `text`, normalised as the known-identifier index normalises them."""
    keys = set()
    for match in _WHOLE_EMAIL.findall(text):
        plain = _OBFUSCATION.sub(lambda w: "@" if w[1].lower() == "at" else ".", match)
        keys.add(normalise(plain))
    keys.discard("")
    return keys


@dataclass
class _TextEvidence:
    """What the detectors found in text cells, kept in memory only for matching."""

    cells: Counter[str] = field(default_factory=Counter)
    where: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)

    def add(self, table: pa.Table, label: Callable[[str], str] = str) -> None:
        findings = scan_arrow(table)
        flagged: dict[tuple[str, str], set[int]] = defaultdict(set)
        for finding in findings:
            flagged[finding.column, finding.detector].add(finding.row)
        for (column, detector), rows in flagged.items():
            self.cells[detector] += len(rows)
            self.where[detector].add(label(column))
            if detector == "email" or detector in PHONE_DETECTORS or detector in IP_DETECTORS:
                values = pc.take(table.column(column), pa.array(sorted(rows))).to_pylist()
                for value in values:
                    if detector == "email":
                        self.emails |= email_keys(value)
                        continue
                    for match in find(value, BY_NAME[detector]):
                        if detector in PHONE_DETECTORS:
                            self.phones |= phone_keys(match)
                        else:
                            self.ips.add(match.split("/", 1)[0].strip("[]").lower())

    def categories(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for detector in sorted(self.cells):
            where = ", ".join(sorted(self.where[detector]))
            found[DETECTOR_CATEGORIES.get(detector, "identity")].append(
                f"{detector} in {where} ({self.cells[detector]:,} cell(s))"
            )
        return found


@dataclass
class _Matched:
    ids: set[int]
    matched: dict[str, int]
    unmatched: dict[str, int]
    shared_phones: int  # phone numbers several known people have (counted for none of them)

    def note(self) -> list[str]:
        if not self.shared_phones:
            return []
        return [
            f"{self.shared_phones:,} phone number(s) belong to several known people (a "
            "switchboard, say): they add no subject to the count"
        ]


def _matches(
    conn: Connection, emails: set[str], phones: set[str], usernames: set[str] | None = None
) -> _Matched:
    """Known subject ids for the identifiers, and counts matched/unmatched per kind.

    Warehouse identifiers are streamed and normalised as the known-identifier index does
    (`normalise`, `phone_keys`); only those among the wanted keys are kept. A phone number
    identifies someone only when exactly one known person has it."""
    found: dict[str, dict[str, set[int]]] = {"email": {}, "phone": {}, "username": {}}
    wanted = {"email": emails, "phone": phones, "username": usernames or set()}
    queries: dict[str, list[sa.Select]] = {
        "email": [
            sa.select(s.subjects.c.email_norm, s.subjects.c.subject_id),
            sa.select(s.portal_users.c.email, s.portal_users.c.subject_id),
            sa.select(s.crm_contacts.c.email, s.crm_contacts.c.subject_id),
        ],
        "phone": [
            sa.select(s.portal_users.c.phone, s.portal_users.c.subject_id),
            sa.select(s.crm_contacts.c.phone, s.crm_contacts.c.subject_id),
        ],
        "username": [sa.select(s.portal_users.c.username, s.portal_users.c.subject_id)],
    }
    keys_of: dict[str, Callable[[str], Iterable[str]]] = {
        "email": lambda v: (normalise(v),),
        "phone": phone_keys,
        "username": lambda v: (v.strip().casefold(),),
    }
    for kind, selects in queries.items():
        if not wanted[kind]:
            continue
        for query in selects:
            result = conn.execution_options(stream_results=True).execute(query)
            for value, subject_id in result:
                if value is None:
                    continue
                for key in keys_of[kind](value):
                    if key in wanted[kind]:
                        found[kind].setdefault(key, set()).add(subject_id)
    ids: set[int] = set()
    for kind, per_key in found.items():
        for hits in per_key.values():
            if kind != "phone" or len(hits) == 1:
                ids |= hits
    return _Matched(
        ids=ids,
        matched={k: len(found[k]) for k in wanted if wanted[k]},
        unmatched={k: len(wanted[k]) - len(found[k]) for k in wanted if wanted[k]},
        shared_phones=sum(len(hits) > 1 for hits in found["phone"].values()),
    )


def country_of_subject() -> tuple[sa.ColumnElement[str], sa.Table]:
    """Per subject: the country of a company they are a portal user of, else the country on
    their CRM contact record, else `unknown` (the smallest code when there are several)."""
    subj, pu, co, cc = s.subjects, s.portal_users, s.companies, s.crm_contacts
    company = (
        sa.select(sa.func.min(sa.func.upper(co.c.country)))
        .select_from(pu.join(co, co.c.company_id == pu.c.company_id))
        .where(pu.c.subject_id == subj.c.subject_id)
        .scalar_subquery()
    )
    contact = (
        sa.select(sa.func.min(sa.func.upper(sa.func.trim(cc.c.country))))
        .where(
            cc.c.subject_id == subj.c.subject_id, sa.func.length(sa.func.trim(cc.c.country)) == 2
        )
        .scalar_subquery()
    )
    return sa.func.coalesce(company, contact, UNKNOWN_COUNTRY), subj


def _countries(conn: Connection, ids: set[int]) -> dict[str, int]:
    """Subjects per country code, by grouped SQL over chunks of the (distinct) subject ids."""
    expression, subj = country_of_subject()
    counts: Counter[str] = Counter()
    for chunk in in_chunks(sorted(ids)):
        per = sa.select(expression.label("country")).where(subj.c.subject_id.in_(chunk)).subquery()
        query = sa.select(per.c.country, sa.func.count()).group_by(per.c.country)
        counts.update({country: n for country, n in conn.execute(query)})
    located = sum(counts.values())
    if located < len(ids):  # ids no longer in personal.subjects
        counts[UNKNOWN_COUNTRY] += len(ids) - located
    return dict(sorted(counts.items(), key=lambda item: (item[0] == UNKNOWN_COUNTRY, item[0])))

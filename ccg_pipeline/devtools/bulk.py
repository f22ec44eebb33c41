"""Large synthetic sources for benchmarks, fast: columns sampled from value pools with numpy.

`ccg generate` (devtools.generate) builds a few thousand customers one Faker call at a time, which
is right for the demo and the tests but takes hours at a million people. This module writes the
same files in the same formats (the portal database, CRM exports, web and auth logs, so the real
ingest reads them) from seeded numpy draws: Faker is only asked once per pool (a few hundred
names, streets and phone numbers per country), and every row picks from the pools by index.
Same seed and scale, same files.

The population keeps the cases retention turns on: customers active or ceased 2, 5, just under
and over 6, and 7+ years ago, or around the 5 April year end; trial-only customers; prospects
who never bought; consents and opt-outs in the CRM history; the same person in the portal and
the CRM with differently typed email; and a small share of malformed records and log lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import itertools
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from faker import Faker

from ccg_pipeline.devtools.scenario import (
    COUNTRY_WEIGHTS,
    CUSTOMER_CASES,
    ENQUIRY_TEXTS,
    INTERESTS,
    JOB_TITLES,
    LOCALES,
    NOTE_TEXTS,
    PORTAL_DDL,
    SECTORS,
    SERVICES,
    USER_AGENTS,
    WEB_PATHS,
)

DAY = 86_400
CRM_BLOCK = 100_000  # people per block of CRM rows, which bounds the generator's memory
POOL = 400  # values per locale and kind; enough variety for statistics, cheap to draw


@dataclass(frozen=True)
class BulkScale:
    """How much to generate. Persons are CRM contacts; the first `users` of them (about three
    per company) also have a portal account."""

    companies: int
    persons: int
    crm_events: int
    log_lines: int
    auth_lines: int
    log_days: int = 30
    invoices_per_company: int = 4

    @property
    def users(self) -> int:
        return min(self.persons, 3 * self.companies)


# S is a tenth of M on every source, so the time ratio between them is the cost of 10x the data.
SCALES = {
    "S": BulkScale(
        companies=10_000,
        persons=100_000,
        crm_events=500_000,
        log_lines=1_000_000,
        auth_lines=20_000,
    ),
    "M": BulkScale(
        companies=100_000,
        persons=1_000_000,
        crm_events=5_000_000,
        log_lines=10_000_000,
        auth_lines=200_000,
    ),
}


@dataclass
class BulkReport:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)


def _fold(text: str) -> str:
    """ASCII letters only, for email local parts and usernames."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum()) or "x"


@dataclass(frozen=True)
class _Pools:
    """Per-locale value pools, `POOL` values each, drawn once from Faker with the seed."""

    first: np.ndarray  # (locales, POOL) of str
    last: np.ndarray
    street: np.ndarray
    postcode: np.ndarray
    city: np.ndarray
    phone: np.ndarray
    company: np.ndarray

    @classmethod
    def build(cls, seed: int) -> _Pools:
        kinds: dict[str, list[list[str]]] = {k: [] for k in cls.__dataclass_fields__}
        for n, locale in enumerate(LOCALES.values()):
            fake = Faker(locale)
            fake.seed_instance(seed + n)
            kinds["first"].append([fake.first_name() for _ in range(POOL)])
            kinds["last"].append([fake.last_name() for _ in range(POOL)])
            kinds["street"].append([fake.street_address() for _ in range(POOL)])
            kinds["postcode"].append([fake.postcode() for _ in range(POOL)])
            kinds["city"].append([fake.city() for _ in range(POOL)])
            kinds["phone"].append([fake.phone_number() for _ in range(POOL)])
            kinds["company"].append([fake.company() for _ in range(POOL)])
        return cls(**{k: np.array(v, dtype=object) for k, v in kinds.items()})


def _stamps(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds to 'YYYY-MM-DD HH:MM:SS' strings, vectorised."""
    raw = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype("S19")
    raw.view(np.uint8).reshape(-1, 19)[:, 10] = ord(" ")
    return raw.astype(str).astype(object)


def _days(days: np.ndarray) -> np.ndarray:
    """Days since the epoch to 'YYYY-MM-DD' strings."""
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object)


def _with_missing(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[missing] = None
    return out


def _uniform_between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A whole number in [low, high) per element (low where the range is empty)."""
    span = np.maximum(high - low, 1)
    return low + (rng.random(len(low)) * span).astype(np.int64)


class _Builder:
    def __init__(self, scale: BulkScale, seed: int, as_of: dt.date, malformed_rate: float):
        self.s = scale
        self.rng = np.random.default_rng(seed)
        self.pools = _Pools.build(seed)
        self.as_of = as_of
        self.rate = malformed_rate
        epoch = dt.date(1970, 1, 1)
        self.today = (as_of - epoch).days  # days since the epoch
        self.now = self.today * DAY + 23 * 3600  # as_of 23:00, before the interval ends
        countries = list(COUNTRY_WEIGHTS)
        self.countries = np.array(countries, dtype=object)
        weights = np.array([COUNTRY_WEIGHTS[c] for c in countries], dtype=float)
        self.country_p = weights / weights.sum()

    def pick(self, kind: str, locale: np.ndarray) -> np.ndarray:
        pool = getattr(self.pools, kind)
        return pool[locale, self.rng.integers(0, POOL, len(locale))]

    # --- portal ---------------------------------------------------------------------------

    def ceased_days(self, cases: np.ndarray) -> np.ndarray:
        """Day (since the epoch) each customer ceased; -1 for active customers. The same case
        rules as `generate` (`scenario.CUSTOMER_CASES`), drawn a column at a time."""
        rng, epoch = self.rng, dt.date(1970, 1, 1)
        out = np.full(len(cases), -1, dtype=np.int64)
        for case in CUSTOMER_CASES:
            rule, mask = case.ceasing, cases == case.name
            n = int(mask.sum())
            if rule is None or n == 0:
                continue
            # Calendar anchors, exact, for the few distinct year counts.
            anchors = np.array(
                [(rule.anchor(self.as_of, y) - epoch).days for y in range(*rule.years)]
            )
            years = rng.integers(0, len(anchors), n)
            out[mask] = anchors[years] + rule.sign * rng.integers(*rule.days, n)
        return out

    def companies(self) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.s.companies
        names, weights = zip(*((c.name, c.weight) for c in CUSTOMER_CASES), strict=True)
        p = np.array(weights, dtype=float) / sum(weights)
        cases = np.array(names, dtype=object)[rng.choice(len(names), n, p=p)]
        locale = rng.choice(len(self.countries), n, p=self.country_p)
        country = self.countries[locale]
        ceased = self.ceased_days(cases)
        end = np.where(ceased >= 0, ceased, self.today)
        start = end - rng.integers(200, 2500, n)
        created = (start - rng.integers(1, 60, n)) * DAY + 12 * 3600
        closed = ceased * DAY + 12 * 3600
        is_closed = ceased >= 0
        updated = np.where(is_closed, closed, _uniform_between(rng, created, np.full(n, self.now)))
        ids = np.arange(1, n + 1)
        gb = country == "GB"
        company_number = np.char.zfill(rng.integers(10**7, 10**8 - 1, n).astype(str), 8)
        return {
            "id": ids,
            "name": self.pick("company", locale),
            "company_number": _with_missing(company_number, ~gb),
            "vat_number": country + rng.integers(10**8, 10**9, n).astype(str).astype(object),
            "country_code": country,
            "sector": np.array(SECTORS, dtype=object)[rng.integers(0, len(SECTORS), n)],
            "employee_count": rng.choice([3, 8, 15, 40, 90, 250, 600, 1500], n),
            "annual_revenue": rng.choice([250_000, 900_000, 4_000_000, 20_000_000, 95_000_000], n),
            "address_line": self.pick("street", locale),
            "postcode": self.pick("postcode", locale),
            "city": self.pick("city", locale),
            "created_at": _stamps(created),
            "closed_at": _with_missing(_stamps(closed), ~is_closed),
            "updated_at": _stamps(updated),
            # Not written; what the rest of the population is built from.
            "_case": cases,
            "_locale": locale,
            "_start": start,
            "_ceased": ceased,
            "_created": created,
            "_closed": np.where(is_closed, closed, -1),
        }

    def users(self, co: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rng, n_users, n_co = self.rng, self.s.users, self.s.companies
        # Every company has at least one user; the rest are spread at random.
        company = np.concatenate([np.arange(n_co), rng.integers(0, n_co, max(n_users - n_co, 0))])
        company = np.sort(company[:n_users])
        locale = co["_locale"][company]
        first, last = self.pick("first", locale), self.pick("last", locale)
        ids = np.arange(1, n_users + 1)
        fold = np.vectorize(_fold, otypes=[object])
        first_f, last_f = fold(first), fold(last)
        domain = np.char.add("company", (company + 1).astype(str)).astype(object) + ".eu"
        email = first_f + "." + last_f + "." + ids.astype(str).astype(object) + "@" + domain
        joined = co["_created"][company] + rng.integers(0, 30, n_users) * DAY
        closed = co["_closed"][company]
        is_closed = closed >= 0
        end = np.where(is_closed, closed, self.now)
        last_login = _uniform_between(rng, joined, end)
        interests = np.array(
            ["", *INTERESTS, *(f"{a},{b}" for a, b in itertools.pairwise(INTERESTS))],
            dtype=object,
        )
        hashes = np.array(
            [
                f"pbkdf2_sha256$600000${n:024x}${hashlib.sha256(str(n).encode()).hexdigest()}"
                for n in range(POOL)
            ],
            dtype=object,
        )
        timezone = np.where(
            self.countries[locale] == "GB",
            "Europe/London",
            np.where(self.countries[locale] == "IE", "Europe/Dublin", "Europe/Stockholm"),
        ).astype(object)
        return {
            "id": ids,
            "company_id": company + 1,
            "email": email,
            "username": np.char.add(
                np.array([f[0] for f in first_f], dtype=str), last_f.astype(str)
            ).astype(object)
            + ids.astype(str).astype(object),
            "first_name": first,
            "last_name": last,
            "job_title": np.array(JOB_TITLES, dtype=object)[
                rng.integers(0, len(JOB_TITLES), n_users)
            ],
            "phone": self.pick("phone", locale),
            "password_hash": hashes[rng.integers(0, POOL, n_users)],
            "interests": interests[rng.integers(0, len(interests), n_users)],
            "timezone": timezone,
            "created_at": _stamps(joined),
            "closed_at": _with_missing(_stamps(closed), ~is_closed),
            "last_login_at": _stamps(last_login),
            "updated_at": _stamps(np.where(is_closed, closed, last_login)),
            "_locale": locale,
            "_joined": joined,
            "_company_name": co["name"][company],
        }

    def money(self, co: dict[str, np.ndarray], users: dict[str, np.ndarray]) -> dict[str, dict]:
        """Contracts (a trial, then a full licence) and the last few quarterly invoices, with
        their orders and payments, up to the day a customer ceased (or today)."""
        rng, n = self.rng, self.s.companies
        services = np.array(list(SERVICES), dtype=object)
        fees = np.array(list(SERVICES.values()))
        service = rng.integers(0, len(services), n)
        start, ceased = co["_start"], co["_ceased"]
        trial_end = start + 30
        full = co["_case"] != "trial_only"
        company_ids = np.arange(1, n + 1)
        k_company = np.concatenate([company_ids, company_ids[full]])
        k_full = np.concatenate([np.zeros(n, bool), np.ones(full.sum(), bool)])
        order = np.argsort(k_company, kind="stable")
        k_company, k_full = k_company[order], k_full[order]
        ci = k_company - 1
        k_start = np.where(k_full, trial_end[ci], start[ci])
        k_end = np.where(k_full, ceased[ci], trial_end[ci])
        contracts = {
            "id": np.arange(1, len(k_company) + 1),
            "company_id": k_company,
            "licence_type": np.where(k_full, "full", "trial").astype(object),
            "service": services[service[ci]],
            "start_date": _days(k_start),
            "end_date": _with_missing(_days(np.maximum(k_end, 0)), k_end < 0),
            "annual_fee": np.where(
                k_full, np.char.mod("%.2f", fees[service[ci]] / 100), "0.00"
            ).astype(object),
            "updated_at": _stamps(np.where(k_end >= 0, k_end, k_start) * DAY + 12 * 3600),
        }
        last_day = np.where(ceased >= 0, ceased, self.today)
        quarters = np.where(full, (last_day - trial_end) // 91 + 1, 0).clip(0)
        per_company = np.minimum(quarters, self.s.invoices_per_company)
        i_company = np.repeat(np.arange(n), per_company)
        back = np.concatenate([np.arange(k) for k in per_company]) if len(i_company) else i_company
        issued = last_day[i_company] - back * 91
        m = len(issued)
        ids = np.arange(1, m + 1)
        amount = fees[service[i_company]] // 4 + rng.integers(0, 5000, m)
        ordered_at = issued * DAY + 12 * 3600 - rng.integers(1, 48, m) * 3600
        # A user of the company placed the order: users are sorted by company.
        first_user = np.searchsorted(users["company_id"], np.arange(1, n + 1))
        orders = {
            "id": ids,
            "company_id": i_company + 1,
            "user_id": first_user[i_company] + 1,
            "service": services[service[i_company]],
            "ordered_at": _stamps(ordered_at),
            "amount": np.char.mod("%.2f", amount / 100).astype(object),
            "updated_at": _stamps(ordered_at),
        }
        paid_on = issued + rng.integers(3, 45, m)
        paid = paid_on <= self.today
        years = (issued.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970).astype(
            str
        )
        invoices = {
            "id": ids,
            "company_id": i_company + 1,
            "order_id": ids,
            "invoice_number": np.char.add(
                np.char.add("INV-", years), np.char.add("-", np.char.zfill(ids.astype(str), 7))
            ).astype(object),
            "issued_on": _days(issued),
            "due_on": _days(issued + 30),
            "amount": orders["amount"],
            "vat": np.char.mod("%.2f", amount * 0.2 / 100).astype(object),
            "status": np.where(paid, "paid", "open").astype(object),
            "updated_at": _stamps(np.where(paid, paid_on, issued) * DAY + 12 * 3600),
        }
        p_invoice = ids[paid]
        p = len(p_invoice)
        card = rng.random(p) < 0.5
        digits = np.char.zfill(rng.integers(0, 10_000, p).astype(str), 4).astype(object)
        paid_at = _stamps(paid_on[paid] * DAY + 12 * 3600)
        payments = {
            "id": np.arange(1, p + 1),
            "invoice_id": p_invoice,
            "paid_at": paid_at,
            "amount": np.char.mod("%.2f", amount[paid] * 1.2 / 100).astype(object),
            "method": np.where(card, "card", "bank_transfer").astype(object),
            "card_number_masked": _with_missing("************" + digits, ~card),
            "bank_account_masked": _with_missing("****" + digits, card),
            "updated_at": paid_at,
        }
        return {
            "contracts": contracts,
            "orders": orders,
            "invoices": invoices,
            "payments": payments,
        }

    def damage_portal(self, tables: dict[str, dict[str, np.ndarray]]) -> int:
        """Bad rows a source database has too: unknown codes, impossible dates, bad amounts."""
        damaged = 0
        for table, column, bad in (
            ("companies", "country_code", "Z9"),
            ("users", "created_at", "2021-02-30 10:00:00"),
            ("invoices", "issued_on", "not-a-date"),
            ("payments", "amount", "12,50"),
        ):
            values = tables[table][column]
            hit = self.rng.random(len(values)) < self.rate / 2
            values[hit] = bad
            damaged += int(hit.sum())
        return damaged

    # --- CRM ------------------------------------------------------------------------------

    def crm_plan(self) -> dict[str, np.ndarray]:
        """Who consented, opted out and enquired, decided up front, so the CRM can be written in
        blocks of people while the number of events stays exactly `crm_events`."""
        rng, n = self.rng, self.s.persons
        plan: dict[str, np.ndarray] = {
            "opted_out": rng.random(n) < 0.15,
            "consented": rng.random(n) < 0.6,
            "enquired": rng.random(n) < 0.5,
        }
        forced = 2 * plan["consented"].sum() + plan["opted_out"].sum() + plan["enquired"].sum()
        notes = self.s.crm_events - int(forced)
        if notes < 0:
            raise ValueError(f"crm_events must be at least {forced} for {n} persons")
        # Notes per person block, in proportion to its size (exact in total).
        ends = np.arange(CRM_BLOCK, n + CRM_BLOCK, CRM_BLOCK).clip(max=n)
        plan["notes"] = np.diff(np.floor(notes * ends / max(n, 1)).astype(np.int64), prepend=0)
        return plan

    def contacts(self, users: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
        """CRM contacts `lo`..`hi`: portal users first (as customers), then prospects."""
        rng, n_users = self.rng, self.s.users
        u = slice(min(lo, n_users), min(hi, n_users))
        k = u.stop - u.start  # customers in this block
        pids = np.arange(max(lo, n_users), hi)  # prospects in this block
        p = len(pids)
        locale = np.concatenate(
            [users["_locale"][u], rng.choice(len(self.countries), p, p=self.country_p)]
        )
        first = np.concatenate([users["first_name"][u], self.pick("first", locale[k:])])
        last = np.concatenate([users["last_name"][u], self.pick("last", locale[k:])])
        # Customers come back from the CRM with their email's case and spacing changed.
        variant = rng.integers(0, 4, k)
        email_u = users["email"][u].copy()
        upper = variant == 0
        email_u[upper] = np.char.upper(email_u[upper].astype(str)).astype(object)
        spaced = variant == 1
        email_u[spaced] = "  " + np.char.title(email_u[spaced].astype(str)).astype(object) + " "
        fold = np.vectorize(_fold, otypes=[object])
        free = np.array(
            ["gmail.com", "outlook.com", "hotmail.co.uk", "telia.se", "web.de"], dtype=object
        )
        domain = free[rng.integers(0, len(free), p)]
        own = rng.random(p) < 0.2
        domain[own] = "firm" + pids[own].astype(str).astype(object) + ".eu"
        email_p = (
            fold(first[k:]) + "." + fold(last[k:]) + ".p" + pids.astype(str).astype(object) + "@"
        ) + domain
        stages = np.array(["lead", "subscriber", "marketingqualifiedlead"], dtype=object)
        return {
            "Record ID": 100_001 + np.arange(lo, hi),
            "First Name": first,
            "Last Name": last,
            "Email": np.concatenate([email_u, email_p]),
            "Phone Number": np.concatenate(
                [
                    users["phone"][u],
                    np.where(rng.random(p) < 0.5, self.pick("phone", locale[k:]), ""),
                ]
            ),
            "Job Title": np.concatenate([users["job_title"][u], np.full(p, "", dtype=object)]),
            "Company Name": np.concatenate(
                [
                    users["_company_name"][u],
                    np.where(rng.random(p) < 0.6, self.pick("company", locale[k:]), ""),
                ]
            ),
            "Country/Region": self.countries[locale],
            "Lifecycle Stage": np.concatenate(
                [np.full(k, "customer", dtype=object), stages[rng.integers(0, 3, p)]]
            ),
            "_created": np.concatenate(
                [users["_joined"][u], self.now - rng.integers(10, 5 * 365, p) * DAY]
            ),
        }

    def activities(
        self, contacts: dict[str, np.ndarray], plan: dict[str, np.ndarray], lo: int, notes: int
    ) -> dict[str, np.ndarray]:
        """The CRM history of one block of contacts: consents, opt-outs, enquiries and notes.
        Also sets each contact's marketing status and last activity date from it."""
        rng, now = self.rng, self.now
        created = contacts["_created"]
        n = len(created)
        opted_out = plan["opted_out"][lo : lo + n]
        consented = plan["consented"][lo : lo + n]
        who_c = np.flatnonzero(consented)
        consent_at = _uniform_between(rng, created[who_c], np.full(len(who_c), now))
        after = created.copy()
        after[who_c] = consent_at  # an opt-out is the last word, after any consent
        who_o = np.flatnonzero(opted_out)
        opt_out_at = _uniform_between(rng, after[who_o], np.full(len(who_o), now + 1))
        who_e = np.flatnonzero(plan["enquired"][lo : lo + n])
        who_n = rng.integers(0, n, notes)
        note_at = _uniform_between(rng, created[who_n], np.full(notes, now))
        contact = np.concatenate([who_c, who_c, who_o, who_e, who_n])
        when = np.concatenate([consent_at, consent_at, opt_out_at, created[who_e], note_at])
        kind = np.repeat(np.arange(5), [len(who_c), len(who_c), len(who_o), len(who_e), notes])
        order = np.lexsort((kind, when, contact))
        contact, when, kind = contact[order], when[order], kind[order]
        m = len(contact)
        kinds = np.array(
            [
                "MAILING_LIST_SUBSCRIBE",
                "MARKETING_CONSENT_GRANTED",
                "MARKETING_OPT_OUT",
                "CONTACT_US_ENQUIRY",
                "NOTE",
            ],
            dtype=object,
        )
        subjects = np.array(
            [
                "Newsletter sign-up",
                "Consent: email marketing",
                "Unsubscribed via link",
                "Website enquiry",
                "Note",
            ],
            dtype=object,
        )
        body = np.full(m, "", dtype=object)
        is_note, is_enquiry = kind == 4, kind == 3
        notes_pool = np.array(NOTE_TEXTS, dtype=object)
        enquiry_pool = np.array(ENQUIRY_TEXTS, dtype=object)
        body[is_note] = notes_pool[rng.integers(0, len(notes_pool), int(is_note.sum()))]
        body[is_enquiry] = enquiry_pool[rng.integers(0, len(enquiry_pool), int(is_enquiry.sum()))]
        channel = np.where(is_note, "phone", np.where(is_enquiry, "web_form", "email"))
        last_activity = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last_activity, contact, when)
        customer = contacts["Lifecycle Stage"] == "customer"
        contacts["Marketing Contact Status"] = np.where(
            opted_out,
            "Unsubscribed",
            np.where(consented | customer, "Marketing contact", "Non-marketing contact"),
        ).astype(object)
        create = _stamps(created)
        bad = rng.random(n) < self.rate
        create[bad] = np.array(["31/02/2024", "yesterday", ""], dtype=object)[
            rng.integers(0, 3, int(bad.sum()))
        ]
        contacts["Create Date"] = create
        contacts["Last Activity Date"] = np.where(
            last_activity >= 0, _stamps(np.maximum(last_activity, 0)), ""
        ).astype(object)
        return {
            "Activity ID": np.arange(m),  # numbered by the caller, across blocks
            "Contact ID": contacts["Record ID"][contact],
            "Activity Type": kinds[kind],
            "Activity Date": _stamps(when),
            "Channel": channel.astype(object),
            "Subject": subjects[kind],
            "Body": body,
        }

    # --- logs -----------------------------------------------------------------------------

    def ip_pool(self, size: int = 20_000) -> np.ndarray:
        rng = self.rng
        first = np.array([81, 86, 90, 145, 185, 212, 31, 62])[rng.integers(0, 8, size)]
        v4 = np.array(
            [
                f"{a}.{b}.{c}.{d}"
                for a, b, c, d in zip(
                    first,
                    rng.integers(0, 256, size),
                    rng.integers(0, 256, size),
                    rng.integers(1, 255, size),
                    strict=True,
                )
            ],
            dtype=object,
        )
        v6 = rng.random(size) < 0.1
        v4[v6] = [
            f"2001:db8:{a:x}:{b:x}::{c:x}" for a, b, c in rng.integers(0, 65536, (int(v6.sum()), 3))
        ]
        return v4

    def web_lines(self, day: int, count: int, ips: np.ndarray, emails: np.ndarray) -> list[str]:
        rng = self.rng
        paths = np.array(
            [
                *WEB_PATHS,
                *(f"/portal/declarations?page={p}" for p in range(1, 9)),
                *(f"/contact-us?email={e.replace('@', '%40')}&ref=newsletter" for e in emails),
            ],
            dtype=object,
        )
        weights = np.concatenate(
            [np.ones(len(WEB_PATHS)), np.full(8, 0.1), np.full(len(emails), 0.3 / len(emails))]
        )
        path = paths[rng.choice(len(paths), count, p=weights / weights.sum())]
        status = np.array([200, 304, 302, 404, 500])[
            rng.choice(5, count, p=[0.8, 0.08, 0.06, 0.05, 0.01])
        ]
        size = np.where((status == 302) | (status == 304), 0, rng.integers(200, 90_000, count))
        referrers = np.array(
            [
                "-",
                "https://www.google.com/",
                "https://www.customsconnect.eu/",
                "https://www.bing.com/",
            ],
            dtype=object,
        )
        referrer = referrers[rng.integers(0, 4, count)]
        agent = np.array(USER_AGENTS, dtype=object)[rng.integers(0, len(USER_AGENTS), count)]
        ip = ips[rng.integers(0, len(ips), count)]
        start = dt.datetime(1970, 1, 1) + dt.timedelta(days=int(day))  # noqa: DTZ001 - naive UTC
        stamps = [
            (start + dt.timedelta(seconds=s)).strftime("%d/%b/%Y:%H:%M:%S +0000")
            for s in range(DAY)
        ]
        second = (np.arange(count) * DAY) // max(count, 1)
        out = [
            f'{a} - - [{stamps[t]}] "GET {p} HTTP/1.1" {st} {sz} "{r}" "{ua}"'
            for a, t, p, st, sz, r, ua in zip(
                ip.tolist(),
                second.tolist(),
                path.tolist(),
                status.tolist(),
                size.tolist(),
                referrer.tolist(),
                agent.tolist(),
                strict=True,
            )
        ]
        garbage = ["-", "GET / HTTP/1.1", '127.0.0.1 - - [garbage] "GET"', "\x00\x01binary", ""]
        for n in np.flatnonzero(rng.random(count) < self.rate).tolist():
            out[n] = garbage[n % len(garbage)]
        return out

    def auth_lines(self, day: int, count: int, users: dict[str, np.ndarray]) -> list[str]:
        rng = self.rng
        active = np.flatnonzero(users["closed_at"] == None)  # noqa: E711 (elementwise)
        if not len(active):
            active = np.arange(len(users["id"]))
        who = active[rng.integers(0, len(active), count)]
        base = day * DAY + 6 * 3600
        when = np.sort(base + rng.integers(0, 14 * 3600, count))
        stamps = _stamps(when)
        ok = rng.random(count) > 0.08
        ips = self.ip_pool(2_000)
        ip = ips[rng.integers(0, len(ips), count)]
        agents = np.array(USER_AGENTS[:6], dtype=object)[rng.integers(0, 6, count)]
        names, ids = users["username"], users["id"]
        out = [
            f'{{"ts": "{ts[:10]}T{ts[11:]}Z", "event": "login", "outcome": "{"success" if good else "failure"}", '
            f'"username": "{names[u]}", "user_id": {ids[u]}, "ip": "{a}", "user_agent": "{ua}"}}'
            for ts, good, u, a, ua in zip(
                stamps.tolist(),
                ok.tolist(),
                who.tolist(),
                ip.tolist(),
                agents.tolist(),
                strict=True,
            )
        ]
        garbage = [
            '{"ts": "2026-13-45T99:00:00Z", "event": "login"}',
            "{not json",
            '{"event": "login"}',
        ]
        for n in np.flatnonzero(rng.random(count) < self.rate).tolist():
            out[n] = garbage[n % len(garbage)]
        return out


def _columns(table: dict[str, np.ndarray]) -> list[str]:
    return [c for c in table if not c.startswith("_")]


def _rows(table: dict[str, np.ndarray], columns: Sequence[str]) -> Iterable[tuple]:
    return zip(*(table[c].tolist() for c in columns), strict=True)


def _write_portal(path: Path, tables: dict[str, dict[str, np.ndarray]]) -> None:
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(PORTAL_DDL)
        for name, table in tables.items():
            columns = _columns(table)
            db.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                _rows(table, columns),
            )
        db.commit()
    finally:
        db.close()


def _write_csv(path: Path, table: dict[str, np.ndarray], *, header: bool = True) -> int:
    columns = _columns(table)
    with path.open("w" if header else "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL)
        if header:
            writer.writerow(columns)
        writer.writerows(_rows(table, columns))
    return len(table[columns[0]])


def _write_lines(path: Path, lines: list[str], *, compress: bool) -> int:
    text = "\n".join(lines) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return len(lines)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def generate_bulk(
    out: Path,
    scale: BulkScale,
    *,
    seed: int = 42,
    as_of: dt.date = dt.date(2026, 11, 23),
    malformed_rate: float = 0.002,
) -> BulkReport:
    """Write every source for `scale` under `out` (portal.db, crm/, logs/web, logs/auth)."""
    out.mkdir(parents=True, exist_ok=True)
    b = _Builder(scale, seed, as_of, malformed_rate)
    report = BulkReport(out)
    co = b.companies()
    users = b.users(co)
    money = b.money(co, users)
    portal = {"companies": co, "users": users, **money}
    report.counts["portal_rows_damaged"] = b.damage_portal(portal)
    _write_portal(out / "portal.db", portal)
    for name, table in portal.items():
        report.counts[f"portal_{name}"] = len(table["id"])

    crm_dir = out / "crm"
    crm_dir.mkdir(exist_ok=True)
    stamp = as_of.strftime("%Y%m%d")
    plan = b.crm_plan()
    contacts_csv, activities_csv = (
        crm_dir / f"contacts_{stamp}.csv",
        crm_dir / f"activities_{stamp}.csv",
    )
    written = {"crm_contacts": 0, "crm_activities": 0}
    for block, lo in enumerate(range(0, scale.persons, CRM_BLOCK)):
        contacts = b.contacts(users, lo, min(lo + CRM_BLOCK, scale.persons))
        activities = b.activities(contacts, plan, lo, int(plan["notes"][block]))
        activities["Activity ID"] += 900_001 + written["crm_activities"]
        first = lo == 0
        written["crm_activities"] += _write_csv(activities_csv, activities, header=first)
        written["crm_contacts"] += _write_csv(contacts_csv, contacts, header=first)
    report.counts.update(written)
    crm_companies = {
        "Record ID": 500_000 + co["id"],
        "Company Name": co["name"],
        "Company Domain Name": np.char.add("company", co["id"].astype(str)).astype(object) + ".eu",
        "Country/Region": b.countries[co["_locale"]],
        "Industry": co["sector"],
        "Number of Employees": co["employee_count"],
        "Annual Revenue": co["annual_revenue"],
        "Create Date": _stamps(co["_created"]),
    }
    report.counts["crm_companies"] = _write_csv(crm_dir / f"companies_{stamp}.csv", crm_companies)

    web_dir, auth_dir = out / "logs" / "web", out / "logs" / "auth"
    web_dir.mkdir(parents=True, exist_ok=True)
    auth_dir.mkdir(parents=True, exist_ok=True)
    ips = b.ip_pool()
    emails = users["email"][:50]
    days = range(b.today - scale.log_days + 1, b.today + 1)
    web = auth = 0
    for day, n_web, n_auth in zip(
        days,
        _split(scale.log_lines, scale.log_days),
        _split(scale.auth_lines, scale.log_days),
        strict=True,
    ):
        name = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).strftime("%Y%m%d")
        web += _write_lines(
            web_dir / f"access.log-{name}.gz", b.web_lines(day, n_web, ips, emails), compress=True
        )
        auth += _write_lines(
            auth_dir / f"auth-{name}.jsonl", b.auth_lines(day, n_auth, users), compress=False
        )
    report.counts["web_log_lines"] = web
    report.counts["auth_log_lines"] = auth
    return report

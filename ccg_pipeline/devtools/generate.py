"""Synthetic CCG sources in the formats real systems produce, deterministic by seed.

Writes, under `out`:

- `portal.db`: the customer-portal database (SQLite, reached through SQLAlchemy like the real one);
- `crm/{contacts,companies,activities}_YYYYMMDD.csv`: CRM exports shaped like a typical CRM's;
- `logs/web/access.log-YYYYMMDD.gz`: web access logs in combined log format, rotated daily;
- `logs/auth/auth-YYYYMMDD.jsonl`: portal authentication events as JSON lines.

The population is built around the cases the notice's rules turn on: active customers; customers
who ceased 2, 5, just under 6, just over 6 and 7+ years ago; ceasings around the 5 April year end;
prospects who never bought; opted-out contacts; the same person in several sources with differing
email case and whitespace; and a small share of malformed records and log lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

from ccg_pipeline.devtools.scenario import (
    CASES_BY_NAME,
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


@dataclass(frozen=True)
class GenerateOptions:
    out: Path
    seed: int = 42
    as_of: dt.date = dt.date(2026, 11, 23)
    companies: int = 120
    prospects: int = 80
    log_days: int = 3
    log_lines_per_day: int = 1500
    crm_export_days: int = 2
    malformed_rate: float = 0.02


@dataclass
class GenerateReport:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _between(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    if end <= start:
        return start
    return start + dt.timedelta(seconds=rng.randrange(int((end - start).total_seconds())))


def _midday(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12, 0))


def _ceased_on(rng: random.Random, case: str, as_of: dt.date) -> dt.date | None:
    """The day a customer of `case` ceased (`scenario.CUSTOMER_CASES`), one draw at a time."""
    rule = CASES_BY_NAME[case].ceasing
    if rule is None:
        return None
    years = rule.years[0] if rule.years[1] - rule.years[0] == 1 else rng.randrange(*rule.years)
    days = rng.randrange(*rule.days)
    return rule.anchor(as_of, years) + dt.timedelta(days=rule.sign * days)


def _email_variant(rng: random.Random, email: str) -> str:
    """How the same address comes back from another system: case and stray whitespace."""
    choice = rng.randrange(4)
    if choice == 0:
        return email.upper()
    if choice == 1:
        return f"  {email.title()} "
    if choice == 2:
        return email.capitalize()
    return email


def _password_hash(rng: random.Random) -> str:
    salt = rng.getrandbits(96).to_bytes(12, "big").hex()
    digest = hashlib.sha256(salt.encode()).hexdigest()
    return f"pbkdf2_sha256$600000${salt}${digest}"


def company_domain(rng: random.Random, name: str, fallback: str) -> str:
    """A web domain made from a company's name (the stem of its people's addresses)."""
    stem = "".join(ch for ch in name.lower() if ch.isalnum()).encode("ascii", "ignore").decode()
    return (stem or fallback)[:20] + rng.choice([".co.uk", ".se", ".eu", ".com"])


def company_record(
    rng: random.Random, f: Faker, name: str, country: str, created: dt.datetime
) -> dict:
    """A portal company's firmographics and address (without id, closure or updated_at)."""
    return {
        "name": name,
        "company_number": f"{rng.randrange(10**7, 10**8 - 1):08d}" if country == "GB" else None,
        "vat_number": f"{country}{rng.randrange(10**8, 10**9)}",
        "country_code": country,
        "sector": rng.choice(SECTORS),
        "employee_count": rng.choice([3, 8, 15, 40, 90, 250, 600, 1500]),
        "annual_revenue": rng.choice([250_000, 900_000, 4_000_000, 20_000_000, 95_000_000]),
        "address_line": f.street_address(),
        "postcode": f.postcode(),
        "city": f.city(),
        "created_at": _ts(created),
    }


def crm_company_record(company: dict, domain: str) -> dict:
    """The CRM's record of a portal company."""
    return {
        "Record ID": 500_000 + company["id"],
        "Company Name": company["name"],
        "Company Domain Name": domain,
        "Country/Region": company["country_code"],
        "Industry": company["sector"],
        "Number of Employees": company["employee_count"],
        "Annual Revenue": company["annual_revenue"],
        "Create Date": company["created_at"],
    }


class _Population:
    def __init__(self, options: GenerateOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.fake = Faker(list(LOCALES.values()))
        self.fake.seed_instance(options.seed)
        self.now = dt.datetime.combine(options.as_of, dt.time(23, 0))
        self.companies: list[dict] = []
        self.users: list[dict] = []
        self.contracts: list[dict] = []
        self.orders: list[dict] = []
        self.invoices: list[dict] = []
        self.payments: list[dict] = []
        self.crm_contacts: list[dict] = []
        self.crm_companies: list[dict] = []
        self.activities: list[dict] = []
        self._emails: set[str] = set()

    def locale(self, country: str) -> Faker:
        return self.fake[LOCALES[country]]

    def unique_email(self, first: str, last: str, domain: str) -> str:
        base = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        base = base.encode("ascii", "ignore").decode() or "contact"
        email, n = f"{base}@{domain}", 1
        while email in self._emails:
            n += 1
            email = f"{base}{n}@{domain}"
        self._emails.add(email)
        return email

    def build(self) -> None:
        rng = self.rng
        cases, weights = zip(*((c.name, c.weight) for c in CUSTOMER_CASES), strict=True)
        countries, cweights = zip(*COUNTRY_WEIGHTS.items(), strict=True)
        for company_id in range(1, self.o.companies + 1):
            case = rng.choices(cases, weights)[0]
            country = rng.choices(countries, cweights)[0]
            self._customer(company_id, case, country)
        for n in range(self.o.prospects):
            self._prospect(n, rng.choices(countries, cweights)[0])

    def _customer(self, company_id: int, case: str, country: str) -> None:
        rng, f = self.rng, self.locale(country)
        ceased = _ceased_on(rng, case, self.o.as_of)
        end = ceased or self.o.as_of
        start = end - dt.timedelta(days=rng.randrange(200, 2500))
        name = f.company()
        domain = company_domain(rng, name, f"company{company_id}")
        created = _midday(start) - dt.timedelta(days=rng.randrange(1, 60))
        closed = _midday(ceased) if ceased else None
        self.companies.append(
            {
                "id": company_id,
                **company_record(rng, f, name, country, created),
                "closed_at": _ts(closed) if closed else None,
                "updated_at": _ts(closed or _between(rng, created, self.now)),
            }
        )
        self.crm_companies.append(crm_company_record(self.companies[-1], domain))
        user_ids = [
            self._user(company_id, country, domain, created, closed)
            for _ in range(rng.randrange(1, 4))
        ]
        self._contracts_and_money(company_id, case, start, ceased, user_ids)

    def _user(
        self,
        company_id: int,
        country: str,
        domain: str,
        created: dt.datetime,
        closed: dt.datetime | None,
    ) -> int:
        rng, f = self.rng, self.locale(country)
        user_id = len(self.users) + 1
        first, last = f.first_name(), f.last_name()
        email = self.unique_email(first, last, domain)
        joined = created + dt.timedelta(days=rng.randrange(0, 30))
        last_login = _between(rng, joined, closed or self.now)
        self.users.append(
            {
                "id": user_id,
                "company_id": company_id,
                "email": email,
                "username": f"{first[0]}{last}".lower().encode("ascii", "ignore").decode()
                + str(user_id),
                "first_name": first,
                "last_name": last,
                "job_title": rng.choice(JOB_TITLES),
                "phone": f.phone_number(),
                "password_hash": _password_hash(rng),
                "interests": ",".join(rng.sample(INTERESTS, rng.randrange(0, 3))),
                "timezone": {"GB": "Europe/London", "IE": "Europe/Dublin"}.get(
                    country, "Europe/Stockholm"
                ),
                "created_at": _ts(joined),
                "closed_at": _ts(closed) if closed else None,
                "last_login_at": _ts(last_login),
                "updated_at": _ts(closed or last_login),
            }
        )
        # The same person is in the CRM, often with differently typed email.
        self._crm_contact(
            first,
            last,
            _email_variant(rng, email),
            country,
            company=self.companies[-1]["name"],
            stage="customer",
            created=joined,
            phone=self.users[-1]["phone"],
        )
        return user_id

    def _contracts_and_money(
        self,
        company_id: int,
        case: str,
        start: dt.date,
        ceased: dt.date | None,
        user_ids: list[int],
    ) -> None:
        rng = self.rng
        service = rng.choice(list(SERVICES))
        trial_end = start + dt.timedelta(days=30)
        self.contracts.append(
            {
                "id": len(self.contracts) + 1,
                "company_id": company_id,
                "licence_type": "trial",
                "service": service,
                "start_date": start.isoformat(),
                "end_date": trial_end.isoformat(),
                "annual_fee": "0.00",
                "updated_at": _ts(_midday(trial_end)),
            }
        )
        if case == "trial_only":
            return
        fee = SERVICES[service]
        full_end = ceased
        self.contracts.append(
            {
                "id": len(self.contracts) + 1,
                "company_id": company_id,
                "licence_type": "full",
                "service": service,
                "start_date": trial_end.isoformat(),
                "end_date": full_end.isoformat() if full_end else None,
                "annual_fee": f"{fee / 100:.2f}",
                "updated_at": _ts(_midday(full_end or trial_end)),
            }
        )
        # Quarterly invoices from the end of the trial until the customer ceased (or today).
        issued = trial_end
        last_day = ceased or self.o.as_of
        while issued <= last_day:
            order_id = len(self.orders) + 1
            amount = fee // 4 + rng.randrange(0, 5000)
            ordered_at = _midday(issued) - dt.timedelta(hours=rng.randrange(1, 48))
            self.orders.append(
                {
                    "id": order_id,
                    "company_id": company_id,
                    "user_id": rng.choice(user_ids),
                    "service": service,
                    "ordered_at": _ts(ordered_at),
                    "amount": f"{amount / 100:.2f}",
                    "updated_at": _ts(ordered_at),
                }
            )
            invoice_id = len(self.invoices) + 1
            due = issued + dt.timedelta(days=30)
            paid_on = issued + dt.timedelta(days=rng.randrange(3, 45))
            paid = paid_on <= self.o.as_of
            self.invoices.append(
                {
                    "id": invoice_id,
                    "company_id": company_id,
                    "order_id": order_id,
                    "invoice_number": f"INV-{issued.year}-{invoice_id:06d}",
                    "issued_on": issued.isoformat(),
                    "due_on": due.isoformat(),
                    "amount": f"{amount / 100:.2f}",
                    "vat": f"{amount * 0.2 / 100:.2f}",
                    "status": "paid" if paid else "open",
                    "updated_at": _ts(_midday(paid_on if paid else issued)),
                }
            )
            if paid:
                card = rng.random() < 0.5
                self.payments.append(
                    {
                        "id": len(self.payments) + 1,
                        "invoice_id": invoice_id,
                        "paid_at": _ts(_midday(paid_on)),
                        "amount": f"{amount * 1.2 / 100:.2f}",
                        "method": "card" if card else "bank_transfer",
                        "card_number_masked": f"************{rng.randrange(10000):04d}"
                        if card
                        else None,
                        "bank_account_masked": None if card else f"****{rng.randrange(10000):04d}",
                        "updated_at": _ts(_midday(paid_on)),
                    }
                )
            issued += dt.timedelta(days=91)

    def _prospect(self, n: int, country: str) -> None:
        rng, f = self.rng, self.locale(country)
        first, last = f.first_name(), f.last_name()
        domain = rng.choice(
            ["gmail.com", "outlook.com", "hotmail.co.uk", "telia.se", "web.de", f"firm{n}.eu"]
        )
        created = self.now - dt.timedelta(days=rng.randrange(10, 365 * 5))
        stage = rng.choice(["lead", "subscriber", "marketingqualifiedlead"])
        self._crm_contact(
            first,
            last,
            self.unique_email(first, last, domain),
            country,
            company=f.company() if rng.random() < 0.6 else "",
            stage=stage,
            created=created,
            phone=f.phone_number() if rng.random() < 0.5 else "",
        )

    def _crm_contact(
        self,
        first: str,
        last: str,
        email: str,
        country: str,
        *,
        company: str,
        stage: str,
        created: dt.datetime,
        phone: str,
    ) -> None:
        rng = self.rng
        contact_id = 100_000 + len(self.crm_contacts) + 1
        opted_out = rng.random() < 0.15
        events: list[tuple[str, dt.datetime, str, str]] = []
        if rng.random() < 0.5:
            events.append(
                ("CONTACT_US_ENQUIRY", created, "Website enquiry", rng.choice(ENQUIRY_TEXTS))
            )
        consented = rng.random() < 0.6
        consented_at = created
        if consented:
            consented_at = t = _between(rng, created, self.now)
            events.append(("MAILING_LIST_SUBSCRIBE", t, "Newsletter sign-up", ""))
            events.append(("MARKETING_CONSENT_GRANTED", t, "Consent: email marketing", ""))
        if opted_out:
            # After any consent: the CRM's "Unsubscribed" status is the last word in the history.
            t = _between(rng, consented_at, self.now)
            events.append(("MARKETING_OPT_OUT", t, "Unsubscribed via link", ""))
        for _ in range(rng.randrange(0, 3)):
            events.append(
                ("NOTE", _between(rng, created, self.now), "Note", rng.choice(NOTE_TEXTS))
            )
        last_activity = max((e[1] for e in events), default=None)
        self.crm_contacts.append(
            {
                "Record ID": contact_id,
                "First Name": first,
                "Last Name": last,
                "Email": email,
                "Phone Number": phone,
                "Job Title": rng.choice(JOB_TITLES) if stage == "customer" else "",
                "Company Name": company,
                "Country/Region": country,
                "Lifecycle Stage": stage,
                # Marketed to only with consent or after a purchase (soft opt-in), N-MKT.
                "Marketing Contact Status": "Unsubscribed"
                if opted_out
                else "Marketing contact"
                if consented or stage == "customer"
                else "Non-marketing contact",
                "Create Date": _ts(created),
                "Last Activity Date": _ts(last_activity) if last_activity else "",
            }
        )
        for kind, when, subject, body in sorted(events, key=lambda e: e[1]):
            self.activities.append(
                {
                    "Activity ID": 900_000 + len(self.activities) + 1,
                    "Contact ID": contact_id,
                    "Activity Type": kind,
                    "Activity Date": _ts(when),
                    "Channel": {"CONTACT_US_ENQUIRY": "web_form", "NOTE": "phone"}.get(
                        kind, "email"
                    ),
                    "Subject": subject,
                    "Body": body,
                }
            )


# What the notice says CCG never collects, as it still turns up in free text (N-NOSPECIAL,
# N-CHILD): the evidence step must find it. Synthetic sentences, no real person.
SPECIAL_CATEGORY_NOTES = [
    "Off on sick leave after a cancer diagnosis, call back in March.",
    "Är fackligt aktiv, vill ha möten efter arbetstid.",
]
CHILD_ENQUIRY = "Hi, I am 14 years old and need help with a school project about customs."


def _plant_free_text_findings(rng: random.Random, pop: _Population) -> int:
    """Overwrite a few note and enquiry bodies (own random stream, so the rest is unchanged)."""
    notes = [a for a in pop.activities if a["Activity Type"] == "NOTE"]
    # A recent enquiry, so that retention has not deleted it by the as-of date.
    recent = _ts(pop.now - dt.timedelta(days=300))
    enquiries = [
        a
        for a in pop.activities
        if a["Activity Type"] == "CONTACT_US_ENQUIRY" and a["Activity Date"] >= recent
    ]
    planted = 0
    sampled = rng.sample(notes, min(2, len(notes)))
    for activity, body in zip(sampled, SPECIAL_CATEGORY_NOTES, strict=False):
        activity["Body"] = body
        planted += 1
    if enquiries:
        rng.choice(enquiries)["Body"] = CHILD_ENQUIRY
        planted += 1
    return planted


def _corrupt_portal_rows(rng: random.Random, pop: _Population, rate: float) -> int:
    """A source database has bad rows too: impossible dates, unknown codes, missing names."""
    damaged = 0
    for rows, column, bad in (
        (pop.companies, "country_code", "Z9"),
        (pop.users, "created_at", "2021-02-30 10:00:00"),
        (pop.invoices, "issued_on", "not-a-date"),
        (pop.payments, "amount", "12,50"),
    ):
        for row in rows:
            if rng.random() < rate / 2:
                row[column] = bad
                damaged += 1
    return damaged


def _write_portal(path: Path, pop: _Population) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(PORTAL_DDL)
        for table, rows in (
            ("companies", pop.companies),
            ("users", pop.users),
            ("contracts", pop.contracts),
            ("orders", pop.orders),
            ("invoices", pop.invoices),
            ("payments", pop.payments),
        ):
            if rows:
                cols = list(rows[0])
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [tuple(r[c] for c in cols) for r in rows],
                )
    db.close()


def _write_csv(path: Path, rows: list[dict], header: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)


def _write_crm(folder: Path, pop: _Population, rng: random.Random, rate: float) -> list[str]:
    """Daily exports: contacts and companies as full snapshots, activities as daily deltas."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    days = [pop.o.as_of - dt.timedelta(days=d) for d in range(pop.o.crm_export_days - 1, -1, -1)]
    for i, day in enumerate(days):
        cutoff = _ts(dt.datetime.combine(day, dt.time(23, 59, 59)))
        previous = _ts(dt.datetime.combine(day - dt.timedelta(days=1), dt.time(23, 59, 59)))
        contacts = [dict(c) for c in pop.crm_contacts if c["Create Date"] <= cutoff]
        for row in contacts:
            if rng.random() < rate:
                row["Create Date"] = rng.choice(["31/02/2024", "yesterday", ""])
        activities = [
            a
            for a in pop.activities
            if a["Activity Date"] <= cutoff and (i == 0 or a["Activity Date"] > previous)
        ]
        stamp = day.strftime("%Y%m%d")
        for name, rows in (
            ("contacts", contacts),
            ("companies", [c for c in pop.crm_companies if c["Create Date"] <= cutoff]),
            ("activities", activities),
        ):
            header = list(
                (
                    pop.crm_contacts
                    if name == "contacts"
                    else pop.crm_companies
                    if name == "companies"
                    else pop.activities
                )[0]
            )
            path = folder / f"{name}_{stamp}.csv"
            _write_csv(path, rows, header)
            if name == "contacts" and rows:
                # A hand-edited export: one row with a column too many, as a broken CSV tool leaves.
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(
                        '999999,"Broken","Row","broken@example.invalid","","","","GB","lead","Marketing contact","2024-01-01 00:00:00","","EXTRA"\n'
                    )
            written.append(str(path))
    return written


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return (
            f"2001:db8:{rng.randrange(65536):x}:{rng.randrange(65536):x}::{rng.randrange(65536):x}"
        )
    return f"{rng.choice([81, 86, 90, 145, 185, 212, 31, 62])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _web_lines(
    rng: random.Random, day: dt.date, count: int, rate: float, emails: list[str]
) -> Iterator[str]:
    start = dt.datetime.combine(day, dt.time(0, 0))
    for n in range(count):
        when = start + dt.timedelta(seconds=int(86_400 * n / max(count, 1)))
        if rng.random() < rate:
            yield rng.choice(
                ["-", "GET / HTTP/1.1", '127.0.0.1 - - [garbage] "GET"', "\x00\x01binary", ""]
            )
            continue
        path = rng.choice(WEB_PATHS)
        if path == "/contact-us" and emails and rng.random() < 0.3:
            path += "?email=" + rng.choice(emails).replace("@", "%40") + "&ref=newsletter"
        elif path.startswith("/portal/declarations") and rng.random() < 0.5:
            path += f"?page={rng.randrange(1, 9)}"
        status = rng.choices([200, 304, 302, 404, 500], [80, 8, 6, 5, 1])[0]
        size = 0 if status in (302, 304) else rng.randrange(200, 90_000)
        referrer = rng.choice(
            [
                "-",
                "https://www.google.com/",
                "https://www.customsconnect.eu/",
                "https://www.bing.com/",
            ]
        )
        stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
        yield f'{_ip(rng)} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "{referrer}" "{rng.choice(USER_AGENTS)}"'


def write_web_log(path: Path, lines: Iterator[str]) -> int:
    count = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        for line in lines:
            fh.write(line + "\n")
            count += 1
    return count


def _auth_lines(rng: random.Random, day: dt.date, users: list[dict], rate: float) -> Iterator[str]:
    start = dt.datetime.combine(day, dt.time(6, 0))
    active = [u for u in users if u["closed_at"] is None] or users
    for _ in range(max(5, len(active) // 2)):
        user = rng.choice(active)
        when = start + dt.timedelta(seconds=rng.randrange(14 * 3600))
        if rng.random() < rate:
            yield rng.choice(
                [
                    '{"ts": "2026-13-45T99:00:00Z", "event": "login"}',
                    "{not json",
                    '{"event": "login"}',
                ]
            )
            continue
        ok = rng.random() > 0.08
        yield json.dumps(
            {
                "ts": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "event": "login",
                "outcome": "success" if ok else "failure",
                "username": user["username"],
                "user_id": user["id"],
                "ip": _ip(rng),
                "user_agent": rng.choice(USER_AGENTS[:6]),
            }
        )


def generate(options: GenerateOptions) -> GenerateReport:
    """Build the population and write every source under `options.out`."""
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    pop = _Population(options)
    pop.build()
    report = GenerateReport(out=out)
    report.counts["free_text_findings_planted"] = _plant_free_text_findings(
        random.Random(options.seed + 2), pop
    )
    rng = random.Random(options.seed + 1)
    report.counts["portal_rows_damaged"] = _corrupt_portal_rows(rng, pop, options.malformed_rate)
    _write_portal(out / "portal.db", pop)
    report.files.append(str(out / "portal.db"))
    report.files += _write_crm(out / "crm", pop, rng, options.malformed_rate)
    web_dir, auth_dir = out / "logs" / "web", out / "logs" / "auth"
    web_dir.mkdir(parents=True, exist_ok=True)
    auth_dir.mkdir(parents=True, exist_ok=True)
    emails = [u["email"] for u in pop.users[:50]]
    web_lines = auth_lines = 0
    for d in range(options.log_days - 1, -1, -1):
        day = options.as_of - dt.timedelta(days=d)
        stamp = day.strftime("%Y%m%d")
        web_path = web_dir / f"access.log-{stamp}.gz"
        web_lines += write_web_log(
            web_path,
            _web_lines(rng, day, options.log_lines_per_day, options.malformed_rate, emails),
        )
        auth_path = auth_dir / f"auth-{stamp}.jsonl"
        lines = list(_auth_lines(rng, day, pop.users, options.malformed_rate))
        auth_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        auth_lines += len(lines)
        report.files += [str(web_path), str(auth_path)]
    report.counts.update(
        companies=len(pop.companies),
        portal_users=len(pop.users),
        contracts=len(pop.contracts),
        invoices=len(pop.invoices),
        payments=len(pop.payments),
        crm_contacts=len(pop.crm_contacts),
        crm_activities=len(pop.activities),
        web_log_lines=web_lines,
        auth_log_lines=auth_lines,
    )
    return report

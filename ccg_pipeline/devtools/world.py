"""An evolving CCG world for the soak: day by day, what the real systems would write.

The world starts from the population `ccg generate` builds (the same scenario definition:
customer cases placed around the six-year line and the 5 April year end, prospects, opt-outs,
email variants), as of the day before the soak starts, with a history of logs. Then each
`advance(day)`:

- changes the portal database in place (`updated_at` moves): customers join, invoices are issued
  and paid, contracts end and customers cease, ceased customers come back;
- writes the day's CRM export (contacts and companies as full snapshots, activities as the day's
  delta): people opt out and back in, notes are written, prospects enquire; a person whose CRM
  erasure instruction sits in the pipeline's outbox is erased from the CRM, as its admin would;
- writes the day's rotated web and auth logs;
- drops data-subject requests into the pipeline's drop folder;
- on the fault days it is given, writes bad data: a malformed row, an unknown column, a truncated
  gzip, a file that arrives two days late, a duplicated export.

It knows the truth the soak's oracles read: every company's business days (contracts, invoices,
payments, closure), when a company came back, which lines of which log day are valid, and what
each request asked and when. Nothing here imports the pipeline's runtime code.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import gzip
import json
import random
import shutil
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ccg_pipeline.devtools.generate import (
    GenerateOptions,
    _auth_lines,
    _email_variant,
    _password_hash,
    _Population,
    _web_lines,
    company_domain,
    company_record,
    crm_company_record,
)
from ccg_pipeline.devtools.scenario import (
    COUNTRY_WEIGHTS,
    ENQUIRY_TEXTS,
    JOB_TITLES,
    NOTE_TEXTS,
    PORTAL_DDL,
    SERVICES,
)

PORTAL_TABLES = ("companies", "users", "contracts", "orders", "invoices", "payments")
CRM_HEADERS = {
    "contacts": [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Job Title",
        "Company Name",
        "Country/Region",
        "Lifecycle Stage",
        "Marketing Contact Status",
        "Create Date",
        "Last Activity Date",
    ],
    "companies": [
        "Record ID",
        "Company Name",
        "Company Domain Name",
        "Country/Region",
        "Industry",
        "Number of Employees",
        "Annual Revenue",
        "Create Date",
    ],
    "activities": [
        "Activity ID",
        "Contact ID",
        "Activity Type",
        "Activity Date",
        "Channel",
        "Subject",
        "Body",
    ],
}
FAULTS = ("malformed_row", "unknown_column", "truncated_gzip", "late_file", "duplicate_export")
REQUEST_TYPES = {"access": 40, "object": 20, "rectify": 15, "erase": 15, "restrict": 10}


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


def _minus_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` earlier, or that month's last day if it is shorter."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _day_of(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text[:10]) if text else None


@dataclass(frozen=True)
class WorldOptions:
    seed: int = 7
    start: dt.date = dt.date(2026, 1, 1)
    companies: int = 60
    prospects: int = 30
    history_log_days: int = 100
    web_lines_per_day: int = 40
    joins_per_day: float = 0.12
    # Daily chances: an active customer ceases; a ceased one comes back; a request arrives.
    cease_per_day: float = 1 / 900
    return_per_day: float = 1 / 2500
    requests_per_day: float = 0.15
    # Day -> fault name (one of FAULTS).
    faults: dict[dt.date, str] = field(default_factory=dict)
    # Day -> a ceased customer comes back whose six years end within the next 60 days
    # ("before_deadline") or have already ended ("after_deadline").
    scripted_returns: dict[dt.date, str] = field(default_factory=dict)
    # Day -> how many open contracts end that day (their companies cease if none is left).
    scripted_ceases: dict[dt.date, int] = field(default_factory=dict)
    # Day -> a person whose data falls due under a people rule that day, set up before the start:
    # "profile_after_closure" (a portal account closed three months before), "prospect_inactive"
    # (a lead last active two years before), "marketing_after_opt_out" (an opt-out 30 days before).
    scripted_people: dict[dt.date, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DroppedRequest:
    file_name: str
    request_type: str
    email: str
    received: dt.date
    company_id: int | None


@dataclass
class DayReport:
    day: dt.date
    joined: int = 0
    ceased: int = 0
    returned: int = 0
    invoices: int = 0
    payments: int = 0
    opt_outs: int = 0
    requests: int = 0
    crm_erasures: int = 0
    web_lines: int = 0
    fault: str | None = None


class World:
    """The simulated company, its systems' files, and the truth about them."""

    def __init__(self, options: WorldOptions, sources: Path, request_inbox: Path, outbox: Path):
        self.options = options
        self.sources = sources
        self.inbox = request_inbox
        self.outbox = outbox
        self.rng = random.Random(options.seed * 7919 + 1)
        before = options.start - dt.timedelta(days=1)
        self.pop = _Population(
            GenerateOptions(
                out=sources,
                seed=options.seed,
                as_of=before,
                companies=options.companies,
                prospects=options.prospects,
                malformed_rate=0.0,
            )
        )
        self.pop.build()
        self.today = before
        self.rows: dict[str, dict[int, dict]] = {
            t: {r["id"]: r for r in self._table(t)} for t in PORTAL_TABLES
        }
        self.contacts = {c["Record ID"]: c for c in self.pop.crm_contacts}
        self.contact_of_email = {
            c["Email"].strip().lower(): c["Record ID"] for c in self.contacts.values()
        }
        # Truth beyond the rows themselves.
        self.returned_on: dict[int, dt.date] = {}
        self.valid_web_lines: dict[dt.date, int] = {}
        # Arrival day -> (log day, file, lines) of web logs that arrive late or are re-sent whole.
        self.late_files: dict[dt.date, list[tuple[dt.date, Path, list[str]]]] = defaultdict(list)
        self.requests: list[DroppedRequest] = []
        self.crm_erased: set[int] = set()
        self.restricted_companies: set[int] = set()
        self.erased_users: set[int] = set()
        # Portal users who asked for restriction: their rows are held, storage only.
        self.restricted_user_ids: set[int] = set()
        self._refused_exports: list[tuple[Path, list[dict]]] = []
        self._dirty: dict[str, set[int]] = defaultdict(set)
        self._next_id = {t: max(self.rows[t], default=0) for t in PORTAL_TABLES}
        self._payments_due: dict[dt.date, list[int]] = defaultdict(list)
        self._next_invoice: dict[int, dt.date] = {}
        self._schedule_open_contracts()
        # CRM records of scripted people: they lead no random life (no notes, no change of mind,
        # no requests), so their rule's date stays the one scripted.
        self.scripted_contacts: set[int] = set()
        self._script_people(before)
        self._write_initial_sources(before)

    # --- the truth the oracles read -------------------------------------------------------------

    def company_ids(self) -> list[int]:
        return sorted(self.rows["companies"])

    def last_business_days(self) -> dict[int, dt.date | None]:
        """Per company, the last day it did business with CCG (a contract's end, an invoice, a
        payment, the account's closure), from the portal rows the world wrote; None while a
        contract is open."""
        days: dict[int, list[dt.date]] = defaultdict(list)
        open_companies: set[int] = set()
        for contract in self.rows["contracts"].values():
            end = _day_of(contract["end_date"])
            if end is None:
                open_companies.add(contract["company_id"])
            else:
                days[contract["company_id"]].append(end)
        company_of_invoice = {}
        for invoice in self.rows["invoices"].values():
            company_of_invoice[invoice["id"]] = invoice["company_id"]
            days[invoice["company_id"]].append(dt.date.fromisoformat(invoice["issued_on"]))
        for payment in self.rows["payments"].values():
            days[company_of_invoice[payment["invoice_id"]]].append(
                dt.date.fromisoformat(payment["paid_at"][:10])
            )
        for company in self.rows["companies"].values():
            if closed := _day_of(company["closed_at"]):
                days[company["id"]].append(closed)
        return {
            company_id: None
            if company_id in open_companies
            else max(days[company_id], default=None)
            for company_id in self.rows["companies"]
        }

    def emails(self) -> set[str]:
        """Every address the world ever used (portal and CRM), lower-cased."""
        return {e.lower() for e in self.pop._emails} | set(self.contact_of_email)

    def incomplete_log_days(self) -> set[dt.date]:
        """Log days whose complete file has not arrived yet."""
        return {log_day for files in self.late_files.values() for log_day, _, _ in files}

    def names(self) -> set[str]:
        """Full names of every person (first and last together, for leak scans)."""
        return {f"{u['first_name']} {u['last_name']}" for u in self.rows["users"].values()} | {
            f"{c['First Name']} {c['Last Name']}" for c in self.contacts.values()
        }

    # --- a day -----------------------------------------------------------------------------------

    def advance(self, day: dt.date) -> DayReport:
        if day != self.today + dt.timedelta(days=1):
            raise ValueError(f"the world is at {self.today}; it advances one day at a time")
        self.today = day
        self.pop.now = _at(day, 23)
        report = DayReport(day=day, fault=self.options.faults.get(day))
        self._read_back_portal()
        self._erase_from_crm(report)
        self._resend_refused_export()
        self._customers(day, report)
        self._money(day, report)
        self._crm_life(day, report)
        self._requests(day, report)
        self._flush_portal()
        self._write_crm(day, report.fault)
        report.web_lines = self._write_logs(day, report.fault)
        for _log_day, path, lines in self.late_files.pop(day, []):
            _write_gz(path, lines)
        return report

    # --- the portal ------------------------------------------------------------------------------

    def _table(self, name: str) -> list[dict]:
        return getattr(self.pop, name)

    def _of_company(self, table: str, company_id: int) -> list[dict]:
        return [r for r in self.rows[table].values() if r["company_id"] == company_id]

    def _add(self, table: str, row: dict) -> dict:
        # Ids are never reused: an id the pipeline's erasure removed stays retired.
        row["id"] = self._next_id[table] = self._next_id[table] + 1
        self.rows[table][row["id"]] = row
        self._dirty[table].add(row["id"])
        return row

    def _touch(self, table: str, row: dict, **changes: object) -> None:
        row.update(changes)
        row["updated_at"] = _ts(self.pop.now - dt.timedelta(hours=self.rng.randrange(1, 12)))
        self._dirty[table].add(row["id"])

    def _open_contracts(self) -> list[dict]:
        return [
            k
            for k in self.rows["contracts"].values()
            if k["licence_type"] == "full" and k["end_date"] is None
        ]

    def _schedule_open_contracts(self) -> None:
        for contract in self._open_contracts():
            issued = [
                dt.date.fromisoformat(i["issued_on"])
                for i in self._of_company("invoices", contract["company_id"])
            ]
            start = dt.date.fromisoformat(contract["start_date"])
            self._next_invoice[contract["id"]] = max(issued, default=start) + dt.timedelta(days=91)

    def _customers(self, day: dt.date, report: DayReport) -> None:
        rng = self.rng
        if rng.random() < self.options.joins_per_day:
            self._join(day)
            report.joined += 1
        for contract in self._open_contracts():
            if rng.random() < self.options.cease_per_day:
                self._cease(contract, day)
                report.ceased += 1
        for contract in self._open_contracts()[: self.options.scripted_ceases.get(day, 0)]:
            self._cease(contract, day)
            report.ceased += 1
        script = self.options.scripted_returns.get(day)
        if script and (company := self._returning_candidate(day, script)):
            self._return(company, day)
            report.returned += 1
        for company in list(self.rows["companies"].values()):
            closed = _day_of(company["closed_at"])
            if closed and (day - closed).days > 180 and rng.random() < self.options.return_per_day:
                self._return(company, day)
                report.returned += 1

    def _returning_candidate(self, day: dt.date, script: str) -> dict | None:
        six_years_ago = dt.date(day.year - 6, day.month, min(day.day, 28))
        candidates = []
        for company_id, last in sorted(self.last_business_days().items()):
            if last is None:
                continue
            if (
                script == "before_deadline"
                and six_years_ago < last <= six_years_ago + dt.timedelta(days=60)
            ) or (script == "after_deadline" and last < six_years_ago - dt.timedelta(days=2)):
                candidates.append(company_id)
        return self.rows["companies"][candidates[0]] if candidates else None

    def _join(self, day: dt.date) -> None:
        rng, pop = self.rng, self.pop
        country = rng.choices(list(COUNTRY_WEIGHTS), list(COUNTRY_WEIGHTS.values()))[0]
        f = pop.locale(country)
        name = f.company()
        domain = company_domain(rng, name, "company")
        created = _at(day, 9, rng.randrange(60))
        company = self._add(
            "companies",
            {
                **company_record(rng, f, name, country, created),
                "closed_at": None,
                "updated_at": _ts(created),
            },
        )
        pop.crm_companies.append(crm_company_record(company, domain))
        for _ in range(rng.randrange(1, 3)):
            self._new_user(company, country, domain, created)
        self._start_contract(company, day, created)

    def _start_contract(self, company: dict, day: dt.date, at: dt.datetime) -> None:
        """A full licence from `day`, open-ended, invoiced quarterly from its first day."""
        service = self.rng.choice(list(SERVICES))
        contract = self._add(
            "contracts",
            {
                "company_id": company["id"],
                "licence_type": "full",
                "service": service,
                "start_date": day.isoformat(),
                "end_date": None,
                "annual_fee": f"{SERVICES[service] / 100:.2f}",
                "updated_at": _ts(at),
            },
        )
        self._next_invoice[contract["id"]] = day

    def _new_user(self, company: dict, country: str, domain: str, at: dt.datetime) -> None:
        rng, pop = self.rng, self.pop
        f = pop.locale(country)
        first, last = f.first_name(), f.last_name()
        email = pop.unique_email(first, last, domain)
        user = self._add(
            "users",
            {
                "company_id": company["id"],
                "email": email,
                "username": f"{first[0]}{last}".lower().encode("ascii", "ignore").decode(),
                "first_name": first,
                "last_name": last,
                "job_title": rng.choice(JOB_TITLES),
                "phone": f.phone_number(),
                "password_hash": _password_hash(rng),
                "interests": "",
                "timezone": "Europe/London",
                "created_at": _ts(at),
                "closed_at": None,
                "last_login_at": _ts(at),
                "updated_at": _ts(at),
            },
        )
        user["username"] += str(user["id"])
        self._contact(
            first, last, _email_variant(rng, email), country, company["name"], "customer", at
        )

    def _cease(self, contract: dict, day: dt.date) -> None:
        self._touch("contracts", contract, end_date=day.isoformat())
        self._next_invoice.pop(contract["id"], None)
        company_id = contract["company_id"]
        if any(k["company_id"] == company_id for k in self._open_contracts()):
            return
        closed = _ts(_at(day, 17))
        self._touch("companies", self.rows["companies"][company_id], closed_at=closed)
        for user in self._of_company("users", company_id):
            if user["closed_at"] is None:
                self._touch("users", user, closed_at=closed)

    def _return(self, company: dict, day: dt.date) -> None:
        self.returned_on[company["id"]] = day
        self._touch("companies", company, closed_at=None)
        self._start_contract(company, day, _at(day, 10))
        # A returning customer comes back with a new login (old ones stay closed).
        self._new_user(company, company["country_code"], "returned.example", _at(day, 10))

    def _money(self, day: dt.date, report: DayReport) -> None:
        rng = self.rng
        for contract_id, due in list(self._next_invoice.items()):
            if due != day:
                continue
            contract = self.rows["contracts"][contract_id]
            company_id = contract["company_id"]
            users = [u["id"] for u in self._of_company("users", company_id)]
            amount = int(float(contract["annual_fee"]) * 100) // 4 + rng.randrange(5000)
            order = self._add(
                "orders",
                {
                    "company_id": company_id,
                    "user_id": rng.choice(users) if users else None,
                    "service": contract["service"],
                    "ordered_at": _ts(_at(day, 8)),
                    "amount": f"{amount / 100:.2f}",
                    "updated_at": _ts(_at(day, 8)),
                },
            )
            invoice = self._add(
                "invoices",
                {
                    "company_id": company_id,
                    "order_id": order["id"],
                    "invoice_number": "",
                    "issued_on": day.isoformat(),
                    "due_on": (day + dt.timedelta(days=30)).isoformat(),
                    "amount": f"{amount / 100:.2f}",
                    "vat": f"{amount * 0.2 / 100:.2f}",
                    "status": "open",
                    "updated_at": _ts(_at(day, 12)),
                },
            )
            invoice["invoice_number"] = f"INV-{day.year}-{invoice['id']:06d}"
            self._payments_due[day + dt.timedelta(days=rng.randrange(3, 45))].append(invoice["id"])
            self._next_invoice[contract_id] = day + dt.timedelta(days=91)
            report.invoices += 1
        for invoice_id in self._payments_due.pop(day, []):
            invoice = self.rows["invoices"][invoice_id]
            self._touch("invoices", invoice, status="paid")
            self._add(
                "payments",
                {
                    "invoice_id": invoice_id,
                    "paid_at": _ts(_at(day, 12)),
                    "amount": f"{float(invoice['amount']) * 1.2:.2f}",
                    "method": "bank_transfer",
                    "card_number_masked": None,
                    "bank_account_masked": f"****{rng.randrange(10000):04d}",
                    "updated_at": _ts(_at(day, 12)),
                },
            )
            report.payments += 1

    def _read_back_portal(self) -> None:
        """What the pipeline changed in the portal (an erased login, a rectified name) is what
        the portal holds from then on: the world forgets deleted users and takes corrections."""
        with sqlite3.connect(self.sources / "portal.db") as db:
            db.row_factory = sqlite3.Row
            current = {r["id"]: dict(r) for r in db.execute("SELECT * FROM users")}
        db.close()
        for user_id in set(self.rows["users"]) - set(current):
            self.erased_users.add(user_id)
            del self.rows["users"][user_id]
        for user_id, row in current.items():
            if user_id in self.rows["users"] and user_id not in self._dirty["users"]:
                self.rows["users"][user_id].update(row)

    def _flush_portal(self) -> None:
        """Write today's changed and new rows in place: what the portal application does."""
        with sqlite3.connect(self.sources / "portal.db") as db:
            for table, ids in self._dirty.items():
                for row_id in sorted(ids):
                    row = self.rows[table][row_id]
                    cols = list(row)
                    db.execute(
                        f"INSERT INTO {table} ({', '.join(cols)}) "
                        f"VALUES ({', '.join('?' * len(cols))}) ON CONFLICT(id) DO UPDATE SET "
                        + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
                        [row[c] for c in cols],
                    )
        db.close()
        self._dirty.clear()

    def _script_people(self, before: dt.date) -> None:
        """People placed so that a people rule's period ends on a given soak day (the history
        the CRM and the portal already hold on the first day)."""
        rng = random.Random(self.options.seed * 31 + 5)
        for due, rule in sorted(self.options.scripted_people.items()):
            if rule == "profile_after_closure":
                trigger = _minus_months(due, 3)
            elif rule == "prospect_inactive":
                trigger = _minus_months(due, 24)
            elif rule == "marketing_after_opt_out":
                trigger = due - dt.timedelta(days=30)
            else:
                raise ValueError(f"unknown people rule {rule!r}")
            if trigger > before:
                raise ValueError(f"{rule} due {due}: its trigger {trigger} is after the start")
            if rule == "profile_after_closure":
                user = next(
                    u
                    for u in self.rows["users"].values()
                    if u["closed_at"] is None and u["password_hash"]
                )
                closed = _ts(_at(trigger, 16))
                user.update(closed_at=closed, updated_at=closed)
                continue
            f = self.pop.locale("GB")
            first, last = f.first_name(), f.last_name()
            email = self.pop.unique_email(first, last, rng.choice(["gmail.com", "outlook.com"]))
            if rule == "prospect_inactive":
                lead = self._contact(first, last, email, "GB", "", "lead", _at(trigger, 9))
                self.scripted_contacts.add(lead["Record ID"])
                continue
            contact = self._contact(
                first, last, email, "GB", "", "lead", _at(trigger - dt.timedelta(days=200), 9)
            )
            self.scripted_contacts.add(contact["Record ID"])
            consent = _at(trigger - dt.timedelta(days=100), 11)
            self._activity(contact, "MARKETING_CONSENT_GRANTED", consent, "Consent: email", "")
            self._activity(contact, "MARKETING_OPT_OUT", _at(trigger, 11), "Unsubscribed", "")
            contact["Marketing Contact Status"] = "Unsubscribed"

    # --- the CRM ---------------------------------------------------------------------------------

    def _contact(
        self,
        first: str,
        last: str,
        email: str,
        country: str,
        company: str,
        stage: str,
        at: dt.datetime,
    ) -> dict:
        contact_id = max(self.contacts) + 1
        contact = {
            "Record ID": contact_id,
            "First Name": first,
            "Last Name": last,
            "Email": email,
            "Phone Number": "",
            "Job Title": "",
            "Company Name": company,
            "Country/Region": country,
            "Lifecycle Stage": stage,
            "Marketing Contact Status": "Marketing contact"
            if stage == "customer"
            else "Non-marketing contact",
            "Create Date": _ts(at),
            "Last Activity Date": "",
        }
        self.contacts[contact_id] = contact
        self.contact_of_email[email.strip().lower()] = contact_id
        return contact

    def _activity(self, contact: dict, kind: str, at: dt.datetime, subject: str, body: str) -> None:
        self.pop.activities.append(
            {
                "Activity ID": 900_000 + len(self.pop.activities) + 1,
                "Contact ID": contact["Record ID"],
                "Activity Type": kind,
                "Activity Date": _ts(at),
                "Channel": {"CONTACT_US_ENQUIRY": "web_form", "NOTE": "phone"}.get(kind, "email"),
                "Subject": subject,
                "Body": body,
            }
        )
        contact["Last Activity Date"] = _ts(at)

    def _crm_life(self, day: dt.date, report: DayReport) -> None:
        rng = self.rng
        for contact in list(self.contacts.values()):
            if contact["Record ID"] in self.scripted_contacts:
                continue
            draw = rng.random()
            if contact["Record ID"] in self.crm_erased:
                continue  # drawn all the same: the world does not depend on what was erased
            status = contact["Marketing Contact Status"]
            if status == "Marketing contact" and draw < 1 / 1500:
                contact["Marketing Contact Status"] = "Unsubscribed"
                self._activity(
                    contact, "MARKETING_OPT_OUT", _at(day, 11), "Unsubscribed via link", ""
                )
                report.opt_outs += 1
            elif status == "Unsubscribed" and draw < 1 / 3000:
                contact["Marketing Contact Status"] = "Marketing contact"
                self._activity(
                    contact,
                    "MARKETING_CONSENT_GRANTED",
                    _at(day, 11),
                    "Consent: email marketing",
                    "",
                )
            elif draw > 1 - 1 / 400:
                self._activity(contact, "NOTE", _at(day, 14), "Note", rng.choice(NOTE_TEXTS))
        if rng.random() < 0.1:
            country = rng.choices(list(COUNTRY_WEIGHTS), list(COUNTRY_WEIGHTS.values()))[0]
            f = self.pop.locale(country)
            first, last = f.first_name(), f.last_name()
            email = self.pop.unique_email(first, last, rng.choice(["gmail.com", "outlook.com"]))
            contact = self._contact(first, last, email, country, "", "lead", _at(day, 10))
            self._activity(
                contact,
                "CONTACT_US_ENQUIRY",
                _at(day, 10),
                "Website enquiry",
                rng.choice(ENQUIRY_TEXTS),
            )

    def _erase_from_crm(self, report: DayReport) -> None:
        """The CRM admin acts on the pipeline's erasure instructions (CRM record ids)."""
        if not self.outbox.is_dir():
            return
        for path in sorted(self.outbox.glob("*.json")):
            try:
                instruction = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for contact_id in instruction.get("crm_record_ids", []):
                if int(contact_id) in self.contacts and int(contact_id) not in self.crm_erased:
                    self.crm_erased.add(int(contact_id))
                    report.crm_erasures += 1

    def _resend_refused_export(self) -> None:
        """After an export with an unknown column was refused, the CRM admin sends that day's
        export again without it (the file is replaced, so its content is new)."""
        for path, rows in self._refused_exports:
            kept = [r for r in rows if r["Record ID"] not in self.crm_erased]
            _write_csv_rows(path, CRM_HEADERS["contacts"], kept)
        self._refused_exports.clear()

    def _write_crm(self, day: dt.date, fault: str | None) -> None:
        folder = self.sources / "crm"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = day.strftime("%Y%m%d")
        today = day.isoformat()
        contacts = [c for c in self.contacts.values() if c["Record ID"] not in self.crm_erased]
        companies = [c for c in self.pop.crm_companies if c["Create Date"][:10] <= today]
        activities = [
            a
            for a in self.pop.activities
            if a["Activity Date"][:10] == today and a["Contact ID"] not in self.crm_erased
        ]
        for name, rows in (
            ("contacts", contacts),
            ("companies", companies),
            ("activities", activities),
        ):
            header = list(CRM_HEADERS[name])
            if fault == "unknown_column" and name == "contacts":
                header.append("Favourite Colour")
            path = folder / f"{name}_{stamp}.csv"
            _write_csv_rows(path, header, rows)
            if fault == "unknown_column" and name == "contacts":
                self._refused_exports.append((path, [dict(r) for r in rows]))
            if fault == "malformed_row" and name == "contacts":
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(
                        '999999,"Broken","Row","broken@example.invalid",,,,GB,lead,x,31/02/2024,,EXTRA\n'
                    )
            if fault == "duplicate_export" and name == "activities":
                shutil.copyfile(path, folder / f"{name}_{stamp}_resent.csv")

    # --- logs ------------------------------------------------------------------------------------

    def _write_logs(self, day: dt.date, fault: str | None) -> int:
        web_dir, auth_dir = self.sources / "logs" / "web", self.sources / "logs" / "auth"
        web_dir.mkdir(parents=True, exist_ok=True)
        auth_dir.mkdir(parents=True, exist_ok=True)
        stamp = day.strftime("%Y%m%d")
        emails = [u["email"] for u in list(self.rows["users"].values())[:30]]
        lines = list(_web_lines(self.rng, day, self.options.web_lines_per_day, 0.0, emails))
        path = web_dir / f"access.log-{stamp}.gz"
        self.valid_web_lines[day] = len(lines)
        if fault == "late_file":
            self.late_files[day + dt.timedelta(days=2)].append((day, path, lines))
        elif fault == "truncated_gzip":
            # Cut mid-stream, as a copy interrupted by a full disk; the log shipper sends the
            # whole file again the next day.
            _write_gz(path, lines)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            self.late_files[day + dt.timedelta(days=1)].append((day, path, lines))
        else:
            _write_gz(path, lines)
        users = [u for u in self.rows["users"].values() if u["closed_at"] is None]
        auth = list(_auth_lines(self.rng, day, users or list(self.rows["users"].values()), 0.0))
        (auth_dir / f"auth-{stamp}.jsonl").write_text("\n".join(auth) + "\n", encoding="utf-8")
        return len(lines)

    # --- requests --------------------------------------------------------------------------------

    def _requests(self, day: dt.date, report: DayReport) -> None:
        rng = self.rng
        if rng.random() >= self.options.requests_per_day:
            return
        kind = rng.choices(list(REQUEST_TYPES), list(REQUEST_TYPES.values()))[0]
        users = list(self.rows["users"].values())
        prospects = [
            c
            for c in self.contacts.values()
            if c["Lifecycle Stage"] != "customer" and c["Record ID"] not in self.scripted_contacts
        ]
        if kind == "restrict" or rng.random() < 0.6:
            user = rng.choice(users)
            email, company_id = user["email"], user["company_id"]
        else:
            contact = rng.choice(prospects)
            email, company_id = contact["Email"].strip().lower(), None
        payload: dict = {}
        if kind == "rectify":
            payload = {"corrections": {"job_title": rng.choice(JOB_TITLES)}}
        elif kind == "object":
            payload = {"scope": rng.choice(["marketing", "legitimate_interest"])}
        name = f"{day:%Y%m%d}-{len(self.requests) + 1:04d}-{kind}.json"
        self.inbox.mkdir(parents=True, exist_ok=True)
        body = {"type": kind, "email": email, "received_at": _ts(_at(day, 10)).replace(" ", "T")}
        if payload:
            body["payload"] = payload
        (self.inbox / name).write_text(json.dumps(body), encoding="utf-8")
        self.requests.append(DroppedRequest(name, kind, email, day, company_id))
        if kind == "restrict" and company_id is not None:
            self.restricted_companies.add(company_id)
            self.restricted_user_ids |= {
                u["id"] for u in self.rows["users"].values() if u["email"] == email
            }
        report.requests += 1

    # --- the first day ---------------------------------------------------------------------------

    def _write_initial_sources(self, day: dt.date) -> None:
        self.sources.mkdir(parents=True, exist_ok=True)
        portal = self.sources / "portal.db"
        portal.unlink(missing_ok=True)
        with sqlite3.connect(portal) as db:
            db.executescript(PORTAL_DDL)
        db.close()
        for table in PORTAL_TABLES:
            self._dirty[table] = set(self.rows[table])
        self._flush_portal()
        self._write_crm_history(day)
        for back in range(self.options.history_log_days, 0, -1):
            self._write_logs(day - dt.timedelta(days=back - 1), None)

    def _write_crm_history(self, day: dt.date) -> None:
        """The export of the day before the soak: every activity so far in one file."""
        folder = self.sources / "crm"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = day.strftime("%Y%m%d")
        for name, rows in (
            ("contacts", list(self.contacts.values())),
            ("companies", self.pop.crm_companies),
            ("activities", self.pop.activities),
        ):
            _write_csv_rows(folder / f"{name}_{stamp}.csv", CRM_HEADERS[name], rows)


def _write_csv_rows(path: Path, header: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        for line in lines:
            fh.write(line + "\n")

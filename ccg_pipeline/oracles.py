"""Second formulations of what the enforcers promise, sharing none of their selections.

The retention sweep selects expired rows with SQL predicates per (rule, table) and the N-RET
evidence of the sweep counts what those predicates still select: a row no predicate reaches is
invisible to both. The oracle here starts from the other end: it reads every row of every table
the personal-data model declares, works out from first principles when that row's data must go
(a company's ceased date recomputed in Python from its contracts, closure, invoices and payments,
then `deadlines.deadline` forward from it; a person's status from their companies; event times
plus their periods), and counts the rows past that day and not held. Nothing here calls the
sweep's predicates, cutoffs or worklist.

`erasure_leftovers` does the same for an erasure: it searches every personal table, quarantine
and the files the pipeline writes for the requester's address and keyed pseudonym, outside what a
tax hold keeps.

Only counts leave this module: table names, rule ids and numbers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline import personal_model
from ccg_pipeline.policy.models import Notice, RetentionRule
from ccg_pipeline.retention.deadlines import add_period, deadline
from ccg_pipeline.warehouse import schema as s

STREAM_ROWS = 20_000
OPT_OUTS = {"MARKETING_OPT_OUT", "MARKETING_CONSENT_WITHDRAWN", "MAILING_LIST_UNSUBSCRIBE"}
CONSENTS = {"MARKETING_CONSENT_GRANTED", "MAILING_LIST_SUBSCRIBE"}
MARKETING = OPT_OUTS | CONSENTS


def _day(value: dt.date | dt.datetime | None) -> dt.date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def _stream(conn: Connection, query: sa.Select) -> Iterator[Any]:
    streaming = conn.execution_options(stream_results=True, max_row_buffer=STREAM_ROWS)
    yield from streaming.execute(query)


@dataclass
class _Company:
    has_contract: bool = False
    open_contract: bool = False
    closed: dt.date | None = None
    last: dt.date | None = None

    def saw(self, day: dt.date | None) -> None:
        if day is not None and (self.last is None or day > self.last):
            self.last = day


@dataclass
class RetentionOracle:
    """Rows past their deadline and not held, per table and rule, found from every row."""

    as_of: dt.date
    overdue: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows_judged: Counter[str] = field(default_factory=Counter)
    companies_due: int = 0
    customer_contacts_unlinked: int = 0

    def total(self) -> int:
        return sum(self.overdue.values())

    def by_table(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (_, table), n in self.overdue.items():
            counts[table] += n
        return dict(counts)


class _World:
    """What the personal zone says about companies and people, as of a day."""

    def __init__(self, conn: Connection, notice: Notice, as_of: dt.date) -> None:
        self.conn, self.as_of = conn, as_of
        self.rules: dict[str, RetentionRule] = {r.id: r for r in notice.retention_rules}
        basic = next(r for r in notice.retention_rules if r.trigger == "ceased_customer")
        self.basic = basic
        self.still_in_contact = basic.people_still_in_contact
        self.companies = self._companies()
        self.due_companies = {
            cid for cid, company in self.companies.items() if self._company_due(company)
        }
        self.held_subjects, self.held_keys = self._held()
        users = list(
            conn.execute(sa.select(s.portal_users.c.subject_id, s.portal_users.c.company_id))
        )
        self.held_companies = {c for subj, c in users if subj in self.held_subjects}
        self.subject_companies: dict[int, set[int]] = defaultdict(set)
        for subject_id, company_id in users:
            self.subject_companies[subject_id].add(company_id)
        keys = {
            k: v
            for k, v in conn.execute(sa.select(s.subjects.c.subject_key, s.subjects.c.subject_id))
        }
        self.subject_of_key = keys
        q = s.quarantine
        for key, company_id in conn.execute(
            sa.select(q.c.subject_key, q.c.company_id).where(
                q.c.subject_key.is_not(None), q.c.company_id.is_not(None)
            )
        ):
            if key in keys:
                self.subject_companies[keys[key]].add(company_id)
        c = s.companies
        names: dict[tuple[str, str], set[int]] = defaultdict(set)
        for company_id, name, country in conn.execute(
            sa.select(c.c.company_id, c.c.name, c.c.country)
        ):
            names[(name.strip().lower(), country or "")].add(company_id)
        self.company_names = names
        self.names_any: dict[str, set[int]] = defaultdict(set)
        for (name, _), ids in names.items():
            self.names_any[name] |= ids

    # -- companies ------------------------------------------------------------------------------

    def _companies(self) -> dict[int, _Company]:
        conn = self.conn
        found: dict[int, _Company] = defaultdict(_Company)
        k, c, i, p = s.contracts, s.companies, s.invoices, s.payments
        for company_id, ends_on in conn.execute(sa.select(k.c.company_id, k.c.ends_on)):
            company = found[company_id]
            company.has_contract = True
            if ends_on is None:
                company.open_contract = True
            company.saw(_day(ends_on))
        for company_id, closed_at in conn.execute(sa.select(c.c.company_id, c.c.closed_at)):
            company = found[company_id]
            company.closed = _day(closed_at)
            company.saw(company.closed)
        for company_id, issued in conn.execute(
            sa.select(i.c.company_id, sa.func.max(i.c.issued_on)).group_by(i.c.company_id)
        ):
            found[company_id].saw(_day(issued))
        invoice_company = sa.select(i.c.company_id).where(i.c.invoice_id == p.c.invoice_id)
        company_of_payment = sa.func.coalesce(p.c.company_id, invoice_company.scalar_subquery())
        for company_id, paid in conn.execute(
            sa.select(company_of_payment, sa.func.max(p.c.paid_at)).group_by(company_of_payment)
        ):
            if company_id is not None:
                found[company_id].saw(_day(paid))
        return dict(found)

    def _company_due(self, company: _Company) -> bool:
        was_customer = company.has_contract or company.closed is not None
        if not was_customer or company.open_contract or company.last is None:
            return False
        return deadline(company.last, self.basic) <= self.as_of

    def company_due(self, company_id: int | None) -> bool:
        return (
            company_id is not None
            and company_id in self.due_companies
            and company_id not in self.held_companies
        )

    # -- people -------------------------------------------------------------------------------

    def _held(self) -> tuple[set[int], set[str]]:
        h, subj = s.legal_holds, s.subjects
        end = dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time())
        keys = set(
            self.conn.execute(
                sa.select(h.c.subject_key).where(
                    sa.or_(h.c.released_at.is_(None), h.c.released_at >= end),
                    h.c.origin != "erasure_restriction",
                )
            ).scalars()
        )
        ids = (
            set(
                self.conn.execute(
                    sa.select(subj.c.subject_id).where(subj.c.subject_key.in_(keys))
                ).scalars()
            )
            if keys
            else set()
        )
        return ids, keys

    def customer_status(
        self, subject_id: int | None, company_name: str | None, country: str | None
    ) -> str:
        """ "customer" (a company of theirs is not due), "former" (all are due) or "none"."""
        companies = set(self.subject_companies.get(subject_id, set())) if subject_id else set()
        if company_name:
            companies |= self.names_any.get(company_name.strip().lower(), set())
        if not companies:
            return "none"
        return "former" if all(self.company_due(c) for c in companies) else "customer"

    def passed(self, rule_id: str, trigger: dt.date | None) -> bool:
        """`trigger` plus the rule's period (no year-end alignment) is on or before the day."""
        return trigger is not None and add_period(trigger, self.rules[rule_id].period) <= self.as_of


def judge_retention(conn: Connection, notice: Notice, as_of: dt.date) -> RetentionOracle:
    """Every row of the personal zone against its deadline (see the module docstring)."""
    world = _World(conn, notice, as_of)
    report = RetentionOracle(as_of, companies_due=len(world.due_companies))

    def flag(rule: str, table: str, n: int = 1) -> None:
        report.overdue[(rule, table)] += n

    # Company-keyed tables: due with their company.
    tables = personal_model.personal_tables()
    for name, spec in personal_model.TABLES.items():
        table = tables[name]
        if spec.company_column is None or name == "personal.quarantine":
            continue
        column: sa.ColumnElement[Any] = table.c[spec.company_column]
        if name == "personal.payments":
            invoice_company = sa.select(s.invoices.c.company_id).where(
                s.invoices.c.invoice_id == table.c.invoice_id
            )
            column = sa.func.coalesce(column, invoice_company.scalar_subquery())
        for company_id, rows in conn.execute(sa.select(column, sa.func.count()).group_by(column)):
            report.rows_judged[name] += rows
            if world.company_due(company_id):
                flag("customer_basic", name, rows)

    _judge_profiles(conn, world, flag)
    _judge_crm(conn, world, report, flag)
    _judge_events(conn, world, report, flag)
    _judge_quarantine(conn, world, report, flag)
    _judge_subjects_and_requests(conn, world, report, flag)
    return report


def _judge_profiles(conn: Connection, world: _World, flag: Any) -> None:
    u = s.portal_users
    rows = conn.execute(
        sa.select(u.c.subject_id, u.c.closed_at).where(
            sa.or_(u.c.password_hash.is_not(None), u.c.interests.is_not(None))
        )
    )
    for subject_id, closed_at in rows:
        if subject_id not in world.held_subjects and world.passed(
            "profile_after_closure", _day(closed_at)
        ):
            flag("profile_after_closure", "personal.portal_users")


def _judge_crm(conn: Connection, world: _World, report: RetentionOracle, flag: Any) -> None:
    due_contacts, named, former_subjects = _judge_crm_contacts(conn, world, report, flag)
    _judge_crm_activities(conn, world, report, flag, due_contacts, former_subjects)
    _judge_crm_companies(conn, world, report, flag, named)


def _judge_crm_contacts(
    conn: Connection, world: _World, report: RetentionOracle, flag: Any
) -> tuple[set[int], set[str], set[int]]:
    """Flags the CRM contacts past their deadline. Returns what judging their activities and
    companies needs: the contacts found due, the company names contacts give (lower case) and
    the subjects who are former customers."""
    cc = s.crm_contacts
    has_login = set(conn.execute(sa.select(s.portal_users.c.subject_id).distinct()).scalars())
    due_contacts: set[int] = set()
    named: set[str] = set()
    former_subjects: set[int] = set()
    query = sa.select(
        cc.c.crm_contact_id,
        cc.c.subject_id,
        cc.c.lifecycle_stage,
        cc.c.company_name,
        cc.c.country,
        sa.func.coalesce(cc.c.last_activity_at, cc.c.created_at),
    )
    for contact_id, subject_id, stage, company_name, country, last in _stream(conn, query):
        report.rows_judged["personal.crm_contacts"] += 1
        if company_name:
            named.add(company_name.strip().lower())
        held = subject_id in world.held_subjects
        status = world.customer_status(subject_id, company_name, country)
        if subject_id in has_login and status != "former":
            status = "customer"
        if status == "former":
            former_subjects.add(subject_id)
        elif status == "none":
            # A prospect, or a contact marked customer whose company nothing held names.
            report.customer_contacts_unlinked += stage == "customer"
        due_rule = _contact_due_rule(world, status, last)
        if due_rule and not held:
            flag(due_rule, "personal.crm_contacts")
            due_contacts.add(contact_id)
    return due_contacts, named, former_subjects


def _contact_due_rule(world: _World, status: str, last: dt.date | dt.datetime | None) -> str | None:
    """The rule under which a CRM contact with customer status `status` and last activity
    `last` is past its deadline, or None while it is not (a current customer's never is)."""
    if status == "former":
        if world.still_in_contact is None or world.passed(world.still_in_contact, _day(last)):
            return "customer_basic"
    elif status == "none" and world.passed("prospect_inactive", _day(last)):
        return "prospect_inactive"
    return None


def _opted_out(conn: Connection, world: _World) -> set[int]:
    """Subjects whose last word on marketing is an opt-out whose period has passed. An opt-in
    at the same moment as an opt-out wins."""
    ca = s.crm_activities
    last_word: dict[int, tuple[dt.datetime, str]] = {}
    opt_out_query = sa.select(ca.c.subject_id, ca.c.occurred_at, ca.c.activity_type).where(
        ca.c.activity_type.in_(sorted(MARKETING)), ca.c.subject_id.is_not(None)
    )
    for subject_id, occurred, kind in _stream(conn, opt_out_query):
        seen = last_word.get(subject_id)
        word = "out" if kind in OPT_OUTS else "in"
        if seen is None or occurred > seen[0] or (occurred == seen[0] and word == "in"):
            last_word[subject_id] = (occurred, word)
    return {
        subj
        for subj, (when, word) in last_word.items()
        if word == "out" and world.passed("marketing_after_opt_out", _day(when))
    }


def _judge_crm_activities(
    conn: Connection,
    world: _World,
    report: RetentionOracle,
    flag: Any,
    due_contacts: set[int],
    former_subjects: set[int],
) -> None:
    """Flags the CRM activities past their deadline, unless their subject is held: those of a
    contact found due, a former customer's once customer_basic has passed, marketing ones after
    an opt-out, and those without a subject once prospect_inactive has passed."""
    ca = s.crm_activities
    opted_out = _opted_out(conn, world)
    query = sa.select(ca.c.crm_contact_id, ca.c.subject_id, ca.c.activity_type, ca.c.occurred_at)
    for contact_id, subject_id, kind, occurred in _stream(conn, query):
        report.rows_judged["personal.crm_activities"] += 1
        if subject_id in world.held_subjects:
            continue
        day = _day(occurred)
        if contact_id in due_contacts:
            flag(
                "customer_basic" if subject_id in former_subjects else "prospect_inactive",
                "personal.crm_activities",
            )
        elif subject_id in former_subjects and world.passed("customer_basic", day):
            flag("customer_basic", "personal.crm_activities")
        elif kind in MARKETING and subject_id in opted_out:
            flag("marketing_after_opt_out", "personal.crm_activities")
        elif subject_id is None and world.passed("prospect_inactive", day):
            flag("prospect_inactive", "personal.crm_activities")


def _judge_crm_companies(
    conn: Connection, world: _World, report: RetentionOracle, flag: Any, named: set[str]
) -> None:
    """Flags the CRM companies past their deadline: those whose portal companies are all due,
    and prospects (named by no portal company and no contact) inactive long enough."""
    cr = s.crm_companies
    for name, country, created in conn.execute(sa.select(cr.c.name, cr.c.country, cr.c.created_at)):
        report.rows_judged["personal.crm_companies"] += 1
        ids = world.company_names.get((name.strip().lower(), country or ""), set())
        if ids and all(world.company_due(c) for c in ids):
            flag("customer_basic", "personal.crm_companies")
        elif (
            name.strip().lower() not in world.names_any
            and name.strip().lower() not in named
            and world.passed("prospect_inactive", _day(created))
        ):
            flag("prospect_inactive", "personal.crm_companies")


def _judge_events(conn: Connection, world: _World, report: RetentionOracle, flag: Any) -> None:
    for table, column, rule, subject in (
        (s.web_access, s.web_access.c.requested_at, "web_logs_raw", None),
        (s.auth_events, s.auth_events.c.occurred_at, "auth_logs_raw", s.auth_events.c.subject_id),
    ):
        name = f"{table.schema}.{table.name}"
        report.rows_judged[name] += conn.execute(
            sa.select(sa.func.count()).select_from(table)
        ).scalar_one()
        # The last event day whose deadline has come, walking back from the as-of day.
        last_expired = world.as_of
        while not world.passed(rule, last_expired):
            last_expired -= dt.timedelta(days=1)
        before = dt.datetime.combine(last_expired + dt.timedelta(days=1), dt.time())
        where = [column < before]
        if subject is not None and world.held_subjects:
            where.append(sa.or_(subject.is_(None), subject.not_in(sorted(world.held_subjects))))
        found = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)
        ).scalar_one()
        if found:
            flag(rule, name, found)


def _judge_quarantine(conn: Connection, world: _World, report: RetentionOracle, flag: Any) -> None:
    q = s.quarantine
    query = sa.select(q.c.quarantined_at, q.c.subject_key, q.c.company_id)
    for quarantined_at, key, company_id in _stream(conn, query):
        report.rows_judged["personal.quarantine"] += 1
        subject_id = world.subject_of_key.get(key) if key else None
        held = key in world.held_keys or company_id in world.held_companies
        if held:
            continue
        if world.company_due(company_id) or (
            subject_id is not None and world.customer_status(subject_id, None, None) == "former"
        ):
            flag("customer_basic", "personal.quarantine")
        elif world.passed("quarantine_raw", _day(quarantined_at)):
            flag("quarantine_raw", "personal.quarantine")


def _judge_subjects_and_requests(
    conn: Connection, world: _World, report: RetentionOracle, flag: Any
) -> None:
    referenced: set[int] = set()
    for table in (s.portal_users, s.crm_contacts, s.crm_activities, s.auth_events):
        referenced |= set(
            conn.execute(
                sa.select(table.c.subject_id).where(table.c.subject_id.is_not(None)).distinct()
            ).scalars()
        )
    for (subject_id,) in _stream(conn, sa.select(s.subjects.c.subject_id)):
        report.rows_judged["personal.subjects"] += 1
        if subject_id not in referenced and subject_id not in world.held_subjects:
            flag("orphaned_subjects", "personal.subjects")
    r, p = s.subject_requests, s.request_payloads
    closed = conn.execute(
        sa.select(sa.func.count())
        .select_from(p.join(r, r.c.request_id == p.c.request_id, isouter=True))
        .where(sa.or_(r.c.request_id.is_(None), r.c.status.in_([s.COMPLETED, s.REJECTED])))
    ).scalar_one()
    report.rows_judged["personal.request_payloads"] += conn.execute(
        sa.select(sa.func.count()).select_from(p)
    ).scalar_one()
    if closed:
        flag("request_closed", "personal.request_payloads", closed)


# --- erasure ----------------------------------------------------------------------------------


def _text_columns(table: sa.Table) -> list[sa.Column]:
    return [c for c in table.columns if isinstance(c.type, sa.String | sa.Text)]


def erasure_leftovers(
    conn: Connection, email: str, subject_key: str, files_under: Iterable[Path] = ()
) -> dict[str, int]:
    """Where the requester's address or keyed pseudonym is still found after an erasure: every
    text column of every personal table (quarantine included), outside the tables an erasure
    keeps for tax while the person's company is kept; then every file under `files_under`.
    Counts per table or folder only."""
    needle = email.strip().lower()
    found: dict[str, int] = {}
    tax_held = any(
        True
        for _ in conn.execute(
            sa.select(s.portal_users.c.user_id)
            .join(s.companies, s.companies.c.company_id == s.portal_users.c.company_id)
            .join(s.subjects, s.subjects.c.subject_id == s.portal_users.c.subject_id)
            .where(s.subjects.c.subject_key == subject_key)
            .limit(1)
        )
    )
    kept_for_tax = {personal_model.Erasure.TAX_RECORD, personal_model.Erasure.PROFILE_UNLESS_TAX}
    for name, table in personal_model.personal_tables().items():
        spec = personal_model.TABLES[name]
        if tax_held and spec.erasure in kept_for_tax:
            continue
        if spec.erasure is personal_model.Erasure.WITH_THE_REQUEST:
            continue  # the open request's own row, deleted as it closes
        columns = _text_columns(table)
        if not columns:
            continue
        matches = [sa.func.lower(c).contains(needle, autoescape=True) for c in columns]
        matches += [c == subject_key for c in columns if c.name == "subject_key"]
        count = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(sa.or_(*matches))
        ).scalar_one()
        if count:
            found[name] = count
    for folder in files_under:
        if not folder.is_dir():
            continue
        hits = sum(1 for path in folder.rglob("*") if _file_holds(path, needle))
        if hits:
            found[f"files:{folder.name}"] = hits
    return found


def _file_holds(path: Path, needle: str) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    try:
        return needle in path.read_bytes().decode("utf-8", "replace").lower()
    except OSError:
        return False

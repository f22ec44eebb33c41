"""Which rows each retention rule retires, as set-based SQL predicates.

Each `Target` is one (rule, table) pair of the policy: a predicate selecting the table's expired
rows as of a date, a predicate selecting the rows that belong to held subjects, an optional
anonymiser that writes the rows' statistical value to staging before they go, and the action.
Targets are listed in the order they must run: children before the rows their predicates join
through (payments before invoices, CRM rows before the portal users that mark a customer).

"Ceased" (rule customer_basic) is defined per company, as the latest of: the end of its last
contract or licence, its account closure, its last invoice and its last payment. A company with a
contract that has no end date is a current customer. Companies are found by key in every table
the personal-data model gives a company column (`personal_model.TABLES`), so the children of a
quarantined or missing company row retire with it. Its people's data (portal users and their CRM
records) follows the company; a person still in contact is, from the company's deadline, a
prospect when the policy says so (`people_still_in_contact`). Retired customers' people are kept
on the worklist, so that their CRM records are still known as a former customer's after the
portal rows that showed it are gone.

Targets come from the policy (rule order, then each rule's table order): a (rule, table) pair
with its own predicate below, or a generic one from the model (company key for the six-year
rule, the time column for event-time rules).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from ccg_pipeline import personal_model
from ccg_pipeline.personal_model import CONSENT_TYPES as CONSENT_TYPES
from ccg_pipeline.personal_model import OPT_OUT_TYPES as OPT_OUT_TYPES
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Notice, RetentionTrigger
from ccg_pipeline.retention.deadlines import end_of_day, expired_cutoff
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.sql import IdQuery, day_label, month_label, quarter_label

MARKETING_ACTIVITY_TYPES = (
    "MAILING_LIST_SUBSCRIBE",
    "MAILING_LIST_UNSUBSCRIBE",
    "MARKETING_CONSENT_GRANTED",
    "MARKETING_OPT_OUT",
    "MARKETING_CONSENT_WITHDRAWN",
)


@dataclass(frozen=True)
class SweepDates:
    """Everything a predicate needs: the as-of date and each rule's cutoff."""

    as_of: dt.date
    cutoffs: dict[str, dt.date]
    use_worklist: bool
    # The rule a former customer's person still in contact is kept under (policy), or None.
    still_in_contact_rule: str | None = None

    @classmethod
    def for_date(
        cls,
        notice: Notice,
        as_of: dt.date,
        *,
        use_worklist: bool,
        align_to_year_end: bool | None = None,
    ) -> SweepDates:
        # The financial-year override only concerns rules that count in financial years.
        cutoffs = {
            rule.id: expired_cutoff(
                as_of,
                rule,
                align_to_year_end=align_to_year_end if rule.financial_year_end else None,
            )
            for rule in notice.retention_rules
        }
        still = next(
            (
                r.people_still_in_contact
                for r in notice.retention_rules
                if r.trigger == RetentionTrigger.CEASED_CUSTOMER
            ),
            None,
        )
        return cls(as_of, cutoffs, use_worklist, still)

    def before_end_of(self, rule_id: str) -> dt.datetime:
        """Timestamps strictly before this are on or before the rule's cutoff day."""
        return end_of_day(self.cutoffs[rule_id])

    @property
    def as_of_end(self) -> dt.datetime:
        return end_of_day(self.as_of)


# --- holds ----------------------------------------------------------------------------------------


# A hold with this origin restricts what an erasure request could not delete (tax records): the
# subject is excluded from processing, but retention still deletes the records when they are due.
ERASURE_RESTRICTION = "erasure_restriction"


def holds_in_force(dates: SweepDates) -> sa.ColumnElement[bool]:
    """Not released, or released only after the as-of date. A hold's start date is deliberately
    not compared with the as-of date: a hold placed today must also stop a backfill for an
    earlier day from deleting or processing the data it protects."""
    h = s.legal_holds
    return sa.or_(h.c.released_at.is_(None), h.c.released_at >= dates.as_of_end)


def held_subject_ids(dates: SweepDates) -> sa.Select:
    """Subjects whose data retention must not delete: a hold in force, other than the
    restriction an erasure request leaves on tax records."""
    h = s.legal_holds
    return (
        sa.select(s.subjects.c.subject_id)
        .join(h, h.c.subject_key == s.subjects.c.subject_key)
        .where(holds_in_force(dates), h.c.origin != ERASURE_RESTRICTION)
    )


def restricted_subject_ids(dates: SweepDates) -> IdQuery:
    """Subjects left out of all processing but storage: any hold in force (restriction requests,
    legal holds, restricted tax records after an erasure), and objections to
    legitimate-interest processing."""
    h, o = s.legal_holds, s.processing_objections
    held = (
        sa.select(s.subjects.c.subject_id)
        .join(h, h.c.subject_key == s.subjects.c.subject_key)
        .where(holds_in_force(dates))
    )
    objected = (
        sa.select(s.subjects.c.subject_id)
        .join(o, o.c.subject_key == s.subjects.c.subject_key)
        .where(o.c.scope == "legitimate_interest")
    )
    return held.union(objected)


def held_company_ids(dates: SweepDates) -> sa.Select:
    """A company's records are held while any of its people is held (tax records are shared)."""
    u = s.portal_users
    return sa.select(u.c.company_id).where(u.c.subject_id.in_(held_subject_ids(dates)))


def restricted_company_ids(dates: SweepDates) -> sa.Select:
    """Companies left out of processing because one of their people is restricted."""
    u = s.portal_users
    return sa.select(u.c.company_id).where(u.c.subject_id.in_(restricted_subject_ids(dates)))


# --- customer_basic -------------------------------------------------------------------------------


def company_keys() -> sa.CompoundSelect:
    """Every company key the personal zone holds, in any table the model gives a company
    column: a company whose own row is missing or quarantined is still found."""
    selects = []
    for table in personal_model.personal_tables().values():
        column = personal_model.TABLES[f"{table.schema}.{table.name}"].company_column
        if column is not None:
            selects.append(
                sa.select(table.c[column].label("company_id")).where(table.c[column].is_not(None))
            )
    return sa.union(*selects)


def _no_activity_after_cutoff(company_id: Any, dates: SweepDates) -> sa.ColumnElement[bool]:
    """No open or later contract, no later invoice or payment, not closed after the cutoff.
    Deleting a company's rows never makes this false, so it can be re-checked mid-retirement."""
    cutoff = dates.cutoffs["customer_basic"]
    after = dates.before_end_of("customer_basic")
    # An alias, so the closure check correlates with the caller's company even when the caller
    # selects from the companies table itself.
    c, k, i, p = s.companies.alias("closure"), s.contracts, s.invoices, s.payments
    return sa.and_(
        ~sa.exists().where(
            k.c.company_id == company_id, sa.or_(k.c.ends_on.is_(None), k.c.ends_on > cutoff)
        ),
        ~sa.exists().where(i.c.company_id == company_id, i.c.issued_on > cutoff),
        ~sa.exists().where(
            i.c.company_id == company_id, p.c.invoice_id == i.c.invoice_id, p.c.paid_at >= after
        ),
        # Payments carry their company too: one whose invoice was quarantined still counts.
        ~sa.exists().where(p.c.company_id == company_id, p.c.paid_at >= after),
        ~sa.exists().where(c.c.company_id == company_id, c.c.closed_at >= after),
    )


def ceased_company_ids(dates: SweepDates) -> sa.Select:
    """Companies that were customers (a contract, or a closed account) and whose every contract,
    closure, invoice and payment is on or before the cutoff."""
    c, k = s.companies, s.contracts
    keys = company_keys().subquery("company_keys")
    was_customer = sa.or_(
        sa.exists().where(k.c.company_id == keys.c.company_id),
        sa.exists().where(c.c.company_id == keys.c.company_id, c.c.closed_at.is_not(None)),
    )
    return sa.select(keys.c.company_id).where(
        was_customer, _no_activity_after_cutoff(keys.c.company_id, dates)
    )


def retiring_company_ids(dates: SweepDates) -> sa.Select:
    """The companies the sweep works on: its worklist (crash-safe: listed before any row goes),
    re-checked for new activity so a company that came back is never retired; or, for a dry
    run, a fresh computation."""
    if not dates.use_worklist:
        return ceased_company_ids(dates)
    w = s.retention_worklist
    return sa.select(w.c.entity_id).where(
        w.c.rule_id == "customer_basic",
        w.c.entity == "company",
        _no_activity_after_cutoff(w.c.entity_id, dates),
    )


def retired_customer_subjects(dates: SweepDates) -> IdQuery:
    """People all of whose companies are retiring (someone active elsewhere stays): companies
    known from their portal logins, and from their quarantined portal records."""
    u, q, subj = s.portal_users, s.quarantine, s.subjects
    retiring = retiring_company_ids(dates)
    quarantined = sa.select(subj.c.subject_id, q.c.company_id).join(
        q, q.c.subject_key == subj.c.subject_key
    )
    links = sa.union_all(
        sa.select(u.c.subject_id, u.c.company_id), quarantined.where(q.c.company_id.is_not(None))
    ).subquery("subject_companies")
    return (
        sa.select(links.c.subject_id)
        .where(links.c.company_id.in_(retiring))
        .except_(sa.select(links.c.subject_id).where(links.c.company_id.not_in(retiring)))
    )


def former_customer_subject_ids(dates: SweepDates) -> IdQuery:
    """People of retired customers: listed on the worklist when their companies retire, so they
    stay known as former customers after the portal rows that showed it are deleted."""
    w = s.retention_worklist
    listed = sa.select(w.c.entity_id).where(
        w.c.rule_id == "customer_basic", w.c.entity == "subject"
    )
    if dates.use_worklist:
        return listed
    # A compound inside a compound needs its own subquery on SQLite.
    retired = retired_customer_subjects(dates).subquery("retired")
    return listed.union(sa.select(retired.c.subject_id))


def _is_former_customer(
    subject_id: Any, dates: SweepDates, *, has_no_login: bool = False
) -> sa.ColumnElement[bool]:
    """Listed as a retired customer's person, and not a customer again elsewhere since. With
    `has_no_login` the caller already requires that the person has no portal login at all,
    which implies the second part (and spares PostgreSQL a correlated anti-join per row)."""
    former = sa.and_(subject_id.is_not(None), subject_id.in_(former_customer_subject_ids(dates)))
    if has_no_login:
        return former
    u = s.portal_users
    return sa.and_(
        former,
        ~sa.exists().where(
            u.c.subject_id == subject_id, u.c.company_id.not_in(retiring_company_ids(dates))
        ),
    )


def _kept_while_in_contact(dates: SweepDates) -> bool:
    return dates.still_in_contact_rule is not None


# --- marketing and prospects ------------------------------------------------------------------------


def marketing_retiring_subject_ids(dates: SweepDates) -> sa.Select:
    """Opted-out subjects the sweep works on. They are listed in the worklist first, because the
    rule deletes the very opt-out events that identify them."""
    if not dates.use_worklist:
        return opted_out_subject_ids(dates)
    w = s.retention_worklist
    return sa.select(w.c.entity_id).where(
        w.c.rule_id == "marketing_after_opt_out", w.c.entity == "subject"
    )


def opted_out_subject_ids(dates: SweepDates) -> sa.Select:
    """Subjects whose last word on marketing is an opt-out or withdrawal on or before the cutoff."""
    return opted_out_before(dates.before_end_of("marketing_after_opt_out"))


def opted_out_before(before: dt.datetime, *, as_of_only: bool = False) -> sa.Select:
    """Subjects who opted out before `before` and have not consented again since. Retention
    counts a consent given at any time, even after `before` (it must never delete the history
    of someone who came back); with `as_of_only`, only consents before `before` count (the
    marketing list and its evidence, judged as of a day)."""
    a = s.crm_activities
    later = a.alias("later")
    consented_again = [
        later.c.subject_id == a.c.subject_id,
        later.c.activity_type.in_(CONSENT_TYPES),
        later.c.occurred_at > a.c.occurred_at,
    ]
    if as_of_only:
        consented_again.append(later.c.occurred_at < before)
    return sa.select(a.c.subject_id).where(
        a.c.subject_id.is_not(None),
        a.c.activity_type.in_(OPT_OUT_TYPES),
        a.c.occurred_at < before,
        ~sa.exists().where(*consented_again),
    )


def _inactive_prospect(dates: SweepDates) -> list[sa.ColumnElement[bool]]:
    """CRM contacts who never bought (no portal account), or people of retired customers when
    the policy keeps them as prospects, inactive past the window."""
    c, u = s.crm_contacts, s.portal_users
    # A contact the CRM calls a customer whose company the warehouse does not hold (never
    # loaded, quarantined, or retired) has nothing left that makes it a customer's record.
    prospect = sa.or_(
        c.c.lifecycle_stage != "customer",
        c.c.company_name.is_(None),
        _name_key(c.c.company_name).not_in(_held_company_names()),
    )
    if dates.still_in_contact_rule == "prospect_inactive":
        prospect = sa.or_(prospect, _is_former_customer(c.c.subject_id, dates, has_no_login=True))
    return [
        prospect,
        # NOT EXISTS, not NOT IN (both columns are NOT NULL, so the same rows): once the portal's
        # subject ids outgrow work_mem, PostgreSQL rescans them for every contact.
        ~sa.exists().where(u.c.subject_id == c.c.subject_id),
        sa.func.coalesce(c.c.last_activity_at, c.c.created_at)
        < dates.before_end_of("prospect_inactive"),
    ]


def inactive_prospect_contact_ids(dates: SweepDates) -> sa.Select:
    return sa.select(s.crm_contacts.c.crm_contact_id).where(*_inactive_prospect(dates))


def is_inactive_prospect(contact_id: sa.ColumnElement[Any], dates: SweepDates) -> sa.Exists:
    """`contact_id` is an inactive prospect's, as a correlated EXISTS: inside an OR, PostgreSQL
    cannot turn `IN (subquery)` into a join, and rescans the subquery per row once its result
    outgrows work_mem."""
    c = s.crm_contacts
    return sa.exists().where(c.c.crm_contact_id == contact_id, *_inactive_prospect(dates))


# --- targets ----------------------------------------------------------------------------------------

Predicate = Callable[[SweepDates], sa.ColumnElement[bool]]
# (rows to read: the table, or the rows a DELETE ... RETURNING just removed; predicate)
Anonymiser = Callable[[Any, sa.ColumnElement[bool]], sa.Select]


@dataclass(frozen=True)
class Target:
    rule_id: str
    table: sa.Table
    expired: Predicate
    held: Predicate | None
    action: Literal["delete", "null_columns"] = "delete"
    null_columns: tuple[str, ...] = ()
    anonymise_into: sa.Table | None = None
    anonymiser: Anonymiser | None = None
    # An indexed column to cut chunks along (event time for logs); the primary key otherwise.
    chunk_by: sa.Column | None = None

    @property
    def name(self) -> str:
        return f"{self.table.schema}.{self.table.name}"


def _company_column(table: sa.Table) -> sa.Column:
    column = personal_model.TABLES[f"{table.schema}.{table.name}"].company_column
    assert column is not None, f"{table.name} has no company key in the personal-data model"
    return table.c[column]


def _company_rows(table: sa.Table) -> Predicate:
    return lambda d: _company_column(table).in_(retiring_company_ids(d))


def _company_held(table: sa.Table) -> Predicate:
    # Explicitly false for rows without a company key (see _subject_held).
    return lambda d: sa.and_(
        _company_column(table).is_not(None), _company_column(table).in_(held_company_ids(d))
    )


def _subject_held(table: sa.Table) -> Predicate:
    # Explicitly false for rows without a subject: `NULL IN (...)` is NULL, and NOT NULL would
    # silently exempt those rows from retention once any hold exists.
    return lambda d: sa.and_(
        table.c.subject_id.is_not(None), table.c.subject_id.in_(held_subject_ids(d))
    )


def _anon_invoices(rows: Any, pred: sa.ColumnElement[bool]) -> sa.Select:
    i, c, o = rows, s.companies, s.orders
    month = month_label(i.c.issued_on)
    country = sa.func.coalesce(
        sa.select(c.c.country).where(c.c.company_id == i.c.company_id).scalar_subquery(), "??"
    )
    service = sa.func.coalesce(
        sa.select(o.c.service).where(o.c.order_id == i.c.order_id).scalar_subquery(), "unknown"
    )
    return (
        sa.select(
            month.label("issued_month"),
            country.label("country"),
            service.label("service"),
            sa.func.count().label("invoices"),
            sa.func.sum(i.c.amount_minor).label("amount_minor"),
        )
        .where(pred)
        .group_by(month, country, service)
    )


def _anon_contracts(rows: Any, pred: sa.ColumnElement[bool]) -> sa.Select:
    k = rows
    quarter = quarter_label(k.c.starts_on)
    return (
        sa.select(
            quarter.label("start_quarter"),
            k.c.licence_type,
            k.c.service,
            sa.func.count().label("contracts"),
            sa.func.sum(k.c.annual_fee_minor).label("annual_fee_minor"),
        )
        .where(pred)
        .group_by(quarter, k.c.licence_type, k.c.service)
    )


def _anon_customers(rows: Any, pred: sa.ColumnElement[bool]) -> sa.Select:
    c = rows
    ceased = sa.func.coalesce(c.c.closed_at, c.c.updated_at)
    quarter = quarter_label(ceased)
    started = quarter_label(c.c.created_at)
    sector = sa.func.coalesce(c.c.sector, "unknown")
    return (
        sa.select(
            started.label("started_quarter"),
            quarter.label("ceased_quarter"),
            c.c.country,
            sector.label("sector"),
            sa.func.count().label("customers"),
        )
        .where(pred)
        .group_by(started, quarter, c.c.country, sector)
    )


def _anon_prospects(rows: Any, pred: sa.ColumnElement[bool]) -> sa.Select:
    c = rows
    quarter = quarter_label(c.c.created_at)
    country = sa.func.coalesce(c.c.country, "??")
    return (
        sa.select(
            quarter.label("created_quarter"),
            country.label("country"),
            c.c.lifecycle_stage,
            sa.func.count().label("prospects"),
        )
        .where(pred)
        .group_by(quarter, country, c.c.lifecycle_stage)
    )


def _anon_auth(rows: Any, pred: sa.ColumnElement[bool]) -> sa.Select:
    a = rows
    day = day_label(a.c.occurred_at)
    return (
        sa.select(day.label("day"), a.c.event, a.c.outcome, sa.func.count().label("events"))
        .where(pred)
        .group_by(day, a.c.event, a.c.outcome)
    )


def _former_customer_activity(d: SweepDates) -> sa.ColumnElement[bool]:
    """CRM activity of a retired customer's people: all of it, or (when the policy keeps those
    still in contact as prospects) the part from before the cutoff."""
    ca = s.crm_activities
    former = _is_former_customer(ca.c.subject_id, d)
    if not _kept_while_in_contact(d):
        return former
    return sa.and_(former, ca.c.occurred_at < d.before_end_of("customer_basic"))


def _former_customer_contacts(d: SweepDates) -> sa.ColumnElement[bool]:
    """A retired customer's people's CRM records: all of them, or those whose last activity is
    before the cutoff (the others are prospects from now on, under the policy's rule)."""
    cc = s.crm_contacts
    former = _is_former_customer(cc.c.subject_id, d)
    if not _kept_while_in_contact(d):
        return former
    return sa.and_(
        former,
        sa.func.coalesce(cc.c.last_activity_at, cc.c.created_at)
        < d.before_end_of("customer_basic"),
    )


def _name_key(name: Any) -> sa.ColumnElement[str]:
    """A company name as names are matched across the portal and the CRM."""
    return sa.func.lower(sa.func.trim(name))


def _held_company_names(*where: sa.ColumnElement[bool]) -> sa.Select:
    # Matched with IN against one uncorrelated list (built once per statement), not by a
    # correlated lookup per row: no index serves lower(trim(name)).
    return sa.select(_name_key(s.companies.c.name)).where(*where)


def _crm_company_of_retired_customer(d: SweepDates) -> sa.ColumnElement[bool]:
    """The CRM record naming a retiring company (same name and country), unless a company that
    is not retiring has the same name and country."""
    cr, c = s.crm_companies, s.companies
    retiring = retiring_company_ids(d)
    crm_key = sa.tuple_(_name_key(cr.c.name), sa.func.coalesce(cr.c.country, ""))

    def keys(*where: sa.ColumnElement[bool]) -> sa.Select:
        return sa.select(_name_key(c.c.name), c.c.country).where(*where)

    return sa.and_(
        crm_key.in_(keys(c.c.company_id.in_(retiring))),
        crm_key.not_in(keys(c.c.company_id.not_in(retiring))),
    )


def _crm_company_unlinked(d: SweepDates) -> sa.ColumnElement[bool]:
    """A CRM company record naming no company held and no CRM contact, created before the
    prospect cutoff."""
    cr, cc = s.crm_companies, s.crm_contacts
    named_by_contacts = sa.select(_name_key(cc.c.company_name)).where(
        cc.c.company_name.is_not(None)
    )
    return sa.and_(
        _name_key(cr.c.name).not_in(_held_company_names()),
        _name_key(cr.c.name).not_in(named_by_contacts),
        cr.c.created_at < d.before_end_of("prospect_inactive"),
    )


def _quarantined_of_retired_customer(d: SweepDates) -> sa.ColumnElement[bool]:
    q, subj = s.quarantine, s.subjects
    former_keys = sa.select(subj.c.subject_key).where(
        subj.c.subject_id.in_(former_customer_subject_ids(d))
    )
    return sa.or_(
        q.c.company_id.in_(retiring_company_ids(d)),
        sa.and_(q.c.subject_key.is_not(None), q.c.subject_key.in_(former_keys)),
    )


def _quarantine_held(d: SweepDates) -> sa.ColumnElement[bool]:
    q, subj = s.quarantine, s.subjects
    held_keys = sa.select(subj.c.subject_key).where(subj.c.subject_id.in_(held_subject_ids(d)))
    return sa.or_(
        sa.and_(q.c.company_id.is_not(None), q.c.company_id.in_(held_company_ids(d))),
        sa.and_(q.c.subject_key.is_not(None), q.c.subject_key.in_(held_keys)),
    )


def _payments_of_retiring(d: SweepDates) -> sa.ColumnElement[bool]:
    p, i = s.payments, s.invoices
    return sa.or_(
        p.c.company_id.in_(retiring_company_ids(d)),
        p.c.invoice_id.in_(
            sa.select(i.c.invoice_id).where(i.c.company_id.in_(retiring_company_ids(d)))
        ),
    )


def _payments_held(d: SweepDates) -> sa.ColumnElement[bool]:
    p, i = s.payments, s.invoices
    return sa.or_(
        sa.and_(p.c.company_id.is_not(None), p.c.company_id.in_(held_company_ids(d))),
        p.c.invoice_id.in_(
            sa.select(i.c.invoice_id).where(i.c.company_id.in_(held_company_ids(d)))
        ),
    )


def _activities_of_inactive_prospects(d: SweepDates) -> sa.ColumnElement[bool]:
    # Also activities that never matched a contact (their contact was quarantined or never
    # exported): otherwise no rule would ever reach them.
    ca = s.crm_activities
    return sa.or_(
        is_inactive_prospect(ca.c.crm_contact_id, d),
        sa.and_(ca.c.subject_id.is_(None), ca.c.occurred_at < d.before_end_of("prospect_inactive")),
    )


def _special_targets() -> dict[tuple[str, str], Target]:
    """The (rule, table) pairs whose rows are not found by company key or event time alone."""
    p, i, k, u, c = s.payments, s.invoices, s.contracts, s.portal_users, s.companies
    ca, cc, cr, a, q = (
        s.crm_activities,
        s.crm_contacts,
        s.crm_companies,
        s.auth_events,
        s.quarantine,
    )
    marketing_rows = ca.c.activity_type.in_(MARKETING_ACTIVITY_TYPES)
    targets = [
        Target("customer_basic", p, _payments_of_retiring, _payments_held),
        Target(
            "customer_basic",
            i,
            _company_rows(i),
            _company_held(i),
            anonymise_into=s.anon_invoices,
            anonymiser=_anon_invoices,
        ),
        Target(
            "customer_basic",
            k,
            _company_rows(k),
            _company_held(k),
            anonymise_into=s.anon_contracts,
            anonymiser=_anon_contracts,
        ),
        Target("customer_basic", ca, _former_customer_activity, _subject_held(ca)),
        Target("customer_basic", cc, _former_customer_contacts, _subject_held(cc)),
        Target("customer_basic", cr, _crm_company_of_retired_customer, None),
        Target(
            "customer_basic", q, _quarantined_of_retired_customer, lambda d: _quarantine_held(d)
        ),
        Target(
            "customer_basic",
            c,
            _company_rows(c),
            _company_held(c),
            anonymise_into=s.anon_customers,
            anonymiser=_anon_customers,
        ),
        # profile_after_closure: password hashes and interests go soon after the account closes.
        Target(
            "profile_after_closure",
            u,
            lambda d: sa.and_(
                u.c.closed_at < d.before_end_of("profile_after_closure"),
                sa.or_(u.c.password_hash.is_not(None), u.c.interests.is_not(None)),
            ),
            _subject_held(u),
            action="null_columns",
            null_columns=("password_hash", "interests"),
        ),
        # marketing_after_opt_out: marketing history goes; a keyed-hash suppression entry stays.
        Target(
            "marketing_after_opt_out",
            ca,
            lambda d: sa.and_(
                marketing_rows, ca.c.subject_id.in_(marketing_retiring_subject_ids(d))
            ),
            _subject_held(ca),
        ),
        Target("prospect_inactive", ca, _activities_of_inactive_prospects, _subject_held(ca)),
        Target(
            "prospect_inactive",
            cc,
            lambda d: cc.c.crm_contact_id.in_(inactive_prospect_contact_ids(d)),
            _subject_held(cc),
            anonymise_into=s.anon_prospects,
            anonymiser=_anon_prospects,
        ),
        Target("prospect_inactive", cr, _crm_company_unlinked, None),
        Target(
            "web_logs_raw",
            s.web_access,
            lambda d: s.web_access.c.requested_at < d.before_end_of("web_logs_raw"),
            None,
            # Anonymised when each file was loaded (warehouse.rollups); before deleting anything
            # the sweep rolls up any file with expired lines that lacks its roll-up.
            chunk_by=s.web_access.c.requested_at,
        ),
        Target(
            "auth_logs_raw",
            a,
            lambda d: a.c.occurred_at < d.before_end_of("auth_logs_raw"),
            _subject_held(a),
            anonymise_into=s.anon_auth_events,
            anonymiser=_anon_auth,
            chunk_by=a.c.occurred_at,
        ),
        Target(
            "quarantine_raw",
            q,
            lambda d: q.c.quarantined_at < d.before_end_of("quarantine_raw"),
            None,
        ),
    ]
    return {(t.rule_id, t.table.name): t for t in targets}


def _generic_target(rule_id: str, trigger: RetentionTrigger, table: sa.Table) -> Target | None:
    """A target from the model alone: the six-year rule by company key, an event-time rule by
    the table's time column."""
    spec = personal_model.TABLES[f"{table.schema}.{table.name}"]
    if trigger == RetentionTrigger.CEASED_CUSTOMER and spec.company_column is not None:
        return Target(rule_id, table, _company_rows(table), _company_held(table))
    if trigger == RetentionTrigger.EVENT_TIME and spec.time_column is not None:
        column = table.c[spec.time_column]
        return Target(rule_id, table, lambda d: column < d.before_end_of(rule_id), None)
    return None


def targets(notice: Notice | None = None) -> list[Target]:
    """Every (rule, table) sweep target, in execution order: the policy's rules in order, each
    rule's tables in the order it lists them (children before the rows their predicates join
    through: payments before invoices, CRM rows before the portal users that mark a customer)."""
    notice = notice or load_notice()
    special = _special_targets()
    tables = personal_model.personal_tables()
    found = []
    for rule in notice.retention_rules:
        for name in rule.tables:
            target = special.get((rule.id, name))
            if target is None and f"personal.{name}" in tables:
                target = _generic_target(rule.id, rule.trigger, tables[f"personal.{name}"])
            if target is None:
                raise ValueError(f"retention rule {rule.id} names {name}, which no sweep reaches")
            found.append(target)
    return found


def check_against_policy(notice: Notice) -> None:
    """The personal-data model covers every personal table and column, gives each a rule or a
    reason, and agrees with the policy's rules; every (rule, table) has a sweep target."""
    problems = personal_model.uncovered(notice.retention_rules)
    if problems:
        raise ValueError(f"the personal-data model and the policy disagree: {problems}")
    targets(notice)

"""The personal-data model: every personal-zone table declared once (docs/DESIGN.md section 3a).

For each table: the notice category of every column (most by reference to the data-map column it
is loaded from, so the two cannot drift), how a row reaches its data subject and its company (by
key, even when the parent row is missing or quarantined), the retention rules that sweep it, and
what access, erasure, rectification, restriction and breach assessment do to it. Everything that
must know what a personal table means reads it from here:

- retention (`retention.rules`): the six-year rule reaches every table with a company key or a
  subject, and `check_against_policy` fails when a table has no rule and no stated reason;
- access and erasure (`requests.handlers`): the requester's rows of every linked table;
- rectification: the columns a correction may change;
- breach assessment (`breach`): categories, subject paths, free text;
- the known-identifier scan of the validation gate: names, emails, usernames, phones;
- the evidence (`ccg_pipeline.oracles`): every table is checked, whatever the sweep selects.

Quarantined records are reached through the keys ingest reads from them (`QUARANTINE_LINKS`), and
the files the pipeline writes with personal data are listed in `PERSONAL_FILES`.

Adding a personal table is one entry in `TABLES` (and its rule ids in policy/notice.yaml); a test
fails for any personal-zone table or column that has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from ccg_pipeline.policy import DataMap
from ccg_pipeline.warehouse import schema as s


@dataclass(frozen=True)
class From:
    """The data-map column a warehouse column is loaded from: its category is the data map's."""

    source: str
    column: str


# The CRM's marketing-consent vocabulary (`crm_activities.activity_type`).
OPT_OUT_TYPES = ("MARKETING_OPT_OUT", "MARKETING_CONSENT_WITHDRAWN", "MAILING_LIST_UNSUBSCRIBE")
CONSENT_TYPES = ("MARKETING_CONSENT_GRANTED", "MAILING_LIST_SUBSCRIBE")

# quarantine.raw_record: the whole rejected record, so every category of its source.
RECORD_SOURCE = "record_source"

ColumnTag = From | str | None  # a data-map column, a notice category id, or not personal data
SubjectPaths = Callable[[sa.Subquery], list[sa.Select]]


class Erasure(StrEnum):
    """What an erasure request does to a table's rows of the requester (N-RIGHTS)."""

    DELETE = "delete"
    # Contact, identity, financial and transaction data of a customer are kept for tax (N-RET):
    # restricted by the erasure's hold, deleted by retention when the company is due.
    TAX_RECORD = "tax_record"
    # A customer contact's login: profile columns nulled while the company is kept for tax,
    # the row deleted otherwise.
    PROFILE_UNLESS_TAX = "profile_unless_tax"
    # Deleted when the request closes (the request's own data).
    WITH_THE_REQUEST = "with_the_request"
    # Rows reach no subject (keys of deleted rows, minimised logs): nothing to erase.
    NOT_LINKED = "not_linked"


@dataclass(frozen=True)
class PersonalTable:
    """One personal-zone table, declared once (docs/DESIGN.md section 3a)."""

    columns: Mapping[str, ColumnTag]
    # Column `--since` filters on: when the row was last written or the event happened.
    time_column: str | None
    # How rows reach data subjects, in words for the report, and as SQL (None: they do not).
    reach: str
    # What retention rules sweep it (policy/notice.yaml), or why none needs to.
    retention: tuple[str, ...]
    erasure: Erasure
    kept_because: str | None = None
    subjects: SubjectPaths | None = None
    # The requester's rows, for access and erasure (None: the rows reach nobody by key).
    rows_of: RowsOf | None = None
    # The portal company key, held on the row itself so the company's retirement reaches it
    # even when the company row (or another parent) is missing or quarantined.
    company_column: str | None = None
    # Columns a rectification may change.
    rectifiable: tuple[str, ...] = ()
    # Identifiers the known-identifier scan indexes: a column, or columns joined by a space.
    identifiers: tuple[str | tuple[str, ...], ...] = ()
    phones: tuple[str, ...] = ()
    # Free text the identifier detectors read (identifiers the columns' tags do not predict).
    free_text: tuple[str, ...] = ()
    # Network prefix column, counted when subjects cannot be identified from the rows.
    address_column: str | None = None

    @property
    def restriction(self) -> str:
        """What a restriction (or an erasure's tax hold) does: linked rows are kept and left out
        of every processing but storage; unlinked rows are untouched."""
        return "held" if self.rows_of is not None or self.company_column else "not linked"


@dataclass(frozen=True)
class Requester:
    """The person a request is about, as the personal zone knows them."""

    subject_ids: list[int]
    subject_key: str
    email: str

    def user_ids(self) -> sa.Select:
        u = s.portal_users
        return sa.select(u.c.user_id).where(u.c.subject_id.in_(self.subject_ids))

    def company_ids(self) -> sa.Select:
        u = s.portal_users
        return sa.select(u.c.company_id).where(u.c.subject_id.in_(self.subject_ids))


RowsOf = Callable[[sa.Table, Requester], sa.ColumnElement[bool]]


def by_subject_id(table: sa.Table, who: Requester) -> sa.ColumnElement[bool]:
    return table.c.subject_id.in_(who.subject_ids)


def by_company_of_user(table: sa.Table, who: Requester) -> sa.ColumnElement[bool]:
    return table.c.company_id.in_(who.company_ids())


def by_ordering_user(table: sa.Table, who: Requester) -> sa.ColumnElement[bool]:
    return table.c.user_id.in_(who.user_ids())


def by_key_or_text(table: sa.Table, who: Requester) -> sa.ColumnElement[bool]:
    """Quarantined records: by the subject key read from the record, or the address in its text
    (a record whose email field was the broken one)."""
    return sa.or_(
        table.c.subject_key == who.subject_key,
        sa.func.lower(table.c.raw_record).contains(who.email, autoescape=True),
    )


def by_request(table: sa.Table, who: Requester) -> sa.ColumnElement[bool]:
    r = s.subject_requests
    return table.c.request_id.in_(
        sa.select(r.c.request_id).where(r.c.subject_key == who.subject_key)
    )


def _pu() -> sa.Table:
    return s.portal_users


def _users_of_companies(company_ids: sa.Select) -> sa.Select:
    return sa.select(_pu().c.subject_id).where(_pu().c.company_id.in_(company_ids))


def _direct(src: sa.Subquery) -> list[sa.Select]:
    return [sa.select(src.c.subject_id)]


def _via_company(src: sa.Subquery) -> list[sa.Select]:
    return [_users_of_companies(sa.select(src.c.company_id))]


def _orders(src: sa.Subquery) -> list[sa.Select]:
    by_user = sa.select(_pu().c.subject_id).where(_pu().c.user_id.in_(sa.select(src.c.user_id)))
    return [*_via_company(src), by_user]


def _payments(src: sa.Subquery) -> list[sa.Select]:
    inv = s.invoices
    companies = sa.select(inv.c.company_id).where(inv.c.invoice_id.in_(sa.select(src.c.invoice_id)))
    return [_users_of_companies(companies), *_via_company(src)]


def _crm_companies(src: sa.Subquery) -> list[sa.Select]:
    contacts = s.crm_contacts
    by_contact = sa.select(contacts.c.subject_id).where(
        contacts.c.company_name.in_(sa.select(src.c.name))
    )
    portal_companies = sa.select(s.companies.c.company_id).where(
        s.companies.c.name.in_(sa.select(src.c.name))
    )
    return [by_contact, _users_of_companies(portal_companies)]


def _crm_activities(src: sa.Subquery) -> list[sa.Select]:
    contacts = s.crm_contacts
    by_contact = sa.select(contacts.c.subject_id).where(
        contacts.c.crm_contact_id.in_(sa.select(src.c.crm_contact_id))
    )
    return [*_direct(src), by_contact]


def _auth_events(src: sa.Subquery) -> list[sa.Select]:
    pu = _pu()
    return [
        *_direct(src),
        sa.select(pu.c.subject_id).where(pu.c.user_id.in_(sa.select(src.c.user_id))),
        sa.select(pu.c.subject_id).where(pu.c.username.in_(sa.select(src.c.username))),
    ]


def _quarantine(src: sa.Subquery) -> list[sa.Select]:
    subj = s.subjects
    by_key = sa.select(subj.c.subject_id).where(
        subj.c.subject_key.in_(sa.select(src.c.subject_key))
    )
    return [by_key, *_via_company(src)]


def _worklist(src: sa.Subquery) -> list[sa.Select]:
    listed = sa.select(src.c.entity_id)
    return [
        _users_of_companies(listed.where(src.c.entity == "company")),
        sa.select(s.subjects.c.subject_id).where(
            s.subjects.c.subject_id.in_(listed.where(src.c.entity == "subject"))
        ),
    ]


def _request_payloads(src: sa.Subquery) -> list[sa.Select]:
    requests = s.subject_requests
    keys = sa.select(requests.c.subject_key).where(
        requests.c.request_id.in_(sa.select(src.c.request_id))
    )
    return [sa.select(s.subjects.c.subject_id).where(s.subjects.c.subject_key.in_(keys))]


_COMPANY = "portal.companies"
_USER = "portal.users"
_CONTACT = "crm.contacts"
_ACTIVITY = "crm.activities"
_WEB = WEB_LOG_SOURCE = "logs.web_access"
_AUTH = "logs.auth"

TABLES: dict[str, PersonalTable] = {
    "personal.subjects": PersonalTable(
        columns={
            "subject_id": None,
            "email_norm": From(_USER, "email"),
            "subject_key": "identity",  # a keyed pseudonym: "a similar identifier" (N-CAT)
            "first_seen_at": None,
            "updated_at": None,
        },
        time_column="updated_at",
        reach="subject id",
        retention=("orphaned_subjects",),
        erasure=Erasure.PROFILE_UNLESS_TAX,
        rows_of=by_subject_id,
        identifiers=("email_norm",),
        subjects=_direct,
    ),
    "personal.companies": PersonalTable(
        columns={
            "company_id": From(_COMPANY, "id"),
            "name": From(_COMPANY, "name"),
            "registration_number": From(_COMPANY, "company_number"),
            "vat_number": From(_COMPANY, "vat_number"),
            "country": From(_COMPANY, "country_code"),
            "sector": From(_COMPANY, "sector"),
            "employees": From(_COMPANY, "employee_count"),
            "annual_revenue_gbp": From(_COMPANY, "annual_revenue"),
            "billing_address": From(_COMPANY, "address_line"),
            "postcode": From(_COMPANY, "postcode"),
            "city": From(_COMPANY, "city"),
            "created_at": From(_COMPANY, "created_at"),
            "closed_at": From(_COMPANY, "closed_at"),
            "updated_at": From(_COMPANY, "updated_at"),
        },
        time_column="updated_at",
        reach="company -> its portal users",
        retention=("customer_basic",),
        erasure=Erasure.TAX_RECORD,
        rows_of=by_company_of_user,
        company_column="company_id",
        identifiers=("name",),
        subjects=_via_company,
    ),
    "personal.portal_users": PersonalTable(
        columns={
            "user_id": From(_USER, "id"),
            "company_id": From(_USER, "company_id"),
            "subject_id": None,
            "email": From(_USER, "email"),
            "username": From(_USER, "username"),
            "first_name": From(_USER, "first_name"),
            "last_name": From(_USER, "last_name"),
            "job_title": From(_USER, "job_title"),
            "phone": From(_USER, "phone"),
            "password_hash": From(_USER, "password_hash"),
            "interests": From(_USER, "interests"),
            "time_zone": From(_USER, "timezone"),
            "created_at": From(_USER, "created_at"),
            "closed_at": From(_USER, "closed_at"),
            "last_login_at": From(_USER, "last_login_at"),
            "updated_at": From(_USER, "updated_at"),
        },
        time_column="updated_at",
        reach="subject id",
        retention=("customer_basic", "profile_after_closure"),
        erasure=Erasure.PROFILE_UNLESS_TAX,
        rows_of=by_subject_id,
        company_column="company_id",
        rectifiable=("first_name", "last_name", "phone", "job_title"),
        identifiers=(("first_name", "last_name"), "email", "username"),
        phones=("phone",),
        subjects=_direct,
    ),
    "personal.contracts": PersonalTable(
        columns={
            "contract_id": From("portal.contracts", "id"),
            "company_id": From("portal.contracts", "company_id"),
            "licence_type": From("portal.contracts", "licence_type"),
            "service": From("portal.contracts", "service"),
            "starts_on": From("portal.contracts", "start_date"),
            "ends_on": From("portal.contracts", "end_date"),
            "annual_fee_minor": From("portal.contracts", "annual_fee"),
            "updated_at": From("portal.contracts", "updated_at"),
        },
        time_column="updated_at",
        reach="company -> its portal users",
        retention=("customer_basic",),
        erasure=Erasure.TAX_RECORD,
        rows_of=by_company_of_user,
        company_column="company_id",
        subjects=_via_company,
    ),
    "personal.orders": PersonalTable(
        columns={
            "order_id": From("portal.orders", "id"),
            "company_id": From("portal.orders", "company_id"),
            "user_id": From("portal.orders", "user_id"),
            "service": From("portal.orders", "service"),
            "ordered_at": From("portal.orders", "ordered_at"),
            "amount_minor": From("portal.orders", "amount"),
            "updated_at": From("portal.orders", "updated_at"),
        },
        time_column="updated_at",
        reach="company -> its portal users, and the ordering user",
        retention=("customer_basic",),
        erasure=Erasure.TAX_RECORD,
        rows_of=by_ordering_user,
        company_column="company_id",
        subjects=_orders,
    ),
    "personal.invoices": PersonalTable(
        columns={
            "invoice_id": From("portal.invoices", "id"),
            "company_id": From("portal.invoices", "company_id"),
            "order_id": From("portal.invoices", "order_id"),
            "invoice_number": From("portal.invoices", "invoice_number"),
            "issued_on": From("portal.invoices", "issued_on"),
            "due_on": From("portal.invoices", "due_on"),
            "amount_minor": From("portal.invoices", "amount"),
            "vat_minor": From("portal.invoices", "vat"),
            "status": From("portal.invoices", "status"),
            "updated_at": From("portal.invoices", "updated_at"),
        },
        time_column="updated_at",
        reach="company -> its portal users",
        retention=("customer_basic",),
        erasure=Erasure.TAX_RECORD,
        rows_of=by_company_of_user,
        company_column="company_id",
        subjects=_via_company,
    ),
    "personal.payments": PersonalTable(
        columns={
            "payment_id": From("portal.payments", "id"),
            "invoice_id": From("portal.payments", "invoice_id"),
            "company_id": None,  # the invoice's company, looked up in the portal at ingest
            "paid_at": From("portal.payments", "paid_at"),
            "amount_minor": From("portal.payments", "amount"),
            "method": From("portal.payments", "method"),
            "card_masked": From("portal.payments", "card_number_masked"),
            "bank_account_masked": From("portal.payments", "bank_account_masked"),
            "updated_at": From("portal.payments", "updated_at"),
        },
        time_column="updated_at",
        reach="company (or invoice -> company) -> its portal users",
        retention=("customer_basic",),
        erasure=Erasure.TAX_RECORD,
        rows_of=by_company_of_user,
        company_column="company_id",
        subjects=_payments,
    ),
    "personal.crm_companies": PersonalTable(
        columns={
            "crm_company_id": From("crm.companies", "Record ID"),
            "name": From("crm.companies", "Company Name"),
            "domain": From("crm.companies", "Company Domain Name"),
            "country": From("crm.companies", "Country/Region"),
            "industry": From("crm.companies", "Industry"),
            "employees": From("crm.companies", "Number of Employees"),
            "annual_revenue_gbp": From("crm.companies", "Annual Revenue"),
            "created_at": From("crm.companies", "Create Date"),
            "export_date": None,
        },
        time_column="export_date",
        reach="company name -> its CRM contacts and portal users",
        retention=("customer_basic", "prospect_inactive"),
        erasure=Erasure.NOT_LINKED,
        identifiers=("name",),
        subjects=_crm_companies,
    ),
    "personal.crm_contacts": PersonalTable(
        columns={
            "crm_contact_id": From(_CONTACT, "Record ID"),
            "subject_id": None,
            "email": From(_CONTACT, "Email"),
            "first_name": From(_CONTACT, "First Name"),
            "last_name": From(_CONTACT, "Last Name"),
            "phone": From(_CONTACT, "Phone Number"),
            "job_title": From(_CONTACT, "Job Title"),
            "company_name": From(_CONTACT, "Company Name"),
            "country": From(_CONTACT, "Country/Region"),
            "lifecycle_stage": From(_CONTACT, "Lifecycle Stage"),
            "marketing_status": From(_CONTACT, "Marketing Contact Status"),
            "created_at": From(_CONTACT, "Create Date"),
            "last_activity_at": From(_CONTACT, "Last Activity Date"),
            "export_date": None,
        },
        time_column="export_date",
        reach="subject id",
        retention=("customer_basic", "prospect_inactive"),
        erasure=Erasure.DELETE,
        rows_of=by_subject_id,
        rectifiable=("first_name", "last_name", "phone", "job_title", "company_name"),
        identifiers=(("first_name", "last_name"), "email", "company_name"),
        phones=("phone",),
        subjects=_direct,
    ),
    "personal.crm_activities": PersonalTable(
        columns={
            "activity_id": From(_ACTIVITY, "Activity ID"),
            "crm_contact_id": From(_ACTIVITY, "Contact ID"),
            "subject_id": None,
            "activity_type": From(_ACTIVITY, "Activity Type"),
            "occurred_at": From(_ACTIVITY, "Activity Date"),
            "channel": From(_ACTIVITY, "Channel"),
            "subject_line": From(_ACTIVITY, "Subject"),
            "body": From(_ACTIVITY, "Body"),
            "export_date": None,
        },
        time_column="occurred_at",
        reach="subject id, or CRM contact -> subject",
        retention=("customer_basic", "marketing_after_opt_out", "prospect_inactive"),
        erasure=Erasure.DELETE,
        rows_of=by_subject_id,
        subjects=_crm_activities,
        free_text=("subject_line", "body"),
    ),
    "personal.web_access": PersonalTable(
        columns={
            "source_file": None,
            "line_no": None,
            "requested_at": From(_WEB, "time"),
            "ip_prefix": From(_WEB, "ip"),
            "method": From(_WEB, "method"),
            "url": From(_WEB, "url"),
            "site_section": From(_WEB, "url"),  # derived from the URL
            "protocol": From(_WEB, "protocol"),
            "status": From(_WEB, "status"),
            "bytes_sent": From(_WEB, "bytes"),
            "referrer": From(_WEB, "referrer"),
            "user_agent": From(_WEB, "user_agent"),
            "browser_family": From(_WEB, "user_agent"),  # derived from the agent string
            "visitor_region": From(_WEB, "ip"),  # derived from the address
        },
        time_column="requested_at",
        reach="none: web requests carry no subject id",
        retention=("web_logs_raw",),
        erasure=Erasure.NOT_LINKED,
        free_text=("url", "referrer"),
        address_column="ip_prefix",
    ),
    "personal.auth_events": PersonalTable(
        columns={
            "source_file": None,
            "line_no": None,
            "occurred_at": From(_AUTH, "ts"),
            "event": From(_AUTH, "event"),
            "outcome": From(_AUTH, "outcome"),
            "username": From(_AUTH, "username"),
            "user_id": From(_AUTH, "user_id"),
            "subject_id": None,
            "ip_prefix": From(_AUTH, "ip"),
            "user_agent": From(_AUTH, "user_agent"),
        },
        time_column="occurred_at",
        reach="subject id, or user id / username -> portal user",
        retention=("auth_logs_raw",),
        erasure=Erasure.DELETE,
        rows_of=by_subject_id,
        identifiers=("username",),
        subjects=_auth_events,
        free_text=("username",),
        address_column="ip_prefix",
    ),
    "personal.quarantine": PersonalTable(
        columns={
            "quarantine_id": None,
            "source": None,
            "source_ref": None,
            "record_ref": None,
            "reason": None,
            "raw_record": RECORD_SOURCE,
            "run_id": None,
            "quarantined_at": None,
            "subject_key": "identity",  # a keyed pseudonym of the record's email
            "company_id": None,
        },
        time_column="quarantined_at",
        subjects=_quarantine,
        reach="subject key and company read from the record; email addresses and phone numbers "
        "in the raw records",
        retention=("customer_basic", "quarantine_raw"),
        erasure=Erasure.DELETE,
        rows_of=by_key_or_text,
        company_column="company_id",
        free_text=("raw_record",),
    ),
    "personal.retention_worklist": PersonalTable(
        columns={"rule_id": None, "entity": None, "entity_id": None, "run_id": None},
        time_column=None,
        reach="listed company -> its portal users, or listed subject id",
        retention=(),
        kept_because="ids of companies and people a sweep is retiring, removed with their last "
        "row (retention.sweep._finish)",
        erasure=Erasure.NOT_LINKED,
        subjects=_worklist,
    ),
    "personal.retired_keys": PersonalTable(
        columns={"table_name": None, "key": None, "rule_id": None, "retired_on": None},
        time_column="retired_on",
        reach="none: keys of rows already deleted",
        retention=(),
        kept_because="source keys of rows already deleted, so ingest does not load them again; "
        "no value of the row is kept",
        erasure=Erasure.NOT_LINKED,
    ),
    "personal.request_payloads": PersonalTable(
        columns={
            "request_id": None,
            "email": From(_USER, "email"),
            # Corrections to names, phone numbers and the like, and the export's name.
            "payload": "identity",
        },
        time_column=None,
        reach="request -> keyed pseudonym -> subject",
        retention=(),
        kept_because="deleted when its request is completed or rejected (requests.process_requests)",
        erasure=Erasure.WITH_THE_REQUEST,
        rows_of=by_request,
        subjects=_request_payloads,
        free_text=("payload",),
    ),
}


def personal_zone_columns(metadata: sa.MetaData = s.metadata) -> dict[str, list[str]]:
    """Every personal-zone table (`personal.x`) and its columns, from the table definitions."""
    return {
        f"{t.schema}.{t.name}": [c.name for c in t.columns]
        for t in metadata.sorted_tables
        if t.schema == s.PERSONAL
    }


def unmapped_columns(metadata: sa.MetaData = s.metadata) -> list[str]:
    """Personal-zone columns `TABLES` does not map (a new column must be given a category)."""
    return unmapped(personal_zone_columns(metadata))


def unmapped(columns_by_table: Mapping[str, Iterable[str]]) -> list[str]:
    """`zone.table.column` for every column of `{zone.table: columns}` that `TABLES` lacks:
    for the table definitions here, and for the live database in the evidence step (N-CAT)."""
    missing = []
    for table, columns in columns_by_table.items():
        spec = TABLES.get(table)
        missing += [f"{table}.{c}" for c in columns if spec is None or c not in spec.columns]
    return missing


def category_of(tag: ColumnTag, data_map: DataMap) -> str | None:
    """The notice category of a column tag (`RECORD_SOURCE` is resolved per record)."""
    if isinstance(tag, From):
        return data_map.sources[tag.source].columns[tag.column].category
    return None if tag == RECORD_SOURCE else tag


def personal_tables() -> dict[str, sa.Table]:
    """`zone.table` -> table, for every table the model declares."""
    by_name = {f"{t.schema}.{t.name}": t for t in s.metadata.sorted_tables}
    return {name: by_name[name] for name in TABLES}


def tables_under(rule_id: str) -> list[str]:
    """The bare names of the tables a retention rule sweeps, in declaration order."""
    return [name.split(".", 1)[1] for name, spec in TABLES.items() if rule_id in spec.retention]


def uncovered(notice_rules: Iterable[Any], metadata: sa.MetaData = s.metadata) -> list[str]:
    """What the model leaves open: a personal-zone table it does not declare, a column without a
    category, a table with neither a retention rule nor a reason, a rule id the policy does not
    have (`orphaned_subjects` is the sweep's own clean-up), or a rule the policy gives a table the
    model does not declare under it."""
    problems = unmapped(personal_zone_columns(metadata))
    rules = {r.id: set(r.tables) for r in notice_rules}
    for name, spec in TABLES.items():
        if not spec.retention and not spec.kept_because:
            problems.append(f"{name}: no retention rule and no reason it needs none")
        for rule in spec.retention:
            if rule != "orphaned_subjects" and rule not in rules:
                problems.append(f"{name}: retention rule {rule!r} is not in the policy")
    declared = {(rule, t) for rule, tables in rules.items() for t in tables}
    modelled = {
        (rule, n.split(".", 1)[1])
        for n, spec in TABLES.items()
        for rule in spec.retention
        if rule != "orphaned_subjects"
    }
    for rule, table in sorted(declared ^ modelled):
        side = "the policy only" if (rule, table) in declared else "the model only"
        problems.append(f"{rule} on {table}: in {side}")
    return problems


@dataclass(frozen=True)
class RawLink:
    """Fields of a source's raw record that name its subject's email and its company."""

    email: str | None = None
    company: str | None = None

    def read(self, raw: Any) -> tuple[str | None, int | None]:
        if not isinstance(raw, Mapping):
            return None, None
        email = raw.get(self.email) if self.email else None
        company = raw.get(self.company) if self.company else None
        try:
            company_id = int(str(company).strip()) if company not in (None, "") else None
        except ValueError:
            company_id = None
        return (str(email) if email else None), company_id


# How a quarantined raw record reaches its subject and company, per source. Web-log lines reach
# nobody; auth lines and CRM activities reach their person through other rows, so their
# quarantined copies go after the quarantine period (rule quarantine_raw).
QUARANTINE_LINKS: dict[str, RawLink] = {
    "portal.companies": RawLink(company="id"),
    "portal.users": RawLink(email="email", company="company_id"),
    "portal.contracts": RawLink(company="company_id"),
    "portal.orders": RawLink(company="company_id"),
    "portal.invoices": RawLink(company="company_id"),
    "portal.payments": RawLink(company="company_id"),
    "crm.contacts": RawLink(email="Email"),
}


@dataclass(frozen=True)
class PersonalFiles:
    """Files the pipeline writes with personal data: where, whose, and how long they stay."""

    folder: str  # under CCG_HOME
    holds: str
    kept: str


# Every file with personal data is written owner-only (0600, folders 0700).
PERSONAL_FILES: tuple[PersonalFiles, ...] = (
    PersonalFiles(
        "exports/requests",
        "an access request's copy of the requester's data",
        "until the requester erases (an erasure deletes their earlier exports)",
    ),
    PersonalFiles(
        "requests/inbox",
        "request files as dropped (email, corrections)",
        "until intake: accepted files become id-only receipts in processed/; rejected files stay "
        "in rejected/ for an engineer to fix and replay",
    ),
    PersonalFiles(
        "outbox/crm",
        "CRM record ids of an erased person (no name or email)",
        "until the CRM export no longer holds the person",
    ),
    PersonalFiles(
        "exports/marketing",
        "the current marketing list (emails of people who may be marketed to)",
        "replaced by each run; an erasure removes the person's lines at once",
    ),
)

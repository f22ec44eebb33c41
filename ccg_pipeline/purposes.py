"""Purpose limitation (N-BASIS): every processing declares its purpose, and reads only what that
purpose allows.

A processing is anything that uses personal data for a purpose: a published statistics table,
the marketing list, a request handler, the retention sweep, the evidence, the breach report.
Each declares, next to its code, a `Processing`: the notice purpose it serves (a processing
activity id of `policy/notice.yaml`), the lawful basis it relies on (one of that purpose's), and
the notice categories it reads. Two checks hold it to that:

- **The declaration** (`check_declaration`, run when the policy is read by `ccg ropa`, the tests
  and the evidence): the purpose exists, the basis is one of the purpose's, and every declared
  category is one the purpose lists.
- **The behaviour** (`scope`): while a processing runs, every SQL statement on the warehouse is
  inspected before it executes. The personal-zone columns it references are mapped to
  categories through the personal-data model (and so the data map); a category outside the
  declaration or the purpose stops the statement with `PurposeViolation`, naming the
  processing, the purpose and the category (column names only, never values). A processing on
  legitimate interest that reads rows linked to people must leave out objectors in the same
  statement (reference `ops.processing_objections`); one on consent must check consent in force
  (the CRM's consent events and `ops.marketing_suppression`).

What each run read is kept in `ops.purpose_checks` (column names and counts), which the evidence
judges again from the data map, independently of this module's mapping.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from ccg_pipeline.personal_model import CONSENT_TYPES, TABLES, category_of
from ccg_pipeline.policy import DataMap, Notice, load_data_map, load_notice
from ccg_pipeline.policy.models import LawfulBasis
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import write_transaction

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# Matching a person against objections and holds reads their keyed pseudonym: that is honouring
# their rights (N-RIGHTS), not using their identity for the processing's purpose.
ALL_CATEGORIES = (
    "identity",
    "contact",
    "financial",
    "transaction",
    "profile",
    "marketing",
    "technical",
    "usage",
)
RIGHTS_KEYS = frozenset({"personal.subjects.subject_key"})
# Execution option of a textual statement: the `zone.table.column` names it reads.
TEXT_READS = "personal_columns_read"
OBJECTIONS_TABLE = f"{s.OPS}.{s.processing_objections.name}"
SUPPRESSION_TABLE = f"{s.OPS}.{s.marketing_suppression.name}"
CONSENT_EVENTS = f"{s.PERSONAL}.{s.crm_activities.name}.activity_type"


class Kind(StrEnum):
    STATISTICS = "published statistics table"
    MARKETING = "marketing list"
    REQUEST = "subject-request handler"
    STAGE = "pipeline stage"
    EXPORT = "export"


@dataclass(frozen=True)
class Processing:
    """One use of personal data, declared next to the code that does it."""

    id: str
    purpose: str  # a processing activity id of policy/notice.yaml
    basis: LawfulBasis
    kind: Kind
    categories: frozenset[str]
    description: str
    # Columns read only to establish the basis or honour a refusal (a consent or opt-out on
    # record, a purchase for the soft opt-in): not used for the purpose, so not judged against
    # its categories, but declared one by one and listed in the record of processing.
    basis_evidence: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NotAProcessing:
    """A pipeline step that uses no personal data for a purpose of its own, and why."""

    reason: str


class PurposeViolation(RuntimeError):
    """A processing read beyond its purpose or its declaration. The message names the
    processing, the purpose, the category and the columns; never a value."""

    def __init__(self, processing: Processing, problem: str) -> None:
        self.processing, self.problem = processing, problem
        self.scope: Scope | None = None  # what the run had read when it was stopped
        super().__init__(
            f"processing {processing.id!r} (purpose {processing.purpose!r}): {problem}"
        )


_REGISTRY: dict[str, Processing] = {}


def declare(
    id: str,
    *,
    purpose: str,
    basis: LawfulBasis | str,
    kind: Kind,
    categories: Iterable[str],
    description: str,
    basis_evidence: Iterable[str] = (),
) -> Processing:
    """Register a processing. Declared once: a second declaration of the same id is an error."""
    processing = Processing(
        id,
        purpose,
        LawfulBasis(basis),
        kind,
        frozenset(categories),
        description,
        frozenset(basis_evidence),
    )
    if id in _REGISTRY and _REGISTRY[id] != processing:
        raise ValueError(f"processing {id!r} is declared twice")
    _REGISTRY[id] = processing
    return processing


def forget(id: str) -> None:
    """Remove a declaration (tests that plant a processing clean up with this)."""
    _REGISTRY.pop(id, None)


def declare_obligation(id: str, purpose: str, description: str) -> Processing:
    """A pipeline stage on the legal obligation that may read every category: retention,
    accountability, breach handling (the notice's s.7, s.8 and s.9 purposes)."""
    return declare(
        id,
        purpose=purpose,
        basis=LawfulBasis.LEGAL_OBLIGATION,
        kind=Kind.STAGE,
        categories=ALL_CATEGORIES,
        description=description,
    )


def registered() -> dict[str, Processing]:
    """The declarations made so far (by the modules imported so far); `evidence.basis.declared`
    imports every declaring module first."""
    return dict(sorted(_REGISTRY.items()))


def purpose_of(step: Processing | NotAProcessing | tuple[Processing, ...]) -> Callable[[F], F]:
    """Mark a stage function a DAG task or a command calls with what it processes for: one
    processing, several (a stage that runs each table's or each request type's own), or none
    with the reason. `tests/dags/test_task_purposes.py` fails for a task that calls no marked stage."""

    def mark(function: F) -> F:
        function.__purpose__ = step  # type: ignore[attr-defined]
        return function

    return mark


# --- the declaration ----------------------------------------------------------------------


def check_declaration(
    processing: Processing, notice: Notice | None = None, data_map: DataMap | None = None
) -> list[str]:
    """What is wrong with a declaration against the notice (empty when nothing is)."""
    notice = notice or load_notice()
    purposes = {a.id: a for a in notice.processing_activities}
    activity = purposes.get(processing.purpose)
    if activity is None:
        return [f"purpose {processing.purpose!r} is not a processing activity of the notice"]
    problems = []
    if processing.basis not in activity.lawful_bases:
        bases = ", ".join(b.value for b in activity.lawful_bases)
        problems.append(f"basis {processing.basis.value!r} is not one of the purpose's ({bases})")
    known = {c.id for c in notice.categories}
    for category in sorted(processing.categories - set(activity.categories)):
        what = "is not a notice category" if category not in known else "is not listed"
        problems.append(f"reads category {category!r}, which {what} for the purpose")
    return problems


# --- the behaviour ------------------------------------------------------------------------


def column_categories(data_map: DataMap | None = None) -> dict[str, str]:
    """`zone.table.column` -> notice category, for every personal column of the model."""
    data_map = data_map or load_data_map()
    out = {}
    for table, spec in TABLES.items():
        for column, tag in spec.columns.items():
            category = category_of(tag, data_map)
            if category is not None:
                out[f"{table}.{column}"] = category
    return out


def referenced(statement: Any) -> tuple[set[str], set[str]]:
    """(`zone.table.column` names, `zone.table` names) a SQLAlchemy statement references,
    subqueries included; a whole-table select counts every column it selects."""
    columns: set[str] = set()
    tables: set[str] = set()

    def add(element: Any) -> None:
        for base in getattr(element, "base_columns", ()) or ():
            if isinstance(base, sa.Column) and isinstance(base.table, sa.Table):
                columns.add(f"{base.table.schema}.{base.table.name}.{base.name}")

    for element in visitors.iterate(statement):
        if isinstance(element, sa.Table):
            tables.add(f"{element.schema}.{element.name}")
        elif isinstance(element, sa.Select):
            for column in element.selected_columns:
                add(column)
        elif isinstance(element, ColumnElement):
            add(element)
    tables |= {c.rsplit(".", 1)[0] for c in columns}
    return columns, tables


@dataclass
class Scope:
    """One run of a processing: what it read, and any violation."""

    processing: Processing
    categories_by_column: dict[str, str]
    linked_tables: frozenset[str]
    columns: set[str] = field(default_factory=set)
    statements: int = 0

    @property
    def categories(self) -> set[str]:
        """The categories used for the purpose (basis evidence aside)."""
        used = self.columns - self.processing.basis_evidence
        return {self.categories_by_column[c] for c in used}

    def inspect(self, statement: Any, options: Mapping[str, Any]) -> None:
        try:
            self._inspect(statement, options)
        except PurposeViolation as violation:
            violation.scope = self
            raise

    def _inspect(self, statement: Any, options: Mapping[str, Any]) -> None:
        text = statement.text if isinstance(statement, sa.TextClause) else statement
        if isinstance(text, str):
            # Textual SQL cannot be parsed here: it states what it reads, or may not touch the
            # personal zone at all.
            stated = options.get(TEXT_READS)
            if stated is None:
                if f"{s.PERSONAL}." in text:
                    raise PurposeViolation(
                        self.processing,
                        "runs textual SQL on the personal zone without stating what it reads",
                    )
                return
            columns = set(stated)
            tables = {c.rsplit(".", 1)[0] for c in columns}
        elif isinstance(statement, sa.sql.ClauseElement):
            columns, tables = referenced(statement)
        else:
            return
        personal = {c for c in columns if c in self.categories_by_column and c not in RIGHTS_KEYS}
        self.statements += 1
        self.columns |= personal
        self._check_categories(personal - self.processing.basis_evidence)
        if personal:
            self._check_exclusions(columns, tables)

    def _check_categories(self, personal: set[str]) -> None:
        p = self.processing
        outside = sorted({self.categories_by_column[c] for c in personal} - p.categories)
        for category in outside:
            named = sorted(c for c in personal if self.categories_by_column[c] == category)
            raise PurposeViolation(
                p,
                f"reads category {category!r} ({', '.join(named)}), which it does not declare "
                f"(declared: {', '.join(sorted(p.categories)) or 'none'})",
            )

    def _check_exclusions(self, columns: set[str], tables: set[str]) -> None:
        p = self.processing
        linked = tables & self.linked_tables
        if not linked:
            return
        if p.basis is LawfulBasis.LEGITIMATE_INTEREST and OBJECTIONS_TABLE not in tables:
            raise PurposeViolation(
                p,
                f"reads people's rows ({', '.join(sorted(linked))}) on legitimate interest "
                "without leaving out those who objected (ops.processing_objections)",
            )
        if p.basis is LawfulBasis.CONSENT and not (
            SUPPRESSION_TABLE in tables and CONSENT_EVENTS in columns
        ):
            raise PurposeViolation(
                p,
                f"reads people's rows ({', '.join(sorted(linked))}) on consent without "
                "checking consent in force (consent events and ops.marketing_suppression)",
            )


_CURRENT: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "ccg_processing_scope", default=None
)


def _people_linked_tables() -> frozenset[str]:
    """Personal tables whose rows reach a person (by subject or by company)."""
    return frozenset(
        name
        for name, spec in TABLES.items()
        if spec.rows_of is not None or spec.company_column is not None
    )


@event.listens_for(Engine, "before_execute")
def _guard(
    conn: Connection, statement: Any, multiparams: Any, params: Any, execution_options: Any
) -> None:
    current = _CURRENT.get()
    if current is not None:
        current.inspect(statement, execution_options)


@contextmanager
def scope(processing: Processing, data_map: DataMap | None = None) -> Iterator[Scope]:
    """Run `processing`: every statement executed inside is checked against its declaration
    and purpose before it runs. Scopes do not nest: the inner processing is the one judged."""
    current = Scope(processing, column_categories(data_map), _people_linked_tables())
    token = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)


def subjects_excluded(conn: Connection, processing: Processing, as_of: dt.date) -> int:
    """People a processing leaves out because of its basis: objectors (legitimate interest), or
    people without consent in force on `as_of` (consent); 0 for other bases."""
    subjects = s.subjects
    if processing.basis is LawfulBasis.LEGITIMATE_INTEREST:
        o = s.processing_objections
        query = sa.select(sa.func.count(sa.distinct(subjects.c.subject_id))).join(
            o, o.c.subject_key == subjects.c.subject_key
        )
        return int(conn.execute(query.where(o.c.scope == "legitimate_interest")).scalar_one())
    if processing.basis is LawfulBasis.CONSENT:
        a = s.crm_activities
        consented = sa.select(a.c.subject_id).where(
            a.c.subject_id.is_not(None),
            a.c.activity_type.in_(CONSENT_TYPES),
            a.c.occurred_at < dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()),
        )
        query = sa.select(sa.func.count()).where(subjects.c.subject_id.not_in(consented))
        return int(conn.execute(query).scalar_one())
    return 0


@contextmanager
def violations_recorded(engine: Engine, run_id: str, as_of: dt.date) -> Iterator[None]:
    """Record a `PurposeViolation` raised inside (after the caller's transaction rolled back),
    then let it fail the run."""
    try:
        yield
    except PurposeViolation as violation:
        record_violation(engine, violation, run_id, as_of)
        raise


@contextmanager
def judged(engine: Engine, processing: Processing, run_id: str, as_of: dt.date) -> Iterator[Scope]:
    """Run `processing` inside its scope, then keep what it read (or why it was stopped) in
    `ops.purpose_checks`, each in a transaction of its own."""
    with violations_recorded(engine, run_id, as_of):
        with scope(processing) as read:
            yield read
        with write_transaction(engine) as conn:
            record(conn, read, run_id=run_id, as_of=as_of)


def record_violation(
    engine: Engine, violation: PurposeViolation, run_id: str, as_of: dt.date
) -> None:
    """Keep a violation for the evidence in a transaction of its own (the run's rolled back)."""
    if violation.scope is not None:
        with write_transaction(engine) as conn:
            record(conn, violation.scope, run_id=run_id, as_of=as_of, violation=violation)
    log.error("%s", violation)


def record(
    conn: Connection,
    found: Scope,
    *,
    run_id: str,
    as_of: dt.date,
    violation: PurposeViolation | None = None,
) -> None:
    """Keep what one run of a processing read (names and counts only) for the evidence."""
    p = found.processing
    token = _CURRENT.set(None)  # bookkeeping, not the processing: its statements are not judged
    try:
        excluded = None if violation else subjects_excluded(conn, p, as_of)
        _write_check(conn, found, run_id, as_of, excluded, violation)
    finally:
        _CURRENT.reset(token)


def _write_check(
    conn: Connection,
    found: Scope,
    run_id: str,
    as_of: dt.date,
    excluded: int | None,
    violation: PurposeViolation | None,
) -> None:
    from ccg_pipeline.warehouse.sql import upsert_row

    p = found.processing
    upsert_row(
        conn,
        s.purpose_checks,
        {
            "run_id": run_id,
            "processing_id": p.id,
            "purpose": p.purpose,
            "basis": p.basis.value,
            "as_of": as_of,
            "statements": found.statements,
            "columns_read": ",".join(sorted(found.columns)),
            "subjects_excluded": excluded,
            "violation": violation.problem if violation else None,
            "checked_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        },
    )

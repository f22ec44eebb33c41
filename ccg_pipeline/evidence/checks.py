"""One check per notice clause the data can answer (docs/DESIGN.md section 2).

Each check reads the warehouse as of the date, decides pass or fail from figures it computes, and
returns the SQL behind those figures, so an auditor can rerun it. Figures are counts, dates and
ids; findings are sentences built from them. No check returns a value from the personal zone.

A check whose inputs are all empty and that found nothing wrong has nothing to judge: its result
is "no data" (`_nothing_to_judge`), never a vacuous pass. Anything wrong is a failure whatever
else is empty.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.config import Settings
from ccg_pipeline.evidence.report import ClauseResult
from ccg_pipeline.policy.models import Notice
from ccg_pipeline.retention import special
from ccg_pipeline.retention.deadlines import end_of_day
from ccg_pipeline.validation import release_audit
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import STREAM_CHUNK_ROWS, backend_of
from ccg_pipeline.warehouse.clause_status import NO_DATA_FIGURE
from ccg_pipeline.warehouse.sql import day_after

# The clauses no query can settle, and why: they are reviewed by people against the policy.
NOT_CHECKED = {
    "N-SRC": "Sources are a property of the collection channels; the data map records each "
    "source's origin (`ccg ropa`).",
    "N-SHARE": "Disclosures to recipients happen outside the warehouse; the recipients register "
    "is in the policy (`ccg ropa`).",
    "N-ANON": "Covered by N-AGG and the validation gate: only anonymised aggregates leave the "
    "personal zone.",
}


@dataclass
class CheckContext:
    conn: Connection
    settings: Settings
    notice: Notice
    as_of: dt.date
    run_id: str

    @property
    def as_of_end(self) -> dt.datetime:
        return end_of_day(self.as_of)

    def sql(self, query: sa.ClauseElement) -> str:
        """The query as text, with its parameters inlined, for the report."""
        return str(query.compile(dialect=self.conn.dialect, compile_kwargs={"literal_binds": True}))

    def scalar(self, query: sa.Select) -> Any:
        return self.conn.execute(query).scalar_one()


Check = Callable[[CheckContext], ClauseResult]


def _count(table: sa.Table | sa.Subquery, *where: sa.ColumnElement[bool]) -> sa.Select:
    return sa.select(sa.func.count()).select_from(table).where(*where)


def _nothing_to_judge(passed: bool, inputs: dict[str, int], figures: dict[str, Any]) -> bool:
    """No data: the check found nothing wrong and every input it judges is empty. The figure
    `no_data` then names those inputs with their counts (zeros), so the report says what was
    missing. A check that found something wrong fails, whatever else is empty."""
    if passed and not any(inputs.values()):
        figures[NO_DATA_FIGURE] = dict(inputs)
        return True
    return False


# --- N-RET --------------------------------------------------------------------------------------


def check_retention(ctx: CheckContext) -> ClauseResult:
    """No unheld row past its deadline, decided twice: by the sweep's own predicates per rule and
    table, and by the independent oracle (`ccg_pipeline.oracles`), which judges every row of the
    personal zone from first principles. Both must find none; a table one finds and the other
    does not is named as a disagreement."""
    from ccg_pipeline.oracles import judge_retention
    from ccg_pipeline.retention.rules import SweepDates, holds_in_force, targets
    from ccg_pipeline.retention.sweep import expired_unheld_query

    dates = SweepDates.for_date(ctx.notice, ctx.as_of, use_worklist=False)
    remaining: dict[str, int] = {}
    by_table: dict[str, int] = {}
    queries = {}
    for target in targets(ctx.notice):
        query = expired_unheld_query(target, dates)
        name = f"{target.rule_id} {target.name}"
        remaining[name] = ctx.scalar(query)
        by_table[target.name] = by_table.get(target.name, 0) + remaining[name]
        queries[name] = ctx.sql(query)
    holds = ctx.scalar(_count(s.legal_holds, holds_in_force(dates)))
    oracle = judge_retention(ctx.conn, ctx.notice, ctx.as_of)
    oracle_by_table = oracle.by_table()
    judged = sum(oracle.rows_judged.values())
    overdue = {k: v for k, v in remaining.items() if v}
    findings = [f"{n} row(s) past their deadline in {k}" for k, n in overdue.items()]
    findings += [
        f"oracle: {n} row(s) past their deadline under {rule} in {table}"
        for (rule, table), n in sorted(oracle.overdue.items())
    ]
    disagreements = sorted(
        table
        for table in set(by_table) | set(oracle_by_table)
        if bool(by_table.get(table)) != bool(oracle_by_table.get(table))
    )
    findings += [
        f"sweep and oracle disagree on {table}: sweep {by_table.get(table, 0)}, "
        f"oracle {oracle_by_table.get(table, 0)}"
        for table in disagreements
    ]
    figures = {
        "targets_checked": len(remaining),
        "expired_unheld_rows": sum(remaining.values()),
        "holds_in_force": holds,
        "expired_unheld_by_target": remaining,
        "oracle_rows_judged": judged,
        "oracle_tables_judged": len(oracle.rows_judged),
        "oracle_rows_past_deadline": oracle.total(),
        "oracle_by_rule_and_table": {f"{r} {t}": n for (r, t), n in oracle.overdue.items()},
        "oracle_companies_due": oracle.companies_due,
        "oracle_customer_contacts_unlinked": oracle.customer_contacts_unlinked,
        "disagreements": len(disagreements),
    }
    passed = not findings
    return ClauseResult(
        "N-RET",
        "Data is kept no longer than its retention period",
        passed=passed,
        figures=figures,
        queries=queries,
        findings=findings,
        no_data=_nothing_to_judge(
            passed, {"personal_zone_rows_judged_by_the_oracle": judged}, figures
        ),
    )


# --- N-AGG --------------------------------------------------------------------------------------


def _published_frames(ctx: CheckContext) -> dict[str, pd.DataFrame]:
    frames = {}
    for _build, table in s.PUBLISHED:
        result = ctx.conn.execute(sa.select(table))
        frames[table.name] = pd.DataFrame(
            result.fetchall(), columns=list(result.keys()), dtype=object
        )
    return frames


def _gate_audit(ctx: CheckContext) -> tuple[str | None, list[str]]:
    """The latest publication's run, and the tables whose release audit is missing or failed."""
    p, a = s.publications, s.release_audits
    run_id = ctx.conn.execute(
        sa.select(p.c.run_id).order_by(p.c.published_at.desc()).limit(1)
    ).scalar_one_or_none()
    if run_id is None:
        return None, []
    passed = set(
        ctx.conn.execute(
            sa.select(a.c.table_name).where(a.c.run_id == run_id, a.c.passed.is_(True))
        ).scalars()
    )
    return run_id, sorted(set(release_audit.STRUCTURE) - passed)


def check_aggregates(ctx: CheckContext) -> ClauseResult:
    """The published statistics, judged from the attacker's side: the release audit rerun on the
    published tables as analysts read them (not on the gate's staging copy), the smallest
    published count, the smallest profile class; and the gate's own audit of the publication."""
    settings = ctx.notice.settings
    spec, k = settings.perturbation, settings.k_anonymity
    smallest_allowed = spec.smallest_published_count
    smallest_count: dict[str, int | None] = {}
    queries = {}
    rows = 0
    for _build, table in s.PUBLISHED:
        rows += ctx.scalar(_count(table))
        counts = s.columns_of_kind(table, s.COUNT)
        if counts:
            parts = [
                sa.select(sa.func.min(table.c[c]).label("m")).where(table.c[c] > 0) for c in counts
            ]
            query = sa.select(sa.func.min(sa.union_all(*parts).subquery().c.m))
            smallest_count[table.name] = ctx.scalar(query)
            queries[f"smallest non-zero count in statistics.{table.name}"] = ctx.sql(query)
    # A sum shown beside a suppressed count would disclose what the suppression hides.
    sums_beside_suppressed = {}
    for _build, table in s.PUBLISHED:
        counts, sums = s.columns_of_kind(table, s.COUNT), s.columns_of_kind(table, s.SUM)
        if counts and sums:
            query = _count(
                table,
                sa.or_(*(table.c[c].is_not(None) for c in sums)),
                sa.or_(*(table.c[c].is_(None) for c in counts)),
            )
            sums_beside_suppressed[table.name] = ctx.scalar(query)
            queries[f"sums shown beside a suppressed count in statistics.{table.name}"] = ctx.sql(
                query
            )
    profiles = s.customer_profiles
    qis = [profiles.c[c] for c in s.columns_of_kind(profiles, s.QUASI_IDENTIFIER)]
    classes = sa.select(sa.func.count().label("n")).select_from(profiles).group_by(*qis).subquery()
    class_query = sa.select(sa.func.min(classes.c.n))
    smallest_class = ctx.scalar(class_query)
    queries["smallest class of statistics.customer_profiles over its quasi-identifiers"] = ctx.sql(
        class_query
    )
    margins = release_audit.profile_margins(ctx.conn)
    audits = release_audit.audit_release(
        _published_frames(ctx), spec, release_audit.frozen_releases(ctx.conn), margins
    )
    queries["release audit"] = (
        "SELECT * FROM each published aggregate table; intervals by linear programming "
        "(ccg_pipeline/validation/release_audit.py)"
    )
    widths = [a.narrowest_width for a in audits if a.narrowest_width is not None]
    gate_run, gate_unaudited = _gate_audit(ctx)
    found = [v for v in smallest_count.values() if v is not None]
    min_count = min(found) if found else None
    violations = [
        f"statistics.{t} publishes a count of {v}, which the perturbation never outputs "
        f"(nothing from 1 to {smallest_allowed - 1})"
        for t, v in smallest_count.items()
        if v is not None and v < smallest_allowed
    ]
    violations += [
        f"statistics.{t} shows a sum beside a suppressed count in {n} row(s)"
        for t, n in sums_beside_suppressed.items()
        if n
    ]
    violations += [
        f"statistics.{a.table}: an attacker narrows {len(a.below_protection)} cell(s) or flow(s) "
        f"below the protection width {a.protection_width:g}: {', '.join(a.below_protection[:5])}"
        for a in audits
        if not a.passed
    ]
    if gate_run is not None and gate_unaudited:
        violations.append(
            f"publication {gate_run} has no passed release audit for {', '.join(gate_unaudited)}"
        )
    if smallest_class is not None and smallest_class < k:
        violations.append(
            f"statistics.customer_profiles has a class of {smallest_class}, below k={k}"
        )
    figures = {
        "published_rows": rows,
        "audit_cells_checked": sum(a.cells_checked for a in audits),
        "audit_hidden_cells": sum(a.hidden_cells for a in audits),
        "audit_narrowest_interval": min(widths) if widths else None,
        "audit_protection_width": spec.count_protection_width,
        "audit_cells_below_protection": sum(len(a.below_protection) for a in audits),
        "audit_lp_solves": sum(a.lp_solves for a in audits),
        "audit_profile_snapshots_added_up": int(margins["quarter"].nunique()),
        "audit_identities_relaxed": sum(a.relaxed_components for a in audits),
        "audit_narrowest_by_table": {a.table: a.narrowest_width for a in audits},
        "sum_noise_share_of_largest_contribution": round(spec.largest_contribution_share, 4),
        "sum_protection_share_required": spec.sum_protection_share,
        "gate_audited_publication": gate_run,
        "smallest_published_count_allowed": smallest_allowed,
        "smallest_published_count": min_count,
        "k_required": k,
        "smallest_profile_class": smallest_class,
        "smallest_count_by_table": smallest_count,
        "sums_beside_suppressed_counts": sums_beside_suppressed,
    }
    # Nothing published: the clause is not met by default, it has not been tested yet.
    return ClauseResult(
        "N-AGG",
        "Published statistics single nobody out",
        passed=not violations,
        figures=figures,
        queries=queries,
        findings=violations,
        no_data=_nothing_to_judge(not violations, {"published_rows": rows}, figures),
    )


# --- N-RIGHTS -----------------------------------------------------------------------------------


def check_rights(ctx: CheckContext) -> ClauseResult:
    """Every request answered or validly extended inside its deadline; none overdue."""
    r = s.subject_requests
    end = ctx.as_of_end
    received = r.c.received_at < end
    done = sa.and_(r.c.completed_at.is_not(None), r.c.completed_at < end)
    due_end = sa.func.coalesce(r.c.due_on, r.c.first_due_on)
    # Completed after the end of the due day (timestamps vs dates: compare with the next day).
    conditions = {
        "received": received,
        "answered_in_time": sa.and_(received, done, r.c.completed_at < day_after(due_end)),
        "answered_late": sa.and_(received, done, r.c.completed_at >= day_after(due_end)),
        "open_in_time": sa.and_(
            received, sa.not_(done), r.c.status != s.REJECTED, due_end >= ctx.as_of
        ),
        "overdue": sa.and_(received, sa.not_(done), r.c.status != s.REJECTED, due_end < ctx.as_of),
        "awaiting_verification": sa.and_(received, r.c.status == s.AWAITING_VERIFICATION),
        "extended": sa.and_(received, r.c.extension_months > 0),
        "extension_not_in_first_month": sa.and_(
            received, r.c.extension_months > 0, r.c.extended_on > r.c.first_due_on
        ),
        "extension_too_long": sa.and_(
            received, r.c.extension_months > ctx.notice.settings.request_max_extension_months
        ),
        "rejected": sa.and_(received, r.c.status == s.REJECTED),
    }
    figures, queries = {}, {}
    for name, where in conditions.items():
        query = _count(r, where)
        figures[name] = ctx.scalar(query)
        queries[name] = ctx.sql(query)
    # Erased people, searched for by keyed pseudonym (no address is kept after an erasure): only
    # a subject row restricted for tax (a hold of origin erasure_restriction) may remain.
    t, subj, q, h = s.erasure_tombstones, s.subjects, s.quarantine, s.legal_holds
    restricted = sa.select(h.c.subject_key).where(
        h.c.origin == "erasure_restriction", h.c.released_at.is_(None)
    )
    erased_found = {
        "erased_subjects_still_held": _count(
            subj,
            subj.c.subject_key.in_(sa.select(t.c.subject_key).where(t.c.erased_at < end)),
            subj.c.subject_key.not_in(restricted),
        ),
        "erased_subjects_in_quarantine": _count(
            q, q.c.subject_key.in_(sa.select(t.c.subject_key).where(t.c.erased_at < end))
        ),
    }
    for name, query in erased_found.items():
        figures[name] = ctx.scalar(query)
        queries[name] = ctx.sql(query)
    figures["erasures"] = ctx.scalar(_count(t, t.c.erased_at < end))
    bad = (
        "answered_late",
        "overdue",
        "extension_not_in_first_month",
        "extension_too_long",
        *erased_found,
    )
    passed = not any(figures[b] for b in bad)
    no_data = _nothing_to_judge(
        passed,
        {"requests_received": figures["received"], "erasures": figures["erasures"]},
        figures,
    )
    return ClauseResult(
        "N-RIGHTS",
        "Requests are answered within one month, or validly extended",
        passed=passed,
        figures=figures,
        no_data=no_data,
        queries={k: queries[k] for k in ("overdue", "answered_late", *bad[2:])},
        findings=[
            f"{figures[b]} {'row(s): ' if b in erased_found else 'request(s) '}"
            f"{b.replace('_', ' ')}"
            for b in bad
            if figures[b]
        ],
    )


# --- N-MKT --------------------------------------------------------------------------------------


_EMAIL_HEADER = re.compile(r"^\s*e-?mail", re.IGNORECASE)


def _extract_emails(path: Path) -> Iterator[str]:
    """Email cells of a marketing extract (columns whose header starts with email/e-mail)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        columns = [i for i, name in enumerate(header) if _EMAIL_HEADER.match(name)]
        for row in reader:
            for i in columns:
                if i < len(row) and row[i].strip():
                    yield row[i]


def check_marketing(ctx: CheckContext) -> ClauseResult:
    """Nobody suppressed or opted out on a marketing list; every marketable contact's basis and
    every opt-out is on record."""
    from ccg_pipeline.ingest.common import Rejected, normalise_email, pseudonym
    from ccg_pipeline.marketing import (
        MARKETING_CONTACT,
        consented_as_of,
        do_not_market_keys,
        marketing_exports,
        purchased_as_of,
    )
    from ccg_pipeline.retention.rules import OPT_OUT_TYPES, opted_out_before

    c, subj, a = s.crm_contacts, s.subjects, s.crm_activities
    opted_out = opted_out_before(ctx.as_of_end, as_of_only=True)
    blocked = sa.or_(
        c.c.subject_id.in_(opted_out),
        c.c.subject_id.in_(
            sa.select(subj.c.subject_id).where(
                subj.c.subject_key.in_(do_not_market_keys(ctx.as_of))
            )
        ),
    )
    marketable = c.c.marketing_status == MARKETING_CONTACT
    queries = {
        "crm_marketing_contacts": _count(c, marketable),
        "crm_marketing_contacts_suppressed_or_opted_out": _count(c, marketable, blocked),
        "marketing_contacts_without_consent_or_purchase": _count(
            c,
            marketable,
            c.c.subject_id.not_in(consented_as_of(ctx.as_of)),
            c.c.subject_id.not_in(purchased_as_of(ctx.as_of)),
        ),
        "unsubscribed_without_opt_out_record": _count(
            c,
            c.c.marketing_status == "Unsubscribed",
            c.c.subject_id.not_in(
                sa.select(a.c.subject_id).where(
                    a.c.activity_type.in_(OPT_OUT_TYPES), a.c.subject_id.is_not(None)
                )
            ),
            c.c.subject_id.not_in(
                sa.select(subj.c.subject_id).where(
                    subj.c.subject_key.in_(sa.select(s.marketing_suppression.c.subject_key))
                )
            ),
        ),
        "consent_events_without_channel": _count(
            a,
            a.c.activity_type.in_(("MARKETING_CONSENT_GRANTED", "MAILING_LIST_SUBSCRIBE")),
            a.c.channel.is_(None),  # occurred_at is NOT NULL in the schema
        ),
    }
    queries["crm_contacts"] = _count(c)  # all of them: none at all is nothing to judge
    figures: dict[str, Any] = {name: ctx.scalar(q) for name, q in queries.items()}
    # Extracts on disk: every address, as its keyed pseudonym, against the do-not-market set.
    blocked_keys = {row[0] for row in ctx.conn.execute(do_not_market_keys(ctx.as_of))}
    blocked_keys |= {
        row[0]
        for row in ctx.conn.execute(
            sa.select(subj.c.subject_key).where(subj.c.subject_id.in_(opted_out))
        )
    }
    files = sorted(marketing_exports(ctx.settings).glob("*.csv"))
    listed = hits = unreadable = 0
    for path in files:
        for email in _extract_emails(path):
            listed += 1
            try:
                key = pseudonym(ctx.settings.pseudonym_key, normalise_email(email))
            except Rejected:
                unreadable += 1  # not an address: counted, never shown
                continue
            hits += key in blocked_keys
    figures.update(
        extracts_checked=len(files),
        extract_rows=listed,
        extract_rows_suppressed=hits,
        extract_cells_not_an_address=unreadable,
    )
    findings = []
    if figures["crm_marketing_contacts_suppressed_or_opted_out"]:
        findings.append(
            f"{figures['crm_marketing_contacts_suppressed_or_opted_out']} CRM marketing "
            "contact(s) are suppressed, erased or opted out"
        )
    if hits:
        findings.append(f"{hits} row(s) of marketing extracts are suppressed people")
    for name in (
        "marketing_contacts_without_consent_or_purchase",
        "unsubscribed_without_opt_out_record",
        "consent_events_without_channel",
    ):
        if figures[name]:
            findings.append(f"consent history incomplete: {figures[name]} {name.replace('_', ' ')}")
    passed = not findings
    # No CRM contacts and no extract rows: nobody is, or could be, marketed to yet.
    inputs = {"crm_contacts": figures["crm_contacts"], "extract_rows": listed}
    return ClauseResult(
        "N-MKT",
        "Marketing only with a basis; opt-outs and suppressions always honoured",
        passed=passed,
        figures=figures,
        queries={name: ctx.sql(q) for name, q in queries.items()},
        findings=findings,
        no_data=_nothing_to_judge(passed, inputs, figures),
    )


# --- free text: N-NOSPECIAL and N-CHILD ---------------------------------------------------------


def _stream(ctx: CheckContext, query: sa.Select) -> Iterator[Any]:
    # A statement option: on the connection it would stay on for later statements.
    yield from ctx.conn.execute(query.execution_options(yield_per=STREAM_CHUNK_ROWS))


def check_special_categories(ctx: CheckContext) -> ClauseResult:
    """Free text (CRM notes and enquiries) scanned for special-category and criminal-offence
    content, read-only; the daily sweep (`retention.special`, run before this check) moves hits
    to quarantine, and a hit it moved in this run still fails the clause: the content was in
    processing until then. Counts only."""
    q = s.quarantine
    scan = special.scan_free_text(ctx.conn)
    moved_this_run = ctx.scalar(_count(q, q.c.source_ref == special.sweep_ref(ctx.run_id)))
    at_ingest_query = (
        sa.select(q.c.reason, sa.func.count())
        .where(q.c.reason.like("special_category:%"))
        .group_by(q.c.reason)
    )
    at_ingest: Counter[str] = Counter()
    for reason, n in ctx.conn.execute(at_ingest_query):
        for category in reason.split(":", 1)[1].split(","):
            at_ingest[category.strip()] += n
    figures = {
        "free_text_records_scanned": scan.scanned,
        "live_records_with_special_categories": len(scan.hits),
        "live_hits_by_category": dict(sorted(scan.by_category.items())),
        "moved_to_quarantine_by_this_run": moved_this_run,
        "in_quarantine_by_category": dict(sorted(at_ingest.items())),
    }
    findings = []
    if scan.hits:
        findings.append(
            f"{len(scan.hits)} CRM record(s) in processing hold special-category or "
            "criminal-offence content ("
            + ", ".join(f"{k} {v}" for k, v in sorted(scan.by_category.items()))
            + "): not yet quarantined"
        )
    if moved_this_run:
        findings.append(
            f"{moved_this_run} CRM record(s) with special-category or criminal-offence content "
            "were in processing until this run's sweep moved them to quarantine"
        )
    if at_ingest:
        findings.append(
            f"{sum(at_ingest.values())} record(s) stopped at ingest or by the sweep are in "
            "quarantine, deleted 30 days after (rule quarantine_raw)"
        )
    passed = not scan.hits and not moved_this_run
    return ClauseResult(
        "N-NOSPECIAL",
        "No special-category or criminal-offence data in processing",
        passed=passed,
        figures=figures,
        no_data=_nothing_to_judge(passed, {"free_text_records_scanned": scan.scanned}, figures),
        queries={
            "free text scanned (English and Swedish lexicon, ccg_pipeline/scan/special.py)": (
                ctx.sql(special.free_text_query())
            ),
            "quarantined at ingest": ctx.sql(at_ingest_query),
        },
        findings=findings,
    )


def check_children(ctx: CheckContext) -> ClauseResult:
    """Any record indicating a child: a stated age under 18, school or guardian wording in free
    text or job titles, or a school email domain."""
    from ccg_pipeline.scan.special import CHILD_EMAIL_DOMAIN, child_indicators

    a, c, u = s.crm_activities, s.crm_contacts, s.portal_users
    sources = {
        "personal.crm_activities": sa.select(a.c.subject_id, a.c.subject_line, a.c.body).where(
            sa.or_(a.c.body.is_not(None), a.c.subject_line.is_not(None))
        ),
        "personal.crm_contacts": sa.select(c.c.subject_id, c.c.job_title, c.c.email),
        "personal.portal_users": sa.select(u.c.subject_id, u.c.job_title, u.c.email),
    }
    by_kind: Counter[str] = Counter()
    by_table: Counter[str] = Counter()
    subjects: set[int] = set()
    read = 0
    for table, query in sources.items():
        for row in _stream(ctx, query):
            read += 1
            subject_id, *texts = row
            kinds = set().union(*(child_indicators(t) for t in texts[:2]))
            if table != "personal.crm_activities" and CHILD_EMAIL_DOMAIN.search(texts[-1] or ""):
                kinds.add("school_email")
            if kinds:
                by_kind.update(kinds)
                by_table[table] += 1
                if subject_id is not None:
                    subjects.add(subject_id)
    records = sum(by_table.values())
    figures = {
        "records_indicating_a_child": records,
        "subjects": len(subjects),
        "by_indicator": dict(sorted(by_kind.items())),
        "by_table": dict(sorted(by_table.items())),
        "records_read": read,
    }
    return ClauseResult(
        "N-CHILD",
        "No children's data is knowingly held",
        passed=records == 0,
        figures=figures,
        no_data=_nothing_to_judge(records == 0, {"records_read": read}, figures),
        queries={f"text read from {t}": ctx.sql(q) for t, q in sources.items()},
        findings=[
            f"{records} record(s) about {len(subjects)} subject(s) indicate a child: review, "
            "then erase or restrict"
        ]
        if records
        else [],
    )


# --- N-XFER -------------------------------------------------------------------------------------


def check_transfers(ctx: CheckContext) -> ClauseResult:
    """Each transfer in the register against the safeguards in force on the date."""
    from ccg_pipeline.ropa import safeguard_in_force, transfer_finding

    safeguards = {g.id: g for g in ctx.notice.safeguards}
    findings, lapsed = [], []
    for transfer in ctx.notice.transfers:
        safeguard = safeguards[transfer.safeguard]
        if not safeguard_in_force(safeguard, ctx.as_of):
            lapsed.append(transfer.id)
            findings.append(
                transfer_finding(
                    ctx.notice, transfer.id, transfer.destination, safeguard, ctx.as_of
                )
            )
    unstated = [r.id for r in ctx.notice.recipients if r.location.strip().lower() == "not stated"]
    if unstated:
        findings.append(
            f"{len(unstated)} recipient(s) have no stated location ({', '.join(unstated)}), so "
            "transfers to them cannot be checked"
        )
    figures = {
        "transfers": len(ctx.notice.transfers),
        "relying_on_a_safeguard_not_in_force": len(lapsed),
        "lapsed_transfers": lapsed,
        "recipients_without_location": len(unstated),
    }
    return ClauseResult(
        "N-XFER",
        "Transfers outside the EEA rely on a safeguard in force",
        passed=not lapsed,
        figures=figures,
        # An empty transfers register has nothing to judge (unstated locations stay findings).
        no_data=_nothing_to_judge(not lapsed, {"transfers": len(ctx.notice.transfers)}, figures),
        queries={"register": "policy: notice.yaml `transfers` and `safeguards`"},
        findings=findings,
    )


# --- N-SEC --------------------------------------------------------------------------------------

_PG_READERS = sa.text(
    """
    SELECT r.rolname AS role, r.rolsuper AS superuser, n.nspname AS zone,
           r.oid = 10 AS bootstrap,
           pg_get_userbyid(n.nspowner) AS owner,
           r.rolname = :analyst OR CASE
               WHEN EXISTS (SELECT 1 FROM pg_roles a WHERE a.rolname = :analyst)
               THEN pg_has_role(r.oid, :analyst, 'MEMBER') ELSE false END AS analyst,
           has_schema_privilege(r.oid, n.oid, 'USAGE') AND EXISTS (
               SELECT 1 FROM pg_class c
               WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'v', 'm', 'p')
                 AND has_any_column_privilege(r.oid, c.oid, 'SELECT')
           ) AS can_read
    FROM pg_roles r CROSS JOIN pg_namespace n
    WHERE n.nspname IN ('personal', 'staging', 'statistics', 'ops')
      AND r.rolname NOT LIKE 'pg\\_%'
    ORDER BY r.rolname, n.nspname
    """
)


def check_access(ctx: CheckContext) -> ClauseResult:
    """Who can read each zone, compared with the policy's `zone_access`."""
    from ccg_pipeline.warehouse.roles import ANALYST_ROLE

    allowed: dict[str, set[str]] = {z.zone: set(z.readers) for z in ctx.notice.zone_access}
    if backend_of(ctx.conn).analyst_receives_a_file:
        return _access_sqlite(ctx, allowed)
    return _access_postgres(ctx, allowed, ANALYST_ROLE)


def _access_postgres(ctx: CheckContext, allowed: dict[str, set[str]], analyst: str) -> ClauseResult:
    """Readers by zone: the zone's owner is the pipeline, `ccg_analyst` and its members are
    analysts, anyone else is nobody the policy names. Superusers bypass grants: the pipeline's
    own superuser rights and the cluster's bootstrap superuser (which every PostgreSQL server
    has, for its administrators) are findings; any other superuser is a violation."""
    rows = ctx.conn.execute(_PG_READERS, {"analyst": analyst}).all()
    readers: dict[str, list[str]] = {zone: [] for zone in allowed}
    owners = {row.owner for row in rows}
    superusers = sorted({row.role for row in rows if row.superuser})
    bootstrap = {row.role for row in rows if row.bootstrap}
    violations = [
        f"role {role} is a superuser and can read every zone"
        for role in superusers
        if role not in owners | bootstrap
    ]
    for row in rows:
        if row.superuser or not row.can_read:
            continue
        readers.setdefault(row.zone, []).append(row.role)
        logical = "pipeline" if row.role == row.owner else "analyst" if row.analyst else None
        if logical not in allowed.get(row.zone, set()):
            violations.append(f"role {row.role} can read the {row.zone} zone")
    analysts = {row.role for row in rows if row.analyst and not row.superuser}
    for zone, roles in allowed.items():
        if "analyst" in roles and not analysts & set(readers.get(zone, [])):
            violations.append(f"role {analyst} cannot read the {zone} zone it is meant to")
    findings = list(violations)
    findings += [
        f"the pipeline's role {role} is a superuser; an owner role without superuser rights is "
        "safer"
        for role in superusers
        if role in owners
    ]
    findings += [
        f"role {role} is the server's bootstrap superuser and can read every zone: keep its "
        "login to database administrators, out of every Airflow connection"
        for role in sorted(bootstrap - owners)
    ]
    return ClauseResult(
        "N-SEC",
        "Each zone is readable only by the roles with a business need",
        passed=not violations,
        figures={
            "readers_by_zone": {z: sorted(r) for z, r in readers.items()},
            "superusers_bypassing_grants": superusers,
            "policy": {z: sorted(r) for z, r in allowed.items()},
            "violations": len(violations),
        },
        queries={"database grants": " ".join(_PG_READERS.text.split())},
        findings=findings,
    )


def _access_sqlite(ctx: CheckContext, allowed: dict[str, set[str]]) -> ClauseResult:
    """On SQLite a zone is a file: access is the file's permission bits."""
    from ccg_pipeline.statistics import analyst_file
    from ccg_pipeline.warehouse.engine import sqlite_zone_files

    files = sqlite_zone_files(str(ctx.conn.engine.url))
    modes, violations = {}, []
    for zone, path in files.items():
        if not path.exists():
            continue
        mode = path.stat().st_mode & 0o777
        modes[zone] = f"{mode:04o}"
        if "analyst" not in allowed.get(zone, set()) and mode & 0o077:
            violations.append(f"the {zone} zone file is readable beyond its owner ({mode:04o})")
    analyst_copy = analyst_file(ctx.settings)
    extra_tables: list[str] = []
    if analyst_copy.exists():
        with sa.create_engine(f"sqlite:///{analyst_copy}").connect() as conn:
            names = sa.inspect(conn).get_table_names()
        from ccg_pipeline.statistics.dictionary import analyst_tables

        published = {t.name for t in analyst_tables()}
        extra_tables = sorted(set(names) - published)
        if extra_tables:
            violations.append(f"the analyst file holds {len(extra_tables)} non-statistics table(s)")
    figures = {
        "zone_file_modes": modes,
        "analyst_file_present": analyst_copy.exists(),
        "analyst_file_extra_tables": extra_tables,
        "policy": {z: sorted(r) for z, r in allowed.items()},
        "violations": len(violations),
    }
    # Before the first publication there is no analyst file: what analysts can read is untested
    # (the zone files' permission bits are still judged, and a bad one fails).
    inputs = {"analyst_files": int(analyst_copy.exists())}
    return ClauseResult(
        "N-SEC",
        "Each zone is readable only by the roles with a business need",
        passed=not violations,
        figures=figures,
        no_data=_nothing_to_judge(not violations, inputs, figures),
        queries={"file permissions": "stat() of each zone file; table list of the analyst file"},
        findings=violations,
    )


# --- N-CAT --------------------------------------------------------------------------------------


def check_categories(ctx: CheckContext) -> ClauseResult:
    """Every column actually present in the personal zone has a notice category."""
    from ccg_pipeline.personal_model import unmapped as unmapped_of

    inspector = sa.inspect(ctx.conn)
    live = {
        f"{s.PERSONAL}.{table}": [c["name"] for c in inspector.get_columns(table, s.PERSONAL)]
        for table in inspector.get_table_names(schema=s.PERSONAL)
    }
    columns = sum(len(names) for names in live.values())
    unmapped = unmapped_of(live)
    figures: dict[str, Any] = {"columns": columns, "unmapped_columns": unmapped}
    return ClauseResult(
        "N-CAT",
        "Every personal data column belongs to a notice category",
        passed=not unmapped,
        figures=figures,
        no_data=_nothing_to_judge(not unmapped, {"personal_zone_columns": columns}, figures),
        queries={
            "columns": "information schema of the personal zone vs ccg_pipeline/personal_model.py"
        },
        findings=[f"column {c} has no category" for c in unmapped],
    )


CHECKS: tuple[Check, ...] = (
    check_categories,
    check_special_categories,
    check_aggregates,
    check_marketing,
    check_transfers,
    check_access,
    check_retention,
    check_rights,
    check_children,
)

"""The record of processing activities (GDPR art. 30), generated from the policy files.

The record is derived, never edited by hand: the notice (`policy/notice.yaml`) and the data map
are the single source, so the record cannot drift from what the pipeline enforces. Nothing here
reads the warehouse; the only input besides the policy is the `as_of` date on which transfer
safeguards are judged, so a record for any past or future date can be reproduced.

Each activity also lists the processings the code declares for it (`ccg_pipeline.purposes`):
what in the pipeline serves the purpose, on which basis, reading which categories. A declaration
the notice does not allow is a finding of the record.

The notice ties neither recipients nor transfers to particular activities (s.5 refers to
Schedule 1 part 4 as a whole; s.6 names no categories). The record therefore lists every
recipient for every activity, and a transfer or retention rule wherever its data categories
overlap the activity's. Security measures are pipeline-wide and apply to every activity.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ccg_pipeline.policy.models import (
    DataMap,
    DataSubject,
    Decision,
    Notice,
    Period,
    RetentionRule,
    RetentionTrigger,
    Safeguard,
    SecurityMeasure,
)
from ccg_pipeline.purposes import Processing, check_declaration

MARKDOWN_FILE = "ropa.md"
CSV_FILE = "ropa.csv"
CSV_COLUMNS = (
    "activity_id",
    "purpose",
    "processings",
    "lawful_bases",
    "legitimate_interests",
    "data_subjects",
    "personal_data_categories",
    "recipients",
    "transfers",
    "transfer_findings",
    "retention",
    "security_measures",
)
LIST_SEPARATOR = "; "

_DECIDED_BY = {Decision.NOTICE: "decided by the notice", Decision.CCG: "CCG decision"}
_TRIGGER = {
    RetentionTrigger.CEASED_CUSTOMER: "the person ceases to be a customer",
    RetentionTrigger.ACCOUNT_CLOSED: "the portal account is closed",
    RetentionTrigger.MARKETING_OPT_OUT: "the marketing opt-out",
    RetentionTrigger.PROSPECT_INACTIVE: "the prospect's last activity",
    RetentionTrigger.EVENT_TIME: "the event",
}


@dataclass(frozen=True)
class TransferEntry:
    """A transfer outside the EEA, with its safeguard judged on the record's as-of date."""

    transfer_id: str
    recipient: str
    destination: str
    safeguard: str
    in_force: bool
    finding: str | None

    def describe(self) -> str:
        state = "in force" if self.in_force else "NOT IN FORCE"
        return f"{self.recipient}, {self.destination}: {self.safeguard} ({state})"


@dataclass(frozen=True)
class RetentionEntry:
    rule_id: str
    text: str
    decided_by: str

    def describe(self) -> str:
        return f"{self.rule_id}: {self.text} ({self.decided_by})"


@dataclass(frozen=True)
class ProcessingEntry:
    """A processing the code declares for an activity (`purposes.declare`)."""

    processing_id: str
    kind: str
    basis: str
    categories: tuple[str, ...]
    basis_evidence: tuple[str, ...]
    description: str

    def describe(self) -> str:
        reads = ", ".join(self.categories) or "no personal category"
        text = f"{self.processing_id} ({self.kind}, {self.basis.replace('_', ' ')}): {reads}"
        if self.basis_evidence:
            text += f"; to establish the basis: {', '.join(self.basis_evidence)}"
        return text


@dataclass(frozen=True)
class ActivityEntry:
    """One processing activity with everything art. 30(1) asks of it."""

    activity_id: str
    purpose: str
    clause: str
    lawful_bases: tuple[str, ...]
    legitimate_interests: tuple[str, ...]
    data_subjects: tuple[str, ...]
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    transfers: tuple[TransferEntry, ...]
    retention: tuple[RetentionEntry, ...]
    security_measures: tuple[str, ...]
    processings: tuple[ProcessingEntry, ...] = ()
    declaration_findings: tuple[str, ...] = ()

    @property
    def findings(self) -> tuple[str, ...]:
        return self.declaration_findings + tuple(t.finding for t in self.transfers if t.finding)


@dataclass(frozen=True)
class Ropa:
    controller: str
    company_number: str
    as_of: dt.date
    notice_version: int
    source_text: str
    activities: tuple[ActivityEntry, ...]
    data_subjects: tuple[DataSubject, ...]
    source_origins: dict[str, str]
    security_measures: tuple[SecurityMeasure, ...]

    @property
    def findings(self) -> tuple[str, ...]:
        """Each distinct finding once, in activity order (many activities share a transfer)."""
        return tuple(dict.fromkeys(f for a in self.activities for f in a.findings))


def safeguard_in_force(safeguard: Safeguard, as_of: dt.date) -> bool:
    """Whether a safeguard may be relied on that day. `valid_until` is the first day it may not
    (Privacy Shield: invalidated by the CJEU on 16 July 2020), so the end is exclusive."""
    started = safeguard.valid_from is None or safeguard.valid_from <= as_of
    ended = safeguard.valid_until is not None and as_of >= safeguard.valid_until
    return started and not ended


def _validity(safeguard: Safeguard) -> str:
    dates = []
    if safeguard.valid_from:
        dates.append(f"in force from {safeguard.valid_from}")
    if safeguard.valid_until:
        dates.append(f"invalid from {safeguard.valid_until}")
    return ", ".join(dates) or "no dates recorded"


def transfer_finding(
    notice: Notice, transfer_id: str, destination: str, safeguard: Safeguard, as_of: dt.date
) -> str:
    """Name the lapsed safeguard, its dates, and the replacement (with whether that is in force
    yet), so the reader knows what the register should rely on instead. No semicolons: the CSV
    joins findings with them."""
    text = (
        f"Transfer {transfer_id} ({destination}) relies on {safeguard.name}, which is not in "
        f"force on {as_of} ({_validity(safeguard)})."
    )
    if safeguard.replaced_by is None:
        return text + " No replacement is recorded."
    replacement = next(s for s in notice.safeguards if s.id == safeguard.replaced_by)
    state = "in force" if safeguard_in_force(replacement, as_of) else "not yet in force"
    text += f" Replaced by {replacement.name} ({_validity(replacement)}), {state} on {as_of}."
    # Later frameworks beside the named replacement (the UK extension for transfers from the UK).
    also = [
        s.name
        for s in notice.safeguards
        if s.id != replacement.id
        and s.valid_from is not None
        and safeguard.valid_until is not None
        and s.valid_from > safeguard.valid_until
        and safeguard_in_force(s, as_of)
    ]
    return text + (f" Also in force: {', '.join(also)}." if also else "")


def _period(period: Period) -> str:
    parts = [
        f"{n} {unit if n == 1 else unit + 's'}"
        for n, unit in ((period.years, "year"), (period.months, "month"), (period.days, "day"))
        if n
    ]
    return " ".join(parts)


def _retention(rule: RetentionRule) -> RetentionEntry:
    text = f"{_period(rule.period)} after {_TRIGGER.get(rule.trigger, rule.trigger.value)}"
    if rule.financial_year_end:
        # HMRC counts from the financial-year end; the policy makes that alignment switchable.
        text += f" (or from the financial-year end, {rule.financial_year_end}, when aligned)"
    text += f", then {rule.action.value.replace('_', ' ')}"
    return RetentionEntry(rule.id, text, _DECIDED_BY[rule.decided_by])


def _processings(
    notice: Notice, processings: Mapping[str, Processing]
) -> tuple[dict[str, list[ProcessingEntry]], list[str]]:
    """Declared processings by activity, and what the notice does not allow of them."""
    by_activity: dict[str, list[ProcessingEntry]] = {}
    findings = []
    for p in processings.values():
        findings += [
            f"Processing {p.id} ({p.purpose}): {problem}."
            for problem in check_declaration(p, notice)
        ]
        by_activity.setdefault(p.purpose, []).append(
            ProcessingEntry(
                processing_id=p.id,
                kind=p.kind.value,
                basis=p.basis.value,
                categories=tuple(sorted(p.categories)),
                basis_evidence=tuple(sorted(p.basis_evidence)),
                description=p.description,
            )
        )
    known = {a.id for a in notice.processing_activities}
    findings += [
        f"Processing {e.processing_id} names purpose {purpose}, which the notice does not have."
        for purpose, entries in by_activity.items()
        if purpose not in known
        for e in entries
    ]
    return by_activity, findings


def build_ropa(
    notice: Notice,
    data_map: DataMap,
    as_of: dt.date,
    processings: Mapping[str, Processing] | None = None,
) -> Ropa:
    """Build the record from the policy and the code's declared processings (`ccg ropa` passes
    every one). Raises ValueError when a data subject names a source the data map lacks: a
    record citing a source that does not exist would be false."""
    notice.check_data_subject_sources(data_map)
    declared, declaration_findings = _processings(notice, processings or {})
    interests = {i.id: i.text for i in notice.legitimate_interests}
    recipients = {r.id: r for r in notice.recipients}
    safeguards = {s.id: s for s in notice.safeguards}
    recipient_names = tuple(f"{r.name} ({r.location})" for r in notice.recipients)
    measure_names = tuple(m.name for m in notice.security_measures)
    activities = []
    for activity in notice.processing_activities:
        categories = set(activity.categories)
        transfers = []
        for transfer in notice.transfers:
            if not categories & set(transfer.data_categories):
                continue
            safeguard = safeguards[transfer.safeguard]
            in_force = safeguard_in_force(safeguard, as_of)
            transfers.append(
                TransferEntry(
                    transfer_id=transfer.id,
                    recipient=recipients[transfer.recipient].name,
                    destination=transfer.destination,
                    safeguard=safeguard.name,
                    in_force=in_force,
                    finding=None
                    if in_force
                    else transfer_finding(
                        notice, transfer.id, transfer.destination, safeguard, as_of
                    ),
                )
            )
        activities.append(
            ActivityEntry(
                activity_id=activity.id,
                purpose=activity.purpose,
                clause=activity.clause,
                lawful_bases=tuple(b.value for b in activity.lawful_bases),
                legitimate_interests=tuple(
                    f"{i} {interests[i]}" for i in activity.legitimate_interests
                ),
                data_subjects=tuple(
                    s.name for s in notice.data_subjects if activity.id in s.activities
                ),
                categories=tuple(notice.category(c).name for c in activity.categories),
                recipients=recipient_names,
                transfers=tuple(transfers),
                retention=tuple(
                    _retention(r) for r in notice.retention_rules if categories & set(r.categories)
                ),
                security_measures=measure_names,
                processings=tuple(declared.get(activity.id, ())),
                declaration_findings=tuple(
                    f for f in declaration_findings if f"({activity.id})" in f
                ),
            )
        )
    return Ropa(
        controller=notice.controller,
        company_number=notice.company_number,
        as_of=as_of,
        notice_version=notice.version,
        source_text=notice.source_text,
        activities=tuple(activities),
        data_subjects=tuple(notice.data_subjects),
        source_origins={name: spec.origin for name, spec in data_map.sources.items()},
        security_measures=tuple(notice.security_measures),
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _lines(items: tuple[str, ...], empty: str = "none") -> str:
    return "<br>".join(_cell(i) for i in items) if items else empty


def _legitimate_interests(activity: ActivityEntry) -> tuple[str, ...]:
    if activity.legitimate_interests or "legitimate_interest" not in activity.lawful_bases:
        return activity.legitimate_interests
    # The part-2 table states these interests in prose that matches none of the s.4 list.
    return ("as stated in the Schedule 1 part 2 table; none of the s.4 list",)


def render_markdown(ropa: Ropa) -> str:
    """The record for people: controller, date, findings first, then one section per activity."""
    out = [
        "# Record of processing activities (GDPR art. 30)",
        "",
        f"- **Controller:** {ropa.controller} (company number {ropa.company_number})",
        f"- **As of:** {ropa.as_of.isoformat()} (transfer safeguards are judged on this date)",
        f"- **Source:** notice version {ropa.notice_version} (`{ropa.source_text}`), encoded in "
        "`ccg_pipeline/policy/notice.yaml` and `data_map.yaml`; generated by `ccg ropa`, "
        "do not edit by hand.",
        "",
        "The notice ties neither recipients nor transfers to particular activities: every "
        "recipient is listed for every activity, and a transfer or retention rule wherever its "
        "data categories overlap the activity's.",
        "",
        "## Findings",
        "",
    ]
    findings = ropa.findings
    out += [f"- {f}" for f in findings] if findings else ["None."]
    out += ["", "## Processing activities", ""]
    for number, a in enumerate(ropa.activities, start=1):
        transfers = tuple(
            t.describe() if t.in_force else f"**{t.describe()}**" for t in a.transfers
        )
        out += [
            f"### {number}. {a.activity_id}",
            "",
            "| | |",
            "|---|---|",
            f"| Purpose | {_cell(a.purpose)} ({a.clause}) |",
            f"| Processings in the pipeline | "
            f"{_lines(tuple(p.describe() for p in a.processings), 'none declared')} |",
            f"| Lawful bases | {_lines(a.lawful_bases)} |",
            f"| Legitimate interests | {_lines(_legitimate_interests(a))} |",
            f"| Data subjects | {_lines(a.data_subjects)} |",
            f"| Personal data | {_lines(a.categories)} |",
            f"| Recipients | {_lines(a.recipients)} |",
            f"| Transfers outside the EEA | {_lines(transfers)} |",
            f"| Retention | {_lines(tuple(r.describe() for r in a.retention))} |",
            f"| Security measures | {_cell(LIST_SEPARATOR.join(a.security_measures))} (see below) |",
            "",
        ]
    out += [
        "## Categories of data subjects",
        "",
        "| Data subjects | Description | Sources (origin) | Activities |",
        "|---|---|---|---|",
    ]
    for s in ropa.data_subjects:
        sources = tuple(f"{src} ({ropa.source_origins[src]})" for src in s.sources)
        out.append(
            f"| {_cell(s.name)} | {_cell(s.description)} | "
            f"{_lines(sources, 'no ingested source')} | {_lines(tuple(s.activities))} |"
        )
    out += [
        "",
        "## Security measures (art. 32)",
        "",
        "| Measure | What the pipeline does | Clause |",
        "|---|---|---|",
    ]
    out += [
        f"| {_cell(m.name)} | {_cell(m.description)} | {m.clause} |" for m in ropa.security_measures
    ]
    return "\n".join(out) + "\n"


def render_csv(ropa: Ropa) -> str:
    """The record for spreadsheets and registers: one row per activity, lists joined by "; "."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    join = LIST_SEPARATOR.join
    for a in ropa.activities:
        writer.writerow(
            (
                a.activity_id,
                a.purpose,
                join(p.describe() for p in a.processings),
                join(a.lawful_bases),
                join(_legitimate_interests(a)),
                join(a.data_subjects),
                join(a.categories),
                join(a.recipients),
                join(t.describe() for t in a.transfers),
                join(a.findings),
                join(r.describe() for r in a.retention),
                join(a.security_measures),
            )
        )
    return buffer.getvalue()


def write_ropa(ropa: Ropa, out: Path) -> tuple[Path, Path]:
    """Write `ropa.md` and `ropa.csv` into `out` (created if missing); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    markdown, table = out / MARKDOWN_FILE, out / CSV_FILE
    markdown.write_text(render_markdown(ropa), encoding="utf-8")
    table.write_text(render_csv(ropa), encoding="utf-8")
    return markdown, table

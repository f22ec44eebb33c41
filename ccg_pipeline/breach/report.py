"""The breach impact report and what the table and file assessments share.

`BreachImpact` holds counts, category ids, column names, detector names and country codes only
(`COUNTS_ONLY`); `BreachInputError` is raised for a source that cannot be assessed. Also here:
what each detector's finding says about the category of the data (N-CAT), and the helpers that
merge and order a report's categories and tell whether they include financial data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ccg_pipeline.policy import load_notice

COUNTS_ONLY = (
    "This report holds counts only: no value, name, email or other identifier from the data."
)
UNKNOWN_COUNTRY = "unknown"
FINANCIAL = "financial"
# Bound parameters per IN list, under SQLite's historical limit of 999 variables.
READ_CHUNK_ROWS = 50_000


class BreachInputError(ValueError):
    """The source cannot be assessed: unknown table, missing or unreadable file, bad date. The
    message names the problem and never quotes the data."""


# What each detector's finding says about the category of the data (N-CAT).
DETECTOR_CATEGORIES: dict[str, str] = {
    "email": "contact",
    "phone_uk": "contact",
    "phone_se": "contact",
    "phone_international": "contact",
    "uk_postcode": "contact",
    "ipv4": "technical",
    "ipv6": "technical",
    "iban": FINANCIAL,
    "uk_sort_code": FINANCIAL,
    "uk_account_number": FINANCIAL,
    "payment_card": FINANCIAL,
    "uk_vat": FINANCIAL,  # as the data map tags a VAT number
    "uk_nino": "identity",
    "se_personnummer": "identity",
    "eori": "identity",
    "companies_house": "identity",
    "se_orgnummer": "identity",
    "url_with_identifier": "usage",
}
PHONE_DETECTORS = ("phone_uk", "phone_se", "phone_international")
IP_DETECTORS = ("ipv4", "ipv6")


# --- the report -------------------------------------------------------------------------------


@dataclass
class BreachImpact:
    source: str
    kind: str  # "table" or "file"
    rows_total: int
    rows_in_scope: int
    since: dt.date | None
    since_column: str | None  # what --since filtered on, when it could be applied
    since_note: str
    subjects_identifiable: bool
    # Distinct known data subjects; None when not identifiable, or not matched (no warehouse).
    subjects_affected: int | None
    subjects_via: str
    addresses: int | None = None  # distinct network prefixes (table) or IP addresses (file)
    addresses_label: str = ""
    identifiers_matched: dict[str, int] = field(default_factory=dict)
    identifiers_unmatched: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    financial: bool = False
    financial_evidence: list[str] = field(default_factory=list)
    detector_cells: dict[str, int] = field(default_factory=dict)
    unmapped_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts_only: str = COUNTS_ONLY

    @classmethod
    def from_findings(
        cls, *, categories: dict[str, list[str]], detector_cells: Mapping[str, int], **fields: Any
    ) -> BreachImpact:
        """The report of a table or a file: categories in the notice's order, the financial
        verdict derived from them, detector counts sorted by detector."""
        financial, evidence = _financial(categories)
        return cls(
            categories=_ordered(categories),
            financial=financial,
            financial_evidence=evidence,
            detector_cells=dict(sorted(detector_cells.items())),
            **fields,
        )

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def subjects_line(self) -> str:
        if not self.subjects_identifiable:
            text = "subjects not identifiable"
            if self.addresses is not None:
                text += f"; {self.addresses:,} {self.addresses_label}"
            return text
        unmatched = sum(self.identifiers_unmatched.values())
        kinds = ", ".join(f"{n:,} {k}" for k, n in self.identifiers_unmatched.items() if n)
        if self.subjects_affected is None:
            text = f"identifiable, not matched to known subjects ({self.subjects_via}): "
            text += f"{unmatched:,} distinct identifier(s) ({kinds})"
        else:
            text = f"{self.subjects_affected:,} known data subject(s) ({self.subjects_via})"
            if unmatched:
                text += f"; plus {unmatched:,} identifier(s) that match nobody known ({kinds})"
        if self.addresses is not None:
            text += f"; {self.addresses:,} {self.addresses_label}"
        return text

    def render(self) -> str:
        lines = [
            f"Breach impact: {self.source} ({self.kind})",
            f"  {self.counts_only}",
            "",
            f"Rows:        {self.rows_in_scope:,} in scope of {self.rows_total:,}",
            f"Since:       {self.since_note}",
            f"Subjects:    {self.subjects_line()}",
        ]
        if self.identifiers_matched or self.identifiers_unmatched:
            kinds = sorted(set(self.identifiers_matched) | set(self.identifiers_unmatched))
            if self.subjects_affected is None:
                counts = [f"{k}: {self.identifiers_unmatched[k]:,} found" for k in kinds]
            else:
                counts = [
                    f"{k}: {self.identifiers_matched.get(k, 0):,} matched, "
                    f"{self.identifiers_unmatched.get(k, 0):,} unmatched"
                    for k in kinds
                ]
            lines.append(f"Identifiers: {'; '.join(counts)} (distinct)")
        countries = ", ".join(f"{c} {n:,}" for c, n in self.countries.items()) or "none"
        lines.append(f"Countries:   {countries} (subjects per country)")
        lines.append("Categories:")
        for category, evidence in self.categories.items():
            lines.append(f"  - {category}: {', '.join(evidence)}")
        if not self.categories:
            lines.append("  - none found")
        answer = "YES" if self.financial else "no"
        because = f" ({', '.join(self.financial_evidence)})" if self.financial_evidence else ""
        lines.append(f"Financial:   {answer}{because}")
        if self.detector_cells:
            cells = ", ".join(f"{d} {n:,}" for d, n in self.detector_cells.items())
            lines.append(f"Detectors:   cells with a finding: {cells}")
        if self.unmapped_columns:
            lines.append(
                f"Unmapped:    {len(self.unmapped_columns)} column(s) with no category: "
                f"{', '.join(self.unmapped_columns)} (scanned by the detectors only)"
            )
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)


# --- categories -------------------------------------------------------------------------------


def _merge(into: dict[str, list[str]], more: Mapping[str, Iterable[str]]) -> None:
    for category, evidence in more.items():
        into.setdefault(category, [])
        into[category] += [e for e in evidence if e not in into[category]]


def _ordered(categories: dict[str, list[str]]) -> dict[str, list[str]]:
    order = [c.id for c in load_notice().categories]
    rank = {c: i for i, c in enumerate(order)}
    return {c: categories[c] for c in sorted(categories, key=lambda c: rank.get(c, len(order)))}


def _financial(categories: Mapping[str, list[str]]) -> tuple[bool, list[str]]:
    evidence = list(categories.get(FINANCIAL, []))
    return bool(evidence), evidence

"""The GX suites in `expectations/`, one JSON file per published table, and how they are made.

The suites are versioned files, reviewed like code. They are generated from the table
definitions (`warehouse/schema.py`), the policy's thresholds and the label sets of
`anonymise`, by `ccg expectations write`; a test fails when a committed suite drifts from what
the generator would write, and the gate refuses a suite whose thresholds are not the policy's.
A new published column without a rule below stops the generator: every column must be thought
about before it can be published.

Per table a suite has:
- the exact column allowlist, a type per column (checked value by value), NULL rules and the
  primary key's uniqueness;
- ranges and formats: counts and sums within bounds, rates within [0, 1], months, quarters and
  countries in their formats, labels in the sets this project generates;
- every text column scanned by all identifier detectors and by the known-identifier index;
- the disclosure rules: no count from 1 to the smallest published count - 1 (counts are
  perturbed, `anonymise.cellkey`), rows suppressed whole, no margin group hiding a single row,
  and k-anonymity over the quasi-identifiers. The release audit (`validation.release_audit`)
  runs beside the suites, over all tables at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise import labels
from ccg_pipeline.policy import load_data_map, load_notice
from ccg_pipeline.policy.models import DataMap, Role
from ccg_pipeline.scan.detectors import DETECTORS
from ccg_pipeline.warehouse import schema as s

# Bump when a suite's meaning changes (not when only the thresholds from the policy do).
SUITE_VERSION = 2
SUITE_DIR = Path(__file__).resolve().parents[2] / "expectations"

MAX_COUNT = 10**9
MAX_PENCE = 10**13  # £100bn: no month of CCG revenue comes near; a card number would exceed it
MAX_DAYS = 3660

# Columns that hold a person's identity or a link back to it in the personal and ops zones.
# Pseudonyms (keyed hashes) are pseudonymisation, not anonymisation: they never leave those zones.
LINKING_COLUMNS = frozenset(
    {
        *("subject_id", "subject_key", "subject_pseudonym", "email_norm", "ip_prefix"),
        *("user_agent", "url", "referrer", "source_file", "line_no", "company_id", "user_id"),
        *("crm_contact_id", "crm_company_id", "invoice_id", "order_id", "contract_id"),
        *("payment_id", "invoice_number"),
    }
)


def forbidden_columns(data_map: DataMap) -> set[str]:
    """Direct identifiers of every source in the data map, plus the linking columns above."""
    direct = {
        name
        for source in data_map.sources
        for name in data_map.columns_with_role(source, Role.DIRECT_IDENTIFIER)
    }
    return {name.lower() for name in direct} | LINKING_COLUMNS


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _regex(pattern: str) -> list[dict[str, Any]]:
    return [_expect("expect_column_values_to_match_regex", regex=pattern)]


def _in_set(values: list[str]) -> list[dict[str, Any]]:
    return [_expect("expect_column_values_to_be_in_set", value_set=sorted(values))]


def _between(low: float, high: float) -> list[dict[str, Any]]:
    return [_expect("expect_column_values_to_be_between", min_value=low, max_value=high)]


# Labels that come from the sources (sectors, services, URL sections): words, not identifiers.
# `*` is a value generalised away (customer profiles).
LABEL = r"^(?:\*|[A-Za-z0-9][A-Za-z0-9 &,.()'/+_-]{0,59})$"
SUPPRESSED = h.SUPPRESSED

# Value rules per column name; names mean the same in every published table.
COLUMN_RULES: dict[str, list[dict[str, Any]]] = {
    "quarter": _regex(r"^\d{4}-Q[1-4]$"),
    "month": _regex(r"^\d{4}-(?:0[1-9]|1[0-2])$"),
    "day": [],  # typed as a date; nothing else to say
    "country": _regex(r"^[A-Z]{2}$"),
    "sector": _regex(LABEL),
    "service": _regex(LABEL),
    "main_service": _regex(LABEL),
    "site_section": _regex(r"^[\w-]{1,40}$"),
    "browser_family": _in_set([name for name, _ in labels.BROWSERS] + [labels.OTHER]),
    "region": _in_set([*labels.REGION_LABELS, SUPPRESSED]),
    "request_type": _in_set(list(s.REQUEST_TYPES)),
    "size_band": _in_set(
        [band for _, band in h.EMPLOYEE_BANDS + h.EMPLOYEE_BANDS_COARSE] + [SUPPRESSED]
    ),
    "revenue_band": _in_set(
        [band for _, band in h.REVENUE_BANDS_GBP + h.REVENUE_BANDS_GBP_COARSE] + [SUPPRESSED]
    ),
    "customer_since": _regex(r"^(?:\d{4}(?:-Q[1-4]|-\d{4})?|\*)$"),
    "profile_id": _between(0, MAX_COUNT),
    "consent_rate": _between(0, 1),
    "opt_out_rate": _between(0, 1),
    "median_days_to_complete": _between(0, MAX_DAYS),
    "revenue_pence": _between(0, MAX_PENCE),
}


def _python_type(column: sa.Column) -> str:
    """The Python type a value of `column` arrives as from either database driver."""
    kind = column.type
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.Float):
        return "float"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.String):
        return "str"
    raise ValueError(f"no type rule for {column.table.name}.{column.name} ({kind})")


def text_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.columns if _python_type(c) == "str"]


def measures_of(table: sa.Table) -> list[str]:
    return s.columns_of_kind(table, s.COUNT) + s.columns_of_kind(table, s.SUM)


def _column_expectations(column: sa.Column, smallest_count: int) -> list[dict[str, Any]]:
    name = column.name
    kind = column.info.get("kind")
    if kind == s.COUNT:
        rules = [
            *_between(0, MAX_COUNT),
            _expect(
                "expect_column_values_to_not_be_in_set", value_set=list(range(1, smallest_count))
            ),
        ]
    elif name in COLUMN_RULES:
        rules = COLUMN_RULES[name]
    else:
        raise ValueError(
            f"published column {column.table.name}.{name} has no rule in "
            "ccg_pipeline/validation/suites.py COLUMN_RULES"
        )
    out = [_expect("expect_column_values_to_be_in_type_list", type_list=[_python_type(column)])]
    if not column.nullable:
        out.append(_expect("expect_column_values_to_not_be_null"))
    out += rules
    if _python_type(column) == "str":
        out += [
            _expect(
                "expect_column_values_to_not_contain_identifiers",
                detectors=[d.name for d in DETECTORS],
            ),
            _expect("expect_column_values_to_not_contain_known_identifiers"),
        ]
    return [{**e, "kwargs": {"column": name, **e["kwargs"]}} for e in out]


def suite_for(table: sa.Table, *, k: int, smallest_count: int) -> dict[str, Any]:
    """The suite of one published table, as the JSON-ready dict committed to `expectations/`."""
    forbidden = forbidden_columns(load_data_map())
    columns = [c.name for c in table.columns]
    leaking = sorted(set(columns) & forbidden)
    if leaking:
        raise ValueError(f"{table.name} would publish identifying or linking columns {leaking}")
    keys = s.dimensions_of(table)
    expectations = [
        _expect("expect_table_columns_to_match_set", column_set=columns, exact_match=True),
        _expect("expect_compound_columns_to_be_unique", column_list=keys)
        if len(keys) > 1
        else _expect("expect_column_values_to_be_unique", column=keys[0]),
    ]
    for column in table.columns:
        expectations += _column_expectations(column, smallest_count)
    measures = measures_of(table)
    if measures:
        expectations += [
            _expect("expect_table_rows_to_be_suppressed_whole", measures=measures),
            _expect(
                "expect_table_margins_to_not_hide_a_single_cell",
                dimensions=keys,
                measures=measures,
            ),
        ]
    quasi = s.columns_of_kind(table, s.QUASI_IDENTIFIER)
    if quasi:
        expectations.append(
            _expect("expect_table_groups_to_have_at_least_k_rows", column_list=quasi, k=k)
        )
    return {
        "name": f"statistics.{table.name}",
        "expectations": [{**e, "meta": {}} for e in expectations],
        "meta": {
            "suite_version": SUITE_VERSION,
            "table": f"statistics.{table.name}",
            "k": k,
            "smallest_count": smallest_count,
            "generated_by": "ccg expectations write",
        },
        "notes": {
            "format": "markdown",
            "content": f"Validation gate for `statistics.{table.name}`: run on "
            f"`staging.build_{table.name}` before every publication. Generated from "
            "ccg_pipeline/validation/suites.py; do not edit by hand.",
        },
    }


def expected_suites() -> dict[Path, str]:
    """Every suite file as the generator writes it."""
    settings = load_notice().settings
    out = {}
    for _build, published in s.PUBLISHED:
        suite = suite_for(
            published,
            k=settings.k_anonymity,
            smallest_count=settings.perturbation.smallest_published_count,
        )
        out[SUITE_DIR / f"{published.name}.json"] = json.dumps(suite, indent=2) + "\n"
    return out


def write(directory: Path = SUITE_DIR) -> list[Path]:
    written = []
    for path, text in expected_suites().items():
        target = directory / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


def stale(directory: Path = SUITE_DIR) -> list[str]:
    """Suite files that are missing or differ from what the generator writes."""
    out = []
    for path, text in expected_suites().items():
        target = directory / path.name
        if not target.exists() or target.read_text() != text:
            out.append(target.name)
    return out


@dataclass(frozen=True)
class SuiteFile:
    table: str
    path: Path
    content: dict[str, Any]
    sha256: str

    @property
    def version(self) -> str:
        return f"v{self.content['meta']['suite_version']}+{self.sha256[:12]}"


def load(table: str, directory: Path = SUITE_DIR) -> SuiteFile:
    """The committed suite for published table `table`, with the hash of its exact bytes."""
    path = directory / f"{table}.json"
    raw = path.read_bytes()
    return SuiteFile(table, path, json.loads(raw), hashlib.sha256(raw).hexdigest())

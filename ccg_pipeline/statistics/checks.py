"""The checks every staging build must pass before publication (N-AGG).

They read the staging tables back, so they judge exactly what would be published, and they
report counts and column names only: a failure message never carries a value.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.anonymise.kanon import min_group_size
from ccg_pipeline.policy.models import DataMap, Notice, Role
from ccg_pipeline.statistics.build import read_frame
from ccg_pipeline.warehouse import schema as s

# Columns that hold a person's identity or a link back to it in the personal and ops zones.
# Pseudonyms (keyed hashes) are pseudonymisation, not anonymisation: they never leave those zones.
LINKING_COLUMNS = frozenset(
    {
        "subject_id",
        "subject_key",
        "subject_pseudonym",
        "email_norm",
        "ip_prefix",
        "user_agent",
        "url",
        "referrer",
        "source_file",
        "line_no",
        "company_id",
        "user_id",
        "crm_contact_id",
        "crm_company_id",
        "invoice_id",
        "order_id",
        "contract_id",
        "payment_id",
        "invoice_number",
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


def lone_suppressed_groups(frame: pd.DataFrame, dimensions: list[str], hidden: pd.Series) -> int:
    """Margin groups (cells sharing all dimensions but one) that hide exactly one of two or more
    cells: a reader holding the group's total could recover that cell."""
    lone = 0
    for varying in dimensions:
        others = [d for d in dimensions if d != varying]
        keys = [frame[d].astype(str) for d in others] if others else [pd.Series(0, frame.index)]
        grouped = hidden.groupby(keys, sort=False)
        per_group = pd.DataFrame({"hidden": grouped.sum(), "cells": grouped.size()})
        lone += int(((per_group["hidden"] == 1) & (per_group["cells"] > 1)).sum())
    return lone


def check_table(
    frame: pd.DataFrame, table: sa.Table, *, k: int, min_cell: int, forbidden: set[str]
) -> list[str]:
    """Reasons the staged `frame` of `table` must not be published (empty when it may be)."""
    failures: list[str] = []
    leaking = sorted(set(frame.columns) & forbidden)
    if leaking:
        failures.append(f"identifying or linking columns present: {leaking}")
    counts = s.columns_of_kind(table, s.COUNT)
    sums = s.columns_of_kind(table, s.SUM)
    quasi = s.columns_of_kind(table, s.QUASI_IDENTIFIER)
    if counts and len(frame):
        values = frame[counts].apply(pd.to_numeric)
        small = int(((values > 0) & (values < min_cell)).sum().sum())
        if small:
            failures.append(f"{small} published count(s) below the minimum cell size {min_cell}")
        if (values < 0).any().any():
            failures.append("negative counts")
        nulls = frame[counts + sums].isna()
        hidden = nulls.all(axis=1)
        if int((nulls.any(axis=1) & ~hidden).sum()):
            failures.append("rows suppressed only in part")
        lone = lone_suppressed_groups(frame, s.dimensions_of(table), hidden)
        if lone:
            failures.append(f"{lone} margin group(s) hide a single cell")
    if quasi and len(frame):
        smallest = min_group_size(frame, quasi)
        if smallest < k:
            failures.append(f"smallest group over the quasi-identifiers has {smallest} < k={k}")
    return failures


def check_builds(
    conn: Connection, notice: Notice, data_map: DataMap, run_id: str
) -> dict[str, list[str]]:
    """Check every staging build of `run_id`; returns the failures per table."""
    settings = notice.settings
    forbidden = forbidden_columns(data_map)
    manifest = {
        row.table_name: row.run_id for row in conn.execute(sa.select(s.build_manifest)).all()
    }
    results: dict[str, list[str]] = {}
    for build, published in s.PUBLISHED:
        failures: list[str] = []
        if manifest.get(published.name) != run_id:
            failures.append("the staging build belongs to another run")
        failures += check_table(
            read_frame(conn, sa.select(build)),
            build,
            k=settings.k_anonymity,
            min_cell=settings.min_cell_count,
            forbidden=forbidden,
        )
        results[published.name] = failures
    return results

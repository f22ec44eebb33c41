"""The validation gate: every staged statistics table against its GX suite, before publication.

One run of the gate:
1. refuses a staging build that is not this run's, and a suite whose thresholds are not the
   policy's (a stale suite must be regenerated, not trusted);
2. loads the known-identifier index from the personal zone into memory;
3. validates each `staging.build_*` table, read value by value as the database returns it, with
   its suite from `expectations/`, through a GX file context under `$CCG_HOME/gx`, which keeps
   the validation results and builds the Data Docs;
4. audits the release as an attacker holding every release would (`release_audit`: the
   narrowest interval, by linear programming, to which any hidden or perturbed cell can be
   bound), one more outcome per table;
5. writes one row per expectation to `ops.validation_results` and the verdict to
   `ops.statistics_reports`, in one transaction;
6. raises `ValidationGateFailed`, with counts per failing expectation, when anything failed.

Results are requested as `BASIC` with `partial_unexpected_count: 0`: GX then returns how many
values failed but none of the values, so nothing identifying reaches a log, XCom, the stored
results or the Data Docs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.config import positive_int_from_env
from ccg_pipeline.policy import load_notice
from ccg_pipeline.validation import known_identifiers, release_audit, suites
from ccg_pipeline.validation.offline_docs import make_offline
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.sql import frame_of

log = logging.getLogger(__name__)

# Counts, never values: see the module docstring.
RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
DATASOURCE = "staging"
# Gate runs whose GX results and pages are kept (`CCG_GX_RUNS_KEPT`). The Data Docs index reads
# every stored result each time it is built, so an unbounded store makes each day's gate slower
# than the last; the full record stays in `ops.validation_results`.
DEFAULT_GX_RUNS_KEPT = 90


class ValidationGateFailed(RuntimeError):
    """A staged table failed its suite; nothing was published."""


class SuiteOutOfDate(RuntimeError):
    """A committed suite does not match the policy's thresholds; regenerate it."""


@dataclass(frozen=True)
class ExpectationOutcome:
    table: str
    position: int
    expectation: str
    column: str | None
    success: bool
    unexpected: int | None  # failing values, for column expectations
    observed: float | None  # the measured value, for table expectations (a count or a size)
    error: bool = False
    # Which cells failed, by their dimensions (never their values): the release audit's.
    cells: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.cells:
            shown = ", ".join(self.cells[:5]) + (" ..." if len(self.cells) > 5 else "")
            return (
                f"{where}: {self.expectation}: {len(self.cells)} cell(s) an attacker narrows "
                f"below the protection level: {shown}"
            )
        if self.error:
            return f"{where}: {self.expectation} raised an error (see the task log)"
        if self.unexpected is not None:
            return f"{where}: {self.expectation}: {self.unexpected} value(s) failed"
        return f"{where}: {self.expectation}: observed {self.observed}"


@dataclass
class GateReport:
    run_id: str
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    suite_versions: dict[str, str] = field(default_factory=dict)
    data_docs: Path | None = None
    audits: list[release_audit.TableAudit] = field(default_factory=list)

    def add_audits(self, audits: list[release_audit.TableAudit]) -> None:
        """The release audit's verdict per table, as one more outcome after the suite's."""
        self.audits = audits
        for audit in audits:
            position = sum(o.table == audit.table for o in self.outcomes)
            self.outcomes.append(
                ExpectationOutcome(
                    table=audit.table,
                    position=position,
                    expectation="release_audit_attacker_interval_at_least_protection",
                    column=None,
                    success=audit.passed,
                    unexpected=len(audit.below_protection),
                    observed=audit.narrowest_width,
                    cells=tuple(audit.below_protection),
                )
            )
            log.info(
                "release audit of staging.build_%s: %d cells and flows, narrowest attacker "
                "interval %s (protection %s), %d hidden, %d LP solves, %d group(s) reconciled "
                "without identities across releases, %d inconsistent",
                audit.table,
                audit.cells_checked,
                audit.narrowest_width,
                audit.protection_width,
                audit.hidden_cells,
                audit.lp_solves,
                audit.relaxed_components,
                audit.inconsistent_components,
            )

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def failed_tables(self) -> list[str]:
        return sorted({o.table for o in self.failed})

    def summary(self) -> dict[str, Any]:
        """Counts only: fit for XCom."""
        return {
            "tables": len(self.suite_versions),
            "expectations": len(self.outcomes),
            "failed": len(self.failed),
            "failed_tables": self.failed_tables(),
            "suite_versions": self.suite_versions,
            "data_docs": str(self.data_docs) if self.data_docs else None,
        }


def gx_root(home: Path) -> Path:
    return home / "gx"


def data_docs_index(home: Path) -> Path:
    return gx_root(home) / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _context(home: Path) -> Any:
    """A GX file context under `$CCG_HOME/gx`: no analytics (there is no network to send them
    to, and nothing should leave), no progress bars in task logs."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # GX narrates every store write at INFO; the gate logs its own outcome per table.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    import ccg_pipeline.validation.expectations  # noqa: F401  (registers the custom ones)

    root = gx_root(home)
    created = not (root / "great_expectations.yml").exists()
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", context_root_dir=str(root))
    if created:  # settings saved in the project's great_expectations.yml
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.enable_analytics(False)  # also saves the variables
    return context


def _suite(gx: Any, suite_file: suites.SuiteFile) -> Any:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    content = suite_file.content
    expectations = [
        ExpectationConfiguration(
            type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or {}
        ).to_domain_obj()
        for e in content["expectations"]
    ]
    meta = {**content["meta"], "suite_sha256": suite_file.sha256}
    return gx.ExpectationSuite(name=content["name"], expectations=expectations, meta=meta)


def _validation_definition(context: Any, gx: Any, table: str, suite_file: suites.SuiteFile) -> Any:
    """The table's validation definition in the GX project, replaced only when the committed
    suite changed (GX compares suites expectation by expectation, which is slow)."""
    name = f"gate_{table}"
    try:
        existing = context.validation_definitions.get(name)
        if existing.suite.meta.get("suite_sha256") == suite_file.sha256:
            return existing
    except Exception:  # absent or unreadable: (re)create it below
        pass
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(DATASOURCE)
    asset_name = f"build_{table}"
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(asset_name)
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None)
    batch = batch or asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add_or_update(_suite(gx, suite_file))
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )


def _staged(conn: sa.Connection, build: sa.Table) -> pd.DataFrame:
    """The staged rows exactly as the driver returns them (Python objects, NULL as None), so the
    type expectations see each value's real type rather than pandas' inference."""
    return frame_of(conn.execute(sa.select(build)), dtype=object)


def _outcomes(table: str, results: Any) -> list[ExpectationOutcome]:
    out = []
    for position, item in enumerate(results.results):
        config = item.expectation_config
        result = item.result or {}
        observed = result.get("observed_value")
        out.append(
            ExpectationOutcome(
                table=table,
                position=position,
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(item.success),
                unexpected=result.get("unexpected_count"),
                observed=float(observed) if isinstance(observed, int | float) else None,
                error=bool((item.exception_info or {}).get("raised_exception")),
            )
        )
    return out


def _assert_built_by(conn: sa.Connection, run_id: str) -> None:
    manifest = {r.table_name: r.run_id for r in conn.execute(sa.select(s.build_manifest)).all()}
    others = sorted(p.name for _b, p in s.PUBLISHED if manifest.get(p.name) != run_id)
    if others:
        raise ValidationGateFailed(
            f"the staging builds of {others} are not run {run_id}'s; nothing was published"
        )


def _suite_files(k: int, smallest_count: int) -> dict[str, suites.SuiteFile]:
    files = {p.name: suites.load(p.name) for _b, p in s.PUBLISHED}
    stale = sorted(
        name
        for name, f in files.items()
        if (f.content["meta"].get("k"), f.content["meta"].get("smallest_count"))
        != (k, smallest_count)
    )
    if stale:
        raise SuiteOutOfDate(
            f"suites {stale} were generated for other thresholds than the policy's k={k}, "
            f"smallest published count={smallest_count}: run `ccg expectations write` and "
            "review the change"
        )
    return files


def validate_frames(
    frames: dict[str, pd.DataFrame],
    index: known_identifiers.KnownIdentifiers,
    home: Path,
    run_id: str,
) -> GateReport:
    """Validate each frame (published table name -> rows) with its committed suite, with `index`
    as the known identifiers; store the GX results and rebuild the Data Docs under `home`."""
    policy = load_notice().settings
    files = _suite_files(policy.k_anonymity, policy.perturbation.smallest_published_count)
    context = _context(home)
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    report = GateReport(run_id)
    gx_run = RunIdentifier(run_name=run_id, run_time=dt.datetime.now(dt.UTC))
    new_pages = []  # render this run's pages (and the index), not every stored result again
    with known_identifiers.activated(index):
        for table, frame in frames.items():
            suite_file = files[table]
            definition = _validation_definition(context, gx, table, suite_file)
            results = definition.run(
                batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT, run_id=gx_run
            )
            suite_id = ExpectationSuiteIdentifier(name=definition.suite.name)
            new_pages += [
                suite_id,
                ValidationResultIdentifier(
                    expectation_suite_identifier=suite_id,
                    run_id=gx_run,
                    batch_identifier=f"{DATASOURCE}-build_{table}",
                ),
            ]
            outcomes = _outcomes(table, results)
            report.outcomes += outcomes
            report.suite_versions[table] = suite_file.version
            failed = [o for o in outcomes if not o.success]
            log.info(
                "validated staging.build_%s (%d rows) with suite %s: %d of %d expectations passed",
                table,
                len(frame),
                suite_file.version,
                len(outcomes) - len(failed),
                len(outcomes),
            )
            for outcome in failed:
                log.error("validation failed: %s", outcome.describe())
    built_from = time.time() - 1  # file times can be coarser than this clock
    report.data_docs = data_docs_index(home)
    site = report.data_docs.parent
    prune_gx_runs(context, site, positive_int_from_env("CCG_GX_RUNS_KEPT", DEFAULT_GX_RUNS_KEPT))
    context.build_data_docs(resource_identifiers=new_pages)
    make_offline(site, [p for p in site.rglob("*.html") if p.stat().st_mtime >= built_from])
    return report


def prune_gx_runs(context: Any, site: Path, keep: int) -> int:
    """Remove the stored GX results, and their Data Docs pages, of all but the newest `keep`
    gate runs; returns how many results went."""
    store = context.validation_results_store
    keys = store.list_keys()
    # A key's run id is (run name, run time); run times are ISO text and sort as time.
    runs = sorted({key.run_id.to_tuple() for key in keys}, key=lambda run: (run[1], run[0]))
    stale = set(runs[:-keep])
    removed = 0
    for key in keys:
        if key.run_id.to_tuple() not in stale:
            continue
        store.remove_key(key)
        *folder, page = key.to_tuple()
        (site / "validations" / Path(*folder) / f"{page}.html").unlink(missing_ok=True)
        removed += 1
    if removed:
        for folder in sorted((site / "validations").glob("**/"), reverse=True):
            with contextlib.suppress(OSError):  # not empty: a kept run's pages
                folder.rmdir()
        log.info(
            "removed the GX results of %d gate run(s), keeping the newest %d", len(stale), keep
        )
    return removed


def validate_staging(engine: Engine, run_id: str, home: Path) -> GateReport:
    """Validate every staged table of `run_id`; record the outcome; raise if anything failed."""
    with engine.connect() as conn:
        _assert_built_by(conn, run_id)
        frames = {published.name: _staged(conn, build) for build, published in s.PUBLISHED}
        releases = release_audit.frozen_releases(conn)
        margins = release_audit.profile_margins(conn, frames["customer_profiles"], run_id)
        candidates = known_identifiers.Candidates.of_frames(frames.values())
        index = known_identifiers.load(conn, candidates)
        log.info(
            "known-identifier scan: %d word n-grams and %d phone keys in the staged cells, "
            "%d of them known identifiers of the personal zone",
            len(candidates.words),
            len(candidates.phones),
            len(index),
        )
    report = validate_frames(frames, index, home, run_id)
    spec = load_notice().settings.perturbation
    report.add_audits(release_audit.audit_release(frames, spec, releases, margins))
    _record(engine, report)
    if report.failed:
        lines = "\n".join(f"  {o.describe()}" for o in report.failed)
        raise ValidationGateFailed(
            f"{len(report.failed_tables())} of {len(frames)} staged tables failed validation "
            f"({', '.join(report.failed_tables())}); nothing was published. "
            f"{len(report.failed)} failing expectation(s):\n{lines}\n"
            f"Data Docs: {report.data_docs}"
        )
    return report


def _record(engine: Engine, report: GateReport) -> None:
    """Per-expectation evidence and each table's verdict, in one transaction."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with write_transaction(engine) as conn:
        conn.execute(
            sa.delete(s.validation_results).where(s.validation_results.c.run_id == report.run_id)
        )
        rows = [
            {
                "run_id": report.run_id,
                "table_name": o.table,
                "position": o.position,
                "expectation": o.expectation,
                "column_name": o.column,
                "success": o.success,
                "unexpected_count": o.unexpected,
                "observed_value": o.observed,
                "raised_error": o.error,
                "suite_version": report.suite_versions[o.table],
                "validated_at": now,
            }
            for o in report.outcomes
        ]
        if rows:
            conn.execute(sa.insert(s.validation_results), rows)
        conn.execute(sa.delete(s.release_audits).where(s.release_audits.c.run_id == report.run_id))
        if report.audits:
            conn.execute(sa.insert(s.release_audits), [a.row(report.run_id) for a in report.audits])
        r = s.statistics_reports
        for table in report.suite_versions:
            failures = [o.describe() for o in report.failed if o.table == table]
            conn.execute(
                sa.update(r)
                .where(r.c.run_id == report.run_id, r.c.table_name == table)
                .values(failures="; ".join(failures), passed=not failures)
            )

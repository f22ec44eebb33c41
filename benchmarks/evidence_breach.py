"""Compliance evidence and breach impact on a small and a large warehouse.

Builds a warehouse per size and backend the way `make demo` does, with the project's own code:
`ccg generate` (`--sizes`: companies and prospects each; default S = 2,000 and L = 20,000, web
logs of 5 lines per company a day over 3 days), `ccg ingest` of every source,
`ccg retention run` (with, on PostgreSQL, the `ccg_retention` DAG's `VACUUM (ANALYZE)` after
it) and `ccg statistics run` (so the statistics zone is populated). Then, with the warehouse
read-only, it times

- `ccg_pipeline.evidence.collect` (the 9 clause checks of the `ccg_evidence` DAG), and each
  check of `ccg_pipeline.evidence.checks.CHECKS` on its own, as `collect` runs it;
- `ccg_pipeline.breach.assess` (`ccg breach-impact`) for four personal-zone tables and for a
  leaked copy of the newest CRM contacts export (`crm/contacts_*.csv`),

`--repeats` times each (default 3), and reports medians, the statements each ran, the rows of
the warehouse tables those statements read (and, on PostgreSQL, the rows it actually scanned),
the peak RSS of the process while it ran, and the L/S ratio. PostgreSQL is measured when its
server binaries are present (the script starts its own throw-away server).

    .venv/bin/python benchmarks/evidence_breach.py [--sizes 2000,20000] [--repeats R] [--no-postgres]

Writes benchmarks/results/evidence_breach.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import re
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from results_io import save
from warehouses import warehouse_urls

from ccg_pipeline.config import Settings
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

AS_OF = dt.date(2026, 11, 23)
WINDOW_END = dt.datetime(2026, 11, 24)
LOG_DAYS = 3
LOG_LINES_PER_COMPANY = 5  # web-log lines a day per company
BREACH_TABLES = (
    "personal.portal_users",
    "personal.payments",
    "personal.crm_activities",
    "personal.web_access",
)
LEAK = "leaked CRM contacts CSV"
ICO_HOURS = 72


# --- building a warehouse (in a child process, so its memory is not counted below) ----------


def _settings(home: Path, sources: Path, url: str) -> Settings:
    return Settings.from_env(
        {"CCG_HOME": str(home), "CCG_SOURCE_DIR": str(sources), "CCG_WAREHOUSE_URL": url}
    )


def generate_sources(out: Path, companies: int) -> dict[str, int]:
    from ccg_pipeline.devtools.generate import GenerateOptions, generate

    report = generate(
        GenerateOptions(
            out=out,
            seed=42,
            as_of=AS_OF,
            companies=companies,
            prospects=companies,
            log_days=LOG_DAYS,
            log_lines_per_day=LOG_LINES_PER_COMPANY * companies,
        )
    )
    return report.counts


def build_warehouse(settings: Settings) -> dict[str, float]:
    """What `ccg ingest`, `ccg retention run` (then the DAG's vacuum) and `ccg statistics run`
    do, timed per step."""
    from ccg_pipeline import publication as stats
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.retention import run_retention
    from ccg_pipeline.retention.sweep import vacuum_personal_zone
    from ccg_pipeline.warehouse import migrate

    seconds: dict[str, float] = {}
    engine = create_warehouse_engine(settings.warehouse_url)
    migrate.upgrade(engine)
    engine.dispose()
    t0 = time.perf_counter()
    for source in ("portal", "crm", "web_logs", "auth_logs"):
        ingest_source(
            settings,
            source,
            run_id=f"cli__{AS_OF.isoformat()}",
            window_start=None,
            window_end=WINDOW_END,
        )
    seconds["ingest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_retention(settings, AS_OF, f"cli__retention__{AS_OF}")
    seconds["retention"] = time.perf_counter() - t0
    # What the ccg_retention DAG does next (PostgreSQL only): VACUUM (ANALYZE) the swept tables,
    # so the planner has statistics, as autovacuum would give a warehouse in service.
    t0 = time.perf_counter()
    with migrate.migrated(settings.warehouse_url) as engine:
        if vacuum_personal_zone(engine):
            seconds["vacuum"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_id = f"cli__{AS_OF.isoformat()}"
    stats.build_statistics(settings, AS_OF, run_id)
    stats.validate_statistics(settings, run_id)
    stats.publish_statistics(settings, run_id)
    seconds["statistics"] = time.perf_counter() - t0
    return seconds


def _in_child(function: Callable[..., Any], *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


# --- measuring --------------------------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux: /proc/self/clear_refs), so each measurement has
    its own peak; False where that is not possible (the peak is then since process start)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TableReads:
    """The statements run on an engine, and the warehouse tables they name."""

    def __init__(self, engine: sa.Engine, row_counts: dict[str, int]):
        self.row_counts = row_counts
        self.patterns = {
            name: re.compile(rf'\b"?{schema}"?\."?{table}"?\b', re.IGNORECASE)
            for name, (schema, table) in ((n, n.split(".", 1)) for n in row_counts)
        }
        self.statements: list[set[str]] = []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if statement.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK"):
            return
        self.statements.append({n for n, p in self.patterns.items() if p.search(statement)})

    def take(self) -> tuple[int, int]:
        """(statements, rows of the distinct warehouse tables they name) since the last take."""
        tables = set().union(*self.statements)
        count = len(self.statements)
        self.statements = []
        return count, sum(self.row_counts[n] for n in tables)


class PgTuplesRead:
    """Rows PostgreSQL read for a database: tuples returned by sequential scans plus index
    entries returned by index scans (pg_stat_user_tables and pg_stat_user_indexes). A backend
    reports its counts when it exits, so the measured engine is disposed before each read."""

    QUERY = sa.text(
        "SELECT (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables)"
        " + (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes)"
    )

    def __init__(self, url: str):
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def read(self) -> int:
        previous = None
        for _ in range(50):  # until two reads 0.2 s apart agree (at most 10 s)
            with self.engine.connect() as conn:
                value = int(conn.execute(self.QUERY).scalar_one())
            if value == previous:
                return value
            previous = value
            time.sleep(0.2)
        return value


def table_rows(engine: sa.Engine) -> dict[str, int]:
    counts = {}
    with engine.connect() as conn:
        for table in s.metadata.sorted_tables:
            query = sa.select(sa.func.count()).select_from(table)
            counts[f"{table.schema}.{table.name}"] = conn.execute(query).scalar_one()
    return counts


def measure(
    engine: sa.Engine,
    reads: TableReads,
    tuples: PgTuplesRead | None,
    repeats: int,
    run: Callable[[], Any],
) -> dict[str, Any]:
    """Median of `repeats` runs, each on a fresh connection pool as a command or task has."""
    seconds, peaks, result = [], [], None
    statements = rows_read = scanned = None
    for n in range(repeats):
        engine.dispose()
        before = tuples.read() if tuples and n == 0 else 0
        reads.take()
        _reset_peak_rss()
        t0 = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - t0)
        peaks.append(_peak_rss_mib())
        if n == 0:
            statements, rows_read = reads.take()
            if tuples:
                engine.dispose()
                scanned = tuples.read() - before
    return {
        "seconds_median": statistics.median(seconds),
        "seconds": [round(x, 4) for x in seconds],
        "statements": statements,
        "rows_in_tables_read": rows_read,
        "rows_scanned_pg_stat": scanned,
        "peak_rss_mib": round(max(peaks)),
        "result": result,
    }


def measure_warehouse(
    settings: Settings, leak: Path, repeats: int, since: dt.date | None
) -> dict[str, Any]:
    from ccg_pipeline import breach, evidence
    from ccg_pipeline.evidence.checks import CHECKS, CheckContext
    from ccg_pipeline.policy import load_notice

    url = settings.warehouse_url
    engine = create_warehouse_engine(url)
    counts = table_rows(engine)
    reads = TableReads(engine, counts)
    tuples = None if engine.dialect.name == "sqlite" else PgTuplesRead(url)
    notice = load_notice()
    run_id = "bench__evidence"
    out: dict[str, Any] = {"table_rows": counts, "checks": {}, "breach": {}}

    def timed(run: Callable[[], Any]) -> dict[str, Any]:
        return measure(engine, reads, tuples, repeats, run)

    try:
        m = timed(lambda: evidence.collect(engine, settings, AS_OF, run_id))
        m["clauses_failed"] = m.pop("result").failed
        out["collect"] = m
        print(f"  collect      {m['seconds_median']:8.3f}s", flush=True)
        for check in CHECKS:

            def one(check=check):
                with engine.begin() as conn:
                    return check(CheckContext(conn, settings, notice, AS_OF, run_id))

            m = timed(one)
            result = m.pop("result")
            m["passed"] = result.passed
            out["checks"][result.clause] = m
            print(f"  {result.clause:<12} {m['seconds_median']:8.3f}s", flush=True)
        for source in (*BREACH_TABLES, str(leak)):
            m = timed(lambda source=source: breach.assess(source, engine, since))
            impact = m.pop("result")
            m.update(
                rows_total=impact.rows_total,
                rows_in_scope=impact.rows_in_scope,
                subjects_affected=impact.subjects_affected,
            )
            name = LEAK if source == str(leak) else source
            out["breach"][name] = m
            print(f"  {name:<26} {m['seconds_median']:8.3f}s", flush=True)
    finally:
        engine.dispose()
        if tuples is not None:
            tuples.engine.dispose()
    return out


# --- report -----------------------------------------------------------------------------------


def _ratio(large: float, small: float) -> str:
    return f"{large / small:.1f}x" if small > 0 else "n/a"


def _s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="2000,20000",
        help="companies (= prospects) of the small and the large warehouse",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        default=None,
        help="breach impact --since (default: not given, every row in scope)",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    small, large = (int(x) for x in args.sizes.split(","))
    sizes = {"S": small, "L": large}

    results: dict[str, dict[str, Any]] = {}
    builds: dict[str, dict[str, Any]] = {}
    generated: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ccg-bench-evidence-") as tmp:
        root = Path(tmp)
        with warehouse_urls(root, postgres=not args.no_postgres) as backends:
            for label, companies in sizes.items():
                sources = root / f"sources_{label}"
                t0 = time.perf_counter()
                counts = _in_child(generate_sources, sources, companies)
                generated[label] = {
                    "companies": companies,
                    "prospects": companies,
                    "counts": counts,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                print(f"{label}: generated in {generated[label]['seconds']}s {counts}", flush=True)
                # The leak: a copy of the newest CRM contacts export, as someone would send it.
                leak = root / f"leak_{label}" / "contacts_export.csv"
                leak.parent.mkdir()
                shutil.copy(sorted((sources / "crm").glob("contacts_*.csv"))[-1], leak)
                for backend, make_url in backends.items():
                    name = f"{backend}_{label}".lower()
                    settings = _settings(root / name, sources, make_url(name))
                    steps = _in_child(build_warehouse, settings)
                    builds.setdefault(backend, {})[label] = {
                        k: round(v, 1) for k, v in steps.items()
                    }
                    print(f"{backend} {label}: built {builds[backend][label]}", flush=True)
                    results.setdefault(backend, {})[label] = measure_warehouse(
                        settings, leak, args.repeats, args.since
                    )

    report: dict[str, Any] = {
        "benchmark": "evidence_breach",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "as_of": AS_OF.isoformat(),
        "repeats": args.repeats,
        "breach_since": args.since.isoformat() if args.since else None,
        "generated": generated,
        "build_seconds": builds,
        "backends": {},
    }
    gs, gl = generated["S"]["counts"], generated["L"]["counts"]
    lines = [
        f"# Compliance evidence and breach impact (median of {args.repeats})",
        "",
        f"S = {small:,} companies + {small:,} prospects ({gs['portal_users']:,} portal users, "
        f"{gs['crm_contacts']:,} CRM contacts, {gs['crm_activities']:,} CRM activities, "
        f"{gs['payments']:,} payments, {gs['web_log_lines']:,} web-log lines); "
        f"L = {large:,} + {large:,} ({gl['portal_users']:,}, {gl['crm_contacts']:,}, "
        f"{gl['crm_activities']:,}, {gl['payments']:,}, {gl['web_log_lines']:,}). "
        f"As of {AS_OF.isoformat()}.",
        "",
    ]
    for backend, by_size in results.items():
        S, L = by_size["S"], by_size["L"]
        rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
            ("evidence: collect (9 checks)", S["collect"], L["collect"])
        ]
        rows += [(f"evidence: {c}", S["checks"][c], L["checks"][c]) for c in S["checks"]]
        rows += [(f"breach: {b}", S["breach"][b], L["breach"][b]) for b in S["breach"]]
        measurements = {}
        for name, small_m, large_m in rows:
            measurements[name] = {
                size: {**m, "seconds_median": round(m["seconds_median"], 4)}
                for size, m in (("S", small_m), ("L", large_m))
            }
            measurements[name]["L_over_S"] = round(
                large_m["seconds_median"] / small_m["seconds_median"], 2
            )
        bound = max(L["checks"], key=lambda c: L["checks"][c]["seconds_median"])
        bound_s = L["checks"][bound]["seconds_median"]
        share = bound_s / sum(m["seconds_median"] for m in L["checks"].values())
        worst = max(L["breach"], key=lambda b: L["breach"][b]["seconds_median"])
        worst_s = L["breach"][worst]["seconds_median"]
        report["backends"][backend] = {
            "table_rows": {"S": S["table_rows"], "L": L["table_rows"]},
            "measurements": measurements,
            "evidence_bounded_by": bound,
            "evidence_bound_share_of_checks_L": round(share, 3),
            "slowest_breach_assessment_L": worst,
            "slowest_breach_assessment_L_seconds": round(worst_s, 2),
            "ico_deadline_seconds": ICO_HOURS * 3600,
        }
        pg = backend != "sqlite"
        lines += [
            f"## {backend}",
            "",
            "| measurement | S (s) | L (s) | L / S | statements | rows in tables read S | L "
            + ("| rows scanned S | L " if pg else "")
            + "| rows in scope L | peak RSS L (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if pg else "") + "---:|---:|",
        ]
        for name, small_m, large_m in rows:
            scanned = (
                f"| {_n(small_m['rows_scanned_pg_stat'])} | {_n(large_m['rows_scanned_pg_stat'])} "
                if pg
                else ""
            )
            lines.append(
                f"| {name} | {_s(small_m['seconds_median'])} | {_s(large_m['seconds_median'])} "
                f"| {_ratio(large_m['seconds_median'], small_m['seconds_median'])} "
                f"| {large_m['statements']} | {_n(small_m['rows_in_tables_read'])} "
                f"| {_n(large_m['rows_in_tables_read'])} {scanned}"
                f"| {_n(large_m.get('rows_in_scope'))} | {large_m['peak_rss_mib']:,} |"
            )
        minutes = "under a minute" if worst_s < 60 else f"{worst_s / 60:.1f} minutes"
        lines += [
            "",
            f"The evidence step is bounded by **{bound}** ({_s(bound_s)} s at L, {share:.0%} of "
            "the nine checks' time). The slowest breach assessment at L is "
            f"**{worst}**: {_s(worst_s)} s, {minutes}, i.e. "
            f"{worst_s / (ICO_HOURS * 3600):.4%} of the {ICO_HOURS}-hour ICO deadline.",
            "",
        ]
    lines += [
        "Building the warehouses (not part of the measurements above; one run each):",
        "",
        "| backend | step | S (s) | L (s) | L / S |",
        "|---|---|---:|---:|---:|",
    ]
    for backend, by_size in builds.items():
        for step in by_size["S"]:
            s_s, l_s = by_size["S"][step], by_size["L"][step]
            lines.append(f"| {backend} | {step} | {s_s} | {l_s} | {_ratio(l_s, s_s)} |")
    lines += [
        "",
        "Each warehouse is built as `make demo` builds it: `ccg generate` (web logs of "
        f"{LOG_LINES_PER_COMPANY} lines a day per company over {LOG_DAYS} days), `ccg ingest` "
        "of every source, `ccg retention run` (then, on PostgreSQL, the `ccg_retention` DAG's "
        "`VACUUM (ANALYZE)` of the swept tables), `ccg statistics run`. The measurements are "
        "read-only (`ccg evidence` without `--record`; nothing is quarantined), each run on a "
        "fresh connection pool as a command or DAG task has. 'statements': what one run "
        "executed. 'rows in tables read': the rows of the distinct warehouse tables those "
        "statements name, the data a run has to look at. 'rows scanned' (PostgreSQL only): "
        "tuples returned by sequential scans plus index entries returned by index scans, from "
        "pg_stat_user_tables and pg_stat_user_indexes. 'rows in scope': the rows the breach "
        "assessment covers (breach impact --since "
        f"{args.since.isoformat() if args.since else 'not given: every row'}). The leaked file "
        "is a copy of the newest CRM contacts export. Peak RSS is the benchmark process's, "
        f"reset before each measurement. {report['machine']}.",
    ]
    save("evidence_breach", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

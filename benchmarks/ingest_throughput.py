"""Ingest throughput: web-log lines per second and source rows per second.

Generates `--log-lines` web-log lines (default 1,000,000, over four daily rotated files) and a
portal + CRM population, then runs the same ingest code the DAG runs (`ingest_source`) into a
fresh warehouse, `--repeats` times per backend, and reports medians. PostgreSQL is measured when
its server binaries are present (the script starts its own throw-away server).

Each source is loaded twice in every repeat, each time into a fresh warehouse that holds only
what the source needs first (the CRM exports: the portal): the default way and the other way, in
alternating order, so the ratio between the two comes from one run on one machine. Web logs:
columnar by default (`ingest/web_batch.py`); the other way sends every line through
`parse_web_line` and writes dict rows (the previous implementation). CRM exports and portal
tables: row by row by default (`crm.COLUMNAR`, `portal.COLUMNAR`); the other way converts each
chunk a column at a time (`ingest/crm_batch.py`, `ingest/portal_batch.py`), which measured no
faster.

    .venv/bin/python benchmarks/ingest_throughput.py [--log-lines N] [--repeats R] [--no-postgres]

Writes benchmarks/results/ingest_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from functools import partial
from pathlib import Path
from unittest import mock

import pyarrow as pa
from results_io import save
from warehouses import warehouse_urls

from ccg_pipeline.anonymise.labels import browser_of, region_of_network
from ccg_pipeline.config import Settings
from ccg_pipeline.devtools.generate import GenerateOptions, _web_lines, generate, write_web_log
from ccg_pipeline.ingest import crm, ingest_source, logs, portal
from ccg_pipeline.ingest.common import _ipv6_prefix
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.engine import create_warehouse_engine

AS_OF = dt.date(2026, 11, 23)
WINDOW_END = dt.datetime(2026, 11, 24)


def make_sources(root: Path, log_lines: int, companies: int) -> Path:
    sources = root / "sources"
    generate(
        GenerateOptions(
            out=sources,
            seed=11,
            as_of=AS_OF,
            companies=companies,
            prospects=companies // 2,
            log_days=0,
        )
    )
    web = sources / "logs" / "web"
    web.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    days = 4
    for d in range(days):
        day = AS_OF - dt.timedelta(days=d)
        lines = _web_lines(rng, day, log_lines // days, 0.01, ["someone@example.com"])
        write_web_log(web / f"access.log-{day:%Y%m%d}.gz", lines)
    return sources


# The columnar web-log target of the ingest issue, per core, and the measured limit of reading
# the same log as space-delimited CSV (pyarrow, polars, DuckDB), for the ratios in the report.
TARGET_LINES_PER_S = 100_000
# Rows per second per core of the targets for CRM (and web logs) by backend.
TARGET_ROWS_PER_S = {"sqlite": 100_000, "postgres": 150_000}
# The write limits the issue measured on this machine: SQLite upserts, PostgreSQL COPY (low end).
WRITE_LIMIT_ROWS_PER_S = {"sqlite": 143_000, "postgres": 150_000}
CSV_READ_LIMIT_LINES_PER_S = 450_000


def per_line_web_parser() -> AbstractContextManager[object]:
    # The data map names the loader by module and function, looked up at each load.
    return mock.patch.object(logs, "load_web_log", partial(logs.load_web_log, columnar=False))


def columnar_crm_parser() -> ExitStack:
    stack = ExitStack()
    for kind in ("contacts", "companies", "activities"):
        loader = crm.make_loader(kind, columnar=True)
        stack.enter_context(mock.patch.object(crm, f"load_{kind}", loader))
    return stack


def columnar_portal_parser() -> AbstractContextManager[object]:
    return mock.patch.object(portal, "ingest_portal", partial(portal.ingest_portal, columnar=True))


def cold_label_caches() -> None:
    """Both ways start with empty per-value caches (the second load would otherwise find the
    first one's labels cached), and with Arrow's imports done (a DAG's worker has them)."""
    for cached in (_ipv6_prefix, region_of_network, browser_of):
        cached.cache_clear()
    pa.array(["warm"]).dictionary_encode()


def _fresh(warehouse_url: str, sources: Path, home: Path) -> Settings:
    settings = Settings.from_env(
        {"CCG_HOME": str(home), "CCG_SOURCE_DIR": str(sources), "CCG_WAREHOUSE_URL": warehouse_url}
    )
    engine = create_warehouse_engine(warehouse_url)
    migrate.upgrade(engine)
    engine.dispose()
    cold_label_caches()
    return settings


KWARGS = {"run_id": "bench", "window_start": None, "window_end": WINDOW_END}


# How to switch each source to its other way, and the source a fresh warehouse needs first.
OTHER_WAY = {
    "web_logs": per_line_web_parser,
    "crm": columnar_crm_parser,
    "portal": columnar_portal_parser,
}
LOADED_FIRST = {"crm": "portal"}


def load_seconds(
    source: str, warehouse_url: str, sources: Path, home: Path, *, other: bool
) -> tuple[float, int]:
    """(seconds, rows read) to load `source` into a fresh warehouse that holds only what it
    needs first, the default way or the other one. Both ways go through this one function, so
    they load into the same state (CRM after the portal, nothing else)."""
    settings = _fresh(warehouse_url, sources, home)
    if source in LOADED_FIRST:
        ingest_source(settings, LOADED_FIRST[source], **KWARGS)
    with OTHER_WAY[source]() if other else nullcontext():
        t0 = time.perf_counter()
        rows = ingest_source(settings, source, **KWARGS)["rows_read"]
        return time.perf_counter() - t0, rows


# Result keys per source: the default way's seconds and rows, and the other way's seconds.
SOURCE_KEYS = {"web_logs": "web", "portal": "portal", "crm": "crm"}


def run_once(
    make_url: Callable[[str], str], sources: Path, root: Path, repeat: int
) -> dict[str, float]:
    """Each source both ways, alternating which goes first from one repeat to the next so that
    neither always meets the warmer caches."""
    out: dict[str, float] = {}
    ways = (False, True) if repeat % 2 == 0 else (True, False)
    for source, key in SOURCE_KEYS.items():
        for other in ways:
            label = f"{'other' if other else 'default'}{key}{repeat}"
            seconds, rows = load_seconds(
                source, make_url(label), sources, root / label, other=other
            )
            if other:
                out[f"other_{key}_seconds"] = seconds
            else:
                out[f"{key}_seconds"] = seconds
                out["web_lines" if key == "web" else f"{key}_rows"] = rows
    out["rows"] = out["portal_rows"] + out["crm_rows"]
    out["rows_seconds"] = out["portal_seconds"] + out["crm_seconds"]
    return out


def median_of(
    runs: list[dict[str, float]], top: str, bottom: str, digits: int | None = None
) -> float:
    """The median over the repeats of `top / bottom` (a rate or a ratio), rounded."""
    return round(statistics.median(r[top] / r[bottom] for r in runs), digits)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-lines", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ccg-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        sources = make_sources(root, args.log_lines, args.companies)
        print(f"generated sources in {time.perf_counter() - t0:.1f}s", flush=True)
        with warehouse_urls(root, postgres=not args.no_postgres) as make_url:
            backends: dict[str, list[dict[str, float]]] = {backend: [] for backend in make_url}
            for n in range(args.repeats):
                for backend, runs in backends.items():
                    result = run_once(make_url[backend], sources, root, n)
                    runs.append(result)
                    print(
                        f"{backend} run {n + 1}: {result['web_lines'] / result['web_seconds']:,.0f} log lines/s "
                        f"(other way {result['web_lines'] / result['other_web_seconds']:,.0f}), "
                        f"CRM {result['crm_rows'] / result['crm_seconds']:,.0f} rows/s "
                        f"(other way {result['crm_rows'] / result['other_crm_seconds']:,.0f}), "
                        f"portal {result['portal_rows'] / result['portal_seconds']:,.0f} rows/s "
                        f"(other way {result['portal_rows'] / result['other_portal_seconds']:,.0f})",
                        flush=True,
                    )

    report = {
        "benchmark": "ingest_throughput",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "log_lines": args.log_lines,
        "repeats": args.repeats,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "backends": {},
    }
    for backend, runs in backends.items():
        report["backends"][backend] = {
            "log_lines_per_s_median": median_of(runs, "web_lines", "web_seconds"),
            "web_seconds_median": round(statistics.median(r["web_seconds"] for r in runs), 2),
            "other_log_lines_per_s_median": median_of(runs, "web_lines", "other_web_seconds"),
            "speedup_over_other_median": median_of(runs, "other_web_seconds", "web_seconds", 2),
            "rows": int(runs[0]["rows"]),
            "rows_per_s_median": median_of(runs, "rows", "rows_seconds"),
            "crm_rows": int(runs[0]["crm_rows"]),
            "crm_rows_per_s_median": median_of(runs, "crm_rows", "crm_seconds"),
            "other_crm_rows_per_s_median": median_of(runs, "crm_rows", "other_crm_seconds"),
            "crm_speedup_over_other_median": median_of(runs, "other_crm_seconds", "crm_seconds", 2),
            "portal_rows": int(runs[0]["portal_rows"]),
            "portal_rows_per_s_median": median_of(runs, "portal_rows", "portal_seconds"),
            "other_portal_rows_per_s_median": median_of(
                runs, "portal_rows", "other_portal_seconds"
            ),
            "portal_speedup_over_other_median": median_of(
                runs, "other_portal_seconds", "portal_seconds", 2
            ),
        }
    lines = [
        f"# Ingest throughput ({args.log_lines:,} web-log lines, median of {args.repeats})",
        "",
        "| backend | log lines/s (columnar) | per line (previous) | × per line | of target | of CSV-read limit "
        "| web-log ingest (s) | portal+CRM rows | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in report["backends"].items():
        rate = r["log_lines_per_s_median"]
        lines.append(
            f"| {backend} | {rate:,} | {r['other_log_lines_per_s_median']:,} "
            f"| {r['speedup_over_other_median']} | {rate / TARGET_LINES_PER_S:.0%} "
            f"| {rate / CSV_READ_LIMIT_LINES_PER_S:.0%} | {r['web_seconds_median']} | {r['rows']:,} "
            f"| {r['rows_per_s_median']:,} |"
        )
    lines += [
        "",
        "| backend | CRM rows | CRM rows/s (row by row) | column at a time | × column at a time "
        "| of target | of write limit | portal rows | portal rows/s (row by row) "
        "| column at a time | × column at a time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in report["backends"].items():
        rate = r["crm_rows_per_s_median"]
        target = TARGET_ROWS_PER_S[backend]
        lines.append(
            f"| {backend} | {r['crm_rows']:,} | {rate:,} | {r['other_crm_rows_per_s_median']:,} "
            f"| {r['crm_speedup_over_other_median']} | {rate / target:.0%} of {target:,} "
            f"| {rate / WRITE_LIMIT_ROWS_PER_S[backend]:.0%} of {WRITE_LIMIT_ROWS_PER_S[backend]:,} "
            f"| {r['portal_rows']:,} | {r['portal_rows_per_s_median']:,} "
            f"| {r['other_portal_rows_per_s_median']:,} "
            f"| {r['portal_speedup_over_other_median']} |"
        )
    lines += [
        "",
        f"Peak RSS of the benchmark process: {report['peak_rss_mib']} MiB. {report['machine']}.",
        f"Target: {TARGET_LINES_PER_S:,} lines/s per core; limit: reading the same log as CSV, "
        f"about {CSV_READ_LIMIT_LINES_PER_S:,} lines/s. The whole ingest runs on one core.",
    ]
    save("ingest_throughput", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

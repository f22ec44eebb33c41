"""GX validation on pandas against the SQL backend: the same suite, the same rows.

Takes the committed suite of the largest published table (`expectations/web_traffic_daily.json`),
keeps the expectations Great Expectations runs on both a pandas DataFrame and a SQL table (the
gate's own identifier, k-anonymity and suppression expectations are pandas-only, and so is the
value-by-value type check), and runs it on `--rows` generated rows of that table:

- pandas: the rows read from the warehouse into a DataFrame (as the gate reads them), then
  validated in memory; read and validate timed apart;
- SQL: the same table validated where it lies, through a GX SQL data source (the expectations
  become queries).

On SQLite always, and on PostgreSQL when the machine has the server binaries. Median of
`--repeats`. Peak RSS is this process's.

    .venv/bin/python benchmarks/gx_backends.py [--rows N] [--repeats R] [--no-postgres]

Writes benchmarks/results/<name>.{json,md} (default gx_backends).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from results_io import save
from warehouses import warehouse_urls

SUITE = Path(__file__).resolve().parents[1] / "expectations" / "web_traffic_daily.json"
TABLE = "gx_bench_web_traffic"
# Types registered by ccg_pipeline.validation.expectations (pandas only), and the type check,
# which on SQL compares the column's declared type instead of each value's.
PANDAS_ONLY = {
    "expect_column_values_to_not_contain_identifiers",
    "expect_column_values_to_not_contain_known_identifiers",
    "expect_table_rows_to_be_suppressed_whole",
    "expect_table_margins_to_not_hide_a_single_cell",
    "expect_table_groups_to_have_at_least_k_rows",
    "expect_column_values_to_be_in_type_list",
}
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


def shared_expectations() -> list[dict[str, Any]]:
    suite = json.loads(SUITE.read_text())
    return [e for e in suite["expectations"] if e["type"] not in PANDAS_ONLY]


def make_rows(n: int, seed: int = 3) -> pd.DataFrame:
    """Rows shaped like statistics.web_traffic_daily, with labels from the suite's own sets."""
    suite = json.loads(SUITE.read_text())["expectations"]
    value_set = {
        e["kwargs"]["column"]: sorted(e["kwargs"]["value_set"])
        for e in suite
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    rng = np.random.default_rng(seed)
    sections = np.array(["home", "services", "software", "blog", "contact", "portal", "assets"])
    browsers = np.array(value_set["browser_family"])
    regions = np.array(value_set["region"])
    # Unique (day, section, browser, region) keys: spread over as many days as needed.
    per_day = len(sections) * len(browsers) * len(regions)
    keys = rng.permutation(-(-n // per_day) * per_day)[:n]
    day, rest = np.divmod(keys, per_day)
    section, rest = np.divmod(rest, len(browsers) * len(regions))
    browser, region = np.divmod(rest, len(regions))
    requests = rng.integers(10, 5_000, n).astype(object)
    requests[rng.random(n) < 0.05] = None  # suppressed rows, as the builder leaves them
    first = dt.date(2026, 11, 23)
    return pd.DataFrame(
        {
            "day": [first - dt.timedelta(days=int(d)) for d in day],
            "site_section": sections[section],
            "browser_family": browsers[browser],
            "region": regions[region],
            "requests": requests,
        }
    )


def load_table(url: str, frame: pd.DataFrame) -> None:
    engine = sa.create_engine(url)
    try:
        frame.to_sql(TABLE, engine, if_exists="replace", index=False, chunksize=50_000)
    finally:
        engine.dispose()


def _context() -> Any:
    """An in-memory GX context without progress bars (they would flood the benchmark's log)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _suite(gx: Any, expectations: list[dict[str, Any]], name: str) -> Any:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    return gx.ExpectationSuite(
        name=name,
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()
            for e in expectations
        ],
    )


def _check(results: Any) -> tuple[int, int]:
    """(expectations run, expectations that raised): an error would make a timing meaningless."""
    errors = sum(bool((r.exception_info or {}).get("raised_exception")) for r in results.results)
    return len(results.results), errors


def time_pandas(url: str, expectations: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    import great_expectations as gx

    context = _context()
    batch_def = (
        context.data_sources.add_pandas("frames")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(_suite(gx, expectations, "pandas"))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="pandas", data=batch_def, suite=suite)
    )
    engine = sa.create_engine(url)
    reads, validates = [], []
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                result = conn.execute(sa.select(sa.table(TABLE, *map(sa.column, COLUMNS))))
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            results = definition.run(
                batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT
            )
            validates.append(time.perf_counter() - t0)
    finally:
        engine.dispose()
    run, errors = _check(results)
    return {
        "read_seconds": round(statistics.median(reads), 3),
        "validate_seconds": round(statistics.median(validates), 3),
        "seconds": round(
            statistics.median(r + v for r, v in zip(reads, validates, strict=True)), 3
        ),
        "expectations": run,
        "errors": errors,
        "success": bool(results.success),
    }


def time_sql(url: str, expectations: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    import great_expectations as gx

    context = _context()
    if url.startswith("sqlite"):
        source = context.data_sources.add_sqlite("warehouse", connection_string=url)
    else:
        source = context.data_sources.add_postgres("warehouse", connection_string=url)
    batch_def = source.add_table_asset("rows", table_name=TABLE).add_batch_definition_whole_table(
        "whole"
    )
    suite = context.suites.add(_suite(gx, expectations, "sql"))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="sql", data=batch_def, suite=suite)
    )
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = definition.run(result_format=RESULT_FORMAT)
        seconds.append(time.perf_counter() - t0)
    run, errors = _check(results)
    return {
        "seconds": round(statistics.median(seconds), 3),
        "expectations": run,
        "errors": errors,
        "success": bool(results.success),
    }


COLUMNS = ["day", "site_section", "browser_family", "region", "requests"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--name", default="gx_backends")
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)

    expectations = shared_expectations()
    frame = make_rows(args.rows)
    report: dict[str, Any] = {
        "benchmark": args.name,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": args.rows,
        "repeats": args.repeats,
        "suite": SUITE.name,
        "expectations": sorted({e["type"] for e in expectations}),
        "backends": {},
    }
    with (
        tempfile.TemporaryDirectory(prefix="ccg-gx-") as tmp,
        warehouse_urls(Path(tmp), postgres=not args.no_postgres) as make_url,
    ):
        for backend, make in make_url.items():
            url = make("gx")
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            load_table(url, frame)
            pandas_run = time_pandas(url, expectations, args.repeats)
            sql_run = time_sql(url, expectations, args.repeats)
            report["backends"][backend] = {
                "pandas": pandas_run,
                "sql": sql_run,
                "pandas_over_sql": round(pandas_run["seconds"] / sql_run["seconds"], 2),
                "pandas_validate_only_over_sql": round(
                    pandas_run["validate_seconds"] / sql_run["seconds"], 2
                ),
            }
            print(backend, report["backends"][backend], flush=True)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    lines = [
        f"# GX validation: pandas vs the SQL backend ({args.rows:,} rows, median of {args.repeats})",
        "",
        f"Suite: the {len(expectations)} expectations of `expectations/{SUITE.name}` that run on "
        "both (" + ", ".join(f"`{t}`" for t in report["expectations"]) + ").",
        "",
        "| warehouse | pandas: read (s) | pandas: validate (s) | pandas total (s) | SQL (s) | pandas / SQL |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, r in report["backends"].items():
        p, q = r["pandas"], r["sql"]
        lines.append(
            f"| {backend} | {p['read_seconds']} | {p['validate_seconds']} | {p['seconds']} | "
            f"{q['seconds']} | {r['pandas_over_sql']}x |"
        )
    errors = {b: (r["pandas"]["errors"], r["sql"]["errors"]) for b, r in report["backends"].items()}
    lines += [
        "",
        f"Expectations that raised (pandas, SQL): {errors}. Peak RSS of the process: "
        f"{report['peak_rss_mib']} MiB. {report['machine']}.",
    ]
    save(args.name, report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Retention sweep throughput on a large web-log table, side by side with a bare SQL DELETE.

Loads `--rows` web-log rows (default 10,000,000; `--expired` of them older than the 90-day
window) into two identical fresh warehouses per backend, then times, in one run:

- the real sweep (`ccg_pipeline.retention.sweep.sweep`: chunked, anonymise-then-delete, audited,
  checked), and
- one bare `DELETE FROM personal.web_access WHERE requested_at < :cutoff` of the same rows.

    .venv/bin/python benchmarks/retention_sweep.py [--rows N] [--no-postgres]

Writes benchmarks/results/retention_sweep.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import platform
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from results_io import save
from warehouses import warehouse_urls

from ccg_pipeline.policy import load_notice
from ccg_pipeline.retention.sweep import sweep
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import create_warehouse_engine, is_sqlite
from ccg_pipeline.warehouse.rollups import roll_up_missing_web_files

AS_OF = dt.date(2026, 11, 23)
SECTIONS = ("portal", "services", "blog", "software", "contact-us", "home")


def _rows(n: int, expired: float):
    """(source_file, line_no, requested_at, ip_prefix, url, site_section, status) tuples: the
    first `expired` share older than 90 days, spread over 400 days; the rest within the window."""
    n_expired = int(n * expired)
    old_start = dt.datetime.combine(AS_OF, dt.time()) - dt.timedelta(days=500)
    new_start = dt.datetime.combine(AS_OF, dt.time()) - dt.timedelta(days=80)
    for i in range(n):
        if i < n_expired:
            at = old_start + dt.timedelta(seconds=(i * 400 * 86_400) // max(n_expired, 1))
        else:
            at = new_start + dt.timedelta(
                seconds=((i - n_expired) * 80 * 86_400) // max(n - n_expired, 1)
            )
        yield (
            f"access.log-{at:%Y%m%d}.gz",
            i,
            at.strftime("%Y-%m-%d %H:%M:%S.000000"),
            f"10.{i % 256}.{i // 256 % 256}.0/24",
            "/portal/login",
            SECTIONS[i % 6],
            200 if i % 10 else 404,
        )


def roll_up(url: str) -> float:
    """What ingest does after loading each log file: the per-file roll-up (timed separately)."""
    engine = create_warehouse_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        roll_up_missing_web_files(conn)
    engine.dispose()
    return time.perf_counter() - start


def load(url: str, n: int, expired: float) -> None:
    engine = create_warehouse_engine(url)
    migrate.upgrade(engine)
    cols = "source_file, line_no, requested_at, ip_prefix, url, site_section, status"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if is_sqlite(url):
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO personal.web_access ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                _rows(n, expired),
            )
            cursor.execute("COMMIT")
        else:
            batch = 1_000_000
            rows = _rows(n, expired)
            while True:
                buffer = io.StringIO()
                count = 0
                for row in rows:
                    buffer.write("\t".join(str(v) for v in row) + "\n")
                    count += 1
                    if count == batch:
                        break
                if not count:
                    break
                buffer.seek(0)
                cursor.copy_expert(f"COPY personal.web_access ({cols}) FROM STDIN", buffer)
                raw.commit()
            cursor.execute("ANALYZE personal.web_access")
            raw.commit()
    finally:
        raw.close()
        engine.dispose()


def time_sweep(url: str) -> tuple[float, int]:
    engine = create_warehouse_engine(url)
    start = time.perf_counter()
    outcomes = sweep(engine, load_notice(), AS_OF, "bench")
    seconds = time.perf_counter() - start
    engine.dispose()
    deleted = next(o.deleted for o in outcomes if o.rule_id == "web_logs_raw")
    return seconds, deleted


def time_bare_delete(url: str) -> tuple[float, float, int]:
    """One DELETE statement; also timed to the point where the deletion is out of the WAL too
    (SQLite checkpoint), which is where the sweep's own clock stops."""
    engine = create_warehouse_engine(url)
    cutoff = dt.datetime.combine(AS_OF - dt.timedelta(days=89), dt.time())
    start = time.perf_counter()
    with engine.begin() as conn:
        deleted = conn.execute(
            sa.text("DELETE FROM personal.web_access WHERE requested_at < :cutoff"),
            {"cutoff": cutoff.strftime("%Y-%m-%d %H:%M:%S.000000") if is_sqlite(url) else cutoff},
        ).rowcount
    seconds = time.perf_counter() - start
    backend_of(engine).checkpoint(engine)
    durable = time.perf_counter() - start
    engine.dispose()
    return seconds, durable, deleted


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--expired", type=float, default=0.8)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="ccg-bench-retention-") as tmp,
        warehouse_urls(Path(tmp), postgres=not args.no_postgres) as backends,
    ):
        for backend, make_url in backends.items():
            sweep_url, bare_url = make_url("sweep"), make_url("bare")
            for url in (sweep_url, bare_url):
                t0 = time.perf_counter()
                load(url, args.rows, args.expired)
                print(
                    f"{backend}: loaded {args.rows:,} rows in {time.perf_counter() - t0:.1f}s",
                    flush=True,
                )
            rollup_s = roll_up(sweep_url)
            roll_up(bare_url)
            sweep_s, sweep_n = time_sweep(sweep_url)
            bare_s, bare_durable_s, bare_n = time_bare_delete(bare_url)
            assert sweep_n == bare_n, (sweep_n, bare_n)
            results[backend] = {
                "rows_in_table": args.rows,
                "rows_deleted": sweep_n,
                "sweep_seconds": round(sweep_s, 2),
                "sweep_rows_per_s": round(sweep_n / sweep_s),
                "bare_delete_seconds": round(bare_s, 2),
                "bare_delete_rows_per_s": round(bare_n / bare_s),
                "sweep_over_bare_delete": round(sweep_s / bare_s, 2),
                "bare_delete_with_checkpoint_seconds": round(bare_durable_s, 2),
                "sweep_over_bare_delete_with_checkpoint": round(sweep_s / bare_durable_s, 2),
                "rollup_at_ingest_seconds": round(rollup_s, 2),
            }
            print(backend, results[backend], flush=True)
    report = {
        "benchmark": "retention_sweep",
        "machine": f"{platform.machine()}, 2 cores",
        "python": platform.python_version(),
        "backends": results,
    }
    lines = [
        f"# Retention sweep vs bare DELETE ({args.rows:,} web-log rows, {args.expired:.0%} expired)",
        "",
        "| backend | rows deleted | sweep (s) | sweep rows/s | bare DELETE (s) | bare rows/s | sweep / bare | bare DELETE + checkpoint (s) | sweep / that | roll-up at ingest (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in results.items():
        lines.append(
            f"| {backend} | {r['rows_deleted']:,} | {r['sweep_seconds']} | {r['sweep_rows_per_s']:,} | {r['bare_delete_seconds']} | {r['bare_delete_rows_per_s']:,} | {r['sweep_over_bare_delete']}x | {r['bare_delete_with_checkpoint_seconds']} | {r['sweep_over_bare_delete_with_checkpoint']}x | {r['rollup_at_ingest_seconds']} |"
        )
    lines += [
        "",
        "Web-log lines are anonymised when their file is loaded (a per-file roll-up into "
        "staging.anon_web_traffic, timed in the last column and paid by ingest); the sweep checks "
        "that every file it deletes from has its roll-up, deletes in chunks of short transactions, "
        "writes the audit row, counts survivors and checkpoints the SQLite WAL. The bare DELETE is "
        "one statement; 'bare DELETE + checkpoint' also waits until the deletion has left the WAL "
        "(on PostgreSQL the checkpoint is a no-op here).",
    ]
    save("retention_sweep", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

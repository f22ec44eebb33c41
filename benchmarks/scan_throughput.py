"""Throughput of the identifier scan: the scan itself on one core, and `ccg scan` end to end.

    .venv/bin/python benchmarks/scan_throughput.py [--megabytes N] [--repeats R]

1. **The scan** (`scan_arrow`, what the validation gate runs): a table of CRM-note-like text
   (mostly clean: order numbers, dates, amounts, commodity codes, MRNs, version strings; one row
   in 200 carries a planted identifier), Arrow pinned to one thread; median MB/s of text and the
   recall on the planted rows.
2. **`ccg scan FILE.csv` end to end**, as a fresh process each time (imports, CSV read, scan,
   printing the findings): a mixed export of the same notes beside ids, dates, categories and
   amounts, on the machine's cores; median MB/s of the file. Its findings must equal those of a
   cell-by-cell scan of the same file (every detector on every cell, no prefilter).

Both are compared in the same run with the previous scan, one RE2 pass per column
(`per_column_scan` below). Writes benchmarks/results/scan_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from results_io import save

from ccg_pipeline.scan import Finding, _prefilter_pattern, read_file, scan_arrow
from ccg_pipeline.scan.detectors import DETECTORS, find, mask

CLEAN = [
    "Customer asked about order {n} and invoice INV-2024-{n6}; paid £{a},{b}.{c} on 2024-11-{d}.",
    "Declaration for commodity 8471 30 00 00 cleared under MRN 24GB{n}0000ABC1 after review.",
    "Upgraded the customs software licence to version 3.{d}.1; training booked for next week.",
    "Shipment of {n6} units, tariff classification confirmed, AEO audit scheduled for Q{q}.",
]
PLANTED = [
    "Please email anna.svensson{n}@example.se about the renewal.",
    "Call back on +44 20 7946 {n4} before Friday.",
    "Card 4111 1111 1111 1111 was declined; customer will retry.",
    "Bank details: GB82 WEST 1234 5698 7654 32.",
    "Contact lives at SW1A 1AA, NI number AB 12 34 56 C.",
    "Personnummer 19121212-1212 given over the phone.",
]


def corpus(megabytes: float, seed: int = 5) -> tuple[pa.Table, set[int]]:
    rng = np.random.default_rng(seed)
    rows: list[str] = []
    planted: set[int] = set()
    size = 0
    while size < megabytes * 1_000_000:
        values = {
            "n": int(rng.integers(10_000_000, 99_999_999)),
            "n6": int(rng.integers(100_000, 999_999)),
            "n4": int(rng.integers(1000, 9999)),
            "a": int(rng.integers(1, 999)),
            "b": int(rng.integers(100, 999)),
            "c": int(rng.integers(10, 99)),
            "d": int(rng.integers(10, 28)),
            "q": int(rng.integers(1, 4)),
        }
        if rng.random() < 0.005:
            planted.add(len(rows))
            text = PLANTED[int(rng.integers(len(PLANTED)))].format(**values)
        else:
            text = CLEAN[int(rng.integers(len(CLEAN)))].format(**values)
        rows.append(text)
        size += len(text.encode())
    return pa.table({"note": pa.array(rows, type=pa.string())}), planted


def mixed_export(notes: pa.Table, seed: int = 1) -> pa.Table:
    """The notes beside the columns an export has: ids, a date, a category, an amount."""
    rng = np.random.default_rng(seed)
    n = notes.num_rows
    days = (np.datetime64("2024-01-01") + rng.integers(0, 700, n)).astype("datetime64[D]")
    return pa.table(
        {
            "activity_id": pa.array(np.arange(n) + 1_000_000),
            "company_id": pa.array(rng.integers(1, 100_000, n)),
            "activity_date": pa.array(days),
            "kind": pa.array(np.array(["note", "call", "meeting", "email"])[rng.integers(0, 4, n)]),
            "amount_gbp": pa.array(np.round(rng.random(n) * 10_000, 2)),
            "country": pa.array(np.array(["GB", "SE", "DE", "NL", "FR"])[rng.integers(0, 5, n)]),
            "note": notes.column("note"),
        }
    )


def per_column_scan(table: pa.Table) -> list[Finding]:
    """The previous scan, kept as the reference: one RE2 pass per column, then every detector
    in Python on each cell that pass marks."""
    prefilter = _prefilter_pattern(DETECTORS)
    findings = []
    for name in table.column_names:
        text = pc.cast(table.column(name), pa.string())
        rows = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(text, prefilter), False))
        for row, value in zip(rows.to_pylist(), pc.take(text, rows).to_pylist(), strict=True):
            for detector in DETECTORS:
                findings += [
                    Finding(row, name, detector.name, mask(m)) for m in find(value, detector)
                ]
    return findings


def cell_by_cell(table: pa.Table, rows: set[int]) -> set[tuple[int, str, str]]:
    """The definition of a finding on the given rows: every detector on every cell."""
    found = set()
    for name in table.column_names:
        values = pc.cast(table.column(name), pa.string())
        for row in rows:
            value = values[row].as_py() or ""
            found |= {(row, name, d.name) for d in DETECTORS if find(value, d)}
    return found


def timed(repeats: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def end_to_end(table: pa.Table, repeats: int) -> dict[str, object]:
    """`ccg scan` on the table written as CSV, a new process per repeat; the previous scan
    runs in the same repeats on the file as read, so the ratio shares the machine's state."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        pacsv.write_csv(table, path)
        size = path.stat().st_size
        command = [sys.executable, "-m", "ccg_pipeline.cli", "scan", str(path), "--json"]
        env = {**os.environ, "CCG_HOME": folder}

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

        seconds, done = timed(repeats, run)
        assert isinstance(done, subprocess.CompletedProcess) and done.returncode == 1, done
        import json

        findings = json.loads(done.stdout)["findings"]
        read_seconds, read = timed(repeats, lambda: read_file(path))
        assert isinstance(read, pa.Table)
        previous_seconds, previous = timed(repeats, lambda: per_column_scan(read))
        scan_seconds, current = timed(repeats, lambda: scan_arrow(read))
    found = {(f["row"], f["column"], f["detector"]) for f in findings}
    flagged_rows = {row for row, _, _ in found} | {f.row for f in previous}  # type: ignore[union-attr]
    truth = cell_by_cell(read, flagged_rows)
    assert found == truth == {(f.row, f.column, f.detector) for f in current}  # type: ignore[union-attr]
    return {
        "file_megabytes": round(size / 1e6, 1),
        "rows": table.num_rows,
        "columns": table.num_columns,
        "findings": len(findings),
        "median_seconds": round(seconds, 3),
        "megabytes_per_second": round(size / 1e6 / seconds, 1),
        "read_seconds_in_process": round(read_seconds, 3),
        "scan_seconds_in_process": round(scan_seconds, 3),
        "previous_scan_seconds_in_process": round(previous_seconds, 3),
        "scan_speedup_over_previous": round(previous_seconds / scan_seconds, 2),
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=200.0)
    parser.add_argument("--export-megabytes", type=float, default=100.0, help="notes in the CSV")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    e2e = end_to_end(mixed_export(corpus(args.export_megabytes)[0]), args.repeats)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    table, planted = corpus(args.megabytes)
    text_bytes = sum(len(v.encode()) for v in table.column("note").to_pylist())
    median, findings = timed(args.repeats, lambda: scan_arrow(table))
    previous, _ = timed(args.repeats, lambda: per_column_scan(table))
    found_rows = {f.row for f in findings}  # type: ignore[attr-defined]
    one_core = {
        "text_megabytes": round(text_bytes / 1e6, 1),
        "rows": table.num_rows,
        "planted_rows": len(planted),
        "median_seconds": round(median, 3),
        "megabytes_per_second": round(text_bytes / 1e6 / median, 1),
        "previous_megabytes_per_second": round(text_bytes / 1e6 / previous, 1),
        "recall_on_planted_rows": round(len(found_rows & planted) / max(len(planted), 1), 4),
        "flagged_clean_rows": len(found_rows - planted),
        "arrow_threads": 1,
    }
    result = {
        "one_core": one_core,
        "end_to_end": e2e,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    o, e = one_core, e2e
    markdown = [
        f"# Identifier scan (median of {args.repeats})\n",
        f"## The scan, {o['text_megabytes']} MB of notes, one core\n",
        "| MB/s | previous scan, same run | seconds | rows | planted rows | recall "
        "| clean rows flagged |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {o['megabytes_per_second']} | {o['previous_megabytes_per_second']} "
        f"| {o['median_seconds']} | {o['rows']:,} | {o['planted_rows']:,} "
        f"| {o['recall_on_planted_rows']:.2%} | {o['flagged_clean_rows']} |\n",
        f"## `ccg scan` end to end: a {e['file_megabytes']} MB CSV export, {e['columns']} columns,"
        f" {e['cpu_count']} cores\n",
        "A new process per repeat: imports, CSV read, scan and the JSON report. Findings equal a"
        " cell-by-cell scan's.\n",
        "| MB/s | seconds | rows | findings | read (in process) | scan | previous scan "
        "| scan speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {e['megabytes_per_second']} | {e['median_seconds']} | {e['rows']:,} "
        f"| {e['findings']:,} | {e['read_seconds_in_process']} s | {e['scan_seconds_in_process']} s"
        f" | {e['previous_scan_seconds_in_process']} s | {e['scan_speedup_over_previous']}x |",
    ]
    save("scan_throughput", result, markdown)


if __name__ == "__main__":
    main()

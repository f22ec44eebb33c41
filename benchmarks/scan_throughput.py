"""Throughput of the identifier scan (`ccg scan`, the validation gate's detectors) on one core.

    .venv/bin/python benchmarks/scan_throughput.py [--megabytes N] [--repeats R]

Builds a table of CRM-note-like text (mostly clean: order numbers, dates, amounts, commodity
codes, MRNs, version strings; one row in 200 carries a planted identifier), pins Arrow to one
thread, scans it `--repeats` times and reports the median MB/s of text and the recall on the
planted rows. Writes benchmarks/results/scan_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import pyarrow as pa
from results_io import save

from ccg_pipeline.scan import scan_arrow

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    table, planted = corpus(args.megabytes)
    text_bytes = sum(len(v.encode()) for v in table.column("note").to_pylist())
    times, findings = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        findings = scan_arrow(table)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    found_rows = {f.row for f in findings}
    result = {
        "text_megabytes": round(text_bytes / 1e6, 1),
        "rows": table.num_rows,
        "planted_rows": len(planted),
        "median_seconds": round(median, 3),
        "megabytes_per_second": round(text_bytes / 1e6 / median, 1),
        "recall_on_planted_rows": round(len(found_rows & planted) / max(len(planted), 1), 4),
        "flagged_clean_rows": len(found_rows - planted),
        "repeats": args.repeats,
        "arrow_threads": 1,
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    table_md = (
        f"# Identifier scan, {result['text_megabytes']} MB of text, one core "
        f"(median of {args.repeats})\n\n"
        "| MB/s | seconds | rows | planted rows | recall | clean rows flagged |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['megabytes_per_second']} | {result['median_seconds']} | {result['rows']:,} "
        f"| {result['planted_rows']:,} | {result['recall_on_planted_rows']:.2%} "
        f"| {result['flagged_clean_rows']} |\n"
    )
    save("scan_throughput", result, [table_md])


if __name__ == "__main__":
    main()

"""k-anonymity on 1,000,000 rows x 4 quasi-identifiers: enforcement and checking time.

    .venv/bin/python benchmarks/kanonymity.py [--rows N] [--repeats R] [--k K]

Prints medians and writes benchmarks/results/kanonymity.{json,md}. (Side-by-side runs against
ANJANA and pyCANON, in one run, are `make bench-peers` (benchmarks/kanonymity_peers.py).)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from results_io import save

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise.kanon import QuasiIdentifier, enforce_k_anonymity, min_group_size


def population(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "signup": pd.to_datetime("2015-01-01")
            + pd.to_timedelta(rng.integers(0, 3650, rows), unit="D"),
            "country": rng.choice(
                ["GB", "SE", "DE", "FR", "NL", "PL", "ES", "IE", "IT", "US"], rows
            ),
            "employees": rng.choice([3, 8, 15, 40, 90, 250, 600, 1500], rows),
            "job": rng.choice(
                [
                    "Customs Manager",
                    "Finance Director",
                    "Head of Logistics",
                    "Import Coordinator",
                    "Clerk",
                ],
                rows,
            ),
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    frame = population(args.rows)
    qis = [
        QuasiIdentifier("signup", h.date_levels()),
        QuasiIdentifier("country", h.country_levels()),
        QuasiIdentifier("employees", h.employee_levels()),
        QuasiIdentifier("job", h.job_levels()),
    ]
    enforce_s, check_s = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out, report = enforce_k_anonymity(frame, qis, args.k)
        enforce_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        smallest = min_group_size(out, [q.column for q in qis])
        check_s.append(time.perf_counter() - start)
    result = {
        "rows": args.rows,
        "quasi_identifiers": len(qis),
        "k": args.k,
        "repeats": args.repeats,
        "enforce_seconds_median": round(statistics.median(enforce_s), 3),
        "check_seconds_median": round(statistics.median(check_s), 3),
        "levels": report.levels,
        "suppressed_rows": report.suppressed_rows,
        "min_group_size": smallest,
    }
    lines = [
        f"# k-anonymity, {args.rows:,} rows x {len(qis)} quasi-identifiers, k={args.k} (median of {args.repeats})",
        "",
        "| enforce (s) | check (s) | levels chosen | rows suppressed | smallest group |",
        "|---:|---:|---|---:|---:|",
        f"| {result['enforce_seconds_median']} | {result['check_seconds_median']} | {report.levels} | {report.suppressed_rows:,} | {smallest} |",
    ]
    save("kanonymity", result, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

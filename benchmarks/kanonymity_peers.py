"""k-anonymity side by side with peers, on the same data in one run:

- enforcing k=10 on N rows x 4 quasi-identifiers: ccg_pipeline vs ANJANA (`k_anonymity`);
- checking k on the result: ccg_pipeline (`min_group_size`) vs pyCANON (`k_anonymity`).

Runs in its own venv (`make bench-peers`), because ANJANA and pyCANON pin versions that cannot
share the main lock with Airflow. Writes benchmarks/results/kanonymity_peers.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from kanonymity import population
from results_io import save

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise.kanon import QuasiIdentifier, enforce_k_anonymity, min_group_size

QI_LEVELS = {
    "signup": h.date_levels(),
    "country": h.country_levels(),
    "employees": h.employee_levels(),
    "job": h.job_levels(),
}


def anjana_hierarchies(frame: pd.DataFrame) -> dict[str, dict[int, pd.Series]]:
    """ANJANA's format: per quasi-identifier, level -> values, aligned over the distinct values."""
    out = {}
    for column, levels in QI_LEVELS.items():
        distinct = pd.Series(frame[column].unique())
        out[column] = {
            n: level(distinct).astype(str).reset_index(drop=True) for n, level in enumerate(levels)
        }
        out[column][0] = distinct.astype(str)
    return out


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    import pycanon.anonymity
    from anjana.anonymity import k_anonymity as anjana_k_anonymity

    frame = population(args.rows)
    frame["signup"] = frame["signup"].dt.strftime("%Y-%m-%d")  # both tools get the same strings
    frame["employees"] = frame["employees"].astype(str)
    qis = [QuasiIdentifier(c, levels) for c, levels in QI_LEVELS.items()]
    columns = list(QI_LEVELS)

    ours_s, (ours_out, report) = timed(
        enforce_k_anonymity, frame, qis, args.k, max_suppression=0.05
    )
    hierarchies = anjana_hierarchies(frame)
    anjana_s, anjana_out = timed(anjana_k_anonymity, frame, [], columns, args.k, 5, hierarchies)
    check_ours_s, ours_k = timed(min_group_size, ours_out, columns)
    check_pycanon_s, pycanon_k = timed(pycanon.anonymity.k_anonymity, ours_out, columns)

    result = {
        "rows": args.rows,
        "k": args.k,
        "python": platform.python_version(),
        "enforce": {
            "ccg_seconds": round(ours_s, 3),
            "anjana_seconds": round(anjana_s, 3),
            "anjana_over_ccg": round(anjana_s / ours_s, 1),
            "ccg_rows_out": len(ours_out),
            "anjana_rows_out": len(anjana_out),
            "ccg_levels": report.levels,
        },
        "check": {
            "ccg_seconds": round(check_ours_s, 3),
            "pycanon_seconds": round(check_pycanon_s, 3),
            "pycanon_over_ccg": round(check_pycanon_s / check_ours_s, 1),
            "ccg_k": ours_k,
            "pycanon_k": int(pycanon_k),
        },
    }
    e, c = result["enforce"], result["check"]
    lines = [
        f"# k-anonymity side by side, {args.rows:,} rows x 4 quasi-identifiers, k={args.k} (one run)",
        "",
        "| task | ccg_pipeline (s) | peer | peer (s) | peer / ccg |",
        "|---|---:|---|---:|---:|",
        f"| enforce k (recoding + suppression) | {e['ccg_seconds']} | ANJANA 1.2.3 | {e['anjana_seconds']} | {e['anjana_over_ccg']}x |",
        f"| check k | {c['ccg_seconds']} | pyCANON 1.3.5 | {c['pycanon_seconds']} | {c['pycanon_over_ccg']}x |",
        "",
        f"Rows kept: ccg_pipeline {e['ccg_rows_out']:,}, ANJANA {e['anjana_rows_out']:,}. k found on the "
        f"result: ccg_pipeline {c['ccg_k']}, pyCANON {c['pycanon_k']}.",
    ]
    save("kanonymity_peers", result, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

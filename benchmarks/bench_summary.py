"""One page for `make bench`: the daily cycle's headline and every peer comparison as a ratio.

Reads what the benchmarks of the run wrote to benchmarks/results/ (the daily cycle, and
scan_vs_presidio, kanonymity_peers, retention_sweep and gx_backends) and puts the ratios side
by side. A comparison whose results file is missing is reported as missing, not guessed.

    .venv/bin/python benchmarks/bench_summary.py [--cycle daily_cycle] [--gx gx_backends]

Writes benchmarks/results/bench_summary.{json,md} (bench_summary_quick for daily_cycle_quick).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from results_io import RESULTS, save


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def peers(gx_name: str) -> list[dict[str, Any]]:
    """(stage, ours, peer, what is compared, peer time / our time)."""
    rows: list[dict[str, Any]] = []
    presidio = _load("scan_vs_presidio")
    if presidio:
        speed = presidio["speed"]
        rows.append(
            {
                "stage": "PII scan",
                "peer": "Presidio analyzer",
                "what": f"{presidio['text_megabytes']} MB sample: {speed['ours_megabytes_per_second']} "
                f"vs {speed['presidio_megabytes_per_second']} MB/s",
                "ratio": speed["ours_over_presidio"],
            }
        )
    kanon = _load("kanonymity_peers")
    if kanon:
        enforce, check = kanon["enforce"], kanon["check"]
        rows += [
            {
                "stage": "k-anonymity, enforce",
                "peer": "ANJANA",
                "what": f"{kanon['rows']:,} rows, k={kanon['k']}: {enforce['ccg_seconds']} vs "
                f"{enforce['anjana_seconds']} s",
                "ratio": enforce["anjana_over_ccg"],
            },
            {
                "stage": "k-anonymity, check",
                "peer": "pyCANON",
                "what": f"{kanon['rows']:,} rows: {check['ccg_seconds']} vs "
                f"{check['pycanon_seconds']} s",
                "ratio": check["pycanon_over_ccg"],
            },
        ]
    retention = _load("retention_sweep")
    if retention:
        for backend, r in retention["backends"].items():
            rows.append(
                {
                    "stage": f"retention ({backend})",
                    "peer": "bare SQL DELETE",
                    "what": f"{r['rows_deleted']:,} of {r['rows_in_table']:,} log rows: "
                    f"{r['sweep_seconds']} vs {r['bare_delete_seconds']} s",
                    # Below 1: the sweep (anonymise, audit, check) costs more than the bare DELETE.
                    "ratio": round(r["bare_delete_seconds"] / r["sweep_seconds"], 2),
                }
            )
    gx = _load(gx_name)
    if gx:
        for backend, r in gx["backends"].items():
            # Ours is pandas (the gate reads each staged table into a DataFrame).
            rows.append(
                {
                    "stage": f"GX validation ({backend})",
                    "peer": "the same suite on GX's SQL backend",
                    "what": f"{gx['rows']:,} rows: pandas {r['pandas']['seconds']} s (read + "
                    f"validate) vs SQL {r['sql']['seconds']} s",
                    "ratio": round(r["sql"]["seconds"] / r["pandas"]["seconds"], 2),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycle", default="daily_cycle")
    parser.add_argument("--gx", default="gx_backends")
    args = parser.parse_args()
    cycle = _load(args.cycle)
    comparisons = peers(args.gx)
    lines = ["# Benchmarks: summary", ""]
    if cycle:
        lines += [
            f"Daily cycle (`benchmarks/results/{args.cycle}.md`), end to end, {cycle['machine']}:",
            "",
            "| scale | backend | cycle (s) | peak RSS (MiB) | bound by |",
            "|---|---|---:|---:|---|",
        ]
        for name, per_backend in cycle["scales"].items():
            for backend, c in per_backend.items():
                lines.append(
                    f"| {name} | {backend} | {c['total_seconds']:.0f} | {c['peak_rss_mib']:,} | "
                    f"{c['bound_by']} ({c['stages'][c['bound_by']]['seconds']:.0f} s) |"
                )
        lines += ["", "Targets:", ""]
        lines += [f"- {'met' if t['met'] else 'MISSED'}: {t['what']}" for t in cycle["targets"]]
    else:
        lines.append(f"No daily-cycle results ({args.cycle}.json) yet.")
    lines += [
        "",
        "Side by side with peers (ratio = the other's time / ours; above 1 we are faster):",
        "",
        "| stage | compared with | measured | ratio |",
        "|---|---|---|---:|",
    ]
    lines += [f"| {r['stage']} | {r['peer']} | {r['what']} | {r['ratio']}x |" for r in comparisons]
    missing = [
        n
        for n in ("scan_vs_presidio", "kanonymity_peers", "retention_sweep", args.gx)
        if _load(n) is None
    ]
    if missing:
        lines += ["", f"Missing results (not run yet): {', '.join(missing)}."]
    # bench_summary for the full run, bench_summary_quick for `make bench-quick`.
    name = "bench_summary" + args.cycle.removeprefix("daily_cycle")
    save(name, {"cycle": args.cycle, "peers": comparisons, "missing": missing}, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

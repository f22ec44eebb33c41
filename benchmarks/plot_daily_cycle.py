"""The daily cycle's chart: wall time per stage (stacked) and peak RSS per stage, per scale and
backend, from benchmarks/results/<name>.json. Runs in its own venv (.venv-plot), so matplotlib
never enters the pipeline's lock.

    .venv-plot/bin/python benchmarks/plot_daily_cycle.py [--cycle daily_cycle]

Writes benchmarks/results/<name>.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
STAGES = ("ingest", "retention", "statistics", "validation", "publish")
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")
# The ingest issue's M cycle targets, in minutes, drawn over each backend's M bar.
M_TARGET_MINUTES = {"sqlite": 4.0, "postgres": 3.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycle", default="daily_cycle")
    args = parser.parse_args()
    report = json.loads((RESULTS / f"{args.cycle}.json").read_text())
    runs = [
        (f"{scale}\n{backend}", cycle)
        for scale, per_backend in report["scales"].items()
        for backend, cycle in per_backend.items()
    ]
    labels = [label for label, _ in runs]
    fig, (time_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    bottom = [0.0] * len(runs)
    for stage, colour in zip(STAGES, COLOURS, strict=True):
        minutes = [cycle["stages"][stage]["seconds"] / 60 for _, cycle in runs]
        time_ax.bar(labels, minutes, bottom=bottom, label=stage, color=colour)
        bottom = [b + m for b, m in zip(bottom, minutes, strict=True)]
    for x, total in enumerate(bottom):
        time_ax.annotate(f"{total:.1f}", (x, total), ha="center", va="bottom", fontsize=8)
    for x, (scale, backend) in enumerate(
        (scale, backend)
        for scale, per_backend in report["scales"].items()
        for backend in per_backend
    ):
        target = M_TARGET_MINUTES.get(backend) if scale == "M" else None
        if target is not None:
            time_ax.hlines(target, x - 0.45, x + 0.45, color="black", linestyle="--", linewidth=1)
            time_ax.annotate(
                f"target {target:.0f} min", (x, target), ha="center", va="bottom", fontsize=7
            )
    time_ax.set_ylabel("wall time (minutes)")
    time_ax.set_title("Daily cycle, wall time by stage")
    time_ax.legend(fontsize=8)

    width = 0.8 / len(STAGES)
    for n, (stage, colour) in enumerate(zip(STAGES, COLOURS, strict=True)):
        xs = [x + (n - (len(STAGES) - 1) / 2) * width for x in range(len(runs))]
        rss_ax.bar(
            xs,
            [cycle["stages"][stage]["peak_rss_mib"] for _, cycle in runs],
            width=width,
            label=stage,
            color=colour,
        )
    rss_ax.axhline(2048, color="grey", linestyle="--", linewidth=1)
    rss_ax.text(-0.4, 2060, "target: 2 GiB", fontsize=8, color="grey", va="bottom")
    rss_ax.set_xticks(range(len(runs)), labels)
    rss_ax.set_ylabel("peak RSS of the step's process (MiB)")
    rss_ax.set_title("Peak RSS by stage")
    fig.suptitle(f"{report['machine']}, Python {report['python']}", fontsize=9)
    fig.tight_layout()
    out = RESULTS / f"{args.cycle}.png"
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

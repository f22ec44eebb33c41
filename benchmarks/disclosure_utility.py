"""Disclosure control: what it costs analysts (utility) and what the release audit finds.

Builds the demo's warehouse (`ccg generate` with the demo's seed, sizes and dates, every source
ingested, the retention sweep run), then builds every aggregate twice from the same warehouse:
once with the release method (cell-key perturbation, `settings.perturbation` of
`ccg_pipeline/policy/notice.yaml`) and once exact, unprotected, as the truth. Only closed periods
are compared, as only they are published. It reports, per table:

- cells and the share withheld (suppressed), against the previous method (rows with any count
  from 1 to 9 suppressed, plus secondary suppression) on the same truth;
- the share published as zero (a small true count perturbed to 0);
- mean and 95th-percentile relative error of published counts and sums, by true cell size;
- the release audit (`ccg_pipeline.validation.release_audit`): cells and flows checked, the
  narrowest interval an attacker can derive, LP solves, and its time (median of `--repeats`);
- how `customer_profiles` generalises (levels per quasi-identifier, records suppressed).

    .venv/bin/python benchmarks/disclosure_utility.py [--companies 1500] [--prospects 800]

Writes benchmarks/results/disclosure_utility.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from results_io import save

from ccg_pipeline.anonymise.cellkey import CellKeyPerturbation
from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Perturbation
from ccg_pipeline.statistics import freeze
from ccg_pipeline.statistics.build import BUILDERS, StatisticsContext, protect_rows
from ccg_pipeline.validation.release_audit import audit_release
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

AS_OF = dt.date(2026, 11, 23)
WINDOW_END = dt.datetime(2026, 11, 24)
SIZE_BANDS = ((1, 9), (10, 99), (100, None))
OLD_MIN_CELL = 10


def build_demo_warehouse(root: Path, companies: int, prospects: int) -> Settings:
    from ccg_pipeline.devtools.generate import GenerateOptions, generate
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.retention import run_retention
    from ccg_pipeline.warehouse import migrate

    sources = root / "sources"
    generate(GenerateOptions(out=sources, companies=companies, prospects=prospects, as_of=AS_OF))
    settings = Settings.from_env(
        {
            "CCG_HOME": str(root),
            "CCG_SOURCE_DIR": str(sources),
            "CCG_WAREHOUSE_URL": f"sqlite:///{root / 'warehouse' / 'main.db'}",
        }
    )
    engine = create_warehouse_engine(settings.warehouse_url)
    migrate.upgrade(engine)
    engine.dispose()
    for source in ("portal", "crm", "web_logs", "auth_logs"):
        ingest_source(settings, source, run_id="bench", window_start=None, window_end=WINDOW_END)
    run_retention(settings, AS_OF, "bench-retention")
    return settings


def _closed(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    spec = freeze.PERIODS[name]
    return frame[np.array([spec.closed(v, AS_OF) for v in frame[spec.column]], dtype=bool)]


def _errors(truth: pd.Series, published: pd.Series) -> dict[str, Any]:
    out = {}
    for low, high in SIZE_BANDS:
        band = (truth >= low) & (truth <= (high if high else np.inf)) & published.notna()
        rel = ((published[band] - truth[band]).abs() / truth[band]).astype(float)
        label = f"{low}-{high}" if high else f">={low}"
        out[label] = {
            "cells": int(band.sum()),
            "mean_rel_error": round(float(rel.mean()), 4) if len(rel) else None,
            "p95_rel_error": round(float(rel.quantile(0.95)), 4) if len(rel) else None,
        }
    return out


def compare(name: str, truth: pd.DataFrame, published: pd.DataFrame) -> dict[str, Any]:
    table = s.metadata.tables[f"{s.STATISTICS}.{name}"]
    dims = s.dimensions_of(table)
    measures = s.columns_of_kind(table, s.COUNT) + s.columns_of_kind(table, s.SUM)
    truth, published = _closed(name, truth), _closed(name, published)
    merged = truth.merge(published, on=dims, how="left", suffixes=("", "_pub"), indicator=True)
    absent = merged["_merge"] == "left_only"
    withheld = merged[f"{measures[0]}_pub"].isna() & ~absent
    old, _p, _s = protect_rows(truth, dims, s.columns_of_kind(table, s.COUNT), OLD_MIN_CELL)
    result: dict[str, Any] = {
        "rows": len(truth),
        "withheld_share": round(float(withheld.mean()), 4) if len(truth) else 0.0,
        "published_as_zero_share": round(float(absent.mean()), 4) if len(truth) else 0.0,
        "errors": {},
    }
    if s.columns_of_kind(table, s.COUNT) and name != "revenue_by_service_month":
        hidden = old[s.columns_of_kind(table, s.COUNT)[0]].isna()
        result["previous_method_withheld_share"] = round(float(hidden.mean()), 4)
    for column in measures:
        pub = pd.to_numeric(merged[f"{column}_pub"], errors="coerce").where(~absent, 0)
        result["errors"][column] = _errors(merged[column].astype(float), pub.astype(float))
    return result


def run(companies: int, prospects: int, repeats: int) -> dict[str, Any]:
    notice = load_notice()
    with tempfile.TemporaryDirectory() as tmp:
        settings = build_demo_warehouse(Path(tmp), companies, prospects)
        engine = create_warehouse_engine(settings.warehouse_url)
        with engine.connect() as conn:
            release = StatisticsContext.create(conn, notice, AS_OF, settings.pseudonym_key)

            def unperturbed(min_sum_contributors: int) -> StatisticsContext:
                spec = Perturbation(
                    max_count_noise=0,
                    sum_noise_scale=0.0,
                    min_sum_contributors=min_sum_contributors,
                )
                return dataclasses.replace(release, perturbation=CellKeyPerturbation(spec))

            exact, previous = unperturbed(1), unperturbed(OLD_MIN_CELL)
            tables: dict[str, Any] = {}
            published: dict[str, pd.DataFrame] = {}
            for name, builder in BUILDERS.items():
                built = builder(release)
                if name == "customer_profiles":
                    margins = freeze.snapshot_margins(
                        built.frame,
                        freeze.last_closed_quarter(AS_OF),
                        None,
                        built.records_suppressed,
                    )
                    tables[name] = {
                        "rows": len(built.frame),
                        "records_in": built.records_in,
                        "records_suppressed": built.records_suppressed,
                        "generalisation_levels": built.generalisation,
                        "columns_fully_generalised": [
                            c
                            for c in ("region", "sector", "size_band", "revenue_band")
                            if len(built.frame) and (built.frame[c] == "*").all()
                        ],
                        "min_group_size": built.min_group_size,
                    }
                    continue
                tables[name] = compare(name, builder(exact).frame, built.frame)
                if name == "revenue_by_service_month":
                    old = _closed(name, builder(previous).frame)
                    tables[name]["previous_method_withheld_share"] = round(
                        float(old["invoices"].isna().sum() / tables[name]["rows"]), 4
                    )
                published[name] = _closed(name, built.frame).astype(object)
        engine.dispose()
    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        audits = audit_release(published, notice.settings.perturbation, None, margins)
        timings.append(time.perf_counter() - t0)
    for audit in audits:
        tables[audit.table]["audit"] = {
            "cells_checked": audit.cells_checked,
            "narrowest_width": audit.narrowest_width,
            "protection_width": audit.protection_width,
            "below_protection": len(audit.below_protection),
            "hidden_cells": audit.hidden_cells,
            "lp_solves": audit.lp_solves,
            "inconsistent_components": audit.inconsistent_components,
            "relaxed_components": audit.relaxed_components,
        }
    return {
        "companies": companies,
        "prospects": prospects,
        "as_of": AS_OF.isoformat(),
        "perturbation": notice.settings.perturbation.model_dump(),
        "audit_seconds_median": round(statistics.median(timings), 3),
        "repeats": repeats,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "tables": tables,
    }


def markdown(data: dict[str, Any]) -> list[str]:
    lines = [
        "# Disclosure control: utility and release audit",
        "",
        f"Demo warehouse: {data['companies']} companies, {data['prospects']} prospects, as of "
        f"{data['as_of']}; closed periods only. Command: "
        "`.venv/bin/python benchmarks/disclosure_utility.py` (`make bench-disclosure`).",
        "",
        "| table | rows | withheld | withheld before | published as 0 | column | cells 1-9: "
        "mean / p95 rel. error | 10-99 | >=100 |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]

    def _share(value: float | None) -> str:
        return "-" if value is None or value != value else f"{value:.1%}"  # NaN: no rows

    def fmt(band: dict[str, Any]) -> str:
        if not band["cells"]:
            return "-"
        return f"{band['mean_rel_error']:.1%} / {band['p95_rel_error']:.1%} ({band['cells']})"

    for name, t in data["tables"].items():
        if "errors" not in t:
            continue
        for i, (column, bands) in enumerate(t["errors"].items()):
            head = (
                f"| {name} | {t['rows']} | {t['withheld_share']:.1%} | "
                f"{_share(t.get('previous_method_withheld_share'))} | "
                f"{t['published_as_zero_share']:.1%} "
                if i == 0
                else "| | | | | "
            )
            lines.append(head + f"| {column} | " + " | ".join(fmt(bands[b]) for b in bands) + " |")
    lines += [
        "",
        "Relative error: |published - true| / true, per cell with a true value in the band "
        "(cells in brackets). Withheld before: the previous method (rows with a count of 1-9 "
        "suppressed, plus secondary suppression) on the same truth.",
        "",
        f"## Release audit (median of {data['repeats']}: {data['audit_seconds_median']} s)",
        "",
        "| table | cells and flows checked | narrowest attacker interval | protection | "
        "below | hidden | LP solves |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in data["tables"].items():
        a = t.get("audit")
        if a:
            lines.append(
                f"| {name} | {a['cells_checked']} | {a['narrowest_width']} | "
                f"{a['protection_width']} | {a['below_protection']} | {a['hidden_cells']} | "
                f"{a['lp_solves']} |"
            )
    p = data["tables"]["customer_profiles"]
    lines += [
        "",
        "## customer_profiles",
        "",
        f"{p['rows']} records of {p['records_in']}, {p['records_suppressed']} suppressed; "
        f"generalisation levels {p['generalisation_levels']}; fully generalised: "
        f"{', '.join(p['columns_fully_generalised']) or 'none'}; smallest group "
        f"{p['min_group_size']}.",
        "",
        f"Machine: {data['machine']}.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=1500)
    parser.add_argument("--prospects", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = run(args.companies, args.prospects, args.repeats)
    save("disclosure_utility", data, markdown(data))


if __name__ == "__main__":
    main()

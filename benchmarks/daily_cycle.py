"""The daily cycle at scale: ingest -> retention -> statistics -> validation gate -> publish.

For each scale (`ccg_pipeline.devtools.bulk.SCALES`; S is a tenth of M on every source), writes
the sources with the fast numpy generator, then runs, on a fresh SQLite warehouse and on a fresh
PostgreSQL one (a throw-away server, when the machine has the binaries), the functions the DAGs'
tasks call, in the DAGs' order:

- ingest (`ccg_ingest`): migrate, then three lanes side by side as the DAG's task graph runs
  them: portal then auth logs, CRM, web logs (on SQLite, which has one writer, one after
  another, see `_ingest`);
- retention (`ccg_retention`): plan, sweep, verify, vacuum (the rewrite the DAG's task does);
- statistics, validation, publish (`ccg_statistics`): build, the GX gate, the swap.

Each step runs in its own fresh Python process (spawned, not forked), like an Airflow task, and
reports its wall time, the rows it handled and its peak RSS (`ru_maxrss` of that process; a
PostgreSQL server's memory is its own and not counted). Rows per stage: ingest, source records
read; retention and statistics, rows in the personal zone when the stage starts; validation and
publish, staged statistics rows.

    .venv/bin/python benchmarks/daily_cycle.py [--scales S M] [--no-postgres] [--name daily_cycle]

Writes benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from results_io import RESULTS, save
from warehouses import warehouse_urls

from ccg_pipeline.devtools.bulk import SCALES, BulkScale

AS_OF = dt.date(2026, 11, 23)
WINDOW_END = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
STAGES = ("ingest", "retention", "statistics", "validation", "publish")
RSS_LIMIT_MIB = 2048
# The ingest issue's targets for the M cycle, per backend.
CYCLE_LIMIT_S = {"sqlite": 240, "postgres": 180}
SCALING_LIMIT = 12.0
# A tenth of S, for `make bench-quick` (which still wants a ratio between two sizes).
XS = BulkScale(
    companies=1_000, persons=10_000, crm_events=50_000, log_lines=100_000, auth_lines=2_000
)


def _scale(name: str) -> BulkScale:
    return XS if name == "XS" else SCALES[name]


# --- steps, each run in a fresh process --------------------------------------------------------


def _settings(home: str, sources: str, url: str) -> Any:
    from ccg_pipeline.config import Settings

    return Settings.from_env(
        {"CCG_HOME": home, "CCG_SOURCE_DIR": sources, "CCG_WAREHOUSE_URL": url}
    )


def _rows_in(url: str, tables: list[Any]) -> int:
    """Rows in `tables` (SQLAlchemy tables) of the warehouse at `url`."""
    import sqlalchemy as sa

    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as conn:
            return sum(
                conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables
            )
    finally:
        engine.dispose()


def _personal_rows(url: str) -> int:
    from ccg_pipeline.warehouse import schema

    return _rows_in(url, [t for t in schema.metadata.sorted_tables if t.schema == schema.PERSONAL])


def _staged_rows(url: str) -> int:
    from ccg_pipeline.warehouse import schema

    return _rows_in(url, [build for build, _published in schema.PUBLISHED])


def step_generate(out: str, scale: str) -> dict[str, Any]:
    from ccg_pipeline.devtools.bulk import generate_bulk

    t0 = time.perf_counter()
    report = generate_bulk(Path(out), _scale(scale), as_of=AS_OF)
    return {"seconds": time.perf_counter() - t0, "counts": report.counts}


def step_ingest(home: str, sources: str, url: str, source: str) -> dict[str, Any]:
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.warehouse import migrate
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    settings = _settings(home, sources, url)
    t0 = time.perf_counter()
    if source == "migrate":  # the DAG's migrate_warehouse task, before the sources
        engine = create_warehouse_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        return {"seconds": time.perf_counter() - t0, "rows": 0, "detail": {}}
    summary = ingest_source(
        settings, source, run_id="bench", window_start=None, window_end=WINDOW_END
    )
    return {
        "seconds": time.perf_counter() - t0,
        "rows": summary["rows_read"],
        "detail": {k: summary[k] for k in ("rows_loaded", "rows_quarantined", "rows_retired")},
    }


def step_retention(home: str, sources: str, url: str) -> dict[str, Any]:
    from ccg_pipeline.retention import plan_retention, run_retention
    from ccg_pipeline.retention.evidence import verify_run
    from ccg_pipeline.retention.sweep import vacuum_personal_zone
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    settings = _settings(home, sources, url)
    rows = _personal_rows(url)
    laps: dict[str, float] = {}
    t0 = time.perf_counter()
    plan_retention(settings, AS_OF)
    laps["plan"] = time.perf_counter() - t0
    summary = run_retention(settings, AS_OF, "bench")
    laps["sweep"] = time.perf_counter() - t0 - sum(laps.values())
    verify_run(settings, "bench")
    laps["verify"] = time.perf_counter() - t0 - sum(laps.values())
    engine = create_warehouse_engine(url)
    try:
        vacuum_personal_zone(engine, rewrite=True)  # as ccg_retention's vacuum task does
    finally:
        engine.dispose()
    laps["vacuum"] = time.perf_counter() - t0 - sum(laps.values())
    return {
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "detail": {
            "deleted": summary["deleted"],
            "anonymised": summary["anonymised"],
            **{f"{k}_seconds": round(v, 2) for k, v in laps.items()},
        },
    }


def step_statistics(home: str, sources: str, url: str) -> dict[str, Any]:
    from ccg_pipeline.publication import build_statistics

    rows = _personal_rows(url)
    t0 = time.perf_counter()
    built = build_statistics(_settings(home, sources, url), AS_OF, "bench")
    return {"seconds": time.perf_counter() - t0, "rows": rows, "detail": built}


def step_validation(home: str, sources: str, url: str) -> dict[str, Any]:
    from ccg_pipeline.publication import validate_statistics

    rows = _staged_rows(url)
    t0 = time.perf_counter()
    summary = validate_statistics(_settings(home, sources, url), "bench")
    return {
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "detail": {k: summary[k] for k in ("tables", "expectations", "failed")},
    }


def step_publish(home: str, sources: str, url: str) -> dict[str, Any]:
    from ccg_pipeline.publication import publish_statistics

    rows = _staged_rows(url)
    t0 = time.perf_counter()
    published = publish_statistics(_settings(home, sources, url), "bench")
    return {"seconds": time.perf_counter() - t0, "rows": rows, "detail": published["tables"]}


def _child(queue: Any, step: Callable[..., dict[str, Any]], args: tuple) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    try:
        load = os.getloadavg()[0]
        out = step(*args)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["peak_rss_mib"] = round(usage.ru_maxrss / 1024)
        # CPU time next to wall time, and the load average, show how much a busy machine
        # stretched the wall time.
        out["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
        out["load_average"] = round((load + os.getloadavg()[0]) / 2, 1)
        queue.put(out)
    except BaseException as exc:
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def run_step(step: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`step(*args)` in a fresh spawned process; its result plus that process's peak RSS."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, step, args))
    process.start()
    out = queue.get()
    process.join()
    if "error" in out:
        raise RuntimeError(f"{step.__name__}{args[-1:]} failed: {out['error']}")
    return out


# --- one cycle ---------------------------------------------------------------------------------


# ccg_ingest's task graph: migrate >> [portal, crm, web_logs]; portal >> auth_logs.
INGEST_LANES = (("portal", "auth_logs"), ("crm",), ("web_logs",))


def _ingest(url: str, sources: Path, home: Path) -> dict[str, Any]:
    """Ingest as the DAG schedules it: the migration, then three lanes side by side (each step
    still in its own process). Wall time is the whole; peak RSS is the sum of the lanes' peaks,
    an upper bound on what runs at once.

    On SQLite the lanes run one after another: the DAG's lanes take turns there too (SQLite has
    one writer, and `ingest_source` makes each source wait for the writer's turn), so the total
    is the same and each source is timed alone."""
    t0 = time.perf_counter()
    parallel = not url.startswith("sqlite")
    parts = {"migrate": run_step(step_ingest, str(home), str(sources), url, "migrate")}

    def lane(names: tuple[str, ...]) -> None:
        for source in names:
            parts[source] = run_step(step_ingest, str(home), str(sources), url, source)
            print(f"    ingest {source}: {_line(parts[source])}", flush=True)

    with ThreadPoolExecutor(len(INGEST_LANES) if parallel else 1) as pool:
        for future in [pool.submit(lane, names) for names in INGEST_LANES]:
            future.result()
    return {
        "seconds": time.perf_counter() - t0,
        "rows": sum(p["rows"] for p in parts.values()),
        "peak_rss_mib": (sum if parallel else max)(
            max(parts[n]["peak_rss_mib"] for n in names) for names in INGEST_LANES
        ),
        "cpu_seconds": round(sum(p["cpu_seconds"] for p in parts.values()), 1),
        "load_average": round(max(p["load_average"] for p in parts.values()), 1),
        "parts": parts,
    }


def run_cycle(url: str, sources: Path, home: Path) -> dict[str, Any]:
    stages: dict[str, Any] = {"ingest": _ingest(url, sources, home)}
    for name, step in (
        ("retention", step_retention),
        ("statistics", step_statistics),
        ("validation", step_validation),
        ("publish", step_publish),
    ):
        stages[name] = run_step(step, str(home), str(sources), url)
        print(f"    {name}: {_line(stages[name])}", flush=True)
    for stage in stages.values():
        stage["seconds"] = round(stage["seconds"], 2)
        stage["rows_per_s"] = round(stage["rows"] / stage["seconds"]) if stage["seconds"] else None
    return {
        "stages": stages,
        "total_seconds": round(sum(s["seconds"] for s in stages.values()), 1),
        "peak_rss_mib": max(s["peak_rss_mib"] for s in stages.values()),
        "bound_by": max(stages, key=lambda n: stages[n]["seconds"]),
    }


def _line(r: dict[str, Any]) -> str:
    return f"{r['seconds']:.1f} s, {r['rows']:,} rows, peak RSS {r['peak_rss_mib']} MiB"


# --- report ------------------------------------------------------------------------------------


def _markdown(report: dict[str, Any]) -> list[str]:
    scales, backends = report["scales"], report["backends"]
    lines = [
        "# The daily cycle at scale",
        "",
        "ingest -> retention -> statistics -> validation gate -> publish, the functions the DAG "
        "tasks call, each step in a fresh process. "
        f"{report['machine']}, Python {report['python']}, as of {report['as_of']}.",
        "",
        "| scale | companies | persons | CRM events | log lines | source rows read |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, sc in report["sizes"].items():
        rows = next(iter(scales[name].values()))["stages"]["ingest"]["rows"] if scales[name] else 0
        lines.append(
            f"| {name} | {sc['companies']:,} | {sc['persons']:,} | {sc['crm_events']:,} | "
            f"{sc['log_lines']:,} | {rows:,} |"
        )
    lines += [
        "",
        "| scale | backend | stage | wall (s) | rows | rows/s | peak RSS (MiB) | CPU (s) | load avg |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, per_backend in scales.items():
        for backend, cycle in per_backend.items():
            for stage in STAGES:
                r = cycle["stages"][stage]
                lines.append(
                    f"| {name} | {backend} | {stage} | {r['seconds']:.1f} | {r['rows']:,} | "
                    f"{r['rows_per_s'] or 0:,} | {r['peak_rss_mib']:,} | {r['cpu_seconds']} | "
                    f"{r['load_average']} |"
                )
            lines.append(
                f"| {name} | {backend} | **cycle** | **{cycle['total_seconds']:.1f}** | | | "
                f"**{cycle['peak_rss_mib']:,}** | | |"
            )
    ratios = report.get("scaling")
    if ratios:
        (small, large), *_ = ratios.keys()
        lines += [
            "",
            f"Scaling, time at {large} / time at {small} for {report['data_ratio']:.0f}x the data "
            f"(target <= {SCALING_LIMIT:.0f}x):",
            "",
            "| backend | " + " | ".join(STAGES) + " | cycle |",
            "|---|" + "---:|" * (len(STAGES) + 1),
        ]
        for backend in backends:
            r = ratios[(small, large)].get(backend)
            if r:
                lines.append(
                    f"| {backend} | "
                    + " | ".join(f"{r[s]:.1f}x" for s in STAGES)
                    + f" | {r['cycle']:.1f}x |"
                )
    lines += [
        "",
        "CPU is the step process's own (user + system); database server time is not in it. The "
        "load average (1 min, mean of start and end) is the machine's, on 2 cores shared with "
        "other work: above 2, wall time is stretched by waiting for a core.",
        "",
        "Ingest by source (wall s, rows/s, peak RSS MiB). On PostgreSQL, as in the DAG, portal "
        "(then auth logs), CRM and web logs run side by side, three processes on 2 cores, so "
        "each source's wall time includes waiting for a core and ingest's peak RSS is the sum "
        "of the lanes'; on SQLite they run one after another:",
        "",
    ]
    for name, per_backend in scales.items():
        for backend, cycle in per_backend.items():
            parts = cycle["stages"]["ingest"]["parts"]
            cells = ", ".join(
                f"{src} {p['seconds']:.1f} s / {p['rows'] / p['seconds']:,.0f} rows/s / {p['peak_rss_mib']}"
                for src, p in parts.items()
            )
            ret = cycle["stages"]["retention"]["detail"]
            lines.append(
                f"- {name} {backend}: {cells}; retention deleted {ret['deleted']:,} rows "
                f"(plan {ret['plan_seconds']} s, sweep {ret['sweep_seconds']} s, verify "
                f"{ret['verify_seconds']} s, vacuum {ret['vacuum_seconds']} s)"
            )
    lines += _against_previous(report)
    lines += ["", "Targets:", ""]
    for check in report["targets"]:
        lines.append(f"- {'met' if check['met'] else 'MISSED'}: {check['what']}")
    lines += [
        "",
        "Generation (not part of the cycle): "
        + ", ".join(
            f"{n} {g['seconds']:.0f} s, peak RSS {g['peak_rss_mib']} MiB"
            for n, g in report["generation"].items()
        )
        + ".",
    ]
    return lines


def _against_previous(report: dict[str, Any]) -> list[str]:
    """Each stage's time against the same scale and backend in the results file this run
    replaces, so a change's effect on the whole cycle is read from one report."""
    previous = report.get("previous")
    if not previous:
        return []
    lines = [
        "",
        f"Against the results file this run replaces (measured {previous['measured']}), "
        "its time / this run's:",
        "",
        "| scale | backend | " + " | ".join(STAGES) + " | cycle |",
        "|---|---|" + "---:|" * (len(STAGES) + 1),
    ]
    for name, per_backend in report["scales"].items():
        for backend, cycle in per_backend.items():
            before = previous["scales"].get(name, {}).get(backend)
            if not before:
                continue
            cells = [
                f"{before['stages'][s]['seconds'] / cycle['stages'][s]['seconds']:.2f}x"
                for s in STAGES
            ]
            lines.append(
                f"| {name} | {backend} | "
                + " | ".join(cells)
                + f" | {before['total_seconds'] / cycle['total_seconds']:.2f}x "
                f"({before['total_seconds']:.0f} s -> {cycle['total_seconds']:.0f} s) |"
            )
    return lines


def _previous(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return {"scales": data.get("scales", {}), "measured": data.get("measured", "earlier")}


def _targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for name, per_backend in report["scales"].items():
        for backend, cycle in per_backend.items():
            checks.append(
                {
                    "what": f"{name} {backend}: peak RSS {cycle['peak_rss_mib']} MiB <= {RSS_LIMIT_MIB} MiB",
                    "met": cycle["peak_rss_mib"] <= RSS_LIMIT_MIB,
                }
            )
            if name == "M":
                checks.append(
                    {
                        "what": f"M {backend}: cycle {cycle['total_seconds']:.0f} s <= "
                        f"{CYCLE_LIMIT_S[backend]} s (bound by {cycle['bound_by']})",
                        "met": cycle["total_seconds"] <= CYCLE_LIMIT_S[backend],
                    }
                )
    for (small, large), per_backend in report.get("scaling", {}).items():
        for backend, r in per_backend.items():
            worst = max(STAGES, key=lambda s: r[s])
            checks.append(
                {
                    "what": f"{backend} {large}/{small}: cycle {r['cycle']:.1f}x, worst stage "
                    f"{worst} {r[worst]:.1f}x, <= {SCALING_LIMIT:.0f}x",
                    "met": r["cycle"] <= SCALING_LIMIT and r[worst] <= SCALING_LIMIT,
                }
            )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", nargs="+", default=["S", "M"], choices=["XS", "S", "M"])
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--name", default="daily_cycle")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "benchmark": args.name,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "as_of": AS_OF.isoformat(),
        "measured": dt.datetime.now(dt.UTC).date().isoformat(),
        "previous": _previous(args.name),
        "sizes": {n: vars(_scale(n)) | {"users": _scale(n).users} for n in args.scales},
        "generation": {},
        "scales": {},
    }
    partial = RESULTS / f"{args.name}.partial.json"
    with tempfile.TemporaryDirectory(prefix="ccg-cycle-") as tmp:
        root = Path(tmp)
        with warehouse_urls(root, postgres=not args.no_postgres) as make_url:
            if args.no_sqlite:
                make_url.pop("sqlite")
            report["backends"] = list(make_url)
            for name in args.scales:
                sources = root / f"sources-{name}"
                print(f"{name}: generating {_scale(name)}", flush=True)
                gen = run_step(step_generate, str(sources), name)
                report["generation"][name] = {
                    "seconds": round(gen["seconds"], 1),
                    "peak_rss_mib": gen["peak_rss_mib"],
                    "counts": gen["counts"],
                }
                print(f"  generated in {gen['seconds']:.1f} s: {gen['counts']}", flush=True)
                report["scales"][name] = {}
                for backend, make in make_url.items():
                    print(f"  {name} on {backend}", flush=True)
                    url = make(f"cycle-{name}")
                    cycle = run_cycle(url, sources, root / f"home-{name}-{backend}")
                    report["scales"][name][backend] = cycle
                    # What is done so far survives a failure later in a long run.
                    partial.write_text(json.dumps(report, indent=2, default=str) + "\n")
                    print(
                        f"  {name} {backend}: cycle {cycle['total_seconds']} s, "
                        f"peak RSS {cycle['peak_rss_mib']} MiB, bound by {cycle['bound_by']}",
                        flush=True,
                    )
                # Free the disk before the next scale: M's sources and warehouses are large.
                for path in sorted(root.glob(f"*{name}*")):
                    if path.is_dir():
                        import shutil

                        shutil.rmtree(path, ignore_errors=True)
    if len(args.scales) >= 2:
        small, large = args.scales[-2], args.scales[-1]
        report["data_ratio"] = _scale(large).log_lines / _scale(small).log_lines
        per_backend = {}
        for backend in report["backends"]:
            a, b = report["scales"][small][backend], report["scales"][large][backend]
            per_backend[backend] = {
                s: round(b["stages"][s]["seconds"] / a["stages"][s]["seconds"], 2) for s in STAGES
            } | {"cycle": round(b["total_seconds"] / a["total_seconds"], 2)}
        report["scaling"] = {(small, large): per_backend}
    report["targets"] = _targets(report)
    lines = _markdown(report)
    if "scaling" in report:  # JSON keys must be strings
        report["scaling"] = {f"{a}->{b}": v for (a, b), v in report["scaling"].items()}
    save(args.name, report, lines)
    partial.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main())

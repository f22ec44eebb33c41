"""The `ccg` command line: generate sources, manage the warehouse, run an ingest, summarise.

Every command prints counts and paths, never personal data.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ccg_pipeline.config import Settings

FORMAT_HELP = "json: one JSON document instead of text (for scripts and monitoring)"


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _past_date(value: str) -> dt.date:
    """A day that has begun (UTC): deciding as of a later day would act on what has not
    happened, e.g. delete data before its deadline."""
    day = _date(value)
    if day > dt.datetime.now(dt.UTC).date():
        raise argparse.ArgumentTypeError(f"{value} is in the future")
    return day


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must not be negative")
    return number


def _cmd_generate(args: argparse.Namespace) -> int:
    from ccg_pipeline.devtools.generate import GenerateOptions, generate

    report = generate(
        GenerateOptions(
            out=args.out,
            seed=args.seed,
            as_of=args.as_of,
            companies=args.companies,
            prospects=args.prospects,
            log_days=args.log_days,
            log_lines_per_day=args.log_lines_per_day,
            crm_export_days=args.crm_export_days,
            malformed_rate=args.malformed_rate,
        )
    )
    print(
        f"Generated synthetic CCG sources in {report.out} (seed {args.seed}, as of {args.as_of}):"
    )
    for name, count in report.counts.items():
        print(f"  {name:<22} {count:>9,}")
    return 0


def _ingest_lanes() -> list[str]:
    """The portal, then each file lane `policy/data_map.yaml` registers, in load order."""
    from ccg_pipeline.policy import load_data_map

    return [lane.name for lane in load_data_map().ingest_lanes()]


def _engine(settings: Settings):
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    return create_warehouse_engine(settings.warehouse_url)


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from ccg_pipeline.warehouse import migrate

    print(f"warehouse schema at revision {migrate.upgrade(_engine(args.settings))}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.warehouse import migrate

    migrate.upgrade(_engine(args.settings))
    start = dt.datetime.combine(args.date, dt.time())
    end = start + dt.timedelta(days=1)
    for source in args.source or _ingest_lanes():
        summary = ingest_source(
            args.settings,
            source,
            run_id=f"cli__{args.date.isoformat()}",
            window_start=start,
            window_end=end,
            full_refresh=args.full_refresh,
        )
        print(json.dumps(summary))
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from ccg_pipeline.warehouse.backend import backend_of
    from ccg_pipeline.warehouse.summary import render, summarise

    settings = args.settings
    zone_files = backend_of(settings.warehouse_url).zone_files(settings.warehouse_url)
    files = {z: str(p) for z, p in zone_files.items()} if zone_files is not None else None
    summary = summarise(_engine(settings))
    if args.format == "json":
        _print_json({**dataclasses.asdict(summary), "zone_files": files})
    else:
        print(render(summary, files))
    return 0


def _print_json(document: Any) -> None:
    """One JSON document on stdout: dates as ISO 8601, tuples as lists."""
    print(json.dumps(document, default=_json_value, indent=2))


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _cmd_policy_check(args: argparse.Namespace) -> int:
    from ccg_pipeline.policy import load_data_map, load_notice

    notice = load_notice(args.notice)
    data_map = load_data_map(args.data_map)
    columns = sum(len(s.columns) for s in data_map.sources.values())
    print(
        f"notice ok: {len(notice.categories)} categories, {len(notice.processing_activities)} "
        f"processing activities, {len(notice.legitimate_interests)} legitimate interests, "
        f"{len(notice.retention_rules)} retention rules, {len(notice.recipients)} recipients, "
        f"{len(notice.transfers)} transfers"
    )
    print(f"data map ok: {len(data_map.sources)} sources, {columns} columns tagged")
    for rule in notice.retention_rules:
        print(
            f"  {rule.id:<24} {rule.period.model_dump(exclude_defaults=True)!s:<14} {rule.decided_by.value}"
        )
    # N-BASIS: the code's processings against this notice's purposes.
    from ccg_pipeline.evidence.basis import declaration_problems, declared_processings

    processings = declared_processings()
    problems = declaration_problems(processings, notice)
    for processing_id, found in problems.items():
        for problem in found:
            print(f"  processing {processing_id}: {problem}", file=sys.stderr)
    print(
        f"processings {'ok' if not problems else 'NOT ALLOWED'}: {len(processings)} declared, "
        f"{len(problems)} the notice does not allow"
    )
    return 1 if problems else 0


def _cmd_retention(args: argparse.Namespace) -> int:
    from ccg_pipeline.retention import plan_retention, render_plan, run_retention

    align = True if args.align_to_year_end else None
    if args.retention_command == "plan":
        summary = plan_retention(args.settings, args.as_of, align_to_year_end=align)
        print(
            json.dumps(summary, default=str)
            if args.format == "json"
            else render_plan(summary, args.as_of)
        )
        return 0
    summary = run_retention(
        args.settings, args.as_of, f"cli__retention__{args.as_of}", align_to_year_end=align
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "targets"}))
    return 0


def _cmd_statistics(args: argparse.Namespace) -> int:
    from ccg_pipeline import publication, statistics
    from ccg_pipeline.statistics import dictionary

    if args.statistics_command == "run":
        run_id = args.run_id or f"cli__{args.as_of.isoformat()}"
        built = publication.build_statistics(args.settings, args.as_of, run_id)
        print(json.dumps({"built": built}))
        print(json.dumps({"validated": publication.validate_statistics(args.settings, run_id)}))
        print(json.dumps(publication.publish_statistics(args.settings, run_id)))
    elif args.statistics_command == "dictionary":
        text = dictionary.render()
        if args.check:
            current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
            if current != text:
                print(
                    f"{args.out} is out of date: run `ccg statistics dictionary`", file=sys.stderr
                )
                return 1
            print(f"{args.out} is up to date")
        else:
            args.out.write_text(text, encoding="utf-8")
            print(f"wrote {args.out}")
    elif args.statistics_command == "example":
        print(statistics.render_example(args.settings, args.table))
    else:  # role-sql
        from ccg_pipeline.warehouse.roles import analyst_role_sql

        print(analyst_role_sql())
    return 0


def _cmd_expectations(args: argparse.Namespace) -> int:
    """Write the GX suites from the table definitions, or (--check) exit 1 when they drift."""
    from ccg_pipeline.validation import suites

    if args.check:
        stale = suites.stale()
        if stale:
            print(f"suites out of date: {stale}: run `ccg expectations write`", file=sys.stderr)
            return 1
        print(f"{len(suites.expected_suites())} suites in {suites.SUITE_DIR.name}/ are up to date")
        return 0
    for path in suites.write():
        print(f"wrote {path.parent.name}/{path.name}")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    """Exit 1 when anything is found, 0 when clean, 2 on bad input (via main's handler)."""
    from ccg_pipeline.scan import read_table, scan_arrow, scan_path

    target = Path(args.target)
    if target.exists() or target.suffix.lower() in (".csv", ".tsv", ".parquet", ".gz", ".pq"):
        findings = scan_path(target)
    else:
        engine = _engine(args.settings)
        try:
            findings = scan_arrow(read_table(engine, args.target))
        finally:
            engine.dispose()
    if args.format == "json":
        print(json.dumps({"target": args.target, "findings": [f.as_dict() for f in findings]}))
    else:
        for f in findings:
            print(f"row {f.row}  {f.column}  {f.detector}  {f.masked}")
        print(f"{len(findings)} finding(s) in {args.target}")
    return 1 if findings else 0


def _cmd_hold(args: argparse.Namespace) -> int:
    from ccg_pipeline.retention import holds
    from ccg_pipeline.warehouse.migrate import migrated

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # an operator action happens now
    with migrated(args.settings.warehouse_url) as engine:
        if args.hold_command == "add":
            hold_id = holds.add_hold(
                engine,
                args.settings.pseudonym_key,
                args.email,
                args.reason,
                origin=args.origin,
                at=now,
            )
            print(f"hold {hold_id} set")
        elif args.hold_command == "release":
            holds.release_hold(engine, args.hold_id, at=now, note=args.note)
            print(f"hold {args.hold_id} released")
        elif args.format == "json":
            _print_json(holds.list_holds(engine, include_released=args.all))
        else:
            for h in holds.list_holds(engine, include_released=args.all):
                state = f"released {h.released_at:%Y-%m-%d}" if h.released_at else "active"
                print(
                    f"{h.hold_id:>5}  {h.subject}  {h.origin:<19} {h.created_at:%Y-%m-%d}  "
                    f"{state:<19} {h.reason}"
                )
    return 0


def _timestamp(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date-time") from None
    moment = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return moment


def _past_timestamp(value: str) -> dt.datetime:
    moment = _timestamp(value)
    if moment > dt.datetime.now(dt.UTC).replace(tzinfo=None):
        raise argparse.ArgumentTypeError(f"{value} is in the future")
    return moment


def _cmd_request(args: argparse.Namespace) -> int:
    """Subject requests: submit, verify, extend, list, process. Identities are shown masked."""
    from ccg_pipeline import requests
    from ccg_pipeline.requests import intake

    settings = args.settings
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # operator actions happen now
    command = args.request_command
    if command == "process":
        print(json.dumps({"intake": requests.run_intake(settings, now)}))
        print(json.dumps(requests.run_processing(settings, now)))
        return 0
    from ccg_pipeline.warehouse.migrate import migrated

    with migrated(settings.warehouse_url) as engine:
        if command == "submit":
            payload = intake.read_payload_file(args.payload) if args.payload else {}
            submission = intake.parse_submission(
                args.type,
                args.email,
                payload,
                received_at=args.received_at or now,
                source="cli",
            )
            request_id = intake.submit(engine, settings.pseudonym_key, submission)
            print(f"request {request_id} received ({args.type}); awaiting identity verification")
        elif command == "verify":
            due = requests.verify(engine, args.request_id, args.at or now)
            print(f"request {args.request_id} verified; due on {due.isoformat()}")
        elif command == "extend":
            due = requests.extend(engine, args.request_id, args.months, args.reason, now.date())
            print(f"request {args.request_id} extended; due on {due.isoformat()}")
        else:  # list
            entries = requests.queue(engine, now.date(), include_closed=args.all)
            if args.format == "json":
                _print_json(entries)
                return 0
            for e in entries:
                due_text = e.due_on.isoformat() if e.due_on else "clock stopped"
                left = "" if e.days_left is None else f"{e.days_left:>4} days left"
                print(
                    f"{e.request_id}  {e.request_type:<16} {e.email_masked:<22} "
                    f"{e.status:<22} received {e.received_on}  due {due_text:<13} {left}"
                )
            print(f"{len(entries)} request(s)")
    return 0


def _cmd_ropa(args: argparse.Namespace) -> int:
    """The record of processing activities (GDPR art. 30), from the policy and the processings
    the code declares: no database."""
    from ccg_pipeline import ropa
    from ccg_pipeline.evidence.basis import declared_processings
    from ccg_pipeline.policy import load_data_map, load_notice

    as_of = args.as_of or dt.datetime.now(dt.UTC).date()  # an operator's record is as of today
    record = ropa.build_ropa(load_notice(), load_data_map(), as_of, declared_processings())
    if args.out is None:
        print(ropa.render_markdown(record), end="")
        return 0
    for path in ropa.write_ropa(record, args.out):
        print(f"wrote {path}")
    return 0


def _cmd_breach_impact(args: argparse.Namespace) -> int:
    """Who and what a leaked table or file affects (N-SEC): counts only. Exit 2 on bad input."""
    from ccg_pipeline.breach import assess

    engine = _engine(args.settings)
    try:
        report = assess(args.source, engine, args.since)
    finally:
        engine.dispose()
    print(report.to_json() if args.format == "json" else report.render())
    return 0


def _cmd_evidence(args: argparse.Namespace) -> int:
    """The clause-by-clause compliance report. Read-only unless --record (which also runs the
    special-category sweep first, as the DAG does)."""
    from ccg_pipeline import evidence
    from ccg_pipeline.evidence.render import RENDERERS
    from ccg_pipeline.warehouse.migrate import migrated

    settings = args.settings
    run_id = args.run_id or f"manual__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    if args.record:  # as the DAG does: the special-category sweep, then the read-only checks
        from ccg_pipeline.retention.special import run_special_category_sweep

        run_special_category_sweep(settings, args.as_of, run_id)
    with migrated(settings.warehouse_url) as engine:
        report = evidence.collect(engine, settings, args.as_of, run_id)
        if args.record:
            files = evidence.store(settings, report)
            evidence.record(engine, report, files["html"])
            print(f"recorded run {run_id}; report in {files['html']}", file=sys.stderr)
    text = RENDERERS[args.format](report)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 1 if args.fail_on_findings and report.failed else 0


def _cmd_marketing_list(args: argparse.Namespace) -> int:
    from ccg_pipeline.marketing import write_marketing_list

    written = write_marketing_list(args.settings, args.as_of)
    print(
        f"marketing list as of {written['as_of']}: {written['recipients']} recipient(s) "
        f"({written['consent']} by consent, {written['purchase']} after a purchase) in "
        f"{written['file']}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccg", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"ccg {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic portal DB, CRM exports and logs")
    gen.add_argument("--out", type=Path, required=True, help="folder to write the sources into")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--as-of", type=_date, default=dt.date(2026, 11, 23), help="last day of data")
    gen.add_argument("--companies", type=_positive, default=120)
    gen.add_argument("--prospects", type=_positive, default=80)
    gen.add_argument("--log-days", type=_positive, default=3)
    gen.add_argument("--log-lines-per-day", type=_positive, default=1500)
    gen.add_argument("--crm-export-days", type=_positive, default=2)
    gen.add_argument("--malformed-rate", type=float, default=0.02)
    gen.set_defaults(func=_cmd_generate)

    db = sub.add_parser("db", help="warehouse schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="create or migrate the warehouse zones").set_defaults(
        func=_cmd_db_upgrade
    )

    ingest = sub.add_parser("ingest", help="ingest sources for one day, outside Airflow")
    ingest.add_argument("--date", type=_date, required=True, help="the day (data interval) to load")
    ingest.add_argument(
        "--source",
        action="append",
        choices=_ingest_lanes(),
        help="one ingest lane (repeatable; default: every lane the data map registers)",
    )
    ingest.add_argument("--full-refresh", action="store_true")
    ingest.set_defaults(func=_cmd_ingest)

    summary = sub.add_parser("summary", help="rows per zone and table, quarantine by reason")
    summary.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    summary.set_defaults(func=_cmd_summary)

    retention = sub.add_parser("retention", help="retention sweep (N-RET)")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    for name, text in (
        ("plan", "dry run: counts per rule and table, changes nothing"),
        ("run", "run the sweep"),
    ):
        cmd = retention_sub.add_parser(name, help=text)
        cmd.add_argument(
            "--as-of",
            # A plan may look ahead; a sweep for a later day would delete before the deadline.
            type=_past_date if name == "run" else _date,
            required=True,
            help="the day the sweep is as of",
        )
        cmd.add_argument(
            "--align-to-year-end", action="store_true", help="count from the financial-year end"
        )
        cmd.add_argument("--format", choices=["text", "json"], default="text")
        cmd.set_defaults(func=_cmd_retention)

    hold = sub.add_parser("hold", help="legal holds: block deletion, restrict processing")
    hold_sub = hold.add_subparsers(dest="hold_command", required=True)
    add = hold_sub.add_parser("add", help="place a hold on a subject")
    add.add_argument("--email", required=True)
    add.add_argument("--reason", required=True)
    add.add_argument(
        "--origin", choices=["operator", "restriction_request", "legal"], default="operator"
    )
    add.set_defaults(func=_cmd_hold)
    listing = hold_sub.add_parser("list", help="list holds (subjects masked)")
    listing.add_argument("--all", action="store_true", help="include released holds")
    listing.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    listing.set_defaults(func=_cmd_hold)
    release = hold_sub.add_parser("release", help="release a hold")
    release.add_argument("hold_id", type=int)
    release.add_argument("--note", default="")
    release.set_defaults(func=_cmd_hold)

    scan = sub.add_parser(
        "scan", help="look for identifying data in a CSV/Parquet file or a warehouse table"
    )
    scan.add_argument("target", help="a .csv, .tsv or .parquet file, or zone.table")
    scan.add_argument("--format", choices=("text", "json"), default="text")
    scan.set_defaults(func=_cmd_scan)

    stats = sub.add_parser("statistics", help="the statistics zone analysts read (N-AGG)")
    stats_sub = stats.add_subparsers(dest="statistics_command", required=True)
    run = stats_sub.add_parser("run", help="build, validate and publish, outside Airflow")
    run.add_argument("--as-of", type=_date, required=True)
    run.add_argument("--run-id")
    dictionary = stats_sub.add_parser("dictionary", help="write the analysts' data dictionary")
    dictionary.add_argument("--out", type=Path, default=Path("docs/data-dictionary.md"))
    dictionary.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    example = stats_sub.add_parser("example", help="run an example analyst query, print it")
    example.add_argument("--table", default=None, help="the table whose example to run")
    stats_sub.add_parser("role-sql", help="print the SQL that sets up the ccg_analyst role")
    for cmd in (run, dictionary, example, stats_sub.choices["role-sql"]):
        cmd.set_defaults(func=_cmd_statistics)

    request = sub.add_parser("request", help="data-subject requests (N-RIGHTS)")
    request_sub = request.add_subparsers(dest="request_command", required=True)
    submit = request_sub.add_parser("submit", help="take in a request (awaits verification)")
    submit.add_argument("--type", required=True, help="access, rectify, erase, restrict, ...")
    submit.add_argument("--email", required=True)
    submit.add_argument("--payload", type=Path, help="JSON file: corrections, export_name, scope")
    submit.add_argument(
        "--received-at", type=_past_timestamp, help="when it arrived (default: now; not later)"
    )
    verify = request_sub.add_parser("verify", help="identity verified: start the clock")
    verify.add_argument("request_id")
    verify.add_argument("--at", type=_timestamp, help="when it was verified (default: now)")
    extend = request_sub.add_parser("extend", help="extend by 1 or 2 months, within the first")
    extend.add_argument("request_id")
    extend.add_argument("--months", type=int, required=True, choices=(1, 2))
    extend.add_argument("--reason", required=True)
    listing = request_sub.add_parser("list", help="the queue: masked identity, status, days left")
    listing.add_argument("--all", action="store_true", help="include closed requests")
    listing.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    request_sub.add_parser("process", help="drop folder and verified requests, outside Airflow")
    for cmd in request_sub.choices.values():
        cmd.set_defaults(func=_cmd_request)

    gx_suites = sub.add_parser(
        "expectations", help="the validation gate's GX suites in expectations/ (N-ANON)"
    )
    gx_sub = gx_suites.add_subparsers(dest="expectations_command", required=True)
    write = gx_sub.add_parser("write", help="regenerate the suites from the table definitions")
    write.add_argument("--check", action="store_true", help="exit 1 if a suite is stale")
    write.set_defaults(func=_cmd_expectations)

    ropa = sub.add_parser(
        "ropa", help="record of processing activities (GDPR art. 30) from the policy"
    )
    ropa.add_argument(
        "--as-of", type=_date, help="the day transfer safeguards are judged on (default: today)"
    )
    ropa.add_argument("--out", type=Path, help="write ropa.md and ropa.csv here, not to stdout")
    ropa.set_defaults(func=_cmd_ropa)

    breach = sub.add_parser(
        "breach-impact", help="subjects, categories and countries a leak affects, counts only"
    )
    breach.add_argument(
        "--source", required=True, help="a warehouse table (zone.table) or a leaked file"
    )
    breach.add_argument("--since", type=_date, help="only rows written or dated on or after this")
    breach.add_argument("--format", choices=("text", "json"), default="text")
    breach.set_defaults(func=_cmd_breach_impact)

    evidence = sub.add_parser(
        "evidence", help="check every notice clause against the data, as of a date"
    )
    evidence.add_argument("--as-of", type=_date, required=True)
    evidence.add_argument("--format", choices=("md", "json", "html"), default="md")
    # --output: the flag's earlier name, still accepted (every other command says --out).
    evidence.add_argument(
        "--out", "--output", dest="out", type=Path, help="write the report here, not to stdout"
    )
    evidence.add_argument(
        "--record",
        action="store_true",
        help="run the special-category sweep first (as the DAG does), then store the report and the results in ops",
    )
    evidence.add_argument("--run-id", help="run id to record under (default manual__<time>)")
    evidence.add_argument(
        "--fail-on-findings", action="store_true", help="exit 1 when any clause fails"
    )
    evidence.set_defaults(func=_cmd_evidence)

    marketing = sub.add_parser(
        "marketing-list", help="write who may receive marketing as of a date (N-MKT)"
    )
    marketing.add_argument(
        "--as-of", type=_past_date, required=True, help="the day (today at the latest)"
    )
    marketing.set_defaults(func=_cmd_marketing_list)

    policy = sub.add_parser("policy", help="policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="validate the notice and the data map")
    check.add_argument("--notice", type=Path)
    check.add_argument("--data-map", type=Path)
    check.set_defaults(func=_cmd_policy_check)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccg-privacy-pipeline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# Commands that read or change an existing warehouse: on SQLite they refuse to create one by
# accident (a `ccg` run outside the project home would otherwise start an empty warehouse).
NEEDS_WAREHOUSE = frozenset(
    {"summary", "retention", "hold", "statistics", "request", "breach-impact", "evidence",
     "marketing-list"}
)  # fmt: skip


def _check_warehouse(args: argparse.Namespace) -> None:
    from ccg_pipeline.breach import looks_like_file
    from ccg_pipeline.warehouse.backend import backend_of

    if args.command not in NEEDS_WAREHOUSE:
        return
    if args.command == "breach-impact" and looks_like_file(args.source):
        return  # a leaked file is assessed without a warehouse
    url = args.settings.warehouse_url
    files = backend_of(url).zone_files(url)
    # The ops zone holds the schema version: it exists once a warehouse was created.
    if files is not None and not files["ops"].exists():
        raise FileNotFoundError(
            f"no warehouse in {files['ops'].parent}: set CCG_HOME (now {args.settings.home}) "
            "or CCG_WAREHOUSE_URL, or create one with `ccg db upgrade`"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 for findings (scan, evidence --fail-on-findings) and internal
    errors, 2 for bad input (arguments, dates, files, policy)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args.settings = Settings.from_env()
    try:
        _check_warehouse(args)
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away (`ccg ... | head`): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed pipe for exit
        return 1
    except (ValueError, OSError) as exc:  # bad input: one clear line naming it
        if args.verbose:
            raise
        print(f"ccg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a fault of ours: short, no SQL or values; -v for the traceback
        if args.verbose:
            raise
        print(
            f"ccg {args.command}: internal error ({type(exc).__name__}); run again with -v "
            "for the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

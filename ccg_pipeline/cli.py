"""The `ccg` command line: generate sources, manage the warehouse, run an ingest, summarise.

Every command prints counts and paths, never personal data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer.core import TyperGroup

from ccg_pipeline.config import Configured, Settings, user_config_file

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

FORMAT_HELP = "json: one JSON document instead of text (for scripts and monitoring)"
JSON_HELP = "the same as --format json"

Format = Literal["text", "json"]
FormatOption = Annotated[Format, typer.Option("--format", help=FORMAT_HELP)]
JsonFlag = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
# What a long piece of work reports as it goes: (items done, items in all, what it is on now).
ProgressHook = Callable[[int, int, str], None]


# --- argument types: a bad value is a usage error (exit 2) naming the flag ---------------------


def _date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):  # a default
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _past_date(value: str | dt.date) -> dt.date:
    """A day that has begun (UTC): deciding as of a later day would act on what has not
    happened, e.g. delete data before its deadline."""
    day = _date(value)
    if day > dt.datetime.now(dt.UTC).date():
        raise typer.BadParameter(f"{value} is in the future")
    return day


def _positive(value: str | int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a whole number") from None
    if number < 0:
        raise typer.BadParameter(f"{value!r} must not be negative")
    return number


def _timestamp(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date-time") from None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _past_timestamp(value: str | dt.datetime) -> dt.datetime:
    moment = _timestamp(value)
    if moment > dt.datetime.now(dt.UTC).replace(tzinfo=None):
        raise typer.BadParameter(f"{value} is in the future")
    return moment


def _ingest_lanes() -> list[str]:
    """The portal, then each file lane `policy/data_map.yaml` registers, in load order."""
    from ccg_pipeline.policy import load_data_map

    return [lane.name for lane in load_data_map().ingest_lanes()]


def _lane(value: str) -> str:
    lanes = _ingest_lanes()
    if value not in lanes:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(lanes)}")
    return value


def _as_json(format_: str, as_json: bool) -> bool:
    return as_json or format_ == "json"


# --- settings and the warehouse ---------------------------------------------------------------


def _configured() -> Configured:
    """Environment, then the ccg.toml found from here (see `Settings.from_config`), then defaults."""
    from ccg_pipeline.warehouse.backend import url_against

    return Settings.from_config(resolve_url=url_against)


def _settings() -> Settings:
    return _configured().settings


def _warehouse() -> Settings:
    """The settings of a warehouse that exists. On SQLite, a command that reads or changes one
    refuses to create it by accident (a `ccg` run outside the project home would otherwise
    start an empty warehouse); `ccg db upgrade` and `ccg ingest` create it on purpose."""
    from ccg_pipeline.warehouse.backend import backend_of

    configured = _configured()
    url = configured.settings.warehouse_url
    files = backend_of(url).zone_files(url)
    # The ops zone holds the schema version: it exists once a warehouse was created.
    if files is not None and not files["ops"].exists():
        origin = {"default": "the default: var/ in the current folder"}.get(
            configured.home_from, f"from {configured.home_from}"
        )
        raise FileNotFoundError(
            f"no warehouse in {files['ops'].parent} (project home {configured.settings.home}, "
            f"{origin}): set CCG_HOME or CCG_WAREHOUSE_URL, or `home = ...` in a ccg.toml (in "
            f"this folder or a parent, or {user_config_file(os.environ)}), or create one here "
            "with `ccg db upgrade`"
        )
    return configured.settings


def _engine(settings: Settings):
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    return create_warehouse_engine(settings.warehouse_url)


# --- output -----------------------------------------------------------------------------------


def _console(*, stderr: bool = False) -> Console:
    """A rich console on the current stdout (or stderr). Not a terminal: no colour, no markup,
    and wide enough that nothing is cut or wrapped for the program reading it."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, markup=False, emoji=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, width=1000)


def _table(console: Console, *columns: str, right: tuple[str, ...] = ()) -> Table:
    """Columns without rules when not a terminal (ASCII-safe, as the text was before)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else None, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", no_wrap=True)
    return table


def _print_table(console: Console, table: Table) -> None:
    """The table on the console; not a terminal: without the padding after the last column."""
    if console.is_terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _print_json(document: Any) -> None:
    """One JSON document on stdout: dates as ISO 8601, tuples as lists."""
    print(json.dumps(document, default=_json_value, indent=2))


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextmanager
def _progress(what: str) -> Iterator[ProgressHook | None]:
    """A progress bar on stderr while long work runs, when stderr is a terminal; else None, so
    that pipes, logs and tests see no bar. It shows counts and table or lane names only."""
    console = _console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    # Output printed meanwhile shows above the bar, unless stdout goes elsewhere (a file).
    above = sys.stdout.isatty()
    with Progress(
        *columns, TimeElapsedColumn(), console=console, transient=True, redirect_stdout=above
    ) as bar:
        task = bar.add_task(what, total=None)

        def report(done: int, total: int, label: str) -> None:
            description = f"{what} {escape(label)}" if label else what
            bar.update(task, completed=done, total=total, description=description)

        yield report


# --- the commands ------------------------------------------------------------------------------


class _InOrder(TyperGroup):
    """Commands listed in this order (typer lists single commands before groups)."""

    ORDER = ("generate", "db", "ingest", "summary", "retention", "hold", "scan", "statistics",
             "request", "expectations", "ropa", "breach-impact", "evidence", "marketing-list",
             "policy", "config")  # fmt: skip

    def list_commands(self, ctx: Any) -> list[str]:
        listed = super().list_commands(ctx)
        return sorted(listed, key=lambda n: self.ORDER.index(n) if n in self.ORDER else 99)


app = typer.Typer(
    cls=_InOrder,
    name="ccg",
    help=__doc__,
    add_completion=False,
    no_args_is_help=True,
    # Typer's exception pages print local variables: they could hold personal data.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help text (ASCII, nothing misread as markup)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _group(name: str, help_: str) -> typer.Typer:
    group = typer.Typer(no_args_is_help=True, rich_markup_mode=None, add_completion=False)
    app.add_typer(group, name=name, help=help_)
    return group


def _command(group: typer.Typer, name: str, help_: str) -> Callable[[Any], Any]:
    """A command whose help is listed whole (click would cut it at 45 characters or a '.')."""
    return group.command(name, help=help_, short_help=help_)


db_app = _group("db", "warehouse schema")
retention_app = _group("retention", "retention sweep (N-RET)")
hold_app = _group("hold", "legal holds: block deletion, restrict processing")
statistics_app = _group("statistics", "the statistics zone analysts read (N-AGG)")
request_app = _group("request", "data-subject requests (N-RIGHTS)")
expectations_app = _group(
    "expectations", "the validation gate's GX suites in expectations/ (N-ANON)"
)
policy_app = _group("policy", "policy files")


@dataclasses.dataclass
class _Run:
    """What `main` needs to know after the command line was read."""

    verbose: bool = False
    command: str | None = None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccg-privacy-pipeline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"ccg {_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log at INFO level")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if isinstance(ctx.obj, _Run):
        ctx.obj.verbose, ctx.obj.command = verbose, ctx.invoked_subcommand


@_command(app, "config", "the configuration file, project home and warehouse in use")
def _cmd_config(format_: FormatOption = "text", as_json: JsonFlag = False) -> int:
    configured = _configured()
    settings = configured.settings
    document = {
        "config_file": str(configured.file) if configured.file else None,
        "home": str(settings.home),
        "home_from": configured.home_from,
        "warehouse_url": _masked_url(settings.warehouse_url),
        "source_dir": str(settings.source_dir),
        "environment": settings.environment,
    }
    if _as_json(format_, as_json):
        _print_json(document)
        return 0
    document["config_file"] = document["config_file"] or "none found (CCG_* and defaults)"
    console = _console()
    table = _table(console, "setting", "value")
    for key, value in document.items():
        table.add_row(key, value)
    _print_table(console, table)
    return 0


def _masked_url(url: str) -> str:
    """A database URL with its password as ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


@_command(app, "generate", "write synthetic portal DB, CRM exports and logs")
def _cmd_generate(
    out: Annotated[Path, typer.Option("--out", help="folder to write the sources into")],
    seed: Annotated[int, typer.Option("--seed")] = 42,
    as_of: Annotated[
        dt.date, typer.Option("--as-of", parser=_date, help="last day of data")
    ] = dt.date(2026, 11, 23),
    companies: Annotated[int, typer.Option("--companies", parser=_positive)] = 120,
    prospects: Annotated[int, typer.Option("--prospects", parser=_positive)] = 80,
    log_days: Annotated[int, typer.Option("--log-days", parser=_positive)] = 3,
    log_lines_per_day: Annotated[int, typer.Option("--log-lines-per-day", parser=_positive)] = 1500,
    crm_export_days: Annotated[int, typer.Option("--crm-export-days", parser=_positive)] = 2,
    malformed_rate: Annotated[float, typer.Option("--malformed-rate")] = 0.02,
) -> int:
    from ccg_pipeline.devtools.generate import GenerateOptions, generate

    options = GenerateOptions(
        out=out,
        seed=seed,
        as_of=as_of,
        companies=companies,
        prospects=prospects,
        log_days=log_days,
        log_lines_per_day=log_lines_per_day,
        crm_export_days=crm_export_days,
        malformed_rate=malformed_rate,
    )
    report = generate(options)
    console = _console()
    console.print(f"Generated synthetic CCG sources in {report.out} (seed {seed}, as of {as_of}):")
    table = _table(console, "source", "rows", right=("rows",))
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    _print_table(console, table)
    return 0


@_command(db_app, "upgrade", "create or migrate the warehouse zones")
def _cmd_db_upgrade() -> int:
    from ccg_pipeline.warehouse import migrate

    print(f"warehouse schema at revision {migrate.upgrade(_engine(_settings()))}")
    return 0


@_command(app, "ingest", "ingest sources for one day, outside Airflow")
def _cmd_ingest(
    date: Annotated[
        dt.date, typer.Option("--date", parser=_date, help="the day (data interval) to load")
    ],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            parser=_lane,
            metavar="LANE",
            help="one ingest lane (repeatable; default: every lane the data map registers)",
        ),
    ] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh")] = False,
) -> int:
    from ccg_pipeline.ingest import ingest_source
    from ccg_pipeline.warehouse import migrate

    settings = _settings()
    migrate.upgrade(_engine(settings))
    start = dt.datetime.combine(date, dt.time())
    lanes = source or _ingest_lanes()
    with _progress("ingest") as progress:
        for done, lane in enumerate(lanes):
            if progress is not None:
                progress(done, len(lanes), lane)
            summary = ingest_source(
                settings,
                lane,
                run_id=f"cli__{date.isoformat()}",
                window_start=start,
                window_end=start + dt.timedelta(days=1),
                full_refresh=full_refresh,
            )
            print(json.dumps(summary))
    return 0


@_command(app, "summary", "rows per zone and table, quarantine by reason")
def _cmd_summary(format_: FormatOption = "text", as_json: JsonFlag = False) -> int:
    from ccg_pipeline.warehouse.backend import backend_of
    from ccg_pipeline.warehouse.summary import render, summarise

    settings = _warehouse()
    zone_files = backend_of(settings.warehouse_url).zone_files(settings.warehouse_url)
    files = {z: str(p) for z, p in zone_files.items()} if zone_files is not None else None
    summary = summarise(_engine(settings))
    if _as_json(format_, as_json):
        _print_json({**dataclasses.asdict(summary), "zone_files": files})
    else:
        print(render(summary, files))
    return 0


AS_OF_HELP = "the day the sweep is as of"
ALIGN_HELP = "count from the financial-year end"


@_command(retention_app, "plan", "dry run: counts per rule and table, changes nothing")
def _cmd_retention_plan(
    # A plan may look ahead; a sweep for a later day would delete before the deadline.
    as_of: Annotated[dt.date, typer.Option("--as-of", parser=_date, help=AS_OF_HELP)],
    align_to_year_end: Annotated[
        bool, typer.Option("--align-to-year-end", help=ALIGN_HELP)
    ] = False,
    format_: FormatOption = "text",
    as_json: JsonFlag = False,
) -> int:
    from ccg_pipeline.retention import plan_retention, render_plan

    align = True if align_to_year_end else None
    summary = plan_retention(_warehouse(), as_of, align_to_year_end=align)
    json_out = _as_json(format_, as_json)
    print(json.dumps(summary, default=str) if json_out else render_plan(summary, as_of))
    return 0


@_command(retention_app, "run", "run the sweep")
def _cmd_retention_run(
    as_of: Annotated[dt.date, typer.Option("--as-of", parser=_past_date, help=AS_OF_HELP)],
    align_to_year_end: Annotated[
        bool, typer.Option("--align-to-year-end", help=ALIGN_HELP)
    ] = False,
    format_: Annotated[Format, typer.Option("--format")] = "text",  # prints JSON either way
) -> int:
    from ccg_pipeline.retention import run_retention

    settings = _warehouse()
    with _progress("retention") as progress:
        summary = run_retention(
            settings,
            as_of,
            f"cli__retention__{as_of}",
            align_to_year_end=True if align_to_year_end else None,
            progress=progress,
        )
    print(json.dumps({k: v for k, v in summary.items() if k != "targets"}))
    return 0


def _now() -> dt.datetime:
    """An operator action happens now (naive UTC, the warehouse's convention)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@_command(hold_app, "add", "place a hold on a subject")
def _cmd_hold_add(
    email: Annotated[str, typer.Option("--email")],
    reason: Annotated[str, typer.Option("--reason")],
    origin: Annotated[
        Literal["operator", "restriction_request", "legal"], typer.Option("--origin")
    ] = "operator",
) -> int:
    from ccg_pipeline.retention import holds
    from ccg_pipeline.warehouse.migrate import migrated

    settings = _warehouse()
    with migrated(settings.warehouse_url) as engine:
        hold_id = holds.add_hold(
            engine, settings.pseudonym_key, email, reason, origin=origin, at=_now()
        )
    print(f"hold {hold_id} set")
    return 0


@_command(hold_app, "list", "list holds (subjects masked)")
def _cmd_hold_list(
    all_: Annotated[bool, typer.Option("--all", help="include released holds")] = False,
    format_: FormatOption = "text",
    as_json: JsonFlag = False,
) -> int:
    from ccg_pipeline.retention import holds
    from ccg_pipeline.warehouse.migrate import migrated

    with migrated(_warehouse().warehouse_url) as engine:
        listed = holds.list_holds(engine, include_released=all_)
    if _as_json(format_, as_json):
        _print_json(listed)
        return 0
    console = _console()
    table = _table(console, "hold", "subject", "origin", "created", "state", "reason")
    for h in listed:
        state = f"released {h.released_at:%Y-%m-%d}" if h.released_at else "active"
        table.add_row(
            str(h.hold_id), h.subject, h.origin, f"{h.created_at:%Y-%m-%d}", state, h.reason
        )
    _print_table(console, table)
    return 0


@_command(hold_app, "release", "release a hold")
def _cmd_hold_release(
    hold_id: Annotated[int, typer.Argument(metavar="HOLD_ID")],
    note: Annotated[str, typer.Option("--note")] = "",
) -> int:
    from ccg_pipeline.retention import holds
    from ccg_pipeline.warehouse.migrate import migrated

    with migrated(_warehouse().warehouse_url) as engine:
        holds.release_hold(engine, hold_id, at=_now(), note=note)
    print(f"hold {hold_id} released")
    return 0


@_command(app, "scan", "look for identifying data in a CSV/Parquet file or a warehouse table")
def _cmd_scan(
    target: Annotated[
        str, typer.Argument(metavar="TARGET", help="a .csv, .tsv or .parquet file, or zone.table")
    ],
    format_: FormatOption = "text",
    as_json: JsonFlag = False,
) -> int:
    """Exit 1 when anything is found, 0 when clean, 2 on bad input (via main's handler)."""
    from ccg_pipeline.scan import read_table, scan_arrow, scan_path

    path = Path(target)
    with _progress(f"scan {target}") as progress:
        if path.exists() or path.suffix.lower() in (".csv", ".tsv", ".parquet", ".gz", ".pq"):
            findings = scan_path(path, progress=progress)
        else:
            engine = _engine(_settings())
            try:
                findings = scan_arrow(read_table(engine, target), progress=progress)
            finally:
                engine.dispose()
    if _as_json(format_, as_json):
        print(json.dumps({"target": target, "findings": [f.as_dict() for f in findings]}))
    else:
        for f in findings:
            print(f"row {f.row}  {f.column}  {f.detector}  {f.masked}")
        print(f"{len(findings)} finding(s) in {target}")
    return 1 if findings else 0


@_command(statistics_app, "run", "build, validate and publish, outside Airflow")
def _cmd_statistics_run(
    as_of: Annotated[dt.date, typer.Option("--as-of", parser=_date)],
    run_id: Annotated[str | None, typer.Option("--run-id")] = None,
) -> int:
    from ccg_pipeline import publication

    settings = _warehouse()
    run_id = run_id or f"cli__{as_of.isoformat()}"
    print(json.dumps({"built": publication.build_statistics(settings, as_of, run_id)}))
    print(json.dumps({"validated": publication.validate_statistics(settings, run_id)}))
    print(json.dumps(publication.publish_statistics(settings, run_id)))
    return 0


@_command(statistics_app, "dictionary", "write the analysts' data dictionary")
def _cmd_statistics_dictionary(
    out: Annotated[Path, typer.Option("--out")] = Path("docs/data-dictionary.md"),
    check: Annotated[bool, typer.Option("--check", help="exit 1 if the file is stale")] = False,
) -> int:
    from ccg_pipeline.statistics import dictionary

    text = dictionary.render()
    if not check:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
        return 0
    if (out.read_text(encoding="utf-8") if out.exists() else "") != text:
        print(f"{out} is out of date: run `ccg statistics dictionary`", file=sys.stderr)
        return 1
    print(f"{out} is up to date")
    return 0


@_command(statistics_app, "example", "run an example analyst query, print it")
def _cmd_statistics_example(
    table: Annotated[
        str | None, typer.Option("--table", help="the table whose example to run")
    ] = None,
) -> int:
    from ccg_pipeline import statistics

    print(statistics.render_example(_warehouse(), table))
    return 0


@_command(statistics_app, "role-sql", "print the SQL that sets up the ccg_analyst role")
def _cmd_statistics_role_sql() -> int:
    from ccg_pipeline.warehouse.roles import analyst_role_sql

    print(analyst_role_sql())
    return 0


@_command(request_app, "submit", "take in a request (awaits verification)")
def _cmd_request_submit(
    type_: Annotated[str, typer.Option("--type", help="access, rectify, erase, restrict, ...")],
    email: Annotated[str, typer.Option("--email")],
    payload: Annotated[
        Path | None, typer.Option("--payload", help="JSON file: corrections, export_name, scope")
    ] = None,
    received_at: Annotated[
        dt.datetime | None,
        typer.Option(
            "--received-at",
            parser=_past_timestamp,
            help="when it arrived (default: now; not later)",
        ),
    ] = None,
) -> int:
    from ccg_pipeline.requests import intake
    from ccg_pipeline.warehouse.migrate import migrated

    settings = _warehouse()
    submission = intake.parse_submission(
        type_,
        email,
        intake.read_payload_file(payload) if payload else {},
        received_at=received_at or _now(),
        source="cli",
    )
    with migrated(settings.warehouse_url) as engine:
        request_id = intake.submit(engine, settings.pseudonym_key, submission)
    print(f"request {request_id} received ({type_}); awaiting identity verification")
    return 0


@_command(request_app, "verify", "identity verified: start the clock")
def _cmd_request_verify(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    at: Annotated[
        dt.datetime | None,
        typer.Option("--at", parser=_timestamp, help="when it was verified (default: now)"),
    ] = None,
) -> int:
    from ccg_pipeline import requests
    from ccg_pipeline.warehouse.migrate import migrated

    with migrated(_warehouse().warehouse_url) as engine:
        due = requests.verify(engine, request_id, at or _now())
    print(f"request {request_id} verified; due on {due.isoformat()}")
    return 0


@_command(request_app, "extend", "extend by 1 or 2 months, within the first")
def _cmd_request_extend(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    months: Annotated[Literal[1, 2], typer.Option("--months")],
    reason: Annotated[str, typer.Option("--reason")],
) -> int:
    from ccg_pipeline import requests
    from ccg_pipeline.warehouse.migrate import migrated

    with migrated(_warehouse().warehouse_url) as engine:
        due = requests.extend(engine, request_id, months, reason, _now().date())
    print(f"request {request_id} extended; due on {due.isoformat()}")
    return 0


@_command(request_app, "list", "the queue: masked identity, status, days left")
def _cmd_request_list(
    all_: Annotated[bool, typer.Option("--all", help="include closed requests")] = False,
    format_: FormatOption = "text",
    as_json: JsonFlag = False,
) -> int:
    from ccg_pipeline import requests
    from ccg_pipeline.warehouse.migrate import migrated

    with migrated(_warehouse().warehouse_url) as engine:
        entries = requests.queue(engine, _now().date(), include_closed=all_)
    if _as_json(format_, as_json):
        _print_json(entries)
        return 0
    console = _console()
    table = _table(
        console, "request", "type", "subject", "status", "received", "due", "days left",
        right=("days left",),
    )  # fmt: skip
    for e in entries:
        due = e.due_on.isoformat() if e.due_on else "clock stopped"
        left = "" if e.days_left is None else str(e.days_left)
        table.add_row(
            e.request_id, e.request_type, e.email_masked, e.status, str(e.received_on), due, left
        )
    _print_table(console, table)
    console.print(f"{len(entries)} request(s)")
    return 0


@_command(request_app, "process", "drop folder and verified requests, outside Airflow")
def _cmd_request_process() -> int:
    from ccg_pipeline import requests

    settings = _warehouse()
    now = _now()
    print(json.dumps({"intake": requests.run_intake(settings, now)}))
    print(json.dumps(requests.run_processing(settings, now)))
    return 0


@_command(expectations_app, "write", "regenerate the suites from the table definitions")
def _cmd_expectations(
    check: Annotated[bool, typer.Option("--check", help="exit 1 if a suite is stale")] = False,
) -> int:
    """Write the GX suites from the table definitions, or (--check) exit 1 when they drift."""
    from ccg_pipeline.validation import suites

    if check:
        stale = suites.stale()
        if stale:
            print(f"suites out of date: {stale}: run `ccg expectations write`", file=sys.stderr)
            return 1
        print(f"{len(suites.expected_suites())} suites in {suites.SUITE_DIR.name}/ are up to date")
        return 0
    for path in suites.write():
        print(f"wrote {path.parent.name}/{path.name}")
    return 0


@_command(app, "ropa", "record of processing activities (GDPR art. 30) from the policy")
def _cmd_ropa(
    as_of: Annotated[
        dt.date | None,
        typer.Option(
            "--as-of",
            parser=_date,
            help="the day transfer safeguards are judged on (default: today)",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write ropa.md and ropa.csv here, not to stdout")
    ] = None,
) -> int:
    """The record of processing activities (GDPR art. 30), from the policy and the processings
    the code declares: no database."""
    from ccg_pipeline import ropa
    from ccg_pipeline.evidence.basis import declared_processings
    from ccg_pipeline.policy import load_data_map, load_notice

    as_of = as_of or dt.datetime.now(dt.UTC).date()  # an operator's record is as of today
    record = ropa.build_ropa(load_notice(), load_data_map(), as_of, declared_processings())
    if out is None:
        print(ropa.render_markdown(record), end="")
        return 0
    for path in ropa.write_ropa(record, out):
        print(f"wrote {path}")
    return 0


@_command(app, "breach-impact", "subjects, categories and countries a leak affects, counts only")
def _cmd_breach_impact(
    source: Annotated[
        str, typer.Option("--source", help="a warehouse table (zone.table) or a leaked file")
    ],
    since: Annotated[
        dt.date | None,
        typer.Option("--since", parser=_date, help="only rows written or dated on or after this"),
    ] = None,
    format_: FormatOption = "text",
    as_json: JsonFlag = False,
) -> int:
    """Who and what a leaked table or file affects (N-SEC): counts only. Exit 2 on bad input."""
    from ccg_pipeline.breach import assess, looks_like_file

    # A leaked file is assessed without a warehouse.
    engine = _engine(_settings() if looks_like_file(source) else _warehouse())
    try:
        report = assess(source, engine, since)
    finally:
        engine.dispose()
    print(report.to_json() if _as_json(format_, as_json) else report.render())
    return 0


@_command(app, "evidence", "check every notice clause against the data, as of a date")
def _cmd_evidence(
    as_of: Annotated[dt.date, typer.Option("--as-of", parser=_date)],
    format_: Annotated[Literal["md", "json", "html"], typer.Option("--format")] = "md",
    # --output: the flag's earlier name, still accepted (every other command says --out).
    out: Annotated[
        Path | None,
        typer.Option("--out", "--output", help="write the report here, not to stdout"),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="run the special-category sweep first (as the DAG does), then store the report and the results in ops",
        ),
    ] = False,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="run id to record under (default manual__<time>)")
    ] = None,
    fail_on_findings: Annotated[
        bool, typer.Option("--fail-on-findings", help="exit 1 when any clause fails")
    ] = False,
) -> int:
    """The clause-by-clause compliance report. Read-only unless --record (which also runs the
    special-category sweep first, as the DAG does)."""
    from ccg_pipeline import evidence
    from ccg_pipeline.evidence.render import RENDERERS
    from ccg_pipeline.warehouse.migrate import migrated

    settings = _warehouse()
    run_id = run_id or f"manual__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    if record:  # as the DAG does: the special-category sweep, then the read-only checks
        from ccg_pipeline.retention.special import run_special_category_sweep

        run_special_category_sweep(settings, as_of, run_id)
    with migrated(settings.warehouse_url) as engine:
        report = evidence.collect(engine, settings, as_of, run_id)
        if record:
            files = evidence.store(settings, report)
            evidence.record(engine, report, files["html"])
            print(f"recorded run {run_id}; report in {files['html']}", file=sys.stderr)
    text = RENDERERS[format_](report)
    if out:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        print(text, end="")
    return 1 if fail_on_findings and report.failed else 0


@_command(app, "marketing-list", "write who may receive marketing as of a date (N-MKT)")
def _cmd_marketing_list(
    as_of: Annotated[
        dt.date, typer.Option("--as-of", parser=_past_date, help="the day (today at the latest)")
    ],
) -> int:
    from ccg_pipeline.marketing import write_marketing_list

    written = write_marketing_list(_warehouse(), as_of)
    print(
        f"marketing list as of {written['as_of']}: {written['recipients']} recipient(s) "
        f"({written['consent']} by consent, {written['purchase']} after a purchase) in "
        f"{written['file']}"
    )
    return 0


@_command(policy_app, "check", "validate the notice and the data map")
def _cmd_policy_check(
    notice_file: Annotated[Path | None, typer.Option("--notice")] = None,
    data_map_file: Annotated[Path | None, typer.Option("--data-map")] = None,
) -> int:
    from ccg_pipeline.evidence.basis import declaration_problems, declared_processings
    from ccg_pipeline.policy import load_data_map, load_notice

    notice = load_notice(notice_file)
    data_map = load_data_map(data_map_file)
    columns = sum(len(s.columns) for s in data_map.sources.values())
    print(
        f"notice ok: {len(notice.categories)} categories, {len(notice.processing_activities)} "
        f"processing activities, {len(notice.legitimate_interests)} legitimate interests, "
        f"{len(notice.retention_rules)} retention rules, {len(notice.recipients)} recipients, "
        f"{len(notice.transfers)} transfers"
    )
    print(f"data map ok: {len(data_map.sources)} sources, {columns} columns tagged")
    console = _console()
    table = _table(console, "retention rule", "period", "decided by")
    for rule in notice.retention_rules:
        period = str(rule.period.model_dump(exclude_defaults=True))
        table.add_row(rule.id, period, rule.decided_by.value)
    _print_table(console, table)
    # N-BASIS: the code's processings against this notice's purposes.
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


# --- the entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 for findings (scan, evidence --fail-on-findings) and internal
    errors, 2 for bad input (arguments, dates, files, policy, configuration)."""
    run = _Run()
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name="ccg",
            standalone_mode=False,
            obj=run,
        )
        return int(result or 0)
    except typer.TyperException as exc:  # a usage error: exit 2, as click shows it
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"Error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # typer ends a command whose reader went away this way
        return exc.code if isinstance(exc.code, int) else 1
    except BrokenPipeError:  # the reader went away (`ccg ... | head`): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed pipe for exit
        return 1
    except (ValueError, OSError) as exc:  # bad input: one clear line naming it
        if run.verbose:
            raise
        print(f"ccg {run.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a fault of ours: short, no SQL or values; -v for the traceback
        if run.verbose:
            raise
        print(
            f"ccg {run.command}: internal error ({type(exc).__name__}); run again with -v "
            "for the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

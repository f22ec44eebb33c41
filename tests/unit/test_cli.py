"""The `ccg` command's contract with an operator: exit codes, refused dates, no warehouse made by
accident, a version, quiet when its reader goes away, the project home from ccg.toml, --json, and
progress reported by the long commands."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest
import typer

from ccg_pipeline import cli
from ccg_pipeline.cli import main

pytestmark = pytest.mark.unit

TOMORROW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project home with no warehouse in it, run from a folder outside the checkout (whose
    ccg.toml names its own var/) with no user configuration."""
    home = tmp_path / "home"
    monkeypatch.setenv("CCG_HOME", str(home))
    monkeypatch.delenv("CCG_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("CCG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout-like folder, no CCG_* variables and an empty user configuration folder."""
    for name in [n for n in os.environ if n.startswith("CCG_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "project"
    (root / "a" / "b").mkdir(parents=True)
    return root


def _config(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "config", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ccg ")


@pytest.mark.parametrize(
    "argv",
    [
        ["marketing-list", "--as-of", TOMORROW],
        ["retention", "run", "--as-of", TOMORROW],
        ["request", "submit", "--type", "access", "--email", "a@b.example", "--received-at",
         f"{TOMORROW}T09:00:00"],
    ],
)  # fmt: skip
def test_a_day_that_has_not_begun_is_refused(
    argv: list[str], elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{TOMORROW}" in err and "is in the future" in err
    assert not elsewhere.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["summary"],
        ["evidence", "--as-of", "2026-11-23"],
        ["retention", "plan", "--as-of", TOMORROW],  # a plan may look ahead, but needs data
        ["breach-impact", "--source", "personal.portal_users"],
    ],
)
def test_no_warehouse_is_created_by_accident(
    argv: list[str], elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"no warehouse in {elsewhere / 'warehouse'}" in err and "ccg db upgrade" in err
    assert not (elsewhere / "warehouse").exists()


def test_an_internal_error_exits_1_without_its_message(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args) -> None:
        raise RuntimeError("SELECT email FROM personal.portal_users WHERE email = 'x@y'")

    monkeypatch.setattr("ccg_pipeline.ropa.build_ropa", broken)
    assert main(["ropa"]) == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError)" in err and "-v" in err
    assert "SELECT" not in err and "x@y" not in err


def test_a_reader_that_goes_away_ends_the_command_quietly(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def into_a_closed_pipe(*_args) -> str:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("ccg_pipeline.ropa.render_markdown", into_a_closed_pipe)
    assert main(["ropa"]) == 1
    assert capsys.readouterr().err == ""


def test_list_and_summary_commands_print_json_for_scripts(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    email = "ingrid.falkenberg@nordhav.example"
    assert main(["db", "upgrade"]) == 0
    assert main(["request", "submit", "--type", "access", "--email", email]) == 0
    assert main(["hold", "add", "--email", email, "--reason", "tax inspection"]) == 0
    capsys.readouterr()

    assert main(["request", "list", "--format", "json"]) == 0
    out = capsys.readouterr().out
    (entry,) = json.loads(out)
    assert entry["request_type"] == "access" and entry["status"] == "awaiting_verification"
    assert dt.date.fromisoformat(entry["received_on"]) and entry["due_on"] is None
    assert main(["hold", "list", "--format", "json"]) == 0
    (hold,) = json.loads(capsys.readouterr().out)
    assert hold["reason"] == "tax inspection" and hold["released_at"] is None
    assert main(["summary", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_per_table"]["ops.subject_requests"] == 1
    assert summary["rows_per_table"]["ops.legal_holds"] == 1
    assert set(summary) >= {"quarantine_by_reason", "retention", "validation", "evidence"}
    assert email not in out + json.dumps(summary) + json.dumps(hold)


def test_every_output_file_flag_is_out() -> None:
    """One name for "write it here" across the commands (`evidence --output` still works)."""
    flags = set()
    root = typer.main.get_command(cli.app)

    def walk(command) -> None:
        for param in command.params:
            flags.update(param.opts)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(root)
    assert "--out" in flags and {f for f in flags if f.startswith("--outp")} == {"--output"}
    evidence = root.commands["evidence"]  # type: ignore[attr-defined]
    ctx = evidence.make_context("evidence", ["--as-of", "2026-11-23", "--output", "x.md"])
    assert ctx.params["out"] == Path("x.md")


def test_json_is_short_for_format_json(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["request", "submit", "--type", "erase", "--email", "o.lind@fjord.example"]) == 0
    capsys.readouterr()
    for argv in (["summary"], ["request", "list"], ["hold", "list", "--all"]):
        assert main([*argv, "--format", "json"]) == 0
        long_form = json.loads(capsys.readouterr().out)
        assert main([*argv, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == long_form, argv
    assert main(["request", "list"]) == 0  # text: a table, one row, the address masked
    text = capsys.readouterr().out
    assert "erase" in text and "1 request(s)" in text and "o.lind@fjord.example" not in text


def test_a_bad_choice_is_a_usage_error(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "--format", "xml"]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["ingest", "--date", "2026-11-23", "--source", "fax"]) == 2
    assert "'fax' is not one of portal" in capsys.readouterr().err
    assert not elsewhere.exists()


# --- the project home from configuration ---------------------------------------------------------


def test_the_nearest_ccg_toml_above_the_current_folder_sets_the_home(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "ccg.toml").write_text('home = "data"\n', encoding="utf-8")
    monkeypatch.chdir(project / "a" / "b")
    shown = _config([], capsys)
    # Relative to the file's folder, not to the folder `ccg` runs in.
    assert shown["home"] == str(project.resolve() / "data")
    assert shown["config_file"] == str(project.resolve() / "ccg.toml")
    assert shown["warehouse_url"] == f"sqlite:///{project.resolve() / 'data/warehouse/main.db'}"

    (project / "a" / "ccg.toml").write_text('home = "nearer"\n', encoding="utf-8")
    assert _config([], capsys)["home"] == str(project.resolve() / "a" / "nearer")


def test_the_environment_beats_the_file(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "ccg.toml").write_text('home = "data"\nsource_dir = "incoming"\n', encoding="utf-8")
    monkeypatch.chdir(project)
    monkeypatch.setenv("CCG_HOME", str(project / "env-home"))
    shown = _config([], capsys)
    assert shown["home"] == str(project / "env-home") and shown["home_from"] == "CCG_HOME"
    assert shown["source_dir"] == str(project.resolve() / "incoming")  # no variable: the file


def test_the_user_configuration_file_is_the_last_resort(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project / "a")
    assert _config([], capsys)["config_file"] is None
    user_file = project.parent / "xdg" / "ccg" / "ccg.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text('home = "/srv/ccg"\nwarehouse_url = "sqlite:///wh.db"\n', encoding="utf-8")
    shown = _config([], capsys)
    assert shown["config_file"] == str(user_file) and shown["home"] == "/srv/ccg"
    assert shown["warehouse_url"] == f"sqlite:///{user_file.parent / 'wh.db'}"


def test_ccg_config_names_a_file_that_must_exist(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = project / "elsewhere.toml"
    monkeypatch.setenv("CCG_CONFIG", str(missing))
    assert main(["summary"]) == 2
    assert str(missing) in capsys.readouterr().err
    (project / "ccg.toml").write_text('home = "data"\n', encoding="utf-8")  # not a fallback
    monkeypatch.chdir(project)
    assert main(["config"]) == 2
    missing.write_text('home = "named"\n', encoding="utf-8")
    assert _config([], capsys)["home"] == str(project.resolve() / "named")


def test_an_unknown_key_is_refused_by_name_and_file(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "ccg.toml").write_text('home = "var"\nwarehouse = "pg"\n', encoding="utf-8")
    monkeypatch.chdir(project / "a")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert "'warehouse'" in err and str(project.resolve() / "ccg.toml") in err
    (project / "ccg.toml").write_text("home = 7\n", encoding="utf-8")
    assert main(["config"]) == 2
    assert "home must be a string" in capsys.readouterr().err


def test_no_warehouse_names_the_configured_home_and_how_to_set_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "ccg.toml").write_text('home = "data"\n', encoding="utf-8")
    monkeypatch.chdir(project / "a" / "b")
    assert main(["summary"]) == 2
    err = capsys.readouterr().err
    assert f"no warehouse in {project.resolve() / 'data' / 'warehouse'}" in err
    assert f"from {project.resolve() / 'ccg.toml'}" in err
    assert "CCG_HOME" in err and "ccg.toml" in err and "ccg db upgrade" in err
    assert not (project / "data").exists() and not (project / "a" / "b" / "var").exists()


def test_ccg_config_masks_a_password(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("CCG_WAREHOUSE_URL", "postgresql://ccg:s3cret-pw@db.internal/ccg")
    assert _config([], capsys)["warehouse_url"] == "postgresql://ccg:***@db.internal/ccg"
    assert main(["config"]) == 0
    text = capsys.readouterr().out
    assert "s3cret-pw" not in text and "db.internal" in text


def test_the_checkout_ships_a_ccg_toml_for_its_var_folder() -> None:
    from ccg_pipeline.config import Settings

    root = Path(__file__).resolve().parents[2]
    found = Settings.from_config(env={"HOME": "/nonexistent"}, cwd=root / "ccg_pipeline")
    assert found.file == root / "ccg.toml" and found.settings.home == root / "var"


# --- progress on long work -----------------------------------------------------------------------


def test_the_scan_reports_rows_done_without_column_names(monkeypatch) -> None:
    import ccg_pipeline.scan as scan

    monkeypatch.setattr(scan, "SLICE_ROWS", 2)
    calls: list[tuple[int, int, str]] = []
    table = pa.table(
        {
            "anna@example.com": ["x", "y", "z"],
            "b": ["a", None, "call +44 20 7946 0958"],
            "c": [None, None, None],
        }
    )
    findings = scan.scan_arrow(table, progress=lambda *call: calls.append(call))
    assert [(f.row, f.column) for f in findings] == [(2, "b")]
    assert calls == [(0, 3, ""), (2, 3, ""), (3, 3, "")]


def test_the_retention_sweep_reports_each_table(elsewhere: Path) -> None:
    from ccg_pipeline.config import Settings
    from ccg_pipeline.retention import run_retention
    from ccg_pipeline.retention.rules import targets

    assert main(["db", "upgrade"]) == 0
    calls: list[tuple[int, int, str]] = []
    summary = run_retention(
        Settings.from_env(), dt.date(2026, 11, 23), "t", progress=lambda *c: calls.append(c)
    )
    names = [t.name for t in targets()]
    assert len(summary["targets"]) == len(names)
    assert calls == [(i, len(names), name) for i, name in enumerate(names)] + [
        (len(names), len(names), "")
    ]


def test_ingest_reports_each_lane(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, str]] = []
    loaded: list[str] = []

    @contextmanager
    def recorded(what: str) -> Iterator[cli.ProgressHook]:
        assert what == "ingest"
        yield lambda *call: calls.append(call)

    def ingest_source(settings, source: str, **_kwargs) -> dict:
        loaded.append(source)
        return {"source": source, "rows": 0}

    monkeypatch.setattr(cli, "_progress", recorded)
    monkeypatch.setattr("ccg_pipeline.ingest.ingest_source", ingest_source)
    argv = ["ingest", "--date", "2026-11-23", "--source", "crm", "--source", "portal"]
    assert main(argv) == 0
    assert loaded == ["crm", "portal"] and calls == [(0, 2, "crm"), (1, 2, "portal")]


def test_a_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    with cli._progress("scan") as progress:  # stderr captured by pytest: not a terminal
        assert progress is None
    screen = io.StringIO()
    monkeypatch.setattr(
        cli, "_console", lambda stderr=False: Console(file=screen, force_terminal=True, width=80)
    )
    with cli._progress("retention") as progress:
        assert progress is not None
        progress(2, 18, "personal.payments")
    assert "retention personal.payments" in screen.getvalue() and "2/18" in screen.getvalue()

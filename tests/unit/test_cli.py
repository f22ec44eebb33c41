"""The `ccg` command's contract with an operator: exit codes, refused dates, no warehouse made by
accident, a version, quiet when its reader goes away."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ccg_pipeline import cli
from ccg_pipeline.cli import main

pytestmark = pytest.mark.unit

TOMORROW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project home with no warehouse in it."""
    home = tmp_path / "home"
    monkeypatch.setenv("CCG_HOME", str(home))
    monkeypatch.delenv("CCG_WAREHOUSE_URL", raising=False)
    return home


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
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
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
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
    def broken(_args) -> int:
        raise RuntimeError("SELECT email FROM personal.portal_users WHERE email = 'x@y'")

    monkeypatch.setattr(cli, "_cmd_ropa", broken)
    assert main(["ropa"]) == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError)" in err and "-v" in err
    assert "SELECT" not in err and "x@y" not in err


def test_a_reader_that_goes_away_ends_the_command_quietly(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def into_a_closed_pipe(_args) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_cmd_ropa", into_a_closed_pipe)
    assert main(["ropa"]) == 1
    assert capsys.readouterr().err == ""


def test_list_and_summary_commands_print_json_for_scripts(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

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
    parser = cli.build_parser()

    def walk(p) -> None:
        for action in p._actions:
            flags.update(action.option_strings)
            for sub in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict):
                    walk(action.choices[sub])

    walk(parser)
    assert "--out" in flags and {f for f in flags if f.startswith("--outp")} == {"--output"}
    args = parser.parse_args(["evidence", "--as-of", "2026-11-23", "--output", "x.md"])
    assert args.out == Path("x.md")

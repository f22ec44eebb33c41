"""The validation gate's GX suites on small frames: a clean build passes every expectation, and
each kind of leak or disclosure fails the expectation meant for it, reported as a count only."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from cdp_browser import chromium_binary, headless_chromium
from identifier_samples import CLEAN, OBFUSCATED, PLANTED

from ccg_pipeline.validation import gate, suites
from ccg_pipeline.validation.gate import GateReport, data_docs_index, validate_frames
from ccg_pipeline.validation.known_identifiers import KnownIdentifiers
from ccg_pipeline.validation.offline_docs import outside_loads
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.expectations

NAME = "Ingrid Falkenberg"
EMAIL = "ingrid.falkenberg@nordhav.example"
COMPANY = "Nordhav Logistik AB"
USERNAME = "ifalkenberg77"
PHONE = "+46 70 555 01 23"
INDEX = KnownIdentifiers.from_values([NAME, EMAIL, COMPANY, USERNAME], [PHONE])


def _frame(rows: list[dict], table: sa.Table) -> pd.DataFrame:
    columns = [c.name for c in table.columns]
    return pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns, dtype=object)


def clean_frames() -> dict[str, pd.DataFrame]:
    """One small, valid build of every published table (Python values, as a driver returns)."""
    rows = {
        "customers_by_quarter": [
            {
                "quarter": "2025-Q1",
                "country": country,
                "sector": "Retail",
                "new_customers": 12,
                "active_customers": 140,
                "ceased_customers": 0,
            }
            for country in ("GB", "SE")
        ],
        "revenue_by_service_month": [
            {"month": "2025-01", "service": service, "invoices": 25, "revenue_pence": 1_234_500}
            for service in ("training", "tariff-classification")
        ],
        "web_traffic_daily": [
            {
                "day": dt.date(2025, 1, 2),
                "site_section": "portal",
                "browser_family": browser,
                "region": "Nordics",
                "requests": 40,
            }
            for browser in ("Chrome", "Other")
        ],
        "marketing_consent_monthly": [
            {
                "month": "2025-01",
                "contacts": 200,
                "consents": 20,
                "opt_outs": 0,
                "consent_rate": 0.1,
                "opt_out_rate": 0.0,
            }
        ],
        "subject_requests_monthly": [],
        "customer_profiles": [
            {
                "profile_id": n,
                "region": "Nordics",
                "sector": "*",
                "size_band": "10-49",
                "revenue_band": "<£1m",
                "customer_since": "2024-Q3",
                "main_service": "training",
            }
            for n in range(1, 11)
        ],
    }
    return {p.name: _frame(rows[p.name], p) for _b, p in s.PUBLISHED}


def _validate(frames: dict[str, pd.DataFrame], home: Path) -> GateReport:
    return validate_frames(frames, INDEX, home, "test-run")


def _failed(report: GateReport) -> set[tuple[str, str | None, str]]:
    return {(o.table, o.column, o.expectation) for o in report.failed}


@pytest.fixture(scope="module")
def gx_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gx-home")


def test_committed_suites_are_what_the_generator_writes() -> None:
    assert suites.stale() == [], "run `ccg expectations write` and commit expectations/"


def test_each_suite_allows_exactly_the_published_columns() -> None:
    assert len(s.PUBLISHED) == len(list(suites.SUITE_DIR.glob("*.json"))) > 0
    for _build, published in s.PUBLISHED:
        suite = suites.load(published.name).content
        (allowlist,) = [
            e["kwargs"] for e in suite["expectations"] if e["type"].endswith("match_set")
        ]
        assert allowlist["exact_match"] is True
        assert allowlist["column_set"] == [c.name for c in published.columns]
        text = set(suites.text_columns(published))
        scanned = {
            e["kwargs"]["column"]
            for e in suite["expectations"]
            if e["type"] == "expect_column_values_to_not_contain_identifiers"
        }
        assert scanned == text, published.name


def test_a_clean_build_passes_and_the_data_docs_are_built(gx_home: Path) -> None:
    report = _validate(clean_frames(), gx_home)
    assert report.failed == []
    assert len(report.suite_versions) == len(s.PUBLISHED)
    assert len(report.outcomes) > 100
    assert data_docs_index(gx_home).exists()


@pytest.mark.parametrize("detector", sorted(PLANTED))
def test_a_planted_identifier_fails_the_detector_expectation(detector: str, gx_home: Path) -> None:
    frames = clean_frames()
    values = PLANTED[detector] + OBFUSCATED.get(detector, [])
    profiles = pd.concat([frames["customer_profiles"]] * len(values), ignore_index=True)
    profiles["profile_id"] = list(range(1, len(profiles) + 1))
    for row, value in enumerate(values):
        profiles.loc[row, "main_service"] = value
    frames["customer_profiles"] = profiles
    report = _validate(frames, gx_home)
    (outcome,) = [
        o
        for o in report.failed
        if o.expectation == "expect_column_values_to_not_contain_identifiers"
    ]
    assert (outcome.table, outcome.column, outcome.unexpected) == (
        "customer_profiles",
        "main_service",
        len(values),
    )


def test_clean_look_alikes_pass_the_detectors(gx_home: Path) -> None:
    frames = clean_frames()
    revenue = frames["revenue_by_service_month"].iloc[[0] * len(CLEAN)].reset_index(drop=True)
    revenue["service"] = [f"{value} {n}" for n, value in enumerate(CLEAN)]
    frames["revenue_by_service_month"] = revenue
    report = _validate(frames, gx_home)
    assert not {o for o in _failed(report) if o[2].endswith("not_contain_identifiers")}


@pytest.mark.parametrize(
    "planted",
    [
        NAME,
        "INGRID  FALKENBERG",
        "Report for ingrid-falkenberg, Q3",
        "INGRID.FALKENBERG@NORDHAV.EXAMPLE",
        "nordhav logistik ab",
        "Nordhav Logistik AB (Sweden)",
        "user ifalkenberg77",
        "070-555 01 23",
    ],
)
def test_a_known_identifier_fails_the_known_identifier_expectation(
    planted: str, gx_home: Path
) -> None:
    frames = clean_frames()
    frames["web_traffic_daily"].loc[0, "site_section"] = planted
    report = _validate(frames, gx_home)
    assert (
        "web_traffic_daily",
        "site_section",
        "expect_column_values_to_not_contain_known_identifiers",
    ) in _failed(report)


def test_words_from_a_known_identifier_alone_do_not_fail(gx_home: Path) -> None:
    frames = clean_frames()
    frames["revenue_by_service_month"]["service"] = ["logistik", "ingrid training"]
    report = _validate(frames, gx_home)
    assert not {o for o in _failed(report) if "known" in o[2]}


def test_disclosure_rules_fail_with_counts(gx_home: Path) -> None:
    frames = clean_frames()
    quarters = frames["customers_by_quarter"]
    quarters.loc[0, "new_customers"] = 2  # a count perturbation never publishes
    quarters.loc[1, "ceased_customers"] = None  # suppressed in part
    frames["customer_profiles"] = frames["customer_profiles"].iloc[:9]  # a class below k
    report = _validate(frames, gx_home)
    by_kind = {(o.table, o.column, o.expectation): o for o in report.failed}
    small = by_kind[
        ("customers_by_quarter", "new_customers", "expect_column_values_to_not_be_in_set")
    ]
    assert small.unexpected == 1
    partly = by_kind[("customers_by_quarter", None, "expect_table_rows_to_be_suppressed_whole")]
    assert partly.observed == 1
    k = by_kind[("customer_profiles", None, "expect_table_groups_to_have_at_least_k_rows")]
    assert k.observed == 9


def test_a_lone_suppressed_cell_in_a_margin_fails(gx_home: Path) -> None:
    frames = clean_frames()
    traffic = frames["web_traffic_daily"]
    traffic.loc[0, "requests"] = None  # one of two cells of the day hidden: recoverable
    report = _validate(frames, gx_home)
    assert (
        "web_traffic_daily",
        None,
        "expect_table_margins_to_not_hide_a_single_cell",
    ) in _failed(report)


def test_structure_types_and_ranges(gx_home: Path) -> None:
    frames = clean_frames()
    frames["revenue_by_service_month"]["email"] = ["x", "y"]  # a column outside the allowlist
    marketing = frames["marketing_consent_monthly"]
    marketing.loc[0, "consent_rate"] = 1.5
    marketing.loc[0, "month"] = "2025-13"
    quarters = frames["customers_by_quarter"]
    quarters.loc[0, "active_customers"] = "140"  # text in a count column
    frames["web_traffic_daily"].loc[0, "browser_family"] = "Netscape"
    failed = _failed(_validate(frames, gx_home))
    assert {
        ("revenue_by_service_month", None, "expect_table_columns_to_match_set"),
        ("marketing_consent_monthly", "consent_rate", "expect_column_values_to_be_between"),
        ("marketing_consent_monthly", "month", "expect_column_values_to_match_regex"),
        ("customers_by_quarter", "active_customers", "expect_column_values_to_be_in_type_list"),
        ("web_traffic_daily", "browser_family", "expect_column_values_to_be_in_set"),
    } <= failed


def test_failing_values_reach_neither_results_nor_data_docs(tmp_path: Path) -> None:
    frames = clean_frames()
    frames["web_traffic_daily"].loc[0, "site_section"] = EMAIL
    frames["customer_profiles"].loc[0, "main_service"] = "card 4111 1111 1111 1111"
    report = _validate(frames, tmp_path)
    assert report.failed
    summary = json.dumps(report.summary()) + " ".join(o.describe() for o in report.outcomes)
    stored = [p for p in (tmp_path / "gx").rglob("*") if p.suffix in {".json", ".html"}]
    assert any(p.suffix == ".json" and "validations" in p.parts for p in stored)
    for text in [summary, *(p.read_text(errors="replace") for p in stored)]:
        for secret in (EMAIL, "nordhav", "4111 1111", "4111111111111111"):
            assert secret not in text


def test_a_suite_for_other_thresholds_is_refused(tmp_path: Path, monkeypatch) -> None:
    from ccg_pipeline.validation import gate

    stale_dir = tmp_path / "suites"
    suites.write(stale_dir)
    path = stale_dir / "customer_profiles.json"
    content = json.loads(path.read_text())
    content["meta"]["k"] = 5
    path.write_text(json.dumps(content))
    committed = suites.load
    monkeypatch.setattr(gate.suites, "load", lambda table: committed(table, stale_dir))
    with pytest.raises(gate.SuiteOutOfDate, match=r"customer_profiles.*k=10"):
        _validate(clean_frames(), tmp_path)


# Rows of the index's run table on screen (a page of at most 10), and the runs it holds.
RUNS_LISTED = "document.querySelectorAll('#Validation-Results tbody tr[data-index]').length"
RUNS_HELD = (
    "(() => { try { return jQuery('#Validation-Results table').bootstrapTable('getData').length }"
    " catch (e) { return 0 } })()"
)


@contextlib.contextmanager
def _offline(page_file: Path):  # type: ignore[no-untyped-def]
    """Headless Chromium on a local page, with every request that would leave the machine
    blocked: what an operator without network sees."""
    with headless_chromium() as page:
        page.send("Network.enable")
        page.send("Network.setBlockedURLs", urls=["http://*", "https://*"])
        page.send("Page.navigate", url=page_file.as_uri())
        page.wait_for("document.readyState === 'complete'")
        yield page


def _listed_offline(index: Path) -> tuple[int, int, str]:
    """(rows the index shows, runs its table holds, its text), offline."""
    with _offline(index) as page:
        with contextlib.suppress(TimeoutError):  # the control lists none, ever
            page.wait_for(RUNS_LISTED, timeout=10)
        return (
            page.evaluate(RUNS_LISTED),
            page.evaluate(RUNS_HELD),
            page.evaluate("document.body.innerText"),
        )


@pytest.mark.skipif(
    chromium_binary() is None and not os.environ.get("CI"),
    reason="chromium not installed (make browser-deps); CI installs it and never skips",
)
def test_the_data_docs_list_the_runs_without_network(tmp_path: Path, monkeypatch) -> None:
    """GX loads its page scripts from CDNs and draws the index's run table with them; offline the
    index listed nothing. The gate points every page at the copies shipped with the project."""
    home = tmp_path / "offline"
    for run_id in ("gate-run-1", "gate-run-2"):
        assert validate_frames(clean_frames(), INDEX, home, run_id).failed == []
    site = data_docs_index(home).parent
    pages = list(site.rglob("*.html"))
    assert len(pages) > 2 * len(s.PUBLISHED)
    assert [u for p in [*pages, *site.rglob("*.css")] for u in outside_loads(p.read_text())] == []

    shown, held, text = _listed_offline(data_docs_index(home))
    assert held == 2 * len(s.PUBLISHED) and shown == min(10, held)
    assert "gate-run-2" in text

    validation = next(site.glob("validations/**/*.html"))
    with _offline(validation) as page:
        assert page.evaluate("typeof jQuery === 'function' && typeof jQuery.fn.bootstrapTable")
        assert page.wait_for("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
        assert "Expectation" in page.evaluate("document.body.innerText")

    # The control: the same build as GX writes it lists no run without network.
    monkeypatch.setattr(gate, "make_offline", lambda site, pages: {})
    raw = tmp_path / "as-gx-writes-it"
    validate_frames(clean_frames(), INDEX, raw, "gate-run-1")
    shown, held, _ = _listed_offline(data_docs_index(raw))
    assert (shown, held) == (0, 0)


def test_only_the_newest_gate_runs_are_kept_in_gx(tmp_path: Path, monkeypatch) -> None:
    """Years of daily runs: the Data Docs index reads every stored result when it is built, so
    the gate keeps the newest CCG_GX_RUNS_KEPT runs' results and pages and removes the rest."""
    home = tmp_path / "kept"
    monkeypatch.setenv("CCG_GX_RUNS_KEPT", "2")
    for run_id in ("gate-run-1", "gate-run-2", "gate-run-3"):
        assert validate_frames(clean_frames(), INDEX, home, run_id).failed == []
    results = gate.gx_root(home) / "uncommitted" / "validations"
    site = data_docs_index(home).parent

    def runs_in(paths: list[Path]) -> set[str]:
        return {part for p in paths for part in p.parts if part.startswith("gate-run-")}

    stored = runs_in(list(results.rglob("*.json")))
    pages = runs_in(list(site.glob("validations/**/*.html")))
    assert stored == pages == {"gate-run-2", "gate-run-3"}
    assert len(list(results.rglob("*.json"))) == 2 * len(s.PUBLISHED)
    index = data_docs_index(home).read_text()
    assert "gate-run-1" not in index and "gate-run-3" in index

    monkeypatch.setenv("CCG_GX_RUNS_KEPT", "0")
    with pytest.raises(ValueError, match="CCG_GX_RUNS_KEPT must be a whole number"):
        validate_frames(clean_frames(), INDEX, home, "gate-run-4")

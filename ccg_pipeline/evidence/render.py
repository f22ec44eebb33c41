"""The evidence report as Markdown, JSON and self-contained HTML (no scripts, no remote assets)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from ccg_pipeline.evidence.report import ClauseResult, EvidenceReport
from ccg_pipeline.warehouse.clause_status import NO_DATA, NO_DATA_FIGURE

COUNTS_ONLY = "Figures are counts, dates and ids only; no value from the personal data appears."
NO_DATA_MEANS = (
    "NO DATA: the check found nothing wrong only because its inputs are empty (the figure "
    "'no data' names them); it is neither a pass nor a failure."
)
_CSS_CLASS = {NO_DATA: "nodata"}  # a class name without the space


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "n/a" if value is None else str(value)


def _missing(result: ClauseResult) -> str:
    """What a no-data clause had nothing of, as counts."""
    inputs = result.figures.get(NO_DATA_FIGURE) or {}
    return "nothing to judge: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in inputs.items())


def _result_line(report: EvidenceReport) -> str:
    line = f"{len(report.passing)} of {len(report.clauses)} clauses pass"
    if report.failed:
        line += f"; failing: {', '.join(report.failed)}"
    if report.without_data:
        line += f"; no data: {', '.join(report.without_data)}"
    return line


def _headline(result: ClauseResult) -> str:
    if result.status == NO_DATA:
        return _missing(result)
    scalars = [(k, v) for k, v in result.figures.items() if isinstance(v, int | float)]
    return "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in scalars[:3])


def render_markdown(report: EvidenceReport) -> str:
    lines = [
        f"# Privacy notice compliance evidence: {report.controller}",
        "",
        f"- As of: **{report.as_of}**",
        f"- Run: `{report.run_id}` on {report.backend}, generated {report.generated_at:%Y-%m-%d %H:%M} UTC",
        f"- Result: **{_result_line(report)}**",
        f"- {COUNTS_ONLY}",
        f"- {NO_DATA_MEANS}",
        "",
        "| clause | obligation | result | figures |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.clause} | {r.title} | **{r.status.upper()}** | {_headline(r)} |"
        for r in report.clauses
    ]
    for r in report.clauses:
        lines += ["", f"## {r.clause}: {r.title} — {r.status.upper()}", ""]
        if r.status == NO_DATA:
            lines.append(f"- **No data:** {_missing(r)}")
        lines += [f"- **Finding:** {f}" for f in r.findings]
        if r.findings or r.status == NO_DATA:
            lines.append("")
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {_value(v)} |" for k, v in r.figures.items()]
        for label, sql in r.queries.items():
            lines += ["", f"Evidence query, {label}:", "", "```sql", sql.strip(), "```"]
    lines += ["", "## Clauses not answerable from the data", ""]
    lines += [f"- **{clause}**: {why}" for clause, why in report.not_checked.items()]
    return "\n".join(lines) + "\n"


def render_json(report: EvidenceReport) -> str:
    return json.dumps(report.as_dict(), indent=2, default=str) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left;vertical-align:top}.pass{color:#06612d;font-weight:700}.fail{color:#a30015;
font-weight:700}pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;font-size:.85rem}
details{margin:.3rem 0}.finding{background:#fff4e5;padding:.3rem .6rem;margin:.2rem 0}
.nodata{color:#374151;font-weight:700}.missing{background:#f3f4f6;padding:.3rem .6rem;margin:.2rem 0}
"""


def _css(status: str) -> str:
    return _CSS_CLASS.get(status, status)


def render_html(report: EvidenceReport) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td><a href="#{e(r.clause)}">{e(r.clause)}</a></td><td>{e(r.title)}</td>'
        f'<td class="{_css(r.status)}">{r.status.upper()}</td><td>{e(_headline(r))}</td></tr>'
        for r in report.clauses
    )
    sections = []
    for r in report.clauses:
        missing = f'<div class="missing">{e(_missing(r))}</div>' if r.status == NO_DATA else ""
        findings = missing + "".join(f'<div class="finding">{e(f)}</div>' for f in r.findings)
        figures = "".join(
            f"<tr><th>{e(k.replace('_', ' '))}</th><td>{e(_value(v))}</td></tr>"
            for k, v in r.figures.items()
        )
        queries = "".join(
            f"<details><summary>Evidence query: {e(label)}</summary><pre>{e(sql.strip())}</pre>"
            "</details>"
            for label, sql in r.queries.items()
        )
        sections.append(
            f'<section id="{e(r.clause)}"><h2>{e(r.clause)}: {e(r.title)} '
            f'<span class="{_css(r.status)}">{r.status.upper()}</span></h2>{findings}'
            f"<table>{figures}</table>{queries}</section>"
        )
    not_checked = "".join(
        f"<li><b>{e(c)}</b>: {e(why)}</li>" for c, why in report.not_checked.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Compliance evidence {e(str(report.as_of))}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Privacy notice compliance evidence: {e(report.controller)}</h1>"
        f"<p>As of <b>{e(str(report.as_of))}</b>; run <code>{e(report.run_id)}</code> on "
        f"{e(report.backend)}, generated {report.generated_at:%Y-%m-%d %H:%M} UTC.</p>"
        f'<p id="result"><b>{e(_result_line(report))}.</b> '
        f"{e(COUNTS_ONLY)}</p><p>{e(NO_DATA_MEANS)}</p>"
        "<table><tr><th>clause</th><th>obligation</th><th>result</th>"
        f"<th>figures</th></tr>{rows}</table>{''.join(sections)}"
        f"<h2>Clauses not answerable from the data</h2><ul>{not_checked}</ul></body></html>\n"
    )


RENDERERS: dict[str, Callable[[EvidenceReport], str]] = {
    "md": render_markdown,
    "json": render_json,
    "html": render_html,
}

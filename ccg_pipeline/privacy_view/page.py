"""The Privacy view as one self-contained HTML page (inline CSS, no scripts, no external assets),
so it renders inside the Airflow UI's iframe and in a locked-down browser alike."""

from __future__ import annotations

from html import escape

from ccg_pipeline.privacy_view import PrivacySnapshot, RequestClock
from ccg_pipeline.requests.clock import DUE_SOON_DAYS

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1f2937; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
p.meta { color: #6b7280; margin: 0 0 1rem; }
table { border-collapse: collapse; min-width: 40rem; }
th, td { border-bottom: 1px solid #e5e7eb; padding: .3rem .7rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #065f46; background: #d1fae5; } .bad { color: #991b1b; background: #fee2e2; }
.warn { color: #92400e; background: #fef3c7; } .idle { color: #374151; background: #f3f4f6; }
.badge { padding: .1rem .5rem; border-radius: .6rem; font-weight: 600; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #e5e7eb; border-radius: .5rem; padding: .6rem 1rem; min-width: 11rem; }
.card b { display: block; font-size: 1.3rem; }
"""


# "removed" counts each row once; "of which anonymised" is part of it, not more rows.
_RETENTION_COLUMNS = [
    "rule",
    "table",
    "due",
    "removed",
    "of which anonymised",
    "held",
    "left expired",
    "check",
]


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{escape(text)}</span>'


def _pass_badge(passed: bool | None) -> str:
    if passed is None:
        return _badge("no run yet", "idle")
    return _badge("pass", "ok") if passed else _badge("FAIL", "bad")


def _clause_badge(status: str) -> str:
    """A clause of the evidence: pass, FAIL, or no data (nothing to judge yet: not a pass)."""
    if status == "pass":
        return _badge("pass", "ok")
    if status == "no data":
        return _badge("no data", "idle")
    return _badge("FAIL", "bad")


def _evidence_card(snap: PrivacySnapshot) -> str:
    if not snap.evidence:
        return _pass_badge(None)
    if snap.evidence_with("fail"):
        return _badge("FAIL", "bad")
    return _badge("no data", "idle") if snap.evidence_with("no data") else _badge("pass", "ok")


def _countdown(request: RequestClock) -> str:
    """Days left on the one-month clock: overdue in red, within DUE_SOON_DAYS in amber."""
    if request.days_left is None:
        return _badge("clock stopped: awaiting verification", "idle")
    if request.days_left < 0:
        return _badge(f"{-request.days_left} days overdue", "bad")
    kind = "warn" if request.days_left <= DUE_SOON_DAYS else "ok"
    return _badge(f"{request.days_left} days left", kind)


def _table(headers: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(snap: PrivacySnapshot, evidence_href: str | None) -> str:
    # Anonymised rows are deleted rows too: removed counts each row once.
    due, removed = snap.retention_due, snap.retention_removed
    anonymised, held = snap.retention_anonymised, snap.retention_held
    passing, no_data = snap.evidence_with("pass"), snap.evidence_with("no data")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>CCG Privacy</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Privacy</h1>",
        f"<p class='meta'>The notice's promises as of {snap.today.isoformat()}: counts and ids "
        "only, never personal data.</p>",
        "<div class='cards'>",
        f"<div class='card'>Retention due<b>{due:,}</b>{removed:,} removed "
        f"({anonymised:,} anonymised first), {held:,} held</div>",
        f"<div class='card'>Open requests<b>{len(snap.requests)}</b>"
        f"{snap.overdue_requests} overdue</div>",
        f"<div class='card'>Validation gate<b>{_pass_badge(snap.gate_passed)}</b>"
        f"{len(snap.gate)} tables</div>",
        f"<div class='card'>Compliance evidence<b>{_evidence_card(snap)}</b>"
        f"{len(passing)} of {len(snap.evidence_clauses)} clauses pass"
        + (f", {len(no_data)} no data" if no_data else "")
        + "</div></div>",
    ]

    as_of = snap.retention_as_of.isoformat() if snap.retention_as_of else "never run"
    parts.append(f"<h2 id='retention'>Retention, newest sweep (as of {escape(as_of)})</h2>")
    parts.append(
        _table(
            _RETENTION_COLUMNS,
            [
                [
                    escape(r.rule_id),
                    escape(r.table_name),
                    f"{r.due:,}",
                    f"{r.deleted:,}",
                    f"{r.anonymised:,}",
                    f"{r.held:,}",
                    f"{r.expired_unheld_remaining:,}",
                    _pass_badge(r.passed),
                ]
                for r in snap.retention
            ],
            numeric={2, 3, 4, 5, 6},
        )
    )

    parts.append("<h2 id='requests'>Data-subject requests: one month to answer</h2>")
    parts.append(
        _table(
            ["request", "type", "status", "received", "due", "SLA"],
            [
                [
                    f"<code>{escape(r.request_id)}</code>",
                    escape(r.request_type),
                    escape(r.status),
                    r.received_on.isoformat(),
                    r.due_on.isoformat() if r.due_on else "&ndash;",
                    _countdown(r),
                ]
                for r in snap.requests
            ],
            numeric=set(),
        )
        if snap.requests
        else "<p>No open requests.</p>"
    )

    validated = snap.gate_validated_at.isoformat(" ", "minutes") if snap.gate_validated_at else ""
    parts.append(
        f"<h2 id='gate'>Validation gate, newest run {_pass_badge(snap.gate_passed)}</h2>"
        f"<p class='meta'>run {escape(snap.gate_run_id or 'none')} {escape(validated)}</p>"
    )
    parts.append(
        _table(
            ["published table", "expectations passed", "evaluated", "result"],
            [
                [
                    escape(t.table_name),
                    str(t.passed),
                    str(t.evaluated),
                    _pass_badge(t.passed == t.evaluated),
                ]
                for t in snap.gate
            ],
            numeric={1, 2},
        )
    )

    parts.append("<h2 id='evidence'>Compliance evidence, newest run</h2>")
    if snap.evidence:
        link = (
            f" &middot; <a href='{escape(evidence_href)}'>full report</a>" if evidence_href else ""
        )
        parts.append(
            f"<p class='meta'>as of {escape(str(snap.evidence['as_of']))}, run "
            f"{escape(str(snap.evidence['run_id']))}{link}</p>"
        )
        parts.append(
            _table(
                ["clause", "result"],
                [[escape(c), _clause_badge(status)] for c, status in snap.evidence_clauses],
                numeric=set(),
            )
        )
        if no_data:
            parts.append(
                "<p class='meta'>No data: the check had nothing to judge yet (for example "
                "nothing published, no requests received); it is not a pass and not a failure. "
                "The evidence report names the empty inputs, as counts.</p>"
            )
    else:
        parts.append("<p>No evidence run yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)

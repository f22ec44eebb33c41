"""How `ops.clause_evidence` stores a clause's state, and how to read it back.

A clause is PASS, FAIL or NO DATA. The table's `passed` column is a boolean, so a no-data clause
is stored as `passed = false` with a `no_data` key in its `figures` JSON (each empty input of the
check and its count). The evidence stage writes that form; the warehouse summary, the Privacy
view and the evidence reports read it with `status_of()`.
"""

from __future__ import annotations

import json
from typing import Any

PASS, FAIL, NO_DATA = "pass", "fail", "no data"
STATUSES = (PASS, FAIL, NO_DATA)
# The figure of a no-data clause: each empty input of the check and its count (0).
NO_DATA_FIGURE = "no_data"


def status_of(passed: bool | None, figures: str | dict[str, Any] | None) -> str:
    """The state of a clause as `ops.clause_evidence` stores it: `passed`, and for a clause that
    did not pass, the `no_data` figure in its `figures` JSON."""
    if passed:
        return PASS
    if isinstance(figures, str):
        try:
            figures = json.loads(figures)
        except ValueError:
            figures = None
    if isinstance(figures, dict) and isinstance(figures.get(NO_DATA_FIGURE), dict):
        return NO_DATA
    return FAIL

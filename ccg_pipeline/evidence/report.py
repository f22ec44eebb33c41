"""The evidence report's data: one `ClauseResult` per clause (pass, fail or no data, with the
figures, findings and queries behind it) and the `EvidenceReport` of a run."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from ccg_pipeline.warehouse.clause_status import FAIL, NO_DATA, NO_DATA_FIGURE, PASS


@dataclass
class ClauseResult:
    """One clause: pass, fail or no data, the figures that decide it, findings and the evidence
    queries. `passed` stays a boolean (false for no data) so older readers of the JSON and of
    `ops.clause_evidence` never take a no-data clause for a pass."""

    clause: str
    title: str
    passed: bool
    figures: dict[str, Any]
    queries: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    no_data: bool = False

    def __post_init__(self) -> None:
        if self.no_data:
            self.passed = False  # nothing to judge is never a pass
            if not isinstance(self.figures.get(NO_DATA_FIGURE), dict):
                raise ValueError(
                    f"{self.clause}: a no-data result names its empty inputs in "
                    f"figures[{NO_DATA_FIGURE!r}]"
                )

    @property
    def status(self) -> str:
        if self.no_data:
            return NO_DATA
        return PASS if self.passed else FAIL


@dataclass
class EvidenceReport:
    as_of: dt.date
    run_id: str
    backend: str
    generated_at: dt.datetime
    controller: str
    clauses: list[ClauseResult]
    # Clause id -> why the data cannot answer it (reviewed by people, not by this report).
    not_checked: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """Clauses that failed: not the ones with no data to judge."""
        return [c.clause for c in self.clauses if c.status == FAIL]

    @property
    def passing(self) -> list[str]:
        return [c.clause for c in self.clauses if c.status == PASS]

    @property
    def without_data(self) -> list[str]:
        return [c.clause for c in self.clauses if c.status == NO_DATA]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["generated_at"] = self.generated_at.isoformat(timespec="seconds")
        for clause, result in zip(data["clauses"], self.clauses, strict=True):
            clause["status"] = result.status
        data["failed"] = self.failed
        data["no_data"] = self.without_data
        return data

    def summary(self) -> dict[str, Any]:
        """For logs and XCom: clause ids and counts only."""
        return {
            "as_of": self.as_of.isoformat(),
            "clauses_checked": len(self.clauses),
            "clauses_failed": self.failed,
            "clauses_no_data": self.without_data,
        }

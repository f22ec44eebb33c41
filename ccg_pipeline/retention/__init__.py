"""Retention (N-RET, N-ANON): deadlines, legal holds, the anonymise-then-delete sweep.

`run_retention` and `plan_retention` are what the `ccg_retention` DAG and the `ccg retention`
command call; both return counts only.
"""

from ccg_pipeline.retention.stage import (
    plan_retention,
    render_plan,
    run_retention,
)

__all__ = [
    "plan_retention",
    "render_plan",
    "run_retention",
]

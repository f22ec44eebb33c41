"""Every DAG task runs a stage that states its purpose (N-BASIS): a processing, several, or none
with the reason. A new task calling an unmarked stage fails here."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from ccg_pipeline.purposes import NotAProcessing, Processing

pytestmark = pytest.mark.unit

DAGS = Path(__file__).resolve().parents[2] / "dags"
# Helpers that read no warehouse row: Airflow plumbing (`dag_support` sits in the lowest layer,
# which the import contract keeps from reaching the warehouse) and storage infrastructure
# (schema migrations, engines), which serves no purpose of its own.
EXEMPT_MODULES = ("ccg_pipeline.dag_support", "ccg_pipeline.warehouse")


def _task_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    def is_task(decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = ast.unparse(target)
        return name == "task" or name.startswith("task.")

    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any(is_task(d) for d in node.decorator_list)
    ]


def _stage_imports(function: ast.FunctionDef) -> list[tuple[str, str]]:
    return [
        (node.module, alias.name)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("ccg_pipeline")
        and not node.module.startswith(EXEMPT_MODULES)
        for alias in node.names
    ]


def _tasks() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(DAGS.glob("ccg_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path.stem, f) for f in _task_functions(tree)]
    return found


def test_the_dags_have_tasks_to_judge() -> None:
    assert len(_tasks()) >= 15


@pytest.mark.parametrize(("dag", "task"), _tasks(), ids=lambda x: getattr(x, "name", x))
def test_every_stage_a_task_runs_states_its_purpose(dag: str, task: ast.FunctionDef) -> None:
    for module, name in _stage_imports(task):
        stage = getattr(importlib.import_module(module), name)
        marked = getattr(stage, "__purpose__", None)
        assert marked is not None, (
            f"{dag}.{task.name} runs {module}.{name}, which states no purpose"
        )
        steps = marked if isinstance(marked, tuple) else (marked,)
        assert steps and all(isinstance(s, Processing | NotAProcessing) for s in steps)
        assert all(s.reason.strip() for s in steps if isinstance(s, NotAProcessing))

"""The privacy notice and the data map, loaded as validated data.

`load_notice()` and `load_data_map()` read the YAML files beside this module (or a path given by
an operator) and raise `PolicyError` naming the file and the field when something is wrong.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ccg_pipeline.policy.models import DataMap, Notice, Role

POLICY_DIR = Path(__file__).parent
NOTICE_FILE = POLICY_DIR / "notice.yaml"
DATA_MAP_FILE = POLICY_DIR / "data_map.yaml"

__all__ = ["DataMap", "Notice", "PolicyError", "Role", "load_data_map", "load_notice"]


M = TypeVar("M", bound=BaseModel)


class PolicyError(ValueError):
    """A policy file is missing, not YAML, or does not satisfy its schema."""


def _load(path: Path, model: type[M]) -> M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"{path}: {exc.error_count()} problem(s): {problems}") from exc


def load_notice(path: Path | None = None) -> Notice:
    return _cached_notice(path or NOTICE_FILE)


def load_data_map(path: Path | None = None) -> DataMap:
    return _cached_data_map(path or DATA_MAP_FILE)


@cache
def _cached_notice(path: Path) -> Notice:
    return _load(path, Notice)


@cache
def _cached_data_map(path: Path) -> DataMap:
    data_map = _load(path, DataMap)
    notice = load_notice()
    known = {c.id for c in notice.categories}
    unknown = sorted(
        f"{source}.{column}: {tag.category}"
        for source, spec in data_map.sources.items()
        for column, tag in spec.columns.items()
        if tag.category is not None and tag.category not in known
    )
    if unknown:
        raise PolicyError(f"{path}: columns tagged with categories the notice lacks: {unknown}")
    return data_map

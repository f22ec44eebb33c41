"""Read `docker-compose.yml` the way Compose does, without a Docker engine.

The tests validate the file against the Compose JSON schema and check its secrets, images and
healthchecks; the native deployment test takes its Airflow environment from here, so the
processes it starts run the configuration the containers would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA_FILE = REPO_ROOT / "deploy" / "compose-spec.json"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; `$$` is a literal $.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(ValueError):
    """A `${NAME:?...}` variable is unset: Compose would refuse to start."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing: {message}")
        self.name = name


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def variables(doc: Any) -> dict[str, set[str]]:
    """Every variable the file references, by operator ('' for plain, ':?' for required...)."""
    found: dict[str, set[str]] = {}
    for text in _strings(doc):
        for match in _VARIABLE.finditer(text):
            if match["name"]:
                found.setdefault(match["name"], set()).add(match["op"] or "")
    return found


def interpolate(doc: Any, env: Mapping[str, str]) -> Any:
    """`doc` with variables substituted as Compose does; raises MissingVariable like Compose."""
    if isinstance(doc, dict):
        return {key: interpolate(value, env) for key, value in doc.items()}
    if isinstance(doc, list):
        return [interpolate(value, env) for value in doc]
    if isinstance(doc, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), doc)
    return doc


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match[0] == "$$":
        return "$"
    name, op, arg = match["name"], match["op"], match["arg"] or ""
    value = env.get(name)
    unset = value is None or (op is not None and op.startswith(":") and value == "")
    if op in (":?", "?") and unset:
        raise MissingVariable(name, arg)
    if op in (":-", "-") and unset:
        return arg
    return value or ""


def service_environment(
    doc: dict[str, Any], service: str, env: Mapping[str, str], base_dir: Path = REPO_ROOT
) -> dict[str, str]:
    """The environment a service's container gets: its env_files, then `environment:`."""
    spec = interpolate(doc, env)["services"][service]
    result: dict[str, str] = {}
    for entry in _as_list(spec.get("env_file")):
        path = base_dir / (entry["path"] if isinstance(entry, dict) else entry)
        if path.exists() or (isinstance(entry, dict) and entry.get("required", True)):
            result.update(parse_env_file(path.read_text()))
    environment = spec.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    result.update({key: "" if value is None else str(value) for key, value in environment.items()})
    return result


def parse_env_file(text: str) -> dict[str, str]:
    """`KEY=value` lines (comments and blank lines skipped), as Compose reads an env file."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    return values


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _strings(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [s for key, value in doc.items() for s in [str(key), *_strings(value)]]
    if isinstance(doc, list):
        return [s for value in doc for s in _strings(value)]
    return [doc] if isinstance(doc, str) else []

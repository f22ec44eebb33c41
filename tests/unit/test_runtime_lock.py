"""The image installs deploy/requirements-runtime.lock: the runtime dependencies at exactly the
development lock's pins and hashes, without the test, lint and type-checking tools."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==(\S+)((?:\s*\\\n\s+--hash=\S+)+)", re.M)


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pins(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    text = path.read_text()
    return {
        _name(name): (version, frozenset(re.findall(r"--hash=(\S+)", hashes)))
        for name, version, hashes in REQUIREMENT.findall(text)
    }


def _requirement_names(specs: list[str]) -> set[str]:
    return {_name(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in specs}


def test_the_runtime_lock_is_the_dev_lock_without_the_dev_tools() -> None:
    dev = _pins(ROOT / "requirements.lock")
    runtime = _pins(ROOT / "deploy" / "requirements-runtime.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert runtime and set(runtime) < set(dev)
    assert {name: dev[name] for name in runtime} == runtime  # same versions, same hashes
    assert _requirement_names(project["dependencies"]) <= set(runtime)
    dev_tools = _requirement_names(project["optional-dependencies"]["dev"])
    assert dev_tools and not dev_tools & set(runtime)


def test_the_image_installs_the_runtime_lock_by_hash() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert any(
        "--require-hashes -r /opt/ccg/requirements-runtime.lock" in line for line in installs
    )
    assert "requirements.lock" not in dockerfile.replace("requirements-runtime.lock", "")

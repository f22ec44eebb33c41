"""The data map is the source registry: its `ingest` entries decide the ingest DAG's lanes, where
each lane's files are found and which loader reads them."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccg_pipeline.config import Settings
from ccg_pipeline.policy import DATA_MAP_FILE, PolicyError, load_data_map
from ccg_pipeline.policy.models import DATABASE_LANE

pytestmark = pytest.mark.unit


def _raw_map() -> dict[str, Any]:
    return yaml.safe_load(DATA_MAP_FILE.read_text(encoding="utf-8"))


def _load(tmp_path: Path, raw: dict[str, Any]):
    path = tmp_path / "data_map.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_data_map(path)


def test_the_shipped_map_gives_the_four_lanes_in_dependency_order() -> None:
    lanes = load_data_map().ingest_lanes()
    assert [lane.name for lane in lanes] == [DATABASE_LANE, "crm", "web_logs", "auth_logs"]
    by_name = {lane.name: lane for lane in lanes}
    # Activities find their subject through contacts, so contacts load first in the CRM lane.
    assert [source for source, _feed in by_name["crm"].feeds] == [
        "crm.contacts",
        "crm.companies",
        "crm.activities",
    ]
    assert by_name["auth_logs"].after == (DATABASE_LANE,)
    assert by_name["web_logs"].after == ()
    # Log files stand alone (keyed by file and line): one mapped task each. CRM exports load in
    # order (a newer export supersedes an older one), as one task.
    assert [lane.name for lane in lanes if lane.per_file] == ["web_logs", "auth_logs"]


def test_every_registered_loader_resolves_to_a_function() -> None:
    feeds = [feed for lane in load_data_map().ingest_lanes() for _source, feed in lane.feeds]
    assert feeds, "the shipped map registers file sources"
    for feed in feeds:
        module, _, name = feed.loader.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), feed.loader


def test_a_lane_folder_moves_with_its_variable_and_defaults_under_the_sources(
    tmp_path: Path,
) -> None:
    feeds = {lane.name: lane.feeds[0][1] for lane in load_data_map().ingest_lanes()[1:]}
    moved = tmp_path / "elsewhere"
    settings = Settings.from_env(
        {
            "CCG_HOME": str(tmp_path),
            "CCG_SOURCE_DIR": str(tmp_path / "src"),
            "CCG_WEB_LOG_DIR": str(moved),
        }
    )
    web, crm = feeds["web_logs"], feeds["crm"]
    assert settings.source_folder(web.folder, web.folder_variable) == moved
    assert crm.folder_variable == "CCG_CRM_DIR"
    assert settings.source_folder(crm.folder, crm.folder_variable) == tmp_path / "src" / "crm"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["logs.web_access"]["ingest"].update(lane="portal"), "portal database"),
        (lambda s: s["crm.companies"]["ingest"].update(folder="other"), "another folder"),
        (lambda s: s["crm.companies"]["ingest"].update(per_file=True), "per_file setting"),
        (lambda s: s["logs.web_access"]["ingest"].update(after=["auth_logs"]), "no earlier lane"),
        (lambda s: s["logs.auth"]["ingest"].update(after=["nowhere"]), "no earlier lane"),
        (lambda s: s["logs.auth"]["ingest"].update(files=[]), "ingest.files"),
        (lambda s: s["logs.auth"]["ingest"].update(loader="not a loader"), "ingest.loader"),
        (lambda s: s["logs.auth"]["ingest"].update(folder_env="WEB_DIR"), "folder_env"),
    ],
)
def test_a_broken_registry_entry_is_refused_naming_it(
    tmp_path: Path, change, expected: str
) -> None:
    raw = _raw_map()
    change(raw["sources"])
    with pytest.raises(PolicyError, match=expected):
        _load(tmp_path, raw)


def test_a_new_file_source_is_one_data_map_entry(tmp_path: Path) -> None:
    """A second web server's logs, read by the existing loader: only the data map changes."""
    raw = _raw_map()
    edge = dict(raw["sources"]["logs.web_access"])
    edge["description"] = "Edge proxy access log"
    edge["ingest"] = {
        "lane": "edge_logs",
        "folder": "logs/edge",
        "files": ["edge-*.log*"],
        "loader": "ccg_pipeline.ingest.logs:load_web_log",
    }
    raw["sources"]["logs.edge_access"] = edge
    lanes = {lane.name: lane for lane in _load(tmp_path, raw).ingest_lanes()}
    assert lanes["edge_logs"].feeds[0][0] == "logs.edge_access"
    assert lanes["edge_logs"].feeds[0][1].folder_variable == "CCG_EDGE_LOGS_DIR"

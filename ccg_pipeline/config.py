"""The one place where environment, warehouse URL, source locations and secrets are read.

Everything else receives a `Settings` object. Defaults are the committed local dev settings: an
embedded SQLite warehouse and the demo sources under `var/` in the working directory.

Resolution order for each value: explicit argument > Airflow connection (inside tasks only, see
`dag_support`) > `CCG_*` environment variable > dev default. The `ccg` command line also reads a
`ccg.toml` between the environment and the defaults (`Settings.from_config`), so that it finds the
project home from any folder of a checkout, not only the one holding `var/`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

# Dev-only pseudonymisation key. Production sets CCG_PSEUDONYM_KEY (or the ccg_pseudonym_key
# Airflow variable/connection); `Settings.check_production` refuses to run with this value.
DEV_PSEUDONYM_KEY = "ccg-dev-only-pseudonym-key-do-not-use-in-production"

CONFIG_FILE_NAME = "ccg.toml"
# The variables `Settings.from_env` reads, as `ccg.toml` keys (lower case, no CCG_ prefix); any
# `<name>_dir` key is a source folder's own variable as well (CCG_WEB_LOG_DIR is `web_log_dir`).
CONFIG_KEYS = frozenset(
    {"home", "warehouse_url", "portal_url", "portal_write_url", "source_dir", "request_inbox",
     "pseudonym_key", "env"}
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_url: str
    portal_url: str
    # Where file-based sources land: each one's folder under `source_dir`, unless its variable
    # (named in the data map, e.g. CCG_WEB_LOG_DIR) moves it; see `source_folder`.
    source_dir: Path
    pseudonym_key: str = field(repr=False)
    environment: str = "dev"
    # Drop folder of JSON subject requests (what a portal form writes); default $CCG_HOME/requests.
    request_inbox: Path | None = None
    folder_overrides: dict[str, Path] = field(default_factory=dict)
    # The portal as the request handlers change it (rectification, erasure of a login): a
    # login with write access, where ingest's `portal_url` may be read-only. Default: the same.
    portal_write_url: str | None = None

    @property
    def portal_url_for_writes(self) -> str:
        return self.portal_write_url or self.portal_url

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CCG_HOME", "var")).resolve()
        sources = Path(env.get("CCG_SOURCE_DIR", str(home / "sources"))).resolve()
        return cls(
            home=home,
            warehouse_url=env.get(
                "CCG_WAREHOUSE_URL", f"sqlite:///{home / 'warehouse' / 'main.db'}"
            ),
            portal_url=env.get("CCG_PORTAL_URL", f"sqlite:///{sources / 'portal.db'}"),
            source_dir=sources,
            folder_overrides={
                name: Path(value)
                for name, value in env.items()
                if name.startswith("CCG_") and name.endswith("_DIR") and name != "CCG_SOURCE_DIR"
            },
            pseudonym_key=env.get("CCG_PSEUDONYM_KEY", DEV_PSEUDONYM_KEY),
            environment=env.get("CCG_ENV", "dev"),
            request_inbox=Path(env.get("CCG_REQUEST_INBOX", str(home / "requests" / "inbox"))),
            portal_write_url=env.get("CCG_PORTAL_WRITE_URL") or None,
        )

    @classmethod
    def from_config(
        cls,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        resolve_url: Callable[[str, Path], str] | None = None,
    ) -> Configured:
        """Settings for the `ccg` command: each `CCG_*` variable, else the same key in a
        `ccg.toml`, else the default. The file is `$CCG_CONFIG` (which must exist), else the
        nearest `ccg.toml` in `cwd` or a parent folder, else `$XDG_CONFIG_HOME/ccg/ccg.toml`.
        Relative paths in the file are relative to its folder, and so are relative database
        files in its URLs through `resolve_url` (the warehouse layer knows which URLs name a
        file; `cli` passes `warehouse.backend.url_against`). Raises FileNotFoundError or
        ValueError naming the file (and the key) when it cannot be used."""
        env = dict(os.environ if env is None else env)
        cwd = Path.cwd() if cwd is None else cwd
        path = find_config_file(env, cwd)
        values = read_config_file(path, resolve_url) if path is not None else {}
        settings = cls.from_env({**values, **env})  # a variable beats the file
        home_from = "CCG_HOME" if "CCG_HOME" in env else str(path) if "CCG_HOME" in values else ""
        return Configured(settings, path, home_from or "default")

    def source_folder(self, relative: str, variable: str) -> Path:
        """A file source's folder: its own variable if set, else `relative` under the sources."""
        return self.folder_overrides.get(variable, self.source_dir / relative)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def check_production(self) -> None:
        """Refuse the committed dev key outside dev, so a forgotten secret fails loudly."""
        if self.environment != "dev" and self.pseudonym_key == DEV_PSEUDONYM_KEY:
            raise RuntimeError("CCG_PSEUDONYM_KEY must be set outside the dev environment")


@dataclass(frozen=True)
class Configured:
    """What `Settings.from_config` found: the settings, the file read (None: no file) and
    where the home came from: "CCG_HOME", the file's path, or "default" (var/ in the current
    folder)."""

    settings: Settings
    file: Path | None
    home_from: str


def find_config_file(env: Mapping[str, str], cwd: Path) -> Path | None:
    """`$CCG_CONFIG`, else the nearest `ccg.toml` from `cwd` up (as git finds its repository),
    else `$XDG_CONFIG_HOME/ccg/ccg.toml` (default `~/.config`); None when there is none."""
    if env.get("CCG_CONFIG"):
        named = Path(env["CCG_CONFIG"]).expanduser()
        named = named if named.is_absolute() else cwd / named
        if not named.is_file():
            raise FileNotFoundError(f"CCG_CONFIG names {named}, which is not a file")
        return named
    cwd = cwd.resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / CONFIG_FILE_NAME).is_file():
            return folder / CONFIG_FILE_NAME
    user_file = user_config_file(env)
    return user_file if user_file.is_file() else None


def user_config_file(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/ccg/ccg.toml`; a relative XDG_CONFIG_HOME is ignored, as XDG says."""
    xdg = Path(env.get("XDG_CONFIG_HOME", ""))
    if not xdg.is_absolute():
        xdg = (Path(env["HOME"]) if env.get("HOME") else Path.home()) / ".config"
    return xdg / "ccg" / CONFIG_FILE_NAME


def read_config_file(
    path: Path, resolve_url: Callable[[str, Path], str] | None = None
) -> dict[str, str]:
    """A `ccg.toml` as the `CCG_*` variables it stands for, paths made absolute against its
    folder. Raises ValueError naming the file (and the key) for anything it cannot use."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid TOML file ({exc})") from None
    values: dict[str, str] = {}
    for key, value in document.items():
        if key not in CONFIG_KEYS and not key.endswith("_dir"):
            known = ", ".join(sorted(CONFIG_KEYS))
            raise ValueError(f"{path}: unknown key {key!r} (known: {known}, or <source>_dir)")
        if not isinstance(value, str):
            raise ValueError(f"{path}: {key} must be a string")
        if key in ("home", "request_inbox") or key.endswith("_dir"):
            value = str(path.parent / Path(value).expanduser())
        elif key.endswith("_url") and resolve_url is not None:
            value = resolve_url(value, path.parent)
        values[f"CCG_{key.upper()}"] = value
    return values


def positive_int_from_env(name: str, default: int) -> int:
    """A tuning variable (`CCG_WRITER_SLOTS`, `CCG_GX_RUNS_KEPT`): a whole number of at least 1,
    else `default` when unset; any other value is refused by name."""
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)

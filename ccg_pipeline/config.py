"""The one place where environment, warehouse URL, source locations and secrets are read.

Everything else receives a `Settings` object. Defaults are the committed local dev settings: an
embedded SQLite warehouse and the demo sources under `var/` in the working directory.

Resolution order for each value: explicit argument > Airflow connection (inside tasks only, see
`dag_support`) > `CCG_*` environment variable > dev default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# Dev-only pseudonymisation key. Production sets CCG_PSEUDONYM_KEY (or the ccg_pseudonym_key
# Airflow variable/connection); `Settings.check_production` refuses to run with this value.
DEV_PSEUDONYM_KEY = "ccg-dev-only-pseudonym-key-do-not-use-in-production"


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

    def source_folder(self, relative: str, variable: str) -> Path:
        """A file source's folder: its own variable if set, else `relative` under the sources."""
        return self.folder_overrides.get(variable, self.source_dir / relative)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def check_production(self) -> None:
        """Refuse the committed dev key outside dev, so a forgotten secret fails loudly."""
        if self.environment != "dev" and self.pseudonym_key == DEV_PSEUDONYM_KEY:
            raise RuntimeError("CCG_PSEUDONYM_KEY must be set outside the dev environment")

"""The compose deployment as its containers meet it: `airflow-init` run as the compose `user:`
(uid 50000, gid 0), with the `ccg-home` volume prepared as Docker would from deploy/Dockerfile
(the image's directory and owner, or an empty root-owned directory when the image has none), the
sources mounted read-only, and the environment docker-compose.yml gives the service.

The native deployment test runs as the current user and cannot see a volume the container user
cannot write; this one fails on a Dockerfile that does not prepare /opt/ccg/var, and that is
checked here too.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccg_pipeline.deploy import compose, secrets_env
from ccg_pipeline.devtools import container
from ccg_pipeline.devtools.deployment import (
    IMAGE_HOME,
    IMAGE_PORTAL,
    IMAGE_SOURCES,
    REPO,
    _run_init,
    airflow_environment,
)
from ccg_pipeline.devtools.postgres import PgServer, PostgresUnavailable, _free_port, start_server

pytestmark = [pytest.mark.deployment, pytest.mark.postgres]

SERVICE = "airflow-init"
BASE_AIRFLOW_HOME = "/opt/airflow"  # the base image's, owned by its airflow user


def _service(secrets: dict[str, str]) -> tuple[str, list[str]]:
    """The init service's compose `user:` and volume specs, interpolated as compose would."""
    doc = compose.interpolate(compose.load(), secrets)
    service = doc["services"][SERVICE]
    return service["user"], service["volumes"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[PgServer, dict[str, str]]]:
    if os.geteuid() != 0:
        pytest.skip("running a service as uid 50000 needs root (as CI and the sessions run)")
    try:
        secrets = secrets_env.generate()
        postgres = start_server(password=secrets["POSTGRES_PASSWORD"])
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    root = Path(tempfile.mkdtemp(prefix="ccg-container-"))
    root.chmod(0o755)
    try:
        _run_init(
            {
                **os.environ,
                **secrets,
                "PGHOST": "127.0.0.1",
                "PGPORT": str(postgres.port),
                "PGPASSWORD": secrets["POSTGRES_PASSWORD"],
            },
            REPO / "deploy" / "postgres-init" / "10-ccg-databases.sh",
            root / "postgres-init.log",
        )
        yield postgres, secrets
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def _init_as_the_container(
    dockerfile: Path, server: tuple[PgServer, dict[str, str]], root: Path
) -> tuple[int, Path, Path]:
    """Run airflow-init as its container would; (exit code, the ccg-home volume, the log)."""
    postgres, secrets = server
    user, volumes = _service(secrets)
    image = container.read_image(dockerfile)
    mounts = {spec.split(":")[1]: spec.split(":")[0] for spec in volumes}
    assert mounts[IMAGE_HOME] == "ccg-home", "ccg-home is a named volume at the image's home"
    home = container.prepare_volume(image, IMAGE_HOME, root / "volumes" / "ccg-home")
    sources = root / "sources"
    sources.mkdir()
    container.make_read_only(sources)  # compose mounts the sources `:ro`
    airflow_home = root / "opt-airflow"
    airflow_home.mkdir()
    os.chown(airflow_home, image.users["airflow"], 0)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CCG_"))},
        **airflow_environment(secrets, postgres.port, _free_port(), home, sources),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW_ADMIN_PASSWORD": secrets["AIRFLOW_ADMIN_PASSWORD"],
        "HOME": str(airflow_home),
        # The image's /etc/passwd names uid 50000 `airflow`; here the login variables do.
        "USER": "airflow",
        "LOGNAME": "airflow",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": f"{Path(os.sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = root / "airflow-init.log"
    code = container.run_as(user, ["bash", str(REPO / "deploy" / "airflow-init.sh")], env, log)
    return code, home, log


@pytest.fixture
def root() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="ccg-container-"))
    folder.chmod(0o755)  # the container user must reach what is mounted for it
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_image_prepares_the_home_the_container_user_writes(server, root: Path) -> None:
    image = container.read_image()
    user, _ = _service(server[1])
    assert image.owner(IMAGE_HOME) == int(user.split(":")[0]), (
        "deploy/Dockerfile must create /opt/ccg/var owned by the compose user"
    )
    code, home, log = _init_as_the_container(container.DOCKERFILE, server, root)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    passwords = home / "airflow" / "passwords.json"
    assert passwords.stat().st_uid == 50000
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600


def test_without_the_directory_preparation_the_init_fails_as_on_docker(server, root: Path) -> None:
    """The negative control: today's failure, reproduced from the Dockerfile alone."""
    lines = container.DOCKERFILE.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if IMAGE_HOME not in line or line.startswith(("ENV", " "))]
    assert len(kept) < len(lines), "the Dockerfile prepares /opt/ccg/var on a line of its own"
    stripped = root / "Dockerfile"
    stripped.write_text("".join(kept), encoding="utf-8")
    assert container.read_image(stripped).owner(IMAGE_HOME) is None
    code, home, log = _init_as_the_container(stripped, server, root)
    assert code != 0
    assert "Permission denied" in log.read_text(errors="replace")
    assert home.stat().st_uid == 0 and not (home / "airflow").exists()


def test_the_request_handlers_write_the_portal_through_a_writable_mount(server, root: Path) -> None:
    """Rectification and erasure change the portal database. Compose mounts the sources
    read-only and the portal's folder writable (a bind mount keeps the host folder's owner, which
    `AIRFLOW_UID` is set to); with compose's environment the handlers' portal connection, run as
    the container user, writes there. The same database under the sources is refused, as it was
    before the portal had its own mount."""
    import sqlite3

    postgres, secrets = server
    user, volumes = _service(secrets)
    mounts = {spec.split(":")[1]: spec for spec in volumes}
    assert mounts[IMAGE_SOURCES].endswith(":ro") and not mounts[IMAGE_PORTAL].endswith(":ro")
    uid = int(user.split(":")[0])
    sources, portal = root / "sources", root / "portal"
    for folder in (sources, portal):
        folder.mkdir()
        with sqlite3.connect(folder / "portal.db") as db:
            db.execute("CREATE TABLE users (email TEXT, last_name TEXT)")
            db.execute("INSERT INTO users VALUES ('a@example.org', 'Before')")
        db.close()
    for path in (portal, portal / "portal.db"):
        os.chown(path, uid, 0)
    container.make_read_only(sources)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CCG_"))},
        **airflow_environment(secrets, postgres.port, _free_port(), root / "home", sources, portal),
        "HOME": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert env["CCG_PORTAL_URL"] == f"sqlite:///{portal / 'portal.db'}"
    rectify = (
        "import sqlalchemy as sa\n"
        "from ccg_pipeline.config import Settings\n"
        "engine = sa.create_engine(Settings.from_env().portal_url_for_writes)\n"
        "with engine.begin() as conn:\n"
        "    conn.execute(sa.text(\"UPDATE users SET last_name = 'After'\"))\n"
    )
    command = [os.sys.executable, "-c", rectify]
    log = root / "portal-write.log"
    assert container.run_as(user, command, env, log) == 0, log.read_text(errors="replace")
    with sqlite3.connect(portal / "portal.db") as db:
        assert db.execute("SELECT last_name FROM users").fetchall() == [("After",)]
    db.close()

    under_sources = {**env, "CCG_PORTAL_URL": f"sqlite:///{sources / 'portal.db'}"}
    assert container.run_as(user, command, under_sources, log) != 0
    assert "readonly database" in log.read_text(errors="replace")

"""The compose deployment without Docker: the same services as processes on this machine.

PostgreSQL comes from the machine's binaries (password auth, initialised by the same
`deploy/postgres-init` script the postgres image runs); the Airflow api-server, scheduler,
dag-processor and triggerer run with the environment `docker-compose.yml` gives its containers,
secrets generated as `make env` does, and only hosts, ports and paths rewritten. Used by the
native deployment test, and by `python -m ccg_pipeline.devtools.deployment` to try it by hand.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ccg_pipeline.deploy import compose, secrets_env
from ccg_pipeline.devtools.postgres import PgServer, _free_port, start_server

REPO = compose.REPO_ROOT
SERVICES = {
    "api-server": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
}
# Paths inside the image (deploy/Dockerfile) and where they live natively.
IMAGE_HOME, IMAGE_SOURCES = "/opt/ccg/var", "/opt/ccg/sources"
# Where compose mounts the portal database's folder, writable (by default the sources' folder).
IMAGE_PORTAL = "/opt/ccg/portal"


class DeploymentError(RuntimeError):
    pass


@dataclass
class NativeDeployment:
    root: Path
    secrets: dict[str, str]
    postgres: PgServer
    api_port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ccg_home(self) -> Path:
        return Path(self.env["CCG_HOME"])

    def log_file(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def warehouse_url(self, role: str = "ccg_pipeline") -> str:
        password = {
            "ccg_pipeline": self.secrets["CCG_PIPELINE_DB_PASSWORD"],
            "ccg_analyst_login": self.secrets["CCG_ANALYST_DB_PASSWORD"],
        }[role]
        return (
            f"postgresql+psycopg2://{role}:{password}@127.0.0.1:{self.postgres.port}/ccg_warehouse"
        )

    def token(self) -> str:
        """A JWT for the admin account, from the REST API's token endpoint."""
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"username": "admin", "password": self.secrets["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DeploymentError(
                    f"{name} exited with {process.returncode}; see {self.log_file(name)}"
                )


def airflow_environment(
    secrets: dict[str, str],
    pg_port: int,
    api_port: int,
    home: Path,
    sources: Path,
    portal: Path | None = None,
) -> dict[str, str]:
    """The scheduler container's environment from docker-compose.yml, rewritten for this host:
    `sources` where compose mounts CCG_SOURCE_DIR, `portal` (default: `sources`, as compose's
    default) where it mounts CCG_PORTAL_DIR."""
    doc = compose.load()
    container = compose.service_environment(doc, SERVICES["scheduler"], secrets)
    rewrites = {
        "@postgres:5432/": f"@127.0.0.1:{pg_port}/",
        "http://airflow-apiserver:8080/": f"http://127.0.0.1:{api_port}/",
        IMAGE_HOME: str(home),
        IMAGE_SOURCES: str(sources),
        IMAGE_PORTAL: str(portal or sources),
    }
    env = {}
    for key, value in container.items():
        for old, new in rewrites.items():
            value = value.replace(old, new)
        env[key] = value
    # What the image sets (deploy/Dockerfile), and the native Airflow home.
    env.update(
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(_free_port()),
        CCG_HOME=str(home),
    )
    return env


def _run_init(env: dict[str, str], script: Path, log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(
            ["bash", str(script)], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600
        )
    if result.returncode != 0:
        raise DeploymentError(f"{script.name} failed ({result.returncode}); see {log}")


def _wait_healthy(deployment: NativeDeployment, timeout: float) -> dict[str, Any]:
    """Until the api-server reports metadatabase, scheduler, triggerer and dag-processor
    healthy (the compose healthchecks' conditions)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        deployment.check_alive()
        try:
            last = httpx.get(f"{deployment.base_url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            time.sleep(1)
            continue
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        if all((last.get(p) or {}).get("status") == "healthy" for p in parts):
            return last
        time.sleep(1)
    raise DeploymentError(f"not healthy after {timeout:.0f}s: {last}")


def _print_log_tails(deployment: NativeDeployment, lines: int = 30) -> None:
    """On failure the temporary folder goes away: keep the end of each service log in the
    output (the secrets are this run's throw-away ones)."""
    for log in sorted((deployment.root / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last {len(tail)} lines of {log.name} ---", *tail, sep="\n", file=sys.stderr)


@contextmanager
def native_deployment(
    sources: Path, *, extra_env: dict[str, str] | None = None, timeout: float = 240
) -> Iterator[NativeDeployment]:
    """Start PostgreSQL and the four Airflow services; stop everything and delete the data
    afterwards. `sources` is mounted where compose mounts CCG_SOURCE_DIR."""
    root = Path(tempfile.mkdtemp(prefix="ccg-deploy-"))
    (root / "logs").mkdir()
    secrets = secrets_env.generate()
    postgres = start_server(password=secrets["POSTGRES_PASSWORD"])
    api_port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CCG_"))},
        **airflow_environment(secrets, postgres.port, api_port, root / "ccg", sources),
        **(extra_env or {}),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    deployment = NativeDeployment(root, secrets, postgres, api_port, env)
    try:
        _run_init(
            {
                **env,
                **secrets,
                "PGHOST": "127.0.0.1",
                "PGPORT": str(postgres.port),
                "PGPASSWORD": secrets["POSTGRES_PASSWORD"],
            },
            REPO / "deploy" / "postgres-init" / "10-ccg-databases.sh",
            deployment.log_file("postgres-init"),
        )
        init_env = {**env, "AIRFLOW_ADMIN_PASSWORD": secrets["AIRFLOW_ADMIN_PASSWORD"]}
        _run_init(
            init_env, REPO / "deploy" / "airflow-init.sh", deployment.log_file("airflow-init")
        )
        for name in SERVICES:
            log = deployment.log_file(name).open("ab")
            deployment.processes[name] = subprocess.Popen(
                ["airflow", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_healthy(deployment, timeout)
        yield deployment
    except BaseException:
        _print_log_tails(deployment)
        raise
    finally:
        for process in deployment.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in deployment.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        postgres.stop()
        if os.environ.get("CCG_KEEP_DEPLOYMENT_LOGS"):
            print(f"deployment logs kept in {root / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    """Start the native deployment on sources in $CCG_SOURCE_DIR and keep it up until Ctrl-C."""
    sources = Path(os.environ.get("CCG_SOURCE_DIR", "var/sources")).resolve()
    with native_deployment(sources) as deployment:
        passwords = deployment.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        print(f"Airflow UI: {deployment.base_url}  (user admin; password in {passwords})")
        print(
            f"Privacy view: {deployment.base_url}/plugin/ccg-privacy ; logs: {deployment.root}/logs"
        )
        try:
            while True:
                deployment.check_alive()
                time.sleep(5)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())

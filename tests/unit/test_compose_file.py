"""docker-compose.yml without a Docker engine: valid against the Compose schema (own copy), no
default secrets, pinned images, healthchecks, examples off, a scalable Celery profile; plus the
`make env` generator and the docs' freedom from default credentials."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import jsonschema
import pytest
from cryptography.fernet import Fernet

from ccg_pipeline.deploy import compose, secrets_env
from ccg_pipeline.devtools.deployment import airflow_environment

pytestmark = pytest.mark.unit

REPO = compose.REPO_ROOT
SHARED_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
REQUIRED = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")


@pytest.fixture(scope="module")
def doc() -> dict:
    return compose.load()


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return secrets_env.generate()


def test_valid_against_the_compose_schema_before_and_after_interpolation(doc, env) -> None:
    schema = compose.schema()
    jsonschema.validate(doc, schema)
    jsonschema.validate(compose.interpolate(doc, env), schema)


def test_own_schema_copy_matches_the_shared_one() -> None:
    if not SHARED_SCHEMA.exists():
        pytest.skip("../shared is not beside the repository")
    assert compose.SCHEMA_FILE.read_bytes() == SHARED_SCHEMA.read_bytes()


def test_schema_check_rejects_a_broken_file(doc) -> None:
    """The validation is not vacuous: a misspelt key fails it."""
    broken = {**doc, "services": {**doc["services"], "postgres": {"imgae": "postgres:15"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose.schema())


def test_every_secret_is_required_from_env_and_generated_by_make_env(doc) -> None:
    references = compose.variables(doc)
    required = {name for name, ops in references.items() if ":?" in ops}
    assert required == set(secrets_env.SECRETS)
    for name in secrets_env.SECRETS:  # never with a fallback anywhere
        assert references[name] == {":?"}, name
    optional = set(references) - required
    assert optional <= {*secrets_env.SETTINGS, "AIRFLOW_CONN_CCG_ALERTS"}


@pytest.mark.parametrize("missing", sorted(secrets_env.SECRETS))
def test_compose_refuses_to_start_without_each_secret(doc, env, missing) -> None:
    without = {k: v for k, v in env.items() if k != missing}
    with pytest.raises(compose.MissingVariable) as error:
        compose.interpolate(doc, without)
    assert error.value.name == missing
    assert env[missing] not in str(error.value)
    with pytest.raises(compose.MissingVariable):  # an empty value is as good as missing
        compose.interpolate(doc, {**without, missing: ""})


def test_no_literal_secret_in_any_service(doc) -> None:
    for name, service in doc["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if SECRET_KEY.search(key) and not key.endswith("_FILE") and "_CONN_" not in key:
                assert isinstance(value, str) and REQUIRED.match(value), (name, key)
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", str(value)):
                assert REQUIRED.match(password), (name, key)
        command = " ".join(map(str, service.get("command") or []))
        assert "requirepass" not in command or "${REDIS_PASSWORD:?" in command


def test_images_are_pinned_to_exact_versions(doc) -> None:
    pinned = re.compile(r"^[a-z0-9./_-]+:\d+(\.\d+)+(-[a-z0-9.]+)?$")
    images = {name: s["image"] for name, s in doc["services"].items()}
    assert all(pinned.match(image) for image in images.values()), images
    assert not any("latest" in image for image in images.values())
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert pinned.match(base) and base.startswith("apache/airflow:3.3.")


def test_long_running_services_have_healthchecks(doc) -> None:
    for name, service in doc["services"].items():
        if name == "airflow-init":
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and check.get("interval"), name


def test_airflow_services_wait_for_a_healthy_database_and_the_init_job(doc) -> None:
    for name in AIRFLOW_SERVICES[1:]:
        depends = doc["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name


def test_examples_are_off_and_configuration_is_shared_with_the_native_run(doc, env) -> None:
    for name in AIRFLOW_SERVICES:
        container = compose.service_environment(doc, name, env)
        assert container["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False", name
        assert container["AIRFLOW__CORE__FERNET_KEY"] == env["AIRFLOW__CORE__FERNET_KEY"]
        assert container["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert container["AIRFLOW__API__EXPOSE_CONFIG"] == "False"
    # Only the init job sees the admin password.
    assert [
        n
        for n in AIRFLOW_SERVICES
        if "AIRFLOW_ADMIN_PASSWORD" in compose.service_environment(doc, n, env)
    ] == ["airflow-init"]


def test_native_environment_is_compose_with_hosts_and_paths_rewritten(env, tmp_path: Path) -> None:
    native = airflow_environment(env, 5999, 8999, tmp_path / "home", tmp_path / "sources")
    text = "\n".join(native.values())
    assert "@postgres:" not in text and "airflow-apiserver" not in text and "/opt/ccg" not in text
    assert "@127.0.0.1:5999/ccg_warehouse" in native["CCG_WAREHOUSE_URL"]
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8999/execution/"
    assert native["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert native["CCG_SOURCE_DIR"] == str(tmp_path / "sources")


def test_celery_profile_scales_out(doc) -> None:
    services = doc["services"]
    assert services["redis"]["profiles"] == ["celery"]
    worker = services["airflow-worker"]
    assert worker["profiles"] == ["celery"]
    assert "container_name" not in worker and "ports" not in worker  # --scale needs both absent
    assert worker["command"][-2:] == ["celery", "worker"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    env = {**secrets_env.generate(), "AIRFLOW_EXECUTOR": "CeleryExecutor"}
    container = compose.service_environment(doc, "airflow-worker", env)
    assert container["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert container["AIRFLOW__CELERY__BROKER_URL"].startswith(
        f"redis://:{env['REDIS_PASSWORD']}@redis:6379/"
    )


def test_make_env_writes_fresh_owner_only_secrets_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert secrets_env.main(["--output", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = compose.parse_env_file(path.read_text())
    assert set(secrets_env.SECRETS) <= set(first)
    Fernet(first["AIRFLOW__CORE__FERNET_KEY"].encode())  # a valid key
    assert all(len(first[name]) >= 32 for name in secrets_env.SECRETS)
    assert len({first[name] for name in secrets_env.SECRETS}) == len(secrets_env.SECRETS)
    assert secrets_env.main(["--output", str(path)]) == 1  # kept: it may already encrypt data
    assert compose.parse_env_file(path.read_text()) == first
    assert secrets_env.main(["--output", str(path), "--force"]) == 0
    second = compose.parse_env_file(path.read_text())
    assert all(first[name] != second[name] for name in secrets_env.SECRETS)


def test_init_scripts_require_their_secrets() -> None:
    airflow_init = (REPO / "deploy" / "airflow-init.sh").read_text()
    for name in (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW_ADMIN_PASSWORD",
    ):
        assert f'"${{{name}:?' in airflow_init, name
    postgres_init = (REPO / "deploy" / "postgres-init" / "10-ccg-databases.sh").read_text()
    for name in ("AIRFLOW_DB_PASSWORD", "CCG_PIPELINE_DB_PASSWORD", "CCG_ANALYST_DB_PASSWORD"):
        assert f'"${{{name}:?}}"' in postgres_init, name
    assert "PASSWORD '" not in postgres_init  # passwords only through psql variables


# Credentials that ship as defaults elsewhere, and assignments of a literal password.
DEFAULT_CREDENTIALS = re.compile(
    r"(?i)(airflow:airflow@|postgres:postgres@|admin:admin@|_AIRFLOW_WWW_USER_PASSWORD|"
    r"(password|passwd|secret|fernet_key)\s*[=:]\s*['\"]?(admin|airflow|postgres|password|"
    r"changeme|secret|123456)\b|--conn-password\s+['\"]?(?!\$)\w+)"
)


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        "docker-compose.yml",
        "deploy/airflow.env",
        "deploy/Dockerfile",
        "deploy/airflow-init.sh",
        "deploy/postgres-init/10-ccg-databases.sh",
        *(str(p.relative_to(REPO)) for p in sorted((REPO / "docs").glob("*.md"))),
    ],
)
def test_no_default_credentials_in_compose_or_docs(path: str) -> None:
    text = (REPO / path).read_text()
    assert not DEFAULT_CREDENTIALS.findall(text), path
    for password in re.findall(r"://[^:/@\s`'\"]+:([^@\s`'\"]+)@", text):
        assert password.startswith(("${", "<", "$")), (path, password)


def test_default_credential_scan_catches_the_classic_defaults() -> None:
    for text in (
        "postgresql://airflow:airflow@postgres/airflow",
        "PASSWORD=admin",
        "secret: changeme",
    ):
        assert DEFAULT_CREDENTIALS.search(text), text

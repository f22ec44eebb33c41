"""A throw-away PostgreSQL server for tests and benchmarks, from the machine's own binaries.

initdb refuses to run as root, so as root the server runs as the unprivileged `postgres` user;
the data directory is a temporary folder and the server listens on a free loopback port only.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def find_pg_bin() -> Path:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (pg_ctl) found; run `make postgres-deps` (apt install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgServer:
    bin_dir: Path
    data_dir: Path
    port: int
    as_postgres_user: bool
    # None: trust on loopback (the test suite). A password: scram-sha-256 for every connection,
    # as a deployed server would have (the native deployment test).
    password: str | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        login = f"postgres:{self.password}" if self.password else "postgres"
        return f"postgresql+psycopg2://{login}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database on this server; returns its SQLAlchemy URL."""
        import sqlalchemy as sa

        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        return self.url(name)

    def start(self) -> None:
        auth = ["-A", "trust"]
        if self.password:
            password_file = self.data_dir / "superuser-password"
            password_file.write_text(self.password + "\n")
            if self.as_postgres_user:
                shutil.chown(password_file, "postgres", "postgres")
            auth = ["-A", "scram-sha-256", "--pwfile", str(password_file)]
        self._run(
            "initdb", "-D", str(self.data_dir / "data"), "-U", "postgres", *auth,
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server on its existing data directory."""
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir / "data"),
            "-o",
            options,
            "-l",
            str(self.data_dir / "server.log"),
            "-w",
            "start",
        )

    def pause(self) -> None:
        """Stop cleanly and keep the data directory (to copy it, then `resume`)."""
        self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start_server(password: str | None = None, *, data_from: Path | None = None) -> PgServer:
    """Start a server on a free loopback port; with `password`, connections need it. With
    `data_from` (a data directory a paused server left, see `PgServer.pause`), the server runs on
    a copy of that data instead of a new cluster."""
    bin_dir = find_pg_bin()
    data_dir = Path(tempfile.mkdtemp(prefix="ccg-pg-"))
    as_root = os.geteuid() == 0
    server = PgServer(bin_dir, data_dir, _free_port(), as_root, password)
    try:
        if data_from is not None:
            copy_data_directory(data_from, data_dir / "data")
        if as_root:
            _give_to_postgres(data_dir)
        server.start() if data_from is None else server.resume()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise PostgresUnavailable(f"PostgreSQL did not start: {exc.stderr.strip()[-500:]}") from exc
    return server


def copy_data_directory(source: Path, target: Path) -> None:
    """Copy a stopped server's data directory; PostgreSQL wants it private to its owner."""
    shutil.copytree(source, target, symlinks=True)
    target.chmod(0o700)
    if os.geteuid() == 0:
        _give_to_postgres(target)


def _give_to_postgres(folder: Path) -> None:
    shutil.chown(folder, "postgres", "postgres")
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), "postgres", "postgres")

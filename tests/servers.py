"""Throw-away MariaDB servers for tests, the demo and benchmarks.

Each server gets its own datadir, tmpdir, socket and free TCP port under one temp directory, and is
stopped (and its directory removed) by `stop()`. Users are created the way a lab would: an admin on
each server; on a source server a link user (SELECT and REFERENCES on the source schema, all privileges
on the outbound schema) and a regular user with no privilege on the outbound schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary(name: str) -> str:
    for folder in ("", "/usr/sbin/", "/usr/bin/"):
        path = shutil.which(folder + name) if folder == "" else folder + name
        if path and os.path.exists(path):
            return path
    raise RuntimeError(f"{name} not found: run `make system-deps` (installs mariadb-server from apt)")


@dataclass
class MariaDBServer:
    """One running mariadbd with an admin user; `host`/`port` reach it over TCP."""

    name: str
    directory: Path
    port: int
    max_allowed_packet: str
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"
    admin_user: str = ADMIN_USER
    admin_password: str = ADMIN_PASSWORD
    defaults: bool = False  # MariaDB's own settings (latin1, durable commits): no test-friendly ones
    _users: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> MariaDBServer:
        datadir = self.directory / "data"
        tmpdir = self.directory / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [_binary("mariadb-install-db"), "--no-defaults", "--user=root", f"--datadir={datadir}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        log = open(self.directory / "server.log", "wb")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [_binary("mariadbd"), "--no-defaults", "--user=root", f"--datadir={datadir}",
             f"--tmpdir={tmpdir}", f"--port={self.port}", f"--socket={self.directory / 'mysqld.sock'}",
             "--bind-address=127.0.0.1", "--skip-name-resolve", "--log-error=" + str(self.directory / "error.log"),
             *([] if self.defaults else [
                 f"--max-allowed-packet={self.max_allowed_packet}", "--character-set-server=utf8mb4",
                 "--collation-server=utf8mb4_general_ci", "--innodb-buffer-pool-size=128M",
                 "--innodb-flush-log-at-trx-commit=2", "--group-concat-max-len=1073741824"])],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = pymysql.connect(host=self.host, port=self.port, user="root", password="")
                break
            except pymysql.err.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"MariaDB {self.name} did not start; see {self.directory / 'error.log'}"
                    ) from None
                time.sleep(0.1)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE USER '{ADMIN_USER}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'")
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION")
        connection.close()
        return self

    def connect(self, user: str | None = None, password: str | None = None, **kwargs: object) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host, port=self.port, user=user or self.admin_user,
            password=self.admin_password if password is None else password,
            autocommit=True, charset="utf8mb4", **kwargs,  # type: ignore[arg-type]
        )

    def execute(self, *statements: str) -> None:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def query(self, statement: str, args: object = None) -> list[tuple[object, ...]]:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def create_user(self, user: str, password: str, *grants: str) -> None:
        """Create `user` with each grant, e.g. "SELECT, REFERENCES ON `lab`.*"."""
        statements = [f"DROP USER IF EXISTS '{user}'@'%'", f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"]
        statements += [f"GRANT {grant} TO '{user}'@'%'" for grant in grants]
        self.execute(*statements)
        self._users.append(user)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class LinkUsers:
    """The users a lab creates on its source server for a link."""

    link_user: str = "link_user"
    link_password: str = "link-secret"
    regular_user: str = "scientist"
    regular_password: str = "scientist-secret"


def create_link_users(source: MariaDBServer, source_schema: str, outbound_schema: str,
                      users: LinkUsers | None = None) -> LinkUsers:
    """Create the least-privilege link user and a regular source user on `source`."""
    users = users or LinkUsers()
    source.create_user(users.link_user, users.link_password,
                       f"SELECT, REFERENCES ON `{source_schema}`.*", f"ALL PRIVILEGES ON `{outbound_schema}`.*")
    source.create_user(users.regular_user, users.regular_password,
                       f"ALL PRIVILEGES ON `{source_schema}`.*")
    return users


@dataclass
class S3Server:
    """A moto S3 server that checks credentials: `access_key`/`secret_key` belong to an IAM user allowed
    everything; any other key is refused (SignatureDoesNotMatch / InvalidAccessKeyId)."""

    port: int
    process: subprocess.Popen[bytes]
    access_key: str = ""
    secret_key: str = field(default="", repr=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1")

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def s3_server(directory: Path, authenticate: bool = True) -> Iterator[S3Server]:
    """Start moto_server on a free port; the first three requests (made here) create the IAM user.
    `authenticate=False`: moto checks no signature (any key works). moto 5.2.5 refuses authenticated requests
    for object keys holding `=` or `+` (SignatureDoesNotMatch), which DataJoint 2.x's schema-addressed paths
    (`recording=1/...`) hold; real S3 takes them."""
    import boto3

    candidates = [Path(sys.executable).parent / "moto_server", Path(__file__).resolve().parents[1] / ".venv" / "bin"
                  / "moto_server"]  # the 2.x environment runs the 0.14 environment's moto
    executable = shutil.which("moto_server") or str(next((c for c in candidates if c.exists()), candidates[0]))
    port = free_port()
    log = open(directory / "moto.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                               env=dict({k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"},
                                        **({"INITIAL_NO_AUTH_ACTION_COUNT": "3"} if authenticate else {})))
    server = S3Server(port, process)
    try:
        deadline = time.monotonic() + 30
        while True:  # a TCP connect, not a request: requests before the IAM setup would use up the count
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start; see {directory / 'moto.log'}") from None
                time.sleep(0.1)
        if not authenticate:
            server.access_key, server.secret_key = "lab", "any"
            yield server
            return
        iam = boto3.client("iam", endpoint_url=f"http://{server.endpoint}", aws_access_key_id="setup",
                           aws_secret_access_key="setup", region_name="us-east-1")
        iam.create_user(UserName="lab")
        key = iam.create_access_key(UserName="lab")["AccessKey"]
        iam.put_user_policy(UserName="lab", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        server.access_key, server.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def mariadb_servers(count: int = 2, max_allowed_packet: str = "1G",
                    names: tuple[str, ...] = ("source", "local", "other", "fourth"),
                    defaults: bool = False) -> Iterator[list[MariaDBServer]]:
    """Start `count` MariaDB servers under one temp dir; stop them and remove it on exit. `defaults`: with
    MariaDB's own settings (`max_allowed_packet` ignored)."""
    root = Path(tempfile.mkdtemp(prefix="djshare-servers-"))
    servers: list[MariaDBServer] = []
    try:
        for index in range(count):
            directory = root / names[index]
            directory.mkdir()
            servers.append(MariaDBServer(names[index], directory, free_port(), max_allowed_packet,
                                         defaults=defaults).start())
        yield servers
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _pg_binary(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} not found: run `make system-deps` (installs postgresql from apt)")


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    """One running PostgreSQL with an admin role (password over TCP, scram-sha-256) and database `lab`."""

    directory: Path
    port: int
    host: str = "127.0.0.1"
    admin_user: str = ADMIN_USER
    admin_password: str = ADMIN_PASSWORD
    database: str = "lab"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> PostgresServer:
        data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(_as_postgres([_pg_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                                     "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        subprocess.run(_as_postgres([_pg_binary("pg_ctl"), "-D", str(data), "-l", str(self.directory / "server.log"),
                                     "-w", "-t", "60", "-o", f"-p {self.port} -k {self.directory} "
                                     f"-c listen_addresses={self.host} -c fsync=off", "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        psql = _as_postgres([_pg_binary("psql"), "-h", str(self.directory), "-p", str(self.port), "-U", "postgres",
                             "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres", "-c"])
        subprocess.run([*psql, f"CREATE ROLE {self.admin_user} LOGIN SUPERUSER PASSWORD '{self.admin_password}'"],
                       check=True, capture_output=True)
        subprocess.run([*psql, f"CREATE DATABASE {self.database} OWNER {self.admin_user}"], check=True,
                       capture_output=True)
        return self

    def connect(self, user: str | None = None, password: str | None = None) -> Any:
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=user or self.admin_user,
                               password=self.admin_password if password is None else password,
                               dbname=self.database, autocommit=True)

    def execute(self, *statements: str) -> None:
        with contextlib.closing(self.connect()) as connection:
            for statement in statements:
                connection.execute(statement)

    def query(self, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect()) as connection:
            return list(connection.execute(statement, args).fetchall())

    def stop(self) -> None:
        subprocess.run(_as_postgres([_pg_binary("pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w",
                                     "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL on a free port in its own temp dir; stop it and remove the dir on exit."""
    root = Path(tempfile.mkdtemp(prefix="djshare-pg-"))
    root.chmod(0o755)  # the postgres user must reach its directory inside
    (root / "pg").mkdir()
    server = PostgresServer(root / "pg", free_port())
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

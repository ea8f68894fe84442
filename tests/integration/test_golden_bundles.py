"""Bundles written by djshare stay readable: one bundle of each format (`djshare-bundle/1` from MariaDB,
`djshare-pg-bundle/1` from PostgreSQL), written once by the djshare of 2026-12-03 and kept in tests/golden/bundles/,
restores and verifies with today's code and holds the rows it was written from. Characterization for the export
engine that will read both (issue 14); DJSHARE_GOLDEN=update writes them again (only after a deliberate change).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from djshare.export import pg as pg_export
from djshare.export import tables as maria_export
from djshare.sql.connection import ServerAddress
from tests.servers import MariaDBServer, PostgresServer, postgres_server

BUNDLES = Path(__file__).resolve().parents[1] / "golden" / "bundles"
SCHEMA = "golden_lab"
# subject (key, weight), session (subject, session, note, data): quotes, backslashes, non-UTF-8 bytes, NULL
SUBJECTS = [("m1", 20.5), ("é'q", 0.25)]
SESSIONS = [("m1", 1, "it's \\ fine", b"\x00\xff\xfe raw"), ("m1", 2, None, b""), ("é'q", 1, "ünï", b"\x80" * 300)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def maria_address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


def pg_address(server: PostgresServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password, backend="postgresql",
                         database=server.database)


def fill_mariadb(server: MariaDBServer) -> None:
    server.execute(f"DROP DATABASE IF EXISTS `{SCHEMA}`", f"CREATE DATABASE `{SCHEMA}`",
                   f"CREATE TABLE `{SCHEMA}`.`subject` (subject varchar(16) NOT NULL, weight double NOT NULL, "
                   "PRIMARY KEY (subject)) COMMENT 'a subject'",
                   f"CREATE TABLE `{SCHEMA}`.`session` (subject varchar(16) NOT NULL, session int NOT NULL, "
                   "note varchar(64) DEFAULT NULL COMMENT 'free text', data longblob NOT NULL, "
                   f"PRIMARY KEY (subject, session), FOREIGN KEY (subject) REFERENCES `{SCHEMA}`.`subject` (subject))")
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO `{SCHEMA}`.`subject` VALUES (%s, %s)", SUBJECTS)
        cursor.executemany(f"INSERT INTO `{SCHEMA}`.`session` VALUES (%s, %s, %s, %s)", SESSIONS)
        connection.commit()


def fill_postgres(server: PostgresServer) -> None:
    server.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE', f'CREATE SCHEMA "{SCHEMA}"',
                   f'CREATE TABLE "{SCHEMA}".subject (subject varchar(16) NOT NULL, weight double precision NOT NULL, '
                   "PRIMARY KEY (subject))",
                   f'CREATE TABLE "{SCHEMA}".session (subject varchar(16) NOT NULL, session integer NOT NULL, '
                   "note varchar(64), data bytea NOT NULL, PRIMARY KEY (subject, session), "
                   f'FOREIGN KEY (subject) REFERENCES "{SCHEMA}".subject (subject))')
    with server.connect() as connection:
        with connection.cursor() as cursor:
            cursor.executemany(f'INSERT INTO "{SCHEMA}".subject VALUES (%s, %s)', SUBJECTS)
            cursor.executemany(f'INSERT INTO "{SCHEMA}".session VALUES (%s, %s, %s, %s)', SESSIONS)
        connection.commit()


def rows(server: Any, postgres: bool) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    q = '"' if postgres else "`"
    subjects = server.query(f"SELECT subject, weight FROM {q}{SCHEMA}{q}.{q}subject{q}")
    sessions = server.query(f"SELECT subject, session, note, data FROM {q}{SCHEMA}{q}.{q}session{q}")
    return ([tuple(r) for r in subjects], sorted((s, n, note, bytes(data)) for s, n, note, data in sessions))


def write_again(servers: list[MariaDBServer], postgres: PostgresServer) -> None:
    """What DJSHARE_GOLDEN=update does: write both bundles from the rows above with today's djshare."""
    shutil.rmtree(BUNDLES, ignore_errors=True)
    BUNDLES.mkdir(parents=True)
    fill_mariadb(servers[0])
    maria_export.write(maria_address(servers[0]), [(f"{SCHEMA}.session", "")], BUNDLES / "mariadb", progress=False)
    fill_postgres(postgres)
    pg_export.write(pg_address(postgres), [(f"{SCHEMA}.session", "")], BUNDLES / "postgresql", progress=False)


@pytest.fixture(scope="module")
def bundles(servers: list[MariaDBServer], postgres: PostgresServer) -> Path:
    if os.environ.get("DJSHARE_GOLDEN") == "update":
        write_again(servers, postgres)
    assert (BUNDLES / "mariadb" / "manifest.json").exists(), f"{BUNDLES} is missing its bundles"
    return BUNDLES


def expected() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (sorted(SUBJECTS), sorted(SESSIONS))


def test_a_mariadb_bundle_of_today_restores_and_verifies(bundles: Path, servers: list[MariaDBServer]) -> None:
    target = servers[2]
    target.execute(f"DROP DATABASE IF EXISTS `{SCHEMA}`")
    entries = maria_export.restore(bundles / "mariadb", maria_address(target), progress=False)
    assert {(e.table, e.rows) for e in entries} == {("subject", 2), ("session", 3)}
    assert maria_export.verify(bundles / "mariadb", maria_address(target)).problems == []
    found = rows(target, postgres=False)
    assert (sorted(found[0]), sorted(found[1])) == expected()


def test_a_postgresql_bundle_of_today_restores_and_verifies(bundles: Path, postgres: PostgresServer) -> None:
    postgres.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    entries = pg_export.restore(bundles / "postgresql", pg_address(postgres), progress=False)
    assert {(e.table, e.rows) for e in entries} == {("subject", 2), ("session", 3)}
    assert pg_export.verify(bundles / "postgresql", pg_address(postgres)).problems == []
    found = rows(postgres, postgres=True)
    assert (sorted(found[0]), sorted(found[1])) == expected()

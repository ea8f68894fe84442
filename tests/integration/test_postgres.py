"""PostgreSQL as a diff side, against a real PostgreSQL 15 and a real MariaDB: the same table on both
backends compares equal, and every difference is found exactly (a byte of bytea, NULL against a value, a
float32 step, rows at both key edges, keys whose order differs between a case-insensitive collation and
bytes); CSV against PostgreSQL; clear errors for a wrong password and an unknown table."""

from __future__ import annotations

import datetime
import decimal
import itertools
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from djshare.errors import AuthenticationError, UnknownTableError
from djshare.sql.connection import ServerAddress
from djshare.sync.actions import Action
from djshare.sync.diff import compare
from djshare.sync.sources import Rows, Table, csv_file
from tests.servers import MariaDBServer, PostgresServer, postgres_server

_names = itertools.count()
NAMES = ["a", "B", "é", "Z"]  # case-insensitive order: a B é Z; byte (and Python) order: B Z a é


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def pg_address(server: PostgresServer, password: str | None = None) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, password or server.admin_password,
                         backend="postgresql", database=server.database)


def maria_address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


def rows() -> list[tuple[Any, ...]]:
    out = []
    for i in range(40):
        for name in NAMES:
            out.append((i, name, datetime.date(2024, 1, 1) + datetime.timedelta(days=i), 0.1 * i, i / 3,
                        decimal.Decimal(i) / 4, bytes([i, 255 - i, 0, 39]) * (i % 3), None if i % 4 else f"n{i}"))
    return out


@pytest.fixture
def twins(servers: list[MariaDBServer],
          postgres: PostgresServer) -> Iterator[tuple[MariaDBServer, PostgresServer, str]]:
    schema = f"twin{next(_names)}"
    maria = servers[0]
    maria.execute(f"CREATE DATABASE `{schema}`",
                  f"CREATE TABLE `{schema}`.`t` (`id` int NOT NULL, `name` varchar(20) NOT NULL, `day` date NOT NULL, "
                  "`ratio` float NOT NULL, `score` double NOT NULL, `amount` decimal(8,2) NOT NULL, "
                  "`payload` longblob, `note` varchar(30) NULL, PRIMARY KEY (`id`, `name`)) COLLATE utf8mb4_general_ci")
    postgres.execute(f"CREATE SCHEMA {schema}",
                     f"CREATE TABLE {schema}.t (id integer NOT NULL, name varchar(20) NOT NULL, day date NOT NULL, "
                     "ratio real NOT NULL, score double precision NOT NULL, amount numeric(8,2) NOT NULL, "
                     "payload bytea, note varchar(30), PRIMARY KEY (id, name))")
    with maria.connect() as connection, connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO `{schema}`.`t` VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows())
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {schema}.t VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows())
    yield maria, postgres, schema
    maria.execute(f"DROP DATABASE `{schema}`")
    postgres.execute(f"DROP SCHEMA {schema} CASCADE")


def run(left: Any, right: Any) -> list[Action]:
    return list(compare(left, right, "t"))


def test_the_same_table_on_both_backends_compares_equal(twins: tuple[MariaDBServer, PostgresServer, str]) -> None:
    maria, postgres, schema = twins
    ours, theirs = Table(maria_address(maria), schema, "t"), Table(pg_address(postgres), schema, "t")
    assert run(ours, theirs) == [] and run(theirs, ours) == []
    assert run(theirs, Table(pg_address(postgres), schema, "t", "id < 10")) != []


def test_every_difference_between_backends_is_found(twins: tuple[MariaDBServer, PostgresServer, str]) -> None:
    maria, postgres, schema = twins
    next_float32 = struct.unpack("f", struct.pack("I", struct.unpack("I", struct.pack("f", 0.1 * 7))[0] + 1))[0]
    postgres.execute(
        f"UPDATE {schema}.t SET payload = set_byte(payload, 2, 1) WHERE id = 5 AND name = 'é'",
        f"UPDATE {schema}.t SET note = NULL WHERE id = 8 AND name = 'B'",
        f"UPDATE {schema}.t SET ratio = {next_float32!r} WHERE id = 7 AND name = 'Z'",
        f"DELETE FROM {schema}.t WHERE id = 0 AND name = 'B'",
        f"INSERT INTO {schema}.t VALUES (99, 'Zz', '2025-01-01', 1, 2, 3, NULL, NULL)")
    actions = run(Table(maria_address(maria), schema, "t"), Table(pg_address(postgres), schema, "t"))
    assert [(a.kind, a.key, sorted(a.changes)) for a in actions] == [
        ("added", {"id": 0, "name": "B"}, []),
        ("changed", {"id": 5, "name": "é"}, ["payload"]),
        ("changed", {"id": 7, "name": "Z"}, ["ratio"]),
        ("changed", {"id": 8, "name": "B"}, ["note"]),
        ("removed", {"id": 99, "name": "Zz"}, []),
    ]
    assert actions[1].text().splitlines()[1].startswith("    payload: <8 bytes md5 ")


def test_csv_and_rows_against_postgres(twins: tuple[MariaDBServer, PostgresServer, str], tmp_path: Path) -> None:
    _, postgres, schema = twins
    postgres.execute(f"CREATE TABLE {schema}.s (code text PRIMARY KEY, born date, n integer)",
                     f"INSERT INTO {schema}.s VALUES ('b', '2001-02-03', 1), ('A', NULL, 2), ('c', NULL, NULL)")
    (tmp_path / "s.csv").write_text("code,born,n\nA,,2\nb,2001-02-03,10\nd,,\n")
    actions = run(csv_file(tmp_path / "s.csv", ["code"]), Table(pg_address(postgres), schema, "s"))
    assert [(a.kind, a.key, a.changes) for a in actions] == [
        ("changed", {"code": "b"}, {"n": (10, 1)}), ("removed", {"code": "c"}, {}), ("added", {"code": "d"}, {})]
    assert run(Rows([{"code": "A", "born": None, "n": 2}], ("code",)),
               Table(pg_address(postgres), schema, "s", "n = 2")) == []


def test_wrong_password_and_unknown_table_are_clear(postgres: PostgresServer) -> None:
    with pytest.raises(AuthenticationError, match="wrong user name or password") as caught:
        run(Table(pg_address(postgres, "not-it"), "public", "t"), Rows([], ("id",)))
    assert "not-it" not in str(caught.value)
    with pytest.raises(UnknownTableError, match="No table public.nope"):
        run(Table(pg_address(postgres), "public", "nope"), Rows([], ("id",)))


def test_diff_a_postgres_table_from_the_command_line(twins: tuple[MariaDBServer, PostgresServer, str]) -> None:
    import os
    import subprocess
    import sys

    maria, postgres, schema = twins
    postgres.execute(f"DELETE FROM {schema}.t WHERE id = 3")
    env = dict(os.environ, DJSHARE_LEFT_USER=maria.admin_user, DJSHARE_LEFT_PASS=maria.admin_password,
               DJSHARE_RIGHT_USER=postgres.admin_user, DJSHARE_RIGHT_PASS=postgres.admin_password)
    right = f"postgresql://{postgres.address}/{postgres.database}/{schema}.t"
    done = subprocess.run([sys.executable, "-m", "djshare", "diff", f"{maria.address}/{schema}.t", right, "--counts"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout.strip() == "4 added, 0 removed, 0 changed", done.stderr
    bad = subprocess.run([sys.executable, "-m", "djshare", "diff", f"{maria.address}/{schema}.t",
                          f"postgresql://{postgres.address}/{schema}.t"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "postgresql://HOST[:PORT]/DATABASE/SCHEMA.TABLE" in bad.stderr


PG_KEYS = {  # (column definitions, key columns, SQL making the key from `seq`)
    "int": ("id integer NOT NULL", "id", "seq"),
    "varchar": ("name varchar(40) NOT NULL", "name",
                "CASE seq % 3 WHEN 0 THEN 'B' WHEN 1 THEN 'a' ELSE 'é' END || lpad(seq::text, 5, '0') || ' ''q'''"),
    "mixed": ("a integer NOT NULL, b varchar(20) NOT NULL, c date NOT NULL", "a, b, c",
              "seq % 7, 'n' || lpad((seq / 7)::text, 5, '0'), DATE '2021-06-01' + (seq % 3)"),
}


@pytest.fixture(scope="module")
def postgres_pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    with postgres_server() as one, postgres_server() as two:
        yield one, two


@pytest.mark.parametrize("key", sorted(PG_KEYS))
def test_two_postgres_tables_are_compared_inside_the_servers(
        postgres_pair: tuple[PostgresServer, PostgresServer], key: str) -> None:
    from djshare.sync.sql_side import TableSide

    left, right = postgres_pair
    columns, names, value = PG_KEYS[key]
    schema = f"pgdiff_{key}"
    for server in (left, right):
        server.execute(f"CREATE SCHEMA {schema}",
                       f"CREATE TABLE {schema}.t ({columns}, payload bytea, note varchar(50), ratio real NOT NULL, "
                       f"score double precision NOT NULL, PRIMARY KEY ({names}))",
                       f"INSERT INTO {schema}.t SELECT {value}, decode(md5(seq::text), 'hex'), CASE WHEN seq % 5 = 0 "
                       "THEN NULL ELSE 'n' || seq END, seq / 7.0, seq / 3.0 FROM generate_series(0, 2999) AS seq")

    def nth(n: int) -> str:
        return (f"({names}) = (SELECT {names} FROM {schema}.t ORDER BY "
                + ", ".join(f"{c.strip()} COLLATE \"C\"" if "name" in c or c.strip() == "b" else c.strip()
                            for c in names.split(",")) + f" LIMIT 1 OFFSET {n})")

    right.execute(f"UPDATE {schema}.t SET payload = set_byte(payload, 15, get_byte(payload, 15) # 1) WHERE {nth(1234)}",
                  f"UPDATE {schema}.t SET note = CASE WHEN note IS NULL THEN 'x' END WHERE {nth(2001)}",
                  f"UPDATE {schema}.t SET score = score * (1 + 1e-15) WHERE {nth(2500)}",
                  f"DELETE FROM {schema}.t WHERE {nth(0)}")
    left.execute(f"DELETE FROM {schema}.t WHERE {nth(2999)}")
    ours, theirs = (Table(pg_address(server), schema, "t") for server in (left, right))
    actions = list(compare(ours, theirs, "t"))
    kinds = sorted((a.kind, tuple(sorted(a.changes))) for a in actions)
    assert kinds == [("added", ()), ("changed", ("note",)), ("changed", ("payload",)), ("changed", ("score",)),
                     ("removed", ())], actions
    from djshare.sql.postgres import read_table, session
    from djshare.sync.diff import diff
    from djshare.sync.sql_side import PostgreSQL

    with session(pg_address(left)) as a, session(pg_address(right)) as b:  # and it reads few rows doing so
        sides = [TableSide(pg, read_table(pg, schema, "t"), "", PostgreSQL()) for pg in (a, b)]
        assert len(list(diff(*sides, branch="t", parts=16, leaf_rows=64))) == 5
        assert sides[0].rows_read + sides[1].rows_read < 3000 * 0.1
    for server in (left, right):
        server.execute(f"DROP SCHEMA {schema} CASCADE")


def test_postgres_values_that_run_together_are_still_different_rows(
        postgres_pair: tuple[PostgresServer, PostgresServer]) -> None:
    from djshare.sql.postgres import read_table, session
    from djshare.sync.diff import diff
    from djshare.sync.sql_side import PostgreSQL, TableSide

    left, right = postgres_pair
    for server in (left, right):
        server.execute("CREATE SCHEMA together", "CREATE TABLE together.t (id integer PRIMARY KEY, s varchar(10), "
                       "u text, n integer, m double precision, b bytea)")
    left.execute("INSERT INTO together.t VALUES (1, 'ab', 'c', 1, 2, '\\x01'), (2, NULL, '', NULL, 0, NULL), "
                 "(3, '1:', 'x', 12, 3, '\\x3a'), (4, 'N', '-', 0, NULL, '')")
    right.execute("INSERT INTO together.t VALUES (1, 'a', 'bc', 1, 2, '\\x01'), (2, '', NULL, 0, 0, NULL), "
                  "(3, '1', ':x', 1, 23, '\\x3a'), (4, NULL, NULL, NULL, 0, NULL)")
    with session(pg_address(left)) as a, session(pg_address(right)) as b:
        sides = [TableSide(pg, read_table(pg, "together", "t"), "", PostgreSQL()) for pg in (a, b)]
        actions = list(diff(*sides, branch="t", parts=2, leaf_rows=1))
    assert {a.key["id"]: sorted(a.changes) for a in actions} == {1: ["s", "u"], 2: ["n", "s", "u"],
                                                                  3: ["m", "n", "s", "u"], 4: ["b", "m", "n", "s", "u"]}
    for server in (left, right):
        server.execute("DROP SCHEMA together CASCADE")


def test_apply_to_postgres_tables_in_foreign_key_order(twins: tuple[MariaDBServer, PostgresServer, str]) -> None:
    from djshare.sync.datastore import Datastore, sync
    from djshare.sync.handlers import ApplyToTables

    maria, postgres, schema = twins
    maria.execute(f"CREATE TABLE `{schema}`.`owner` (`who` varchar(10) PRIMARY KEY)",
                  f"CREATE TABLE `{schema}`.`pet` (`who` varchar(10), `pet` int, `kind` varchar(10) NULL, "
                  f"PRIMARY KEY (`who`, `pet`), FOREIGN KEY (`who`) REFERENCES `{schema}`.`owner` (`who`))",
                  f"INSERT INTO `{schema}`.`owner` VALUES ('ann'), ('cy')",
                  f"INSERT INTO `{schema}`.`pet` VALUES ('ann', 1, 'cat'), ('cy', 1, NULL)")
    postgres.execute(f"CREATE TABLE {schema}.owner (who varchar(10) PRIMARY KEY)",
                     f"CREATE TABLE {schema}.pet (who varchar(10) REFERENCES {schema}.owner (who), pet int, "
                     "kind varchar(10), PRIMARY KEY (who, pet))",
                     f"INSERT INTO {schema}.owner VALUES ('ann'), ('bo')",
                     f"INSERT INTO {schema}.pet VALUES ('ann', 1, 'dog'), ('bo', 1, 'fish')")
    postgres.execute(f"UPDATE {schema}.t SET payload = NULL WHERE id = 3", f"DELETE FROM {schema}.t WHERE id = 4")

    def store(address: ServerAddress) -> dict[str, Table]:
        return {name: Table(address, schema, name) for name in ("pet", "owner", "t")}

    need = Datastore(store(maria_address(maria)))
    tables = store(pg_address(postgres))
    said: list[str] = []
    dry = sync(need, Datastore(tables), ApplyToTables(tables, dry_run=True, say=said.append))
    assert dry == {"added": 2 + len(NAMES), "removed": 2, "changed": 1 + len(NAMES)}
    assert said[:2] == [f'would delete 1 rows from "{schema}"."pet"', f'would delete 1 rows from "{schema}"."owner"']
    assert {a.kind for a in Datastore(tables) - need} == {"added", "removed", "changed"}  # nothing applied yet
    sync(need, Datastore(tables), ApplyToTables(tables, say=said.append))
    assert list(need - Datastore(tables)) == []  # blobs, floats, dates, decimals: all equal now


def test_a_postgres_query_is_a_diff_side(twins: tuple[MariaDBServer, PostgresServer, str]) -> None:
    from djshare.errors import DjshareError
    from djshare.sync.sources import Query

    maria, postgres, schema = twins
    query = Query(pg_address(postgres), f"SELECT id, name, note FROM {schema}.t WHERE id < 5", ("id", "name"))
    theirs = Query(maria_address(maria), f"SELECT id, name, note FROM `{schema}`.t WHERE id < 6", ("id", "name"))
    actions = run(query, theirs)
    assert [(a.kind, a.key) for a in actions] == [("removed", {"id": 5, "name": n}) for n in sorted(NAMES)]
    with pytest.raises(DjshareError, match="The query has no column nope"):
        run(Query(pg_address(postgres), f"SELECT id FROM {schema}.t", ("nope",)), Rows([], ("nope",)))
    with pytest.raises(DjshareError, match="rejected the query"):
        run(Query(pg_address(postgres), "SELEC 1", ("id",)), Rows([], ("id",)))

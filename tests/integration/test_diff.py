"""The diff engine between two real MariaDB servers: key types, one-byte blob changes, NULLs, floats,
rows only on one side at range edges, empty tables; exact actions and few rows transferred."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from djshare.sql.catalog import read_table
from djshare.sql.connection import ServerAddress, Session
from djshare.sync.actions import Action, counts
from djshare.sync.diff import diff
from djshare.sync.sql_side import TableSide
from tests.servers import MariaDBServer

_names = itertools.count()

KEYS = {  # (column definitions, key columns, SQL making the key from `seq`)
    "int": ("`id` int NOT NULL", "`id`", "seq"),
    "varchar": ("`name` varchar(40) NOT NULL", "`name`", "CONCAT('k', LPAD(seq, 5, '0'), ' ''q'' $x')"),
    "date": ("`day` date NOT NULL", "`day`", "'2020-01-01' + INTERVAL seq DAY"),
    "mixed": ("`a` int NOT NULL, `b` varchar(20) NOT NULL, `c` date NOT NULL", "`a`, `b`, `c`",
              "seq % 7, CONCAT('n', LPAD(seq DIV 7, 5, '0')), '2021-06-01' + INTERVAL seq % 3 DAY"),
}


def session(server: MariaDBServer) -> Session:
    return Session(ServerAddress(server.host, server.port, server.admin_user, server.admin_password))


@pytest.fixture
def pair(servers: list[MariaDBServer]) -> Iterator[tuple[MariaDBServer, MariaDBServer, str]]:
    schema = f"diff{next(_names)}"
    for server in servers[:2]:
        server.execute(f"CREATE DATABASE `{schema}`")
    yield servers[0], servers[1], schema
    for server in servers[:2]:
        server.execute(f"DROP DATABASE `{schema}`")


def make(servers: tuple[MariaDBServer, MariaDBServer], schema: str, key: str, rows: int) -> None:
    columns, names, value = KEYS[key]
    for server in servers:
        server.execute(f"CREATE TABLE `{schema}`.`t` ({columns}, `payload` longblob, `note` varchar(50) NULL, "
                       f"`ratio` float NOT NULL, `score` double NOT NULL, PRIMARY KEY ({names}))")
        if rows:
            server.execute(
                f"INSERT INTO `{schema}`.`t` SELECT {value}, UNHEX(MD5(seq)), IF(seq % 5 = 0, NULL, "
                f"CONCAT('n', seq)), seq / 7, seq / 3 FROM `{schema}`.seq_0_to_{rows - 1}")


def run(left: MariaDBServer, right: MariaDBServer, schema: str, **kwargs: Any) -> tuple[list[Action], int]:
    with session(left) as a, session(right) as b:
        sides = TableSide(a, read_table(a, schema, "t")), TableSide(b, read_table(b, schema, "t"))
        actions = list(diff(*sides, branch="t", **kwargs))
        return actions, sides[0].rows_read + sides[1].rows_read


@pytest.mark.parametrize("key", sorted(KEYS))
def test_exact_differences_for_every_key_type(pair: tuple[MariaDBServer, MariaDBServer, str], key: str) -> None:
    left, right, schema = pair
    make((left, right), schema, key, 5000)
    _, names, _ = KEYS[key]
    first, last = (right.query(f"SELECT {names} FROM `{schema}`.`t` ORDER BY "
                               + ", ".join(f"{n} {order}" for n in names.split(", ")) + " LIMIT 1")[0]
                   for order in ("ASC", "DESC"))
    where = lambda row: " AND ".join(f"{n} = %s" for n in names.split(", "))  # noqa: E731

    def update_nth(n: int, change: str, condition: str = "TRUE") -> None:
        right.execute(f"UPDATE `{schema}`.`t` SET {change} WHERE ({names}) IN (SELECT * FROM (SELECT {names} FROM "
                      f"`{schema}`.`t` WHERE {condition} ORDER BY {names} LIMIT 1 OFFSET {n}) AS x)")

    update_nth(1234, "payload = CONCAT(LEFT(payload, 15), CHAR(ASCII(RIGHT(payload, 1)) ^ 1))")  # one byte, one blob
    update_nth(2000, "note = NULL", "note IS NOT NULL")
    update_nth(3000, "ratio = ratio * 1.001")
    with session(right) as s:
        s.execute(f"DELETE FROM `{schema}`.`t` WHERE {where(first)}", first)  # only on the left, at the low edge
    with session(left) as s:
        s.execute(f"DELETE FROM `{schema}`.`t` WHERE {where(last)}", last)  # only on the right, at the high edge
    actions, transferred = run(left, right, schema, parts=16, leaf_rows=64)
    assert counts(actions) == {"added": 1, "removed": 1, "changed": 3}
    changed = sorted(tuple(a.changes) for a in actions if a.kind == "changed")
    assert changed == [("note",), ("payload",), ("ratio",)]
    assert transferred < 5000 * 0.1  # only small segments were read row by row
    payload = next(a for a in actions if "payload" in a.changes).changes["payload"]
    assert all(str(value).startswith("<16 bytes md5 ") for value in payload)


def test_identical_and_empty_tables(pair: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    left, right, schema = pair
    make((left, right), schema, "int", 0)
    assert run(left, right, schema)[0] == []
    left.execute(f"INSERT INTO `{schema}`.`t` VALUES (1, X'00FF', NULL, 0.5, 1.5)")
    actions, _ = run(left, right, schema)
    assert [(a.kind, a.key) for a in actions] == [("added", {"id": 1})]
    assert [(a.kind, a.key) for a in run(right, left, schema)[0]] == [("removed", {"id": 1})]


def test_float_change_of_one_ulp_is_found_and_printed(pair: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    left, right, schema = pair
    make((left, right), schema, "int", 300)
    right.execute(f"UPDATE `{schema}`.`t` SET score = score + 1e-15 * score WHERE id = 120")
    actions, _ = run(left, right, schema, leaf_rows=16, parts=4)
    assert len(actions) == 1 and set(actions[0].changes) == {"score"}
    assert actions[0].text().startswith("~ t (id=120)")
    assert '"kind": "changed"' in actions[0].json()


def test_values_that_run_together_are_still_different_rows(pair: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    """The hashed encoding is prefix-free per column: shifting bytes between columns, NULL against an empty
    string or a zero, all count as changes."""
    left, right, schema = pair
    for server in (left, right):
        server.execute(f"CREATE TABLE `{schema}`.`t` (`id` int NOT NULL PRIMARY KEY, `s` varchar(10) NULL, "
                       "`u` varchar(10) NULL, `n` int NULL, `m` double NULL, `b` varbinary(10) NULL)")
    left.execute(f"INSERT INTO `{schema}`.`t` VALUES (1, 'ab', 'c', 1, 2, X'01'), (2, NULL, '', NULL, 0, NULL), "
                 "(3, '1:', 'x', 12, 3, X'3A'), (4, 'N', '-', 0, NULL, '')")
    right.execute(f"INSERT INTO `{schema}`.`t` VALUES (1, 'a', 'bc', 1, 2, X'01'), (2, '', NULL, 0, 0, NULL), "
                  "(3, '1', ':x', 1, 23, X'3A'), (4, NULL, NULL, NULL, 0, NULL)")
    actions, _ = run(left, right, schema, leaf_rows=1, parts=2)
    assert {a.key["id"]: sorted(a.changes) for a in actions} == {1: ["s", "u"], 2: ["n", "s", "u"],
                                                                  3: ["m", "n", "s", "u"], 4: ["b", "m", "n", "s", "u"]}

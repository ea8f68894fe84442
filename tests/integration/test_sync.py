"""Diff sources other than two tables (CSV, iterables, queries, DataJoint tables) against real servers, and
applying a diff to tables: foreign-key order, one transaction, dry run."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datajoint as dj
import pytest

from djshare.errors import DjshareError
from djshare.sql.connection import ServerAddress
from djshare.sync.actions import Action, counts
from djshare.sync.datastore import Datastore, sync
from djshare.sync.diff import compare
from djshare.sync.handlers import ApplyToTables, Handler
from djshare.sync.sources import Query, Rows, Table, csv_file, datajoint
from tests.conftest import admin_connection
from tests.integration.checks import digest
from tests.servers import MariaDBServer

_names = itertools.count()
SCHOOL = [
    "CREATE TABLE `{s}`.`student` (`id` int NOT NULL, `name` varchar(40) NOT NULL, `born` date NULL, "
    "`score` float NULL, `photo` longblob NULL, PRIMARY KEY (`id`))",
    "CREATE TABLE `{s}`.`course` (`code` varchar(20) NOT NULL, `title` varchar(80) NOT NULL, PRIMARY KEY (`code`)) "
    "COLLATE utf8mb4_general_ci",
    "CREATE TABLE `{s}`.`enrollment` (`id` int NOT NULL, `code` varchar(20) NOT NULL, `grade` decimal(4,1) NULL, "
    "PRIMARY KEY (`id`, `code`), FOREIGN KEY (`id`) REFERENCES `student` (`id`), "
    "FOREIGN KEY (`code`) REFERENCES `course` (`code`))",
]
STUDENTS = "(1, 'Ann', '2001-02-03', 2.5, X'00FF10'), (2, 'Bo', NULL, NULL, NULL), (3, 'Cy', '2000-01-01', 0.1, '')"
COURSES = "('Bio101', 'Biology'), ('chem200', 'Chemistry'), ('Math1', 'Maths'), ('zoo', 'Zoo')"


def address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


@pytest.fixture
def school(servers: list[MariaDBServer]) -> Iterator[tuple[MariaDBServer, MariaDBServer, str]]:
    schema = f"school{next(_names)}"
    for server in servers[:2]:
        server.execute(f"CREATE DATABASE `{schema}`")
        for statement in SCHOOL:
            server.execute(statement.format(s=schema))
        server.execute(f"INSERT INTO `{schema}`.`student` VALUES {STUDENTS}")
        server.execute(f"INSERT INTO `{schema}`.`course` VALUES {COURSES}")
        server.execute(f"INSERT INTO `{schema}`.`enrollment` VALUES (1, 'Bio101', 1.5), (2, 'zoo', NULL)")
    yield servers[0], servers[1], schema
    for server in servers[:2]:
        server.execute(f"DROP DATABASE `{schema}`")


def summary(actions: list[Action]) -> list[tuple[str, dict[str, Any], list[str]]]:
    return [(a.kind, a.key, sorted(a.changes)) for a in actions]


def test_csv_against_a_table_in_key_order_whatever_the_collation(
        school: tuple[MariaDBServer, MariaDBServer, str], tmp_path: Path) -> None:
    _, right, schema = school
    (tmp_path / "courses.csv").write_text("code,title\nzoo,Zoo\nchem200,Chemistry II\nBio101,Biology\n"
                                          "Phys9,\"Physics, \"\"modern\"\"\"\n")
    actions = list(compare(csv_file(tmp_path / "courses.csv", ["code"]), Table(address(right), schema, "course"),
                           "course"))
    assert summary(actions) == [("removed", {"code": "Math1"}, []), ("added", {"code": "Phys9"}, []),
                                ("changed", {"code": "chem200"}, ["title"])]
    assert actions[2].changes["title"] == ("Chemistry II", "Chemistry")
    # text in the CSV is converted to the table's types: ints, dates, floats, empty as NULL
    (tmp_path / "students.csv").write_text("id,name,born,score\n3,Cy,2000-01-01,0.1\n2,Bo,,\n1,Ann,2001-02-03,2.75\n")
    actions = list(compare(csv_file(tmp_path / "students.csv", ["id"]), Table(address(right), schema, "student"),
                           "student"))
    assert summary(actions) == [("changed", {"id": 1}, ["score"])]
    assert actions[0].changes["score"] == (2.75, 2.5)


def test_csv_numeric_keys_of_different_lengths_sort_as_numbers(school: tuple[MariaDBServer, MariaDBServer, str],
                                                                 tmp_path: Path) -> None:
    """Keys are typed before they are sorted: as text "109" < "11" < "2", as numbers 2 < 11 < 109."""
    _, right, schema = school
    (tmp_path / "s.csv").write_text("id,name\n11,Bravo\n109,Émile\n2,Bo\n1,Ann\n")
    actions = list(compare(csv_file(tmp_path / "s.csv", ["id"]), Table(address(right), schema, "student"),
                           "student"))
    assert [(a.kind, a.key["id"]) for a in actions] == [("removed", 3), ("added", 11), ("added", 109)]


def test_bad_csv_or_keys_are_clear_errors(school: tuple[MariaDBServer, MariaDBServer, str], tmp_path: Path) -> None:
    _, right, schema = school
    with pytest.raises(DjshareError, match="No CSV file at"):
        csv_file(tmp_path / "nope.csv", ["id"])
    (tmp_path / "s.csv").write_text("ident,name\n1,Ann\n")
    with pytest.raises(DjshareError, match="has no column id \\(its columns: ident, name\\)"):
        csv_file(tmp_path / "s.csv", ["id"])
    with pytest.raises(DjshareError, match="different keys: \\(ident\\) on the left, \\(id\\) on the right"):
        list(compare(csv_file(tmp_path / "s.csv", ["ident"]), Table(address(right), schema, "student"), "s"))
    (tmp_path / "t.csv").write_text("id,name\n1,Ann\nseven,Bo\n")
    with pytest.raises(DjshareError, match="Value 'seven' is not a int"):
        list(compare(csv_file(tmp_path / "t.csv", ["id"]), Table(address(right), schema, "student"), "s"))


def test_iterable_against_a_table_finds_a_one_byte_blob_change(
        school: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    _, right, schema = school
    rows = [{"id": 1, "name": "Ann", "born": datetime.date(2001, 2, 3), "score": 2.5, "photo": b"\x00\xff\x11"},
            {"id": 2, "name": "Bo", "born": None, "score": None, "photo": None},
            {"id": 3, "name": "Cy", "born": datetime.date(2000, 1, 1), "score": 0.1, "photo": b""},
            {"id": 4, "name": "Di", "born": None, "score": None, "photo": None}]
    actions = list(compare(Rows(rows, ("id",)), Table(address(right), schema, "student"), "student"))
    assert summary(actions) == [("changed", {"id": 1}, ["photo"]), ("added", {"id": 4}, [])]
    assert actions[0].text().splitlines()[1].startswith("    photo: <3 bytes md5 ")
    # the other way round: the table is the left side
    assert summary(list(compare(Table(address(right), schema, "student"), Rows(rows[1:3], ("id",)), "s"))) == [
        ("added", {"id": 1}, [])]


def test_query_and_datajoint_sources(school: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    left, right, schema = school
    right.execute(f"UPDATE `{schema}`.`student` SET name = 'Bob' WHERE id = 2")
    query = Query(address(left), f"SELECT id, name FROM `{schema}`.student WHERE id >= 2", ("id",))
    assert summary(list(compare(query, Rows([{"id": 2, "name": "Bo"}], ("id",)), "s"))) == [
        ("added", {"id": 3}, [])]
    left.execute(f"UPDATE `{schema}`.`student` SET score = 29999.869140625 WHERE id = 1")  # 29999.9 as FLOAT text
    floats = Query(address(left), f"SELECT id, score FROM `{schema}`.student", ("id",))
    assert list(compare(floats, Table(address(left), schema, "student"), "student")) == []  # FLOAT read exactly
    connection = admin_connection(left)
    students = dj.FreeTable(connection, f"`{schema}`.`student`")
    side = datajoint(students & "id > 1")
    assert side.where and side.address.port == left.port
    assert summary(list(compare(side, Table(address(right), schema, "student", "id > 1"), "student"))) == [
        ("changed", {"id": 2}, ["name"])]
    with pytest.raises(DjshareError, match="is not a \\(restricted\\) table"):
        datajoint(students.proj(nom="name"))
    connection.close()


def school_store(server: MariaDBServer, schema: str, **handler: Any) -> Datastore:
    tables = {name: Table(address(server), schema, name) for name in ("enrollment", "student", "course")}
    return Datastore(tables, ApplyToTables(tables, **handler) if handler else None)


def change_left(left: MariaDBServer, schema: str) -> None:
    """A new student with an enrollment in a new course, a student removed with her enrollment, a rename."""
    left.execute(f"INSERT INTO `{schema}`.`course` VALUES ('Phys9', 'Physics')")
    left.execute(f"INSERT INTO `{schema}`.`student` VALUES (4, 'Di', NULL, 1.25, X'DEADBEEF00')")
    left.execute(f"INSERT INTO `{schema}`.`enrollment` VALUES (4, 'Phys9', 2.0)")
    left.execute(f"DELETE FROM `{schema}`.`enrollment` WHERE id = 1")
    left.execute(f"DELETE FROM `{schema}`.`student` WHERE id = 1")
    left.execute(f"UPDATE `{schema}`.`student` SET name = 'Cyrus', photo = X'01' WHERE id = 3")


def test_apply_in_foreign_key_order_with_a_dry_run(school: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    left, right, schema = school
    change_left(left, schema)
    before = {t: digest(right, schema, t) for t in ("student", "course", "enrollment")}
    said: list[str] = []
    need, have = school_store(left, schema), school_store(right, schema, dry_run=True, say=said.append)
    assert need >> have == {"added": 3, "removed": 2, "changed": 1}
    assert {t: digest(right, schema, t) for t in before} == before  # a dry run changes nothing
    enrollment, student, course = (f"`{schema}`.`{t}`" for t in ("enrollment", "student", "course"))
    assert said == [f"would delete 1 rows from {enrollment}", f"would delete 1 rows from {student}",
                    f"would insert 1 rows into {course}", f"would insert 1 rows into {student}",
                    f"would insert 1 rows into {enrollment}", f"would update 1 rows in {student}"]
    said.clear()
    have = school_store(right, schema, say=said.append)
    need >> have
    assert said[0] == f"delete 1 rows from {enrollment}"
    assert list(need - have) == []  # every byte, the new blob included
    assert {t: digest(right, schema, t) for t in before} == {t: digest(left, schema, t) for t in before}


def test_a_failing_apply_changes_nothing(school: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    left, right, schema = school
    change_left(left, schema)
    right.execute(f"CREATE TABLE `{schema}`.`locker` (`id` int NOT NULL PRIMARY KEY, "
                  f"FOREIGN KEY (`id`) REFERENCES `student` (`id`))")  # outside the datastore, holds student 1
    right.execute(f"INSERT INTO `{schema}`.`locker` VALUES (1)")
    before = {t: digest(right, schema, t) for t in ("student", "course", "enrollment")}
    with pytest.raises(DjshareError, match="foreign key"):
        school_store(left, schema) >> school_store(right, schema, say=lambda line: None)
    assert {t: digest(right, schema, t) for t in before} == before
    assert counts(school_store(left, schema) - school_store(right, schema)) == {"added": 3, "removed": 2,
                                                                              "changed": 1}


def test_applying_needs_rows_and_known_branches(school: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    left, right, schema = school
    tables = {"student": Table(address(right), schema, "student")}
    with pytest.raises(DjshareError, match="No table to apply branch 'course' to"):
        sync(Datastore({"course": Rows([{"code": "x", "title": "y"}], ("code",))}),
             Datastore({"course": Table(address(right), schema, "course")}), ApplyToTables(tables))


def test_diff_from_the_command_line(school: tuple[MariaDBServer, MariaDBServer, str], tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    left, right, schema = school
    change_left(left, schema)
    env = dict(os.environ, DJ_USER=left.admin_user, DJ_PASS=left.admin_password, DJSHARE_RIGHT_USER=right.admin_user,
               DJSHARE_RIGHT_PASS=right.admin_password, COLUMNS="200")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "diff", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    ours, theirs = f"{left.address}/{schema}.student", f"{right.address}/{schema}.student"
    shown = djshare(ours, theirs)
    assert shown.returncode == 1, shown.stderr  # as diff(1): 1 means differences
    assert shown.stdout.splitlines()[0] == "- student (id=1)" and "~ student (id=3)" in shown.stdout
    assert "    name: 'Cy' -> 'Cyrus'" in shown.stdout and "    photo: <0 bytes md5" in shown.stdout
    assert "1 added, 1 removed, 1 changed" in shown.stderr
    assert left.admin_password not in shown.stdout + shown.stderr
    hexed = djshare(ours, theirs, "--values")
    assert "    photo: 0x" in hexed.stdout and "bytes md5" not in hexed.stdout, hexed.stdout
    changed = [a for a in map(json.loads, djshare(ours, theirs, "--values", "--json").stdout.splitlines())
               if a["kind"] == "changed"]
    assert changed[0]["changes"]["photo"]["left"].startswith("0x")
    lines = [json.loads(line) for line in djshare(ours, theirs, "--json", "--where", "id > 2").stdout.splitlines()]
    assert [(a["kind"], a["key"]) for a in lines] == [("changed", {"id": 3}), ("added", {"id": 4})]
    assert json.loads(djshare(ours, theirs, "--counts", "--json").stdout) == {"added": 1, "removed": 1,
                                                                             "changed": 1}
    (tmp_path / "c.csv").write_text("code,title\nBio101,Biology\n")
    csv_side = djshare(str(tmp_path / "c.csv"), f"{right.address}/{schema}.course", "--key", "code", "--counts")
    assert csv_side.stdout.strip() == "0 added, 3 removed, 0 changed", csv_side.stderr
    dry = djshare(ours, theirs, "--apply", "table", "--dry-run", "--where", "id > 2")
    assert dry.returncode == 0 and f"would update 1 rows in `{schema}`.`student`" in dry.stdout, dry.stderr
    assert "would apply: 1 added, 0 removed, 1 changed" in dry.stderr
    assert djshare(ours, theirs, "--counts", "--where", "id > 2").stdout.strip() == "1 added, 0 removed, 1 changed"
    done = djshare(ours, theirs, "--apply", "table", "--where", "id > 2")
    assert done.returncode == 0 and "applied: 1 added, 0 removed, 1 changed" in done.stderr, done.stderr
    same = djshare(ours, theirs, "--counts", "--where", "id > 2")
    assert same.returncode == 0 and same.stdout.strip() == "0 added, 0 removed, 0 changed"
    for problem, message in [((ours, "nowhere"), "is neither HOST[:PORT]/SCHEMA.TABLE"),
                             ((ours, f"{right.address}/{schema}.nope"), "nope"),
                             ((ours, theirs, "--apply", "os:path"), "neither `table` nor MODULE:CLASS"),
                             ((str(tmp_path / "c.csv"), theirs), "name its key columns with --key")]:
        failed = djshare(*problem)
        assert failed.returncode == 2 and message in failed.stderr and "Traceback" not in failed.stderr, failed.stderr
    blocked = djshare(f"{right.address}/{schema}.course", f"{left.address}/{schema}.course", "--apply", "table")
    assert blocked.returncode == 2 and "foreign key" in blocked.stderr  # Phys9 is enrolled in on the left
    refused = djshare(ours, theirs, "--apply", "table", "--dry-run")  # a dry run runs the statements, then rolls back
    assert refused.returncode == 2 and "foreign key" in refused.stderr  # student 1 still has an enrollment there
    # into a table of another name, and a CSV file's NULL marker
    right.execute(f"CREATE TABLE `{schema}`.`student_copy` LIKE `{schema}`.`student`",
                  f"INSERT INTO `{schema}`.`student_copy` SELECT * FROM `{schema}`.`student`")
    copy = f"{right.address}/{schema}.student_copy"
    renamed = djshare(ours, copy, "--apply", "table")
    assert renamed.returncode == 0 and "applied: 0 added, 1 removed, 0 changed" in renamed.stderr, renamed.stderr
    assert djshare(ours, copy, "--counts").stdout.strip() == "0 added, 0 removed, 0 changed"
    (tmp_path / "n.csv").write_text("id,name\n2,NULL\n")
    nulls = djshare(str(tmp_path / "n.csv"), copy, "--key", "id", "--null", "NULL", "--json", "--where", "id = 2")
    assert [json.loads(line)["changes"]["name"]["left"] for line in nulls.stdout.splitlines()] == [None], nulls.stdout


class Collector(Handler):
    """A handler of one's own: a method for changed students, a fallback for the rest (loaded by --apply)."""

    def __init__(self) -> None:
        self.changed: list[dict[str, Any]] = []
        self.other: list[tuple[str, str]] = []

    def changed_student(self, action: Action) -> None:
        self.changed.append(action.key)
        print(f"changed student {action.key['id']}: {sorted(action.changes)}")

    def fallback(self, action: Action) -> None:
        self.other.append((action.kind, action.branch))
        print(f"fallback {action.kind} {action.branch}")


def test_handler_dispatch_between_two_servers(school: tuple[MariaDBServer, MariaDBServer, str]) -> None:
    import os
    import subprocess
    import sys

    left, right, schema = school
    change_left(left, schema)
    handler = Collector()
    assert sync(school_store(left, schema), school_store(right, schema), handler) == {
        "added": 3, "removed": 2, "changed": 1}
    assert handler.changed == [{"id": 3}]
    assert sorted(handler.other) == [("added", "course"), ("added", "enrollment"), ("added", "student"),
                                     ("removed", "enrollment"), ("removed", "student")]
    env = dict(os.environ, DJ_USER=left.admin_user, DJ_PASS=left.admin_password, DJSHARE_RIGHT_USER=right.admin_user,
               DJSHARE_RIGHT_PASS=right.admin_password)
    done = subprocess.run([sys.executable, "-m", "djshare", "diff", f"{left.address}/{schema}.student",
                           f"{right.address}/{schema}.student", "--apply", "tests.integration.test_sync:Collector"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["fallback removed student", "changed student 3: ['name', 'photo']",
                                        "fallback added student"]


def test_tables_whose_key_collations_differ_are_still_compared_exactly(servers: list[MariaDBServer]) -> None:
    """Cut points found in one collation are not in order in another: such a pair is streamed in byte order
    instead of bisected, so no row is counted twice or reported on the wrong side."""
    schema = f"collate{next(_names)}"
    for server, collation in ((servers[0], "utf8mb4_bin"), (servers[1], "utf8mb4_general_ci")):
        server.execute(f"CREATE DATABASE `{schema}`",
                       f"CREATE TABLE `{schema}`.`t` (`k` varchar(20) COLLATE {collation} NOT NULL PRIMARY KEY, "
                       "`v` int NOT NULL)",
                       f"INSERT INTO `{schema}`.`t` SELECT CONCAT(IF(seq % 2, 'a', 'B'), LPAD(seq, 5, '0')), seq "
                       f"FROM `{schema}`.seq_0_to_1999")
    servers[1].execute(f"UPDATE `{schema}`.`t` SET v = -1 WHERE k = 'a01001'")
    actions = list(compare(Table(address(servers[0]), schema, "t"), Table(address(servers[1]), schema, "t"), "t"))
    assert [(a.kind, a.key) for a in actions] == [("changed", {"k": "a01001"})]
    for server in servers[:2]:
        server.execute(f"DROP DATABASE `{schema}`")

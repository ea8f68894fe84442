"""Links of DataJoint 2.x schemas on MariaDB (run in .venv2): a pipeline DataJoint 2.3 declares and fills on a
throw-away source server is pulled by djshare (no DataJoint 0.14 anywhere) into a schema on a second server,
which DataJoint 2.x then reads as its own. Crashes after each step converge; what cannot be linked is refused
before anything changes; the command line works beside DataJoint 2.x."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import ConfigurationError, RestrictionError
from djshare.link.dj2 import Dj2Link, Dj2SourceLink, MariaDBSchema
from djshare.sql.connection import ServerAddress
from djshare.sync.diff import compare
from djshare.sync.sources import Table
from tests.crash import Crash, crash_at
from tests.servers import LinkUsers, MariaDBServer, create_link_users, mariadb_servers
from tests_dj2.new_link import check_a_new_link_changes_nothing, tables_in

OUTBOUND = "dj2_outbound"
NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    assert dj.__version__.startswith("2."), dj.__version__
    with mariadb_servers(2) as (source, local):
        yield source, local


def connect(server: MariaDBServer) -> Any:
    return dj.Connection(server.host, server.admin_user, server.admin_password, port=server.port, use_tls=False,
                         backend="mysql")


class World:
    """One test's source schema (declared and filled by DataJoint 2.x), local schema and link."""

    def __init__(self, source: MariaDBServer, local: MariaDBServer, tmp_path: Path) -> None:
        number = next(NUMBERS)
        self.source, self.local, self.tmp = source, local, tmp_path
        self.source_schema, self.local_schema = f"lab2_{number}", f"mine2_{number}"
        self.outbound = f"{OUTBOUND}_{number}"
        create_link_users(source, self.source_schema, self.outbound)
        schema = dj.Schema(self.source_schema, connection=connect(source))

        @schema
        class Subject(dj.Manual):
            definition = """
            subject : varchar(16)
            ---
            weight : float32
            """

        @schema
        class Session(dj.Manual):
            definition = """
            # a recording session
            -> Subject
            session : int32
            ---
            kind : enum('rest', 'task')
            started : datetime(3)
            score = null : float64
            gain : float32
            token = null : uuid
            note = "" : varchar(64)    # it's free text
            data : <blob>
            """

            class Trace(dj.Part):
                definition = """
                -> master
                trace : int16
                ---
                values : <blob>
                sheet = null : <attach>
                """

        self.Subject, self.Session = Subject, Session
        Subject.insert([{"subject": s, "weight": w} for s, w in (("m1", 20.5), ("m2", 0.1), ("é'q", 3.25))])
        attachment = tmp_path / "notes's.txt"
        attachment.write_bytes(b"\x00 notes \xff" * 10)
        for subject, number in itertools.product(("m1", "m2", "é'q"), range(4)):
            Session.insert1({"subject": subject, "session": number, "kind": "task" if number % 2 else "rest",
                             "started": datetime(2024, 1, 2, 3, 4, 5, 6000 * number),
                             "score": None if number == 3 else number / 7, "gain": number / 3,
                             "token": uuid.UUID(int=number),
                             "note": "quote ' and \\ backslash", "data": np.arange(number + 2) * 0.5})
            Session.Trace.insert([{"subject": subject, "session": number, "trace": t, "values": np.eye(t + 1),
                                   "sheet": str(attachment) if t == 0 else None} for t in range(2)])

    def schema(self, server: MariaDBServer, name: str) -> MariaDBSchema:
        return MariaDBSchema(name, ServerAddress(server.host, server.port, server.admin_user, server.admin_password))

    def link(self, table: str = "Session", **options: Any) -> Dj2Link:
        users = LinkUsers()
        source = MariaDBSchema.source(self.source_schema, host=self.source.address, user=users.link_user,
                                      password=users.link_password)
        return Dj2Link(table, source, self.schema(self.local, self.local_schema), outbound=self.outbound, **options)

    def table(self, server: MariaDBServer, schema: str, name: str) -> Table:
        return Table(ServerAddress(server.host, server.port, server.admin_user, server.admin_password), schema, name)

    def same_rows(self, name: str) -> bool:
        return list(compare(self.table(self.source, self.source_schema, name),
                            self.table(self.local, self.local_schema, name), name)) == []


@pytest.fixture
def world(servers: tuple[MariaDBServer, MariaDBServer], tmp_path: Path) -> World:
    return World(*servers, tmp_path)


def test_a_dj2_table_is_pulled_and_dj2_reads_the_copy_as_its_own(world: World) -> None:
    link = world.link()
    report = link.pull("subject <> 'm2'", progress=False)
    assert (report.pulled, report.part_rows) == (8, 16)
    assert link.status() == {"pulling": 0, "pulled": 8, "deletion_requested": 0, "deletion_approved": 0,
                             "local": 8}
    assert link.pull(progress=False).pulled == 4  # the rest
    assert world.same_rows("session") and world.same_rows("session__trace")  # byte for byte, in the servers
    # DataJoint 2.x reads the local schema as its own: the same values as from the source
    mine = dj.VirtualModule("mine", world.local_schema, connection=connect(world.local))
    assert mine.Session.describe(printout=False) == world.Session.describe(printout=False).replace(
        f"-> `{world.source_schema}`.`subject`\n", "subject              : varchar(16)                  \n")
    dj.config["download_path"] = str(world.tmp / "local")
    assert_same_values(world, {"Session": mine.Session.to_dicts(order_by="KEY"),
                               "Session.Trace": mine.Session.Trace.to_dicts(order_by="KEY")})
    lineage = set(world.local.query(f"SELECT * FROM `{world.local_schema}`.`~lineage`"))
    assert (  # the source's origin, in the local schema, although Subject is not linked (2.x joins them when it is)
        "session__trace", "subject", f"{world.local_schema}.subject.subject") in lineage
    assert ("session__trace", "session", f"{world.local_schema}.session.session") in lineage
    # nothing more to do; repair finds nothing to change
    assert link.pull(progress=False).pulled == 0
    assert link.repair(progress=False).changed == 0
    # the outbound table holds the source rows: the source cannot delete what a subscriber holds
    with pytest.raises(dj.errors.DataJointError):
        (world.Session & {"subject": "m1", "session": 0}).delete_quick()


def assert_same_values(world: World, found: dict[str, list[dict[str, Any]]]) -> None:
    """`found` (rows by table, attachments as paths or (name, bytes)) holds what DataJoint 2.x fetches from the
    source tables."""
    dj.config["download_path"] = str(world.tmp / "source")
    for label, theirs in (("Session", world.Session), ("Session.Trace", world.Session.Trace)):
        expected = theirs.to_dicts(order_by="KEY")
        assert len(found[label]) == len(expected) == (12 if label == "Session" else 24)
        for row, want in zip(found[label], expected, strict=True):
            for column, value in want.items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(row[column], value), column
                elif column == "sheet" and value is not None:
                    got = row[column] if isinstance(row[column], tuple) else \
                        (Path(row[column]).name, Path(row[column]).read_bytes())
                    assert got == (Path(value).name, Path(value).read_bytes())
                else:
                    assert row[column] == value, (column, row[column], value)


def read_with_dj014(world: World) -> Any:
    """What DataJoint 0.14 (in .venv, beside this 2.x environment) fetches from the local schema."""
    python = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    assert python.exists(), f"{python} is missing: `make venv` builds the DataJoint 0.14 environment"
    output = world.tmp / "dj014.pickle"
    settings = {"host": world.local.host, "port": world.local.port, "user": world.local.admin_user,
                "password": world.local.admin_password, "schema": world.local_schema,
                "download": str(world.tmp / "dj014"), "output": str(output)}
    done = subprocess.run([str(python), str(python.parents[2] / "tests" / "dj014_reader.py"), json.dumps(settings)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return pickle.loads(output.read_bytes())


def test_into_a_dj014_schema_that_datajoint_014_reads(world: World) -> None:
    """The reverse direction: a 2.x source into a schema in 0.14's layout (in-table types: the same bytes)."""
    link = world.link(layout="dj014")
    assert link.pull(progress=False).pulled == 12
    assert world.same_rows("session") and world.same_rows("session__trace")
    found = read_with_dj014(world)
    assert_same_values(world, {label: found[label]["rows"] for label in ("Session", "Session.Trace")})
    assert "sheet=null           : attach" in found["Session.Trace"]["heading"]
    assert "values               : longblob" in found["Session.Trace"]["heading"]
    assert world.local.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND "
                             "table_name = '~lineage'", (world.local_schema,)) == [(0,)]
    # a schema in one layout is not filled in the other
    with pytest.raises(ConfigurationError, match="0.14's format, not the link's \\(2.x\\)"):
        world.link().pull(progress=False)
    world.source.execute(f"CREATE TABLE `{world.source_schema}`.`raw` (`id` int NOT NULL COMMENT ':int32:', "
                         "`data` longblob NOT NULL COMMENT ':bytes:', PRIMARY KEY (`id`))")
    with pytest.raises(ConfigurationError, match="`bytes`, which DataJoint 0.14 cannot read"):
        world.link("Raw", layout="dj014").pull(progress=False)
    assert world.source.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND "
                              "table_name LIKE %s", (world.outbound, "%raw%")) == [(0,)]


@pytest.mark.parametrize("step", ["record_pulling", "insert_local", "mark_pulled"])
def test_a_crash_after_any_step_converges(world: World, step: str) -> None:
    with pytest.raises(Crash):
        world.link(batch_size=5).pull(progress=False, checkpoint=crash_at(step, occurrence=2))
    held = set(world.source.query(f"SELECT subject, session FROM `{world.outbound}`.`{world.source_schema}_session_"
                                  "outbound`"))
    local = set(world.local.query(f"SELECT subject, session FROM `{world.local_schema}`.`session`"))
    assert local <= held  # no local row without an outbound row, at any step
    parts = world.local.query(f"SELECT COUNT(*) FROM `{world.local_schema}`.`session__trace`")[0][0]
    assert parts == 2 * len(local)
    world.link().repair(progress=False)
    assert world.link().pull(progress=False).pulled + len(local) == 12
    assert world.link().status()["pulled"] == 12
    assert world.link().repair(progress=False).changed == 0
    assert world.same_rows("session") and world.same_rows("session__trace")


def test_a_local_deletion_is_recorded_by_repair(world: World) -> None:
    link = world.link()
    link.pull(progress=False)
    world.local.execute(f"DELETE FROM `{world.local_schema}`.`session__trace` WHERE subject = 'm1' AND session = 1",
                        f"DELETE FROM `{world.local_schema}`.`session` WHERE subject = 'm1' AND session = 1")
    assert link.repair(progress=False).steps == {"remove_outbound": 1}
    (world.Session & {"subject": "m1", "session": 1}).delete(prompt=False)  # no longer held: the source may
    assert len(world.Session & {"subject": "m1"}) == 3


def test_what_cannot_be_linked_is_refused_before_any_change(world: World) -> None:
    source = world.source
    source.execute(f"CREATE TABLE `{world.source_schema}`.`stored` (`id` int NOT NULL COMMENT ':int32:', "
                   "`signal` json NOT NULL COMMENT ':<blob@main>:', PRIMARY KEY (`id`))")
    with pytest.raises(ConfigurationError, match="<blob@main>.*in-table types only"):
        world.link("Stored").pull(progress=False)
    source.execute("CREATE DATABASE old_layout", "CREATE TABLE old_layout.scan (id int NOT NULL PRIMARY KEY, "
                   "`signal` binary(16) NOT NULL COMMENT ':blob@main:')")
    users = LinkUsers()
    old = MariaDBSchema.source("old_layout", host=source.address, user=source.admin_user,
                               password=source.admin_password)
    with pytest.raises(ConfigurationError, match="DataJoint 0.14's layout.*djshare\\[dj014\\]"):  # 0.14 into 0.14
        Dj2Link("Scan", old, world.schema(world.local, world.local_schema), outbound=world.outbound,
                layout="dj014").pull()
    with pytest.raises(ConfigurationError, match="`blob@main`, an external object.*cannot insert on MariaDB"):
        Dj2Link("Scan", old, world.schema(world.local, world.local_schema), outbound=world.outbound).pull()
    wrong = MariaDBSchema.source(world.source_schema, host=source.address, user=users.link_user, password="wrong")
    with pytest.raises(Exception, match="wrong user name or password"):
        Dj2Link("Session", wrong, world.schema(world.local, world.local_schema), outbound=world.outbound).pull()
    with pytest.raises(RestrictionError, match="names subjct, which .* does not have"):
        world.link().pull({"subjct": "m1"})  # DataJoint 0.14 would silently match every row
    with pytest.raises(RestrictionError, match="neither SQL text, a dict"):
        world.link().pull(3)
    # nothing was created: no outbound schema, no local schema
    assert source.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                        (world.outbound,)) == [(0,)]
    assert world.local.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                             (world.local_schema,)) == [(0,)]


def test_the_command_line_links_dj2_schemas_beside_datajoint_2(world: World) -> None:
    users = LinkUsers()
    env = dict(os.environ, LINK_HOST=world.source.address, LINK_USER=users.link_user, LINK_PASS=users.link_password,
               LINK_OUTBOUND=world.outbound, DJ_HOST=world.local.address, DJ_USER=world.local.admin_user,
               DJ_PASS=world.local.admin_password, COLUMNS="300")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    done = djshare("pull", f"{world.source_schema}.Session", "-l", world.local_schema, "-w", "session < 2")
    assert done.returncode == 0, done.stderr
    assert "pulled 6 entities (12 part rows" in done.stdout
    done = djshare("repair", f"{world.source_schema}.Session", "-l", world.local_schema)
    assert done.returncode == 0 and "checked 12 keys; ran: nothing" in done.stdout, done.stderr  # outbound + local
    done = djshare("refresh", f"{world.source_schema}.Session", "-l", world.local_schema)  # no DataJoint 0.14 needed
    assert done.returncode == 0 and "no open deletion requests" in done.stdout, done.stderr
    done = djshare("status")  # the source's links, beside DataJoint 2.x
    assert done.returncode == 0 and f"`{world.source_schema}`.`session`" in done.stdout, done.stderr
    assert world.same_rows("session__trace") is False  # only part of the source was pulled
    assert world.local.query(f"SELECT COUNT(*) FROM `{world.local_schema}`.`session__trace`") == [(12,)]
    # into a schema that already holds DataJoint 0.14 tables, the link follows that layout
    old = f"{world.local_schema}_014"
    world.local.execute(f"CREATE DATABASE `{old}`", f"CREATE TABLE `{old}`.`note` (id int NOT NULL PRIMARY KEY)")
    done = djshare("pull", f"{world.source_schema}.Session", "-l", old)
    assert done.returncode == 0 and "pulled 12 entities" in done.stdout, done.stderr
    assert world.local.query("SELECT column_comment FROM information_schema.columns WHERE table_schema = %s AND "
                             "table_name = 'session__trace' ORDER BY ordinal_position", (old,)) == [
        ("",), ("",), ("",), ("",), (":attach:",)]


def test_the_deletion_handshake_beside_datajoint_2(world: World) -> None:
    """The source lab asks (here and from the command line), the subscriber deletes locally and `repair`
    approves, the source finishes: all without DataJoint 0.14."""
    assert world.link().pull(progress=False).pulled == 12
    source = Dj2SourceLink("Session", world.schema(world.source, world.source_schema), outbound=world.outbound)
    assert source.request_deletion("subject = 'm2'", "session < 2") == 2
    assert [(r["subject"], r["session"]) for r in source.requested()] == [("m2", 0), ("m2", 1)]
    where = "subject = 'm2' AND session < 2"
    world.local.execute(f"DELETE FROM `{world.local_schema}`.`session__trace` WHERE {where}",
                        f"DELETE FROM `{world.local_schema}`.`session` WHERE {where}")
    assert world.link().repair(progress=False).steps == {"approve_deletion": 2}
    assert len(source.approved()) == 2
    report = source.finish_deletion()
    assert (report.outbound_rows, report.source_rows) == (2, 2)
    assert len(world.Session & where) == 0 and len(world.Session.Trace & where) == 0
    env = dict(os.environ, LINK_HOST=world.source.address, LINK_USER=world.source.admin_user,
               LINK_PASS=world.source.admin_password, LINK_OUTBOUND=world.outbound, COLUMNS="300")
    done = subprocess.run([sys.executable, "-m", "djshare", "request-deletion", f"{world.source_schema}.Session",
                           "-w", "session = 3"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "requested deletion of 3 held entities" in done.stdout, done.stderr
    assert world.link().status()["deletion_requested"] == 3
    local_env = dict(env, DJ_HOST=world.local.address, DJ_USER=world.local.admin_user,
                     DJ_PASS=world.local.admin_password)  # the subscriber's side lists them, without DataJoint 0.14
    done = subprocess.run([sys.executable, "-m", "djshare", "refresh", f"{world.source_schema}.Session", "-l",
                           world.local_schema], env=local_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "3 open deletion requests" in done.stdout, done.stderr


@pytest.mark.parametrize("layout", ["dj2", "dj014"])
def test_changed_source_rows_are_found_and_refreshed(world: World, layout: str) -> None:
    link = world.link(layout=layout)
    link.pull(progress=False)
    assert link.stale(progress=False).stale == []
    schema = world.source_schema
    world.source.execute(
        f"UPDATE `{schema}`.`session` SET note = 'changed', score = NULL WHERE session = 1",
        f"DELETE FROM `{schema}`.`session__trace` WHERE subject = 'm1' AND session = 2 AND trace = 1",
        f"INSERT INTO `{schema}`.`session__trace` SELECT subject, session, 7, `values`, sheet FROM "
        f"`{schema}`.`session__trace` WHERE subject = 'm2' AND session = 0 AND trace = 0")
    report = link.stale(progress=False)
    # three sessions 1 (changed masters), m1's session 2 (a dropped part row), m2's session 0 (a new part row)
    assert len(report.stale) == 5 and len(report.changes) == 5 and report.out_of_step == 0
    assert len(link.stale("subject = 'm2'", progress=False).stale) == 2
    with pytest.raises(Crash):  # the first batch of two is refreshed, then the process dies
        link.pull(progress=False, refresh_changed=True, batch_size=2, checkpoint=crash_at("refresh_local"))
    assert len(link.stale(progress=False).stale) == 3
    report = link.pull(progress=False, refresh_changed=True, batch_size=2)
    assert (report.pulled, report.refreshed) == (0, 3)
    assert link.stale(progress=False).stale == [] and world.same_rows("session") and world.same_rows("session__trace")
    assert link.status()["pulled"] == 12 and link.repair(progress=False).steps == {}
    # the command line shows what changed
    world.source.execute(f"UPDATE `{schema}`.`session` SET gain = 0.5 WHERE subject = 'm2' AND session = 3")
    users = LinkUsers()
    env = dict(os.environ, LINK_HOST=world.source.address, LINK_USER=users.link_user, LINK_PASS=users.link_password,
               LINK_OUTBOUND=world.outbound, DJ_HOST=world.local.address, DJ_USER=world.local.admin_user,
               DJ_PASS=world.local.admin_password, COLUMNS="300")
    done = subprocess.run([sys.executable, "-m", "djshare", "diff", "--link", f"{schema}.Session", "-l",
                           world.local_schema], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "1 stale entities (1 changed rows)" in done.stderr, done.stderr
    assert "gain" in done.stdout


def test_a_dry_run_a_bad_restriction_and_a_repair_of_a_new_link_change_nothing(world: World) -> None:
    check_a_new_link_changes_nothing(world.link(), lambda: tables_in(world.local, world.local_schema) == 0
                                     and tables_in(world.source, world.outbound) == 0)


def test_a_014_schema_is_linked_and_its_source_commands_run_beside_datajoint_2(world: World) -> None:
    """No DataJoint 0.14 here: a 0.14 table links into 2.x's format (--format dj2) and the source lab's commands
    run on it (open_source picks the DataJoint-free ones for a MariaDB side)."""
    schema = f"{world.source_schema}_old"
    world.source.execute(f"CREATE DATABASE `{schema}`",
                         f"CREATE TABLE `{schema}`.`scan` (id int NOT NULL PRIMARY KEY, data longblob NOT NULL)",
                         f"INSERT INTO `{schema}`.`scan` VALUES (1, 'x'), (2, 'y')")
    env = dict(os.environ, LINK_HOST=world.source.address, LINK_USER=world.source.admin_user,
               LINK_PASS=world.source.admin_password, LINK_OUTBOUND=world.outbound, DJ_HOST=world.local.address,
               DJ_USER=world.local.admin_user, DJ_PASS=world.local.admin_password, COLUMNS="300")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    done = djshare("pull", f"{schema}.scan", "-l", f"{world.local_schema}_v2", "--format", "dj2")
    assert done.returncode == 0 and "pulled 2 entities" in done.stdout, done.stderr
    assert world.local.query(f"SELECT column_comment FROM information_schema.columns WHERE table_schema = "
                             f"'{world.local_schema}_v2' AND table_name = 'scan' ORDER BY ordinal_position") == [
        (":int32:",), (":<blob>:",)]
    done = djshare("request-deletion", f"{schema}.scan", "-w", "id = 1")
    assert done.returncode == 0 and "requested deletion of 1 held entities" in done.stdout, done.stderr
    done = djshare("requested", f"{schema}.scan")
    assert done.returncode == 0 and "1" in done.stdout and "no open" not in done.stdout, done.stderr

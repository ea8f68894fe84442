"""Links between DataJoint 2.x schemas on PostgreSQL (run in .venv2): a pipeline DataJoint 2.3 declares and fills
on one throw-away PostgreSQL 15 is pulled by djshare into a schema on a second one, which DataJoint 2.x reads
as its own. Crashes after each step converge; a local deletion is recorded by repair; what cannot be linked is
refused before anything changes; the command line works."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import (
    ConfigurationError,
    DefinitionMismatchError,
    IntegrityViolation,
    LinkBusyError,
    MissingPrivilegeError,
    RestrictionError,
)
from djshare.link.pg import PgLink, PgSourceLink, PostgresSchema
from djshare.sql.connection import ServerAddress
from djshare.sync.diff import compare
from djshare.sync.sources import Table
from tests.crash import Crash, crash_at
from tests.servers import PostgresServer, S3Server, free_port, postgres_server, s3_server
from tests_dj2.new_link import check_a_new_link_changes_nothing, tables_in

NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    assert dj.__version__.startswith("2."), dj.__version__
    with postgres_server() as source, postgres_server() as local:
        yield source, local


def connect(server: PostgresServer) -> Any:
    return dj.Connection(server.host, server.admin_user, server.admin_password, port=server.port, use_tls=False,
                         backend="postgresql", database_name=server.database)


class World:
    """One test's source schema (declared and filled by DataJoint 2.x), local schema and outbound schema."""

    def __init__(self, source: PostgresServer, local: PostgresServer, tmp_path: Path) -> None:
        number = next(NUMBERS)
        self.source, self.local, self.tmp = source, local, tmp_path
        self.source_schema, self.local_schema, self.outbound = f"lab2_{number}", f"mine2_{number}", f"out_{number}"
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
            kind = 'rest' : enum('rest', 'task')
            started : datetime(3)
            score = null : float64
            gain : float32
            amount : decimal(8, 3)
            note = "" : varchar(64)    # it's free text
            data : <blob>
            """

            class Trace(dj.Part):
                definition = """
                -> master
                trace : int16
                ---
                values : <blob>
                """

        self.Subject, self.Session = Subject, Session
        Subject.insert([{"subject": s, "weight": w} for s, w in (("m1", 20.5), ("M2", 0.1), ("é'q", 3.25))])
        for subject, number in itertools.product(("m1", "M2", "é'q"), range(4)):
            Session.insert1({"subject": subject, "session": number, "kind": "task" if number % 2 else "rest",
                             "started": datetime(2024, 1, 2, 3, 4, 5, 6000 * number),
                             "score": None if number == 3 else number / 7, "gain": number / 3,
                             "amount": Decimal(number) / 8, "note": "quote ' and \\ backslash",
                             "data": np.arange(number + 2) * 0.5})
            Session.Trace.insert([{"subject": subject, "session": number, "trace": t, "values": np.eye(t + 1)}
                                  for t in range(2)])

    def schema(self, server: PostgresServer, schema: str) -> PostgresSchema:
        return PostgresSchema(schema, host=server.address, database=server.database, user=server.admin_user,
                              password=server.admin_password)

    def link(self, table: str = "Session", **options: Any) -> PgLink:
        return PgLink(table, self.schema(self.source, self.source_schema), self.schema(self.local, self.local_schema),
                      outbound=self.outbound, **options)

    def table(self, server: PostgresServer, schema: str, name: str) -> Table:
        return Table(ServerAddress(server.host, server.port, server.admin_user, server.admin_password,
                                   backend="postgresql", database=server.database), schema, name)

    def same_rows(self, name: str) -> bool:
        return list(compare(self.table(self.source, self.source_schema, name),
                            self.table(self.local, self.local_schema, name), name)) == []


@pytest.fixture
def world(servers: tuple[PostgresServer, PostgresServer], tmp_path: Path) -> World:
    return World(*servers, tmp_path)


def test_a_dj2_table_on_postgres_is_pulled_and_dj2_reads_the_copy(world: World) -> None:
    link = world.link()
    report = link.pull("subject <> 'M2'", progress=False)
    assert (report.pulled, report.part_rows) == (8, 16)
    assert link.status() == {"pulling": 0, "pulled": 8, "deletion_requested": 0, "deletion_approved": 0,
                             "local": 8}
    assert link.pull(progress=False, batch_size=3).pulled == 4
    assert world.same_rows("session") and world.same_rows("session__trace")
    mine = dj.VirtualModule("mine", world.local_schema, connection=connect(world.local))
    assert mine.Session.describe(printout=False) == world.Session.describe(printout=False).replace(
        f'-> "{world.source_schema}"."subject"\n', "subject              : varchar(16)                  \n").replace(
        f"::{world.source_schema}.enum_", f"::{world.local_schema}.enum_")  # the enum type is declared locally
    for theirs, ours in ((world.Session, mine.Session), (world.Session.Trace, mine.Session.Trace)):
        expected, found = theirs.to_dicts(order_by="KEY"), ours.to_dicts(order_by="KEY")
        assert len(found) == len(expected) == (12 if theirs is world.Session else 24)
        for row, want in zip(found, expected, strict=True):
            for column, value in want.items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(row[column], value), column
                else:
                    assert row[column] == value, (column, row[column], value)
    assert ("session__trace", "subject", f"{world.local_schema}.subject.subject") in set(
        world.local.query(f'SELECT * FROM "{world.local_schema}"."~lineage"'))
    assert link.pull(progress=False).pulled == 0
    assert link.repair(progress=False).changed == 0
    # the outbound rows hold the source rows
    with pytest.raises(Exception, match="foreign key"):
        world.source.execute(f"DELETE FROM \"{world.source_schema}\".session__trace",
                             f"DELETE FROM \"{world.source_schema}\".session")


@pytest.mark.parametrize("step", ["record_pulling", "insert_local", "mark_pulled"])
def test_a_crash_after_any_step_converges(world: World, step: str) -> None:
    with pytest.raises(Crash):
        world.link(batch_size=5).pull(progress=False, checkpoint=crash_at(step, occurrence=2))
    held = set(world.source.query(f'SELECT subject, session FROM "{world.outbound}"."{world.source_schema}_session_'
                                  'outbound"'))
    local = set(world.local.query(f'SELECT subject, session FROM "{world.local_schema}".session'))
    assert local <= held  # no local row without an outbound row, at any step
    parts = world.local.query(f'SELECT count(*) FROM "{world.local_schema}".session__trace')[0][0]
    assert parts == 2 * len(local)
    world.link().repair(progress=False)
    assert world.link().pull(progress=False).pulled + len(local) == 12
    assert world.link().status()["pulled"] == 12
    assert world.link().repair(progress=False).changed == 0
    assert world.same_rows("session") and world.same_rows("session__trace")


def test_a_local_deletion_is_recorded_by_repair_and_frees_the_source_row(world: World) -> None:
    link = world.link()
    link.pull(progress=False)
    where = "subject = 'm1' AND session = 1"
    world.local.execute(f'DELETE FROM "{world.local_schema}".session__trace WHERE {where}',
                        f'DELETE FROM "{world.local_schema}".session WHERE {where}')
    assert link.repair(progress=False).steps == {"remove_outbound": 1}
    (world.Session & {"subject": "m1", "session": 1}).delete(prompt=False)
    assert len(world.Session & {"subject": "m1"}) == 3


def test_what_cannot_be_linked_is_refused_before_any_change(world: World) -> None:
    world.source.execute(f'CREATE TABLE "{world.source_schema}".stored (id integer PRIMARY KEY, signal jsonb NOT NULL)',
                         f"COMMENT ON COLUMN \"{world.source_schema}\".stored.signal IS ':<zarr@main>:'")
    with pytest.raises(ConfigurationError, match="<zarr@main>, a codec djshare does not know"):
        world.link("Stored").pull(progress=False)
    world.source.execute("CREATE SCHEMA plain", "CREATE TABLE plain.scan (id integer PRIMARY KEY)")
    with pytest.raises(ConfigurationError, match="not in DataJoint 2.x's layout"):
        PgLink("Scan", world.schema(world.source, "plain"), world.schema(world.local, world.local_schema),
               outbound=world.outbound).pull(progress=False)
    with pytest.raises(ConfigurationError, match="No table for Sesion"):
        world.link("Sesion").pull(progress=False)
    wrong = PostgresSchema(world.source_schema, host=world.source.address, database=world.source.database,
                           user=world.source.admin_user, password="wrong")
    with pytest.raises(Exception, match="password"):
        PgLink("Session", wrong, world.schema(world.local, world.local_schema), outbound=world.outbound).pull()
    with pytest.raises(RestrictionError, match="names subjct, which .* does not have"):
        world.link().pull({"subjct": "m1"})  # DataJoint 0.14 would silently match every row
    with pytest.raises(RestrictionError, match="neither SQL text, a dict"):
        world.link().pull(3)
    assert world.source.query("SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                              (world.outbound,)) == [(0,)]
    assert world.local.query("SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                             (world.local_schema,)) == [(0,)]


def test_the_command_line_links_postgres_schemas(world: World) -> None:
    env = dict(os.environ, LINK_HOST=f"postgresql://{world.source.address}/{world.source.database}",
               LINK_USER=world.source.admin_user, LINK_PASS=world.source.admin_password, LINK_OUTBOUND=world.outbound,
               DJ_USER=world.local.admin_user, DJ_PASS=world.local.admin_password, COLUMNS="300")
    local = f"postgresql://{world.local.address}/{world.local.database}/{world.local_schema}"

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    done = djshare("pull", f"{world.source_schema}.Session", "-l", local, "-w", "session < 2")
    assert done.returncode == 0, done.stderr
    assert "pulled 6 entities (12 part rows" in done.stdout
    done = djshare("repair", f"{world.source_schema}.Session", "-l", local)
    assert done.returncode == 0 and "checked 12 keys; ran: nothing" in done.stdout, done.stderr
    env["DJ_HOST"] = f"127.0.0.1:{free_port()}"  # a schema name for -l: the reverse link, into MariaDB
    refused = djshare("pull", f"{world.source_schema}.Session", "-l", world.local_schema)
    assert refused.returncode == 1 and env["DJ_HOST"] in refused.stderr, refused.stderr
    assert world.local.query(f'SELECT count(*) FROM "{world.local_schema}".session__trace') == [(12,)]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


def store(kind: str, root: Path, s3: S3Server, bucket: str) -> dict[str, Any]:
    if kind == "file":
        root.mkdir(parents=True, exist_ok=True)
        return {"protocol": "file", "location": str(root)}
    s3.client().create_bucket(Bucket=bucket)
    return {"protocol": "s3", "endpoint": s3.endpoint, "bucket": bucket, "location": "lab/objects",
            "access_key": s3.access_key, "secret_key": s3.secret_key, "secure": False}


def read_object(spec: dict[str, Any], s3: S3Server, path: str) -> bytes:
    if spec["protocol"] == "file":
        return (Path(spec["location"]) / path).read_bytes()
    found = s3.client().get_object(Bucket=spec["bucket"], Key=f"{spec['location']}/{path}")
    return bytes(found["Body"].read())


class Objects:
    """A source table with objects in a store (`<blob@main>`, `<attach@main>`), filled by DataJoint 2.x."""

    def __init__(self, world: World, source_store: dict[str, Any], local_store: dict[str, Any],
                 s3: S3Server | None = None) -> None:
        self.world, self.source_store, self.local_store = world, source_store, local_store
        # DataJoint 2.3.5 writes to S3 through s3fs, whose requests moto refuses (SignatureDoesNotMatch), so for
        # an S3 source it writes to a file store and the objects are then uploaded to the same paths
        staging = {"protocol": "file", "location": str(world.tmp / "staging")}
        (world.tmp / "staging").mkdir(exist_ok=True)
        dj.config["stores"] = {"main": source_store if source_store["protocol"] == "file" else staging}
        schema = dj.Schema(world.source_schema, connection=connect(world.source))

        @schema
        class Sample(dj.Manual):
            definition = """
            sample : int32
            ---
            signal : <blob@main>
            document = null : <attach@main>
            """

        self.Sample = Sample
        attachment = world.tmp / "it's a note.txt"
        attachment.write_bytes(b"\x00\xff note " * 100)
        Sample.insert([{"sample": i, "signal": np.arange(i * 100 + 1, dtype=np.float64),
                        "document": str(attachment) if i % 2 else None} for i in range(6)])
        if source_store["protocol"] == "s3":
            assert s3 is not None
            for path in (world.tmp / "staging").rglob("*"):
                if path.is_file():
                    s3.client().put_object(Bucket=source_store["bucket"], Body=path.read_bytes(),
                                           Key=f"{source_store['location']}/{path.relative_to(world.tmp / 'staging')}")

    def link(self, **options: Any) -> PgLink:
        world = self.world
        source = PostgresSchema(world.source_schema, host=world.source.address, database=world.source.database,
                                user=world.source.admin_user, password=world.source.admin_password,
                                stores={"main": self.source_store})
        local = PostgresSchema(world.local_schema, host=world.local.address, database=world.local.database,
                               user=world.local.admin_user, password=world.local.admin_password,
                               stores={"archive": self.local_store})
        return PgLink("Sample", source, local, outbound=world.outbound, stores={"archive": "main"}, **options)


@pytest.mark.parametrize(("source_kind", "local_kind"), [("file", "file"), ("s3", "s3"), ("file", "s3")])
def test_objects_in_stores_follow_their_rows(world: World, s3: S3Server, source_kind: str, local_kind: str) -> None:
    number = next(NUMBERS)
    objects = Objects(world, store(source_kind, world.tmp / "source-store", s3, f"source-{number}"),
                      store(local_kind, world.tmp / "local-store", s3, f"local-{number}"), s3)
    report = objects.link().pull(progress=False)
    assert (report.pulled, report.objects) == (6, 7)  # 6 signals; 3 equal documents are one object
    # each object at _hash/{local schema}/{hash}, the same bytes; the references name the local side
    for (value,) in world.local.query(f'SELECT signal::text FROM "{world.local_schema}".sample UNION ALL '
                                      f'SELECT document::text FROM "{world.local_schema}".sample '
                                      "WHERE document IS NOT NULL"):
        reference = json.loads(value)
        assert reference["path"] == f"_hash/{world.local_schema}/{reference['hash']}"
        assert (reference["store"], reference["schema"]) == ("archive", world.local_schema)
        data = read_object(objects.local_store, s3, reference["path"])
        assert base64.b32encode(hashlib.md5(data).digest()).decode().rstrip("=").lower() == reference["hash"]
        assert read_object(objects.source_store, s3, f"_hash/{world.source_schema}/{reference['hash']}") == data
    # DataJoint 2.x reads the local copy with the local store only
    dj.config["stores"] = {"archive": objects.local_store}
    dj.config["download_path"] = str(world.tmp / "download")
    mine = dj.VirtualModule("mine", world.local_schema, connection=connect(world.local))
    assert "signal               : <blob@archive>" in mine.Sample.describe(printout=False)
    found = mine.Sample.to_dicts(order_by="KEY")
    assert [np.array_equal(row["signal"], np.arange(i * 100 + 1)) for i, row in enumerate(found)] == [True] * 6
    assert [Path(row["document"]).read_bytes() if row["document"] else None for row in found] == \
        [None, b"\x00\xff note " * 100] * 3
    assert objects.link().pull(progress=False).objects == 0


def test_a_crash_after_copying_objects_and_a_damaged_object(world: World, s3: S3Server) -> None:
    objects = Objects(world, store("file", world.tmp / "source-store", s3, ""),
                      store("file", world.tmp / "local-store", s3, ""))
    with pytest.raises(Crash):
        objects.link(batch_size=2).pull(progress=False, checkpoint=crash_at("copy_objects", occurrence=2))
    assert world.local.query(f'SELECT count(*) FROM "{world.local_schema}".sample') == [(2,)]
    objects.link().repair(progress=False)
    assert objects.link().pull(progress=False).pulled == 4
    assert world.same_rows("sample") is False  # the references differ: they name the local side
    # a damaged object stops its batch before any row references it
    (world.local.execute(f'DELETE FROM "{world.local_schema}".sample WHERE sample = 5'))
    objects.link().repair(progress=False)
    reference = json.loads(world.source.query(f'SELECT signal::text FROM "{world.source_schema}".sample '
                                              "WHERE sample = 5")[0][0])
    for path in (world.tmp / "local-store").rglob(reference["hash"]):
        path.unlink()
    (world.tmp / "source-store" / reference["path"]).write_bytes(b"damaged")
    with pytest.raises(IntegrityViolation, match="7 bytes and MD5"):
        objects.link().pull(progress=False)
    assert world.local.query(f'SELECT count(*) FROM "{world.local_schema}".sample WHERE sample = 5') == [(0,)]


def test_a_least_privileged_link_user_and_a_missing_grant(world: World) -> None:
    """The source admin grants reading and referencing the source schema and a schema for outbound tables;
    without REFERENCES the link stops with the grants it needs, and leaves nothing behind."""
    source = world.source
    schema = world.source_schema
    for role in ("linker", "weak"):
        source.execute(f"DROP ROLE IF EXISTS {role}_{schema}", f"CREATE ROLE {role}_{schema} LOGIN PASSWORD 'pw'",
                       f'GRANT USAGE ON SCHEMA "{schema}" TO {role}_{schema}',
                       f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}_{schema}')
    source.execute(f'GRANT REFERENCES ON ALL TABLES IN SCHEMA "{schema}" TO linker_{schema}',
                   f'CREATE SCHEMA "{world.outbound}" AUTHORIZATION linker_{schema}',
                   f'CREATE SCHEMA "{world.outbound}_weak" AUTHORIZATION weak_{schema}')
    local = world.schema(world.local, world.local_schema)

    def as_user(role: str, outbound: str) -> PgLink:
        return PgLink("Session", PostgresSchema.source(schema, host=source.address, database=source.database,
                                                       user=f"{role}_{schema}", password="pw"), local,
                      outbound=outbound)

    with pytest.raises(MissingPrivilegeError, match="lacks a privilege.*The link user needs: GRANT USAGE"):
        as_user("weak", f"{world.outbound}_weak").pull(progress=False)
    assert source.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                        (f"{world.outbound}_weak",)) == [(0,)]
    assert as_user("linker", world.outbound).pull(progress=False).pulled == 12
    assert world.same_rows("session") and world.same_rows("session__trace")


def test_finish_deletion_cascades_into_dependent_tables_as_on_mariadb(world: World) -> None:
    """One semantics on every backend: finishing a deletion removes the entity's part rows and the rows of other
    tables that depend on it, as DataJoint's delete would, unless one of them is held through another link: then
    that batch changes nothing and says why."""
    schema = dj.Schema(world.source_schema, connection=connect(world.source))

    @schema
    class Note(dj.Manual):
        definition = """
        -> world.Session
        note_id : int16
        ---
        text : varchar(32)
        """

    del Note  # declared for its foreign key; filled in SQL
    world.source.execute(f'INSERT INTO "{world.source_schema}".note SELECT subject, session, 1, \'n\' FROM '
                         f'"{world.source_schema}".session')
    assert world.link().pull(progress=False).pulled == 12
    held_note = PgLink("Note", world.schema(world.source, world.source_schema),
                       world.schema(world.local, world.local_schema + "_notes"), outbound=world.outbound)
    assert held_note.pull("subject = 'm1'", progress=False).pulled == 4
    source = PgSourceLink("Session", world.schema(world.source, world.source_schema), outbound=world.outbound)
    assert source.request_deletion("session = 0") == 3
    world.local.execute(f'DELETE FROM "{world.local_schema}".session__trace WHERE session = 0',
                        f'DELETE FROM "{world.local_schema}".session WHERE session = 0')
    assert world.link().repair(progress=False).steps == {"approve_deletion": 3}
    before = world.source.query(f'SELECT count(*) FROM "{world.source_schema}".session')
    with pytest.raises(IntegrityViolation, match="still held through an outbound table.*changed nothing"):
        source.finish_deletion()  # m1's note of session 0 is held by the Note link
    assert world.source.query(f'SELECT count(*) FROM "{world.source_schema}".session') == before
    assert len(source.approved()) == 3  # nothing changed: still approved
    notes = PgSourceLink("Note", world.schema(world.source, world.source_schema), outbound=world.outbound)
    assert notes.request_deletion("session = 0") == 1  # the Note link's subscriber lets its note go
    world.local.execute(f'DELETE FROM "{world.local_schema}_notes".note WHERE session = 0')
    assert held_note.repair(progress=False).steps == {"approve_deletion": 1}
    assert notes.finish_deletion().source_rows == 1
    report = source.finish_deletion()
    assert (report.outbound_rows, report.source_rows, report.dependent_rows) == (3, 3, 3 * 2 + 2)  # traces, notes
    assert world.source.query(f'SELECT count(*) FROM "{world.source_schema}".note WHERE session = 0') == [(0,)]
    assert len(world.Session & "session = 0") == 0


def test_the_deletion_handshake(world: World) -> None:
    """The source asks; one subscriber deletes locally and `repair` approves; the source deletes what no one holds
    any more and keeps what another subscriber still holds."""
    first = world.link()
    second = PgLink("Session", world.schema(world.source, world.source_schema),
                    world.schema(world.local, world.local_schema + "_b"), outbound=world.outbound)
    assert first.pull(progress=False).pulled == 12 and second.pull("subject = 'M2'", progress=False).pulled == 4
    source = PgSourceLink("Session", world.schema(world.source, world.source_schema), outbound=world.outbound)
    assert source.request_deletion("subject = 'M2'", "session < 2", dry_run=True) == 4  # 2 entities x 2 subscribers
    assert source.request_deletion("subject = 'M2'", "session < 2") == 4
    assert [(r["subject"], r["session"]) for r in first.requested()] == [("M2", 0), ("M2", 1)]
    where = "subject = 'M2' AND session < 2"
    world.local.execute(f'DELETE FROM "{world.local_schema}".session__trace WHERE {where}',
                        f'DELETE FROM "{world.local_schema}".session WHERE {where}')
    assert first.repair(progress=False).steps == {"approve_deletion": 2}
    assert len(source.approved()) == 2 and len(source.requested()) == 2  # the second subscriber has not answered
    report = source.finish_deletion()
    assert (report.outbound_rows, report.source_rows, report.kept) == (2, 0, 2)  # the second still holds them
    assert len(world.Session & where) == 2
    world.local.execute(f'DELETE FROM "{world.local_schema}_b".session__trace WHERE {where}',
                        f'DELETE FROM "{world.local_schema}_b".session WHERE {where}')
    assert second.repair(progress=False).steps == {"approve_deletion": 2}
    assert source.finish_deletion(dry_run=True).source_rows == 2 and len(world.Session & where) == 2
    report = source.finish_deletion()
    assert (report.outbound_rows, report.source_rows, report.dependent_rows) == (2, 2, 4)
    assert len(world.Session & where) == 0 and len(world.Session.Trace & where) == 0
    assert first.repair(progress=False).changed == 0 and second.repair(progress=False).changed == 0
    assert first.status()["pulled"] == 10


def test_source_side_commands_from_the_command_line(world: World) -> None:
    world.link().pull(progress=False)
    env = dict(os.environ, LINK_HOST=f"postgresql://{world.source.address}/{world.source.database}",
               LINK_USER=world.source.admin_user, LINK_PASS=world.source.admin_password, LINK_OUTBOUND=world.outbound,
               COLUMNS="300")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    done = djshare("request-deletion", f"{world.source_schema}.Session", "-w", "session = 3")
    assert done.returncode == 0 and "requested deletion of 3 held entities" in done.stdout, done.stderr
    done = djshare("requested", f"{world.source_schema}.Session")
    assert done.returncode == 0 and done.stdout.count(world.local_schema) == 3, done.stdout
    done = djshare("finish-deletion", f"{world.source_schema}.Session")
    assert done.returncode == 0 and "deleted 0 source entities" in done.stdout, done.stderr
    done = djshare("status")  # per source table and subscriber: 9 pulled, 3 asked to delete
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if f"{world.source_schema}" in line)
    assert [cell.strip() for cell in row.split("│")[3:7]] == ["0", "9", "3", "0"], done.stdout


def test_one_run_of_a_link_at_a_time(world: World) -> None:
    """A second pull of the same link and subscriber waits for the first, then gives up with the reason."""
    started, release = threading.Event(), threading.Event()

    def slow(step: str) -> None:
        if step == "record_pulling":
            started.set()
            release.wait(30)

    first = threading.Thread(target=lambda: world.link(batch_size=20).pull(progress=False, checkpoint=slow))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(LinkBusyError, match="held the link's lock for more than 0.5 s"):
            world.link(lock_timeout=0.5).pull(progress=False)
    finally:
        release.set()
        first.join(60)
    assert world.link().pull(progress=False).pulled == 0  # the first run pulled everything
    assert world.link().status()["pulled"] == 12


def test_gc_deletes_only_objects_djshare_wrote_and_no_row_references(world: World, s3: S3Server) -> None:
    objects = Objects(world, store("file", world.tmp / "source-store", s3, ""),
                      store("file", world.tmp / "local-store", s3, ""))
    link = objects.link()
    assert link.pull(progress=False).objects == 7
    assert link.gc().deleted == []  # every object is referenced
    local_store = world.tmp / "local-store"
    own = local_store / "_hash" / world.local_schema / "not-from-djshare"
    own.write_bytes(b"the local lab's")  # an object djshare did not write: never deleted
    freed = sorted(f"archive:{json.loads(value)['path']}" for (value,) in world.local.query(
        f'SELECT signal::text FROM "{world.local_schema}".sample WHERE sample IN (3, 4)'))
    world.local.execute(f'DELETE FROM "{world.local_schema}".sample WHERE sample IN (3, 4)')
    link.repair(progress=False)
    paths = [local_store / f.removeprefix("archive:") for f in freed]
    assert link.gc(dry_run=True).deleted == freed and all(p.exists() for p in paths)
    assert link.gc().deleted == freed  # the two signals; sample 3's document is shared with 1 and 5: kept
    assert not any(p.exists() for p in paths) and own.exists()
    env = dict(os.environ, DJ_USER=world.local.admin_user, DJ_PASS=world.local.admin_password, COLUMNS="300")
    done = subprocess.run([sys.executable, "-m", "djshare", "gc", "--dry-run", "-l",
                           f"postgresql://{world.local.address}/{world.local.database}/{world.local_schema}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "would delete 0 objects" in done.stdout, done.stderr
    assert link.gc().deleted == []
    dj.config["stores"] = {"archive": objects.local_store}
    dj.config["download_path"] = str(world.tmp / "download")
    mine = dj.VirtualModule("mine", world.local_schema, connection=connect(world.local))
    assert len(mine.Sample.to_dicts()) == 4  # what remains still reads


def test_stale_entities_are_found_inside_the_servers(world: World, s3: S3Server) -> None:
    link = world.link()
    link.pull(progress=False)
    assert link.stale().stale == [] and link.stale().out_of_step == 0
    world.source.execute(f'UPDATE "{world.source_schema}".session SET note = \'changed\' '
                         "WHERE subject = 'm1' AND session = 1",
                         f'UPDATE "{world.source_schema}".session__trace SET "values" = \'\\x00\'::bytea '
                         "WHERE subject = 'M2' AND session = 2 AND trace = 1")
    world.local.execute(f'DELETE FROM "{world.local_schema}".session__trace WHERE subject = \'m1\' AND session = 3',
                        f'DELETE FROM "{world.local_schema}".session WHERE subject = \'m1\' AND session = 3')
    report = link.stale(batch_size=5)
    assert sorted(report.stale) == sorted([b"('m1','1')", b"('M2','2')"]) and report.out_of_step == 1
    assert link.stale("subject = 'M2'").stale == [b"('M2','2')"]
    env = dict(os.environ, LINK_HOST=f"postgresql://{world.source.address}/{world.source.database}",
               LINK_USER=world.source.admin_user, LINK_PASS=world.source.admin_password, LINK_OUTBOUND=world.outbound,
               DJ_USER=world.local.admin_user, DJ_PASS=world.local.admin_password, COLUMNS="300")
    done = subprocess.run([sys.executable, "-m", "djshare", "diff", "--link", f"{world.source_schema}.Session", "-l",
                           f"postgresql://{world.local.address}/{world.local.database}/{world.local_schema}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # 1: stale entities found
    assert "~ session (subject='m1', session=1)\n    note: " in done.stdout and "-> 'changed'" in done.stdout
    assert "~ session__trace (subject='M2', session=2, trace=1)\n    values: " in done.stdout, done.stdout
    assert "2 stale entities (2 changed rows); 1 on one side only" in done.stderr
    # references to objects name the local side, yet an unchanged entity is not stale
    objects = Objects(world, store("file", world.tmp / "source-store", s3, ""),
                      store("file", world.tmp / "local-store", s3, ""))
    objects.link().pull(progress=False)
    assert objects.link().stale().stale == []
    world.source.execute(f'UPDATE "{world.source_schema}".sample SET signal = (SELECT signal FROM '
                         f'"{world.source_schema}".sample WHERE sample = 0) WHERE sample = 2')
    report = objects.link().stale()
    assert report.stale == [b"('2')"]
    assert [(a.kind, a.key, sorted(a.changes)) for a in report.changes] == [("changed", {"sample": 2}, ["signal"])]


def test_refresh_changed_brings_source_changes_in_place(world: World) -> None:
    link = world.link()
    link.pull(progress=False)
    schema = world.source_schema
    world.source.execute(f"UPDATE \"{schema}\".session SET note = 'changed', score = NULL WHERE session = 1",
                         f'DELETE FROM "{schema}".session__trace WHERE subject = \'m1\' AND session = 2 AND trace = 1',
                         f'INSERT INTO "{schema}".session__trace SELECT subject, session, 7, "values" FROM '
                         f'"{schema}".session__trace WHERE subject = \'M2\' AND session = 0 AND trace = 0')
    assert len(link.stale().stale) == 5  # three sessions 1, m1's session 2, M2's session 0
    report = link.pull(progress=False, refresh_changed=True, batch_size=2)
    assert (report.pulled, report.refreshed) == (0, 5)
    assert link.stale().stale == [] and world.same_rows("session") and world.same_rows("session__trace")
    assert link.status()["pulled"] == 12 and link.repair(progress=False).changed == 0


def test_a_refresh_stopped_after_copying_objects_converges(world: World, s3: S3Server) -> None:
    objects = Objects(world, store("file", world.tmp / "source-store", s3, ""),
                      store("file", world.tmp / "local-store", s3, ""))
    objects.link().pull(progress=False)
    world.source.execute(f'UPDATE "{world.source_schema}".sample SET signal = (SELECT signal FROM '
                         f'"{world.source_schema}".sample WHERE sample = 0) WHERE sample = 2')
    before = world.local.query(f'SELECT signal::text FROM "{world.local_schema}".sample WHERE sample = 2')
    with pytest.raises(Crash):
        objects.link().pull(progress=False, refresh_changed=True, checkpoint=crash_at("copy_objects"))
    assert world.local.query(f'SELECT signal::text FROM "{world.local_schema}".sample WHERE sample = 2') == before
    assert objects.link().pull(progress=False, refresh_changed=True).refreshed == 1
    assert objects.link().stale().stale == []


def test_a_local_table_that_no_longer_matches_stops_the_pull(world: World) -> None:
    world.link().pull("session = 0", progress=False)
    world.local.execute(f'ALTER TABLE "{world.local_schema}".session DROP COLUMN note',
                        f'ALTER TABLE "{world.local_schema}".session__trace ALTER COLUMN "values" DROP NOT NULL')
    with pytest.raises(DefinitionMismatchError, match="column `note` of `session` is only in the source; "
                                                      "column `values` of `session__trace` differs"):
        world.link().pull(progress=False)
    assert world.local.query(f'SELECT count(*) FROM "{world.local_schema}".session') == [(3,)]


def test_a_dry_run_a_bad_restriction_and_a_repair_of_a_new_link_change_nothing(world: World) -> None:
    check_a_new_link_changes_nothing(world.link(), lambda: tables_in(world.local, world.local_schema) == 0
                                     and tables_in(world.source, world.outbound) == 0)


def test_a_mapping_to_a_store_the_source_does_not_have_is_refused(world: World) -> None:
    link = world.link(stores={"main": "src_typo"})
    with pytest.raises(ConfigurationError, match="names source store `src_typo`, which table .* does not have"):
        link.pull(progress=False)
    assert tables_in(world.local, world.local_schema) == 0 and tables_in(world.source, world.outbound) == 0


def test_a_silent_partition_fails_after_the_timeout_and_a_rerun_converges(world: World,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL sessions give up on a silent server as MariaDB's do (DJSHARE_TIMEOUT): one djshare error."""
    from djshare.errors import InterruptedOperation
    from tests.proxy import proxy

    monkeypatch.setenv("DJSHARE_TIMEOUT", "3")
    failed: list[BaseException] = []
    with proxy(world.source.host, world.source.port, freeze_after=5_000) as silent:  # the pull session reads about 7 KB
        source = PostgresSchema(world.source_schema, host=silent.address, database=world.source.database,
                                user=world.source.admin_user, password=world.source.admin_password)
        link = PgLink("Session", source, world.schema(world.local, world.local_schema), outbound=world.outbound,
                      batch_size=2)

        def pull() -> None:
            try:
                link.pull(progress=False)
            except BaseException as error:  # noqa: BLE001 - judged below
                failed.append(error)

        worker = threading.Thread(target=pull, daemon=True)
        worker.start()
        worker.join(timeout=60)  # if it hangs after all, leaving the block closes the proxy's sockets: no hang here
        hung = worker.is_alive()
    worker.join(timeout=30)
    assert silent.frozen.is_set(), f"the proxy never froze: the pull read {silent.received} bytes"
    assert not hung, "the pull did not give up on the silent server"
    assert len(failed) == 1 and isinstance(failed[0], InterruptedOperation), failed
    assert "Lost the connection" in str(failed[0]) and "DJSHARE_TIMEOUT" in str(failed[0])
    monkeypatch.delenv("DJSHARE_TIMEOUT")
    again = world.link(lock_timeout=30)
    again.repair(progress=False)
    again.pull(progress=False)
    assert again.status()["pulled"] == 12 and world.same_rows("session") and world.same_rows("session__trace")

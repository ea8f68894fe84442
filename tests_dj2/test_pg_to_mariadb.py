"""The reverse cross-format link (run in .venv2): a DataJoint 2.x table on PostgreSQL, declared and filled by
DataJoint 2.3.5, pulled into a MariaDB schema in DataJoint 0.14's layout that DataJoint 0.14 (in .venv) reads
with the same values. Crashes converge, a local deletion is recorded by repair, what 0.14 cannot hold is
refused before anything changes, and the command line picks this link."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import ConfigurationError
from djshare.link.dj2 import MariaDBSchema
from djshare.link.gc import gc
from djshare.link.pg import PostgresSchema
from djshare.link.pg_mariadb import PgToMariaDBLink
from djshare.sql.connection import ServerAddress, Session
from tests.crash import Crash, crash_at
from tests.servers import MariaDBServer, PostgresServer, S3Server, mariadb_servers, s3_server
from tests_dj2.new_link import check_a_new_link_changes_nothing, tables_in
from tests_dj2.test_dj2_link import connect as connect_mariadb
from tests_dj2.test_pg_link import NUMBERS, Objects, World, read_object, s3, servers, store

__all__ = ["s3", "servers"]  # fixtures


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    with mariadb_servers(1, names=("local",)) as (server,):
        yield server


class Reverse:
    """A 2.x source schema on PostgreSQL (the `World` of the PostgreSQL link tests) and a MariaDB local schema."""

    def __init__(self, world: World, local: MariaDBServer) -> None:
        self.world, self.local = world, local
        self.local_schema = world.local_schema.replace("mine2", "collab")

    def link(self, table: str = "Session", **options: Any) -> PgToMariaDBLink:
        world = self.world
        source = PostgresSchema.source(world.source_schema, host=world.source.address, database=world.source.database,
                                       user=world.source.admin_user, password=world.source.admin_password)
        local = MariaDBSchema(self.local_schema, ServerAddress(self.local.host, self.local.port,
                                                               self.local.admin_user, self.local.admin_password))
        return PgToMariaDBLink(table, source, local, outbound=world.outbound, **options)

    def read_with_dj014(self, stores: dict[str, Any] | None = None) -> Any:
        """What DataJoint 0.14 (in .venv, beside this 2.x environment) fetches from the local schema."""
        python = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
        assert python.exists(), f"{python} is missing: `make venv` builds the DataJoint 0.14 environment"
        output = self.world.tmp / "dj014.pickle"
        settings = {"host": self.local.host, "port": self.local.port, "user": self.local.admin_user,
                    "password": self.local.admin_password, "schema": self.local_schema,
                    "download": str(self.world.tmp / "dj014"), "output": str(output), "stores": stores or {}}
        done = subprocess.run([str(python), str(python.parents[2] / "tests" / "dj014_reader.py"),
                               json.dumps(settings)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return pickle.loads(output.read_bytes())

    def local_keys(self) -> set[tuple[Any, ...]]:
        return set(self.local.query(f"SELECT subject, session FROM `{self.local_schema}`.`session`"))


@pytest.fixture
def reverse(servers: tuple[PostgresServer, PostgresServer], mariadb: MariaDBServer, tmp_path: Path) -> Reverse:
    return Reverse(World(*servers, tmp_path), mariadb)


def test_a_dj2_table_on_postgres_lands_in_a_dj014_schema_that_datajoint_014_reads(reverse: Reverse) -> None:
    link = reverse.link()
    report = link.pull("subject <> 'M2'", progress=False)
    assert (report.pulled, report.part_rows) == (8, 16)
    assert link.pull(progress=False).pulled == 4
    assert link.status() == {"pulling": 0, "pulled": 12, "deletion_requested": 0, "deletion_approved": 0,
                             "local": 12}
    found = reverse.read_with_dj014()
    world = reverse.world
    for label, theirs in (("Session", world.Session), ("Session.Trace", world.Session.Trace)):
        expected = theirs.to_dicts(order_by="KEY")
        rows = sorted(found[label]["rows"], key=lambda r: [r[k] for k in theirs.primary_key])
        expected = sorted(expected, key=lambda r: [r[k] for k in theirs.primary_key])
        assert len(rows) == len(expected) == (12 if label == "Session" else 24)
        for row, want in zip(rows, expected, strict=True):
            for column, value in want.items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(row[column], value), column
                elif column == "gain":  # MariaDB sends FLOAT as text with 6 digits (the stored value: below)
                    assert row[column] == pytest.approx(value, rel=1e-5)
                else:
                    assert row[column] == value, (column, row[column], value)
    stored = dict(reverse.local.query(f"SELECT CONCAT(subject, '/', session), CAST(gain AS DOUBLE) FROM "
                                      f"`{reverse.local_schema}`.`session`"))
    assert stored == {f"{s}/{n}": float(np.float32(g)) for s, n, g in world.source.query(
        f'SELECT subject, session, gain FROM "{world.source_schema}".session')}  # float32 bits kept
    heading = found["Session"]["heading"]
    lines = [" ".join(line.split()) for line in heading.splitlines()]  # as DataJoint 0.14 declares them
    assert {"kind=\"rest\" : enum('rest','task')", "session : int", "gain : float", "score=null : double",
            "note=\"\" : varchar(64) # it's free text", "data : longblob"} <= set(lines)
    assert link.pull(progress=False).pulled == 0 and link.repair(progress=False).changed == 0


@pytest.mark.parametrize("step", ["record_pulling", "insert_local", "mark_pulled"])
def test_a_crash_after_any_step_converges(reverse: Reverse, step: str) -> None:
    world = reverse.world
    with pytest.raises(Crash):
        reverse.link(batch_size=5).pull(progress=False, checkpoint=crash_at(step, occurrence=2))
    held = set(world.source.query(f'SELECT subject, session FROM "{world.outbound}"."{world.source_schema}_session_'
                                  'outbound"'))
    local = reverse.local_keys()
    assert local <= held  # no local row without an outbound row, at any step
    assert reverse.local.query(f"SELECT COUNT(*) FROM `{reverse.local_schema}`.`session__trace`") == \
        [(2 * len(local),)]
    reverse.link().repair(progress=False)
    assert reverse.link().pull(progress=False).pulled + len(local) == 12
    assert reverse.link().status()["pulled"] == 12 and reverse.link().repair(progress=False).changed == 0


def test_a_local_deletion_is_recorded_and_what_0_14_cannot_hold_is_refused(reverse: Reverse, s3: S3Server) -> None:
    world = reverse.world
    link = reverse.link()
    link.pull(progress=False)
    reverse.local.execute(f"DELETE FROM `{reverse.local_schema}`.`session__trace` WHERE subject = 'm1' AND "
                          "session = 1", f"DELETE FROM `{reverse.local_schema}`.`session` WHERE subject = 'm1' AND "
                          "session = 1")
    assert link.repair(progress=False).steps == {"remove_outbound": 1}
    (world.Session & {"subject": "m1", "session": 1}).delete(prompt=False)  # no longer held: the source may
    # path-addressed codecs and raw bytes are refused before anything changes
    world.source.execute(f'CREATE TABLE "{world.source_schema}".stored (id integer PRIMARY KEY, arr jsonb NOT NULL)',
                         f"COMMENT ON COLUMN \"{world.source_schema}\".stored.arr IS ':<npy@main>:'")
    with pytest.raises(ConfigurationError, match="<npy@main>, which has no DataJoint 0.14 equivalent"):
        reverse.link("stored").pull(progress=False)
    world.source.execute(f'CREATE TABLE "{world.source_schema}".raw (id integer NOT NULL PRIMARY KEY, '
                         "data bytea NOT NULL)",
                         f"COMMENT ON COLUMN \"{world.source_schema}\".raw.data IS ':bytes:'")
    with pytest.raises(ConfigurationError, match="raw bytes, which DataJoint 0.14 would read as a serialized blob"):
        reverse.link("raw").pull(progress=False)
    assert reverse.local.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                               "ORDER BY table_name", (reverse.local_schema,)) == [
        ("session",), ("session__trace",), ("~djshare_subscriber",)]
    assert world.source.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                              (world.outbound,)) == [(1,)]


def test_the_command_line_picks_the_reverse_link(reverse: Reverse) -> None:
    world = reverse.world
    env = dict(os.environ, LINK_USER=world.source.admin_user, LINK_PASS=world.source.admin_password,
               LINK_OUTBOUND=world.outbound, DJ_HOST=reverse.local.address, DJ_USER=reverse.local.admin_user,
               DJ_PASS=reverse.local.admin_password, COLUMNS="300")
    done = subprocess.run([sys.executable, "-m", "djshare", "pull", f"{world.source_schema}.Session", "-l",
                           reverse.local_schema, "--source-host",
                           f"postgresql://{world.source.address}/{world.source.database}", "-w", "session < 2"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "pulled 6 entities (12 part rows" in done.stdout, done.stderr
    assert len(reverse.local_keys()) == 6


@pytest.fixture(scope="module")
def open_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto without request signatures: moto 5.2.5 refuses signed requests for keys with `'` (0.14 puts the
    attachment's name in its key) as it does for `=` and `+` (see s3_server)."""
    with s3_server(tmp_path_factory.mktemp("moto-open"), authenticate=False) as server:
        yield server


@pytest.mark.parametrize("local_kind", ["file", "s3"])
def test_objects_in_stores_become_0_14_external_objects(reverse: Reverse, open_s3: S3Server, local_kind: str) -> None:
    world, s3 = reverse.world, open_s3
    Objects(world, store("file", world.tmp / "source-store", s3, ""), {})  # the source table, its objects
    local_store = store(local_kind, world.tmp / "local-store", s3, f"local-014-{next(NUMBERS)}")

    def exists(full_path: str) -> bool:  # a path as the store calls it (S3: the key, location included)
        if local_kind == "file":
            return Path(full_path).exists()
        return "Contents" in s3.client().list_objects_v2(Bucket=local_store["bucket"], Prefix=full_path)

    def link(**options: Any) -> PgToMariaDBLink:
        return reverse.link("Sample", local_stores={"main": local_store}, **options)

    world.source.execute(f'UPDATE "{world.source_schema}".sample SET document = NULL WHERE sample = 5')
    with pytest.raises(Crash):  # objects copied, rows not inserted yet: the next run converges
        link(batch_size=2).pull(progress=False, checkpoint=crash_at("copy_objects", occurrence=2))
    link().repair(progress=False)
    report = link().pull(progress=False)
    assert (report.pulled, report.objects) == (4, 4)  # the 4 signals of samples 2-5; the document is there
    assert link().pull(progress=False).objects == 0
    # 0.14's layout: ~external_main rows, objects at {schema}/{ab}/{cd}/{hex}[.{attachment name}]
    tracked = reverse.local.query(f"SELECT HEX(hash), size, attachment_name FROM `{reverse.local_schema}`."
                                  "`~external_main` ORDER BY size")
    assert len(tracked) == 7 and [r[2] for r in tracked].count("it's a note.txt") == 1
    for hash_hex, size, attachment in tracked:
        hex_ = hash_hex.lower()
        path = f"{reverse.local_schema}/{hex_[:2]}/{hex_[2:4]}/{hex_}" + (f".{attachment}" if attachment else "")
        assert len(read_object(local_store, s3, path)) == size
    found = reverse.read_with_dj014({"main": dict(local_store)})["Sample"]
    rows = sorted(found["rows"], key=lambda r: r["sample"])
    assert [np.array_equal(row["signal"], np.arange(i * 100 + 1)) for i, row in enumerate(rows)] == [True] * 6
    assert [row["document"] for row in rows] == [None, ("it's a note.txt", b"\x00\xff note " * 100)] * 2 + \
        [None, None]
    assert "signal               : blob@main" in found["heading"]
    # a changed reference is stale (objects compare by their MD5) and refresh points the row at the object
    assert link().stale().stale == []
    world.source.execute(f'UPDATE "{world.source_schema}".sample SET signal = (SELECT signal FROM '
                         f'"{world.source_schema}".sample WHERE sample = 0) WHERE sample = 2')
    assert link().stale().stale == [b"('2')"]
    assert link().pull(progress=False, refresh_changed=True).refreshed == 1 and link().stale().stale == []
    rows = sorted(reverse.read_with_dj014({"main": dict(local_store)})["Sample"]["rows"], key=lambda r: r["sample"])
    assert np.array_equal(rows[2]["signal"], np.arange(1))
    # gc deletes what the link wrote and no row references any more, with its ~external row: the signals of
    # samples 3 and 4, and sample 2's former one (the refresh pointed the row at sample 0's)
    reverse.local.execute(f"DELETE FROM `{reverse.local_schema}`.`sample` WHERE sample IN (3, 4)")
    link().repair(progress=False)
    address = ServerAddress(reverse.local.host, reverse.local.port, reverse.local.admin_user,
                            reverse.local.admin_password)
    # the command line, beside DataJoint 2.x (no 0.14 here): the local stores come from 2.x's own settings
    env = dict(os.environ, DJ_HOST=reverse.local.address, DJ_USER=reverse.local.admin_user,
               DJ_PASS=reverse.local.admin_password, DJ_STORES=json.dumps({"main": local_store}), COLUMNS="300")
    dry = subprocess.run([sys.executable, "-m", "djshare", "gc", "-l", reverse.local_schema, "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "would delete 3 objects" in dry.stdout, dry.stdout + dry.stderr
    with Session(address) as session:
        deleted = gc(session, reverse.local_schema, {"main": local_store})
    assert len(deleted.deleted) == 3 and not any(exists(p) for p in deleted.deleted)
    assert reverse.local.query(f"SELECT COUNT(*) FROM `{reverse.local_schema}`.`~external_main`") == [(4,)]
    assert len(reverse.read_with_dj014({"main": dict(local_store)})["Sample"]["rows"]) == 4  # the rest still reads


def test_changed_source_rows_are_found_and_refreshed(reverse: Reverse) -> None:
    world, schema = reverse.world, reverse.world.source_schema
    link = reverse.link()
    link.pull(progress=False)
    assert link.stale().stale == [] and link.stale().out_of_step == 0  # float32, uuid-free, enum, decimal: equal
    world.source.execute(
        f"UPDATE \"{schema}\".session SET note = 'changed', score = NULL WHERE session = 1",
        f"UPDATE \"{schema}\".session SET gain = 0.1 WHERE subject = 'M2' AND session = 3",
        f'DELETE FROM "{schema}".session__trace WHERE subject = \'m1\' AND session = 2 AND trace = 1',
        f'INSERT INTO "{schema}".session__trace SELECT subject, session, 7, "values" FROM "{schema}".session__trace '
        "WHERE subject = 'M2' AND session = 0 AND trace = 0")
    reverse.local.execute(f"DELETE FROM `{reverse.local_schema}`.`session__trace` WHERE subject = 'm1' AND "
                          "session = 3", f"DELETE FROM `{reverse.local_schema}`.`session` WHERE subject = 'm1' AND "
                          "session = 3")
    report = link.stale(batch_size=4)
    # three sessions 1, M2's session 3 (a float32), m1's session 2 (a dropped part), M2's session 0 (a new part)
    assert len(report.stale) == 6 and report.out_of_step == 1
    kinds = sorted((a.kind, a.branch, sorted(a.changes)) for a in report.changes)
    assert ("changed", "session", ["gain"]) in kinds and ("added", "session__trace", []) in kinds
    assert ("removed", "session__trace", []) in kinds  # a part row the source added, one it dropped
    with pytest.raises(Crash):  # the first batch of two is refreshed, then the process dies
        link.pull(progress=False, refresh_changed=True, batch_size=2, checkpoint=crash_at("refresh_local"))
    assert len(link.stale().stale) == 4
    report = link.pull(progress=False, refresh_changed=True, batch_size=2)
    assert report.refreshed == 4 and link.stale().stale == []
    assert reverse.local.query(f"SELECT note, score FROM `{reverse.local_schema}`.`session` WHERE subject = 'é''q' "
                               "AND session = 1") == [("changed", None)]
    assert reverse.local.query(f"SELECT COUNT(*) FROM `{reverse.local_schema}`.`session__trace`") == [(22,)]
    env = dict(os.environ, LINK_USER=world.source.admin_user, LINK_PASS=world.source.admin_password,
               LINK_OUTBOUND=world.outbound, DJ_HOST=reverse.local.address, DJ_USER=reverse.local.admin_user,
               DJ_PASS=reverse.local.admin_password, COLUMNS="300")
    world.source.execute(f"UPDATE \"{schema}\".session SET note = 'again' WHERE subject = 'M2' AND session = 2")
    done = subprocess.run([sys.executable, "-m", "djshare", "diff", "--link", f"{schema}.Session", "-l",
                           reverse.local_schema, "--source-host",
                           f"postgresql://{world.source.address}/{world.source.database}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # 1: stale entities found
    assert "~ session (subject='M2', session=2)\n    note: " in done.stdout and "-> 'again'" in done.stdout, done.stdout
    assert "1 stale entities (1 changed rows); 1 on one side only" in done.stderr


def test_into_a_dj2_schema_on_mariadb_that_datajoint_2_reads(reverse: Reverse, s3: S3Server) -> None:
    world = reverse.world
    link = reverse.link(format="dj2")  # (layout="dj2", the name of earlier releases, below)
    assert link.pull(progress=False).pulled == 12
    mine = dj.VirtualModule("mine", reverse.local_schema, connection=connect_mariadb(reverse.local))
    for theirs, ours in ((world.Session, mine.Session), (world.Session.Trace, mine.Session.Trace)):
        key = theirs.primary_key
        expected = sorted(theirs.to_dicts(), key=lambda r: [r[k] for k in key])
        found = sorted(ours.to_dicts(), key=lambda r: [r[k] for k in key])
        assert len(found) == len(expected) > 0
        for row, want in zip(found, expected, strict=True):
            for column, value in want.items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(row[column], value), column
                elif column == "gain":  # MariaDB sends FLOAT as 6-digit text (the stored float32 is exact)
                    assert row[column] == pytest.approx(value, rel=1e-5)
                else:
                    assert row[column] == value, (column, row[column], value)
    comments = dict(reverse.local.query("SELECT column_name, column_comment FROM information_schema.columns WHERE "
                                        "table_schema = %s AND table_name = 'session'", (reverse.local_schema,)))
    assert (comments["session"], comments["data"], comments["gain"]) == (":int32:", ":<blob>:", ":float32:")
    assert ("session__trace", "subject", f"{reverse.local_schema}.subject.subject") in set(reverse.local.query(
        f"SELECT * FROM `{reverse.local_schema}`.`~lineage`"))
    with pytest.raises(ConfigurationError, match="2.x's format, not the link's \\(0.14\\)"):
        reverse.link().pull(progress=False)  # a schema is never filled in the other layout
    Objects(world, store("file", world.tmp / "source-store", s3, ""), {})
    with pytest.raises(ConfigurationError, match="cannot insert in-store codecs on MariaDB"):
        reverse.link("Sample", layout="dj2").pull(progress=False)
    assert reverse.local.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND "
                               "table_name = 'sample'", (reverse.local_schema,)) == [(0,)]


def test_a_dry_run_a_bad_restriction_and_a_repair_of_a_new_link_change_nothing(reverse: Reverse) -> None:
    world = reverse.world
    check_a_new_link_changes_nothing(reverse.link(), lambda: tables_in(reverse.local, reverse.local_schema) == 0
                                     and tables_in(world.source, world.outbound) == 0)


def test_a_mapping_to_a_store_the_source_does_not_have_is_refused(reverse: Reverse) -> None:
    with pytest.raises(ConfigurationError, match="names source store `src_typo`, which table .* does not have"):
        reverse.link(stores={"main": "src_typo"}).pull(progress=False)
    assert tables_in(reverse.local, reverse.local_schema) == 0 and tables_in(reverse.world.source,
                                                                            reverse.world.outbound) == 0

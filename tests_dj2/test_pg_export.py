"""Exports of DataJoint 2.x schemas on PostgreSQL (run in .venv2): rows chosen by SQL restrictions, closed over
foreign keys and part tables inside the server, copied into another PostgreSQL server with their `~lineage`
rows and the objects their references name; DataJoint 2.3 reads the copy as its own schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import DjshareError, UnknownTableError
from djshare.export import capture2
from djshare.export.pg import copy, restore, verify, write
from djshare.sql.connection import ServerAddress
from djshare.sync.diff import compare
from djshare.sync.sources import Table
from tests.servers import PostgresServer, S3Server
from tests_dj2.test_pg_link import Objects, World, connect, s3, servers, store  # noqa: F401 - fixtures


def address(server: PostgresServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password, backend="postgresql",
                         database=server.database)


def table(server: PostgresServer, schema: str, name: str, where: str = "") -> Table:
    return Table(address(server), schema, name, where)


@pytest.fixture
def world(servers: tuple[PostgresServer, PostgresServer], tmp_path: Path) -> World:  # noqa: F811
    return World(*servers, tmp_path)


def test_a_dj2_slice_is_copied_into_another_postgres_server(world: World) -> None:
    schema = world.source_schema
    copied = copy(address(world.source), [(f"{schema}.session__trace", "subject = 'm1' AND trace = 0")],
                  address(world.local), progress=False)  # a part row brings its master, the master its parts
    assert {(c.table, c.rows) for c in copied} == {("subject", 1), ("session", 4), ("session__trace", 8),
                                                   ("~lineage", 6)}
    for name in ("subject", "session", "session__trace"):
        assert list(compare(table(world.source, schema, name, "subject = 'm1'"), table(world.local, schema, name),
                            name)) == []
    copy_of = dj.VirtualModule("copy_of", schema, connection=connect(world.local))
    assert copy_of.Session.describe(printout=False) == world.Session.describe(printout=False)
    mine, theirs = copy_of.Session.to_dicts(order_by="KEY"), (world.Session & "subject = 'm1'").to_dicts(
        order_by="KEY")
    assert len(mine) == len(theirs) == 4
    for row, want in zip(mine, theirs, strict=True):
        assert np.array_equal(row.pop("data"), want.pop("data")) and row == want
    with pytest.raises(DjshareError, match="already has"):  # nothing is overwritten
        copy(address(world.source), [(f"{schema}.session", "")], address(world.local), progress=False)


def test_objects_go_to_the_target_stores(world: World, s3: S3Server) -> None:  # noqa: F811
    objects = Objects(world, store("file", world.tmp / "source-store", s3, ""),
                      store("file", world.tmp / "target-store", s3, ""))
    copied = copy(address(world.source), [(f"{world.source_schema}.sample", "sample >= 3")], address(world.local),
                  stores=({"main": objects.source_store}, {"main": objects.local_store}), progress=False)
    assert {(c.table, c.rows) for c in copied} == {("sample", 3), ("~lineage", 1)}
    dj.config["stores"] = {"main": objects.local_store}
    dj.config["download_path"] = str(world.tmp / "download")
    copy_of = dj.VirtualModule("copy_of", world.source_schema, connection=connect(world.local))
    found = copy_of.Sample.to_dicts(order_by="KEY")
    assert [np.array_equal(row["signal"], np.arange(i * 100 + 1)) for i, row in zip(range(3, 6), found,
                                                                                       strict=True)] == [True] * 3
    assert [Path(row["document"]).read_bytes() if row["document"] else None for row in found] == \
        [b"\x00\xff note " * 100, None, b"\x00\xff note " * 100]


def test_bad_restrictions_are_refused_before_anything_changes(world: World) -> None:
    schema = world.source_schema
    with pytest.raises(UnknownTableError, match="No table .*sesion"):
        copy(address(world.source), [(f"{schema}.sesion", "")], address(world.local), progress=False)
    with pytest.raises(DjshareError, match="restriction"):
        copy(address(world.source), [(f"{schema}.session", "subjekt = 'm1'")], address(world.local),
             progress=False)
    assert world.local.query("SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                             (schema,)) == [(0,)]


def test_the_command_line_copies_between_postgres_servers(world: World) -> None:
    env = dict(os.environ, DJSHARE_SOURCE_USER=world.source.admin_user, DJSHARE_SOURCE_PASS=world.source.admin_password,
               DJSHARE_TARGET_USER=world.local.admin_user, DJSHARE_TARGET_PASS=world.local.admin_password,
               COLUMNS="300")
    source = f"postgresql://{world.source.address}/{world.source.database}"
    target = f"postgresql://{world.local.address}/{world.local.database}"
    done = subprocess.run([sys.executable, "-m", "djshare", "export", "copy", "--from", source, "--to", target, "-r",
                           f"{world.source_schema}.session: subject = 'm1'"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "copied 19 rows of 4 tables; checksums match" in done.stdout, done.stderr
    # `djshare tables` is the hidden name of earlier releases for the same commands
    mixed = subprocess.run([sys.executable, "-m", "djshare", "tables", "copy", source, world.local.address, "-r",
                            f"{world.source_schema}.session"], env=env, capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 1 and "two MariaDB servers or two PostgreSQL servers" in mixed.stderr


def test_a_bundle_with_objects_restores_and_verifies(world: World, s3: S3Server) -> None:  # noqa: F811
    objects = Objects(world, store("file", world.tmp / "source-store", s3, ""),
                      store("file", world.tmp / "target-store", s3, ""))
    rows = [(f"{world.source_schema}.sample", "sample >= 3"), (f"{world.source_schema}.session", "subject = 'm1'")]
    entries = write(address(world.source), rows, world.tmp / "bundle", stores={"main": objects.source_store},
                    progress=False)
    assert {(e.table, e.rows) for e in entries} == {("sample", 3), ("subject", 1), ("session", 4),
                                                    ("session__trace", 8), ("~lineage", 7)}
    assert len([p for p in (world.tmp / "bundle" / "objects" / "main").rglob("*") if p.is_file()]) == 4
    restore(world.tmp / "bundle", address(world.local), stores={"main": objects.local_store}, progress=False)
    assert verify(world.tmp / "bundle", address(world.local)).problems == []
    dj.config["stores"] = {"main": objects.local_store}
    dj.config["download_path"] = str(world.tmp / "download")
    copy_of = dj.VirtualModule("copy_of", world.source_schema, connection=connect(world.local))
    assert [np.array_equal(row["signal"], np.arange(i * 100 + 1)) for i, row in zip(
        range(3, 6), copy_of.Sample.to_dicts(order_by="KEY"), strict=True)] == [True] * 3
    assert list(compare(table(world.source, world.source_schema, "session", "subject = 'm1'"),
                        table(world.local, world.source_schema, "session"), "session")) == []
    world.local.execute(f'UPDATE "{world.source_schema}".session SET note = \'changed\' WHERE session = 0')
    assert verify(world.tmp / "bundle", address(world.local)).problems == [
        f"{world.source_schema}.session has 4 rows (bundle: 4), with other values"]
    with pytest.raises(DjshareError, match="already has"):
        restore(world.tmp / "bundle", address(world.local), stores={"main": objects.local_store}, progress=False)


def test_bundles_from_the_command_line(world: World, tmp_path: Path) -> None:
    env = dict(os.environ, DJSHARE_SOURCE_USER=world.source.admin_user, DJSHARE_SOURCE_PASS=world.source.admin_password,
               DJSHARE_TARGET_USER=world.local.admin_user, DJSHARE_TARGET_PASS=world.local.admin_password,
               COLUMNS="300")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    source = f"postgresql://{world.source.address}/{world.source.database}"
    target = f"postgresql://{world.local.address}/{world.local.database}"
    done = djshare("write", str(tmp_path / "bundle"), "--from", source, "-r",
                   f"{world.source_schema}.session: subject = 'm1'")
    assert done.returncode == 0 and "wrote 19 rows of 4 tables" in done.stdout, done.stderr
    done = djshare("preview", "--from", source, "-r", f"{world.source_schema}.session: subject = 'm1'")
    assert done.returncode == 0 and "19 rows in 4 tables" in done.stdout, done.stderr
    wrong = djshare("restore", str(tmp_path / "bundle"), "--to", world.local.address)
    assert wrong.returncode == 1 and "holds a PostgreSQL export" in wrong.stderr, wrong.stderr
    done = djshare("restore", str(tmp_path / "bundle"), "--to", target)
    assert done.returncode == 0 and "restored 19 rows of 4 tables" in done.stdout, done.stderr
    done = djshare("verify", str(tmp_path / "bundle"), "--to", target)
    assert done.returncode == 0 and "verified 19 rows of 4 tables" in done.stdout, done.stderr


def test_a_capture_records_what_an_analysis_fetched_and_exports_it(world: World) -> None:
    schema = world.source_schema
    connection = world.Session.connection
    with capture2.capture("paper", "figure 1"):
        mice = (world.Session & "subject = 'm1'").to_dicts()  # 4 sessions
        keys = (world.Subject * world.Session & "session = 2").keys()  # one session of each subject
        first = world.Session.Trace.to_dicts(order_by="KEY", limit=2)  # M2's session 0, traces 0 and 1
    world.Session.to_dicts()  # outside the capture: not recorded
    with capture2.capture("paper", "figure 2"):
        (world.Subject & "subject = 'M2'").fetch1()
    assert (len(mice), len(keys), len(first)) == (4, 3, 2)
    recorded = capture2.restrictions(connection, "paper")
    assert [table for table, _ in recorded] == [f"{schema}.session", f"{schema}.subject", f"{schema}.session",
                                                f"{schema}.session__trace", f"{schema}.subject"]  # in query order
    copied = copy(address(world.source), recorded, address(world.local), progress=False)
    # the sessions fetched (m1's four, session 2 of M2 and é'q, M2's session 0 through its traces) with all
    # their traces, and the subjects they need
    assert {(c.table, c.rows) for c in copied} == {("subject", 3), ("session", 7), ("session__trace", 14),
                                                   ("~lineage", 6)}
    assert capture2.forget(connection, "paper", "figure 2") == 1
    assert len(capture2.restrictions(connection, "paper")) == 4
    # the command line reads the captures without DataJoint
    env = dict(os.environ, DJSHARE_SOURCE_USER=world.source.admin_user, DJSHARE_SOURCE_PASS=world.source.admin_password,
               COLUMNS="300")
    source = f"postgresql://{world.source.address}/{world.source.database}"
    done = subprocess.run([sys.executable, "-m", "djshare", "export", "write", "paper", str(world.tmp / "paper"),
                           "--from", source], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "wrote 30 rows of 4 tables" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, "-m", "djshare", "tables", "write", source, str(world.tmp / "none"),
                           "--paper", "unknown"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Nothing was captured for paper 'unknown'" in done.stderr, done.stderr
    assert not (world.tmp / "none").exists()


def test_captures_opened_on_the_server_record_what_following_processes_fetch(world: World) -> None:
    source, schema = address(world.source), world.source_schema
    assert capture2.open_capture(source, "paper 2", "figure 3") is True
    assert capture2.open_capture(source, "paper 2", "figure 3") is False  # open already
    assert [(p, a) for _, p, a, _ in capture2.open_captures(source) if p == "paper 2"] == [("paper 2", "figure 3")]
    (world.Session & "session = 1").to_dicts()  # this process does not follow yet: not recorded
    capture2.follow()
    try:
        (world.Session & "session = 3").to_dicts()
        assert capture2.close_captures(source, "paper 2") == 1
        (world.Session & "session = 0").to_dicts()  # stopped: not recorded
    finally:
        capture2.unfollow()
    recorded = capture2.recorded(source, "paper 2")
    assert [table for table, _ in recorded] == [f"{schema}.session"]
    assert [(a, n) for p, a, n, _, _ in capture2.summaries(source) if p == "paper 2"] == [("figure 3", 1)]
    copied = copy(source, recorded, address(world.local), progress=False)
    assert {(c.table, c.rows) for c in copied} == {("subject", 3), ("session", 3), ("session__trace", 6),
                                                   ("~lineage", 6)}
    assert capture2.close_captures(source, "paper 2") == 0
    assert [p for _, p, _, _ in capture2.open_captures(source) if p == "paper 2"] == []
    # the same from the command line, without DataJoint
    env = dict(os.environ, DJSHARE_SOURCE_USER=world.source.admin_user, DJSHARE_SOURCE_PASS=world.source.admin_password,
               COLUMNS="300")
    server = f"postgresql://{world.source.address}/{world.source.database}"

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args, "--from", server], env=env,
                              capture_output=True, text=True, timeout=120)

    done = djshare("start", "paper 3", "figure 1")
    assert done.returncode == 0 and "capturing paper 3/figure 1" in done.stdout, done.stderr
    done = djshare("list")
    assert done.returncode == 0 and re.search(r"paper 2\W+figure 3\W+1\W", done.stdout), done.stdout
    assert re.search(rf"{world.source.admin_user}\W+paper 3\W+figure 1\W", done.stdout), done.stdout
    capture2.follow()
    try:
        (world.Subject & "subject = 'm1'").to_dicts()
    finally:
        capture2.unfollow()
    done = djshare("stop", "paper 3")
    assert done.returncode == 0 and "stopped 1 capture of paper 3" in done.stdout, done.stderr
    again = djshare("stop", "paper 3")
    assert again.returncode == 1 and "no open capture of paper 3" in again.stderr, again.stderr
    assert capture2.recorded(source, "paper 3")[0][0] == f"{schema}.subject"


def test_a_damaged_bundle_is_refused_and_a_failed_restore_leaves_nothing(world: World, tmp_path: Path) -> None:
    import json

    schema = world.source_schema
    entries = write(address(world.source), [(f"{schema}.session", "subject = 'm1'")], tmp_path / "bundle",
                    progress=False)
    session = next(e for e in entries if e.table == "session")
    data = tmp_path / "bundle" / session.data
    original = data.read_bytes()
    data.write_bytes(original[:-40] + bytes([original[-40] ^ 1]) + original[-39:])  # one bit of one value
    with pytest.raises(DjshareError, match=rf"{session.data} \({schema}.session\) does not match its SHA-256.*"
                                           "Nothing was changed"):
        restore(tmp_path / "bundle", address(world.local), progress=False)
    # a bundle written before files had checksums: the rows are checked after loading, inside the transaction
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    del manifest["files"]
    (tmp_path / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DjshareError, match=rf"{schema}.session has 4 rows .*other values.*Nothing was restored"):
        restore(tmp_path / "bundle", address(world.local), progress=False)
    assert world.local.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                             (schema,)) == [(0,)]
    data.unlink()
    with pytest.raises(DjshareError, match=rf"lacks {session.data} \({schema}.session\).*Nothing was changed"):
        restore(tmp_path / "bundle", address(world.local), progress=False)
    data.write_bytes(original)
    restore(tmp_path / "bundle", address(world.local), progress=False)
    assert verify(tmp_path / "bundle", address(world.local)).problems == []

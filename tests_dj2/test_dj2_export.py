"""Exports of DataJoint 2.x schemas on MariaDB (run in .venv2): rows chosen by SQL restrictions, closed over
foreign keys and part tables, written as a bundle and restored, or copied straight into another server; the
`~lineage` rows go along and DataJoint 2.3 reads the result as its own schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import DjshareError, UnknownTableError
from djshare.export import capture2
from djshare.export.tables import copy, restore, verify, write
from djshare.sql.connection import ServerAddress
from djshare.sync.diff import compare
from djshare.sync.sources import Table
from tests.servers import MariaDBServer, mariadb_servers
from tests_dj2.test_dj2_link import World, connect


@pytest.fixture(scope="module")
def three() -> Iterator[tuple[MariaDBServer, MariaDBServer, MariaDBServer]]:
    assert dj.__version__.startswith("2."), dj.__version__
    with mariadb_servers(3) as (source, archive, other):
        yield source, archive, other


def address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


def table(server: MariaDBServer, schema: str, name: str, where: str = "") -> Table:
    return Table(address(server), schema, name, where)


def assert_exported(world: World, target: MariaDBServer) -> None:
    """`target` holds exactly m1's sessions, their traces, the subject they reference, and the lineage rows."""
    schema = world.source_schema
    for name, where in (("session", "subject = 'm1'"), ("session__trace", "subject = 'm1'"),
                        ("subject", "subject = 'm1'")):
        assert list(compare(table(world.source, schema, name, where), table(target, schema, name), name)) == []
    assert sorted(target.query(f"SELECT * FROM `{schema}`.`~lineage`")) == sorted(world.source.query(
        f"SELECT * FROM `{schema}`.`~lineage` WHERE table_name IN ('session', 'session__trace', 'subject')"))
    restored = dj.VirtualModule("restored", schema, connection=connect(target))
    mine = restored.Session.to_dicts(order_by="KEY")
    theirs = (world.Session & "subject = 'm1'").to_dicts(order_by="KEY")
    assert len(mine) == len(theirs) == 4
    for row, want in zip(mine, theirs, strict=True):
        assert np.array_equal(row.pop("data"), want.pop("data"))
        assert row == want
    assert len(restored.Session.Trace()) == 8 and restored.Subject.to_dicts() == [{"subject": "m1", "weight": 20.5}]


def test_a_bundle_of_a_dj2_schema_restores_and_verifies(three: tuple[MariaDBServer, ...], tmp_path: Path) -> None:
    source, archive, _ = three
    world = World(source, archive, tmp_path)
    entries = write(address(source), [(f"{world.source_schema}.session", "subject = 'm1'")], tmp_path / "bundle",
                    progress=False)
    assert {(e.table, e.rows) for e in entries} == {("subject", 1), ("session", 4), ("session__trace", 8),
                                                    ("~lineage", 6)}
    restore(tmp_path / "bundle", address(archive), progress=False)
    assert verify(tmp_path / "bundle", address(archive)).problems == []
    assert_exported(world, archive)
    with pytest.raises(DjshareError, match="already has"):  # nothing is overwritten
        restore(tmp_path / "bundle", address(archive), progress=False)


def test_a_dj2_slice_is_copied_straight_into_another_server(three: tuple[MariaDBServer, ...], tmp_path: Path) -> None:
    source, _, other = three
    world = World(source, other, tmp_path)
    copied = copy(address(source), [(f"{world.source_schema}.session__trace", "subject = 'm1' AND trace = 0")],
                  address(other), progress=False)  # part rows bring their master, and the master its parts
    assert {(c.table, c.rows) for c in copied} == {("subject", 1), ("session", 4), ("session__trace", 8),
                                                   ("~lineage", 6)}
    assert_exported(world, other)


def test_bad_restrictions_are_refused_before_anything_is_written(three: tuple[MariaDBServer, ...],
                                                                 tmp_path: Path) -> None:
    source, _, _ = three
    world = World(source, three[1], tmp_path)
    with pytest.raises(UnknownTableError, match="No table `.*`.`sesion`"):
        write(address(source), [(f"{world.source_schema}.sesion", "")], tmp_path / "a", progress=False)
    with pytest.raises(DjshareError, match="restriction"):
        write(address(source), [(f"{world.source_schema}.session", "subjekt = 'm1'")], tmp_path / "b",
              progress=False)
    with pytest.raises(DjshareError, match="is not SCHEMA.TABLE"):
        write(address(source), [("session", "")], tmp_path / "c", progress=False)
    assert not any(tmp_path.glob("[abc]*")) and not any(tmp_path.glob(".[abc]*"))


def test_the_command_line_writes_restores_and_verifies(three: tuple[MariaDBServer, ...], tmp_path: Path) -> None:
    source, _, other = three
    world = World(source, other, tmp_path)
    env = dict(os.environ, DJSHARE_SOURCE_USER=source.admin_user, DJSHARE_SOURCE_PASS=source.admin_password,
               DJSHARE_TARGET_USER=other.admin_user, DJSHARE_TARGET_PASS=other.admin_password, COLUMNS="300")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    rows = f"{world.source_schema}.session: subject = 'm1'"
    done = djshare("write", str(tmp_path / "bundle"), "--from", source.address, "-r", rows)
    assert done.returncode == 0 and "wrote 19 rows of 4 tables" in done.stdout, done.stderr
    done = djshare("restore", str(tmp_path / "bundle"), "--to", other.address)
    assert done.returncode == 0 and "restored 19 rows of 4 tables" in done.stdout, done.stderr
    done = djshare("verify", str(tmp_path / "bundle"), "--to", other.address)
    assert done.returncode == 0 and "verified 19 rows of 4 tables" in done.stdout, done.stderr
    assert_exported(world, other)
    refused = djshare("write", str(tmp_path / "again"), "--from", source.address, "-r",
                      f"{world.source_schema}.sesion")
    assert refused.returncode == 1 and "No table" in refused.stderr and "Traceback" not in refused.stderr


def test_a_capture_on_mariadb_records_what_was_fetched(three: tuple[MariaDBServer, ...], tmp_path: Path) -> None:
    source, _, other = three
    world = World(source, other, tmp_path)
    with capture2.capture("paper", "figure 1", schema="djshare_capture_test"):
        (world.Session & "subject = 'm1'").to_dicts()
        (world.Session.Trace & "subject = 'm1'").fetch("KEY", order_by="KEY", limit=1)
    recorded = capture2.restrictions(world.Session.connection, "paper", schema="djshare_capture_test")
    assert [table for table, _ in recorded] == [f"{world.source_schema}.session",
                                                f"{world.source_schema}.session__trace"]
    copied = copy(address(source), recorded, address(other), progress=False)
    assert {(c.table, c.rows) for c in copied} == {("subject", 1), ("session", 4), ("session__trace", 8),
                                                   ("~lineage", 6)}
    assert_exported(world, other)


def test_captures_opened_on_a_mariadb_server(three: tuple[MariaDBServer, ...], tmp_path: Path) -> None:
    source, _, _ = three
    world = World(source, source, tmp_path)
    schema = "djshare_open_test"
    assert capture2.open_capture(address(source), "paper", "figure 1", schema=schema) is True
    capture2.follow(schema)
    try:
        (world.Session & "subject = 'm2'").to_dicts()
    finally:
        capture2.unfollow(schema)
    assert capture2.close_captures(address(source), "paper", "figure 1", schema=schema) == 1
    assert [table for table, _ in capture2.recorded(address(source), "paper", schema)] == \
        [f"{world.source_schema}.session"]

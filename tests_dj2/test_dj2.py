"""DataJoint 2.x (run in its own environment, .venv2: DataJoint 2.x and 0.14 cannot be installed together).

A pipeline declared by DataJoint 2.3 on a real PostgreSQL 15 is a diff side like any table: compared exactly
with a copy on MariaDB (as a 0.14 pipeline would hold it: in-table blobs), changes found, applied; the command
line works here, and the commands that need DataJoint 0.14 (links, exports) refuse with the fix named."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare.sql.connection import ServerAddress
from djshare.sync.actions import counts
from djshare.sync.datastore import Datastore, sync
from djshare.sync.diff import compare
from djshare.sync.handlers import ApplyToTables
from djshare.sync.sources import Table, datajoint
from tests.servers import MariaDBServer, PostgresServer, mariadb_servers, postgres_server

SCHEMA = "lab2"


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[PostgresServer, MariaDBServer, dict[str, Any]]]:
    assert dj.__version__.startswith("2."), dj.__version__
    with postgres_server() as pg, mariadb_servers(1, names=("copy",)) as (maria,):
        dj.config["database.backend"] = "postgresql"
        dj.config["database.host"] = pg.host
        dj.config["database.port"] = pg.port
        dj.config["database.user"] = pg.admin_user
        dj.config["database.password"] = pg.admin_password
        dj.config["database.name"] = pg.database
        dj.config["database.use_tls"] = False
        schema = dj.Schema(SCHEMA)

        @schema
        class Subject(dj.Manual):
            definition = """
            subject : varchar(16)
            ---
            weight : float32
            born = null : date
            data : <blob>
            """

        rng = np.random.default_rng(3)
        Subject.insert([{"subject": name, "weight": float(i) / 3, "born": None if i % 2 else f"2020-01-0{i + 1}",
                         "data": rng.normal(size=(2, i + 1))} for i, name in enumerate(["a", "B", "c", "Z", "é"])])
        maria.execute(f"CREATE DATABASE `{SCHEMA}`",
                      f"CREATE TABLE `{SCHEMA}`.`subject` (`subject` varchar(16) NOT NULL, `weight` float NOT NULL, "
                      "`born` date NULL, `data` longblob NOT NULL, PRIMARY KEY (`subject`))")
        with maria.connect() as connection, connection.cursor() as cursor:  # the same rows, byte for byte
            cursor.executemany(f"INSERT INTO `{SCHEMA}`.`subject` VALUES (%s, %s, %s, %s)",
                               pg.query(f"SELECT subject, weight, born, data FROM {SCHEMA}.subject"))
        yield pg, maria, {"Subject": Subject, "schema": schema}


def pg_table(pg: PostgresServer) -> Table:
    return Table(ServerAddress(pg.host, pg.port, pg.admin_user, pg.admin_password, backend="postgresql",
                               database=pg.database), SCHEMA, "subject")


def maria_table(maria: MariaDBServer) -> Table:
    return Table(ServerAddress(maria.host, maria.port, maria.admin_user, maria.admin_password), SCHEMA, "subject")


def test_a_dj2_table_on_postgres_diffs_and_syncs_with_mariadb(
        world: tuple[PostgresServer, MariaDBServer, dict[str, Any]]) -> None:
    pg, maria, pipeline = world
    assert list(compare(pg_table(pg), maria_table(maria), "subject")) == []
    pipeline["Subject"].update1({"subject": "c", "data": np.arange(4)})  # DataJoint 2.x changes a blob
    pipeline["Subject"].insert1({"subject": "new", "weight": 1.25, "born": None, "data": np.zeros(2)})
    actions = list(compare(pg_table(pg), maria_table(maria), "subject"))
    assert [(a.kind, a.key, sorted(a.changes)) for a in actions] == [
        ("changed", {"subject": "c"}, ["data"]), ("added", {"subject": "new"}, [])]
    said: list[str] = []
    need, have = Datastore({"subject": pg_table(pg)}), Datastore({"subject": maria_table(maria)})
    assert sync(need, have, ApplyToTables(have.branches, say=said.append)) == counts(actions)
    assert list(compare(pg_table(pg), maria_table(maria), "subject")) == []


def test_a_dj2_expression_is_a_diff_side(world: tuple[PostgresServer, MariaDBServer, dict[str, Any]]) -> None:
    from djshare.errors import DjshareError

    pg, maria, pipeline = world
    side = datajoint(pipeline["Subject"] & "weight > 0.5")
    assert side.address.backend == "postgresql" and side.address.database == pg.database and side.where
    restricted = Table(maria_table(maria).address, SCHEMA, "subject", "weight > 0.5")
    assert list(compare(side, restricted, "subject")) == []
    assert {a.kind for a in compare(datajoint(pipeline["Subject"]), restricted, "subject")} == {"added"}
    with pytest.raises(DjshareError, match="is not a \\(restricted\\) table"):
        datajoint(pipeline["Subject"].proj(w="weight"))


def test_dj2_tables_with_objects_in_a_store_compare_by_their_references(
        world: tuple[PostgresServer, MariaDBServer, dict[str, Any]], tmp_path: Any) -> None:
    """`<blob@store>` columns hold JSON references (content hash, path): two PostgreSQL copies of such a table
    are compared inside the servers, and a changed object shows as a changed reference."""
    pg, _, pipeline = world
    dj.config["stores"] = {"default": "main", "main": {"protocol": "file", "location": str(tmp_path / "store")}}
    (tmp_path / "store").mkdir()
    schema = dj.Schema("lab2_objects")

    @schema
    class Trace(dj.Manual):
        definition = """
        trace : int32
        ---
        signal : <blob@main>
        """

    Trace.insert([{"trace": i, "signal": np.arange(i + 3)} for i in range(20)])
    pg.execute("CREATE SCHEMA lab2_copy", "CREATE TABLE lab2_copy.trace (LIKE lab2_objects.trace INCLUDING ALL)",
               "INSERT INTO lab2_copy.trace SELECT * FROM lab2_objects.trace")
    ours = datajoint(Trace)
    theirs = Table(ours.address, "lab2_copy", "trace")
    assert list(compare(ours, theirs, "trace")) == []
    Trace.update1({"trace": 7, "signal": np.zeros(3)})
    actions = list(compare(ours, theirs, "trace"))
    assert [(a.kind, a.key, sorted(a.changes)) for a in actions] == [("changed", {"trace": 7}, ["signal"])]
    assert "_hash" in str(actions[0].changes["signal"][0])  # the 2.x reference: hash and path of the object


def test_the_command_line_under_dj2(world: tuple[PostgresServer, MariaDBServer, dict[str, Any]]) -> None:
    pg, maria, _ = world
    env = dict(os.environ, DJSHARE_LEFT_USER=pg.admin_user, DJSHARE_LEFT_PASS=pg.admin_password,
               DJSHARE_RIGHT_USER=maria.admin_user, DJSHARE_RIGHT_PASS=maria.admin_password,
               DJ_HOST=maria.address, DJ_USER=maria.admin_user, DJ_PASS=maria.admin_password, LINK_HOST=maria.address,
               COLUMNS="300",
               LINK_USER=maria.admin_user, LINK_PASS=maria.admin_password)

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    diffed = djshare("diff", f"postgresql://{pg.address}/{pg.database}/{SCHEMA}.subject",
                     f"{maria.address}/{SCHEMA}.subject", "--counts")
    assert diffed.returncode == 0 and diffed.stdout.strip() == "0 added, 0 removed, 0 changed", diffed.stderr
    refused = djshare("pull", f"{SCHEMA}.Subject", "-l", "mine")
    assert refused.returncode == 1 and "need DataJoint 0.14" in refused.stderr, refused.stderr
    assert "pip install 'djshare[dj014]'" in refused.stderr and "Traceback" not in refused.stderr
    listed = djshare("export", "list")  # exports need no DataJoint: the data server is DJ_HOST here
    assert listed.returncode == 0 and listed.stdout.strip() == "no captures", listed.stderr

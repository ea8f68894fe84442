"""DataJoint 2.x's own university queries on linked copies (run in .venv2): every table of the university
pipeline, declared and filled by DataJoint 2.3.5, is linked one table at a time (children first) into another
server, and DataJoint 2.x's joins, restrictions, unions and aggregations across the linked tables give the
results they give on the source. 2.x allows them only when the local `~lineage` says that namesake attributes
(`student_id` of Enroll and of Student, `term` of Section and of CurrentTerm, ...) are one attribute."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import datajoint as dj
import pytest

from djshare.link.crossformat import CrossLink
from djshare.link.dj2 import Dj2Link, MariaDBSchema
from djshare.link.pg import PgLink, PostgresSchema
from djshare.link.pg_mariadb import PgToMariaDBLink
from djshare.sql.connection import ServerAddress
from tests.servers import MariaDBServer, PostgresServer, mariadb_servers, postgres_server
from tests.university import TABLES, declare, fill, nonempty, queries, rows
from tests_dj2.test_dj2_link import connect as connect_mariadb
from tests_dj2.test_pg_link import connect as connect_postgres

NUMBERS = itertools.count()
CHILDREN_FIRST = [name for name, _, _ in reversed(TABLES)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    with mariadb_servers(1, names=("university",)) as (server,):
        yield server


def university(connection: Any, prefix: str, mariadb: bool = False) -> tuple[str, dict[str, Any]]:
    """A filled university schema; its name and the results of the queries on it (those 2.x runs on MariaDB)."""
    name = f"{prefix}_{next(NUMBERS)}"
    fill(declare(dj.Schema(name, connection=connection), dj))
    expected = queries(dj.VirtualModule("source", name, connection=connection), grouped_with_ellipsis=not mariadb)
    assert nonempty(expected), expected
    return name, expected


def postgres_side(server: PostgresServer, schema: str) -> PostgresSchema:
    return PostgresSchema(schema, host=server.address, database=server.database, user=server.admin_user,
                          password=server.admin_password)


def mariadb_side(server: MariaDBServer, schema: str) -> MariaDBSchema:
    return MariaDBSchema(schema, ServerAddress(server.host, server.port, server.admin_user, server.admin_password))


def test_postgres_into_postgres(postgres: PostgresServer) -> None:
    source, expected = university(connect_postgres(postgres), "uni")
    local = source.replace("uni", "myuni")
    for table in CHILDREN_FIRST:
        PgLink(table, postgres_side(postgres, source), postgres_side(postgres, local),
               outbound=f"out_{source}").pull(progress=False)
    assert queries(dj.VirtualModule("copy", local, connection=connect_postgres(postgres))) == expected
    # a copy made by an earlier djshare, whose lineage restarted at each table, is set right by the next pulls
    postgres.execute(f"UPDATE \"{local}\".\"~lineage\" SET lineage = '{local}.' || table_name || '.' || attribute_name")
    with pytest.raises(dj.DataJointError, match="different lineages"):
        queries(dj.VirtualModule("broken", local, connection=connect_postgres(postgres)))
    for table in CHILDREN_FIRST:
        assert PgLink(table, postgres_side(postgres, source), postgres_side(postgres, local),
                      outbound=f"out_{source}").pull(progress=False).pulled == 0
    assert queries(dj.VirtualModule("again", local, connection=connect_postgres(postgres))) == expected


def test_postgres_into_mariadb_in_dj2s_layout(postgres: PostgresServer, mariadb: MariaDBServer) -> None:
    source, expected = university(connect_postgres(postgres), "uni", mariadb=True)
    local = source.replace("uni", "myuni")
    for table in CHILDREN_FIRST:
        PgToMariaDBLink(table, postgres_side(postgres, source), mariadb_side(mariadb, local),
                        outbound=f"out_{source}", layout="dj2").pull(progress=False)
    assert queries(dj.VirtualModule("copy", local, connection=connect_mariadb(mariadb)),
                   grouped_with_ellipsis=False) == expected


def test_postgres_into_mariadb_in_dj014s_layout_keeps_enums_inherited_through_foreign_keys(
        postgres: PostgresServer, mariadb: MariaDBServer) -> None:
    """2.x writes no comment on a column it inherits through a foreign key (Section.term): the enum's labels come
    from the catalog."""
    source, _ = university(connect_postgres(postgres), "uni")
    local = source.replace("uni", "my014uni")
    for table in ("Section", "Enroll", "Grade", "CurrentTerm"):
        report = PgToMariaDBLink(table, postgres_side(postgres, source), mariadb_side(mariadb, local),
                                 outbound=f"out_{source}").pull(progress=False)
        assert report.pulled == len(rows()[table]) > 0
    types = dict(mariadb.query("SELECT table_name, column_type FROM information_schema.columns WHERE "
                               "table_schema = %s AND column_name = 'term'", (local,)))
    assert types == dict.fromkeys(("section", "enroll", "grade", "current_term"), "enum('Spring','Summer','Fall')")
    terms = mariadb.query(f"SELECT term, COUNT(*) FROM `{local}`.`enroll` GROUP BY term ORDER BY term")
    expected = sorted((t, sum(1 for e in rows()["Enroll"] if e["term"] == t)) for t in ("Spring", "Summer", "Fall"))
    assert sorted(terms) == [row for row in expected if row[1]]


def test_mariadb_into_mariadb(mariadb: MariaDBServer) -> None:
    source, expected = university(connect_mariadb(mariadb), "uni", mariadb=True)
    local = source.replace("uni", "myuni")
    for table in CHILDREN_FIRST:
        Dj2Link(table, mariadb_side(mariadb, source), mariadb_side(mariadb, local),
                outbound=f"out_{source}").pull(progress=False)
    assert queries(dj.VirtualModule("copy", local, connection=connect_mariadb(mariadb)),
                   grouped_with_ellipsis=False) == expected


def test_mariadb_into_postgres(mariadb: MariaDBServer, postgres: PostgresServer) -> None:
    """2.x on MariaDB into 2.x on PostgreSQL (CrossLink with a MariaDBSchema source, no DataJoint 0.14): the type
    labels name the same core types there and the source's `~lineage` is kept, so all the queries run, the
    grouped aggregation MariaDB cannot run included."""
    source, _ = university(connect_mariadb(mariadb), "uni", mariadb=True)
    native, expected = university(connect_postgres(postgres), "native")
    local = source.replace("uni", "pguni")
    for table in CHILDREN_FIRST:
        assert CrossLink(table, mariadb_side(mariadb, source), postgres_side(postgres, local),
                         outbound=f"out_{source}").pull(progress=False).pulled > 0
    assert queries(dj.VirtualModule("copy", local, connection=connect_postgres(postgres))) == expected

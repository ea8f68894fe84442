"""Captures under DataJoint 2.x on PostgreSQL (run in .venv2): an analysis captured on the source returns the same
rows on the exported copy, whatever kind of query it reads through (semijoin, antijoin, nested subqueries, join,
aggregation, dj.U, renamed keys, limits)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import datajoint as dj
import pytest

from djshare.export import capture2
from djshare.export.pg import copy
from tests.servers import PostgresServer
from tests_dj2.test_pg_export import address
from tests_dj2.test_pg_link import World, connect, servers  # noqa: F401 - fixtures

Analysis = Callable[[Any], Any]
ANALYSES: dict[str, Analysis] = {
    "semijoin": lambda t: t.Session & (t.Comparison & "rating > 0.5"),
    "antijoin": lambda t: (t.Session & "subject in ('m1', 'M2')") - t.Excluded,
    "antijoin-of-join": lambda t: t.Subject - (t.Excluded * t.Comparison & "rating > 0.2"),
    "nested": lambda t: t.Subject & (t.Session & (t.Session.Trace & "trace = 1") & (t.Comparison & "rating < 0.5")),
    "join": lambda t: (t.Session * t.Comparison & "rating > 0.3").proj("note", "rating"),
    "aggr": lambda t: t.Session.aggr(t.Session.Trace, n="count(*)") & "subject != 'M2'",
    "aggr-having": lambda t: t.Subject.aggr(t.Session & (t.Comparison & "rating > 0.2"), n="count(*)") & "n >= 2",
    "U-aggr": lambda t: dj.U("subject").aggr(t.Comparison & "rating > 0.4", n="count(*)"),
    "U-restrict": lambda t: dj.U("kind") & ((t.Session - t.Excluded) & "subject = 'm1'"),
    "renamed-key": lambda t: t.Session.proj("note", sid="session") & "sid = 2",
    "top": lambda t: t.Comparison & dj.Top(limit=3, order_by="rating DESC"),
}


class Namespace:
    def __init__(self, tables: dict[str, Any]) -> None:
        self.__dict__.update(tables)


def analysis_world(servers: tuple[PostgresServer, PostgresServer], tmp_path: Path) -> tuple[World, Namespace]:  # noqa: F811
    world = World(*servers, tmp_path)
    schema = dj.Schema(world.source_schema, connection=world.Session.connection,
                       context={"Session": world.Session})

    @schema
    class Excluded(dj.Manual):
        definition = """
        -> Session
        ---
        reason : varchar(64)
        """

    @schema
    class Comparison(dj.Manual):
        definition = """
        -> Session
        ---
        rating : float64
        """

    Excluded.insert([{"subject": "m1", "session": 0, "reason": "motion"},
                     {"subject": "é'q", "session": 3, "reason": "it's \"noisy\""}])
    Comparison.insert([{"subject": s, "session": n, "rating": ((3 * i + 7 * n) % 10) / 10}
                       for i, s in enumerate(("m1", "M2", "é'q")) for n in range(4)])
    return world, Namespace({"Subject": world.Subject, "Session": world.Session, "Excluded": Excluded,
                             "Comparison": Comparison})


def result(expression: Any) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in expression.to_dicts())


def copied(world: World) -> Namespace:
    """The tables of the copy on the other server, as DataJoint 2.x sees them there."""
    module = dj.VirtualModule("copy_of", world.source_schema, connection=connect(world.local))
    return Namespace({name: getattr(module, name) for name in dir(module)
                      if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), dj.Table)})


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_an_analysis_returns_on_the_copy_what_it_returned_on_the_source(
        servers: tuple[PostgresServer, PostgresServer], tmp_path: Path, name: str) -> None:  # noqa: F811
    world, tables = analysis_world(servers, tmp_path)
    with capture2.capture(world.source_schema, name):
        expected = result(ANALYSES[name](tables))
    assert expected, "the analysis must return rows for the comparison to mean something"
    recorded = capture2.restrictions(world.Session.connection, world.source_schema)
    copy(address(world.source), recorded, address(world.local), progress=False)
    assert result(ANALYSES[name](copied(world))) == expected


def test_all_analyses_in_one_paper(servers: tuple[PostgresServer, PostgresServer], tmp_path: Path) -> None:  # noqa: F811
    world, tables = analysis_world(servers, tmp_path)
    with capture2.capture(world.source_schema, "everything of m1"):
        (tables.Session & "subject = 'm1'").to_dicts()  # the excluded m1/0 too: the antijoins must still drop it
    expected = {}
    for name, analysis in ANALYSES.items():
        with capture2.capture(world.source_schema, name):
            expected[name] = result(analysis(tables))
    recorded = capture2.restrictions(world.Session.connection, world.source_schema)
    counts = {c.table: c.rows for c in copy(address(world.source), recorded, address(world.local), progress=False)}
    assert {name: result(analysis(copied(world))) for name, analysis in ANALYSES.items()} == expected
    assert counts["excluded"] == 2  # both excluded something some analysis read


def test_renamed_key_attributes_select_exactly_the_rows_read(servers: tuple[PostgresServer, PostgresServer],  # noqa: F811
                                                             tmp_path: Path) -> None:
    world, tables = analysis_world(servers, tmp_path)
    with capture2.capture(world.source_schema, "renamed"):
        assert len((tables.Session.proj(sid="session") & "sid = 2").to_dicts()) == 3
    recorded = capture2.restrictions(world.Session.connection, world.source_schema)
    counts = {c.table: c.rows for c in copy(address(world.source), recorded, address(world.local), progress=False)}
    assert counts["session"] == 3  # not the 12 sessions of the three subjects

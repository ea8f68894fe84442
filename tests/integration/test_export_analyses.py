"""Exports re-run: an analysis captured on the source returns the same rows on the restored copy.

Each analysis reads through another kind of query (semijoin, antijoin, nested subqueries, join, aggregation,
dj.U, renamed keys, limits, unions). It is captured alone into a paper, the paper's bundle is restored into another
server, the same analysis runs there through DataJoint, and the two results are compared; then all of them in one
paper (an antijoin must still exclude rows another analysis brought along)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datajoint as dj
import pytest

from djshare import export
from djshare.sql.connection import ServerAddress
from tests.conftest import admin_connection
from tests.integration.conftest import ExportLab
from tests.pipeline import add_deciding_tables
from tests.servers import MariaDBServer

Analysis = Callable[[Any], Any]
ANALYSES: dict[str, Analysis] = {
    "semijoin": lambda t: t.Session & (t.Comparison & "score > 0.5"),
    "semijoin-renamed": lambda t: t.Session & t.Figure.proj(subject="first_subject", session="first_session"),
    "antijoin": lambda t: (t.Session & "subject in ('m0', 'm1')") - t.Excluded,
    "antijoin-of-join": lambda t: t.Subject - (t.Excluded * t.Comparison & "score > 0.2"),
    "nested": lambda t: t.Subject & (t.Session & (t.Scan & (t.Unit & "quality > 0.1") & "scan = 1")
                                     & (t.Comparison & "score < 0.5")),
    "join": lambda t: (t.Session * t.Comparison * t.Scan & "score > 0.3" & "scan = 0").proj("rate", "score"),
    "aggr": lambda t: t.Session.aggr(t.Unit & "quality > 0", n="count(*)", best="max(quality)") & "subject != 'm3'",
    "aggr-having": lambda t: t.Subject.aggr(t.Session & (t.Comparison & "score > 0.2"), n="count(*)") & "n >= 2",
    "aggr-keep-all": lambda t: t.Subject.aggr(t.Excluded, n="count(reason)", keep_all_rows=True) & "n = 0",
    "U-aggr": lambda t: dj.U("subject").aggr(t.Comparison & "score > 0.4", n="count(*)"),
    "U-restrict": lambda t: dj.U("lab") & (t.Subject & (t.Session - t.Excluded) & "subject > 'm1'"),
    "renamed-key": lambda t: t.Session.proj(op="note", sid="session") & "sid = 2",
    "top": lambda t: t.Comparison & dj.Top(limit=3, order_by="score DESC"),
    "union": lambda t: (t.Session & "subject = 'm0'").proj() + (t.Session & t.Excluded).proj(),
}
_papers = itertools.count()


def pipeline_tables(exporting: ExportLab) -> dict[str, Any]:
    """The export pipeline plus two analysis tables whose rows decide other queries."""
    return add_deciding_tables(exporting.pipeline, [("m1", 0, "motion"), ("m3", 2, "it's \"noisy\"")])


class Namespace:
    def __init__(self, tables: dict[str, Any]) -> None:
        self.__dict__.update(tables)


def result(expression: Any) -> list[tuple[tuple[str, Any], ...]]:
    return sorted(tuple(sorted(row.items())) for row in expression.fetch(as_dict=True))


@pytest.fixture
def analyses(exporting: ExportLab) -> Namespace:
    return Namespace(pipeline_tables(exporting))


@pytest.fixture
def copy_server(servers: list[MariaDBServer], exporting: ExportLab) -> Iterator[MariaDBServer]:
    target = servers[2]
    yield target
    for schema in (exporting.analysis, exporting.core):
        target.execute(f"DROP DATABASE IF EXISTS `{schema}`")


def restored(exporting: ExportLab, target: MariaDBServer, paper: str, tmp_path: Path) -> Namespace:
    """Write the paper's bundle, restore it into `target`, and give its tables as DataJoint sees them there."""
    bundle = tmp_path / paper
    export.write(paper, bundle, schema=exporting.work, progress=False)
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    export.restore(bundle, address, progress=False)
    connection = admin_connection(target)
    there = {s for (s,) in target.query("SELECT schema_name FROM information_schema.schemata")}
    modules = [dj.VirtualModule(s, s, connection=connection) for s in (exporting.core, exporting.analysis)
               if s in there]
    tables = {name: getattr(module, name) for module in modules for name in dir(module)
              if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), dj.Table)}
    return Namespace(tables)  # only the tables the bundle brought: an analysis needing another one fails here


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_an_analysis_returns_on_the_restored_copy_what_it_returned_on_the_source(
        exporting: ExportLab, analyses: Namespace, copy_server: MariaDBServer, tmp_path: Path, name: str) -> None:
    paper = f"{name}-{next(_papers)}"
    with export.capture(paper, name, schema=exporting.work):
        expected = result(ANALYSES[name](analyses))
    assert expected, "the analysis must return rows for the comparison to mean something"
    copy = restored(exporting, copy_server, paper, tmp_path)
    assert result(ANALYSES[name](copy)) == expected


def test_all_analyses_in_one_paper(exporting: ExportLab, analyses: Namespace, copy_server: MariaDBServer,
                                   tmp_path: Path) -> None:
    """Other analyses bring rows (excluded sessions among them) that the antijoins must still exclude."""
    expected = {}
    with export.capture("all", "fetch everything of m1", schema=exporting.work):
        (analyses.Session & "subject = 'm1'").fetch()
    for name, analysis in ANALYSES.items():
        with export.capture("all", name, schema=exporting.work):
            expected[name] = result(analysis(analyses))
    copy = restored(exporting, copy_server, "all", tmp_path)
    assert {name: result(analysis(copy)) for name, analysis in ANALYSES.items()} == expected


def counts(exporting: ExportLab, paper: str) -> dict[str, int]:
    return {name.replace("`", "").split(".")[1]: rows
            for name, rows in export.preview(paper, schema=exporting.work).items()}


def test_renamed_key_attributes_select_exactly_the_rows_read(exporting: ExportLab, analyses: Namespace) -> None:
    with export.capture("renamed", "a", schema=exporting.work):
        rows = (analyses.Session.proj(op="note", sid="session") & "sid = 2").fetch()
    assert len(rows) == 4
    assert counts(exporting, "renamed")["session"] == 4  # not the 12 sessions of the four subjects


def test_a_semijoin_brings_only_the_rows_that_matched(exporting: ExportLab, analyses: Namespace) -> None:
    with export.capture("semi", "a", schema=exporting.work):
        sessions = (analyses.Session & (analyses.Comparison & "score > 0.5")).fetch("KEY")
    found = counts(exporting, "semi")
    assert found["session"] == len(sessions) == found["comparison"] == 5
    assert "excluded" not in found and "unit" not in found


def test_an_antijoin_brings_the_rows_that_excluded_and_no_others(exporting: ExportLab, analyses: Namespace) -> None:
    with export.capture("anti", "a", schema=exporting.work):
        kept = ((analyses.Session & "subject in ('m0', 'm1')") - analyses.Excluded).fetch("KEY")
    found = counts(exporting, "anti")
    assert len(kept) == 5 and found["excluded"] == 1  # m1/0; m3/2 excluded nothing here
    assert found["session"] == 6  # the five kept, and the excluded one its Excluded row references


def test_an_aggregation_brings_every_row_of_its_groups(exporting: ExportLab, analyses: Namespace) -> None:
    with export.capture("aggr", "a", schema=exporting.work):
        (analyses.Session.aggr(analyses.Unit, n="count(*)") & "subject = 'm2'" & "session = 1").fetch()
    assert counts(exporting, "aggr")["unit"] == 4  # two scans with two units each


def test_sql_that_reads_other_tables_is_reported(exporting: ExportLab, analyses: Namespace,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    subquery = f"(SELECT COUNT(*) FROM `{exporting.analysis}`.`excluded` AS e WHERE e.session = session)"
    with export.capture("sql", "a", schema=exporting.work):
        (analyses.Session.proj(flagged=subquery) & "flagged > 0").fetch()
    assert "subquery djshare could not follow" in caplog.text

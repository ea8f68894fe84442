"""Export against real servers: closure exactness (vs. a brute-force closure in Python), ..."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from djshare.export.closure import Selection, compute
from djshare.export.graph import Table
from djshare.sql.catalog import foreign_keys_to, read_table
from djshare.sql.connection import ServerAddress, Session
from tests.conftest import admin_connection
from tests.pipeline import build_export_pipeline, fill_export
from tests.servers import MariaDBServer

_names = itertools.count()


@dataclass
class ExportLab:
    server: MariaDBServer
    core: str
    analysis: str
    work: str
    pipeline: dict[str, Any]

    def session(self) -> Session:
        return Session(ServerAddress(self.server.host, self.server.port, self.server.admin_user,
                                     self.server.admin_password))


@pytest.fixture
def export_lab(servers: list[MariaDBServer]) -> Iterator[ExportLab]:
    n = next(_names)
    source = servers[0]
    core, analysis, work = f"xcore{n}", f"xana{n}", f"xwork{n}"
    source.execute(f"CREATE DATABASE `{work}`")
    connection = admin_connection(source)
    pipeline = build_export_pipeline(connection, core, analysis)
    fill_export(pipeline)
    yield ExportLab(source, core, analysis, work, pipeline)
    connection.close()


def brute_force(session: Session, captured: list[tuple[Table, str]], tables: list[Table]) -> dict[Table, set[Any]]:
    """The closure rules applied in Python to every row of every table."""
    info = {t: read_table(session, *t) for t in tables}
    rows = {t: [dict(zip([c.name for c in info[t].columns], r, strict=True))
                for r in session.rows(f"SELECT * FROM `{t[0]}`.`{t[1]}`")] for t in tables}
    pk = {t: info[t].primary_key for t in tables}
    chosen: dict[Table, set[Any]] = {t: set() for t in tables}
    for table, condition in captured:
        chosen[table] |= set(session.rows(
            f"SELECT {', '.join(f'`{c}`' for c in pk[table])} FROM `{table[0]}`.`{table[1]}` WHERE {condition}"))
    keys = [fk for fk in foreign_keys_to(session) if fk.child in chosen and fk.parent in chosen]
    from djshare.export.graph import master_of

    changed = True
    while changed:
        changed = False
        for fk in keys:
            for row in rows[fk.child]:
                if tuple(row[c] for c in pk[fk.child]) not in chosen[fk.child]:
                    continue
                values = {p: row[c] for c, p in fk.columns}
                if None in values.values():
                    continue
                target = tuple(values[c] for c in pk[fk.parent])
                if target not in chosen[fk.parent]:
                    chosen[fk.parent].add(target)
                    changed = True
        for part in tables:
            master = master_of(part)
            if master in chosen:
                for row in rows[part]:
                    if tuple(row[c] for c in pk[master]) in chosen[master]:
                        key = tuple(row[c] for c in pk[part])
                        if key not in chosen[part]:
                            chosen[part].add(key)
                            changed = True
    return chosen


def selected(selection: Selection) -> dict[Table, set[Any]]:
    return {t: set(selection.session.rows(f"SELECT * FROM {selection.keys[t]}")) for t in selection.graph.tables}


CAPTURES = [
    [("analysis", "unit", "subject = 'm1' AND session = 2 AND unit = 1")],
    [("analysis", "figure", "figure = 1")],
    [("analysis", "pair", "subject = 'm3'"), ("core", "scan__channel", "channel = 2 AND subject = 'm0'")],
    [("core", "session", "note LIKE '%$%'"), ("analysis", "figure", "figure = 2")],
]


@pytest.mark.parametrize("captures", CAPTURES)
def test_closure_equals_brute_force(export_lab: ExportLab, captures: list[tuple[str, str, str]]) -> None:
    schema = {"core": export_lab.core, "analysis": export_lab.analysis}
    captured = [((schema[s], t), condition) for s, t, condition in captures]
    with export_lab.session() as session:
        selection = compute(session, captured, export_lab.work)
        expected = brute_force(session, captured, list(selection.graph.tables))
        assert selected(selection) == expected
        assert selection.counts == {t: len(v) for t, v in expected.items()}
        # parents come before children in the plan
        order = list(selection.graph.tables)
        for fk in selection.graph.edges:
            assert order.index(fk.parent) < order.index(fk.child)


def test_closure_follows_renamed_and_repeated_foreign_keys(export_lab: ExportLab) -> None:
    with export_lab.session() as session:
        selection = compute(session, [((export_lab.analysis, "figure"), "figure = 1")], export_lab.work)
        sessions = selected(selection)[(export_lab.core, "session")]
        assert sessions == {("m0", 0), ("m1", 2)}  # first_* and second_* both followed
        assert selected(selection)[(export_lab.core, "#lab")] == {("north",), ("south",)}
        assert (export_lab.core, "scan") not in selection.counts  # nothing below the captured rows

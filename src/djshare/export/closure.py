"""The closure, computed on the server: one temporary key table per involved table, filled from the
captured restrictions, then grown with semi-joins (child rows -> referenced parent rows; master rows ->
their part rows) until nothing changes. No key travels to Python; the temporary tables live as long as
the session, so a writer can use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from djshare.backends.catalog import ForeignKey, TableInfo, foreign_keys_to, read_table, table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.export.graph import Graph, Table, plan


@dataclass
class Selection:
    """The rows of an export: per table, a temporary table of primary keys on `session`."""

    session: Session
    graph: Graph
    info: dict[Table, TableInfo]
    keys: dict[Table, str]  # temporary key table (full name) per table
    counts: dict[Table, int]

    def where(self, table: Table, alias: str = "") -> str:
        """Condition selecting exactly the exported rows of `table`."""
        names = ", ".join(f"{alias}`{c}`" for c in self.info[table].primary_key)
        plain = ", ".join(f"`{c}`" for c in self.info[table].primary_key)
        return f"({names}) IN (SELECT {plain} FROM {self.keys[table]})"


def _columns(info: TableInfo, alias: str = "") -> str:
    return ", ".join(f"{alias}`{c}`" for c in info.primary_key)


def compute(session: Session, captured: Iterable[tuple[Table, str]], work_schema: str) -> Selection:
    """`captured`: (table, SQL condition on it) pairs. Temporary tables are made in `work_schema`."""
    captured = list(captured)
    schemas = sorted({t[0] for t, _ in captured})
    keys = foreign_keys_to(session)
    existing = {(s, n) for s in {*schemas, *(fk.parent[0] for fk in keys), *(fk.child[0] for fk in keys)}
                for n in table_names(session, s)}
    graph = plan((t for t, _ in captured), keys, existing)
    info = {t: read_table(session, *t) for t in graph.tables}
    temp: dict[Table, str] = {}
    for index, table in enumerate(graph.tables):
        name = quote_name(work_schema, f"djshare_export_{index}")
        session.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")
        session.execute(f"CREATE TEMPORARY TABLE {name} (PRIMARY KEY ({_columns(info[table])})) "
                        f"SELECT {_columns(info[table])} FROM {quote_name(*table)} LIMIT 0",
                        doing=f"preparing the export of {quote_name(*table)}")
        temp[table] = name
    for table, condition in captured:
        session.execute(f"INSERT IGNORE INTO {temp[table]} SELECT {_columns(info[table])} FROM {quote_name(*table)} "
                        f"WHERE {condition}", doing=f"selecting captured rows of {quote_name(*table)}")
    _grow(session, graph, info, temp, {t for t, _ in captured})
    counts = {t: int(session.scalar(f"SELECT COUNT(*) FROM {temp[t]}")) for t in graph.tables}
    return Selection(session, graph, info, temp, counts)


def _grow(session: Session, graph: Graph, info: dict[Table, TableInfo], temp: dict[Table, str],
          pending: set[Table]) -> None:
    """Grow the selection until nothing changes. A table is pending while it has rows its outgoing steps have
    not seen: its foreign keys (rows it references) and, for a master, its parts. Sweeping children first lets
    one sweep carry rows all the way up a chain."""
    order = list(reversed(graph.tables))
    while pending:
        for table in order:
            if table not in pending:
                continue
            pending.discard(table)
            for fk in graph.edges:
                if fk.child == table and fk.parent != table and _add_parents(session, fk, info, temp):
                    pending.add(fk.parent)
            for part, master in graph.parts:
                if master == table and _add_parts(session, part, master, info, temp):
                    pending.add(part)


def _add_parents(session: Session, fk: ForeignKey, info: dict[Table, TableInfo], temp: dict[Table, str]) -> int:
    child, parent = fk.child, fk.parent
    mine = ", ".join(f"c.`{c}`" for c, _ in fk.columns)
    theirs = ", ".join(f"p.`{p}`" for _, p in fk.columns)
    return session.execute(
        f"INSERT IGNORE INTO {temp[parent]} SELECT {_columns(info[parent], 'p.')} FROM {quote_name(*parent)} AS p "
        f"WHERE ({theirs}) IN (SELECT {mine} FROM {quote_name(*child)} AS c JOIN {temp[child]} AS k "
        f"USING ({_columns(info[child])}))",
        doing=f"adding rows of {quote_name(*parent)} referenced by {quote_name(*child)}")


def _add_parts(session: Session, part: Table, master: Table, info: dict[Table, TableInfo],
               temp: dict[Table, str]) -> int:
    return session.execute(
        f"INSERT IGNORE INTO {temp[part]} SELECT {_columns(info[part], 'p.')} FROM {quote_name(*part)} AS p "
        f"JOIN {temp[master]} AS k USING ({_columns(info[master])})",
        doing=f"adding part rows of {quote_name(*master)}")

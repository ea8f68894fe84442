"""The closure, computed on the server (MariaDB or PostgreSQL, through its dialect object): one temporary key table
per involved table, filled from the restrictions, then grown with semi-joins (child rows -> referenced parent rows;
master rows -> their part rows) until nothing changes. No key travels to Python; the temporary tables live as long as
the session, so a writer can use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from djshare.backends.catalog import ForeignKey, TableInfo
from djshare.backends.mariadb_rows import MARIADB, MariaDB
from djshare.export.graph import Graph, Table, plan


@dataclass
class Selection:
    """The rows of an export: per table, a temporary table of primary keys on `session`."""

    session: Any  # a MariaDB Session or a PostgreSQL PgSession
    graph: Graph
    info: dict[Table, TableInfo]
    keys: dict[Table, str]  # temporary key table (quoted name) per table
    counts: dict[Table, int]
    sql: MariaDB = field(default=MARIADB)  # the session's dialect

    def where(self, table: Table, alias: str = "") -> str:
        """Condition selecting exactly the exported rows of `table`."""
        info = self.info[table]
        return f"({self.sql.key_names(info, alias)}) IN (SELECT {self.sql.key_names(info)} FROM {self.keys[table]})"


def compute(session: Any, seeds: Iterable[tuple[Table, str]], work_schema: str, sql: MariaDB = MARIADB) -> Selection:
    """`seeds`: (table, SQL condition on it) pairs. Temporary tables are made in `work_schema` (on MariaDB)."""
    seeds = list(seeds)
    schemas = sorted({t[0] for t, _ in seeds})
    keys = sql.foreign_keys(session)
    existing = {(s, n) for s in {*schemas, *(fk.parent[0] for fk in keys), *(fk.child[0] for fk in keys)}
                for n in sql.table_names(session, s)}
    graph = plan((t for t, _ in seeds), keys, existing)
    info = {t: sql.read_table(session, *t) for t in graph.tables}
    temp: dict[Table, str] = {}
    for index, table in enumerate(graph.tables):
        temp[table] = sql.key_table(work_schema, index)
        for statement in sql.declare_key_table(temp[table], info[table]):
            session.execute(statement, doing=f"preparing the export of {sql.quote(*table)}")
    for table, condition in seeds:
        session.execute(sql.insert_new(temp[table], f"SELECT {sql.key_names(info[table])} FROM {sql.quote(*table)} "
                                                    f"WHERE {condition}"),
                        doing=f"selecting the rows of {sql.quote(*table)}")
    _grow(session, sql, graph, info, temp, {t for t, _ in seeds})
    counts = {t: int(session.scalar(f"SELECT count(*) FROM {temp[t]}")) for t in graph.tables}
    return Selection(session, graph, info, temp, counts, sql)


def _grow(session: Any, sql: MariaDB, graph: Graph, info: dict[Table, TableInfo], temp: dict[Table, str],
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
                if fk.child == table and fk.parent != table and _add_parents(session, sql, fk, info, temp):
                    pending.add(fk.parent)
            for part, master in graph.parts:
                if master == table and _add_parts(session, sql, part, master, info, temp):
                    pending.add(part)


def _add_parents(session: Any, sql: MariaDB, fk: ForeignKey, info: dict[Table, TableInfo],
                 temp: dict[Table, str]) -> int:
    child, parent = fk.child, fk.parent
    mine = ", ".join("c." + sql.quote(c) for c, _ in fk.columns)
    theirs = ", ".join("p." + sql.quote(p) for _, p in fk.columns)
    return int(session.execute(sql.insert_new(
        temp[parent], f"SELECT {sql.key_names(info[parent], 'p.')} FROM {sql.quote(*parent)} AS p WHERE ({theirs}) IN "
        f"(SELECT {mine} FROM {sql.quote(*child)} AS c JOIN {temp[child]} AS k USING ({sql.key_names(info[child])}))"),
        doing=f"adding rows of {sql.quote(*parent)} referenced by {sql.quote(*child)}"))


def _add_parts(session: Any, sql: MariaDB, part: Table, master: Table, info: dict[Table, TableInfo],
               temp: dict[Table, str]) -> int:
    return int(session.execute(sql.insert_new(
        temp[part], f"SELECT {sql.key_names(info[part], 'p.')} FROM {sql.quote(*part)} AS p JOIN {temp[master]} AS k "
        f"USING ({sql.key_names(info[master])})"),
        doing=f"adding part rows of {sql.quote(*master)}"))

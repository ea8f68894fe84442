"""Which rows an export holds: restrictions ("schema.table", SQL condition) checked on the source, closed over
foreign keys and part tables on the server (`closure.compute`, MariaDB or PostgreSQL by the dialect given), with the
`~lineage` rows of the exported tables, so DataJoint 2.x reads the restored schemas as its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from djshare.backends.mariadb_rows import MARIADB, MariaDB
from djshare.errors import ConfigurationError, UnknownTableError
from djshare.export.closure import Selection, compute
from djshare.export.graph import Table
from djshare.restriction import check_where, one_condition
from djshare.stores.formats.dj014 import store_of_table

LINEAGE_TABLE = "~lineage"
Restriction = tuple[str, str]  # ("schema.table", SQL condition on it; "" for every row)


def parse(restrictions: Sequence[Restriction]) -> list[tuple[Table, str]]:
    """((schema, table), condition or "TRUE") for each restriction; ConfigurationError for a malformed one."""
    if not restrictions:
        raise ConfigurationError("Nothing to export: name at least one table, e.g. (\"lab.session\", \"subject = "
                                 "'m1'\").")
    found = []
    for name, condition in restrictions:
        schema, dot, table = name.partition(".")
        if not dot or not schema or not table:
            raise ConfigurationError(f"{name!r} is not SCHEMA.TABLE (the table's SQL name, e.g. lab.session).")
        found.append(((schema, table), one_condition(condition.strip()) or "TRUE"))
    return found


def named(restrictions: Sequence[Restriction]) -> list[Restriction]:
    """Restrictions a user names (`--rows`), refusing DataJoint 0.14's store tables: their rows go along with the
    rows that reference them. (Captures do record them, as the rows a fetch read.)"""
    for (schema, table), _ in parse(restrictions):
        if store_of_table(table) is not None:
            raise ConfigurationError(f"{schema}.{table} is a DataJoint 0.14 store table: export the tables that "
                                     "reference it.")
    return list(restrictions)


def _parse(session: Any, restrictions: Sequence[Restriction], sql: MariaDB) -> list[tuple[Table, str]]:
    found = parse(restrictions)
    for (schema, table), condition in found:
        if not sql.schema_exists(session, schema) or table not in sql.table_names(session, schema):
            where = f" in database {session.address.database!r}" if session.address.database else ""
            raise UnknownTableError(f"No table {sql.quote(schema, table)}{where} on {session.address.label}: name "
                                    "tables by their SQL names (SHOW TABLES or \\dt lists them).")
        check_where(session, sql.quote(schema, table), f" WHERE {condition}")
    return found


def select(session: Any, restrictions: Sequence[Restriction], work_schema: str | None = None,
           sql: MariaDB = MARIADB) -> Selection:
    """The closure of `restrictions` on `session` (whose dialect is `sql`), with the `~lineage` rows of the tables it
    holds. Its temporary key tables live in the session, on MariaDB in `work_schema` (default: the first restricted
    table's schema; the capture schema serves exports of captures, where the exporting account may create tables)."""
    seeds = _parse(session, restrictions, sql)
    work_schema = work_schema or seeds[0][0][0]
    selection = compute(session, seeds, work_schema, sql)
    lineage = [
        ((schema, LINEAGE_TABLE), f"{sql.quote('table_name')} IN (" + ", ".join(
            sql.text(name) for s, name in selection.graph.tables if s == schema) + ")")
        for schema in sorted({s for s, _ in selection.graph.tables})
        if LINEAGE_TABLE in sql.table_names(session, schema)]
    return compute(session, [*seeds, *lineage], work_schema, sql) if lineage else selection

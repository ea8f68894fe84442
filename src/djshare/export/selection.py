"""Which rows an export holds: restrictions ("schema.table", SQL condition) checked on the source, closed over
foreign keys and part tables on a MariaDB server (`closure.compute`), with the `~lineage` rows of the exported
tables, so DataJoint 2.x reads the restored schemas as its own. PostgreSQL's selection is `export.pg.select`;
`parse` serves both."""

from __future__ import annotations

from collections.abc import Sequence

from djshare.backends.catalog import schema_exists, table_names
from djshare.backends.mariadb import Session, quote_name
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


def _parse(session: Session, restrictions: Sequence[Restriction]) -> list[tuple[Table, str]]:
    found = parse(restrictions)
    for (schema, table), condition in found:
        if not schema_exists(session, schema) or table not in table_names(session, schema):
            raise UnknownTableError(f"No table {quote_name(schema, table)} on {session.address.label}: name tables "
                                    "by their SQL names (SHOW TABLES lists them).")
        check_where(session, quote_name(schema, table), f" WHERE {condition}")
    return found


def select(session: Session, restrictions: Sequence[Restriction], work_schema: str | None = None) -> Selection:
    """The closure of `restrictions` on `session`, with the `~lineage` rows of the tables it holds. Its temporary
    key tables live in the session, in `work_schema` (default: the first restricted table's schema; the capture
    schema serves exports of captures, where the exporting account may create tables)."""
    seeds = _parse(session, restrictions)
    work_schema = work_schema or seeds[0][0][0]
    for table, _ in seeds:
        if store_of_table(table[1]) is not None:
            raise ConfigurationError(f"{quote_name(*table)} is a DataJoint 0.14 store table: export the tables "
                                     "that reference it.")
    selection = compute(session, seeds, work_schema)
    lineage = [
        ((schema, LINEAGE_TABLE), "`table_name` IN (" + ", ".join(
            "'" + name.replace("'", "''") + "'" for s, name in selection.graph.tables if s == schema) + ")")
        for schema in sorted({s for s, _ in selection.graph.tables})
        if LINEAGE_TABLE in table_names(session, schema)]
    return compute(session, [*seeds, *lineage], work_schema) if lineage else selection

"""The local table: its DataJoint definition, made from the source table, and the check that it still
matches the source. Foreign keys of the source table to other tables become plain attributes; a part
table keeps its reference to the master (`-> master`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from djshare.backends.catalog import Column, TableInfo
from djshare.backends.mariadb_rows import MARIADB, MariaDB
from djshare.errors import DefinitionMismatchError, DjshareError
from djshare.formats.heading import differences  # noqa: F401 (kept importable here for one release)
from djshare.formats.lineage import Row, lineage_declaration, lineage_upsert

SPECIAL_TYPE = re.compile(r"^:(?P<type>[^:]+):(?P<comment>.*)$", re.DOTALL)
DELETION_REQUESTED = "deletion_requested"  # the local part table listing the source's deletion requests
SUBSCRIBER_TABLE = "~djshare_subscriber"


StoreMap = Mapping[str, str]  # source store name -> local store name (absent: same name)


def datajoint_type(column: Column, stores: StoreMap | None = None) -> tuple[str, str]:
    """(type as DataJoint declares it, comment) for a column; external stores renamed by `stores`."""
    special = SPECIAL_TYPE.match(column.comment)
    if special:
        kind = special.group("type")
        if kind.startswith("<"):
            raise DjshareError(
                f"Column `{column.name}` has the adapted type `{kind}`; djshare cannot declare adapted types "
                "on the local side (the adapter object lives in the source lab's code)."
            )
        if "@" in kind and stores is not None:
            base, store = kind.split("@", 1)
            kind = f"{base}@{stores.get(store, store)}"
        return kind, special.group("comment")
    kind = column.column_type
    if "auto_increment" in column.extra.lower():
        kind += " auto_increment"
    return kind, column.comment


def default_text(column: Column) -> str | None:
    """The column's default as a DataJoint definition writes it, or None for no default."""
    if column.nullable:
        return "null"
    default = column.default
    if default is None or default.upper() == "NULL":
        return None
    if re.fullmatch(r"current_timestamp(\(\d*\))?", default, flags=re.IGNORECASE):
        return "CURRENT_TIMESTAMP"
    return default  # MariaDB writes string and date defaults quoted ('abc'); numbers bare


def attribute_line(column: Column, stores: StoreMap | None = None) -> str:
    kind, comment = datajoint_type(column, stores)
    default = default_text(column)
    name = column.name if default is None else f"{column.name} = {default}"
    comment = comment.replace("\n", " ")
    return f"{name} : {kind}" + (f"  # {comment}" if comment else "")


def master_definition(table: TableInfo, stores: StoreMap | None = None) -> str:
    lines = [f"# {table.comment}"] if table.comment else []
    lines += [attribute_line(c, stores) for c in table.columns if c.name in table.primary_key]
    lines.append("---")
    lines += [attribute_line(c, stores) for c in table.columns if c.name not in table.primary_key]
    return "\n".join(lines) + "\n"


def part_definition(part: TableInfo, master: TableInfo, stores: StoreMap | None = None) -> str:
    lines = [f"# {part.comment}"] if part.comment else []
    lines.append("-> master")
    inherited = set(master.primary_key)
    lines += [attribute_line(c, stores) for c in part.columns
              if c.name in part.primary_key and c.name not in inherited]
    lines.append("---")
    lines += [attribute_line(c, stores) for c in part.columns if c.name not in part.primary_key]
    return "\n".join(lines) + "\n"


def deletion_requested_definition(master: TableInfo) -> str:
    """The local DeletionRequested part: the master's key, without a foreign key to the master, so that
    DataJoint's cascade does not empty it before `(Table & Table.DeletionRequested).delete()` has matched
    its master rows. djshare removes its rows once their master rows are gone."""
    lines = ["# the source has asked to delete these entities (filled by refresh)"]
    lines += [attribute_line(c) for c in master.columns if c.name in master.primary_key]
    return "\n".join(lines) + "\n"


def _signature(column: Column, stores: StoreMap | None = None) -> tuple[str, str, bool, str | None]:
    kind, _ = datajoint_type(column, stores if stores is not None else {})
    return (column.name, re.sub(r"^(\w*int)\(\d+\)", r"\1", kind), column.nullable, default_text(column))


def _describe(signature: tuple[str, str, bool, str | None]) -> str:
    _, kind, nullable, default = signature
    return kind + (" null" if nullable else "") + (f" default {default}" if default and not nullable else "")


def mismatches(local: TableInfo, source: TableInfo, stores: StoreMap | None = None) -> list[str]:
    """How `local` differs from `source` (empty when they match): names, types, nullability, defaults, keys."""
    found: list[str] = []
    local_columns = {c.name: c for c in local.columns}
    source_columns = {c.name: c for c in source.columns}
    for name in source_columns.keys() - local_columns.keys():
        found.append(f"column `{name}` is in the source but not in the local table")
    for name in local_columns.keys() - source_columns.keys():
        found.append(f"column `{name}` is in the local table but not in the source")
    for name in source_columns.keys() & local_columns.keys():
        here, there = _signature(local_columns[name]), _signature(source_columns[name], stores)
        if here != there:
            found.append(f"column `{name}` is {_describe(here)} locally but {_describe(there)} in the source")
    if set(local.primary_key) != set(source.primary_key):
        found.append(f"primary key is ({', '.join(local.primary_key)}) locally but "
                     f"({', '.join(source.primary_key)}) in the source")
    return sorted(found)


def check_matches(local: TableInfo, source: TableInfo, stores: StoreMap | None = None) -> None:
    problems = mismatches(local, source, stores)
    if problems:
        raise DefinitionMismatchError(
            f"The local table {local.full_name} no longer matches the source table {source.full_name}: "
            + "; ".join(problems)
            + ". Nothing was pulled. Alter the local table to match (or drop it after saving its rows, "
            "and let djshare declare it again)."
        )


def subscriber_id(local: Any, schema: str, sql: MariaDB = MARIADB) -> str:
    """This local schema's name on source servers: `<schema>-<random>`, made once and kept in a one-row
    hidden table of the local schema (on the local backend `sql`)."""
    for statement, args in sql.subscriber_table(schema, SUBSCRIBER_TABLE, f"{schema[:40]}-{uuid.uuid4().hex[:12]}"):
        local.execute(statement, args or None, doing=f"naming the subscriber of {sql.quote(schema)}")
    return str(local.scalar(f"SELECT {sql.quote('subscriber')} FROM {sql.quote(schema, SUBSCRIBER_TABLE)} "
                            f"WHERE {sql.quote('one')} = 1"))


def create_local(session: Any, schema: str, statements: Mapping[str, Sequence[str]], lineage: Sequence[Row] = (),
                 before: Sequence[str] = (), sql: MariaDB = MARIADB) -> None:
    """Declare a link's local tables on backend `sql`, in one transaction: the `before` statements (the schema, the
    stores' tables), each table's statements where the table does not exist yet (table name -> statements), then its
    `~lineage` rows (replacing the origins recorded for the same attributes)."""
    existing = sql.table_names(session, schema)
    with session.transaction(f"declaring the local tables in {sql.quote(schema)}"):
        for statement in before:
            session.execute(statement, doing=f"declaring the local tables in {sql.quote(schema)}")
        for table, declared in statements.items():
            for statement in declared if table not in existing else ():
                session.execute(statement, doing=f"creating the local table {sql.quote(schema, table)}")
        if lineage:
            session.execute(lineage_declaration(schema, sql.name_of), doing=f"declaring {sql.quote(schema)}'s ~lineage")
            for row in lineage:
                session.execute(lineage_upsert(schema, sql.name_of), row, doing="recording ~lineage")

"""Direct copy: write the selected rows straight into another server (no bundle), parents first, one
target transaction per table, foreign-key checks on; then compare each table's checksum on both sides.
External objects are copied store to store first, each checked, so no row references a missing object."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from djshare.backends.catalog import read_table, schema_exists, table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import MARIADB, copy_rows, statement_limit
from djshare.errors import DjshareError, IntegrityViolation
from djshare.export import objects
from djshare.export.bundle import create_statement, rows_in_order
from djshare.export.closure import Selection
from djshare.stores.formats.dj014 import store_of_table


@dataclass(frozen=True)
class Copied:
    schema: str
    table: str
    rows: int
    sha256: str


def _digest(session: Session, table: tuple[str, str], where: str = "") -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    for literal in rows_in_order(session, read_table(session, *table), where):
        digest.update(literal + b"\n")
        count += 1
    return count, digest.hexdigest()


def copy(selection: Selection, target: Session, on_rows: Callable[[int], None] | None = None,
         stores: tuple[Mapping[str, Mapping[str, Any]], Mapping[str, Mapping[str, Any]]] | None = None) -> list[Copied]:
    """Copy the selection into `target`. External objects go from the exporting side's stores to the target
    side's (`stores`: that pair of settings) before the rows that reference them."""
    source = selection.session
    external = [(t[0], t[1], selection.where(t)) for t in selection.graph.tables if store_of_table(t[1])]
    if external:
        objects.transfer(source, external, *(stores or ({}, {})))
    present = [t for t in selection.graph.tables if schema_exists(target, t[0]) and t[1] in table_names(target, t[0])]
    if present:
        raise DjshareError(f"The target server already has {quote_name(*present[0])}"
                           f"{' and more' if len(present) > 1 else ''}: copy into schemas without these tables. "
                           "Nothing was changed.")
    limit = statement_limit(target)
    target.execute(MARIADB.check_foreign_keys())
    result = []
    for table in selection.graph.tables:
        info = selection.info[table]
        target.execute(MARIADB.create_schema(table[0]))
        target.execute(MARIADB.use_schema(table[0]))
        target.execute(create_statement(source, info), doing=f"creating {info.full_name}")
        with target.transaction(f"copying {info.full_name}"):
            copy_rows(source, target, info, info.full_name, selection.where(table).encode(), limit, on_rows)
        expected, mine = _digest(source, table, selection.where(table)), _digest(target, table)
        if expected != mine:
            raise IntegrityViolation(f"{info.full_name} on the target differs from the export ({mine[0]} rows, "
                                     f"expected {expected[0]}): the copy is incomplete.")
        result.append(Copied(table[0], table[1], *expected))
    return result

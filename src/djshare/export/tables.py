"""Exports without DataJoint: the rows selected by SQL restrictions on named tables, closed over foreign keys and
part tables on the server as for captured exports, written as a bundle or copied into another server, and
restored and verified. This is how DataJoint 2.x schemas on MariaDB are exported (in-table types): their
`~lineage` rows for the exported tables go along, so DataJoint 2.x reads the restored schemas as its own.

    from djshare.export.tables import write, copy, restore, verify
    source = ServerAddress.parse("db.lab.org", user, password)
    write(source, [("lab2.session", "subject = 'm1'")], "paper-2025")     # parents and parts come along
    restore("paper-2025", archive); verify("paper-2025", archive).problems
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from djshare.backends.address import ServerAddress
from djshare.backends.catalog import schema_exists, table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import STATEMENT_CAP
from djshare.errors import ConfigurationError, UnknownTableError
from djshare.export import bundle, direct
from djshare.export.closure import Selection, compute
from djshare.export.direct import Copied
from djshare.export.graph import Table
from djshare.export.restore import VerifyReport
from djshare.export.restore import restore as restore_bundle
from djshare.export.restore import verify as verify_bundle
from djshare.progress import progress_bar
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


def select(session: Session, restrictions: Sequence[Restriction]) -> Selection:
    """The closure of `restrictions` on `session`, with the `~lineage` rows of the tables it holds."""
    seeds = _parse(session, restrictions)
    work_schema = seeds[0][0][0]  # temporary key tables live in the session; any schema it can use will do
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


def write(source: ServerAddress, restrictions: Sequence[Restriction], directory: str | Path, progress: bool = True,
          statement_bytes: int | None = None) -> list[bundle.TableEntry]:
    """Write the selected rows (with their parents and parts) as a bundle directory, which must not exist."""
    with Session(source) as session:
        selection = select(session, restrictions)
        with progress_bar("export", sum(selection.counts.values()), progress) as advance:
            return bundle.write(selection, Path(directory), statement_bytes or STATEMENT_CAP, on_rows=advance)


def copy(source: ServerAddress, restrictions: Sequence[Restriction], target: ServerAddress,
         progress: bool = True) -> list[Copied]:
    """Copy the selected rows straight into `target` (schemas without these tables), checked table by table."""
    with Session(source) as session, Session(target) as destination:
        selection = select(session, restrictions)
        with progress_bar("copy", sum(selection.counts.values()), progress) as advance:
            return direct.copy(selection, destination, on_rows=advance)


def restore(directory: str | Path, target: ServerAddress, progress: bool = True) -> list[bundle.TableEntry]:
    """Load a bundle into `target`, whose schemas must not have the bundle's tables yet."""
    entries = bundle.read_manifest(Path(directory))
    with Session(target) as session, progress_bar("restore", sum(e.rows for e in entries), progress) as advance:
        return restore_bundle(Path(directory), session, on_rows=advance)


def verify(directory: str | Path, target: ServerAddress) -> VerifyReport:
    """Row counts, checksums and foreign keys of a restored bundle; problems are listed."""
    with Session(target) as session:
        return verify_bundle(Path(directory), session)

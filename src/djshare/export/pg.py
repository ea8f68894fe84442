"""Exports of DataJoint 2.x schemas on PostgreSQL, without DataJoint: the rows selected by SQL restrictions on
named tables, closed over foreign keys and part tables on the server (temporary key tables grown until nothing
changes, as for MariaDB), with the `~lineage` rows of the exported tables and the objects their references name
(hash-addressed, checked by their MD5; path-addressed `<object@>`, `<npy@>`, `<filepath@>` files and folders at
the same paths, checked by size). Tables are declared from the source catalog (enum types, defaults, comments,
foreign keys among the exported tables) and rows move in PostgreSQL's binary COPY format: straight into another server
(`copy`), or into a bundle directory (`write`) that `restore` loads and `verify` checks.

    from djshare.export.pg import copy, restore, verify, write
    copy(source, [("lab2.session", "subject = 'm1'")], archive, stores=(lab_stores, archive_stores))
    write(source, [("lab2.session", "subject = 'm1'")], "paper-2025", stores=lab_stores)
    restore("paper-2025", archive, stores=archive_stores); verify("paper-2025", archive).problems
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends import postgresql_copy as bulk
from djshare.backends.address import ServerAddress
from djshare.backends.catalog import TableInfo
from djshare.backends.postgresql import PgSession, enum_labels, key_order, name
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.errors import ConfigurationError, DjshareError, IntegrityViolation
from djshare.export.bundle import FILES, check_files, file_checksums, new_directory
from djshare.export.closure import Selection
from djshare.export.direct import Copied
from djshare.export.graph import Table
from djshare.export.restoring import VerifyReport
from djshare.export.selection import Restriction
from djshare.export.selection import select as select_on
from djshare.formats.declare import postgresql_copy
from djshare.formats.dj2_objects import object_columns, object_jobs
from djshare.progress import progress_bar
from djshare.stores.copying import CopyJob, copy_checked
from djshare.stores.formats.dj2 import HASH_PREFIX, digest_of
from djshare.stores.spec import StoreSpec

LINEAGE_TABLE = "~lineage"
FORMAT = "djshare-pg-bundle/1"
MANIFEST = "manifest.json"


def _tables(pg: PgSession, schemas: Sequence[str]) -> set[Table]:
    return {(str(s), str(t)) for s, t in pg.rows(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY(%s) AND "
        "table_type = 'BASE TABLE'", [list(schemas)])}


def select(pg: PgSession, restrictions: Sequence[Restriction]) -> Selection:
    """The closure of `restrictions`, with the `~lineage` rows of the exported tables."""
    return select_on(pg, restrictions, sql=POSTGRESQL)


def _declaration(selection: Selection, table: Table) -> list[str]:
    """The table as the source declares it, with its foreign keys to the other exported tables."""
    info = selection.info[table]
    statements = postgresql_copy(info, None, table[0], {}, lambda kind: enum_labels(selection.session, kind))
    foreign = [f"ALTER TABLE {name(*table)} ADD FOREIGN KEY ({', '.join(name(c) for c, _ in fk.columns)}) REFERENCES "
               f"{name(*fk.parent)} ({', '.join(name(p) for _, p in fk.columns)}) ON UPDATE CASCADE ON DELETE RESTRICT"
               for fk in selection.graph.edges if fk.child == table]
    return [*statements, *foreign]


StoreSettings = Mapping[str, Mapping[str, Any]]


def _bundle_stores(directory: Path, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """A bundle's objects as file stores inside it, one folder per store."""
    return {store: {"protocol": "file", "location": str(directory / "objects" / store)} for store in names}


def _stores_used(selection: Selection) -> list[str]:
    return sorted({c.store for t in selection.graph.tables for c in object_columns([selection.info[t]], {})})


def _objects(selection: Selection, stores: tuple[StoreSettings, StoreSettings]) -> int:
    """Copy the objects the exported rows reference into the target's stores (same names, same paths)."""
    jobs = []
    for table in selection.graph.tables:
        for found in object_columns([selection.info[table]], {}):
            source, target = (StoreSpec.from_config(found.store, stores[0], "source"),
                              StoreSpec.from_config(found.store, stores[1], "target"))
            column = name(found.column.name)
            for (value,) in selection.session.rows(
                    f"SELECT DISTINCT {column}::text FROM {name(*table)} WHERE {column} IS NOT NULL AND "
                    f"{selection.where(table)}", doing=f"reading references in {table[0]}.{table[1]}"):
                jobs += object_jobs(found, value, source, target, None)
    return copy_checked(jobs) if jobs else 0


def copy(source: ServerAddress, restrictions: Sequence[Restriction], target: ServerAddress,
         stores: tuple[Mapping[str, Mapping[str, Any]], Mapping[str, Mapping[str, Any]]] | None = None,
         progress: bool = True) -> list[Copied]:
    """Copy the selected rows (with their parents, parts and objects) into `target`, whose schemas must not have
    these tables; each table is declared and filled in one transaction and checked by its row count. `stores`:
    the (source, target) store settings for objects of hash-addressed codecs (same store names on both)."""
    with postgres.session(source) as pg, postgres.session(target) as destination:
        selection = select(pg, restrictions)
        present = _tables(destination, sorted({s for s, _ in selection.graph.tables})) & set(selection.graph.tables)
        if present:
            first = sorted(present)[0]
            raise DjshareError(f"The target server already has {first[0]}.{first[1]}"
                               f"{' and more' if len(present) > 1 else ''}: copy into schemas without these tables. "
                               "Nothing was changed.")
        _objects(selection, stores or ({}, {}))
        result = []
        with progress_bar("copy", sum(selection.counts.values()), progress) as advance:
            for table in selection.graph.tables:
                result.append(_copy_table(selection, destination, table, advance))
        return result


def _copy_table(selection: Selection, destination: PgSession, table: Table, advance: Callable[[int], None]) -> Copied:
    info = selection.info[table]
    columns = ", ".join(name(c.name) for c in info.columns)
    with destination.transaction(f"copying {table[0]}.{table[1]}"):
        destination.execute(POSTGRESQL.create_schema(table[0]))
        for statement in _declaration(selection, table):
            destination.execute(statement, doing=f"declaring {table[0]}.{table[1]}")
        bulk.between(selection.session, f"SELECT {columns} FROM {name(*table)} WHERE {selection.where(table)}",
                     destination, name(*table), [c.name for c in info.columns], f"copying {table[0]}.{table[1]}")
    expected = _digest(selection.session, info, selection.where(table))
    found = _digest(destination, info, "TRUE")
    if found != expected:
        raise IntegrityViolation(f"{table[0]}.{table[1]} on the target differs from the export ({found[0]} rows, "
                                 f"expected {expected[0]}): the copy is incomplete.")
    advance(found[0])
    return Copied(table[0], table[1], *found)


def _digest(pg: PgSession, info: TableInfo, where: str) -> tuple[int, str]:
    """Row count and SHA-256 of the rows' text forms in key order (sessions format values alike)."""
    count, digest = pg.rows(
        f"SELECT count(*), encode(sha256(convert_to(coalesce(string_agg(t::text, E'\\n' ORDER BY "
        f"{key_order(info, 't.')}), ''), 'UTF8')), 'hex') FROM {name(info.schema, info.name)} AS t WHERE {where}",
        doing=f"checking {info.schema}.{info.name}")[0]
    return int(count), str(digest)


@dataclass(frozen=True)
class Entry:
    """One table of a PostgreSQL bundle."""

    schema: str
    table: str
    rows: int
    sha256: str
    columns: tuple[str, ...]
    ddl: tuple[str, ...]  # statements declaring the table
    data: str  # file with the rows in binary COPY format


def write(source: ServerAddress, restrictions: Sequence[Restriction], directory: str | Path,
          stores: StoreSettings | None = None, progress: bool = True) -> list[Entry]:
    """Write the selected rows (with their parents, parts, `~lineage` rows and objects; `stores`: the source's
    store settings) as a bundle directory, which must not exist yet."""
    with new_directory(Path(directory), "data") as partial:
        with postgres.session(source) as pg:
            selection = select(pg, restrictions)
            used = _stores_used(selection)
            objects = _objects(selection, (stores or {}, _bundle_stores(partial, used))) if used else 0
            entries = []
            with progress_bar("export", sum(selection.counts.values()), progress) as advance:
                for index, table in enumerate(selection.graph.tables):
                    entries.append(_write_table(selection, table, partial, f"data/{index}.copy"))
                    advance(entries[-1].rows)
        manifest = {"format": FORMAT, "tables": [asdict(e) for e in entries], "stores": used, "objects": objects,
                    "checksums": _checksums(partial, used), FILES: file_checksums(partial)}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return entries


def _checksums(directory: Path, used: Sequence[str]) -> dict[str, str]:
    """MD5 of each path-addressed object file in a bundle ("store/path" -> hex), for `restore` to check; a
    hash-addressed one is named by its MD5."""
    found = {}
    for store in used:
        root = directory / "objects" / store
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if not relative.startswith(HASH_PREFIX + "/"):
                digest = hashlib.md5()
                with path.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
                found[f"{store}/{relative}"] = digest.hexdigest()
    return found


def _write_table(selection: Selection, table: Table, folder: Path, data: str) -> Entry:
    info = selection.info[table]
    columns = ", ".join(name(c.name) for c in info.columns)
    bulk.to_file(selection.session, f"SELECT {columns} FROM {name(*table)} WHERE {selection.where(table)}",
                 folder / data, f"exporting {table[0]}.{table[1]}")
    count, digest = _digest(selection.session, info, selection.where(table))
    return Entry(table[0], table[1], count, digest, tuple(c.name for c in info.columns),
                 tuple(_declaration(selection, table)), data)


def read_manifest(directory: str | Path) -> tuple[list[Entry], list[str]]:
    """The entries and store names of a PostgreSQL bundle."""
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{directory} is not a djshare bundle ({error}).") from None
    if manifest.get("format") != FORMAT:
        raise ConfigurationError(f"{directory} is a {manifest.get('format')!r} bundle, not a PostgreSQL one "
                                 f"({FORMAT}): restore it into the kind of server it came from.")
    entries = [Entry(**{**e, "columns": tuple(e["columns"]), "ddl": tuple(e["ddl"])}) for e in manifest["tables"]]
    return entries, list(manifest.get("stores", []))


def restore(directory: str | Path, target: ServerAddress, stores: StoreSettings | None = None,
            progress: bool = True) -> list[Entry]:
    """Load a bundle into `target`, whose schemas must not have its tables: every file checked against the
    manifest first, then objects (into the target's `stores`, checked), then all tables declared, filled and
    checked in one transaction."""
    directory = Path(directory)
    entries, used = read_manifest(directory)
    check_files(directory, {e.data: f"{e.schema}.{e.table}" for e in entries})
    with postgres.session(target) as pg:
        present = _tables(pg, sorted({e.schema for e in entries})) & {(e.schema, e.table) for e in entries}
        if present:
            first = sorted(present)[0]
            raise DjshareError(f"The target server already has {first[0]}.{first[1]}"
                               f"{' and more' if len(present) > 1 else ''}: restore into schemas without these "
                               "tables. Nothing was changed.")
        if used:
            _put_objects(directory, entries, used, stores or {})
        # one transaction for every table (PostgreSQL's DDL is transactional): a failure leaves no table behind
        with progress_bar("restore", sum(e.rows for e in entries), progress) as advance, pg.transaction("restoring"):
            for entry in entries:
                _load(pg, directory, entry)
                advance(entry.rows)
            problems = _check(pg, entries)
            if problems:
                raise IntegrityViolation("The restored tables differ from the bundle: " + "; ".join(problems)
                                         + ". Nothing was restored (the transaction was rolled back).")
    return entries


def _put_objects(directory: Path, entries: list[Entry], used: list[str], stores: StoreSettings) -> None:
    bundle = _bundle_stores(directory, used)
    checksums = json.loads((directory / MANIFEST).read_text()).get("checksums", {})
    jobs = []
    for store in used:
        source, target = StoreSpec.from_config(store, bundle, "bundle"), StoreSpec.from_config(store, stores, "target")
        root = Path(source.location)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()  # hash-addressed objects are checked by their names
            hashed = relative.startswith(HASH_PREFIX + "/")
            known = checksums.get(f"{store}/{relative}")
            md5 = digest_of(path.name) if hashed else bytes.fromhex(known) if known else None
            jobs.append(CopyJob(source, relative, target, relative, path.stat().st_size, md5, hashed))
    copy_checked(jobs)


def _load(pg: PgSession, directory: Path, entry: Entry) -> None:
    where = f"{entry.schema}.{entry.table}"
    with pg.transaction(f"loading {where}"):
        pg.execute(POSTGRESQL.create_schema(entry.schema))
        for statement in entry.ddl:
            pg.execute(statement, doing=f"declaring {where}")
        bulk.from_file(pg, name(entry.schema, entry.table), entry.columns, directory / entry.data, f"loading {where}")


def _check(pg: PgSession, entries: list[Entry]) -> list[str]:
    problems = []
    for entry in entries:
        if (entry.schema, entry.table) not in _tables(pg, [entry.schema]):
            problems.append(f"{entry.schema}.{entry.table} is missing")
            continue
        count, digest = _digest(pg, postgres.read_table(pg, entry.schema, entry.table), "TRUE")
        if (count, digest) != (entry.rows, entry.sha256):
            problems.append(f"{entry.schema}.{entry.table} has {count} rows (bundle: {entry.rows})"
                            + ("" if count != entry.rows else ", with other values"))
    return problems


def verify(directory: str | Path, target: ServerAddress) -> VerifyReport:
    """Row counts and checksums of a restored bundle on `target`; problems are listed."""
    entries, _ = read_manifest(directory)
    with postgres.session(target) as pg:
        return VerifyReport(len(entries), sum(e.rows for e in entries), _check(pg, entries))

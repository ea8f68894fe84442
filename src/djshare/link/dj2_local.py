"""A link's local side in DataJoint 2.x's layout on PostgreSQL: a DataJoint 0.14 source table (MariaDB) pulled
into tables that DataJoint 2.x reads as its own.

- Declaration: djshare writes the tables as DataJoint 2.3 declares them on PostgreSQL (types, `:label:`
  comments, `-> master` foreign keys of part tables, `~lineage` rows), so the local lab needs no 0.14 code.
  Source foreign keys to other tables become plain attributes, as on MariaDB.
- Types: MariaDB types map to the PostgreSQL type holding the same values (unsigned integers one size up,
  FLOAT to real, time to interval); 0.14 blobs become `<blob>`, in-table attachments `<attach>`, and
  external `blob@store` / `attach@store` columns `<blob@store>` / `<attach@store>` JSON references.
- Objects are converted byte-exact before any row references them: a blob keeps its bytes, an attachment
  becomes `name + NUL + contents`; both keep their MD5 (0.14 salted the attachment's hash with `name + NUL`),
  which is checked while copying, and land at `_hash/{local schema}/{base32 MD5}` in the local store.
- Keys: the pull loop names entities by the source's key literals; this side reads the typed key values of
  a batch from the source (one query per batch) and compares those with PostgreSQL's.

Not possible here: `filepath@store` (2.x's `<filepath@store>` names paths in the store itself, with no
contents hash) and adapted types; both are refused before anything changes.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from djshare.backends import postgresql_copy as bulk
from djshare.backends.catalog import Column
from djshare.backends.mariadb import Session
from djshare.backends.mariadb_rows import MARIADB, exact, key_condition
from djshare.backends.postgresql import PgSession, name
from djshare.backends.postgresql import read_table as pg_read_table
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.errors import DefinitionMismatchError, DjshareError
from djshare.formats.convert import attribute_converter
from djshare.formats.declare import postgresql_table
from djshare.formats.heading import Attribute, Heading, headings, mismatch
from djshare.formats.lineage import Row
from djshare.formats.values import compared_on_postgresql, to_postgresql
from djshare.link import objects
from djshare.link.journal import pg_journal as journal
from djshare.link.journal import pg_objects_lock as objects_lock
from djshare.link.keymap import TypedSide
from djshare.link.local import create_local
from djshare.link.pull import PullReport
from djshare.link.tables import Checkpoint, LinkTables, StorePair
from djshare.stores.copying import CopyJob, copy_checked
from djshare.stores.formats.dj014 import ExternalRow, relative_path
from djshare.stores.formats.dj2 import Reference, attachment_prefix

WORKERS = 8


def local_tables(tables: LinkTables, stores: Mapping[str, str], source_format: str = "dj014") -> tuple[Heading, ...]:
    """The master, then the parts, as PostgreSQL tables in the local schema (`source_format`: the source's
    DataJoint format on MariaDB, "dj014" or "dj2")."""
    return headings(tables.source, tables.source_parts, tables.local_schema,
                    attribute_converter("mariadb", source_format, "postgresql", "dj2", stores), name)


def declare(pg: PgSession, tables: LinkTables, local: tuple[Heading, ...], lineage: Sequence[Row]) -> list[str]:
    """Create the local schema and tables where missing and record their `~lineage` rows; return how existing
    tables differ from the source (empty when they match)."""
    master = local[0]
    create_local(pg, tables.local_schema, {t.source.name: postgresql_table(t, None if t is master else master)
                                           for t in local}, lineage,
                 [POSTGRESQL.create_schema(tables.local_schema)], POSTGRESQL)
    found = []
    for table in local:
        found += mismatch(table, pg_read_table(pg, tables.local_schema, table.source.name))
    return found


def _select(columns: Sequence[Column]) -> str:
    """Source columns as the driver should send them (`backends.mariadb_rows.exact`: FLOAT widened to DOUBLE)."""
    return ", ".join(exact(c) for c in columns)


class PostgresLocal(TypedSide):
    """The local side of a link whose local tables are a DataJoint 2.x schema on PostgreSQL."""

    source_sql, local_sql = MARIADB, POSTGRESQL

    def __init__(self, source: Session, pg: PgSession, tables: LinkTables, local: tuple[Heading, ...],
                 workers: int = WORKERS) -> None:
        super().__init__(source, pg, tables, local)
        self.pg, self.local = pg, local
        self.workers = workers

    def _key(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(to_postgresql(t, v, {}) for t, v in zip(self.local[0].key, values, strict=True))

    def _source_param(self, column: Attribute, value: Any) -> Any:
        return value.bytes if isinstance(value, uuid.UUID) else value

    def _compared_source(self, column: Attribute, value: Any) -> Any:
        return compared_on_postgresql(column, value)

    def _compared_local(self, column: Attribute, value: Any) -> Any:
        return compared_on_postgresql(column, value, local=True)

    def _objects(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> dict[tuple[str, bytes], str]:
        """The batch's objects in the local stores (converted, checked): (local store, 0.14 hash) -> reference."""
        refs: dict[tuple[str, bytes], str] = {}
        if self.tables.stores.columns:
            found = objects.referenced(self.source, self.tables, keys)
            report.objects += self._bring(found, refs)
            checkpoint("copy_objects")
        return refs

    def _copy_into(self, table: Heading, where: bytes, into: str, refs: Mapping[tuple[str, bytes], str]) -> int:
        """Stream the source rows of `table` matching `where` into the PostgreSQL table `into` (COPY)."""
        source = table.source
        rows = self.source.stream(f"SELECT {_select(source.columns)} FROM {source.full_name} WHERE "
                                  .encode() + where, doing=f"reading {source.full_name}")
        return bulk.write_rows(self.pg, into, [c.name for c in table.columns],
                               ([to_postgresql(t, v, refs) for t, v in zip(table.columns, row, strict=True)]
                                for row in rows), f"inserting into {table.full_name}")

    def _objects_lock(self) -> contextlib.AbstractContextManager[None]:
        """Object copies and gc of the local schema one at a time (when the link has objects)."""
        if not self.tables.stores.columns:
            return contextlib.nullcontext()
        return objects_lock(self.pg, self.tables.local_schema)

    def copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Objects first (converted, checked), then every row of the batch in one PostgreSQL transaction."""
        with self._objects_lock():
            self._copy(keys, report, checkpoint)

    def _copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        refs = self._objects(keys, report, checkpoint)
        where = key_condition(self.tables.source, keys)
        with self.pg.transaction(f"inserting into {self.name}"):
            for table in self.local:
                copied = self._copy_into(table, where, table.full_name, refs)
                if table is self.local[0]:
                    report.pulled += copied
                else:
                    report.part_rows += copied

    def refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Bring these entities' current source rows over: objects first, then in one local transaction rows
        updated in place (rows that reference them stay valid), new part rows inserted, part rows the source
        dropped deleted. The outbound state does not change."""
        with self._objects_lock():
            self._refresh(keys, report, checkpoint)

    def _refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        refs = self._objects(keys, report, checkpoint)
        where = key_condition(self.tables.source, keys)
        typed = list(self._source_keys(key_condition(self.tables.source, keys)))
        master = self.local[0]
        with self.pg.transaction(f"refreshing {self.name}"):
            for table in self.local:
                self.pg.execute(f"CREATE TEMPORARY TABLE djshare_refresh (LIKE {table.full_name}) ON COMMIT DROP")
                self._copy_into(table, where, "djshare_refresh", refs)
                keys_sql = ", ".join(name(c.name) for c in table.key)
                if table is not master and typed:
                    names = ", ".join(name(c.name) for c in master.key)
                    row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
                    self.pg.execute(f"DELETE FROM {table.full_name} WHERE ({names}) IN "
                                    f"({', '.join([row] * len(typed))}) "
                                    f"AND ({keys_sql}) NOT IN (SELECT {keys_sql} FROM djshare_refresh)",
                                    [v for key in typed for v in key],
                                    doing=f"deleting dropped rows of {table.full_name}")
                columns = ", ".join(name(c.name) for c in table.columns)
                self.pg.execute(f"INSERT INTO {table.full_name} ({columns}) SELECT {columns} FROM djshare_refresh"
                                + POSTGRESQL.upsert([c.name for c in table.columns], [c.name for c in table.key]),
                                doing=f"refreshing {table.full_name}")
                self.pg.execute("DROP TABLE djshare_refresh")
        report.refreshed += len(keys)

    def _bring(self, found: dict[str, list[ExternalRow]], refs: dict[tuple[str, bytes], str]) -> int:
        """Put each referenced object into its local store in the 2.x layout (an attachment as `name + NUL +
        contents`: the MD5 0.14 salted its hash with); fill `refs` (local store, 0.14 hash) -> JSON reference.
        Raises before any row is written if an object is missing or damaged."""
        schema = self.tables.local_schema
        jobs: dict[CopyJob, tuple[ExternalRow, StorePair]] = {}
        for store, rows in found.items():
            pair = self.tables.stores.pairs[store]
            for row in rows:
                prefix = attachment_prefix(row.attachment_name) if row.kind == "attach" and \
                    row.attachment_name is not None else b""
                reference = Reference.of(row.hash, row.size + len(prefix), pair.local.name, schema)
                refs[(pair.local.name, row.hash)] = reference.to_json()
                source = str(relative_path(self.tables.source.schema, row, pair.source.subfolding))
                jobs[CopyJob(pair.source, source, pair.local, reference.path, reference.size, row.hash, True,
                             prefix=prefix, record="its ~external row")] = (row, pair)

        def explain(job: CopyJob, error: DjshareError) -> DjshareError:
            row, pair = jobs[job]
            entity = objects.entity_of(self.source, self.tables, pair.source.name, row.hash)
            return type(error)(f"{error} It belongs to {entity}. Nothing was inserted for this batch; re-run pull "
                               "after fixing the store.")

        return copy_checked(list(jobs), self.workers, explain=explain, journal=lambda absent: journal(
            self.pg, schema, [(job.target.name, job.target_path) for job in absent]))


def check_declared(found: list[str], tables: LinkTables) -> None:
    if found:
        raise DefinitionMismatchError(
            f"The local tables of {tables.source.full_name} in PostgreSQL schema {tables.local_schema} no longer "
            f"match the source: {'; '.join(found)}. Nothing was pulled. Alter them to match (or drop them after "
            "saving their rows, and let djshare declare them again).")


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
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from djshare.backends.catalog import Column
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import exact, key_condition, row_literal
from djshare.backends.postgresql import PgSession, name
from djshare.backends.postgresql import read_table as pg_read_table
from djshare.backends.postgresql import translate as pg_translate
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.errors import DefinitionMismatchError, DjshareError
from djshare.formats.convert import attribute_converter
from djshare.formats.declare import postgresql_table
from djshare.formats.heading import Heading, headings, mismatch
from djshare.formats.lineage import Row
from djshare.formats.values import compared_on_postgresql, to_postgresql
from djshare.link import objects
from djshare.link.journal import pg_journal as journal
from djshare.link.journal import pg_objects_lock as objects_lock
from djshare.link.keymap import local_key_pages, local_keys
from djshare.link.local import create_local
from djshare.link.pull import PullReport
from djshare.link.stale import entity_changes
from djshare.link.tables import Checkpoint, LinkTables, StorePair
from djshare.stores.copying import CopyJob, copy_checked
from djshare.stores.formats.dj014 import ExternalRow, relative_path
from djshare.stores.formats.dj2 import Reference, attachment_prefix
from djshare.sync.actions import Action

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
                 [f"CREATE SCHEMA IF NOT EXISTS {name(tables.local_schema)}"], POSTGRESQL)
    found = []
    for table in local:
        found += mismatch(table, pg_read_table(pg, tables.local_schema, table.source.name))
    return found


def _select(columns: Sequence[Column]) -> str:
    """Source columns as the driver should send them (`backends.mariadb_rows.exact`: FLOAT widened to DOUBLE)."""
    return ", ".join(exact(c) for c in columns)


class PostgresLocal:
    """The local side of a link whose local tables are a DataJoint 2.x schema on PostgreSQL."""

    def __init__(self, source: Session, pg: PgSession, tables: LinkTables, local: tuple[Heading, ...],
                 workers: int = WORKERS) -> None:
        self.source, self.pg, self.tables, self.local = source, pg, tables, local
        self.name = local[0].full_name
        self.workers = workers
        self.stranded: list[tuple[Any, ...]] = []

    def _key_of(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(to_postgresql(t, v, {}) for t, v in zip(self.local[0].key, values, strict=True))

    def _typed(self, keys: list[bytes]) -> dict[tuple[Any, ...], bytes]:
        """Typed key values (as this side holds them) of source key literals."""
        source = self.tables.source
        rows = self.source.rows(
            f"SELECT {row_literal(source.key_columns)}, {_select(source.key_columns)} FROM {source.full_name} "
            "WHERE ".encode() + key_condition(source, keys), doing=f"reading keys of {source.full_name}")
        return {self._key_of(row[1:]): bytes(row[0]) for row in rows}

    def _local_keys(self, typed: Sequence[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        return local_keys(self.pg, self.local[0], typed, name, self._key_of)

    def present(self, keys: list[bytes]) -> set[bytes]:
        typed = self._typed(keys)
        return {typed[k] for k in self._local_keys(list(typed))}

    def count(self) -> int:
        return int(self.pg.scalar(f"SELECT COUNT(*) FROM {self.name}"))

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        """Local keys as source literals. Keys the source no longer has (no literal can be made for them) are
        collected in `stranded`: their rows stay, for a person to decide on."""
        master, source = self.local[0], self.tables.source

        def on_source(typed: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], bytes]:
            row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
            found = self.source.rows(
                f"SELECT {row_literal(source.key_columns)}, {_select(source.key_columns)} FROM "
                f"{source.full_name} WHERE ({', '.join(quote_name(c.name) for c in source.key_columns)}) IN "
                f"({', '.join([row] * len(typed))})",
                [v.bytes if isinstance(v, uuid.UUID) else v for key in typed for v in key],
                doing=f"reading keys of {source.full_name}")
            return {self._key_of(r[1:]): bytes(r[0]) for r in found}

        return local_key_pages(self.pg, master, size, name, self._key_of, on_source, self.stranded)

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
        columns = ", ".join(name(c.name) for c in table.columns)
        copied = 0
        try:
            with self.pg.connection.cursor() as cursor, cursor.copy(f"COPY {into} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([to_postgresql(t, v, refs) for t, v in zip(table.columns, row, strict=True)])
                    copied += 1
        except DjshareError:
            raise
        except Exception as error:  # psycopg's errors, raised by the COPY
            raise pg_translate(error, self.pg.address, f"inserting into {table.full_name}") from None
        return copied

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

    def stale_keys(self, keys: list[bytes]) -> tuple[list[bytes], int, list[Action]]:
        """The two servers hold different types, so these entities' rows are read from both and compared in the
        local form (float32 by its bits, json by value, objects by their MD5)."""
        source = self.tables.source
        where = key_condition(source, keys)
        typed = self._typed(keys)
        theirs: dict[bytes, list[Any]] = {}
        mine: dict[bytes, list[Any]] = {}
        master = self.local[0]
        names = ", ".join(name(c.name) for c in master.key)
        row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
        for table in self.local:
            for found in self.source.rows(
                    f"SELECT {row_literal(source.key_columns)}, {_select(table.source.columns)} FROM "
                    f"{table.source.full_name} WHERE ".encode() + where, doing=f"reading {table.source.full_name}"):
                theirs.setdefault(bytes(found[0]), []).append(
                    (table.source.name, *(compared_on_postgresql(t, v)
                                          for t, v in zip(table.columns, found[1:], strict=True))))
            if not typed:
                continue
            for found in self.pg.rows(
                    f"SELECT {names}, {', '.join(name(c.name) for c in table.columns)} FROM {table.full_name} WHERE "
                    f"({names}) IN ({', '.join([row] * len(typed))})", [v for key in typed for v in key],
                    doing=f"reading {table.full_name}"):
                literal = typed.get(self._key_of(found[:len(master.key)]))
                if literal is not None:
                    mine.setdefault(literal, []).append((table.source.name, *(
                        compared_on_postgresql(t, v, local=True) for t, v in zip(table.columns, found[len(master.key):],
                                                                     strict=True))))
        mine = {k: v for k, v in mine.items() if any(r[0] == source.name for r in v)}
        differ = [k for k in keys if k in mine and sorted(mine[k], key=repr) != sorted(theirs.get(k, []), key=repr)]
        columns = {t.source.name: ([c.name for c in t.columns], t.source.primary_key) for t in self.local}
        return differ, sum(1 for k in keys if k not in mine), [
            change for k in differ for change in entity_changes(columns, theirs.get(k, []), mine[k])]

    def refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Bring these entities' current source rows over: objects first, then in one local transaction rows
        updated in place (rows that reference them stay valid), new part rows inserted, part rows the source
        dropped deleted. The outbound state does not change."""
        with self._objects_lock():
            self._refresh(keys, report, checkpoint)

    def _refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        refs = self._objects(keys, report, checkpoint)
        where = key_condition(self.tables.source, keys)
        typed = list(self._typed(keys))
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
                values = [c.name for c in table.columns if c.name not in table.source.primary_key]
                update = ("DO UPDATE SET " + ", ".join(f"{name(c)} = EXCLUDED.{name(c)}" for c in values)) \
                    if values else "DO NOTHING"
                self.pg.execute(f"INSERT INTO {table.full_name} ({columns}) SELECT {columns} FROM djshare_refresh "
                                f"ON CONFLICT ({keys_sql}) {update}", doing=f"refreshing {table.full_name}")
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


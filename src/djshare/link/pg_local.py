"""The local side of links between DataJoint 2.x schemas on PostgreSQL (`PostgresCopy`): the source's tables
held as they are (same types, declared by `formats.declare.postgresql_copy`), rows streamed from source to local
with binary `COPY`, one local transaction per batch, object references rewritten for the local schema and stores
after the objects were copied (checked) and journaled; stale and refresh compare an MD5 of each entity's rows
computed inside both servers, and read the rows of only the entities that differ."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from djshare.backends import postgresql_copy as bulk
from djshare.backends.catalog import Column, TableInfo
from djshare.backends.postgresql import (
    PgSession,
    key_condition,
    key_literal,
    key_names,
    key_order,
    name,
    paged_keys,
    text,
)
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.formats.dj2_objects import ObjectColumn, object_jobs
from djshare.link.journal import pg_journal as journal
from djshare.link.journal import pg_objects_lock as objects_lock
from djshare.link.pull import PullReport
from djshare.link.stale import entity_changes
from djshare.link.tables import Checkpoint, LinkTables
from djshare.stores.copying import CopyJob, copy_checked
from djshare.stores.formats.dj2 import (
    HASHED_CODECS,
    SCHEMA_CODECS,
    codec_of,
    hash_path,
    schema_path_rule,
)
from djshare.stores.spec import StoreSpec
from djshare.sync.actions import Action


@dataclass(frozen=True)
class Objects:
    """The object columns of a link and the store settings of both sides (by source store name)."""

    columns: tuple[ObjectColumn, ...] = ()
    specs: Mapping[str, tuple[StoreSpec, StoreSpec]] | None = None


def _comparable(column: Column) -> str:
    """SQL for a column's value as both sides of a link compare it: hash-addressed objects by their content hash,
    path-addressed ones by their reference without the store and (schema-addressed) with the file name of the
    path only (a new object gets a new token); other columns as they are."""
    codec, ref = codec_of(column.comment), f"{name(column.name)}::jsonb"
    if codec is None or codec[1] is None:
        return name(column.name)
    if codec[0] in HASHED_CODECS:
        return f"({ref} ->> 'hash')"
    if codec[0] in SCHEMA_CODECS:
        return (f"({ref} - 'store' - 'path' || jsonb_build_object('file', regexp_replace({ref} ->> 'path', '^.*/', "
                "'')))::text")
    return f"({ref} - 'store')::text"


def _row_text(table: TableInfo) -> str:
    """SQL for a row's text, equal on both sides of a link (see `_comparable`)."""
    return " || ',' || ".join(f"quote_nullable({_comparable(c)})" for c in table.columns)


def entity_rows(pg: PgSession, schema: str, tables: LinkTables, keys: list[bytes]) -> dict[bytes, list[Any]]:
    """Per master key literal: its master and part rows as (table name, *comparable values), read on the server
    holding `schema` (source or local), for what `stale` reports as changed."""
    master = tables.source
    where = key_condition(master, keys)
    found: dict[bytes, list[Any]] = {}
    for table in (master, *tables.source_parts):
        values = ", ".join(_comparable(c) for c in table.columns)
        for row in pg.rows(f"SELECT {key_literal(master.key_columns)}, {values} FROM {name(schema, table.name)} "
                           "WHERE ".encode() + where,
                           doing=f"reading rows of {schema}.{table.name}"):
            found.setdefault(bytes(row[0]), []).append((table.name, *row[1:]))
    return found


def digests(pg: PgSession, schema: str, tables: LinkTables, keys: list[bytes]) -> dict[bytes, tuple[str, ...]]:
    """Per master key literal: the MD5 of its master row and of each part table's rows in key order, computed on
    the server holding `schema` (source or local)."""
    master = tables.source
    where = key_condition(master, keys)
    found: dict[bytes, tuple[str, ...]] = {bytes(k): (str(d),) for k, d in pg.rows(
        f"SELECT {key_literal(master.key_columns)}, md5({_row_text(master)}) FROM {name(schema, master.name)} "
        "WHERE ".encode() + where, doing=f"hashing rows of {schema}.{master.name}")}
    for part in tables.source_parts:
        rows = {bytes(k): str(d) for k, d in pg.rows(
            f"SELECT {key_literal(master.key_columns)}, md5(string_agg({_row_text(part)}, E'\\n' ORDER BY "
            f"{key_order(part)})) FROM {name(schema, part.name)} WHERE ".encode() + where
            + f" GROUP BY {key_names(master)}".encode(), doing=f"hashing rows of {schema}.{part.name}")}
        found = {key: (*value, rows.get(key, "")) for key, value in found.items()}
    return found


class PostgresCopy:
    """A link's local side on PostgreSQL holding the source's tables as they are (same types): objects first,
    then rows stream from source to local with binary COPY, references rewritten for the local schema."""

    def __init__(self, source: PgSession, local: PgSession, tables: LinkTables, objects: Objects = Objects()) -> None:
        self.source, self.local, self.tables, self.objects = source, local, tables, objects
        self.master = replace(tables.source, schema=tables.local_schema)
        self.name = name(tables.local_schema, tables.source.name)

    def present(self, keys: list[bytes]) -> set[bytes]:
        return {bytes(r[0]) for r in self.local.rows(
            f"SELECT {key_literal(self.master.key_columns)} FROM {self.name} WHERE ".encode()
            + key_condition(self.master, keys), doing=f"reading {self.name}")}

    def count(self) -> int:
        return int(self.local.scalar(f"SELECT count(*) FROM {self.name}"))

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        return paged_keys(self.local, self.master, self.name, "TRUE", size)

    def _selected(self, table: TableInfo, column: Column) -> str:
        """The source column as the local table holds it: references to objects rewritten for the local side
        (store; hash-addressed: path and schema; schema-addressed: path moved to the local schema)."""
        found = [c for c in self.objects.columns if c.table.name == table.name and c.column.name == column.name]
        if not found:
            return name(column.name)
        objects, schema, ref = found[0], self.tables.local_schema, f"{name(column.name)}::jsonb"
        changes = {"store": text(objects.local_store)}
        if objects.codec in HASHED_CODECS:
            changes |= {"path": f"{text(hash_path(schema, ''))} || ({ref} ->> 'hash')", "schema": text(schema)}
        elif objects.codec in SCHEMA_CODECS:
            source, local = (self.objects.specs or {})[objects.store]
            pattern, replacement = schema_path_rule(source.schema_prefix, table.schema, local.schema_prefix, schema)
            changes["path"] = f"regexp_replace({ref} ->> 'path', {text(pattern)}, {text(replacement)})"
        update = "jsonb_build_object(" + ", ".join(f"{text(k)}, {v}" for k, v in changes.items()) + ")"
        return f"CASE WHEN {name(column.name)} IS NULL THEN NULL ELSE ({ref} || {update})::{column.column_type} END"

    def _bring(self, where: bytes) -> int:
        """Copy the objects the rows of `where` reference into the local stores (before the rows). Objects the
        local stores do not have yet are entered in the journal first, so that gc knows djshare wrote them."""
        jobs: list[CopyJob] = []
        specs = self.objects.specs or {}
        for found in self.objects.columns:
            table, column = found.table, name(found.column.name)
            source, local = specs[found.store]
            for (value,) in self.source.rows(
                    f"SELECT DISTINCT {column}::text FROM {name(table.schema, table.name)} WHERE {column} IS NOT NULL "
                    "AND ".encode() + where, doing=f"reading references in {table.schema}.{table.name}"):
                jobs += object_jobs(found, value, source, local, self.tables.local_schema)
        return copy_checked(jobs, journal=lambda absent: journal(
            self.local, self.tables.local_schema, [(job.target.name, job.target_path) for job in absent]))

    def copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Objects first (checked), then master and part rows of `keys` in one local transaction (binary COPY,
        streamed); gc of the local schema waits meanwhile."""
        with contextlib.ExitStack() as stack:
            if self.objects.columns:
                stack.enter_context(objects_lock(self.local, self.tables.local_schema))
                report.objects += self._bring(key_condition(self.tables.source, keys))
                checkpoint("copy_objects")
            self._copy_rows(keys, report)

    def _copy_rows(self, keys: list[bytes], report: PullReport) -> None:
        where = key_condition(self.tables.source, keys)
        with self.local.transaction(f"inserting into {self.name}"):
            for table in (self.tables.source, *self.tables.source_parts):
                target = name(self.tables.local_schema, table.name)
                copied = bulk.between(self.source, self._select(table, where), self.local, target,
                                      [c.name for c in table.columns], f"copying rows into {target}")
                if table is self.tables.source:
                    report.pulled += copied
                else:
                    report.part_rows += copied

    def stale_keys(self, keys: list[bytes]) -> tuple[list[bytes], int, list[Action]]:
        """Each side hashes these entities' rows inside its server (objects by their content hash, since paths,
        stores and schemas differ by design) and the digests are compared; only the rows of entities that differ
        are read, to say what changed."""
        theirs = digests(self.source, self.tables.source.schema, self.tables, keys)
        mine = digests(self.local, self.tables.local_schema, self.tables, keys)
        differ = [k for k in keys if k in mine and mine[k] != theirs.get(k)]
        changes: list[Action] = []
        if differ:
            source_rows = entity_rows(self.source, self.tables.source.schema, self.tables, differ)
            local_rows = entity_rows(self.local, self.tables.local_schema, self.tables, differ)
            columns = {t.name: ([c.name for c in t.columns], t.primary_key)
                       for t in (self.tables.source, *self.tables.source_parts)}
            changes = [change for k in differ
                       for change in entity_changes(columns, source_rows.get(k, []), local_rows.get(k, []))]
        return differ, sum(1 for k in keys if k not in mine), changes

    def refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Bring the source's current rows of entities held here: objects first, then in one local transaction
        each table's rows are updated in place (rows that reference them stay valid), new part rows inserted and
        part rows the source dropped deleted. The outbound state does not change."""
        with objects_lock(self.local, self.tables.local_schema) if self.objects.columns else contextlib.nullcontext():
            if self.objects.columns:
                report.objects += self._bring(key_condition(self.tables.source, keys))
                checkpoint("copy_objects")
            where = key_condition(self.tables.source, keys)
            with self.local.transaction(f"refreshing {self.name}"):
                for table in (self.tables.source, *self.tables.source_parts):
                    self._refresh_table(table, where)
            report.refreshed += len(keys)

    def _refresh_table(self, table: TableInfo, where: bytes) -> None:
        target = name(self.tables.local_schema, table.name)
        columns = ", ".join(name(c.name) for c in table.columns)
        self.local.execute(f"CREATE TEMPORARY TABLE djshare_refresh (LIKE {target}) ON COMMIT DROP")
        bulk.between(self.source, self._select(table, where), self.local, "djshare_refresh",
                     [c.name for c in table.columns], f"copying rows into {target}")
        keys = key_names(table)
        if table is not self.tables.source:  # part rows the source no longer has
            self.local.execute(f"DELETE FROM {target} WHERE ".encode() + where
                               + f" AND ({keys}) NOT IN (SELECT {keys} FROM djshare_refresh)".encode(),
                               doing=f"deleting dropped rows of {target}")
        self.local.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM djshare_refresh"
                           + POSTGRESQL.upsert([c.name for c in table.columns], table.primary_key),
                           doing=f"refreshing {target}")
        self.local.execute("DROP TABLE djshare_refresh")

    def _select(self, table: TableInfo, where: bytes) -> bytes:
        """The source rows of `table` matching `where`, references rewritten for the local side."""
        selected = ", ".join(self._selected(table, c) for c in table.columns)
        return f"SELECT {selected} FROM {name(table.schema, table.name)} WHERE ".encode() + where

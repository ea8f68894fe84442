"""The local side of a link from a DataJoint 2.x schema on PostgreSQL into MariaDB (`MariaDBCopy`), in DataJoint
0.14's layout or 2.x's: the source's rows converted in type only (uuid to 16 bytes, json to text, bool to 0/1,
an in-store reference to its object's MD5), one local transaction per batch; objects first (0.14 external objects:
read, checked against their MD5 and size, written to `{schema}/{ab}/{cd}/{hex}`, journaled), their `~external`
rows with the batch's rows. Keys are typed values read from the source per batch and compared with MariaDB's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from djshare.backends.mariadb import Session, quote_name, translated
from djshare.backends.mariadb_rows import MARIADB, exact_named
from djshare.backends.postgresql import PgSession, key_condition, name
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.formats.heading import Attribute, Heading
from djshare.formats.values import compared_on_mariadb, key_on_mariadb, to_mariadb
from djshare.link.journal import declare_journal, objects_lock, record
from djshare.link.keymap import TypedSide
from djshare.link.pull import PullReport
from djshare.link.tables import Checkpoint, LinkTables
from djshare.stores.copying import CopyJob, copy_checked, full_path, read_head
from djshare.stores.formats.dj014 import ExternalRow, external_table, relative_path
from djshare.stores.formats.dj2 import Reference, attachment_name, attachment_prefix, digest_of
from djshare.stores.objects import open_store
from djshare.stores.spec import StoreSpec


class MariaDBCopy(TypedSide):
    """The local side: the source's rows copied into MariaDB tables (0.14's or 2.x's layout)."""

    source_sql, local_sql = POSTGRESQL, MARIADB

    def __init__(self, source: PgSession, local: Session, tables: LinkTables, declared: tuple[Heading, ...],
                 specs: Mapping[str, tuple[StoreSpec, StoreSpec]] | None = None) -> None:
        super().__init__(source, local, tables, declared)
        self.local = local
        self.specs = specs or {}  # local store -> (source spec, local spec)

    def _key(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(key_on_mariadb(t, v) for t, v in zip(self.declared[0].key, values, strict=True))

    def _source_param(self, column: Attribute, value: Any) -> Any:
        return uuid.UUID(bytes=value) if column.kind == "uuid" else value

    def _compared_source(self, column: Attribute, value: Any) -> Any:
        return compared_on_mariadb(column, to_mariadb(column, value))

    def _compared_local(self, column: Attribute, value: Any) -> Any:
        return compared_on_mariadb(column, value)

    def _local_select(self, column: Attribute) -> str:
        return exact_named(column.name, column.sql_type)

    def refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Bring the source's current rows of entities held here: objects first, then in one local transaction
        rows updated in place (rows that reference them stay valid), new part rows inserted and part rows the
        source dropped deleted. The outbound state does not change."""
        where = key_condition(self.tables.source, keys)
        with self._objects_lock():
            external = self._objects(where, report, checkpoint)
            self._refresh_rows(keys, where, external)
        report.refreshed += len(keys)

    def _refresh_rows(self, keys: list[bytes], where: bytes, external: Mapping[str, list[ExternalRow]]) -> None:
        with self.local.transaction(f"refreshing {self.name}") as local:
            self._track(local, external)
            for table in self.declared:
                rows = self._source_rows(table, where)
                if table is not self.declared[0]:
                    self._drop_parts(local, table, rows, keys)
                if rows:
                    self._insert(local, table, rows, MARIADB.upsert([c.name for c in table.columns],
                                                                    table.source.primary_key))

    def _drop_parts(self, local: Session, table: Heading, rows: list[list[Any]], keys: list[bytes]) -> None:
        """Delete the part rows of these entities that the source no longer has."""
        master = self.declared[0]
        positions = [i for i, c in enumerate(table.columns) if c.name in table.source.primary_key]
        wanted = {tuple(key_on_mariadb(table.columns[i], row[i]) for i in positions) for row in rows}
        typed = list(self._source_keys(key_condition(self.tables.source, keys)))
        if not typed:
            return
        part_key = [table.columns[i] for i in positions]
        names = ", ".join(quote_name(c.name) for c in part_key)
        master_names = ", ".join(quote_name(c.name) for c in master.key)
        row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
        present = local.rows(f"SELECT {names} FROM {table.full_name} WHERE ({master_names}) IN "
                             f"({', '.join([row] * len(typed))})", [v for key in typed for v in key])
        for found in present:
            if tuple(key_on_mariadb(c, v) for c, v in zip(part_key, found, strict=True)) not in wanted:
                local.execute(f"DELETE FROM {table.full_name} WHERE " + " AND ".join(
                    f"{quote_name(c.name)} <=> %s" for c in part_key), list(found),
                    doing=f"deleting a dropped row of {table.full_name}")

    def _source_rows(self, table: Heading, where: bytes) -> list[list[Any]]:
        source = table.source
        columns = ", ".join(name(c.name) for c in source.columns)
        return [[to_mariadb(t, v) for t, v in zip(table.columns, row, strict=True)]
                for row in self.source.rows(f"SELECT {columns} FROM {name(source.schema, source.name)} WHERE "
                                            .encode() + where, doing=f"reading {source.schema}.{source.name}")]

    def _insert(self, local: Session, table: Heading, rows: list[list[Any]], suffix: str = "") -> None:
        names = ", ".join(quote_name(c.name) for c in table.columns)
        values = ", ".join(["%s"] * len(table.columns))
        with translated(local.address, f"inserting into {table.full_name}"), local.connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table.full_name} ({names}) VALUES ({values}){suffix}", rows)

    def _track(self, local: Session, external: Mapping[str, list[ExternalRow]]) -> None:
        for store, objects in external.items():
            local.execute(MARIADB.insert_new(external_table(self.tables.local_schema, store), "(`hash`, `size`, "
                                             f"`attachment_name`) VALUES {', '.join(['(%s, %s, %s)'] * len(objects))}"),
                          [v for row in objects for v in (row.hash, row.size, row.attachment_name)],
                          doing=f"recording objects in ~external_{store}")

    def _objects_lock(self) -> contextlib.AbstractContextManager[None]:
        """Object copies and gc of the local schema one at a time (when the link has objects)."""
        return objects_lock(self.local, self.tables.local_schema) if self.specs else contextlib.nullcontext()

    def _objects(self, where: bytes, report: PullReport, checkpoint: Checkpoint) -> dict[str, list[ExternalRow]]:
        """The batch's objects copied (when the link has any); their `~external` rows, by store."""
        if not self.specs:
            return {}
        external = self._bring(where)
        report.objects += sum(len(rows) for rows in external.values())
        checkpoint("copy_objects")
        return external

    def _bring(self, where: bytes) -> dict[str, list[ExternalRow]]:
        """Copy the objects the batch references that the local `~external` tables do not have yet, converted
        (an attachment loses its `name + NUL` prefix, which becomes its attachment_name) and checked against the
        MD5 their references name; returns the `~external` rows to insert with the batch's rows, by store."""
        found: dict[str, dict[bytes, tuple[Reference, str]]] = {}
        for table, source in ((t, t.source) for t in self.declared):
            for target in (c for c in table.columns if c.kind == "ref"):
                column = name(target.name)
                for (value,) in self.source.rows(
                        f"SELECT DISTINCT {column}::text FROM {name(source.schema, source.name)} WHERE {column} IS NOT "
                        "NULL AND ".encode() + where, doing=f"reading references in {source.schema}.{source.name}"):
                    reference = Reference.parse(value)
                    found.setdefault(target.store, {})[digest_of(reference.hash)] = (reference, target.codec)
        rows: dict[str, list[ExternalRow]] = {}
        jobs: dict[CopyJob, ExternalRow] = {}
        for store, wanted in found.items():
            tracking = external_table(self.tables.local_schema, store)
            hashes = list(wanted)
            have = {bytes(h) for (h,) in self.local.rows(
                f"SELECT `hash` FROM {tracking} WHERE `hash` IN ({', '.join(['%s'] * len(hashes))})", hashes,
                doing=f"reading {tracking}")}
            source_spec, local_spec = self.specs[store]
            origin = open_store(source_spec)  # one client for the attachments' names
            for digest in sorted(set(hashes) - have):
                reference, kind = wanted[digest]
                filename = attachment_name(read_head(source_spec, reference.path, b"\0", store=origin)) \
                    if kind == "attach" else None
                skip = len(attachment_prefix(filename)) if filename is not None else 0
                row = ExternalRow(digest, reference.size - skip, filename, None, None)
                job = CopyJob(source_spec, reference.path, local_spec,
                              str(relative_path(self.tables.local_schema, row, local_spec.subfolding)),
                              reference.size, digest, True, skip=skip)
                jobs[job] = row
                rows.setdefault(store, []).append(row)
        if jobs:
            declare_journal(self.local, self.tables.local_schema)

        copy_checked(list(jobs), journal=lambda absent: record(self.local, self.tables.local_schema, [
            (job.target.name, jobs[job].hash, full_path(job.target, job.target_path)) for job in absent]))
        return rows

    def copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Objects first (converted, checked), then every row of the batch, master and parts, with the batch's
        `~external` rows, in one MariaDB transaction."""
        where = key_condition(self.tables.source, keys)
        with self._objects_lock():
            external = self._objects(where, report, checkpoint)
            self._copy_rows(where, external, report)

    def _copy_rows(self, where: bytes, external: Mapping[str, list[ExternalRow]], report: PullReport) -> None:
        with self.local.transaction(f"inserting into {self.name}") as local:
            self._track(local, external)
            for table in self.declared:
                rows = self._source_rows(table, where)
                if rows:
                    self._insert(local, table, rows)
                if table is self.declared[0]:
                    report.pulled += len(rows)
                else:
                    report.part_rows += len(rows)

"""The local side of a link from a DataJoint 2.x schema on PostgreSQL into MariaDB (`MariaDBCopy`), in DataJoint
0.14's layout or 2.x's: the source's rows converted in type only (uuid to 16 bytes, json to text, bool to 0/1,
an in-store reference to its object's MD5), one local transaction per batch; objects first (0.14 external objects:
read, checked against their MD5 and size, written to `{schema}/{ab}/{cd}/{hex}`, journaled), their `~external`
rows with the batch's rows. Keys are typed values read from the source per batch and compared with MariaDB's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from djshare.backends.mariadb import Session, quote_name, translated
from djshare.backends.postgresql import PgSession, key_condition, key_literal, name
from djshare.formats.heading import Heading
from djshare.formats.values import compared_on_mariadb, key_on_mariadb, to_mariadb
from djshare.link.journal import declare_journal, objects_lock, record
from djshare.link.keymap import local_key_pages, local_keys
from djshare.link.pull import PullReport
from djshare.link.stale import entity_changes
from djshare.link.tables import Checkpoint, LinkTables
from djshare.stores.copying import CopyJob, copy_checked, full_path, read_head
from djshare.stores.formats.dj014 import ExternalRow, external_table, relative_path
from djshare.stores.formats.dj2 import Reference, attachment_name, attachment_prefix, digest_of
from djshare.stores.objects import open_store
from djshare.stores.spec import StoreSpec
from djshare.sync.actions import Action


class MariaDBCopy:
    """The local side: the source's rows copied into MariaDB tables (0.14's or 2.x's layout)."""

    def __init__(self, source: PgSession, local: Session, tables: LinkTables, declared: tuple[Heading, ...],
                 specs: Mapping[str, tuple[StoreSpec, StoreSpec]] | None = None) -> None:
        self.source, self.local, self.tables, self.declared = source, local, tables, declared
        self.specs = specs or {}  # local store -> (source spec, local spec)
        self.name = declared[0].full_name
        self.stranded: list[tuple[Any, ...]] = []

    def _key(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(key_on_mariadb(t, v) for t, v in zip(self.declared[0].key, values, strict=True))

    def _source_keys(self, condition: bytes, args: Sequence[Any] | None = None) -> dict[tuple[Any, ...], bytes]:
        source = self.tables.source
        names = ", ".join(name(c.name) for c in source.key_columns)
        return {self._key(row[1:]): bytes(row[0]) for row in self.source.rows(
            f"SELECT {key_literal(source.key_columns)}, {names} FROM {name(source.schema, source.name)} WHERE "
            .encode() + condition, args, doing=f"reading keys of {source.schema}.{source.name}")}

    def _local_keys(self, typed: Sequence[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        return local_keys(self.local, self.declared[0], typed, quote_name, self._key)

    def present(self, keys: list[bytes]) -> set[bytes]:
        typed = self._source_keys(key_condition(self.tables.source, keys))
        return {typed[k] for k in self._local_keys(list(typed))}

    def count(self) -> int:
        return int(self.local.scalar(f"SELECT COUNT(*) FROM {self.name}"))

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        """Local keys as source literals; keys the source no longer has are collected in `stranded`."""
        master, source = self.declared[0], self.tables.source

        def on_source(typed: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], bytes]:
            row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
            return self._source_keys(
                f"({', '.join(name(c.name) for c in source.key_columns)}) IN ({', '.join([row] * len(typed))})"
                .encode(), [uuid.UUID(bytes=v) if t.kind == "uuid" else v for key in typed
                            for t, v in zip(master.key, key, strict=True)])

        return local_key_pages(self.local, master, size, quote_name, self._key, on_source, self.stranded)

    def entities(self, keys: list[bytes]) -> tuple[dict[bytes, list[Any]], dict[bytes, list[Any]]]:
        """The rows of these entities (master and parts), per source key literal, on the source (converted to the
        local form) and here, for `stale` to compare; an entity not here is absent from the second."""
        source_key = self.tables.source
        where = key_condition(source_key, keys)
        typed = self._source_keys(where)
        theirs: dict[bytes, list[Any]] = {}
        mine: dict[bytes, list[Any]] = {}
        local_keys = ", ".join(quote_name(c.name) for c in self.declared[0].key)
        row = "(" + ", ".join(["%s"] * len(self.declared[0].key)) + ")"
        for table in self.declared:
            source = table.source
            columns = ", ".join(name(c.name) for c in source.columns)
            for found in self.source.rows(f"SELECT {key_literal(source_key.key_columns)}, {columns} FROM "
                                          f"{name(source.schema, source.name)} WHERE ".encode() + where,
                                          doing=f"reading {source.schema}.{source.name}"):
                theirs.setdefault(bytes(found[0]), []).append(
                    (source.name, *(compared_on_mariadb(t, to_mariadb(t, v)) for t, v in zip(table.columns, found[1:],
                                                                                     strict=True))))
            if not typed:
                continue
            selected = ", ".join(f"CAST({quote_name(c.name)} AS DOUBLE)" if c.sql_type == "float" else
                                 quote_name(c.name) for c in table.columns)
            for found in self.local.rows(
                    f"SELECT {local_keys}, {selected} FROM {table.full_name} WHERE ({local_keys}) IN "
                    f"({', '.join([row] * len(typed))})", [v for key in typed for v in key],
                    doing=f"reading {table.full_name}"):
                literal = typed.get(self._key(found[:len(self.declared[0].key)]))
                if literal is not None:
                    mine.setdefault(literal, []).append(
                        (source.name, *(compared_on_mariadb(t, v) for t, v in
                                        zip(table.columns, found[len(self.declared[0].key):], strict=True))))
        return ({k: sorted(v, key=repr) for k, v in theirs.items()},
                {k: sorted(v, key=repr) for k, v in mine.items() if self._has_master(v)})

    def stale_keys(self, keys: list[bytes]) -> tuple[list[bytes], int, list[Action]]:
        """The two servers hold different types, so these entities' rows are read from both and compared in the
        local form (float32 by its bits, json by value, objects by their MD5)."""
        theirs, mine = self.entities(keys)
        differ = [k for k in keys if k in mine and mine[k] != theirs.get(k)]
        columns = {t.source.name: ([c.name for c in t.columns], t.source.primary_key) for t in self.declared}
        return differ, sum(1 for k in keys if k not in mine), [
            change for k in differ for change in entity_changes(columns, theirs.get(k, []), mine[k])]

    def _has_master(self, rows: list[Any]) -> bool:
        return any(r[0] == self.tables.source.name for r in rows)

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
                    names = [c.name for c in table.columns]
                    updates = [n for n in names if n not in table.source.primary_key] or names[:1]
                    self._insert(local, table, rows, " ON DUPLICATE KEY UPDATE " + ", ".join(
                        f"{quote_name(n)} = VALUES({quote_name(n)})" for n in updates))

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
            local.execute(f"INSERT IGNORE INTO {external_table(self.tables.local_schema, store)} (`hash`, `size`, "
                          f"`attachment_name`) VALUES {', '.join(['(%s, %s, %s)'] * len(objects))}",
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

"""gc: delete external objects that djshare copied into local stores and that no local row references, on both
local backends: `gc` for MariaDB local schemas (0.14's `~external_<store>` rows say what is referenced; 2.x in-table
schemas there have no objects), `gc_postgresql` for 2.x schemas on PostgreSQL (JSON references in the rows).

Only objects in the `~djshare_objects` journal are candidates: djshare journals an object only when it
creates it (the local store did not have it). So objects written by DataJoint itself, objects read in
place (`copy_objects=False`), and objects already present because the local store is the same place as
another server's store (same store and schema name: same paths) are never deleted by gc.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends.catalog import table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.postgresql import PgSession, name
from djshare.backends.postgresql import table_names as pg_table_names
from djshare.errors import IntegrityViolation
from djshare.formats.lineage import LINEAGE_TABLE
from djshare.link.journal import JOURNAL, PG_JOURNAL, journal_name, objects_lock, pg_objects_lock
from djshare.link.journal import pg_journal as pg_journal  # noqa: F401 (kept importable here for one release)
from djshare.link.local import SUBSCRIBER_TABLE
from djshare.stores.copying import full_path
from djshare.stores.formats.dj014 import ExternalRow, external_table, object_path
from djshare.stores.formats.dj2 import codec_of, is_covered
from djshare.stores.objects import FileStore, open_store
from djshare.stores.spec import StoreSpec

STALE_TEMPORARY = 3600  # seconds: a temporary file untouched this long belongs to a write that was killed


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)  # object paths (would be) deleted
    dry_run: bool = False
    temporaries: list[str] = field(default_factory=list)  # temporary files of killed writes (would be) removed


def _unreferenced(local: Session, schema: str, store: str) -> list[tuple[bytes, str]]:
    references = local.rows(
        "SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage "
        "WHERE referenced_table_schema = %s AND referenced_table_name = %s",
        (schema, f"~external_{store}"),
    )
    conditions = "".join(
        f" AND NOT EXISTS (SELECT 1 FROM {quote_name(str(s), str(t))} WHERE `{c}` = j.`hash`)" for s, t, c in references
    )
    rows = local.rows(f"SELECT j.`hash`, j.`path` FROM {journal_name(schema)} AS j WHERE j.`store` = %s{conditions}",
                      (store,))
    return [(bytes(h), str(p)) for h, p in rows]


def _used_elsewhere(local: Session, schema: str, spec: StoreSpec, stores: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Object paths in `spec`'s place that the `~external` rows of the server's *other* schemas name: filepath
    objects have no schema in their path, so another local schema (linked or plain DataJoint) that uses the same
    store place may reference the very file this schema's pull wrote."""
    found: set[str] = set()
    for other, table in local.rows("SELECT table_schema, table_name FROM information_schema.tables WHERE "
                                   "table_name LIKE '~external\\_%%' AND table_schema <> %s", (schema,)):
        name = str(table).removeprefix("~external_")
        if name not in stores:
            continue  # a store this side has no settings for: another place, or one it cannot reach anyway
        theirs = StoreSpec.from_config(name, stores, "local")
        if not theirs.same_place(spec):
            continue
        rows = local.rows(f"SELECT `hash`, `size`, `attachment_name`, `filepath`, `contents_hash` FROM "
                          f"{quote_name(str(other), str(table))}", doing=f"reading `{other}`.`{table}`")
        found |= {object_path(theirs, str(other), ExternalRow(bytes(h), int(s), a, f, c)) for h, s, a, f, c in rows}
    return found


def gc(local: Session, schema: str, stores: Mapping[str, Mapping[str, Any]], dry_run: bool = False) -> GcReport:
    """Delete journaled objects of local schema `schema` that no row references, with their `~external` rows.
    An object that a row of another schema on this server names (same store place, same path) is kept, and leaves
    the journal: it is no longer this schema's alone."""
    report = GcReport(dry_run=dry_run)
    if JOURNAL not in table_names(local, schema):
        return report
    with objects_lock(local, schema):
        for (store,) in local.rows(f"SELECT DISTINCT `store` FROM {journal_name(schema)} ORDER BY 1"):
            spec = StoreSpec.from_config(str(store), stores, "local")
            objects = open_store(spec)
            if isinstance(objects, FileStore):  # writes killed part way leave temporaries next to their objects
                folders = {str(Path(str(p)).parent) for (p,) in local.rows(
                    f"SELECT `path` FROM {journal_name(schema)} WHERE `store` = %s", (store,))}
                stale = objects.stale_temporaries(folders, STALE_TEMPORARY)
                report.temporaries += stale
                for path in stale if not dry_run else []:
                    objects.delete(path)
            unreferenced = _unreferenced(local, schema, str(store))
            shared = _used_elsewhere(local, schema, spec, stores) if unreferenced else set()
            for digest, path in unreferenced:
                if path in shared:
                    if not dry_run:
                        local.execute(f"DELETE FROM {journal_name(schema)} WHERE `store` = %s AND `hash` = %s",
                                      (store, digest))
                    continue
                report.deleted.append(path)
                if dry_run:
                    continue
                try:
                    with local.transaction(f"gc of {path}"):
                        # the rows first: a referenced object is refused by the foreign key, and nothing happens
                        if f"~external_{store}" in table_names(local, schema):
                            local.execute(f"DELETE FROM {external_table(schema, str(store))} WHERE `hash` = %s",
                                          (digest,))
                        local.execute(f"DELETE FROM {journal_name(schema)} WHERE `store` = %s AND `hash` = %s",
                                      (store, digest))
                        objects.delete(path)  # inside the transaction: if this fails, the rows stay
                except IntegrityViolation:
                    report.deleted.remove(path)
    return report


def _pg_references(local: PgSession, schema: str) -> dict[str, set[str]]:
    """Store -> the object paths that rows of `schema` name (every in-store column, any codec)."""
    referenced: dict[str, set[str]] = {}
    for table in sorted(pg_table_names(local, schema) - {PG_JOURNAL, SUBSCRIBER_TABLE, LINEAGE_TABLE}):
        for found in postgres.read_table(local, schema, table).columns:
            codec = codec_of(found.comment)
            if codec is None or codec[1] is None or found.data_type not in ("json", "jsonb"):
                continue
            column = name(found.name)
            for store, path in local.rows(
                    f"SELECT DISTINCT {column}::jsonb ->> 'store', {column}::jsonb ->> 'path' FROM "
                    f"{name(schema, table)} WHERE {column} IS NOT NULL"):
                referenced.setdefault(str(store), set()).add(str(path))
    return referenced


def _pg_used_elsewhere(local: PgSession, schema: str, store: str, stores: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Object paths in `store`'s place that rows of the database's *other* schemas name: a `<filepath@>` path has
    no schema in it, so another schema (linked, or DataJoint's own) using the same place may reference the very
    file this schema's pull wrote."""
    spec = StoreSpec.from_config(store, stores, "local")
    found: set[str] = set()
    for (other,) in local.rows(
            "SELECT DISTINCT table_schema FROM information_schema.columns WHERE data_type IN ('json', 'jsonb') "
            "AND table_schema <> %s AND table_schema NOT IN ('pg_catalog', 'information_schema')", (schema,)):
        for theirs, paths in _pg_references(local, str(other)).items():
            if theirs in stores and StoreSpec.from_config(theirs, stores, "local").same_place(spec):
                found |= paths
    return found


def gc_postgresql(local: PgSession, schema: str, stores: Mapping[str, Mapping[str, Any]], dry_run: bool = False
                  ) -> GcReport:
    """Delete objects djshare wrote into the stores of local 2.x schema `schema` on PostgreSQL that no row of it
    references any more (never objects djshare did not write): the journal names them by store and path, and the
    rows' JSON references say which paths are used. An object that a row of another schema in the database names
    (same store place, same path) is kept, and leaves the journal: it is no longer this schema's alone."""
    report = GcReport(dry_run=dry_run)
    with pg_objects_lock(local, schema):
        if PG_JOURNAL not in pg_table_names(local, schema):
            return report
        referenced = _pg_references(local, schema)
        elsewhere: dict[str, set[str]] = {}
        journaled = {(str(s), str(p)) for s, p in local.rows(
            f"SELECT store, path FROM {name(schema, PG_JOURNAL)}")}
        for store, path in sorted(journaled):
            if is_covered(path, referenced.get(store, set())):
                continue
            if store not in elsewhere:
                elsewhere[store] = _pg_used_elsewhere(local, schema, store, stores)
            shared = is_covered(path, elsewhere[store])  # kept, and no longer this schema's alone
            if not shared:
                report.deleted.append(f"{store}:{path}")
            if not dry_run:
                if not shared:
                    spec = StoreSpec.from_config(store, stores, "local")
                    open_store(spec).delete(full_path(spec, path))
                local.execute(f"DELETE FROM {name(schema, PG_JOURNAL)} WHERE store = %s AND path = %s",
                              (store, path))
    return report

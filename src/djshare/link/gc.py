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
from djshare.backends.catalog import referencing_columns, table_names, tables_named
from djshare.backends.mariadb import Session
from djshare.backends.postgresql import PgSession, json_references, schemas_with_json
from djshare.backends.postgresql import table_names as pg_table_names
from djshare.errors import IntegrityViolation
from djshare.formats.lineage import LINEAGE_TABLE
from djshare.link.journal import (
    JOURNAL,
    PG_JOURNAL,
    forget_object,
    journaled_paths,
    journaled_stores,
    objects_lock,
    pg_entries,
    pg_forget,
    pg_objects_lock,
    unreferenced,
)
from djshare.link.journal import pg_journal as pg_journal  # noqa: F401 (kept importable here for one release)
from djshare.link.local import SUBSCRIBER_TABLE
from djshare.stores.copying import full_path
from djshare.stores.formats.dj014 import external_rows, external_table, object_path
from djshare.stores.formats.dj2 import codec_of, is_covered
from djshare.stores.objects import FileStore, open_store
from djshare.stores.spec import StoreSpec

STALE_TEMPORARY = 3600  # seconds: a temporary file untouched this long belongs to a write that was killed


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)  # object paths (would be) deleted
    dry_run: bool = False
    temporaries: list[str] = field(default_factory=list)  # temporary files of killed writes (would be) removed


def _used_elsewhere(local: Session, schema: str, spec: StoreSpec, stores: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Object paths in `spec`'s place that the `~external` rows of the server's *other* schemas name: filepath
    objects have no schema in their path, so another local schema (linked or plain DataJoint) that uses the same
    store place may reference the very file this schema's pull wrote."""
    found: set[str] = set()
    for other, table in tables_named(local, "~external_", schema):
        name = str(table).removeprefix("~external_")
        if name not in stores:
            continue  # a store this side has no settings for: another place, or one it cannot reach anyway
        theirs = StoreSpec.from_config(name, stores, "local")
        if not theirs.same_place(spec):
            continue
        found |= {object_path(theirs, other, row) for row in external_rows(local, other, table)}
    return found


def gc(local: Session, schema: str, stores: Mapping[str, Mapping[str, Any]], dry_run: bool = False) -> GcReport:
    """Delete journaled objects of local schema `schema` that no row references, with their `~external` rows.
    An object that a row of another schema on this server names (same store place, same path) is kept, and leaves
    the journal: it is no longer this schema's alone."""
    report = GcReport(dry_run=dry_run)
    if JOURNAL not in table_names(local, schema):
        return report
    with objects_lock(local, schema):
        for store in journaled_stores(local, schema):
            spec = StoreSpec.from_config(store, stores, "local")
            objects = open_store(spec)
            if isinstance(objects, FileStore):  # writes killed part way leave temporaries next to their objects
                folders = {str(Path(p).parent) for p in journaled_paths(local, schema, store)}
                stale = objects.stale_temporaries(folders, STALE_TEMPORARY)
                report.temporaries += stale
                for path in stale if not dry_run else []:
                    objects.delete(path)
            found = unreferenced(local, schema, store, referencing_columns(local, schema, f"~external_{store}"))
            shared = _used_elsewhere(local, schema, spec, stores) if found else set()
            for digest, path in found:
                if path in shared:
                    if not dry_run:
                        forget_object(local, schema, store, digest)
                    continue
                report.deleted.append(path)
                if dry_run:
                    continue
                try:
                    with local.transaction(f"gc of {path}"):
                        # the rows first: a referenced object is refused by the foreign key, and nothing happens
                        if f"~external_{store}" in table_names(local, schema):
                            local.execute(f"DELETE FROM {external_table(schema, store)} WHERE `hash` = %s",
                                          (digest,))
                        forget_object(local, schema, store, digest)
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
            for store, path in json_references(local, schema, table, found.name):
                referenced.setdefault(store, set()).add(path)
    return referenced


def _pg_used_elsewhere(local: PgSession, schema: str, store: str, stores: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Object paths in `store`'s place that rows of the database's *other* schemas name: a `<filepath@>` path has
    no schema in it, so another schema (linked, or DataJoint's own) using the same place may reference the very
    file this schema's pull wrote."""
    spec = StoreSpec.from_config(store, stores, "local")
    found: set[str] = set()
    for other in schemas_with_json(local, schema):
        for theirs, paths in _pg_references(local, other).items():
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
        journaled = pg_entries(local, schema)
        if not journaled:
            return report
        referenced = _pg_references(local, schema)
        elsewhere: dict[str, set[str]] = {}
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
                pg_forget(local, schema, store, path)
    return report

"""gc: delete external objects that djshare copied into local stores and that no local row references.

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

from djshare.backends.catalog import table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.errors import IntegrityViolation
from djshare.link.lock import objects_lock
from djshare.link.objects import JOURNAL, journal_name
from djshare.stores.formats.dj014 import ExternalRow, external_table, object_path
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

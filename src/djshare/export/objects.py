"""External objects in bundles: the objects referenced by the exported `~external_<store>` rows are kept in
the bundle as `objects/<store>/<path below the store's location>`, each checked (size, MD5) on the way in
and on the way out; restore puts them into the target server's stores after the rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from djshare.backends.mariadb import Session, quote_name
from djshare.stores.formats.dj014 import ExternalRow, copy_checked, object_path, relative_path, store_of_table
from djshare.stores.objects import FileStore, ObjectStore, open_store
from djshare.stores.spec import DEFAULT_SUBFOLDING, StoreSpec

WORKERS = 8


def external_rows(session: Session, schema: str, table: str, where: str = "") -> list[ExternalRow]:
    rows = session.rows(f"SELECT `hash`, `size`, `attachment_name`, `filepath`, `contents_hash` FROM "
                        f"{quote_name(schema, table)}" + (f" WHERE {where}" if where else ""))
    return [ExternalRow(bytes(r[0]), int(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4])) for r in rows]


def _bundle_path(folder: Path, store: str, schema: str, row: ExternalRow) -> str:
    """The bundle's own layout: the store's relative path with DataJoint's default subfolding, whatever the
    subfolding of the stores it came from or goes to."""
    return str(folder / "objects" / store / relative_path(schema, row, DEFAULT_SUBFOLDING))


def save(session: Session, folder: Path, tables: Iterable[tuple[str, str, str]],
         stores: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Copy the objects of the selected `~external` rows ((schema, table, condition) triples) into `folder`;
    returns the number of objects per store."""
    counts: dict[str, int] = {}
    jobs = []
    inside = FileStore(StoreSpec("bundle", "file", str(folder / "objects")))
    for schema, table, condition in tables:
        store = store_of_table(table)
        if store is None:
            continue
        spec = StoreSpec.from_config(store, stores, "exporting")
        source = open_store(spec)
        for row in external_rows(session, schema, table, condition):
            jobs.append((source, object_path(spec, schema, row), inside, _bundle_path(folder, store, schema, row), row))
            counts[store] = counts.get(store, 0) + 1
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda job: copy_checked(*job), jobs))
    if jobs:
        inside.flush()
    return counts


def transfer(source_session: Session, tables: Iterable[tuple[str, str, str]], source: Mapping[str, Mapping[str, Any]],
             target: Mapping[str, Mapping[str, Any]]) -> int:
    """Copy the objects of the selected `~external` rows from the exporting side's stores straight into the
    target side's stores (same schema names on both sides)."""
    jobs = []
    for schema, table, condition in tables:
        store = store_of_table(table)
        if store is None:
            continue
        from_spec = StoreSpec.from_config(store, source, "exporting")
        to_spec = StoreSpec.from_config(store, target, "target")
        origin, destination = open_store(from_spec), open_store(to_spec)
        for row in external_rows(source_session, schema, table, condition):
            jobs.append((origin, object_path(from_spec, schema, row), destination, object_path(to_spec, schema, row),
                         row))
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda job: copy_checked(*job), jobs))
    for written in {id(job[2]): job[2] for job in jobs}.values():
        written.flush()
    return len(jobs)


def put(session: Session, folder: Path, tables: Iterable[tuple[str, str]],
        stores: Mapping[str, Mapping[str, Any]]) -> int:
    """Write the bundle's objects of the restored `~external` tables into the target's stores."""
    jobs = []
    inside = FileStore(StoreSpec("bundle", "file", str(folder / "objects")))
    targets: dict[str, ObjectStore] = {}
    for schema, table in tables:
        store = store_of_table(table)
        if store is None:
            continue
        spec = StoreSpec.from_config(store, stores, "target")
        target = targets.setdefault(store, open_store(spec))
        for row in external_rows(session, schema, table):
            jobs.append((inside, _bundle_path(folder, store, schema, row), target, object_path(spec, schema, row), row))
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda job: copy_checked(*job), jobs))
    for target in targets.values():
        target.flush()
    return len(jobs)


def missing(session: Session, tables: Iterable[tuple[str, str]], stores: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Objects that restored `~external` rows reference but the target's stores lack."""
    absent = []
    for schema, table in tables:
        store = store_of_table(table)
        if store is None:
            continue
        spec = StoreSpec.from_config(store, stores, "target")
        target = open_store(spec)
        paths = [object_path(spec, schema, row) for row in external_rows(session, schema, table)]
        with ThreadPoolExecutor(WORKERS) as pool:
            absent += [p for p, there in zip(paths, pool.map(target.exists, paths), strict=True) if not there]
    return absent

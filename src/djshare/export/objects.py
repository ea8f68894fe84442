"""External objects in bundles: the objects referenced by the exported `~external_<store>` rows are kept in
the bundle as `objects/<store>/<path below the store's location>`, each checked (size, MD5) on the way in
and on the way out; restore puts them into the target server's stores after the rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from djshare.backends.mariadb import Session
from djshare.errors import DjshareError
from djshare.stores.copying import CopyJob, copy_checked
from djshare.stores.formats.dj014 import (
    ExternalRow,
    copy_job,
    external_rows,
    object_path,
    relative_path,
    store_of_table,
)
from djshare.stores.objects import open_store
from djshare.stores.spec import DEFAULT_SUBFOLDING, StoreSpec

WORKERS = 8


def _bundle(folder: Path) -> StoreSpec:
    """The bundle's objects folder, as a store."""
    return StoreSpec("bundle", "file", str(folder / "objects"))


def _in_bundle(store: str, schema: str, row: ExternalRow) -> str:
    """The bundle's own layout below its objects folder: the store, then the store's relative path with DataJoint's
    default subfolding, whatever the subfolding of the stores it came from or goes to."""
    return f"{store}/{relative_path(schema, row, DEFAULT_SUBFOLDING)}"


def _as_it_is(job: CopyJob, error: DjshareError) -> DjshareError:
    return error


def save(session: Session, folder: Path, tables: Iterable[tuple[str, str, str]],
         stores: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Copy the objects of the selected `~external` rows ((schema, table, condition) triples) into `folder`;
    returns the number of objects per store."""
    counts: dict[str, int] = {}
    jobs = []
    inside = _bundle(folder)
    for schema, table, condition in tables:
        store = store_of_table(table)
        if store is None:
            continue
        spec = StoreSpec.from_config(store, stores, "exporting")
        for row in external_rows(session, schema, table, condition):
            job = copy_job(row, spec, schema, inside, schema)
            jobs.append(replace(job, target_path=_in_bundle(store, schema, row)))
            counts[store] = counts.get(store, 0) + 1
    copy_checked(jobs, WORKERS, explain=_as_it_is)
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
        jobs += [copy_job(row, from_spec, schema, to_spec, schema)
                 for row in external_rows(source_session, schema, table, condition)]
    copy_checked(jobs, WORKERS, explain=_as_it_is)
    return len(jobs)


def put(session: Session, folder: Path, tables: Iterable[tuple[str, str]],
        stores: Mapping[str, Mapping[str, Any]]) -> int:
    """Write the bundle's objects of the restored `~external` tables into the target's stores."""
    jobs = []
    inside = _bundle(folder)
    for schema, table in tables:
        store = store_of_table(table)
        if store is None:
            continue
        spec = StoreSpec.from_config(store, stores, "target")
        jobs += [replace(copy_job(row, inside, schema, spec, schema), path=_in_bundle(store, schema, row))
                 for row in external_rows(session, schema, table)]
    copy_checked(jobs, WORKERS, explain=_as_it_is)
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

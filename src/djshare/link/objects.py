"""External objects of a pull (DataJoint 0.14 format): find the objects a batch references, and put each
into the local store before any local row references it.

Order, per batch: (1) see which objects the local store lacks; (2) journal them in the local
`~djshare_objects` table (so `gc` can remove them if the batch never commits); (3) copy them, several at
a time, each read into a bounded buffer and checked (size, MD5) before it is written. The caller then
inserts the `~external` rows and the entity rows in one local transaction. A crash anywhere leaves at
most journaled objects that no row references: `djshare gc` removes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import key_condition
from djshare.errors import DjshareError, IntegrityViolation
from djshare.link.journal import JOURNAL, declare_journal, forget, journal_name, record  # noqa: F401 (JOURNAL, declare_journal, journal_name: importable here for one release)
from djshare.link.tables import LinkTables, StorePair
from djshare.stores.copying import copy_checked
from djshare.stores.formats.dj014 import ExternalRow, copy_job, external_table, mismatch, object_path
from djshare.stores.objects import MissingObjectError, ObjectStore, Spooled, open_store

WORKERS = 8


def hex_list(hashes: Sequence[bytes]) -> bytes:
    return b",".join(b"X'" + h.hex().encode() + b"'" for h in hashes) or b"NULL"


def referenced(source: Session, tables: LinkTables, keys: Sequence[bytes]) -> dict[str, list[ExternalRow]]:
    """Per source store, the `~external` rows that the batch's master and part rows reference."""
    by_store: dict[str, list[bytes]] = {}
    for column in tables.stores.columns:
        by_store.setdefault(column.store, [])
    result: dict[str, list[ExternalRow]] = {}
    schema = tables.source.schema
    for store in by_store:
        selects = [
            f"SELECT `{c.column}` FROM {quote_name(schema, c.table)} WHERE `{c.column}` IS NOT NULL AND ".encode()
            + key_condition(tables.source, keys)
            for c in tables.stores.columns if c.store == store
        ]
        rows = source.rows(
            f"SELECT `hash`, `size`, `attachment_name`, `filepath`, `contents_hash` FROM "
            f"{external_table(schema, store)} WHERE `hash` IN (".encode() + b" UNION ".join(selects) + b")",
            doing=f"reading {external_table(schema, store)}",
        )
        result[store] = [ExternalRow(bytes(r[0]), int(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4]))
                         for r in rows]
    return result


@dataclass(frozen=True)
class _Job:
    row: ExternalRow
    pair: StorePair
    source_path: str
    local_path: str


def entity_of(source: Session, tables: LinkTables, store: str, digest: bytes) -> str:
    """The first source entity that references `digest` (for error messages)."""
    names = ", ".join(f"`{k}`" for k in tables.source.primary_key)
    for column in tables.stores.columns:
        if column.store == store:
            found = source.rows(
                f"SELECT {names} FROM {quote_name(tables.source.schema, column.table)} "
                f"WHERE `{column.column}` = X'{digest.hex()}' LIMIT 1"
            )
            if found:
                return f"{tables.source.full_name} entity " + ", ".join(
                    f"{k}={v!r}" for k, v in zip(tables.source.primary_key, found[0], strict=True))
    return f"an entity of {tables.source.full_name}"


def bring(source: Session, local: Session, tables: LinkTables, refs: dict[str, list[ExternalRow]],
          workers: int = WORKERS) -> int:
    """Make every referenced object available to the local side; returns how many objects were copied.

    Raises before any row is inserted if an object is missing, unreadable or does not match its hash.
    """
    jobs = [
        _Job(row, tables.stores.pairs[store], object_path(tables.stores.pairs[store].source, tables.source.schema, row),
             object_path(tables.stores.pairs[store].local, tables.local_schema, row))
        for store, rows in refs.items() for row in rows
    ]
    if not jobs:
        return 0
    stores: dict[str, ObjectStore] = {}

    def store_of(spec_key: str, make: Callable[[], ObjectStore]) -> ObjectStore:
        if spec_key not in stores:
            stores[spec_key] = make()
        return stores[spec_key]

    def src(job: _Job) -> ObjectStore:
        return store_of("s:" + job.pair.source.name, lambda: open_store(job.pair.source))

    def dst(job: _Job) -> ObjectStore:
        return store_of("l:" + job.pair.local.name, lambda: open_store(job.pair.local))

    for job in jobs:  # open clients once, before the threads share them
        src(job), dst(job)

    def explain(job: _Job, error: DjshareError) -> DjshareError:
        entity = entity_of(source, tables, job.pair.source.name, job.row.hash)
        return type(error)(f"{error} It belongs to {entity}. Nothing was inserted for this batch; the source and "
                           "its outbound rows are as they were (re-run pull after fixing the store).")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        if not tables.stores.copy_objects:
            for job, found in zip(jobs, pool.map(lambda j: src(j).exists(j.source_path), jobs), strict=True):
                if not found:
                    raise explain(job, MissingObjectError(
                        f"{job.source_path} is missing from {job.pair.source.label}."))
            return 0
        known = _known_locally(local, tables, jobs)
        already = list(pool.map(lambda j: j.row.hash in known or (_probe(j) and dst(j).exists(j.local_path)), jobs))
        for job, there in zip(jobs, already, strict=True):
            if there and job.row.kind == "filepath":
                _check_existing(dst(job), job)
    missing = {(j.pair.local.name, j.local_path): j for j, there in zip(jobs, already, strict=True) if not there}
    copies = {copy_job(j.row, j.pair.source, tables.source.schema, j.pair.local, tables.local_schema): j
              for j in missing.values()}

    return copy_checked(
        list(copies), workers, check_targets=False,
        journal=lambda absent: record(local, tables.local_schema, [
            (copies[c].pair.local.name, copies[c].row.hash, copies[c].local_path) for c in absent]),
        unjournal=lambda failed: forget(local, tables.local_schema, [
            (copies[c].pair.local.name, copies[c].local_path) for c in failed]),
        explain=lambda c, error: explain(copies[c], error))


def _probe(job: _Job) -> bool:
    """Whether to ask the local store if it already has the object. A file store answers cheaply; an S3 store
    is asked only where it is the same place as the source store (then paths coincide and the object is
    the source's, not ours to journal). Elsewhere the local `~external` table answers (`_known_locally`)."""
    return job.pair.local.protocol == "file" or job.pair.local.same_place(job.pair.source)


def _known_locally(local: Session, tables: LinkTables, jobs: list[_Job]) -> set[bytes]:
    """Hashes that already have a local `~external` row: their objects are in the local store."""
    known: set[bytes] = set()
    for store in {j.pair.local.name for j in jobs}:
        hashes = [j.row.hash for j in jobs if j.pair.local.name == store]
        known |= {bytes(r[0]) for r in local.rows(
            f"SELECT `hash` FROM {external_table(tables.local_schema, store)} WHERE `hash` IN (".encode()
            + hex_list(hashes) + b")", doing=f"reading {external_table(tables.local_schema, store)}")}
    return known


def _check_existing(store: ObjectStore, job: _Job) -> None:
    data = Spooled(store.read(job.local_path))
    try:
        problem = mismatch(job.row, data)
    finally:
        data.close()
    if problem:
        raise IntegrityViolation(
            f"A different file is already at {job.local_path} in {job.pair.local.label} ({problem}); "
            "move it away or map the source store to another local store."
        )

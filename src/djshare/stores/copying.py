"""The one checked copy of objects from one store to another, in parallel, before any row references them: every
link kind and every export copies through `copy_checked`.

Each object is read into a bounded buffer and checked before it is written: against the size and MD5 its record
names (a 2.x reference, a 0.14 `~external` row, a bundle's manifest), where they are known. A job may transform the
bytes on the way, as the DataJoint lines store attachments differently: `prefix` is written (and checked) before
the object's bytes (a 0.14 attachment becoming a 2.x one, `name + NUL + contents`), `skip` drops leading bytes after
the check (a 2.x attachment becoming a 0.14 one), `salt` is hashed first but neither written nor counted (0.14's
attachment hash is the MD5 of `name + NUL + contents`). Between S3 stores of one endpoint an untransformed object is
copied by the server, verified by its ETag where that is its MD5, else by reading the source.

A content-addressed target that has the object already keeps it (the path is the content). Path-addressed objects
(`<object@>`, `<npy@>`, `<filepath@>`, 0.14's `filepath@`) carry no content hash: a copy is checked by the size the
reference gives (when it gives one), and a target path that exists already must hold the same bytes as the source
(else IntegrityViolation: another file was there). A folder-valued `<object@>` is its files, listed in the source
store, plus DataJoint's `{path}.manifest.json` beside it; their sizes must add up to the reference's size and their
number to its `item_count`.

Journal before write: `journal` is called with the jobs whose targets are absent before any is written (so gc knows
djshare wrote them), and `unjournal` with those of failed jobs that were never written.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from djshare.errors import DjshareError, IntegrityViolation
from djshare.stores.objects import ObjectStore, S3Store, Spooled, open_store
from djshare.stores.spec import StoreSpec

WORKERS = 8
MANIFEST_SUFFIX = ".manifest.json"  # DataJoint 2.x writes one beside each folder-valued object


@dataclass(frozen=True)
class CopyJob:
    """One object: `path` below the source store's location, `target_path` below the target's."""

    source: StoreSpec
    path: str
    target: StoreSpec
    target_path: str
    size: int | None = None  # the size of prefix + the object's bytes its record gives, when it gives one
    md5: bytes | None = None  # the MD5 of salt + prefix + bytes, when known (hash-addressed: the one its name holds)
    content_addressed: bool = False  # the path names the contents: a target that has it keeps it unread
    prefix: bytes = b""  # written and checked before the object's bytes
    skip: int = 0  # leading bytes (of prefix + bytes) checked but not written
    salt: bytes = b""  # hashed before the bytes, neither written nor counted
    record: str = "its reference"  # what names size and MD5, for messages

    @property
    def transformed(self) -> bool:
        """Whether the target's bytes or their hash differ from the source object's own."""
        return bool(self.prefix or self.skip or self.salt)


def full_path(spec: StoreSpec, path: str) -> str:
    """`path` below the store's location, as the store's read/write calls take it."""
    base = spec.location.lstrip("/") if spec.protocol == "s3" else spec.location
    return f"{base.rstrip('/')}/{path}" if base else path


class Stores:
    """One open store per (side, store name), shared by the jobs of a batch."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], ObjectStore] = {}

    def _get(self, side: str, spec: StoreSpec) -> ObjectStore:
        if (side, spec.name) not in self._open:
            self._open[(side, spec.name)] = open_store(spec)
        return self._open[(side, spec.name)]

    def source(self, spec: StoreSpec) -> ObjectStore:
        return self._get("source", spec)

    def target(self, spec: StoreSpec) -> ObjectStore:
        return self._get("target", spec)

    def flush_targets(self) -> None:
        for (side, _), store in self._open.items():
            if side == "target":
                store.flush()


def folder_jobs(job: CopyJob, item_count: int | None, stores: Stores | None = None) -> list[CopyJob]:
    """The jobs of a folder-valued object: each file below `job.path` in the source store, and its manifest.
    Raises IntegrityViolation when the files do not add up to the reference's size or item count."""
    origin = (stores or Stores()).source(job.source)
    files = origin.files(full_path(job.source, job.path))
    total = sum(files.values())
    if (job.size is not None and total != job.size) or (item_count is not None and len(files) != item_count):
        raise IntegrityViolation(
            f"Folder {job.path} in {job.source.label} holds {len(files)} files of {total} bytes, where its reference "
            f"says {item_count} files of {job.size} bytes.")
    jobs = [CopyJob(job.source, f"{job.path}/{relative}", job.target, f"{job.target_path}/{relative}", size)
            for relative, size in sorted(files.items())]
    if origin.exists(full_path(job.source, job.path + MANIFEST_SUFFIX)):
        jobs.append(CopyJob(job.source, job.path + MANIFEST_SUFFIX, job.target, job.target_path + MANIFEST_SUFFIX))
    return jobs


def _same_bytes(origin: ObjectStore, source_path: str, target: ObjectStore, target_path: str) -> bool:
    first, second = Spooled(origin.read(source_path)), Spooled(target.read(target_path))
    try:
        return (first.size, first.md5.digest()) == (second.size, second.md5.digest())
    finally:
        first.close()
        second.close()


def _checked(job: CopyJob, origin: ObjectStore) -> Spooled:
    """The job's bytes (prefix + the source object), read into a bounded buffer and checked; IntegrityViolation
    when they are not what the record names."""
    data = Spooled(itertools.chain([job.prefix], origin.read(full_path(job.source, job.path))), job.salt)
    if (job.size is not None and data.size != job.size) or (job.md5 is not None and data.md5.digest() != job.md5):
        data.close()
        expected = (f"{job.size} bytes" if job.size is not None else "") + (
            (" and " if job.size is not None else "") + f"MD5 {job.md5.hex()}" if job.md5 is not None else "")
        raise IntegrityViolation(f"Object {full_path(job.source, job.path)} in {job.source.label} has {data.size} "
                                 f"bytes and MD5 {data.md5.hexdigest()}, where {job.record} says {expected}.")
    return data


def _verified_by_server(job: CopyJob, origin: ObjectStore, target: ObjectStore) -> bool:
    """Copy an untransformed object between S3 stores of one endpoint by the server; True once it is verified
    (ETag = MD5). Otherwise the source is read and checked, and a wrong copy removed (IntegrityViolation)."""
    if job.transformed or not (isinstance(target, S3Store) and target.can_copy_from(origin)):
        return False
    assert isinstance(origin, S3Store)
    etag = target.copy_from(origin, full_path(job.source, job.path), full_path(job.target, job.target_path))
    if job.md5 is not None and etag == job.md5.hex():
        return True
    try:
        _checked(job, origin).close()
    except IntegrityViolation:
        target.delete(full_path(job.target, job.target_path))
        raise
    return True


def _write(job: CopyJob, stores: Stores) -> None:
    origin, target = stores.source(job.source), stores.target(job.target)
    if _verified_by_server(job, origin, target):
        return
    data = _checked(job, origin)
    try:
        data.buffer.seek(job.skip)
        target.write(full_path(job.target, job.target_path), data.buffer, data.size - job.skip)
    finally:
        data.close()


def _present(job: CopyJob, stores: Stores) -> bool:
    """Whether the target holds the object already: a content-addressed one by its path, another only with the
    same bytes as the source (IntegrityViolation where another file is there)."""
    origin, target = stores.source(job.source), stores.target(job.target)
    source_path, target_path = full_path(job.source, job.path), full_path(job.target, job.target_path)
    if not target.exists(target_path):
        return False
    if job.content_addressed or _same_bytes(origin, source_path, target, target_path):
        return True
    raise IntegrityViolation(
        f"{target_path} in {job.target.label} exists with other contents than {source_path} in "
        f"{job.source.label}. Move the file there away (or link into another store).")


def _absent(store: ObjectStore, path: str) -> bool:
    """Whether `path` is surely not in `store` (False where the store cannot be asked)."""
    try:
        return not store.exists(path)
    except DjshareError:
        return False


def _retry_hint(job: CopyJob, error: DjshareError) -> DjshareError:
    return type(error)(f"{error} Nothing was inserted for this batch; re-run after fixing the store.")


def copy_checked(jobs: Sequence[CopyJob], workers: int = WORKERS, *, check_targets: bool = True,
                 journal: Callable[[list[CopyJob]], None] | None = None,
                 unjournal: Callable[[list[CopyJob]], None] | None = None,
                 explain: Callable[[CopyJob, DjshareError], DjshareError] = _retry_hint) -> int:
    """Copy every job's object (checked as the module says) unless the target has it already
    (`check_targets=False`: the caller knows every target is absent). Returns how many were written; raises the
    first problem (missing object, wrong contents, refused credentials), as `explain` words it, after the others
    finished and before any row references them."""
    jobs = list({(job.target.name, job.target_path): job for job in jobs}.values())  # one write per target path
    if not jobs:
        return 0
    stores = Stores()
    for job in jobs:  # opened before the threads start
        stores.source(job.source), stores.target(job.target)

    def guarded(step: Callable[[CopyJob, Stores], object]) -> Callable[[CopyJob], object]:
        def run(job: CopyJob) -> object:
            try:
                return step(job, stores)
            except DjshareError as error:
                return error
        return run

    with ThreadPoolExecutor(max_workers=workers) as pool:
        present = list(pool.map(guarded(_present), jobs)) if check_targets else [False] * len(jobs)
        for job, found in zip(jobs, present, strict=True):
            if isinstance(found, DjshareError):
                raise explain(job, found)
        absent = [job for job, found in zip(jobs, present, strict=True) if found is False]
        if journal is not None and absent:
            journal(absent)
        results = list(pool.map(guarded(_write), absent))
    failures = [(job, r) for job, r in zip(absent, results, strict=True) if isinstance(r, DjshareError)]
    if failures:
        if unjournal is not None:
            with contextlib.suppress(DjshareError):
                unjournal([job for job, _ in failures if _absent(stores.target(job.target),
                                                                   full_path(job.target, job.target_path))])
        job, error = failures[0]
        raise explain(job, error)
    stores.flush_targets()
    return len(absent)


def read_head(spec: StoreSpec, path: str, until: bytes, limit: int = 4096, store: ObjectStore | None = None) -> bytes:
    """The first bytes of the object at `path` (below the store's location), up to and including `until`'s first
    occurrence or `limit` bytes, read without reading the rest (a 2.x attachment's `name + NUL`). `store`: the
    spec's store, already open (one client for many reads)."""
    chunks = (store or open_store(spec)).read(full_path(spec, path))
    head = b""
    try:
        for chunk in chunks:
            head += chunk
            if until in head or len(head) >= limit:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator: its store's stream ends here
    found = head.find(until)
    return head[:found + len(until)] if found >= 0 else head[:limit]

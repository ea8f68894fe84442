"""Checked copies of DataJoint 2.x objects from one store to another, in parallel, before any row references them.

Hash-addressed objects (`_hash/...`) are checked against the MD5 and size their reference names; a target that
has the object already keeps it (the path is the content). Other objects are checked by their MD5 where it is
known (a bundle records it). Path-addressed objects (`<object@>`, `<npy@>`,
`<filepath@>`) carry no content hash: a copy is checked by the size the reference gives (when it gives one), and
a target path that exists already must hold the same bytes as the source (else IntegrityViolation: another
file was there). A folder-valued `<object@>` is its files, listed in the source store, plus DataJoint's
`{path}.manifest.json` beside it; their sizes must add up to the reference's size and their number to its
`item_count`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from djshare.errors import DjshareError, IntegrityViolation
from djshare.stores.objects import ObjectStore, Spooled, open_store
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
    size: int | None = None  # the size the reference gives, when it gives one
    md5: bytes | None = None  # the MD5 of its contents, when known (hash-addressed: the one its name is made of)
    content_addressed: bool = False  # the path names the contents: a target that has it keeps it unread


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


def _copy(job: CopyJob, stores: Stores) -> bool:
    origin, target = stores.source(job.source), stores.target(job.target)
    source_path, target_path = full_path(job.source, job.path), full_path(job.target, job.target_path)
    if target.exists(target_path):
        if job.content_addressed or _same_bytes(origin, source_path, target, target_path):
            return False
        raise IntegrityViolation(
            f"{job.target_path} in {job.target.label} exists with other contents than {job.path} in "
            f"{job.source.label}. Move the file there away (or link into another store).")
    data = Spooled(origin.read(source_path))
    try:
        if (job.size is not None and data.size != job.size) or (job.md5 is not None and data.md5.digest() != job.md5):
            expected = f"{job.size} bytes" + (f" and MD5 {job.md5.hex()}" if job.md5 is not None else "")
            raise IntegrityViolation(f"Object {job.path} in {job.source.label} has {data.size} bytes and MD5 "
                                     f"{data.md5.hexdigest()}, where its reference says {expected}.")
        target.write(target_path, data.buffer, data.size)
    finally:
        data.close()
    return True


def copy_checked(jobs: Sequence[CopyJob], workers: int = WORKERS) -> int:
    """Copy every job's object (checked as the module says) unless the target has it already. Returns how many
    were written; raises the first problem (missing object, wrong contents, refused credentials) after the
    others finished, before any row references them."""
    jobs = list({(job.target.name, job.target_path): job for job in jobs}.values())  # one write per target path
    stores = Stores()
    for job in jobs:  # opened before the threads start
        stores.source(job.source), stores.target(job.target)

    def run(job: CopyJob) -> DjshareError | bool:
        try:
            return _copy(job, stores)
        except DjshareError as error:
            return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, jobs))
    for result in results:
        if isinstance(result, DjshareError):
            raise type(result)(f"{result} Nothing was inserted for this batch; re-run after fixing the store.")
    stores.flush_targets()
    return sum(1 for r in results if r is True)

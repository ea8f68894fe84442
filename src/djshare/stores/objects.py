"""Object stores (a directory, or an S3 bucket) as byte containers: read, write atomically, check, delete.

Copies between stores go through a spooled temporary buffer (memory up to SPOOL bytes, then disk), so
memory stays bounded whatever the object size, and the bytes are verified before they are written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Protocol

from djshare.errors import AuthenticationError, DjshareError, ServerUnreachableError
from djshare.stores.spec import StoreSpec

CHUNK = 1 << 20
TEMPORARY = ".djshare-"  # prefix of the temporary file a write goes through in a file store
SPOOL = 8 << 20


class MissingObjectError(DjshareError):
    """An object that a row references is not in its store."""


class ObjectStore(Protocol):
    spec: StoreSpec

    def read(self, path: str) -> Iterator[bytes]: ...  # chunks; MissingObjectError if absent

    def write(self, path: str, data: IO[bytes], size: int) -> None: ...  # all or nothing

    def flush(self) -> None: ...  # make every completed write durable

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None: ...  # absent is fine

    def files(self, folder: str) -> dict[str, int]: ...  # the files below `folder`: relative path -> size


class FileStore:
    def __init__(self, spec: StoreSpec) -> None:
        self.spec = spec
        self._folders: set[Path] = set()  # folders known to exist (saves a mkdir per object)

    def read(self, path: str) -> Iterator[bytes]:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, generator
        except FileNotFoundError:
            raise MissingObjectError(f"{path} is missing from {self.spec.label}.") from None
        except PermissionError as error:
            raise AuthenticationError(f"No permission to read {path} in {self.spec.label}: {error}.") from None
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def write(self, path: str, data: IO[bytes], size: int) -> None:
        target = Path(path)
        try:
            if target.parent not in self._folders:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(target.parent)
            descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=TEMPORARY)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    shutil.copyfileobj(data, handle, CHUNK)
                os.replace(temporary, target)  # readers see the old file or the new one, never half
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except PermissionError as error:
            raise AuthenticationError(f"No permission to write {path} in {self.spec.label}: {error}.") from None

    def stale_temporaries(self, folders: Iterable[str], older_than: float) -> list[str]:
        """Temporary files of writes that never finished (a killed process) in `folders`, untouched for
        `older_than` seconds."""
        limit = time.time() - older_than
        found = []
        for folder in {Path(f) for f in folders}:
            with contextlib.suppress(OSError):
                found += [str(p) for p in folder.glob(TEMPORARY + "*") if p.is_file() and p.stat().st_mtime < limit]
        return sorted(found)

    def flush(self) -> None:
        """One sync for a whole batch of writes (much cheaper than an fsync per object), before any row
        that references them is committed."""
        os.sync()

    def exists(self, path: str) -> bool:
        return Path(path).is_file()

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()

    def files(self, folder: str) -> dict[str, int]:
        root = Path(folder)
        if not root.is_dir():
            raise MissingObjectError(f"Folder {folder} is missing from {self.spec.label}.")
        return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


class S3Store:
    def __init__(self, spec: StoreSpec) -> None:
        import boto3  # imported where an S3 store is used: not to start every command
        import botocore.config
        import botocore.exceptions

        self.failures = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        self.client_error = botocore.exceptions.ClientError
        self.unreachable = botocore.exceptions.EndpointConnectionError
        self.spec = spec
        scheme = "https" if spec.secure else "http"
        endpoint = spec.endpoint if "://" in spec.endpoint else f"{scheme}://{spec.endpoint}"
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=spec.access_key, aws_secret_access_key=spec.secret_key,
            region_name="us-east-1",
            config=botocore.config.Config(retries={"max_attempts": 3}, connect_timeout=10, read_timeout=60),
        )

    def _fail(self, error: Exception, path: str, doing: str) -> DjshareError:
        if isinstance(error, self.unreachable):
            return ServerUnreachableError(f"Cannot reach the S3 endpoint of {self.spec.label} while {doing}.")
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return MissingObjectError(f"{path} is missing from {self.spec.label}.")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return AuthenticationError(
                f"{self.spec.label} refused the credentials while {doing} ({code}): check access_key and "
                "secret_key in the store settings."
            )
        if code in ("NoSuchBucket",):
            return DjshareError(f"Bucket {self.spec.bucket!r} of {self.spec.label} does not exist.")
        return DjshareError(f"{self.spec.label} failed while {doing} {path}: {error}.")

    def read(self, path: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.spec.bucket, Key=path)["Body"]
        except self.failures as error:
            raise self._fail(error, path, "reading") from None
        with contextlib.closing(body):
            yield from body.iter_chunks(CHUNK)

    def write(self, path: str, data: IO[bytes], size: int) -> None:
        try:  # a single PUT is atomic: readers see the old object or the new one
            self.client.put_object(Bucket=self.spec.bucket, Key=path, Body=data, ContentLength=size)
        except self.failures as error:
            raise self._fail(error, path, "writing") from None

    def flush(self) -> None:
        return None  # a completed PUT is durable

    def exists(self, path: str) -> bool:
        try:
            self.client.head_object(Bucket=self.spec.bucket, Key=path)
            return True
        except self.client_error as error:
            failure = self._fail(error, path, "checking")
            if isinstance(failure, MissingObjectError):
                return False
            raise failure from None
        except self.failures as error:
            raise self._fail(error, path, "checking") from None

    def can_copy_from(self, other: ObjectStore) -> bool:
        """Whether a server-side copy from `other` works: same endpoint, same credentials."""
        return isinstance(other, S3Store) and (other.spec.endpoint, other.spec.access_key, other.spec.secret_key) == (
            self.spec.endpoint, self.spec.access_key, self.spec.secret_key)

    def copy_from(self, other: S3Store, source_path: str, path: str) -> str:
        """Server-side copy; returns the new object's ETag (the MD5 of its bytes for single-part objects)."""
        try:
            result = self.client.copy_object(Bucket=self.spec.bucket, Key=path,
                                              CopySource={"Bucket": other.spec.bucket, "Key": source_path})
        except self.failures as error:
            raise other._fail(error, source_path, "copying") from None
        return str(result["CopyObjectResult"]["ETag"]).strip('"')

    def files(self, folder: str) -> dict[str, int]:
        found: dict[str, int] = {}
        prefix = folder.rstrip("/") + "/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.spec.bucket, Prefix=prefix):
                found.update({item["Key"][len(prefix):]: int(item["Size"]) for item in page.get("Contents", [])})
        except self.failures as error:
            raise self._fail(error, folder, "listing") from None
        if not found:
            raise MissingObjectError(f"Folder {folder} is missing from {self.spec.label}.")
        return found

    def delete(self, path: str) -> None:
        try:
            self.client.delete_object(Bucket=self.spec.bucket, Key=path)
        except self.failures as error:
            raise self._fail(error, path, "deleting") from None


def open_store(spec: StoreSpec) -> ObjectStore:
    return FileStore(spec) if spec.protocol == "file" else S3Store(spec)


class Spooled:
    """Bytes read from a store into a bounded buffer (memory up to SPOOL bytes, then a temporary file),
    with their size and the MD5 of `salt` + bytes."""

    def __init__(self, chunks: Iterator[bytes], salt: bytes = b"") -> None:
        self.buffer: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 - closed by close()
        self.md5 = hashlib.md5(salt)
        self.size = 0
        for chunk in chunks:
            self.buffer.write(chunk)
            self.md5.update(chunk)
            self.size += len(chunk)
        self.buffer.seek(0)

    def close(self) -> None:
        self.buffer.close()

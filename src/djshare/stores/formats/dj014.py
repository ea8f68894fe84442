"""DataJoint 0.14 external storage: `blob@store`, `attach@store`, `filepath@store` columns hold a
binary(16) hash referencing `~external_<store>` in the same schema; the object lives at

    blob      {location}/{schema}/{h[0:2]}/{h[2:4]}/{hex}            hash = MD5(serialized blob)
    attach    {location}/{schema}/{h[0:2]}/{h[2:4]}/{hex}.{name}     hash = MD5(name + NUL + contents)
    filepath  {location}/{relative path}                             hash = MD5(relative path);
                                                                      contents_hash = MD5(contents) or NULL
(subfolding (2, 2) by default; S3 keys have no leading slash).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from djshare.backends.catalog import Column
from djshare.backends.mariadb import Session, quote_name
from djshare.stores.copying import CopyJob
from djshare.stores.objects import Spooled
from djshare.stores.spec import StoreSpec

EXTERNAL = re.compile(r"^:(?P<kind>blob|attach|filepath)@(?P<store>[a-z][\-\w]*):(?P<comment>.*)$", re.DOTALL)


@dataclass(frozen=True)
class ExternalColumn:
    table: str  # table name (in its schema)
    column: str
    kind: str  # blob, attach, filepath
    store: str  # store name on the source side


def external_column(table: str, column: Column) -> ExternalColumn | None:
    found = EXTERNAL.match(column.comment)
    return ExternalColumn(table, column.name, found["kind"], found["store"]) if found else None


def external_table(schema: str, store: str) -> str:
    return quote_name(schema, f"~external_{store}")


@dataclass(frozen=True)
class ExternalRow:
    """One row of `~external_<store>`."""

    hash: bytes
    size: int
    attachment_name: str | None
    filepath: str | None
    contents_hash: bytes | None

    @property
    def kind(self) -> str:
        if self.filepath is not None:
            return "filepath"
        return "attach" if self.attachment_name is not None else "blob"

    @property
    def hex(self) -> str:
        return uuid.UUID(bytes=self.hash).hex


def _subfold(name: str, folds: tuple[int, ...]) -> list[str]:
    parts, rest = [], name
    for fold in folds:
        parts.append(rest[:fold].lower())
        rest = rest[fold:]
    return parts


def relative_path(schema: str, row: ExternalRow, subfolding: tuple[int, ...]) -> PurePosixPath:
    """Where `row`'s object is below a store's location."""
    if row.filepath is not None:
        return PurePosixPath(row.filepath)
    name = row.hex + (f".{row.attachment_name}" if row.attachment_name is not None else "")
    return PurePosixPath(schema, *_subfold(row.hex, subfolding), name)


EXTERNAL_PREFIX = "~external_"


def store_of_table(table: str) -> str | None:
    """The store an `~external_<store>` table tracks (None for other tables)."""
    return table[len(EXTERNAL_PREFIX):] if table.startswith(EXTERNAL_PREFIX) else None


def external_rows(session: Session, schema: str, table: str, where: str = "") -> list[ExternalRow]:
    """The rows of `~external` table `table` in `schema` (`where`: an SQL condition, or "" for all)."""
    rows = session.rows(f"SELECT `hash`, `size`, `attachment_name`, `filepath`, `contents_hash` FROM "
                        f"{quote_name(schema, table)}" + (f" WHERE {where}" if where else ""),
                        doing=f"reading `{schema}`.`{table}`")
    return [ExternalRow(bytes(r[0]), int(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4])) for r in rows]


def object_path(spec: StoreSpec, schema: str, row: ExternalRow) -> str:
    """Where `row`'s object is in `spec`'s store, for a table in `schema`."""
    relative = relative_path(schema, row, spec.subfolding)
    if spec.protocol == "s3":
        return str(PurePosixPath(spec.location.lstrip("/"), relative)).lstrip("/")
    return str(PurePosixPath(spec.location, relative))


def salt(row: ExternalRow) -> bytes:
    return (row.attachment_name + "\0").encode() if row.attachment_name is not None and row.kind == "attach" else b""


def mismatch(row: ExternalRow, data: Spooled) -> str:
    """Why `data` is not the object `row` describes ("" when it is)."""
    if data.size != row.size:
        return f"{data.size} bytes where its ~external row says {row.size}"
    if row.kind == "filepath":  # the hash is of the path; the contents have their own (or none)
        if row.contents_hash is not None and data.md5.digest() != row.contents_hash:
            return f"contents MD5 {data.md5.hexdigest()} where its ~external row says " \
                   f"{uuid.UUID(bytes=row.contents_hash).hex}"
        return ""
    if data.md5.digest() != row.hash:
        return f"MD5 {data.md5.hexdigest()} where its ~external row says {row.hex}"
    return ""


def copy_job(row: ExternalRow, source: StoreSpec, source_schema: str, target: StoreSpec, target_schema: str
             ) -> CopyJob:
    """The checked copy (`stores.copying`) of `row`'s object from `source` (its tables in `source_schema`) to
    `target` (in `target_schema`): size and MD5 as the `~external` row names them (an attachment's MD5 salted with
    its name, a filepath's its contents hash where recorded); blobs and attachments are content-addressed."""
    return CopyJob(source, str(relative_path(source_schema, row, source.subfolding)), target,
                   str(relative_path(target_schema, row, target.subfolding)), row.size,
                   row.contents_hash if row.kind == "filepath" else row.hash,
                   content_addressed=row.kind != "filepath", salt=salt(row), record="its ~external row")

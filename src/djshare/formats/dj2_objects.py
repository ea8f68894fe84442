"""The objects of a DataJoint 2.x table's in-store columns: which columns hold references (by codec), and the
checked copies one reference needs to reach another store and schema (hash-addressed: `_hash/{schema}/{hash}`;
schema-addressed: the store's `schema_prefix`, the schema, the table; filepaths keep their path). Used by the
links and the exports of 2.x schemas on PostgreSQL. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from djshare.backends.catalog import Column, TableInfo
from djshare.errors import ConfigurationError
from djshare.stores.copying import CopyJob, folder_jobs
from djshare.stores.formats.dj2 import (
    HASHED_CODECS,
    PATH_CODECS,
    SCHEMA_CODECS,
    Reference,
    codec_of,
    digest_of,
    hash_path,
    relocated,
    schema_path_rule,
)
from djshare.stores.spec import StoreSpec


@dataclass(frozen=True)
class ObjectColumn:
    """A column holding references to objects in a store."""

    table: TableInfo
    column: Column
    codec: str  # blob, attach, hash (hash-addressed); object, npy, filepath (path-addressed)
    store: str  # the source store
    local_store: str


def object_columns(tables: Sequence[TableInfo], store_map: Mapping[str, str]) -> list[ObjectColumn]:
    """The in-store codec columns of `tables` (`store_map`: source store -> local store)."""
    found = []
    for table in tables:
        for column in table.columns:
            codec = codec_of(column.comment)
            if codec is None or codec[1] is None:
                continue
            kind, store = codec
            if kind not in HASHED_CODECS | PATH_CODECS:
                raise ConfigurationError(
                    f"Column `{column.name}` of {table.schema}.{table.name} is <{kind}@{store}>, a codec djshare "
                    f"does not know (it knows {', '.join(sorted(HASHED_CODECS | PATH_CODECS))}). Nothing was changed.")
            found.append(ObjectColumn(table, column, kind, store or "", store_map.get(store or "", store or "")))
    return found


def object_jobs(column: ObjectColumn, value: str, source: StoreSpec, target: StoreSpec,
                local_schema: str | None) -> list[CopyJob]:
    """The copies that bring one reference's object from `source` to `target`: into `local_schema`'s paths
    (hash-addressed: `_hash/{local schema}/{hash}`; schema-addressed: the target's `schema_prefix` and the local
    schema), or with `local_schema` None to the same path; filepaths keep theirs. A folder goes as its files."""
    reference: dict[str, Any] = json.loads(value)
    path = str(reference.get("path", ""))
    if column.codec in HASHED_CODECS:
        hashed = Reference.parse(reference)
        target_path = path if local_schema is None else hash_path(local_schema, hashed.hash)
        return [CopyJob(source, path, target, target_path, hashed.size, digest_of(hashed.hash), True)]
    target_path = path
    if column.codec in SCHEMA_CODECS and local_schema is not None:
        rule = schema_path_rule(source.schema_prefix, column.table.schema, target.schema_prefix, local_schema)
        moved = relocated(path, rule)
        if moved is None:
            raise ConfigurationError(
                f"<{column.codec}@{column.store}> path {path!r} in {column.table.schema}.{column.table.name} does "
                f"not follow the store's layout ({source.schema_prefix}/{column.table.schema}/...): set "
                "`schema_prefix` of the source store as the source lab's DataJoint has it. Nothing was changed.")
        target_path = moved
    size = reference.get("size")
    job = CopyJob(source, path, target, target_path, None if size is None else int(size))
    return folder_jobs(job, reference.get("item_count")) if reference.get("is_dir") else [job]

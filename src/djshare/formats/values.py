"""How values move between the sides of a link whose backends or formats differ, per attribute kind
(`Attribute.kind`, set by `formats.convert`): a source value as the local column takes it, and the one form in
which a source value and a local one are compared (stale checks and typed keys). Pure: values in, values out.

- MariaDB (0.14 or 2.x) into PostgreSQL: `to_postgresql`, `compared_on_postgresql`.
- PostgreSQL (2.x) into MariaDB: `to_mariadb`, `key_on_mariadb`, `compared_on_mariadb`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from djshare.backends.mariadb_rows import float32
from djshare.formats.heading import Attribute
from djshare.stores.formats.dj2 import digest_of


def to_postgresql(target: Attribute, value: Any, refs: Mapping[tuple[str, bytes], str]) -> Any:
    """A value of a source on MariaDB as the local PostgreSQL column takes it (`refs`: (local store, 0.14 hash)
    -> the 2.x JSON reference of the copied object)."""
    if value is None:
        return None
    if target.kind == "uuid":
        return uuid.UUID(bytes=bytes(value))
    if target.kind == "ref":
        return refs[(target.store, bytes(value))]
    if target.kind == "char":
        return value.rstrip(" ")
    return value


def compared_on_postgresql(target: Attribute, value: Any, local: bool = False) -> Any:
    """A MariaDB source value (`local`: a local PostgreSQL one) in the one form stale compares: objects by their
    MD5."""
    if value is None:
        return None
    if target.kind == "ref":
        return digest_of(str((json.loads(value) if isinstance(value, str) else value)["hash"])) if local \
            else bytes(value)
    if target.kind == "uuid":
        return value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=bytes(value))
    if target.sql_type == "real":
        return float32(float(value))
    if target.label == "json" or target.sql_type == "jsonb":
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value.rstrip(" ") if isinstance(value, str) else value


def to_mariadb(target: Attribute, value: Any) -> Any:
    """A value of a 2.x source on PostgreSQL as the local MariaDB column takes it."""
    if value is None:
        return None
    if target.kind == "uuid":
        return value.bytes if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).bytes
    if target.kind == "json":
        return json.dumps(value)
    if target.kind == "bool":
        return int(value)
    if target.kind == "ref":
        return digest_of(str((json.loads(value) if isinstance(value, str) else value)["hash"]))
    return value


def key_on_mariadb(target: Attribute, value: Any) -> Any:
    """A key value read from either side (PostgreSQL source, MariaDB local), in one form."""
    if value is None:
        return None
    if target.kind == "uuid":
        return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else uuid.UUID(str(value)).bytes
    if isinstance(value, str):
        return value.rstrip(" ")  # CHAR: MariaDB drops trailing spaces, PostgreSQL pads
    return value


def compared_on_mariadb(target: Attribute, value: Any) -> Any:
    """A value as `stale` compares it: the local form of a source value and a local value alike."""
    if value is None:
        return None
    if target.kind == "json":
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    if target.sql_type == "float":
        return float32(float(value))
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value.rstrip(" ") if isinstance(value, str) else value

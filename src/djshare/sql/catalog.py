"""Moved to `djshare.backends` (issue 14, step 1); this module re-exports its names for one release."""

from __future__ import annotations

from djshare.backends.catalog import (
    BINARY_TYPES,
    INTEGER_TYPES,
    TIER_PREFIXES,
    Column,
    ForeignKey,
    TableInfo,
    _foreign_keys,
    find_table,
    foreign_keys_to,
    foreign_keys_up,
    part_names,
    read_table,
    schema_exists,
    table_names,
    to_camel_case,
    to_snake_case,
)

__all__ = [
    "BINARY_TYPES",
    "TIER_PREFIXES",
    "Column",
    "TableInfo",
    "schema_exists",
    "table_names",
    "read_table",
    "to_snake_case",
    "to_camel_case",
    "find_table",
    "part_names",
    "ForeignKey",
    "foreign_keys_to",
    "foreign_keys_up",
    "_foreign_keys",
    "INTEGER_TYPES",
    "foreign_keys_up",
]

"""Moved to `djshare.backends` (issue 14, step 1); this module re-exports its names for one release."""

from __future__ import annotations

from djshare.backends.mariadb_rows import (
    STATEMENT_CAP,
    TEXT_TYPES,
    column_list,
    copy_rows,
    float32,
    key_bound,
    key_condition,
    literal,
    literal_expression,
    present_keys,
    row_literal,
    split_literal,
    statement_limit,
    statements,
)

__all__ = [
    "TEXT_TYPES",
    "STATEMENT_CAP",
    "literal",
    "literal_expression",
    "row_literal",
    "column_list",
    "key_condition",
    "present_keys",
    "split_literal",
    "key_bound",
    "statement_limit",
    "statements",
    "copy_rows",
    "float32",
]

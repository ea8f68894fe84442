"""Moved to `djshare.backends` (issue 14, step 1); this module re-exports its names for one release."""

from __future__ import annotations

from djshare.backends.postgresql import (
    DEFAULT_PORT,
    TEXT,
    TEXT_OIDS,
    TYPES,
    PgSession,
    _psycopg,
    _timed_connection,
    foreign_keys,
    read_table,
    session,
    translate,
)

__all__ = [
    "DEFAULT_PORT",
    "TYPES",
    "TEXT",
    "TEXT_OIDS",
    "_psycopg",
    "translate",
    "_timed_connection",
    "session",
    "read_table",
    "PgSession",
    "foreign_keys",
]

"""Storage formats, one module per DataJoint line: `dj014` (binary(16) hashes and `~external_<store>` tables) and
`dj2` (JSON references, `_hash/` paths, codec comments). Which one a schema uses is read from the schema itself,
not from the installed DataJoint."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

DJ2_COMMENT = re.compile(r"^:(<[^>]*>|u?int(8|16|32|64)|float(32|64)|bool|bytes):")
DJ2_TABLES = frozenset({"~lineage"})


def format_of(tables: Iterable[str], comments: Iterable[str]) -> str:
    """"dj2" if the schema holds tables or column comments only DataJoint 2.x writes, else "dj014"."""
    if DJ2_TABLES & set(tables):
        return "dj2"
    return "dj2" if any(DJ2_COMMENT.match(c or "") for c in comments) else "dj014"


def format_of_schema(session: Any, schema: str) -> str:
    """The format of `schema` on a MariaDB `Session` or PostgreSQL `PgSession`."""
    if getattr(session.address, "backend", "mariadb") == "postgresql":
        tables = [r[0] for r in session.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        comments = [r[0] for r in session.rows(
            "SELECT col_description(format('%%I.%%I', c.table_schema, c.table_name)::regclass, c.ordinal_position) "
            "FROM information_schema.columns c WHERE c.table_schema = %s", (schema,))]
    else:
        tables = [r[0] for r in session.rows(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (schema,))]
        comments = [r[0] for r in session.rows(
            "SELECT COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s", (schema,))]
    return format_of(tables, comments)

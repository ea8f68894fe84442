"""A mysqldump script for an export, in the style of Spyglass's, without its faults:

- tables are created once (`--no-data`), and every row chunk is dumped with `--no-create-info
  --skip-add-drop-table`, so no chunk can drop the rows of an earlier one;
- each chunk's key list is read from a quoted here-document, so the shell expands nothing in it (quotes,
  `$`, backticks, backslashes and parentheses reach mysqldump as they are); chunks stay below the
  kernel's limit for one argument;
- no credential is written: host, port and user come from DJSHARE_HOST, DJSHARE_PORT and DJSHARE_USER,
  the password from MYSQL_PWD or a defaults file (DJSHARE_DEFAULTS_FILE).

Running the script prints SQL on standard output (`bash export.sh > export.sql`); load it with
`mariadb < export.sql`.
"""

from __future__ import annotations

import os
from pathlib import Path

from djshare.errors import DjshareError
from djshare.export.closure import Selection
from djshare.sql.transfer import row_literal

ARGUMENT_BYTES = 100_000  # below Linux's 128 KiB limit for a single argument
HEADER = """#!/usr/bin/env bash
# Export written by djshare. It holds no credential: set DJSHARE_HOST (and DJSHARE_PORT, DJSHARE_USER),
# and give the password in MYSQL_PWD or in a defaults file named by DJSHARE_DEFAULTS_FILE.
# Usage: bash {name} > export.sql && mariadb < export.sql
set -euo pipefail
: "${{DJSHARE_HOST:?set DJSHARE_HOST to the server to dump from}}"
DUMP=$(command -v mariadb-dump || command -v mysqldump)
ARGS=()
if [ -n "${{DJSHARE_DEFAULTS_FILE:-}}" ]; then ARGS+=("--defaults-extra-file=$DJSHARE_DEFAULTS_FILE"); fi
ARGS+=(-h "$DJSHARE_HOST" -P "${{DJSHARE_PORT:-3306}}" -u "${{DJSHARE_USER:-$USER}}" --single-transaction
       --skip-add-drop-table --skip-comments --compact)
"""


def _delimiter(text: str) -> str:
    tag = "DJSHARE_KEYS"
    while tag in text:
        tag += "_"
    return tag


def write(selection: Selection, path: Path) -> int:
    """Write the script; returns the number of mysqldump calls it makes. `path` must not exist."""
    if path.exists():
        raise DjshareError(f"{path} already exists: choose a new file for the script.")
    session = selection.session
    lines = [HEADER.format(name=path.name)]
    calls = 0
    for table in selection.graph.tables:
        info = selection.info[table]
        schema, name = table
        lines.append(f"echo 'CREATE DATABASE IF NOT EXISTS `{schema}`; USE `{schema}`;'")
        lines.append(f'"$DUMP" "${{ARGS[@]}}" --no-data "{schema}" "{name}"')
        calls += 1
        names = ", ".join(f"`{c}`" for c in info.primary_key)
        chunk: list[bytes] = []
        size = 0
        keys = (bytes(r[0]) for r in session.stream(
            f"SELECT {row_literal(info.key_columns)} FROM {info.full_name} WHERE {selection.where(table)} "
            f"ORDER BY {names}"))
        for key in [*keys, None]:
            if key is not None and (not chunk or size + len(key) + 1 < ARGUMENT_BYTES - len(names) - 20):
                chunk.append(key)
                size += len(key) + 1
                continue
            if chunk:
                condition = f"({names}) IN (" + b",".join(chunk).decode("utf8") + ")"
                tag = _delimiter(condition)
                lines += ["read -r -d '' KEYS <<'" + tag + "' || true", condition, tag,
                          f'"$DUMP" "${{ARGS[@]}}" --no-create-info --where="$KEYS" "{schema}" "{name}"']
                calls += 1
            chunk, size = ([key], len(key) + 1) if key is not None else ([], 0)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text("\n".join(lines) + "\n")
    partial.chmod(0o755)
    os.replace(partial, path)
    return calls

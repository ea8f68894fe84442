"""A mysqldump script for an export, in the style of Spyglass's, without its faults:

- tables are created once (`--no-data`), and every row chunk is dumped with `--no-create-info
  --skip-add-drop-table`, so no chunk can drop the rows of an earlier one;
- each chunk's key list is read from a quoted here-document, so the shell expands nothing in it (quotes,
  `$`, backticks, backslashes and parentheses reach mysqldump as they are); chunks stay below the
  kernel's limit for one argument;
- no credential is written: host, port and user come from DJSHARE_HOST, DJSHARE_PORT and DJSHARE_USER,
  the password from MYSQL_PWD or a defaults file (DJSHARE_DEFAULTS_FILE).

Running the script prints SQL on standard output (`bash export.sh > export.sql`); load it with plain
`mariadb < export.sql`, on a server left at its defaults too: the output starts with what mysqldump's own header
sets and `--compact` leaves out (`SET NAMES utf8mb4`, timestamps in UTC), and each schema is created with the
source schema's character set. Values arrive exactly: mysqldump prints FLOAT with 6 significant digits, so the
rows of tables with FLOAT columns are printed instead by the `mariadb` client as INSERT statements whose values the
server formats exactly (FLOAT widened to DOUBLE, as in bundles).

External objects (blobs, attachments, filepaths in file stores) that the exported `~external_<store>` rows
reference are copied, before any dump, into `$DJSHARE_OBJECTS/<store>/<path below the store's location>`
(the store's own layout: put that folder's contents at the target store's location), each checked for size
and MD5 as DataJoint computes them. The store's location is the one configured when the script was written;
`DJSHARE_STORE_<NAME>` overrides it (e.g. where the store is mounted elsewhere). Objects in S3 stores are
refused: use a bundle (`djshare export write`) or a direct copy for those.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import quote_name
from djshare.backends.mariadb_rows import column_list, row_literal
from djshare.errors import ConfigurationError, DjshareError
from djshare.export.closure import Selection
from djshare.export.objects import external_rows
from djshare.stores.formats.dj014 import relative_path, store_of_table
from djshare.stores.spec import StoreSpec

ARGUMENT_BYTES = 100_000  # below Linux's 128 KiB limit for a single argument
HEADER = """#!/usr/bin/env bash
# Export written by djshare. It holds no credential: set DJSHARE_HOST (and DJSHARE_PORT, DJSHARE_USER),
# and give the password in MYSQL_PWD or in a defaults file named by DJSHARE_DEFAULTS_FILE.
# Usage: bash {name} > export.sql && mariadb < export.sql
set -euo pipefail
: "${{DJSHARE_HOST:?set DJSHARE_HOST to the server to dump from}}"
DUMP=$(command -v mariadb-dump || command -v mysqldump)
CLIENT=$(command -v mariadb || command -v mysql)
CONNECT=()
if [ -n "${{DJSHARE_DEFAULTS_FILE:-}}" ]; then CONNECT+=("--defaults-extra-file=$DJSHARE_DEFAULTS_FILE"); fi
CONNECT+=(-h "$DJSHARE_HOST" -P "${{DJSHARE_PORT:-3306}}" --default-character-set=utf8mb4)
if [ -n "${{DJSHARE_USER:-}}" ]; then CONNECT+=(-u "$DJSHARE_USER"); fi
ARGS=("${{CONNECT[@]}}" --single-transaction --skip-add-drop-table --skip-comments --compact --tz-utc)
"""
# What mysqldump's own header would set (--compact leaves it out): utf8mb4, timestamps in UTC, zeros kept. Printed
# after the objects are copied, so a script that stops there prints nothing.
SETTINGS = """
echo "SET NAMES utf8mb4; SET TIME_ZONE='+00:00';"
echo "SET SQL_MODE=CONCAT_WS(',', NULLIF(@@SQL_MODE, ''), 'NO_AUTO_VALUE_ON_ZERO');"
"""
# Rows of tables with FLOAT columns: mysqldump prints FLOAT with 6 significant digits (29999.869140625 becomes
# 29999.9), so for those the server formats each row as exact literals (FLOAT widened to DOUBLE, as in bundles)
# and the client prints them as INSERT statements.
EXACT = '"$CLIENT" "${CONNECT[@]}" --batch --raw --skip-column-names -e "$QUERY"'


OBJECTS = """
# External objects: copied into $DJSHARE_OBJECTS/<store>/<path below the store's location>, each checked.
: "${{DJSHARE_OBJECTS:?set DJSHARE_OBJECTS to a directory for the {count} external objects of this export}}"
copy_objects() {{  # store, location; reads lines: MD5 (or -), size, attach name (or -), path
  local store=$1 location=$2 md5 size name path target got
  while IFS=$'\\t' read -r md5 size name path; do
    target="$DJSHARE_OBJECTS/$store/$path"
    mkdir -p -- "$(dirname -- "$target")"
    cp -- "$location/$path" "$target"
    got=$(stat -c %s -- "$target")
    if [ "$got" != "$size" ]; then echo "djshare: $location/$path has $got bytes, expected $size" >&2; exit 1; fi
    if [ "$md5" = - ]; then continue; fi
    if [ "$name" = - ]; then got=$(md5sum < "$target")
    else got=$({{ printf '%s\\0' "$name"; cat -- "$target"; }} | md5sum); fi
    if [ "${{got%% *}}" != "$md5" ]; then echo "djshare: $location/$path does not match its MD5 $md5" >&2; exit 1; fi
  done
}}
"""


def _objects(selection: Selection, stores: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Script lines that copy and check the external objects the selected `~external` rows reference."""
    lines: list[str] = []
    count = 0
    for schema, table in selection.graph.tables:
        store = store_of_table(table)
        if store is None:
            continue
        spec = StoreSpec.from_config(store, stores, "exporting")
        if spec.protocol != "file":
            raise ConfigurationError(f"Store `{store}` is in S3: the mysqldump script copies objects from file "
                                     "stores only. Write a bundle (`djshare export write`) or copy directly "
                                     "(`djshare export copy`) instead.")
        records = []
        for row in external_rows(selection.session, schema, table, selection.where((schema, table))):
            path = str(relative_path(schema, row, spec.subfolding))
            name = row.attachment_name if row.kind == "attach" else None
            if any(c in path + (name or "") for c in "\t\n\r"):
                raise DjshareError(f"Object path {path!r} of `{schema}`.`{table}` holds a tab or line break, which "
                                   "the script cannot carry: write a bundle instead.")
            checked = row.kind != "filepath" or row.contents_hash is not None
            digest = (row.contents_hash if row.kind == "filepath" else row.hash) or b""
            records.append(f"{digest.hex() if checked else '-'}\t{row.size}\t{name or '-'}\t{path}")
        if records:
            variable = "DJSHARE_STORE_" + re.sub(r"[^A-Za-z0-9]", "_", store).upper()
            tag = _delimiter("\n".join(records))
            lines += [f'copy_objects {shlex.quote(store)} "${{{variable}:-{_quoted(spec.location)}}}" <<\'{tag}\'',
                      *records, tag]
            count += len(records)
    return [OBJECTS.format(count=count), *lines] if lines else []


def _quoted(text: str) -> str:
    """`text` for use inside a double-quoted parameter default: nothing in it is expanded."""
    return re.sub(r'([\\$`"])', r"\\\1", text)


def _delimiter(text: str) -> str:
    tag = "DJSHARE_KEYS"
    while tag in text:
        tag += "_"
    return tag


def _exact_query(info: TableInfo) -> str:
    """SELECT of one exact INSERT statement per row of `info` (to be followed by a WHERE clause)."""
    return (f"SET TIME_ZONE='+00:00'; SELECT CONCAT('INSERT INTO {quote_name(info.name)} "
            f"({column_list(info.columns)}) VALUES ', {row_literal(info.columns)}, ';') FROM {info.full_name}")


def write(selection: Selection, path: Path, stores: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Write the script; returns the number of mysqldump calls it makes. `path` must not exist. `stores`: the
    exporting side's store settings, for the external objects."""
    if path.exists():
        raise DjshareError(f"{path} already exists: choose a new file for the script.")
    session = selection.session
    charsets = {str(s): (str(c), str(o)) for s, c, o in session.rows(
        "SELECT schema_name, default_character_set_name, default_collation_name FROM information_schema.schemata")}
    lines = [HEADER.format(name=path.name), *_objects(selection, stores or {}), SETTINGS]
    calls = 0
    for table in selection.graph.tables:
        info = selection.info[table]
        schema, name = table
        charset, collation = charsets[schema]
        lines.append(f"echo 'CREATE DATABASE IF NOT EXISTS `{schema}` CHARACTER SET {charset} COLLATE {collation}; "
                     f"USE `{schema}`;'")
        lines.append(f'"$DUMP" "${{ARGS[@]}}" --no-data "{schema}" "{name}"')
        calls += 1
        names = ", ".join(f"`{c}`" for c in info.primary_key)
        exact = _exact_query(info) if any(c.data_type == "float" for c in info.columns) else ""
        budget = ARGUMENT_BYTES - len(names) - len(exact) - 20
        chunk: list[bytes] = []
        size = 0
        keys = (bytes(r[0]) for r in session.stream(
            f"SELECT {row_literal(info.key_columns)} FROM {info.full_name} WHERE {selection.where(table)} "
            f"ORDER BY {names}"))
        for key in [*keys, None]:
            if key is not None and (not chunk or size + len(key) + 1 < budget):
                chunk.append(key)
                size += len(key) + 1
                continue
            if chunk:
                condition = f"({names}) IN (" + b",".join(chunk).decode("utf8") + ")"
                if exact:
                    query = f"{exact} WHERE {condition}"
                    tag = _delimiter(query)
                    lines += ["read -r -d '' QUERY <<'" + tag + "' || true", query, tag, EXACT]
                else:
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

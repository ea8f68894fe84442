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

from djshare.errors import ConfigurationError, DjshareError
from djshare.export.closure import Selection
from djshare.export.objects import external_rows
from djshare.sql.transfer import row_literal
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
ARGS=()
if [ -n "${{DJSHARE_DEFAULTS_FILE:-}}" ]; then ARGS+=("--defaults-extra-file=$DJSHARE_DEFAULTS_FILE"); fi
ARGS+=(-h "$DJSHARE_HOST" -P "${{DJSHARE_PORT:-3306}}" -u "${{DJSHARE_USER:-$USER}}" --single-transaction
       --skip-add-drop-table --skip-comments --compact)
"""


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


def write(selection: Selection, path: Path, stores: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Write the script; returns the number of mysqldump calls it makes. `path` must not exist. `stores`: the
    exporting side's store settings, for the external objects."""
    if path.exists():
        raise DjshareError(f"{path} already exists: choose a new file for the script.")
    session = selection.session
    lines = [HEADER.format(name=path.name), *_objects(selection, stores or {})]
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

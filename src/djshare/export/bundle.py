"""Bundles: a directory with a manifest, each table's DDL, and its rows as chunked INSERT statements,
tables in parent-before-child order. Written to a temporary directory and renamed into place, so a crash
leaves no bundle or a whole one. Checksums are SHA-256 over each row's SQL literal (as the server formats
it, FLOAT widened to DOUBLE), in primary-key order, so `verify` can recompute them after a restore.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djshare.backends import catalog
from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import STATEMENT_CAP, column_list, row_literal, statements
from djshare.errors import DjshareError
from djshare.export import objects
from djshare.export.closure import Selection
from djshare.stores.formats.dj014 import store_of_table

FORMAT = "djshare-bundle/1"
MANIFEST = "manifest.json"
FILES = "files"  # manifest key: SHA-256 of every other file of the bundle, checked before a restore changes anything


@dataclass(frozen=True)
class TableEntry:
    schema: str
    table: str
    rows: int
    sha256: str
    ddl: str  # file with the CREATE TABLE statement
    data: tuple[str, ...]  # files with one INSERT statement each


def rows_in_order(session: Session, info: TableInfo, where: str = "") -> Iterator[bytes]:
    """Every row of `info` (matching `where`) as its SQL literal, in primary-key order."""
    order = ", ".join(f"`{c}`" for c in info.primary_key)
    condition = f" WHERE {where}" if where else ""
    for (literal,) in session.stream(f"SELECT {row_literal(info.columns)} FROM {info.full_name}{condition} "
                                     f"ORDER BY {order}", doing=f"reading {info.full_name}"):
        yield bytes(literal)


def create_statement(session: Session, info: TableInfo) -> str:
    text = catalog.create_statement(session, info.full_name)
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)


@contextlib.contextmanager
def new_directory(directory: Path, *folders: str) -> Iterator[Path]:
    """A bundle directory written whole or not at all: work happens in a hidden sibling with `folders`, renamed
    to `directory` when the block ends without error and removed otherwise. `directory` must not exist."""
    if directory.exists():
        raise DjshareError(f"{directory} already exists: choose a new directory for the bundle.")
    partial = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for folder in folders:
        (partial / folder).mkdir()
    try:
        yield partial
        os.replace(partial, directory)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def write(selection: Selection, directory: Path, statement_bytes: int = STATEMENT_CAP,
          on_rows: Callable[[int], None] | None = None,
          stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[TableEntry]:
    """Write the selected rows as a bundle at `directory` (which must not exist yet), with the external
    objects they reference (store settings: `stores`, the exporting side's)."""
    entries: list[TableEntry] = []
    with new_directory(directory, "schema", "data") as partial:
        for index, table in enumerate(selection.graph.tables):
            entries.append(_write_table(selection, partial, index, table, statement_bytes, on_rows))
        external = [(t[0], t[1], selection.where(t)) for t in selection.graph.tables if store_of_table(t[1])]
        counts = objects.save(selection.session, partial, external, stores or {}) if external else {}
        manifest = {"format": FORMAT, "tables": [entry.__dict__ | {"data": list(entry.data)} for entry in entries],
                    "objects": counts, FILES: file_checksums(partial)}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return entries


def _write_table(selection: Selection, folder: Path, index: int, table: tuple[str, str], statement_bytes: int,
                 on_rows: Callable[[int], None] | None) -> TableEntry:
    info = selection.info[table]
    ddl = f"schema/{index:03d}.sql"
    (folder / ddl).write_text(create_statement(selection.session, info) + ";\n")
    header = f"INSERT INTO {quote_name(*table)} ({column_list(info.columns)}) VALUES ".encode()
    digest = hashlib.sha256()
    counted = {"rows": 0}

    def hashed() -> Iterator[bytes]:
        for literal in rows_in_order(selection.session, info, selection.where(table)):
            digest.update(literal + b"\n")
            counted["rows"] += 1
            yield literal

    files: list[str] = []
    too_big = f"A row of {info.full_name} is {{size:,}} bytes as SQL, more than the {{limit:,}} bytes per statement."
    for chunk in statements(hashed(), statement_bytes, len(header) + 2, too_big):
        name = f"data/{index:03d}_{len(files):05d}.sql"
        (folder / name).write_bytes(header + b",".join(chunk) + b";\n")
        files.append(name)
        if on_rows:
            on_rows(len(chunk))
    return TableEntry(table[0], table[1], counted["rows"], digest.hexdigest(), ddl, tuple(files))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in a bundle folder but the manifest (relative path -> hex)."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def check_files(directory: Path, owners: Mapping[str, str]) -> None:
    """Refuse a bundle with a missing or changed file, before anything is restored. `owners`: the files the
    manifest's tables name (relative path -> what it holds, e.g. a table's name). A bundle written before files
    had checksums is checked for presence only (its rows are checked after loading)."""
    expected: dict[str, str] = json.loads((directory / MANIFEST).read_text()).get(FILES) or {}
    what = lambda name: owners.get(name, "an external object")  # noqa: E731
    missing = [name for name in {**dict.fromkeys(owners), **expected} if not (directory / name).is_file()]
    if missing:
        raise DjshareError(f"{directory} lacks {missing[0]} ({what(missing[0])})"
                           f"{f' and {len(missing) - 1} more files' if len(missing) > 1 else ''}: the bundle is "
                           "incomplete; copy it again whole. Nothing was changed.")
    changed = [name for name, sha256 in expected.items() if _sha256(directory / name) != sha256]
    if changed:
        raise DjshareError(f"{directory / changed[0]} ({what(changed[0])}) does not match its SHA-256 in the "
                           f"manifest{f', nor do {len(changed) - 1} more files' if len(changed) > 1 else ''}: the "
                           "bundle was changed or damaged after it was written; copy or write it again. Nothing was "
                           "changed.")


def has_file_checksums(directory: Path) -> bool:
    return bool(json.loads((directory / MANIFEST).read_text()).get(FILES))


def objects_in(directory: Path) -> dict[str, int]:
    """Objects per store that the bundle holds."""
    return dict(json.loads((directory / MANIFEST).read_text()).get("objects", {}))


def read_manifest(directory: Path) -> list[TableEntry]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise DjshareError(f"{directory} is not a djshare bundle ({MANIFEST} unreadable: {error}).") from None
    if manifest.get("format") != FORMAT:
        raise DjshareError(f"{directory} has bundle format {manifest.get('format')!r}; this djshare reads {FORMAT}.")
    return [TableEntry(t["schema"], t["table"], int(t["rows"]), t["sha256"], t["ddl"], tuple(t["data"]))
            for t in manifest["tables"]]

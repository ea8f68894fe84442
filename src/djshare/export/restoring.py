"""Restore a bundle into a server where its tables do not exist yet, with foreign-key checks on; verify
a restored bundle: row counts, checksums, and that every foreign-key reference is satisfied."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djshare.backends.catalog import foreign_keys_to, read_table, schema_exists, table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import MARIADB
from djshare.errors import DjshareError, IntegrityViolation
from djshare.export import objects
from djshare.export.bundle import (
    TableEntry,
    check_files,
    has_file_checksums,
    objects_in,
    read_manifest,
    rows_in_order,
)


def restore(directory: Path, target: Session, on_rows: Callable[[int], None] | None = None,
            stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[TableEntry]:
    """Create the bundle's tables (parents first), load all their rows in one transaction, and put the bundle's
    external objects into the target's stores (settings: `stores`).

    Every file is checked against the manifest first (presence and SHA-256), so a damaged bundle changes
    nothing. Foreign-key checks stay on. MariaDB cannot create tables inside a transaction, so if anything fails,
    the tables (and schemas) this restore created are dropped again before the error is raised."""
    entries = read_manifest(directory)
    check_files(directory, {name: quote_name(e.schema, e.table) for e in entries for name in (e.ddl, *e.data)})
    present = [e for e in entries if schema_exists(target, e.schema) and e.table in table_names(target, e.schema)]
    if present:
        names = ", ".join(quote_name(e.schema, e.table) for e in present[:5])
        raise DjshareError(f"The target server already has {names}{' ...' if len(present) > 5 else ''}: restore into "
                           "a server (or schemas) without these tables. Nothing was changed.")
    checked = has_file_checksums(directory)  # else: rows checked as they are loaded (bundles before checksums)
    new_schemas = [s for s in dict.fromkeys(e.schema for e in entries) if not schema_exists(target, s)]
    created: list[TableEntry] = []
    try:
        target.execute(MARIADB.check_foreign_keys())
        for entry in entries:
            target.execute(MARIADB.create_schema(entry.schema))
            target.execute(MARIADB.use_schema(entry.schema))
            target.execute((directory / entry.ddl).read_bytes(),
                           doing=f"creating {quote_name(entry.schema, entry.table)}")
            created.append(entry)
        with target.transaction("loading the bundle"):
            for entry in entries:
                for name in entry.data:
                    target.execute((directory / name).read_bytes(),
                                   doing=f"loading {quote_name(entry.schema, entry.table)} from {name}")
                if not checked:
                    _check_rows(target, entry)
                if on_rows:
                    on_rows(entry.rows)
        if objects_in(directory):
            objects.put(target, directory, [(e.schema, e.table) for e in entries], stores or {})
    except BaseException as error:
        raise _undone(error, target, created, new_schemas) from error
    return entries


def _dangling(target: Session, entries: list[TableEntry]) -> list[str]:
    """For each foreign key among the bundle's tables on `target`: how many child rows reference no parent row."""
    inside = {(e.schema, e.table) for e in entries}
    problems = []
    for fk in foreign_keys_to(target, sorted({e.schema for e in entries})):
        if fk.child in inside and fk.parent in inside:
            mine = " AND ".join(f"c.`{c}` IS NOT NULL" for c, _ in fk.columns)
            join = " AND ".join(f"p.`{p}` = c.`{c}`" for c, p in fk.columns)
            count = int(target.scalar(
                f"SELECT COUNT(*) FROM {quote_name(*fk.child)} AS c WHERE {mine} AND NOT EXISTS "
                f"(SELECT 1 FROM {quote_name(*fk.parent)} AS p WHERE {join})"))
            if count:
                problems.append(f"{count} rows of {quote_name(*fk.child)} reference missing rows of "
                                f"{quote_name(*fk.parent)}")
    return problems


def _check_rows(target: Session, entry: TableEntry) -> None:
    info = read_table(target, entry.schema, entry.table)
    digest, count = hashlib.sha256(), 0
    for literal in rows_in_order(target, info):
        digest.update(literal + b"\n")
        count += 1
    if (count, digest.hexdigest()) != (entry.rows, entry.sha256):
        raise IntegrityViolation(f"{info.full_name} was loaded with {count} rows (the bundle has {entry.rows})"
                                 f"{' and other values' if count == entry.rows else ''}: its data files were changed "
                                 "after the bundle was written.")


def _undone(error: BaseException, target: Session, created: list[TableEntry], schemas: list[str]) -> BaseException:
    """Drop what a failed restore created (children first); the error to raise, saying what is left."""
    try:
        target.execute(MARIADB.check_foreign_keys())
        for entry in reversed(created):
            target.execute(f"DROP TABLE IF EXISTS {quote_name(entry.schema, entry.table)}")
        for schema in schemas:  # schemas that did not exist before: this restore made them
            if schema_exists(target, schema) and not table_names(target, schema):
                target.execute(MARIADB.drop_schema(schema))
    except Exception as cleanup:  # the server went away: say what is left
        if not created:
            return error
        left = ", ".join(quote_name(e.schema, e.table) for e in created)
        return DjshareError(f"{_text(error)} The restore could not remove the tables it had created ({cleanup}); "
                            f"drop them before restoring again: {left}.")
    if not isinstance(error, Exception) or not created:
        return error  # Ctrl-C and the like, or nothing was created: raised as they are
    message = f"{_text(error)} The restore removed the {len(created)} tables it had created; the target is as it was."
    if not isinstance(error, DjshareError):
        return DjshareError(message)
    undone = copy.copy(error)  # the same kind, with its details (a missing grant, ...)
    undone.args = (message,)
    return undone


def _text(error: BaseException) -> str:
    text = str(error).rstrip()
    return text if text.endswith(".") else text + "."


@dataclass
class VerifyReport:
    tables: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)


def verify(directory: Path, target: Session, stores: Mapping[str, Mapping[str, Any]] | None = None) -> VerifyReport:
    """Compare a restored bundle with its manifest, check every foreign key among its tables, and that every
    external object is in the target's stores."""
    entries = read_manifest(directory)
    report = VerifyReport()
    for entry in entries:
        if not schema_exists(target, entry.schema) or entry.table not in table_names(target, entry.schema):
            report.problems.append(f"{quote_name(entry.schema, entry.table)} is missing")
            continue
        info = read_table(target, entry.schema, entry.table)
        digest = hashlib.sha256()
        count = 0
        for literal in rows_in_order(target, info):
            digest.update(literal + b"\n")
            count += 1
        report.tables += 1
        report.rows += count
        if count != entry.rows:
            report.problems.append(f"{info.full_name} has {count} rows; the bundle has {entry.rows}")
        elif digest.hexdigest() != entry.sha256:
            report.problems.append(f"{info.full_name} differs from the bundle (SHA-256 of its rows)")
    inside = {(e.schema, e.table) for e in entries}
    present = [e for e in entries if schema_exists(target, e.schema) and e.table in table_names(target, e.schema)]
    report.problems += _dangling(target, present)
    if objects_in(directory):
        absent = objects.missing(target, sorted(inside), stores or {})
        report.problems += [f"object {path} is missing from the target's store" for path in absent[:20]]
    return report


def check(report: VerifyReport, directory: Path) -> None:
    if report.problems:
        raise IntegrityViolation(f"The restore of {directory} does not match the bundle: " + "; ".join(report.problems))

"""Restore a bundle into a server where its tables do not exist yet, with foreign-key checks on; verify
a restored bundle: row counts, checksums, and that every foreign-key reference is satisfied."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djshare.errors import DjshareError, IntegrityViolation
from djshare.export import objects
from djshare.export.bundle import TableEntry, objects_in, read_manifest, rows_in_order
from djshare.sql.catalog import foreign_keys_to, read_table, schema_exists, table_names
from djshare.sql.connection import Session, quote_name


def restore(directory: Path, target: Session, on_rows: Callable[[int], None] | None = None,
            stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[TableEntry]:
    """Create each table and load its rows, parents first, one transaction per table; then put the bundle's
    external objects into the target's stores (settings: `stores`)."""
    entries = read_manifest(directory)
    present = [e for e in entries if schema_exists(target, e.schema) and e.table in table_names(target, e.schema)]
    if present:
        names = ", ".join(quote_name(e.schema, e.table) for e in present[:5])
        raise DjshareError(f"The target server already has {names}{' ...' if len(present) > 5 else ''}: restore into "
                           "a server (or schemas) without these tables. Nothing was changed.")
    target.execute("SET foreign_key_checks = 1")
    for entry in entries:
        target.execute(f"CREATE DATABASE IF NOT EXISTS {quote_name(entry.schema)}")
        target.execute(f"USE {quote_name(entry.schema)}")
        target.execute((directory / entry.ddl).read_bytes(), doing=f"creating {quote_name(entry.schema, entry.table)}")
        with target.transaction(f"loading {quote_name(entry.schema, entry.table)}"):
            for name in entry.data:
                target.execute((directory / name).read_bytes(),
                               doing=f"loading {quote_name(entry.schema, entry.table)} from {name}")
        if on_rows:
            on_rows(entry.rows)
    if objects_in(directory):
        objects.put(target, directory, [(e.schema, e.table) for e in entries], stores or {})
    return entries


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
    for fk in foreign_keys_to(target, sorted({e.schema for e in entries})):
        if fk.child in inside and fk.parent in inside:
            mine = " AND ".join(f"c.`{c}` IS NOT NULL" for c, _ in fk.columns)
            join = " AND ".join(f"p.`{p}` = c.`{c}`" for c, p in fk.columns)
            dangling = int(target.scalar(
                f"SELECT COUNT(*) FROM {quote_name(*fk.child)} AS c WHERE {mine} AND NOT EXISTS "
                f"(SELECT 1 FROM {quote_name(*fk.parent)} AS p WHERE {join})"))
            if dangling:
                report.problems.append(f"{dangling} rows of {quote_name(*fk.child)} reference missing rows of "
                                       f"{quote_name(*fk.parent)}")
    if objects_in(directory):
        absent = objects.missing(target, sorted(inside), stores or {})
        report.problems += [f"object {path} is missing from the target's store" for path in absent[:20]]
    return report


def check(report: VerifyReport, directory: Path) -> None:
    if report.problems:
        raise IntegrityViolation(f"The restore of {directory} does not match the bundle: " + "; ".join(report.problems))

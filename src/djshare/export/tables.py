"""Exports without DataJoint, by SQL restrictions on named tables (the names of earlier releases, kept for one
more: `djshare.export.engine` is the one export front now, for MariaDB and PostgreSQL alike).

    from djshare.export.tables import write, copy, restore, verify
    source = ServerAddress.parse("db.lab.org", user, password)
    write(source, [("lab2.session", "subject = 'm1'")], "paper-2025")     # parents and parts come along
    restore("paper-2025", archive); verify("paper-2025", archive).problems
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from djshare.backends.address import ServerAddress
from djshare.export import engine
from djshare.export.direct import Copied
from djshare.export.restoring import VerifyReport
from djshare.export.selection import LINEAGE_TABLE, Restriction, named, parse, select

__all__ = ["LINEAGE_TABLE", "Restriction", "copy", "parse", "restore", "select", "verify", "write"]


def write(source: ServerAddress, restrictions: Sequence[Restriction], directory: str | Path, progress: bool = True,
          statement_bytes: int | None = None) -> list[engine.Entry]:
    """Write the selected rows (with their parents and parts) as a bundle directory, which must not exist."""
    return engine.write(source, named(restrictions), directory, progress=progress, statement_bytes=statement_bytes)


def copy(source: ServerAddress, restrictions: Sequence[Restriction], target: ServerAddress,
         progress: bool = True) -> list[Copied]:
    """Copy the selected rows straight into `target` (schemas without these tables), checked table by table."""
    return engine.copy(source, named(restrictions), target, progress=progress)


def restore(directory: str | Path, target: ServerAddress, progress: bool = True) -> list[engine.Entry]:
    """Load a bundle into `target`, whose schemas must not have the bundle's tables yet."""
    return engine.restore(directory, target, progress=progress)


def verify(directory: str | Path, target: ServerAddress) -> VerifyReport:
    """Row counts, checksums and foreign keys of a restored bundle; problems are listed."""
    return engine.verify(directory, target)

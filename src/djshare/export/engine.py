"""One export, whatever the server and the DataJoint line: the rows chosen by restrictions (SQL conditions on named
tables, and what analyses captured for a paper), closed over foreign keys and part tables on the server, with their
`~lineage` rows and the objects they reference; previewed, written as a bundle, copied straight into another
server, restored and verified. `work_schema` (MariaDB) names where the selection's temporary key tables go. The
backend is the source's (or, for a bundle, the one that wrote it):

    from djshare.export import engine
    from djshare.export.capture_tables import recorded
    rows = [("lab.session", "subject = 'm1'"), *recorded(source, "paper-2025")]
    engine.write(source, rows, "paper-2025", stores=lab_stores)        # MariaDB or PostgreSQL
    engine.restore("paper-2025", archive, stores=archive_stores); engine.verify("paper-2025", archive).problems

Each backend keeps its own closure and bundle layout (MariaDB: server-formatted INSERT statements, `export.tables`;
PostgreSQL: binary COPY files, `export.pg`); this module is the one front both are reached through, so the command
line and the 0.14 API (`djshare.export.write(paper, ...)`) choose nothing themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends.address import ServerAddress
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import STATEMENT_CAP
from djshare.errors import ConfigurationError
from djshare.export import bundle, direct, restoring, script
from djshare.export import pg as pg_export
from djshare.export import selection as mariadb_export
from djshare.export.diagram import kind_of, render
from djshare.export.direct import Copied
from djshare.export.restoring import VerifyReport
from djshare.progress import progress_bar

Restriction = mariadb_export.Restriction
StoreSettings = Mapping[str, Mapping[str, Any]]
Entry = bundle.TableEntry | pg_export.Entry


def _postgres(address: ServerAddress) -> bool:
    return address.backend == "postgresql"


@contextmanager
def _selected(source: ServerAddress, restrictions: Sequence[Restriction], work_schema: str | None) -> Any:
    """The selection on the source server, in the session it lives in (its key tables are temporary)."""
    if _postgres(source):
        with postgres.session(source) as pg:
            yield pg_export.select(pg, restrictions)
    else:
        with Session(source) as session:
            yield mariadb_export.select(session, restrictions, work_schema)


def preview(source: ServerAddress, restrictions: Sequence[Restriction], diagram: str | Path | None = None,
            work_schema: str | None = None) -> dict[str, int]:
    """Tables of the export and their row counts (parents first), by their quoted names; with `diagram`, also draw
    the slice into that file, as SVG or PNG after its suffix."""
    if diagram is not None:
        kind_of(Path(diagram).suffix)  # a wrong suffix fails before any work
    quote = postgres.name if _postgres(source) else quote_name
    with _selected(source, restrictions, work_schema) as selection:
        if diagram is not None:
            Path(diagram).write_bytes(render(selection.graph, selection.counts, Path(diagram).suffix))
        return {quote(*t): selection.counts[t] for t in selection.graph.tables}


def write(source: ServerAddress, restrictions: Sequence[Restriction], directory: str | Path,
          stores: StoreSettings | None = None, progress: bool = True, statement_bytes: int | None = None,
          label: str = "export", work_schema: str | None = None) -> list[Entry]:
    """Write the selected rows as a bundle directory, which must not exist; `stores`: the source's store settings
    (objects the rows reference go into the bundle)."""
    if _postgres(source):
        return list(pg_export.write(source, restrictions, directory, stores=stores, progress=progress))
    with Session(source) as session:
        selection = mariadb_export.select(session, restrictions, work_schema)
        with progress_bar(label, sum(selection.counts.values()), progress) as advance:
            return list(bundle.write(selection, Path(directory), statement_bytes or STATEMENT_CAP, on_rows=advance,
                                     stores=stores or {}))


def write_script(source: ServerAddress, restrictions: Sequence[Restriction], path: str | Path,
                 stores: StoreSettings | None = None, work_schema: str | None = None) -> int:
    """Write a bash script of mysqldump calls for the export (MariaDB; no credentials in it); returns its calls."""
    if _postgres(source):
        raise ConfigurationError("Scripts of dump calls are written for MariaDB sources; from PostgreSQL, write a "
                                 "bundle (`djshare export write`) or copy straight into the target (`copy`).")
    with Session(source) as session:
        return script.write(mariadb_export.select(session, restrictions, work_schema), Path(path), stores or {})


def copy(source: ServerAddress, restrictions: Sequence[Restriction], target: ServerAddress,
         stores: tuple[StoreSettings, StoreSettings] | None = None, progress: bool = True,
         label: str = "copy", work_schema: str | None = None) -> list[Copied]:
    """Copy the selected rows straight into `target` (a server of the source's kind, in schemas without these
    tables), checked table by table; `stores`: the (source, target) store settings for the objects."""
    if _postgres(source) != _postgres(target):
        raise ConfigurationError("Copy between two MariaDB servers or two PostgreSQL servers; to move rows across "
                                 "them, link the tables (`djshare pull`) or compare them (`djshare diff`).")
    if _postgres(source):
        return pg_export.copy(source, restrictions, target, stores=stores, progress=progress)
    with Session(source) as session, Session(target) as destination:
        selection = mariadb_export.select(session, restrictions, work_schema)
        with progress_bar(label, sum(selection.counts.values()), progress) as advance:
            return direct.copy(selection, destination, on_rows=advance, stores=stores or ({}, {}))


def bundle_backend(directory: str | Path) -> str:
    """The kind of server a bundle was written from ("mariadb" or "postgresql"), from its manifest."""
    try:
        kind = json.loads((Path(directory) / bundle.MANIFEST).read_text()).get("format")
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{directory} is not a djshare bundle ({error}).") from None
    return "postgresql" if kind == pg_export.FORMAT else "mariadb"


def _bundle_for(directory: str | Path, target: ServerAddress) -> bool:
    """Whether `directory` is a PostgreSQL bundle, refusing one meant for the other kind of server."""
    backend = bundle_backend(directory)
    if (backend == "postgresql") != _postgres(target):
        raise ConfigurationError(f"{directory} holds a {'PostgreSQL' if backend == 'postgresql' else 'MariaDB'} "
                                 "export: restore it into that kind of server.")
    return backend == "postgresql"


def restore(directory: str | Path, target: ServerAddress, stores: StoreSettings | None = None,
            progress: bool = True) -> list[Entry]:
    """Load a bundle into `target`, whose schemas must not have its tables; its objects go to the target's
    `stores`."""
    if _bundle_for(directory, target):
        return list(pg_export.restore(directory, target, stores=stores, progress=progress))
    entries = bundle.read_manifest(Path(directory))
    with Session(target) as session, progress_bar("restore", sum(e.rows for e in entries), progress) as advance:
        return list(restoring.restore(Path(directory), session, on_rows=advance, stores=stores or {}))


def verify(directory: str | Path, target: ServerAddress, stores: StoreSettings | None = None) -> VerifyReport:
    """Row counts, checksums, foreign keys (MariaDB; on PostgreSQL the restored foreign keys enforce them) and
    objects of a restored bundle; problems are listed."""
    if _bundle_for(directory, target):
        return pg_export.verify(directory, target)
    with Session(target) as session:
        return restoring.verify(Path(directory), session, stores or {})

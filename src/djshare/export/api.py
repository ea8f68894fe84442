"""Export's public functions and their wiring (connections, progress bars)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datajoint as dj

from djshare.backends.address import ServerAddress
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import STATEMENT_CAP
from djshare.export import bundle, direct, script
from djshare.export import capture as capturing
from djshare.export import restore as restoring
from djshare.export.capture import DEFAULT_SCHEMA, captured
from djshare.export.closure import Selection, compute
from djshare.export.diagram import kind_of, render
from djshare.export.direct import Copied
from djshare.link.api import LazySchema
from djshare.progress import progress_bar


def _selection(paper: str, schema: str, session: Session, data: LazySchema) -> Selection:
    return compute(session, captured(data.connection, paper, schema), schema)


def captures(schema: str = DEFAULT_SCHEMA) -> list[capturing.CaptureSummary]:
    """The captures recorded on the data server, per paper and analysis."""
    return capturing.summaries(LazySchema(schema).connection, schema)


def open_capture(paper: str, analysis: str, schema: str = DEFAULT_SCHEMA) -> bool:
    """Open a capture on the data server for the configured account: processes that called
    `djshare.export.follow()` record their fetches into it until `close_capture`. False if already open."""
    return capturing.open_capture(LazySchema(schema).connection, paper, analysis, schema)


def close_capture(paper: str, analysis: str | None = None, schema: str = DEFAULT_SCHEMA) -> int:
    """Close the configured account's open captures of a paper (or of one analysis); returns how many."""
    return capturing.close_captures(LazySchema(schema).connection, paper, analysis, schema)


def open_captures(schema: str = DEFAULT_SCHEMA) -> list[tuple[str, str, str, Any]]:
    """Captures open on the data server: (account, paper, analysis, started_at)."""
    return capturing.open_captures(LazySchema(schema).connection, schema)


def forget(paper: str, analysis: str | None = None, schema: str = DEFAULT_SCHEMA) -> int:
    """Delete the captures of a paper, or of one of its analyses."""
    return capturing.forget(LazySchema(schema).connection, paper, analysis, schema)


def preview(paper: str, schema: str = DEFAULT_SCHEMA, diagram: str | Path | None = None) -> dict[str, int]:
    """Tables of the export of `paper` and their row counts (parents first); with `diagram`, also draw the
    slice into that file, as SVG or PNG after its suffix. The data server is the local server of the DataJoint
    settings."""
    data = LazySchema(schema)
    if diagram is not None:
        kind_of(Path(diagram).suffix)  # a wrong suffix fails before any work
    with data.session() as session:
        selection = _selection(paper, schema, session, data)
        if diagram is not None:
            Path(diagram).write_bytes(render(selection.graph, selection.counts, Path(diagram).suffix))
        return {quote_name(*t): selection.counts[t] for t in selection.graph.tables}


def write(paper: str, directory: str | Path, schema: str = DEFAULT_SCHEMA, progress: bool = True,
          statement_bytes: int | None = None) -> list[bundle.TableEntry]:
    """Write the export of `paper` as a bundle directory (which must not exist)."""
    data = LazySchema(schema)
    with data.session() as session:
        selection = _selection(paper, schema, session, data)
        total = sum(selection.counts.values())
        with progress_bar(f"export {paper}", total, progress) as advance:
            return bundle.write(selection, Path(directory), statement_bytes or STATEMENT_CAP, on_rows=advance,
                                stores=data.store_settings())


def write_script(paper: str, path: str | Path, schema: str = DEFAULT_SCHEMA) -> int:
    """Write a mysqldump script for the export of `paper` (no credentials in it); returns its mysqldump calls."""
    data = LazySchema(schema)
    with data.session() as session:
        return script.write(_selection(paper, schema, session, data), Path(path), data.store_settings())


def copy(paper: str, target: ServerAddress, schema: str = DEFAULT_SCHEMA, progress: bool = True,
         target_stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[Copied]:
    """Copy the export of `paper` straight into `target` (schemas without these tables), checked table by table.
    External objects go from the DataJoint config's stores to `target_stores` (default: the same settings)."""
    data = LazySchema(schema)
    with data.session() as session, Session(target) as destination:
        selection = _selection(paper, schema, session, data)
        stores = (data.store_settings(), _stores(target_stores))
        with progress_bar(f"copy {paper}", sum(selection.counts.values()), progress) as advance:
            return direct.copy(selection, destination, on_rows=advance, stores=stores)


def restore(directory: str | Path, target: ServerAddress, progress: bool = True,
            stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[bundle.TableEntry]:
    """Load a bundle into `target`, whose schemas must not have the bundle's tables yet. External objects go
    to the target side's stores: `stores`, default dj.config["stores"]."""
    entries = bundle.read_manifest(Path(directory))
    with Session(target) as session, progress_bar("restore", sum(e.rows for e in entries), progress) as advance:
        return restoring.restore(Path(directory), session, on_rows=advance, stores=_stores(stores))


def verify(directory: str | Path, target: ServerAddress,
           stores: Mapping[str, Mapping[str, Any]] | None = None) -> restoring.VerifyReport:
    """Row counts, checksums, foreign keys and external objects of a restored bundle; problems are listed."""
    with Session(target) as session:
        return restoring.verify(Path(directory), session, _stores(stores))


def _stores(stores: Mapping[str, Mapping[str, Any]] | None) -> Mapping[str, Mapping[str, Any]]:
    return stores if stores is not None else dict(dj.config.get("stores") or {})

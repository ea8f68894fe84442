"""The DataJoint 0.14 export API: captures on the data server of the DataJoint settings, exported through the one
export engine (`djshare.export.engine`) with the stores of dj.config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datajoint as dj

from djshare.backends.address import ServerAddress
from djshare.export import capture_tables as recorded_captures
from djshare.export import engine
from djshare.export.capture014 import DEFAULT_SCHEMA
from djshare.export.capture_tables import CaptureSummary
from djshare.export.direct import Copied
from djshare.export.restoring import VerifyReport
from djshare.link.lazy import LazySchema


def _export(paper: str, schema: str) -> tuple[LazySchema, list[tuple[str, str]]]:
    """The data server (the local server of the DataJoint settings) and what was captured there for `paper`."""
    data = LazySchema(schema)
    return data, recorded_captures.recorded(data.address, paper, schema)


def captures(schema: str = DEFAULT_SCHEMA) -> list[CaptureSummary]:
    """The captures recorded on the data server, per paper and analysis."""
    return recorded_captures.summaries(LazySchema(schema).address, schema)


def open_capture(paper: str, analysis: str, schema: str = DEFAULT_SCHEMA) -> bool:
    """Open a capture on the data server for the configured account: processes that called
    `djshare.export.follow()` record their fetches into it until `close_capture`. False if already open."""
    return recorded_captures.open_capture(LazySchema(schema).address, paper, analysis, schema)


def close_capture(paper: str, analysis: str | None = None, schema: str = DEFAULT_SCHEMA) -> int:
    """Close the configured account's open captures of a paper (or of one analysis); returns how many."""
    return recorded_captures.close_captures(LazySchema(schema).address, paper, analysis, schema)


def open_captures(schema: str = DEFAULT_SCHEMA) -> list[tuple[str, str, str, Any]]:
    """Captures open on the data server: (account, paper, analysis, started_at)."""
    return recorded_captures.open_captures(LazySchema(schema).address, schema)


def forget(paper: str, analysis: str | None = None, schema: str = DEFAULT_SCHEMA) -> int:
    """Delete the captures of a paper, or of one of its analyses."""
    return recorded_captures.forget(LazySchema(schema).address, paper, analysis, schema)


def preview(paper: str, schema: str = DEFAULT_SCHEMA, diagram: str | Path | None = None) -> dict[str, int]:
    """Tables of the export of `paper` and their row counts (parents first); with `diagram`, also draw the
    slice into that file, as SVG or PNG after its suffix. The data server is the local server of the DataJoint
    settings."""
    data, restrictions = _export(paper, schema)
    return engine.preview(data.address, restrictions, diagram, work_schema=schema)


def write(paper: str, directory: str | Path, schema: str = DEFAULT_SCHEMA, progress: bool = True,
          statement_bytes: int | None = None) -> list[engine.Entry]:
    """Write the export of `paper` as a bundle directory (which must not exist)."""
    data, restrictions = _export(paper, schema)
    return engine.write(data.address, restrictions, directory, data.store_settings(), progress, statement_bytes,
                        label=f"export {paper}", work_schema=schema)


def write_script(paper: str, path: str | Path, schema: str = DEFAULT_SCHEMA) -> int:
    """Write a mysqldump script for the export of `paper` (no credentials in it); returns its mysqldump calls."""
    data, restrictions = _export(paper, schema)
    return engine.write_script(data.address, restrictions, path, data.store_settings(), work_schema=schema)


def copy(paper: str, target: ServerAddress, schema: str = DEFAULT_SCHEMA, progress: bool = True,
         target_stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[Copied]:
    """Copy the export of `paper` straight into `target` (schemas without these tables), checked table by table.
    External objects go from the DataJoint config's stores to `target_stores` (default: the same settings)."""
    data, restrictions = _export(paper, schema)
    return engine.copy(data.address, restrictions, target, (data.store_settings(), _stores(target_stores)), progress,
                       label=f"copy {paper}", work_schema=schema)


def restore(directory: str | Path, target: ServerAddress, progress: bool = True,
            stores: Mapping[str, Mapping[str, Any]] | None = None) -> list[engine.Entry]:
    """Load a bundle into `target`, whose schemas must not have the bundle's tables yet. External objects go
    to the target side's stores: `stores`, default dj.config["stores"]."""
    return engine.restore(directory, target, _stores(stores), progress)


def verify(directory: str | Path, target: ServerAddress,
           stores: Mapping[str, Mapping[str, Any]] | None = None) -> VerifyReport:
    """Row counts, checksums, foreign keys and external objects of a restored bundle; problems are listed."""
    return engine.verify(directory, target, _stores(stores))


def _stores(stores: Mapping[str, Mapping[str, Any]] | None) -> Mapping[str, Mapping[str, Any]]:
    return stores if stores is not None else dict(dj.config.get("stores") or {})

"""Export's public functions and their wiring (connections, progress bars)."""

from __future__ import annotations

from pathlib import Path

from djshare.errors import DjshareError
from djshare.export import bundle, direct
from djshare.export import restore as restoring
from djshare.export.capture import DEFAULT_SCHEMA, captured
from djshare.export.closure import Selection, compute
from djshare.export.direct import Copied
from djshare.link.api import LazySchema
from djshare.progress import progress_bar
from djshare.sql.connection import ServerAddress, Session, quote_name


def _selection(paper: str, schema: str, session: Session, data: LazySchema) -> Selection:
    restrictions = captured(data.connection, paper, schema)
    if not restrictions:
        raise DjshareError(f"Nothing was captured for paper {paper!r} (capture schema `{schema}` on "
                           f"{data.address.host}:{data.address.port}). Capture an analysis first.")
    return compute(session, restrictions, schema)


def preview(paper: str, schema: str = DEFAULT_SCHEMA) -> dict[str, int]:
    """Tables of the export of `paper` and their row counts (parents first). The data server is the local
    server of the DataJoint settings."""
    data = LazySchema(schema)
    with data.session() as session:
        selection = _selection(paper, schema, session, data)
        return {quote_name(*t): selection.counts[t] for t in selection.graph.tables}


def write(paper: str, directory: str | Path, schema: str = DEFAULT_SCHEMA, progress: bool = True,
          statement_bytes: int | None = None) -> list[bundle.TableEntry]:
    """Write the export of `paper` as a bundle directory (which must not exist)."""
    data = LazySchema(schema)
    with data.session() as session:
        selection = _selection(paper, schema, session, data)
        total = sum(selection.counts.values())
        with progress_bar(f"export {paper}", total, progress) as advance:
            kwargs = {"statement_bytes": statement_bytes} if statement_bytes else {}
            return bundle.write(selection, Path(directory), on_rows=advance, **kwargs)


def copy(paper: str, target: ServerAddress, schema: str = DEFAULT_SCHEMA, progress: bool = True) -> list[Copied]:
    """Copy the export of `paper` straight into `target` (schemas without these tables), checked table by table."""
    data = LazySchema(schema)
    with data.session() as session, Session(target) as destination:
        selection = _selection(paper, schema, session, data)
        with progress_bar(f"copy {paper}", sum(selection.counts.values()), progress) as advance:
            return direct.copy(selection, destination, on_rows=advance)


def restore(directory: str | Path, target: ServerAddress, progress: bool = True) -> list[bundle.TableEntry]:
    """Load a bundle into `target`, whose schemas must not have the bundle's tables yet."""
    entries = bundle.read_manifest(Path(directory))
    with Session(target) as session, progress_bar("restore", sum(e.rows for e in entries), progress) as advance:
        return restoring.restore(Path(directory), session, on_rows=advance)


def verify(directory: str | Path, target: ServerAddress) -> restoring.VerifyReport:
    """Row counts, checksums and foreign keys of a restored bundle; problems are listed, not raised."""
    with Session(target) as session:
        return restoring.verify(Path(directory), session)

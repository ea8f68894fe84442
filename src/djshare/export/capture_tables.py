"""The capture tables on a data server, read and managed without DataJoint, on MariaDB and PostgreSQL alike.

Both DataJoint lines record into the same two tables of the capture schema (default `djshare_export`):
`export_restriction` (paper, analysis, seq, table_schema, table_name, restriction, captured_at) and `export_open`
(account, paper, analysis, started_at: captures opened on the server for a database account, which processes that
called `follow()` record into). The fetch hooks that write them are per line (`djshare.export.capture014` for 0.14,
`djshare.export.capture2` for 2.x); everything else is here, so `djshare export start|stop|list|forget` and the
exports read captures the same way whatever line wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from djshare.backends import dialect
from djshare.backends import session as session_on
from djshare.backends.address import ServerAddress
from djshare.defaults import CAPTURE_SCHEMA
from djshare.errors import DjshareError
from djshare.export import active

TABLE = "export_restriction"
OPEN_TABLE = "export_open"
ACCOUNT = {"mysql": "CURRENT_USER()", "mariadb": "CURRENT_USER()", "postgresql": "current_user"}  # by backend


class CaptureSummary(NamedTuple):
    """One analysis of a paper: how many restrictions were recorded, first and last."""

    paper: str
    analysis: str
    restrictions: int
    first: Any
    last: Any


def declaration(backend: str, schema: str) -> list[str]:
    """The statements that create the recorded restrictions' table on a `mysql`/`mariadb` or `postgresql` server."""
    sql = dialect(backend)
    return [sql.create_schema(schema), sql.capture_table(schema, TABLE)]


def open_declaration(backend: str, schema: str) -> list[str]:
    """The statements that create the table of captures opened on the server (`export_open`)."""
    sql = dialect(backend)
    return [sql.create_schema(schema), sql.open_capture_table(schema, OPEN_TABLE)]


@contextmanager
def _server(address: ServerAddress) -> Iterator[tuple[Any, Callable[[str], str]]]:
    """A session on the server at `address` and how it quotes a capture table's name (`schema.table`)."""
    sql = dialect(address.backend)
    with session_on(address) as session:
        yield session, lambda qualified: sql.quote(*qualified.split("."))


def _exists(session: Any, schema: str, table: str) -> bool:
    return bool(session.rows("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND "
                             "table_name = %s", (schema, table))[0][0])


def _label(address: ServerAddress) -> str:
    return f"{address.host}:{address.port}"


def open_capture(address: ServerAddress, paper: str, analysis: str, schema: str = CAPTURE_SCHEMA) -> bool:
    """Open a capture on the server for the account of `address`; False if it was open already. Processes of that
    account that called `follow()` record their fetches into it until `close_captures`."""
    with _server(address) as (session, quoted):
        for statement in (*declaration(address.backend, schema), *open_declaration(address.backend, schema)):
            session.execute(statement)
        row = f"(account, paper, analysis) VALUES ({ACCOUNT[address.backend]}, %s, %s)"
        return bool(session.execute(dialect(address.backend).insert_new(quoted(f"{schema}.{OPEN_TABLE}"), row),
                                    (paper, analysis)))


def close_captures(address: ServerAddress, paper: str, analysis: str | None = None,
                   schema: str = CAPTURE_SCHEMA) -> int:
    """Close the account's open captures of `paper` (or of one analysis); returns how many closed."""
    with _server(address) as (session, quoted):
        if not _exists(session, schema, OPEN_TABLE):
            return 0
        condition, args = ("", (paper,)) if analysis is None else (" AND analysis = %s", (paper, analysis))
        return int(session.execute(f"DELETE FROM {quoted(f'{schema}.{OPEN_TABLE}')} WHERE account = "
                                   f"{ACCOUNT[address.backend]} AND paper = %s" + condition, args))


def open_captures(address: ServerAddress, schema: str = CAPTURE_SCHEMA) -> list[tuple[str, str, str, Any]]:
    """Every capture open on the server: (account, paper, analysis, started_at)."""
    with _server(address) as (session, quoted):
        if not _exists(session, schema, OPEN_TABLE):
            return []
        return [(str(a), str(p), str(n), t) for a, p, n, t in session.rows(
            f"SELECT account, paper, analysis, started_at FROM {quoted(f'{schema}.{OPEN_TABLE}')} "
            "ORDER BY account, paper, analysis")]


def _summaries(session: Any, quoted: Callable[[str], str], schema: str) -> list[CaptureSummary]:
    if not _exists(session, schema, TABLE):
        return []
    return [CaptureSummary(str(p), str(a), int(n), first, last) for p, a, n, first, last in session.rows(
        f"SELECT paper, analysis, count(*), min(captured_at), max(captured_at) FROM {quoted(f'{schema}.{TABLE}')} "
        "GROUP BY paper, analysis ORDER BY paper, analysis")]


def summaries(address: ServerAddress, schema: str = CAPTURE_SCHEMA) -> list[CaptureSummary]:
    """Per paper and analysis: how many restrictions were recorded, first and last."""
    with _server(address) as (session, quoted):
        return _summaries(session, quoted, schema)


def recorded(address: ServerAddress, paper: str, schema: str = CAPTURE_SCHEMA) -> list[tuple[str, str]]:
    """Every recorded ("schema.table", SQL condition) of `paper`, all analyses, in the order recorded. DjshareError
    when nothing was ever captured in `schema`, or nothing for `paper` (naming the papers that were)."""
    with _server(address) as (session, quoted):
        if not _exists(session, schema, TABLE):
            raise DjshareError(active.no_captures(_label(address), schema))
        rows = session.rows(f"SELECT table_schema, table_name, restriction FROM {quoted(f'{schema}.{TABLE}')} WHERE "
                            "paper = %s ORDER BY seq", (paper,))
        if not rows:
            known = [(c.paper, c.analysis) for c in _summaries(session, quoted, schema)]
            raise DjshareError(active.unknown_capture(paper, None, known, _label(address)))
    return [(f"{s}.{t}", str(r)) for s, t, r in rows]


def forget(address: ServerAddress, paper: str, analysis: str | None = None, schema: str = CAPTURE_SCHEMA) -> int:
    """Delete the captures of `paper` (or of one analysis of it); returns how many restrictions went. An unknown
    paper or analysis is a DjshareError naming what was captured."""
    with _server(address) as (session, quoted):
        if not _exists(session, schema, TABLE):
            raise DjshareError(active.no_captures(_label(address), schema))
        condition, args = ("", (paper,)) if analysis is None else (" AND analysis = %s", (paper, analysis))
        gone = int(session.execute(f"DELETE FROM {quoted(f'{schema}.{TABLE}')} WHERE paper = %s" + condition, args))
        if not gone:
            known = [(c.paper, c.analysis) for c in _summaries(session, quoted, schema)]
            raise DjshareError(active.unknown_capture(paper, analysis, known, _label(address)))
    return gone

"""Capture under DataJoint 2.x: record which rows an analysis fetched, on PostgreSQL or MariaDB.

    from djshare.export import capture2
    with capture2.capture("paper1", "figure2"):
        data = (Session * Scan & "subject='m1'").to_dicts()
    restrictions = capture2.restrictions(connection, "paper1")   # for djshare.export.pg / export.tables

DataJoint 2.x reads rows through one call, `QueryExpression.cursor` (behind `fetch`, `fetch1`, `to_dicts`,
`to_arrays`, `to_pandas`, `keys`, iteration): the hook wraps it once per process and does nothing when no
capture is active. Captures are kept in a context variable (captures in parallel threads stay apart; several
may be active at once). For each base table behind the query it records the SQL condition selecting the rows
of that table that decide the result (`djshare.export.decided`: the tables behind semijoins, antijoins,
subqueries, joins and aggregations included, renamed key attributes mapped back; limits and ordering included),
into the table `export_restriction` of the capture schema (default `djshare_export`) on the same server.

`restrictions()` gives the recorded (table, condition) pairs in the form `djshare.export.engine` takes;
`djshare.export.capture_tables` (and `djshare export ... --paper`) reads and manages them without DataJoint.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from dataclasses import dataclass
from typing import Any

from djshare.defaults import CAPTURE_SCHEMA
from djshare.errors import DjshareError
from djshare.export import active, decided
from djshare.export.capture_tables import (  # the server side of captures, kept importable here for one release
    ACCOUNT,
    OPEN_TABLE,
    TABLE,
    close_captures,
    declaration,
    open_capture,
    open_captures,
    open_declaration,
    recorded,
    summaries,
)

_following: set[str] = set()  # capture schemas whose open captures this process records into
_install_lock = threading.Lock()
_installed = {"done": False}
_declared: set[tuple[int, str]] = set()  # (connection id, schema) whose capture table exists


def _table(connection: Any, schema: str, table: str = TABLE) -> str:
    quote = connection.adapter.quote_identifier
    return f"{quote(schema)}.{quote(table)}"


@dataclass
class Capture:
    paper: str
    analysis: str
    schema: str = CAPTURE_SCHEMA

    def record(self, expression: Any) -> None:
        connection = expression.connection
        found = decided.of(expression)
        active.warn_unseen(found.unseen)
        rows = []
        for full_name, condition in found.conditions:
            schema, table = connection.adapter.split_full_table_name(full_name)
            if schema != self.schema:
                rows.append((self.paper, self.analysis, schema, table, condition))
        if not rows:
            return
        if (id(connection), self.schema) not in _declared:
            for statement in declaration(connection.adapter.backend, self.schema):
                connection.query(statement)
            _declared.add((id(connection), self.schema))
        quote = connection.adapter.quote_identifier
        columns = ", ".join(quote(c) for c in ("paper", "analysis", "table_schema", "table_name", "restriction"))
        for row in rows:
            connection.query(f"INSERT INTO {_table(connection, self.schema)} ({columns}) VALUES (%s, %s, %s, %s, %s)",
                             args=row)


def _install() -> None:
    with _install_lock:
        if _installed["done"]:
            return
        from datajoint.expression import QueryExpression

        decided.watch(decided.installed_line())
        original = QueryExpression.cursor

        def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            for capture in (*active.active(), *(_opened(self.connection) if _following else ())):
                capture.record(self)
            return result

        QueryExpression.cursor = cursor
        _installed["done"] = True


def start(paper: str, analysis: str, schema: str = CAPTURE_SCHEMA) -> contextvars.Token[tuple[active.Recorder, ...]]:
    """Start capturing (for notebooks); pass the returned token to `stop`."""
    _install()
    return active.start(Capture(paper, analysis, schema))


stop = active.stop


def capture(paper: str, analysis: str, schema: str = CAPTURE_SCHEMA) -> contextlib.AbstractContextManager[Capture]:
    """Record every fetch in the block as part of `analysis` of `paper`."""
    _install()
    return active.during(Capture(paper, analysis, schema))


def restrictions(connection: Any, paper: str, schema: str = CAPTURE_SCHEMA) -> list[tuple[str, str]]:
    """Every recorded ("schema.table", condition) of `paper`, all analyses, in the order recorded."""
    quote = connection.adapter.quote_identifier
    rows = connection.query(
        f"SELECT {quote('table_schema')}, {quote('table_name')}, {quote('restriction')} FROM "
        f"{_table(connection, schema)} WHERE {quote('paper')} = %s ORDER BY {quote('seq')}", args=(paper,)).fetchall()
    return [(f"{s}.{t}", str(r)) for s, t, r in rows]


def forget(connection: Any, paper: str, analysis: str | None = None, schema: str = CAPTURE_SCHEMA) -> int:
    """Delete the captures of `paper` (or of one analysis of it); returns how many restrictions went. An unknown
    paper or analysis is a DjshareError naming what was captured."""
    quote = connection.adapter.quote_identifier
    server = f"{connection.conn_info['host']}:{connection.conn_info['port']}"
    if not connection.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND "
                            "table_name = %s", args=(schema, TABLE)).fetchone()[0]:
        raise DjshareError(active.no_captures(server, schema))
    condition, args = (f"{quote('paper')} = %s", (paper,)) if analysis is None else (
        f"{quote('paper')} = %s AND {quote('analysis')} = %s", (paper, analysis))
    gone = int(connection.query(f"DELETE FROM {_table(connection, schema)} WHERE {condition}", args=args).rowcount)
    if not gone:
        known = connection.query(f"SELECT DISTINCT {quote('paper')}, {quote('analysis')} FROM "
                                 f"{_table(connection, schema)} ORDER BY 1, 2").fetchall()
        raise DjshareError(active.unknown_capture(paper, analysis, [(str(p), str(a)) for p, a in known], server))
    return gone


def _opened(connection: Any) -> list[Capture]:
    """The captures open on the server for the account of `connection`, in the schemas this process follows."""
    found = []
    backend = connection.adapter.backend
    for schema in sorted(_following):
        if not connection.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND "
                                "table_name = %s", args=(schema, OPEN_TABLE)).fetchone()[0]:
            continue  # nothing was ever started in this schema
        rows = connection.query(f"SELECT paper, analysis FROM {_table(connection, schema, OPEN_TABLE)} WHERE "
                                f"account = {ACCOUNT[backend]}").fetchall()
        found += [Capture(str(paper), str(analysis), schema) for paper, analysis in rows]
    return found


def follow(schema: str = CAPTURE_SCHEMA) -> None:
    """Record this process's fetches into the captures opened on the server (`djshare export start`) for the
    account the process is connected as; checked at each fetch, so `djshare export stop` takes effect at once."""
    _install()
    _following.add(schema)


def unfollow(schema: str = CAPTURE_SCHEMA) -> None:
    _following.discard(schema)


__all__ = ["ACCOUNT", "OPEN_TABLE", "TABLE", "capture", "close_captures", "declaration", "follow", "forget",
           "open_capture", "open_captures", "open_declaration", "recorded", "restrictions", "start", "stop",
           "summaries", "unfollow"]

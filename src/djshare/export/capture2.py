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

`restrictions()` gives the recorded (table, condition) pairs in the form `djshare.export.pg` and
`djshare.export.tables` take; `recorded()` (and `djshare tables write|copy --paper`) reads them without
DataJoint.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends.address import ServerAddress
from djshare.backends.mariadb import Session
from djshare.defaults import CAPTURE_SCHEMA
from djshare.errors import ConfigurationError, DjshareError
from djshare.export import active, decided

TABLE = "export_restriction"
OPEN_TABLE = "export_open"
ACCOUNT = {"mysql": "CURRENT_USER()", "mariadb": "CURRENT_USER()", "postgresql": "current_user"}  # by backend
_following: set[str] = set()  # capture schemas whose open captures this process records into
_install_lock = threading.Lock()
_installed = {"done": False}
_declared: set[tuple[int, str]] = set()  # (connection id, schema) whose capture table exists


def declaration(backend: str, schema: str) -> list[str]:
    """The statements that create the capture table on a `mysql` or `postgresql` server."""
    if backend == "postgresql":
        return [f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
                f'CREATE TABLE IF NOT EXISTS "{schema}"."{TABLE}" (paper varchar(64) NOT NULL, '
                "analysis varchar(64) NOT NULL, seq bigserial, table_schema varchar(64) NOT NULL, "
                "table_name varchar(64) NOT NULL, restriction text NOT NULL, captured_at timestamptz NOT NULL "
                "DEFAULT now(), PRIMARY KEY (paper, analysis, seq))"]
    return [f"CREATE DATABASE IF NOT EXISTS `{schema}`",
            f"CREATE TABLE IF NOT EXISTS `{schema}`.`{TABLE}` (`paper` varchar(64) NOT NULL, "
            "`analysis` varchar(64) NOT NULL, `seq` int unsigned NOT NULL AUTO_INCREMENT, "
            "`table_schema` varchar(64) NOT NULL, `table_name` varchar(64) NOT NULL, `restriction` longtext NOT NULL, "
            "`captured_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (`paper`, `analysis`, `seq`), "
            "KEY (`seq`)) COMMENT='djshare: rows each analysis of a paper fetched (djshare export)'"]


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


@contextlib.contextmanager
def _server(address: ServerAddress) -> Iterator[tuple[Any, Callable[[str], str]]]:
    """A session on the server at `address` (MariaDB or PostgreSQL) and how it quotes a qualified name."""
    if address.backend == "postgresql":
        with postgres.session(address) as pg:
            yield pg, lambda qualified: ".".join(f'"{part}"' for part in qualified.split("."))
    else:
        with Session(address) as session:
            yield session, lambda qualified: ".".join(f"`{part}`" for part in qualified.split("."))


def _exists(session: Any, schema: str, table: str) -> bool:
    return bool(session.rows("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND "
                             "table_name = %s", (schema, table))[0][0])


def recorded(address: ServerAddress, paper: str, schema: str = CAPTURE_SCHEMA) -> list[tuple[str, str]]:
    """`restrictions()` read without DataJoint, from the capture schema on the server at `address` (MariaDB or
    PostgreSQL). ConfigurationError when nothing was recorded for `paper`."""
    with _server(address) as (session, quoted):
        rows = session.rows(f"SELECT table_schema, table_name, restriction FROM {quoted(f'{schema}.{TABLE}')} WHERE "
                            "paper = %s ORDER BY seq", (paper,)) if _exists(session, schema, TABLE) else []
    if not rows:
        raise ConfigurationError(f"Nothing was captured for paper {paper!r} in schema {schema} on {address.host}: "
                                 "record an analysis with djshare.export.capture2.capture(...) first.")
    return [(f"{s}.{t}", str(r)) for s, t, r in rows]


def open_declaration(backend: str, schema: str) -> list[str]:
    """The statements that create the table of captures opened on the server (`export_open`)."""
    if backend == "postgresql":
        return [f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
                f'CREATE TABLE IF NOT EXISTS "{schema}"."{OPEN_TABLE}" (account varchar(300) NOT NULL, '
                "paper varchar(64) NOT NULL, analysis varchar(64) NOT NULL, started_at timestamptz NOT NULL "
                "DEFAULT now(), PRIMARY KEY (account, paper, analysis))"]
    return [f"CREATE DATABASE IF NOT EXISTS `{schema}`",
            f"CREATE TABLE IF NOT EXISTS `{schema}`.`{OPEN_TABLE}` (`account` varchar(300) NOT NULL, "
            "`paper` varchar(64) NOT NULL, `analysis` varchar(64) NOT NULL, "
            "`started_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (`account`, `paper`, `analysis`)) "
            "COMMENT='djshare: captures open for a database account (djshare tables start/stop)'"]


def open_capture(address: ServerAddress, paper: str, analysis: str, schema: str = CAPTURE_SCHEMA) -> bool:
    """Open a capture on the server for the account of `address`; False if it was open already. Processes of that
    account that called `follow()` record their fetches into it until `close_captures`."""
    with _server(address) as (session, quoted):
        for statement in (*declaration(address.backend, schema), *open_declaration(address.backend, schema)):
            session.execute(statement)
        ignore, conflict = ("", " ON CONFLICT DO NOTHING") if address.backend == "postgresql" else (" IGNORE", "")
        return bool(session.execute(
            f"INSERT{ignore} INTO {quoted(f'{schema}.{OPEN_TABLE}')} (account, paper, analysis) VALUES "
            f"({ACCOUNT[address.backend]}, %s, %s){conflict}", (paper, analysis)))


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


def summaries(address: ServerAddress, schema: str = CAPTURE_SCHEMA) -> list[tuple[str, str, int, Any, Any]]:
    """Per paper and analysis: how many restrictions were recorded, first and last."""
    with _server(address) as (session, quoted):
        if not _exists(session, schema, TABLE):
            return []
        return [(str(p), str(a), int(n), first, last) for p, a, n, first, last in session.rows(
            f"SELECT paper, analysis, count(*), min(captured_at), max(captured_at) FROM {quoted(f'{schema}.{TABLE}')} "
            "GROUP BY paper, analysis ORDER BY paper, analysis")]


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
    """Record this process's fetches into the captures opened on the server (`djshare tables start`) for the
    account the process is connected as; checked at each fetch, so `djshare tables stop` takes effect at once."""
    _install()
    _following.add(schema)


def unfollow(schema: str = CAPTURE_SCHEMA) -> None:
    _following.discard(schema)

"""Capture: record which rows an analysis fetched, from any DataJoint table, without a mixin.

    with djshare.export.capture("paper1", "figure2"):
        data = (Session * Scan & "subject='m1'").fetch()

While a capture is active (in this thread or task: captures are kept in a context variable, so captures
in parallel threads stay apart and several may be active at once), every `fetch`/`fetch1` records, for
each base table behind the fetched query, the SQL condition selecting the rows of that table that
decide the result: `(its primary key) IN (SELECT ... FROM <the query's tables> WHERE ...)`. The records go to
the table `export_restriction` in the capture schema (default `djshare_export`) on the same server, so a
lab can see and manage them; several analyses of one paper combine.

The hook wraps DataJoint's Fetch and Fetch1 once per process and does nothing when no capture is active.

Captures can also be opened on the server, for a database account, by `djshare export start PAPER ANALYSIS`
(rows of `export_open`) and closed by `djshare export stop PAPER`: a process that called `follow()` records its
fetches into every capture open for the account it is connected as, until the capture is stopped. This is
for notebooks and scripts one does not want to edit: one line, `djshare.export.follow()`, in a lab's
pipeline package does it for all of them.

The conditions (`djshare.export.decided`) select the rows that decide the result, not only those in it: the rows
of tables behind semijoins (`&`), antijoins (`-`), subqueries, joins and aggregations too, with renamed key
attributes mapped back to each table's own columns. Restrictions by query expressions are seen from the moment the
hook is installed (`capture`, `start` or `follow`); a restriction built before that, or a SQL string with a subquery
of its own, is logged as a warning, since the rows its subquery reads cannot be captured.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from dataclasses import dataclass
from typing import Any

import datajoint as dj
from datajoint.fetch import Fetch, Fetch1

from djshare.defaults import CAPTURE_SCHEMA
from djshare.export import active, capture_tables, decided
from djshare.export.capture_tables import OPEN_TABLE, TABLE, CaptureSummary  # noqa: F401 - importable here for one release

DEFAULT_SCHEMA = CAPTURE_SCHEMA
ACCOUNT = capture_tables.ACCOUNT["mysql"]
_install_lock = threading.Lock()
_installed = {"done": False}
_following: set[str] = set()  # capture schemas whose open captures this process records into
_declared: set[tuple[int, str]] = set()  # (connection id, schema) whose capture table exists


def declare(connection: dj.Connection, schema: str = DEFAULT_SCHEMA) -> None:
    """Create the capture tables in `schema` on the server of `connection` (if missing)."""
    for statement in (*capture_tables.declaration("mysql", schema), *capture_tables.open_declaration("mysql", schema)):
        connection.query(statement)


@dataclass
class Capture:
    paper: str
    analysis: str
    schema: str = DEFAULT_SCHEMA

    def record(self, expression: Any) -> None:
        connection = expression.connection
        found = decided.of(expression)
        active.warn_unseen(found.unseen)
        rows = []
        for full_name, condition in found.conditions:
            schema, table = (part.strip("`") for part in full_name.split("."))
            if schema != self.schema:
                rows.append((self.paper, self.analysis, schema, table, condition))
        if rows:
            if (id(connection), self.schema) not in _declared:  # once per connection, not at every fetch
                for statement in capture_tables.declaration("mysql", self.schema):
                    connection.query(statement)
                _declared.add((id(connection), self.schema))
            for row in rows:
                connection.query(f"INSERT INTO `{self.schema}`.`{TABLE}` (`paper`, `analysis`, `table_schema`, "
                                 "`table_name`, `restriction`) VALUES (%s, %s, %s, %s, %s)", args=row)


def _install() -> None:
    with _install_lock:
        if _installed["done"]:
            return
        decided.watch(decided.installed_line())
        for cls in (Fetch, Fetch1):
            original = cls.__call__

            def call(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
                result = __original(self, *args, **kwargs)
                for capture in (*active.active(), *_opened(self._expression.connection)):
                    capture.record(self._expression)
                return result

            cls.__call__ = call
        _installed["done"] = True


def _opened(connection: dj.Connection) -> list[Capture]:
    """The captures open on the server for the account of `connection`, in the schemas this process follows."""
    found = []
    for schema in sorted(_following):
        try:
            rows = connection.query(f"SELECT `paper`, `analysis` FROM `{schema}`.`{OPEN_TABLE}` "
                                    f"WHERE `account` = {ACCOUNT}").fetchall()
        except dj.errors.MissingTableError:
            continue  # nothing was ever started in this schema
        found += [Capture(str(paper), str(analysis), schema) for paper, analysis in rows]
    return found


def follow(schema: str = DEFAULT_SCHEMA) -> None:
    """Record this process's fetches into the captures opened on the server by `djshare export start` for the
    account the process is connected as (checked at each fetch, so `djshare export stop` takes effect at once)."""
    _install()
    _following.add(schema)


def unfollow(schema: str = DEFAULT_SCHEMA) -> None:
    _following.discard(schema)


def start(paper: str, analysis: str, schema: str = DEFAULT_SCHEMA) -> contextvars.Token[tuple[active.Recorder, ...]]:
    """Start capturing (for notebooks); pass the returned token to `stop`."""
    _install()
    return active.start(Capture(paper, analysis, schema))


stop = active.stop


def capture(paper: str, analysis: str, schema: str = DEFAULT_SCHEMA) -> contextlib.AbstractContextManager[Capture]:
    """Record every fetch in the block as part of `analysis` of `paper`."""
    _install()
    return active.during(Capture(paper, analysis, schema))

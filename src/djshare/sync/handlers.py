"""Handlers: what to do with each action, as in the seed's templates.

A handler's method is found by the action's kind and branch: `added_students(action)`,
`changed_students(action)`, `removed_students(action)`; an action without such a method goes to
`fallback(action)`, which refuses by default. `run(actions)` calls them in turn and then `finish()`.

`ApplyToTables` is the ready handler: it makes tables on one server, MariaDB or PostgreSQL (the right side,
"what we have"), like the left side: deletes children before parents, inserts parents before children,
updates changed columns, all in one transaction, or with `dry_run` only says what it would do.
"""

from __future__ import annotations

import contextlib
import graphlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from djshare import backends
from djshare.backends.catalog import ForeignKey, TableInfo
from djshare.backends.mariadb_rows import MariaDB
from djshare.errors import DjshareError
from djshare.sync.actions import KINDS, Action, Binary
from djshare.sync.sources import Table


class UnhandledAction(DjshareError):
    pass


def method_name(kind: str, branch: str) -> str:
    """The handler method for actions of `kind` on `branch`: `added_students`; a branch name is made an
    identifier (`lab.Session` -> `lab_session`)."""
    return f"{kind}_{re.sub(r'[^0-9a-zA-Z_]', '_', branch).lower()}"


class Handler:
    """Subclass and define `<kind>_<branch>` methods (kind: added, changed, removed) and, if you like, `fallback`."""

    def handle(self, action: Action) -> Any:
        method = getattr(self, method_name(action.kind, action.branch), None)
        return method(action) if callable(method) else self.fallback(action)

    def fallback(self, action: Action) -> Any:
        raise UnhandledAction(f"{type(self).__name__} has no method {method_name(action.kind, action.branch)} "
                              "and no fallback: define one of them.")

    def finish(self) -> None:
        """Called once after the last action."""

    def run(self, actions: Iterable[Action]) -> dict[str, int]:
        """Handle each action, then finish; returns how many actions of each kind there were."""
        seen: Counter[str] = Counter()
        for action in actions:
            self.handle(action)
            seen[action.kind] += 1
        self.finish()
        return {kind: seen[kind] for kind in KINDS}


@dataclass
class Plan:
    """What ApplyToTables does, per table, in order."""

    deletes: list[tuple[str, int]] = field(default_factory=list)
    inserts: list[tuple[str, int]] = field(default_factory=list)
    updates: list[tuple[str, int]] = field(default_factory=list)

    def lines(self, verb: str = "") -> list[str]:
        out = []
        for what, steps in (("delete", self.deletes), ("insert", self.inserts), ("update", self.updates)):
            out += [f"{verb}{what} {rows} rows {'from' if what == 'delete' else 'in' if what == 'update' else 'into'} "
                    f"{table}" for table, rows in steps if rows]
        return out


class ApplyToTables(Handler):
    """Make tables on one server like the left side of a diff. `tables` maps each branch to a table on the
    same server (its `address`); actions must carry rows (a diff run for applying does that)."""

    def __init__(self, tables: Mapping[str, Table], dry_run: bool = False,
                 say: Callable[[str], None] | None = None) -> None:
        addresses = {t.address for t in tables.values()}
        if len(addresses) != 1:
            raise DjshareError("ApplyToTables changes tables on one server: give tables of one server.")
        self.tables = dict(tables)
        self.address = addresses.pop()
        self.dry_run = dry_run
        self.say = say or print
        self.actions: dict[str, list[Action]] = {branch: [] for branch in tables}
        self.plan = Plan()
        self.sql = MariaDB()

    def fallback(self, action: Action) -> None:
        if action.branch not in self.tables:
            raise UnhandledAction(f"No table to apply branch {action.branch!r} to: give one for it.")
        if action.kind != "removed" and action.row is None:
            raise DjshareError(f"The {action.kind} action for {action.key} has no row values: diff with "
                               "with_rows=True to apply.")
        binary = [c for c, v in (action.row or {}).items() if isinstance(v, Binary)]
        if binary:
            raise DjshareError(f"The row of {action.key} has summaries, not values, for {', '.join(binary)}.")
        self.actions[action.branch].append(action)

    def finish(self) -> None:
        with contextlib.ExitStack() as stack:
            session = stack.enter_context(backends.session(self.address))
            self.sql = backends.dialect(self.address.backend)
            info = {b: self.sql.read_table(session, t.schema, t.name) for b, t in self.tables.items()}
            keys = self.sql.foreign_keys(session, sorted({t.schema for t in info.values()}))
            order = _parents_first(keys, info)
            try:
                with session.transaction("applying a diff"):
                    for branch in reversed(order):
                        self._delete(session, info[branch], [a for a in self.actions[branch] if a.kind == "removed"])
                    for branch in order:
                        self._insert(session, info[branch], [a for a in self.actions[branch] if a.kind == "added"])
                    for branch in order:
                        self._update(session, info[branch], [a for a in self.actions[branch] if a.kind == "changed"])
                    if self.dry_run:
                        raise _DryRun  # every statement ran; now undo them all
            except _DryRun:
                pass
        for line in self.plan.lines("would " if self.dry_run else ""):
            self.say(line)

    def _where(self, table: TableInfo) -> str:
        return " AND ".join(f"{self.sql.name(c)} = %s" for c in table.primary_key)

    def _delete(self, session: Any, table: TableInfo, actions: list[Action]) -> None:
        name = self.sql.table(table)
        for action in actions:
            session.execute(f"DELETE FROM {name} WHERE {self._where(table)}",
                            [action.key[c] for c in table.primary_key], doing=f"deleting from {name}")
        self.plan.deletes.append((name, len(actions)))

    def _insert(self, session: Any, table: TableInfo, actions: list[Action]) -> None:
        known, name = {c.name for c in table.columns}, self.sql.table(table)
        for action in actions:
            row = {c: v for c, v in (action.row or {}).items() if c in known}
            columns = ", ".join(self.sql.name(c) for c in row)
            session.execute(f"INSERT INTO {name} ({columns}) VALUES ({', '.join(['%s'] * len(row))})",
                            list(row.values()), doing=f"inserting into {name}")
        self.plan.inserts.append((name, len(actions)))

    def _update(self, session: Any, table: TableInfo, actions: list[Action]) -> None:
        known, name = {c.name for c in table.columns}, self.sql.table(table)
        for action in actions:
            values = {c: (action.row or {})[c] for c in action.changes if c in known}
            sets = ", ".join(f"{self.sql.name(c)} = %s" for c in values)
            session.execute(f"UPDATE {name} SET {sets} WHERE {self._where(table)}",
                            [*values.values(), *(action.key[c] for c in table.primary_key)], doing=f"updating {name}")
        self.plan.updates.append((name, len(actions)))


class _DryRun(Exception):
    """Raised inside the apply transaction of a dry run, so that it rolls back."""


def _parents_first(keys: list[ForeignKey], info: Mapping[str, TableInfo]) -> list[str]:
    """Branches ordered so that a table comes after the tables it references."""
    branch_of = {(t.schema, t.name): b for b, t in info.items()}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter({b: set() for b in info})
    for fk in keys:
        if fk.child in branch_of and fk.parent in branch_of and fk.child != fk.parent:
            sorter.add(branch_of[fk.child], branch_of[fk.parent])
    order: list[str] = []
    sorter.prepare()
    while sorter.is_active():  # ready tables by name, so the order is the same every run
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order

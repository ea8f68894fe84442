"""Which rows a finished deletion removes: the entity, its part rows, and every row in other tables that
depends on it through foreign keys (as DataJoint's cascading delete would), but never a row of an
outbound table. Pure: takes the foreign-key graph, returns the DELETE conditions, children first.

An outbound row that references a row to be deleted means some subscriber still holds that row: the
foreign key then refuses the DELETE, and the whole batch rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from djshare.backends.catalog import ForeignKey
from djshare.backends.mariadb import quote_name

Table = tuple[str, str]  # (schema, table)


def descendants(root: Table, foreign_keys: Iterable[ForeignKey], excluded: set[Table]) -> list[Table]:
    """Tables that depend on `root` (root first), parents always before their children."""
    children: dict[Table, list[Table]] = {}
    for fk in foreign_keys:
        if fk.child not in excluded and fk.child != fk.parent:
            children.setdefault(fk.parent, []).append(fk.child)
    order: list[Table] = []
    state: dict[Table, str] = {}

    def visit(table: Table) -> None:  # depth-first; DataJoint's dependency graphs have no cycles
        if state.get(table) == "done":
            return
        state[table] = "open"
        for child in children.get(table, []):
            if state.get(child) != "open":
                visit(child)
        state[table] = "done"
        order.append(table)

    visit(root)
    return list(reversed(order))


def deletions(root: Table, root_condition: bytes, foreign_keys: Iterable[ForeignKey], excluded: set[Table],
              quote: Callable[..., str] = quote_name) -> list[tuple[str, bytes]]:
    """(table, WHERE condition) for every DELETE of the cascade, children before parents (`quote`: the backend's
    quoting of names)."""
    keys = list(foreign_keys)
    tables = descendants(root, keys, excluded)
    inside = set(tables)
    conditions: dict[Table, bytes] = {root: root_condition}
    for table in tables[1:]:
        parts = []
        for fk in keys:
            if fk.child == table and fk.parent in inside and fk.parent in conditions:
                mine = ", ".join(quote(c) for c, _ in fk.columns)
                theirs = ", ".join(quote(p) for _, p in fk.columns)
                parts.append(f"({mine}) IN (SELECT {theirs} FROM {quote(*fk.parent)} WHERE ".encode()
                             + conditions[fk.parent] + b")")
        conditions[table] = b"(" + b" OR ".join(parts) + b")"
    return [(quote(*table), conditions[table]) for table in reversed(tables)]

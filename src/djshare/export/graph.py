"""Which tables an export involves, and in what order (pure).

Rules of the closure (docs: README, Export): every row a captured restriction selects; every row those
rows reference through foreign keys, renamed or not, recursively (ancestors); and, because a DataJoint
master entity is incomplete without its parts, every part row of a selected master (and, again, the rows
those part rows reference). A part row selected on its own brings its master through its foreign key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from djshare.backends.catalog import ForeignKey

Table = tuple[str, str]  # (schema, table)


def master_of(table: Table) -> Table | None:
    """DataJoint names a part table `master__part` (the master keeps its tier prefix)."""
    name = table[1]
    body = name.lstrip("_#")
    if "__" not in body:
        return None
    return table[0], name[: len(name) - len(body)] + body[: body.rindex("__")]


@dataclass(frozen=True)
class Graph:
    tables: tuple[Table, ...]  # parents before children
    edges: tuple[ForeignKey, ...]  # foreign keys among `tables`
    parts: tuple[tuple[Table, Table], ...]  # (part, master) among `tables`


def plan(seeds: Iterable[Table], foreign_keys: Iterable[ForeignKey], existing: Iterable[Table]) -> Graph:
    """Close `seeds` over parents (foreign keys) and parts of masters; order parents first."""
    keys = list(foreign_keys)
    known = set(existing)
    parents: dict[Table, set[Table]] = {}
    for fk in keys:
        parents.setdefault(fk.child, set()).add(fk.parent)
    parts_of: dict[Table, set[Table]] = {}
    for table in known:
        master = master_of(table)
        if master is not None and master in known:
            parts_of.setdefault(master, set()).add(table)
    chosen: set[Table] = set()
    todo = list(seeds)
    while todo:
        table = todo.pop()
        if table in chosen:
            continue
        chosen.add(table)
        todo += parents.get(table, set()) | parts_of.get(table, set())
    order: list[Table] = []
    done: set[Table] = set()

    def visit(table: Table) -> None:
        if table in done:
            return
        done.add(table)
        for parent in sorted(parents.get(table, set()) & chosen):
            visit(parent)
        order.append(table)

    for table in sorted(chosen):
        visit(table)
    edges = tuple(fk for fk in keys if fk.child in chosen and fk.parent in chosen)
    part_pairs = tuple(sorted((p, m) for m, ps in parts_of.items() if m in chosen for p in ps if p in chosen))
    return Graph(tuple(order), edges, part_pairs)

"""Datastores: several branches (tables, entity types) of one place, diffed branch by branch, with the seed's
operators as sugar:

    need = Datastore({"students": csv_file("roster.csv", key=["id"])})
    have = Datastore({"students": Table(address, "school", "student")}, handler=ApplyToTables(...))
    need - have       # the actions (an iterator)
    need > have       # print them
    need >> have      # apply them with the right side's handler ("what we have" knows how to change itself)

The functions `diff` and `sync` are the API; the operators call them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from djshare.errors import DjshareError
from djshare.sync.actions import Action
from djshare.sync.diff import compare
from djshare.sync.handlers import Handler
from djshare.sync.sources import Source


class Datastore:
    def __init__(self, branches: Mapping[str, Source], handler: Handler | None = None) -> None:
        self.branches = dict(branches)
        self.handler = handler

    def __sub__(self, other: Datastore) -> Iterator[Action]:
        return diff(self, other)

    def __gt__(self, other: Datastore) -> bool:
        """Print the differences; true if there were any."""
        found = False
        for action in diff(self, other):
            print(action.text())
            found = True
        return found

    def __rshift__(self, other: Datastore) -> dict[str, int]:
        if other.handler is None:
            raise DjshareError("The right-hand datastore has no handler: give it one (handler=...) to apply.")
        return sync(self, other, other.handler)


def diff(left: Datastore, right: Datastore, with_rows: bool = False, summarize_binary: bool = True) -> Iterator[Action]:
    """Actions that make `right` like `left`, branch by branch (the branches both have; a branch on one side
    only is an error)."""
    alone = sorted(set(left.branches) ^ set(right.branches))
    if alone:
        raise DjshareError(f"Branches {', '.join(alone)} are on one side only: give both datastores the same "
                           "branches.")
    for branch, source in left.branches.items():
        yield from compare(source, right.branches[branch], branch, summarize_binary=summarize_binary,
                           with_rows=with_rows)


def sync(left: Datastore, right: Datastore, handler: Handler) -> dict[str, int]:
    """Hand every action that makes `right` like `left` to `handler` (with whole rows, to apply them)."""
    return handler.run(diff(left, right, with_rows=True, summarize_binary=False))

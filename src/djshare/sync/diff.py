"""The diff engine: bisect key ranges where the two servers' segment checksums differ, and compare rows
only inside small differing segments. Exact: a row counts as changed when any byte of any column differs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from djshare.sync.actions import Action
from djshare.sync.segments import Segment, Summary, differing, leaf, split
from djshare.sync.sql_side import TableSide

T = TypeVar("T")
PARTS = 32  # segments per split
LEAF_ROWS = 512  # compare row by row at or below this many rows


def diff(left: TableSide, right: TableSide, branch: str, parts: int = PARTS, leaf_rows: int = LEAF_ROWS,
         summarize_binary: bool = True) -> Iterator[Action]:
    """Actions that make `right` like `left`: added (only in left), removed (only in right), changed.

    The two servers work at the same time: each level's queries go to both at once.
    """
    whole = Segment(None, None)
    with ThreadPoolExecutor(2) as pool:
        def both(call: Callable[[TableSide], T]) -> tuple[T, T]:
            first, second = pool.submit(call, left), pool.submit(call, right)
            return first.result(), second.result()

        rows = both(lambda side: side.count(whole))
        # the whole table is never summed as one: it is cut first, so one pass over each side finds the
        # differing segments (identical tables end there too)
        work: list[tuple[Segment, Summary, Summary]] = [(whole, Summary(rows[0], -1), Summary(rows[1], -2))]
        while work:
            segment, mine, theirs = work.pop()
            if mine == theirs:
                continue
            pieces: list[Segment] = []
            if not leaf(mine, theirs, leaf_rows):
                bigger, count = (left, mine.rows) if mine.rows >= theirs.rows else (right, theirs.rows)
                pieces = split(segment, bigger.boundaries(segment, count, parts))
            if len(pieces) < 2:
                yield from _compare_rows(left, right, segment, branch, summarize_binary, both)
                continue
            ours, others = both(lambda side: side.summaries(pieces))  # noqa: B023 - called at once
            work += [(pieces[i], ours[i], others[i]) for i in reversed(differing(ours, others))]


def _compare_rows(left: TableSide, right: TableSide, segment: Segment, branch: str, summarize_binary: bool,
                  both: Callable[[Callable[[TableSide], Any]], tuple[Any, Any]]) -> Iterator[Action]:
    mine, theirs = both(lambda side: side.row_hashes(segment))
    names = left.table.primary_key
    changed = sorted(k for k in mine.keys() & theirs.keys() if mine[k][0] != theirs[k][0])
    columns = [c.name for c in left.table.columns]
    old = right.values(changed, summarize_binary) if changed else {}
    new = left.values(changed, summarize_binary) if changed else {}
    for key in sorted(mine.keys() | theirs.keys()):
        key_values = dict(zip(names, (mine.get(key) or theirs[key])[1], strict=True))
        if key not in theirs:
            yield Action("added", branch, key_values)
        elif key not in mine:
            yield Action("removed", branch, key_values)
        elif key in old:
            changes = {c: (a, b) for c, a, b in zip(columns, new[key], old[key], strict=True) if a != b}
            yield Action("changed", branch, key_values, changes)

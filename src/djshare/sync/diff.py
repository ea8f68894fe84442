"""The diff engine: bisect key ranges where the two servers' segment checksums differ, and compare rows
only inside small differing segments. Exact: a row counts as changed when any byte of any column differs."""

from __future__ import annotations

from collections.abc import Iterator

from djshare.sync.actions import Action
from djshare.sync.segments import Segment, Summary, differing, leaf, split
from djshare.sync.sql_side import TableSide

PARTS = 32  # segments per split
LEAF_ROWS = 512  # compare row by row at or below this many rows


def diff(left: TableSide, right: TableSide, branch: str, parts: int = PARTS, leaf_rows: int = LEAF_ROWS,
         summarize_binary: bool = True) -> Iterator[Action]:
    """Actions that make `right` like `left`: added (only in left), removed (only in right), changed."""
    whole = Segment(None, None)
    work: list[tuple[Segment, Summary, Summary]] = [(whole, left.summaries([whole])[0], right.summaries([whole])[0])]
    while work:
        segment, mine, theirs = work.pop()
        if mine == theirs:
            continue
        pieces: list[Segment] = []
        if not leaf(mine, theirs, leaf_rows):
            bigger, rows = (left, mine.rows) if mine.rows >= theirs.rows else (right, theirs.rows)
            pieces = split(segment, bigger.boundaries(segment, rows, parts))
        if len(pieces) < 2:
            yield from _compare_rows(left, right, segment, branch, summarize_binary)
            continue
        ours, others = left.summaries(pieces), right.summaries(pieces)
        work += [(pieces[i], ours[i], others[i]) for i in reversed(differing(ours, others))]


def _compare_rows(left: TableSide, right: TableSide, segment: Segment, branch: str,
                  summarize_binary: bool) -> Iterator[Action]:
    mine, theirs = left.row_hashes(segment), right.row_hashes(segment)
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

"""The diff engine: bisect key ranges where the two servers' segment checksums differ, and compare rows
only inside small differing segments. Exact: a row counts as changed when any byte of any column differs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from djshare import backends
from djshare.backends.catalog import TableInfo
from djshare.errors import DjshareError
from djshare.sync.actions import Action
from djshare.sync.segments import Segment, Summary, differing, leaf, split
from djshare.sync.sources import Query, Rows, Source, Table
from djshare.sync.sql_side import TableSide
from djshare.sync.stream import merge, typed

T = TypeVar("T")
Progress = Callable[[int, int], None]
PARTS = 32  # segments per split
LEAF_ROWS = 512  # compare row by row at or below this many rows


def diff(left: TableSide, right: TableSide, branch: str, parts: int = PARTS, leaf_rows: int = LEAF_ROWS,
         summarize_binary: bool = True, with_rows: bool = False, progress: Progress | None = None) -> Iterator[Action]:
    """Actions that make `right` like `left`: added (only in left), removed (only in right), changed.

    The two servers work at the same time: each level's queries go to both at once. `progress(done, total)`
    hears how many rows (of the bigger side) are settled: in equal segments or compared row by row.
    """
    report = progress or (lambda done, total: None)
    whole = Segment(None, None)
    with ThreadPoolExecutor(2) as pool:
        def both(call: Callable[[TableSide], T]) -> tuple[T, T]:
            first, second = pool.submit(call, left), pool.submit(call, right)
            return first.result(), second.result()

        # the whole table is never summed as one: it is cut first, so one pass over each side finds the
        # differing segments (identical tables end there too); integer keys are cut without even counting
        work: list[tuple[Segment, Summary, Summary]] = []
        cuts = left.integer_cuts(whole, parts)
        if cuts:
            pieces: list[Segment] = split(whole, cuts)
            ours, others = both(lambda side: side.summaries(pieces))
            sizes = [max(a.rows, b.rows) for a, b in zip(ours, others, strict=True)]
            different = differing(ours, others)
            total, done = sum(sizes), sum(n for i, n in enumerate(sizes) if i not in different)
            work = [(pieces[i], ours[i], others[i]) for i in reversed(different)]
        else:
            rows = both(lambda side: side.count(whole))
            total, done = max(rows), 0
            work = [(whole, Summary(rows[0], -1), Summary(rows[1], -2))]
        report(done, total)
        while work:
            segment, mine, theirs = work.pop()
            if mine == theirs:
                continue
            pieces = []
            if not leaf(mine, theirs, leaf_rows):
                bigger, count = (left, mine.rows) if mine.rows >= theirs.rows else (right, theirs.rows)
                pieces = split(segment, bigger.boundaries(segment, count, parts))
            if len(pieces) < 2:
                yield from _compare_rows(left, right, segment, branch, summarize_binary, with_rows, both)
                done += max(mine.rows, theirs.rows)
                report(done, total)
                continue
            ours, others = both(lambda side: side.summaries(pieces))  # noqa: B023 - called at once
            different = differing(ours, others)
            done += sum(max(a.rows, b.rows) for i, (a, b) in enumerate(zip(ours, others, strict=True))
                        if i not in different)
            report(done, total)
            for i in reversed(different):
                if (ours[i].rows, others[i].rows) == (mine.rows, theirs.rows):  # no progress: compare its rows
                    yield from _compare_rows(left, right, pieces[i], branch, summarize_binary, with_rows, both)
                else:
                    work.append((pieces[i], ours[i], others[i]))


def _compare_rows(left: TableSide, right: TableSide, segment: Segment, branch: str, summarize_binary: bool,
                  with_rows: bool, both: Callable[[Callable[[TableSide], Any]], tuple[Any, Any]]) -> Iterator[Action]:
    mine, theirs = both(lambda side: side.row_hashes(segment))
    names = left.table.primary_key
    changed = sorted(k for k in mine.keys() & theirs.keys() if mine[k][0] != theirs[k][0])
    added = sorted(mine.keys() - theirs.keys())
    columns = [c.name for c in left.table.columns]
    old = right.values(changed, summarize_binary) if changed else {}
    new = left.values(changed, summarize_binary) if changed else {}
    full = left.values(added + changed, summarize_binary=False) if with_rows and (added or changed) else {}
    for key in sorted(mine.keys() | theirs.keys()):
        key_values = dict(zip(names, (mine.get(key) or theirs[key])[1], strict=True))
        row = dict(zip(columns, full[key], strict=True)) if key in full else None
        if key not in theirs:
            yield Action("added", branch, key_values, row=row)
        elif key not in mine:
            yield Action("removed", branch, key_values)
        elif key in old:
            changes = {c: (a, b) for c, a, b in zip(columns, new[key], old[key], strict=True) if a != b}
            yield Action("changed", branch, key_values, changes, row=row)


def compare(left: Source, right: Source, branch: str, summarize_binary: bool = True,
            with_rows: bool = False, progress: Progress | None = None) -> Iterator[Action]:
    """Actions that make `right` like `left`, whatever the two sources are. Two tables on the same backend
    (MariaDB, or PostgreSQL) are compared inside their servers (bisection over segment checksums); any other pair
    (MariaDB with PostgreSQL, a query, a CSV file, rows) streams both sides in key order and merges them.
    `with_rows` puts the whole left row into added and changed actions (to apply them)."""
    with contextlib.ExitStack() as stack:
        infos: dict[int, TableInfo] = {}
        streams: dict[int, Callable[[], Iterator[dict[str, Any]]]] = {}
        sides: dict[int, TableSide] = {}
        for source in (left, right):
            if isinstance(source, Table):
                session = stack.enter_context(backends.session(source.address))
                sql = backends.dialect(source.address.backend)
                side = TableSide(session, sql.read_table(session, source.schema, source.name), source.where, sql)
                infos[id(source)], sides[id(source)], streams[id(source)] = side.table, side, side.ordered
            elif isinstance(source, Query):
                streams[id(source)] = source.rows
        if (id(left) in sides and id(right) in sides and type(sides[id(left)].sql) is type(sides[id(right)].sql)
                and _same_order(sides[id(left)].table, sides[id(right)].table)):
            ours, theirs = sides[id(left)], sides[id(right)]  # compared inside the servers
            assert isinstance(left, Table) and isinstance(right, Table)
            _same_shape(ours.table, theirs.table, left, right)
            yield from diff(ours, theirs, branch, summarize_binary=summarize_binary, with_rows=with_rows,
                            progress=progress)
            return
        key = _key(left, right, infos)
        types = next(({c.name: c.data_type for c in info.columns} for info in infos.values()), {})
        for source in (left, right):  # rows and CSV files: typed as the table side's columns, then sorted
            if isinstance(source, Rows):
                streams[id(source)] = partial(iter, source.stream(partial(typed, types=types)))
        rows = [typed(streams[id(s)](), types) for s in (left, right)]
        for stream in rows:  # closed before the connections are, however the merge ends
            stack.enter_context(contextlib.closing(stream))
        yield from merge(rows[0], rows[1], key, branch, with_rows=with_rows)


def _key(left: Source, right: Source, infos: dict[int, TableInfo]) -> tuple[str, ...]:
    keys = [infos[id(s)].primary_key if isinstance(s, Table) else s.key for s in (left, right)]
    if set(keys[0]) != set(keys[1]):
        raise DjshareError(f"The two sides have different keys: ({', '.join(keys[0])}) on the left, "
                           f"({', '.join(keys[1])}) on the right. Declare the same key columns (--key).")
    return tuple(keys[0])


def _same_order(ours: TableInfo, theirs: TableInfo) -> bool:
    """Whether both servers order keys alike (same key collations): cut points found on one side then cut the
    other side into the same segments. Otherwise the two tables are streamed in byte order and merged."""
    return [c.collation for c in ours.key_columns] == [c.collation for c in theirs.key_columns]


def _same_shape(ours: TableInfo, theirs: TableInfo, left: Table, right: Table) -> None:
    mine = [(c.name, c.data_type) for c in ours.columns]
    other = [(c.name, c.data_type) for c in theirs.columns]
    if ours.primary_key != theirs.primary_key or mine != other:
        raise DjshareError(f"{left.label} and {right.label} differ in their columns or primary key "
                           f"(left: {', '.join(n for n, _ in mine)}; right: {', '.join(n for n, _ in other)}): "
                           "compare a Query of the columns they share instead.")

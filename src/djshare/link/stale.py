"""Staleness: source rows of entities this subscriber holds that changed after they were pulled, found by the
diff engine inside both servers (segment checksums; only differing segments are read), and refreshed in place
through the pull's own copy step (objects first, then one local transaction per batch; the outbound state
stays `pulled`, so a crash at any point leaves every local row held, and re-running converges).

Compared: the source master and part rows held in state pulled or deletion_requested (the states in which a
local row exists) against the local rows, both restricted by the same `where`. A held row missing here, or
a local row not held, is not staleness: `repair` handles those, and they are counted, not refreshed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import Session
from djshare.backends.mariadb_rows import literal, row_literal, statement_limit
from djshare.link.protocol import Outbound
from djshare.link.pull import PullReport, copy_entities
from djshare.link.tables import Checkpoint, LinkTables, no_checkpoint
from djshare.sync.actions import Action
from djshare.sync.diff import diff
from djshare.sync.sql_side import TableSide
from djshare.sync.stream import merge

HELD = (Outbound.PULLED.value, Outbound.DELETION_REQUESTED.value)
BATCH = 500


@dataclass
class StaleReport:
    stale: list[bytes] = field(default_factory=list)  # master key literals of entities with changed rows
    changes: list[Action] = field(default_factory=list)  # what differs, master and part rows
    out_of_step: int = 0  # held but not here, or here but not held: for `repair`
    refreshed: int = 0
    part_rows: int = 0
    objects: int = 0


def _held(tables: LinkTables, where: str) -> str:
    keys = ", ".join(f"`{c}`" for c in tables.source.primary_key)
    held = ", ".join(f"'{state}'" for state in HELD)
    condition = (f"({keys}) IN (SELECT {keys} FROM {tables.outbound.full_name} WHERE `subscriber` = "
                 f"{literal(tables.subscriber).decode()} AND `state` IN ({held}))")
    return f"{condition} AND ({where})" if where else condition


def entity_changes(columns: Mapping[str, tuple[Sequence[str], Sequence[str]]], theirs: Iterable[Sequence[Any]],
                   mine: Iterable[Sequence[Any]]) -> list[Action]:
    """What differs between one entity's rows at the source (`theirs`) and here (`mine`), for link kinds that
    compare rows in Python: rows are (table name, *values), with `columns[table]` = (column names, key names) and
    values in one comparable form on both sides. Part rows only the source has are "added", only here "removed"."""
    theirs, mine = list(theirs), list(mine)
    found: list[Action] = []
    for table, (names, key) in columns.items():
        found += merge(_rows_of(theirs, table, names, key), _rows_of(mine, table, names, key), key, table)
    return found


def _rows_of(rows: list[Sequence[Any]], table: str, names: Sequence[str], key: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of `table` among (table name, *values) rows, as dicts in key order (what `merge` takes)."""
    return sorted((dict(zip(names, row[1:], strict=True)) for row in rows if row[0] == table),
                  key=lambda row: tuple(row[k] for k in key))


def _sides(source: Session, local: Session, tables: LinkTables, table: TableInfo, where: str) -> tuple[TableSide,
                                                                                                       TableSide]:
    here = replace(table, schema=tables.local_schema)
    return TableSide(source, table, _held(tables, where)), TableSide(local, here, where)


def find(source: Session, local: Session, tables: LinkTables, where: str = "",
         progress: Callable[[int, int], None] | None = None) -> StaleReport:
    """Entities whose source master or part rows differ from the local ones (`where`: SQL on the master's
    columns, with or without a leading WHERE; "" for all)."""
    where = where.strip()
    if where[:5].upper() == "WHERE":
        where = where[5:].strip()
    report = StaleReport()
    masters: dict[tuple[Any, ...], None] = {}
    out_of_step: set[tuple[Any, ...]] = set()
    names = tables.source.primary_key
    for table in (tables.source, *tables.source_parts):
        for action in diff(*_sides(source, local, tables, table, where), branch=table.name, progress=progress):
            master = tuple(action.key[n] for n in names)
            if table is tables.source and action.kind != "changed":
                out_of_step.add(master)  # an entity on one side only: repair's business, never re-created here
                continue
            if master not in out_of_step:
                report.changes.append(action)
                masters[master] = None
    report.out_of_step = len(out_of_step)
    report.stale = _literals(source, tables.source, list(masters))
    return report


def _literals(session: Session, table: TableInfo, keys: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """The key literals of `keys` (Python values) as the server formats them."""
    found: list[bytes] = []
    names = ", ".join(f"`{c}`" for c in table.primary_key)
    row = "(" + ", ".join(["%s"] * len(table.primary_key)) + ")"
    for start in range(0, len(keys), BATCH):
        chunk = keys[start:start + BATCH]
        found += [bytes(r[0]) for r in session.rows(
            f"SELECT {row_literal(table.key_columns)} FROM {table.full_name} WHERE ({names}) IN "
            f"({', '.join([row] * len(chunk))})", [v for key in chunk for v in key],
            doing=f"reading keys of {table.full_name}")]
    return sorted(found)


def _batches(keys: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def refresh(source: Session, local: Session, tables: LinkTables, report: StaleReport, batch_size: int = BATCH,
            on_progress: Callable[[int], None] | None = None, checkpoint: Checkpoint = no_checkpoint) -> StaleReport:
    """Bring the stale entities of `report` over: masters and part rows updated in place, part rows the
    source dropped deleted, new objects copied first. The caller holds the link lock."""
    limit = statement_limit(local)
    for batch in _batches(report.stale, batch_size):
        copied = PullReport()
        copy_entities(source, local, tables, batch, limit, copied, checkpoint, refresh=True)
        checkpoint("refresh_local")
        report.refreshed += len(batch)
        report.part_rows += copied.part_rows
        report.objects += copied.objects
        if on_progress:
            on_progress(len(batch))
    return report

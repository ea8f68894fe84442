"""Pull: copy entities (masters with their part rows) from the source table into the local table.

For each batch of keys, in key order: observe the facts (outbound state on the source, presence on the
local server), let the protocol plan, then run each step group as one transaction on one server:
record the keys as pulling (source), copy masters and parts (local), mark them pulled (source).
Round trips grow with the number of batches, not of entities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import Session
from djshare.backends.mariadb_rows import (
    MARIADB,
    copy_rows,
    key_bound,
    key_condition,
    present_keys,
    row_literal,
    statement_limit,
)
from djshare.errors import ConfigurationError, DjshareError
from djshare.link import objects
from djshare.link.journal import objects_lock
from djshare.link.outbound import OutboundSource
from djshare.link.protocol import Command, Facts, Outbound, Step, plan
from djshare.link.tables import Checkpoint, LinkTables, LocalSide, PullReport, SourceSide, no_checkpoint
from djshare.stores.formats.dj014 import external_table

DEFAULT_BATCH = 2000


def checked_options(batch_size: Any, lock_timeout: Any = 60.0) -> tuple[int, float]:
    """`batch_size` and `lock_timeout` of a link, refused unless a whole number >= 1 and a number of seconds >= 0
    (before anything connects or changes)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size={batch_size!r}: give the number of entities per batch, 1 or more "
                                 f"(default {DEFAULT_BATCH}).")
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float) or lock_timeout < 0:
        raise ConfigurationError(f"lock_timeout={lock_timeout!r}: give the seconds to wait for the link's lock, "
                                 "0 or more (default 60).")
    return batch_size, float(lock_timeout)


def checked_subscriber(subscriber: str | None) -> str | None:
    """A subscriber name given by the user: what the outbound table's `subscriber` column holds (1 to 64 ASCII
    characters), refused before anything connects or changes."""
    if subscriber is not None and (not isinstance(subscriber, str) or not 1 <= len(subscriber) <= 64
                                   or not subscriber.isascii() or not subscriber.isprintable()):
        raise ConfigurationError(f"subscriber={subscriber!r}: a subscriber name is 1 to 64 printable ASCII "
                                 "characters (or leave it out: djshare makes one per local schema).")
    return subscriber


class MariaDBSource(OutboundSource):
    """A link's source side on MariaDB: the source table and the outbound table of one subscriber."""

    def __init__(self, session: Session, tables: LinkTables) -> None:
        super().__init__(session, MARIADB, tables.outbound, tables.subscriber)
        self.tables = tables


def pull(source: SourceSide, local: LocalSide, where: str, *, batch_size: int = DEFAULT_BATCH,
         dry_run: bool = False, on_progress: Callable[[int], None] | None = None,
         checkpoint: Checkpoint = no_checkpoint) -> PullReport:
    """Pull every entity of the source table matching `where` (a SQL WHERE clause, or "") not held yet.

    The caller holds the link lock. A failure leaves committed batches pulled and the current batch in a
    state that re-running `pull` or `repair` converges from.
    """
    report = PullReport(dry_run=dry_run)
    after: bytes | None = None
    while True:
        page = source.candidates(where, after, batch_size)
        if not page:
            return report
        keys = [key for key, _ in page]
        after = keys[-1]
        present = local.present(keys)
        facts = {k: Facts(True, Outbound(s) if s else None, k in present) for k, s in page}
        todo = plan(Command.PULL, facts)
        for note, count in todo.notes.items():
            report.notes[note] = report.notes.get(note, 0) + count
        if dry_run:
            report.would_pull += len(todo.keys(Step.INSERT_LOCAL))
            report.adopted += len(todo.keys(Step.ADOPT))
            continue
        _run_batch(source, local, todo.groups, report, checkpoint)
        report.batches += 1
        if on_progress:
            on_progress(len(keys))


def _run_batch(source: SourceSide, local: LocalSide, groups: dict[Step, list[bytes]], report: PullReport,
               checkpoint: Checkpoint) -> None:
    if groups.get(Step.RECORD_PULLING):
        with source.transaction("recording entities as pulling"):
            source.record(groups[Step.RECORD_PULLING], Outbound.PULLING)
        checkpoint(Step.RECORD_PULLING.value)
    if groups.get(Step.ADOPT):
        with source.transaction("recording local rows"):
            report.adopted += source.record(groups[Step.ADOPT], Outbound.PULLED)
        checkpoint(Step.ADOPT.value)
    to_copy = groups.get(Step.INSERT_LOCAL, [])
    if to_copy:
        try:
            local.copy(to_copy, report, checkpoint)
        except DjshareError as error:
            if not error.retryable:  # refused (a store, a missing or damaged object): nothing was inserted
                _roll_back(source, local, to_copy)
            raise
        checkpoint(Step.INSERT_LOCAL.value)
    to_mark = groups.get(Step.MARK_PULLED, [])
    if to_mark:
        with source.transaction("marking entities pulled"):
            source.update(to_mark, Step.MARK_PULLED)
        report.finished += len(set(to_mark) - set(to_copy))
        checkpoint(Step.MARK_PULLED.value)


def _roll_back(source: SourceSide, local: LocalSide, keys: list[bytes]) -> None:
    """After a refused batch, remove its `pulling` outbound rows of entities that have no local row, as `repair`
    would (PULLING + REPAIR), so that the source is as it was: a held row would block the source lab's DELETE.
    If this fails too (the source went away), `repair` or the next pull does it."""
    with contextlib.suppress(DjshareError):
        here = local.present(keys)
        with source.transaction("removing the refused batch's outbound rows"):
            source.remove([k for k in keys if k not in here])


class MariaDBLocal:
    """A link's local side on MariaDB: DataJoint 0.14 tables in the local schema, the source's literals as they
    are (the two servers format values alike)."""

    def __init__(self, source: Session, local: Session, tables: LinkTables) -> None:
        self.source, self.session, self.tables = source, local, tables
        self.name = tables.local.full_name
        self._limit: int | None = None

    def present(self, keys: list[bytes]) -> set[bytes]:
        return present_keys(self.session, self.tables.local, keys)

    def copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        if self._limit is None:
            self._limit = statement_limit(self.session)
        copy_entities(self.source, self.session, self.tables, keys, self._limit, report, checkpoint)

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        local = self.tables.local
        names = ", ".join(f"`{c}`" for c in local.primary_key)
        after: bytes | None = None
        while True:
            condition = b"TRUE" if after is None else key_bound(local, after, ">")
            page = [bytes(r[0]) for r in self.session.rows(
                f"SELECT {row_literal(local.key_columns)} FROM {local.full_name} WHERE ".encode()
                + condition + f" ORDER BY {names} LIMIT {int(size)}".encode(),
                doing=f"reading {local.full_name}",
            )]
            if not page:
                return
            yield page
            after = page[-1]

    def count(self) -> int:
        return int(self.session.scalar(f"SELECT COUNT(*) FROM {self.name}"))


def copy_entities(source: Session, local: Session, tables: LinkTables, keys: list[bytes], limit: int,
                  report: PullReport, checkpoint: Checkpoint, refresh: bool = False) -> None:
    """Copy the entities of `keys` (masters, parts, the `~external` rows and objects they reference) into
    the local tables in one local transaction, objects first. With `refresh`, entities already here are
    updated in place to the source's values, and their part rows the source no longer has are deleted."""
    where = key_condition(tables.source, keys)
    with contextlib.ExitStack() as stack:
        refs = {}
        if tables.stores.columns:  # objects first, so no local row ever references a missing object
            stack.enter_context(objects_lock(local, tables.local_schema))
            refs = objects.referenced(source, tables, keys)
            report.objects += objects.bring(source, local, tables, refs)
            checkpoint("copy_objects")
        with local.transaction(f"{'refreshing' if refresh else 'inserting into'} {tables.local.full_name}"):
            for store, rows in refs.items():
                pair = tables.stores.pairs[store]
                if rows:
                    target = external_table(tables.local_schema, pair.local.name)
                    copy_rows(source, local, pair.source_external, target,
                              b"`hash` IN (" + objects.hex_list([r.hash for r in rows]) + b")", limit,
                              keep_existing=True)
            report.pulled += copy_rows(source, local, tables.source, tables.local.full_name, where, limit,
                                       update_existing=refresh)
            for part in tables.source_parts:
                if refresh:
                    _drop_vanished_parts(source, local, tables, part, where)
                report.part_rows += copy_rows(source, local, part, tables.local_name(part), where, limit,
                                              update_existing=refresh)


def _drop_vanished_parts(source: Session, local: Session, tables: LinkTables, part: TableInfo, where: bytes) -> None:
    """Delete the local part rows of the masters in `where` that the source no longer has."""
    def keys(session: Session, name: str) -> set[bytes]:
        return {bytes(r[0]) for r in session.rows(
            f"SELECT {row_literal(part.key_columns)} FROM {name} WHERE ".encode() + where, doing=f"reading {name}")}

    gone = sorted(keys(local, tables.local_name(part)) - keys(source, part.full_name))
    if gone:
        local.execute(f"DELETE FROM {tables.local_name(part)} WHERE ".encode() + key_condition(part, gone),
                      doing=f"deleting part rows from {tables.local_name(part)}")

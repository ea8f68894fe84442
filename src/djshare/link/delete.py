"""The deletion handshake.

Source side: `request_deletion` flags held entities; `approved` lists what subscribers have deleted;
`finish_deletion` removes approved outbound rows and then the source rows (with their parts) that no
subscriber holds any more, in one source transaction per batch.

Local side: after the local rows are deleted (by DataJoint's own delete, with its cascade and prompt),
`after_local_delete` runs repair for exactly the keys that were there before, so the outbound table
follows on every delete path: a cancelled prompt changes nothing, a subset updates that subset, a crash
in between is what `repair` fixes. `refresh` copies the source's requests into the local
DeletionRequested part table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from djshare.backends.catalog import TableInfo, find_table, foreign_keys_to, part_names, read_table
from djshare.backends.mariadb import Session
from djshare.backends.mariadb_rows import key_bound, key_condition, literal, row_literal
from djshare.errors import IntegrityViolation
from djshare.link import outbound
from djshare.link.cascade import deletions
from djshare.link.outbound import COMMENT_PREFIX, OutboundTable
from djshare.link.protocol import Outbound, Step
from djshare.link.pull import MariaDBLocal, MariaDBSource
from djshare.link.repair import BATCH, RepairReport, repair_keys
from djshare.link.tables import Checkpoint, LinkTables, no_checkpoint
from djshare.restriction import check_where


def local_keys(local: Session, tables: LinkTables, where: str) -> list[bytes]:
    """Keys of the local master rows matching a DataJoint WHERE clause (or "")."""
    rows = local.rows(
        f"SELECT {row_literal(tables.local.key_columns)} FROM {tables.local.full_name}{where}".encode(),
        doing=f"reading {tables.local.full_name}",
    )
    return [bytes(r[0]) for r in rows]


def after_local_delete(source: Session, local: Session, tables: LinkTables, keys: list[bytes],
                       checkpoint: Checkpoint = no_checkpoint) -> RepairReport:
    """Bring the outbound rows of `keys` (local rows before a delete) in line with the local table."""
    report = RepairReport()
    names = ", ".join(f"`{c}`" for c in tables.local.primary_key)
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        repair_keys(MariaDBSource(source, tables), MariaDBLocal(source, local, tables), batch, report, checkpoint)
        local.execute(  # requests of entities that are gone locally are answered
            f"DELETE FROM {tables.deletion_requested_name} WHERE ({names}) NOT IN "
            f"(SELECT {names} FROM {tables.local.full_name}) AND ".encode() + key_condition(tables.local, batch),
            doing=f"clearing answered requests in {tables.deletion_requested_name}",
        )
    return report


def refresh(source: Session, local: Session, tables: LinkTables) -> int:
    """Add to the local DeletionRequested part every held entity whose deletion the source requested.

    Returns the number of requests added. Touches the local server only (reads the source).
    """
    added = 0
    names = ", ".join(f"`{c}`" for c in tables.local.primary_key)
    join = " AND ".join(f"d.`{c}` = m.`{c}`" for c in tables.local.primary_key)
    for page in MariaDBSource(source, tables).held_pages("", BATCH, (Outbound.DELETION_REQUESTED,)):
        added += local.execute(
            f"INSERT INTO {tables.deletion_requested_name} ({names}) SELECT {names} FROM {tables.local.full_name} AS m "
            f"WHERE NOT EXISTS (SELECT 1 FROM {tables.deletion_requested_name} AS d WHERE {join}) AND ".encode()
            + key_condition(tables.local, page, "m."),
            doing=f"recording deletion requests in {tables.deletion_requested_name}",
        )
    return added


def _subscriber_condition(subscriber: str | None, alias: str = "") -> bytes:
    return b"" if subscriber is None else f" AND {alias}`subscriber` = ".encode() + literal(subscriber)


def request_deletion(source: Session, ob: OutboundTable, where: str, subscriber: str | None = None,
                     dry_run: bool = False) -> int:
    """Flag held entities of the source rows matching `where` for deletion. Returns how many outbound rows
    (entities x subscribers) were (or, with dry_run, would be) flagged."""
    keys = ", ".join(f"`{c}`" for c in ob.source.primary_key)
    join = " AND ".join(f"o.`{c}` = s.`{c}`" for c in ob.source.primary_key)
    guard = ",".join(f"'{s.value}'" for s in (Outbound.PULLING, Outbound.PULLED))
    body = (
        f"{ob.full_name} AS o JOIN (SELECT {keys} FROM {ob.source.full_name}{where}) AS s ON {join} ".encode()
    )
    condition = f"WHERE o.`state` IN ({guard})".encode() + _subscriber_condition(subscriber, "o.")
    if dry_run:
        return int(source.scalar(b"SELECT COUNT(*) FROM " + body + condition, doing="counting deletion requests"))
    with source.transaction("requesting deletion"):
        return source.execute(
            b"UPDATE " + body + f"SET o.`state` = '{Outbound.DELETION_REQUESTED.value}' ".encode() + condition,
            doing=f"requesting deletion in {ob.full_name}",
        )


def listed(source: Session, ob: OutboundTable, state: Outbound, subscriber: str | None = None,
           limit: int | None = None) -> list[dict[str, object]]:
    """Outbound rows in `state` (subscriber and key values), for display."""
    keys = ", ".join(f"`{c}`" for c in ob.source.primary_key)
    rows = source.rows(
        f"SELECT `subscriber`, {keys} FROM {ob.full_name} WHERE `state` = '{state.value}'".encode()
        + _subscriber_condition(subscriber) + f" ORDER BY `subscriber`, {keys}".encode()
        + (f" LIMIT {int(limit)}".encode() if limit else b""),
    )
    names = ("subscriber", *ob.source.primary_key)
    return [dict(zip(names, row, strict=True)) for row in rows]


def _held(source: Session, ob: OutboundTable, keys: list[bytes], ignoring: bytes | None = None) -> set[bytes]:
    """Keys that still have an outbound row (other than rows matching `ignoring`, a condition on o.)."""
    src = ob.source
    join = " AND ".join(f"o.`{c}` = s.`{c}`" for c in src.primary_key).encode()
    if ignoring is not None:
        join += b" AND NOT (" + ignoring + b")"
    rows = source.rows(
        f"SELECT {row_literal(src.key_columns, 's.')} FROM {src.full_name} AS s WHERE ".encode()
        + key_condition(src, keys, "s.") + f" AND EXISTS (SELECT 1 FROM {ob.full_name} AS o WHERE ".encode()
        + join + b")",
        doing=f"checking who holds rows of {src.full_name}",
    )
    return {bytes(r[0]) for r in rows}


@dataclass
class FinishReport:
    outbound_rows: int = 0  # approved outbound rows removed
    source_rows: int = 0  # source master rows deleted
    dependent_rows: int = 0  # part rows and rows of dependent tables deleted with them
    kept: int = 0  # approved entities another subscriber still holds: source row kept
    dry_run: bool = False


ROOT_CONDITION = b"@@djshare-keys@@"  # placeholder for the batch's key condition in the cascade's SQL


def finish_deletion(source: Session, ob: OutboundTable, subscriber: str | None = None,
                    dry_run: bool = False, checkpoint: Checkpoint = no_checkpoint) -> FinishReport:
    """Remove approved outbound rows, then delete the source rows no subscriber holds any more, with their
    part rows and the rows of other tables that depend on them (never outbound rows: see `cascade`).

    Each batch is one source transaction: the source rows are locked first (FOR UPDATE), so no subscriber
    can record a new outbound row for them until the batch commits.
    """
    report = FinishReport(dry_run=dry_run)
    src = ob.source
    outbound_tables = {(str(a), str(b)) for a, b in source.rows(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_comment LIKE %s",
        (COMMENT_PREFIX + "%",))}
    cascade = deletions((src.schema, src.name), ROOT_CONDITION, foreign_keys_to(source), outbound_tables)
    key_sql = row_literal(src.key_columns)
    approved = f"`state` = '{Outbound.DELETION_APPROVED.value}'".encode() + _subscriber_condition(subscriber)
    approved_o = f"o.`state` = '{Outbound.DELETION_APPROVED.value}'".encode() + _subscriber_condition(subscriber, "o.")
    order = ", ".join(f"`{c}`" for c in src.primary_key)
    after: bytes | None = None
    while True:
        condition = approved + (b"" if after is None else b" AND " + key_bound(src, after, ">"))
        keys = [bytes(r[0]) for r in source.rows(
            f"SELECT DISTINCT {key_sql} FROM {ob.full_name} WHERE ".encode() + condition
            + f" ORDER BY {order} LIMIT {BATCH}".encode(),
        )]
        if not keys:
            return report
        after = keys[-1] if dry_run else None
        if dry_run:
            kept = _held(source, ob, keys, ignoring=approved_o)
            report.outbound_rows += len(keys)
            report.kept += len(kept)
            report.source_rows += len(set(keys) - kept)
            continue
        try:
            with source.transaction("finishing deletions"):
                source.rows(f"SELECT 1 FROM {src.full_name} WHERE ".encode() + key_condition(src, keys)
                            + b" FOR UPDATE")
                report.outbound_rows += source.execute(
                    f"DELETE FROM {ob.full_name} WHERE ".encode() + approved + b" AND " + key_condition(src, keys)
                )
                kept = _held(source, ob, keys)
                gone = [k for k in keys if k not in kept]
                report.kept += len(kept)
                if gone:
                    for table, condition in cascade:
                        deleted = source.execute(f"DELETE FROM {table} WHERE ".encode() + condition.replace(
                            ROOT_CONDITION, key_condition(src, gone)), doing=f"deleting from {table}")
                        if table == src.full_name:
                            report.source_rows += deleted
                        else:
                            report.dependent_rows += deleted
        except IntegrityViolation as error:
            raise IntegrityViolation(
                f"{error} Some rows that depend on the approved entities of {src.full_name} are still held through "
                "an outbound table (another link), so none of them were deleted: this batch changed nothing. "
                "Finish that link's deletion first, then run finish-deletion again."
            ) from error
        checkpoint(Step.FINISH_DELETION.value)


class SourceCommands:
    """The source lab's deletion commands for one linked table on MariaDB (request, requested, approved,
    finish, status). `session` opens a session on the source server; subclasses say how restrictions become
    SQL (`_where`). Run with a user that may change the outbound schema; finishing a deletion also needs
    DELETE on the source schema (a source admin, not the link user)."""

    def __init__(self, schema: str, table: str, session: Callable[[], Session], outbound_schema: Callable[[], str]
                 ) -> None:
        self.schema, self.table = schema, table
        self._session, self._outbound_schema = session, outbound_schema
        self._resolved: tuple[OutboundTable, tuple[TableInfo, ...]] | None = None

    def _where(self, restrictions: tuple[Any, ...], full_name: str) -> str:
        raise NotImplementedError

    def _resolve(self, source: Session) -> tuple[OutboundTable, tuple[TableInfo, ...]]:
        if self._resolved is None:
            name = self.table if not self.table[:1].isupper() else find_table(source, self.schema, self.table)
            info = read_table(source, self.schema, name)
            parts = tuple(read_table(source, self.schema, p) for p in part_names(source, self.schema, name))
            ob = OutboundTable.for_source(info, self._outbound_schema())
            read_table(source, ob.schema, ob.name)  # the outbound table must exist: a link was made
            self._resolved = (ob, parts)
        return self._resolved

    def request_deletion(self, *restrictions: Any, subscriber: str | None = None, dry_run: bool = False) -> int:
        """Ask subscribers to delete the held entities matching all `restrictions`; returns how many rows were
        (or would be) flagged."""
        with self._session() as source:
            ob, _ = self._resolve(source)
            where = self._where(restrictions, ob.source.full_name)
            check_where(source, ob.source.full_name, where)
            return request_deletion(source, ob, where, subscriber, dry_run)

    def requested(self, subscriber: str | None = None) -> list[dict[str, object]]:
        with self._session() as source:
            return listed(source, self._resolve(source)[0], Outbound.DELETION_REQUESTED, subscriber)

    def approved(self, subscriber: str | None = None) -> list[dict[str, object]]:
        """Entities subscribers have deleted after a request: ready for `finish_deletion`."""
        with self._session() as source:
            return listed(source, self._resolve(source)[0], Outbound.DELETION_APPROVED, subscriber)

    def finish_deletion(self, subscriber: str | None = None, dry_run: bool = False,
                        checkpoint: Checkpoint = no_checkpoint) -> FinishReport:
        with self._session() as source:
            ob, _ = self._resolve(source)
            return finish_deletion(source, ob, subscriber, dry_run, checkpoint)

    def status(self) -> dict[str, dict[str, int]]:
        """Per subscriber, outbound rows by state."""
        with self._session() as source:
            return outbound.counts(source, self._resolve(source)[0])

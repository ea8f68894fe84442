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

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from djshare.backends.catalog import TableInfo, find_table, read_table
from djshare.backends.mariadb import Session
from djshare.backends.mariadb_rows import MARIADB, MariaDB, key_condition, row_literal
from djshare.errors import IntegrityViolation
from djshare.link import outbound
from djshare.link.cascade import deletions
from djshare.link.outbound import COMMENT_PREFIX, OutboundTable
from djshare.link.protocol import STEP_GUARD, Outbound, Step
from djshare.link.pull import MariaDBLocal, MariaDBSource
from djshare.link.repair import BATCH, RepairReport, repair_keys
from djshare.link.tables import Checkpoint, LinkTables, no_checkpoint
from djshare.restriction import sql_restriction


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


def _mine(sql: MariaDB, subscriber: str | None, alias: str = "") -> str:
    return "" if subscriber is None else f" AND {alias}{sql.quote('subscriber')} = {sql.text(subscriber)}"


def _states(sql: MariaDB, states: Sequence[Outbound], alias: str = "") -> str:
    return f"{alias}{sql.quote('state')} IN ({', '.join(sql.text(s.value) for s in states)})"


def request_deletion(source: Any, ob: OutboundTable, where: str, subscriber: str | None = None,
                     dry_run: bool = False, sql: MariaDB = MARIADB) -> int:
    """Flag held entities of the source rows matching `where` for deletion. Returns how many outbound rows
    (entities x subscribers) were (or, with dry_run, would be) flagged."""
    keys, table = sql.key_names(ob.source), sql.quote(ob.schema, ob.name)
    guard = [s for s in STEP_GUARD[Step.REQUEST_DELETION] if s is not None]
    condition = (f"{_states(sql, guard)}{_mine(sql, subscriber)} AND ({keys}) IN "
                 f"(SELECT {keys} FROM {sql.table(ob.source)}{where})")
    if dry_run:
        return int(source.scalar(f"SELECT COUNT(*) FROM {table} WHERE {condition}", doing="counting deletion requests"))
    with source.transaction("requesting deletion"):
        return int(source.execute(
            f"UPDATE {table} SET {sql.quote('state')} = {sql.text(Outbound.DELETION_REQUESTED.value)}, "
            f"{sql.quote('changed_at')} = CURRENT_TIMESTAMP(6) WHERE {condition}",
            doing=f"requesting deletion in {table}"))


def listed(source: Any, ob: OutboundTable, state: Outbound, subscriber: str | None = None,
           limit: int | None = None, sql: MariaDB = MARIADB) -> list[dict[str, object]]:
    """Outbound rows in `state` (subscriber and key values), for display."""
    rows = source.rows(
        f"SELECT {sql.quote('subscriber')}, {sql.key_names(ob.source)} FROM {sql.quote(ob.schema, ob.name)} WHERE "
        f"{_states(sql, [state])}{_mine(sql, subscriber)} ORDER BY {sql.quote('subscriber')}, "
        f"{sql.key_order(ob.source)}" + (f" LIMIT {int(limit)}" if limit else ""))
    names = ("subscriber", *ob.source.primary_key)
    return [dict(zip(names, row, strict=True)) for row in rows]


def _held(source: Any, ob: OutboundTable, keys: list[bytes], ignoring: str | None, sql: MariaDB) -> set[bytes]:
    """Keys that still have an outbound row (other than rows matching `ignoring`, a condition on o.)."""
    src = ob.source
    join = " AND ".join(f"o.{sql.quote(c)} = s.{sql.quote(c)}" for c in src.primary_key)
    if ignoring is not None:
        join += f" AND NOT ({ignoring})"
    rows = source.rows(
        f"SELECT {sql.key_literal(src, 's.')} FROM {sql.table(src)} AS s WHERE ".encode()
        + sql.in_keys(src, keys, "s.") + f" AND EXISTS (SELECT 1 FROM {sql.quote(ob.schema, ob.name)} AS o WHERE "
        f"{join})".encode(), doing=f"checking who holds rows of {sql.table(src)}")
    return {bytes(r[0]) for r in rows}


@dataclass
class FinishReport:
    outbound_rows: int = 0  # approved outbound rows removed
    source_rows: int = 0  # source master rows deleted
    dependent_rows: int = 0  # part rows and rows of dependent tables deleted with them
    kept: int = 0  # approved entities another subscriber still holds: source row kept
    dry_run: bool = False


ROOT_CONDITION = b"@@djshare-keys@@"  # placeholder for the batch's key condition in the cascade's SQL


def finish_deletion(source: Any, ob: OutboundTable, subscriber: str | None = None, dry_run: bool = False,
                    checkpoint: Checkpoint = no_checkpoint, sql: MariaDB = MARIADB) -> FinishReport:
    """Remove approved outbound rows, then delete the source rows no subscriber holds any more, with their
    part rows and the rows of other tables that depend on them (never outbound rows: see `cascade`), on any
    backend alike.

    Each batch is one source transaction: the source rows are locked first (FOR UPDATE), so no subscriber
    can record a new outbound row for them until the batch commits. A dependent row held through another link
    (an outbound row references it) stops the batch, which then changes nothing.
    """
    report = FinishReport(dry_run=dry_run)
    src = ob.source
    table = sql.quote(ob.schema, ob.name)
    cascade = deletions((src.schema, src.name), ROOT_CONDITION, sql.foreign_keys(source),
                        {(schema, name) for schema, name, _ in sql.commented(source, COMMENT_PREFIX)}, sql.quote)
    approved = f"{_states(sql, [Outbound.DELETION_APPROVED])}{_mine(sql, subscriber)}"
    after: bytes | None = None
    while True:
        keys = [bytes(r[0]) for r in source.rows(  # one row per entity, whatever the number of subscribers
            f"SELECT {sql.key_literal(src)} FROM {table} WHERE {approved} AND ".encode() + sql.after(src, after)
            + f" GROUP BY {sql.key_names(src)} ORDER BY {sql.key_order(src)} LIMIT {BATCH}".encode())]
        if not keys:
            return report
        after = keys[-1] if dry_run else None
        if dry_run:
            kept = _held(source, ob, keys, f"{_states(sql, [Outbound.DELETION_APPROVED], 'o.')}"
                                           f"{_mine(sql, subscriber, 'o.')}", sql)
            report.outbound_rows += len(keys)
            report.kept += len(kept)
            report.source_rows += len(set(keys) - kept)
            continue
        try:
            with source.transaction("finishing deletions"):
                source.rows(f"SELECT 1 FROM {sql.table(src)} WHERE ".encode() + sql.in_keys(src, keys)
                            + b" FOR UPDATE")
                report.outbound_rows += source.execute(
                    f"DELETE FROM {table} WHERE {approved} AND ".encode() + sql.in_keys(src, keys))
                kept = _held(source, ob, keys, None, sql)
                gone = [k for k in keys if k not in kept]
                report.kept += len(kept)
                for name, condition in cascade if gone else []:
                    deleted = source.execute(f"DELETE FROM {name} WHERE ".encode() + condition.replace(
                        ROOT_CONDITION, sql.in_keys(src, gone)), doing=f"deleting from {name}")
                    if name == sql.table(src):
                        report.source_rows += deleted
                    else:
                        report.dependent_rows += deleted
        except IntegrityViolation as error:
            raise IntegrityViolation(
                f"{error} Some rows that depend on the approved entities of {sql.table(src)} are still held through "
                "an outbound table (another link), so none of them were deleted: this batch changed nothing. "
                "Finish that link's deletion first, then run finish-deletion again."
            ) from error
        checkpoint(Step.FINISH_DELETION.value)


class SourceCommands:
    """The source lab's deletion commands for one linked table (request, requested, approved, finish, status), on
    any backend (`sql`). `session` opens a session on the source server; subclasses say how restrictions become
    SQL (`_where`) and, for another backend, how its tables are found (`_read`). Run with a user that may change
    the outbound schema; finishing a deletion also needs DELETE on the source schema (a source admin, not the link
    user)."""

    sql: MariaDB = MARIADB

    def __init__(self, schema: str, table: str, session: Callable[[], AbstractContextManager[Any]],
                 outbound_schema: Callable[[], str]) -> None:
        self.schema, self.table = schema, table
        self._session, self._outbound_schema = session, outbound_schema
        self._resolved: OutboundTable | None = None

    def _where(self, restrictions: tuple[Any, ...], table: TableInfo) -> str:
        """" WHERE ..." for `table` restricted by `restrictions` (SQL text, dicts, lists of these: OR)."""
        return sql_restriction(restrictions, table, self.sql)

    def _read(self, source: Any) -> TableInfo:
        """The source table; its outbound table must exist (a link was made)."""
        name = self.table if not self.table[:1].isupper() else find_table(source, self.schema, self.table)
        return read_table(source, self.schema, name)

    def _check_outbound(self, source: Any, ob: OutboundTable) -> None:
        read_table(source, ob.schema, ob.name)  # the outbound table must exist: a link was made

    def _resolve(self, source: Any) -> OutboundTable:
        if self._resolved is None:
            ob = OutboundTable.for_source(self._read(source), self._outbound_schema())
            self._check_outbound(source, ob)
            self._resolved = ob
        return self._resolved

    def request_deletion(self, *restrictions: Any, subscriber: str | None = None, dry_run: bool = False) -> int:
        """Ask subscribers to delete the held entities matching all `restrictions`; returns how many rows were
        (or would be) flagged."""
        with self._session() as source:
            ob = self._resolve(source)
            name = self.sql.table(ob.source)
            where = self._where(restrictions, ob.source)
            source.rows(f"SELECT 1 FROM {name}{where} LIMIT 0", doing=f"checking the restriction on {name}")
            return request_deletion(source, ob, where, subscriber, dry_run, self.sql)

    def requested(self, subscriber: str | None = None) -> list[dict[str, object]]:
        with self._session() as source:
            return listed(source, self._resolve(source), Outbound.DELETION_REQUESTED, subscriber, sql=self.sql)

    def approved(self, subscriber: str | None = None) -> list[dict[str, object]]:
        """Entities subscribers have deleted after a request: ready for `finish_deletion`."""
        with self._session() as source:
            return listed(source, self._resolve(source), Outbound.DELETION_APPROVED, subscriber, sql=self.sql)

    def finish_deletion(self, subscriber: str | None = None, dry_run: bool = False,
                        checkpoint: Checkpoint = no_checkpoint) -> FinishReport:
        with self._session() as source:
            return finish_deletion(source, self._resolve(source), subscriber, dry_run, checkpoint, self.sql)

    def status(self) -> dict[str, dict[str, int]]:
        """Per subscriber, outbound rows by state."""
        with self._session() as source:
            return outbound.counts(source, self._resolve(source), self.sql)

"""The outbound table on the source server: one row per (subscriber, pulled entity), with a foreign key
to the source table so that a held row cannot be deleted from the source.

Each function here is one protocol step or one read, run as one statement (or one transaction) on the
source server; every UPDATE and DELETE carries the step's guard (`protocol.STEP_GUARD`) in its WHERE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from djshare.backends.catalog import TableInfo, read_table, schema_exists, table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import column_list, key_bound, key_condition, literal, row_literal
from djshare.errors import ConfigurationError, MissingPrivilegeError
from djshare.link.protocol import STEP_GUARD, Outbound, Step

COMMENT_PREFIX = "djshare outbound of "
STATE_TYPE = "enum(" + ",".join(f"'{s.value}'" for s in Outbound) + ")"
MAX_NAME = 64


@dataclass(frozen=True)
class OutboundTable:
    schema: str
    name: str
    source: TableInfo

    @classmethod
    def for_source(cls, source: TableInfo, outbound_schema: str) -> OutboundTable:
        name = f"{source.schema}_{source.name.lstrip('_#')}_outbound"
        if len(name) > MAX_NAME:
            raise ConfigurationError(
                f"The outbound table name {name!r} for {source.full_name} is longer than {MAX_NAME} characters."
            )
        return cls(outbound_schema, name, source)

    @property
    def full_name(self) -> str:
        return quote_name(self.schema, self.name)

    @property
    def comment(self) -> str:
        return COMMENT_PREFIX + self.source.full_name

    @property
    def key_names(self) -> str:
        return column_list(self.source.key_columns)


def declare(session: Session, outbound: OutboundTable) -> None:
    """Create the outbound schema and table if missing; check an existing one belongs to this source."""
    source = outbound.source
    grants = (
        f"GRANT SELECT, REFERENCES ON `{source.schema}`.* TO '{session.address.user}'@'%'; "
        f"GRANT ALL PRIVILEGES ON `{outbound.schema}`.* TO '{session.address.user}'@'%'"
    )
    created_schema = False
    try:
        if not schema_exists(session, outbound.schema):
            session.execute(f"CREATE DATABASE IF NOT EXISTS {quote_name(outbound.schema)}",
                            doing=f"creating the outbound schema `{outbound.schema}`")
            created_schema = True
        if outbound.name not in table_names(session, outbound.schema):
            key_columns = ",\n  ".join(
                f"{quote_name(c.name)} {c.column_type}" + (f" COLLATE {c.collation}" if c.collation else "")
                + " NOT NULL"
                for c in source.key_columns
            )
            session.execute(
                f"CREATE TABLE IF NOT EXISTS {outbound.full_name} (\n"
                f"  `subscriber` varchar(64) CHARACTER SET ascii NOT NULL,\n  {key_columns},\n"
                f"  `state` {STATE_TYPE} NOT NULL,\n"
                "  `changed_at` timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),\n"
                f"  PRIMARY KEY (`subscriber`, {outbound.key_names}),\n"
                f"  KEY `source_key` ({outbound.key_names}),\n"
                f"  FOREIGN KEY ({outbound.key_names}) REFERENCES {source.full_name} ({outbound.key_names})\n"
                "    ON UPDATE RESTRICT ON DELETE RESTRICT\n"
                f") ENGINE=InnoDB COMMENT=%s",
                (outbound.comment,),
                doing=f"creating the outbound table {outbound.full_name}",
            )
    except MissingPrivilegeError as error:
        if created_schema:  # leave nothing behind
            session.execute(f"DROP DATABASE IF EXISTS {quote_name(outbound.schema)}")
        raise MissingPrivilegeError(
            f"{error} The link user needs: {grants}", grant=grants
        ) from error
    existing = read_table(session, outbound.schema, outbound.name)
    if existing.comment != outbound.comment:
        raise ConfigurationError(
            f"{outbound.full_name} exists but is not the outbound table of {source.full_name} "
            f"(its comment says {existing.comment!r}). Use another LINK_OUTBOUND schema for this link."
        )


def _guard(step: Step) -> str:
    states = [s.value for s in STEP_GUARD[step] if s is not None]
    return "`state` IN (" + ",".join(f"'{s}'" for s in states) + ")"


def observe(session: Session, outbound: OutboundTable, subscriber: str, keys: Sequence[bytes]) -> dict[bytes, Outbound]:
    """Outbound state of each key that has an outbound row for `subscriber` (others are absent)."""
    found = session.rows(
        f"SELECT {row_literal(outbound.source.key_columns)}, `state` FROM {outbound.full_name} "
        "WHERE `subscriber` = ".encode() + literal(subscriber) + b" AND " + key_condition(outbound.source, keys),
        doing=f"reading {outbound.full_name}",
    )
    return {bytes(row[0]): Outbound(row[1]) for row in found}


def record(session: Session, outbound: OutboundTable, subscriber: str, keys: Sequence[bytes], state: Outbound) -> int:
    """RECORD_PULLING / ADOPT: insert outbound rows for source rows that exist (a vanished one is skipped)."""
    if not keys:
        return 0
    names = outbound.key_names
    return session.execute(
        f"INSERT INTO {outbound.full_name} (`subscriber`, {names}, `state`) SELECT ".encode()
        + literal(subscriber) + f", {names}, '{state.value}' FROM {outbound.source.full_name} WHERE ".encode()
        + key_condition(outbound.source, keys),
        doing=f"recording entities in {outbound.full_name}",
    )


UPDATES: dict[Step, Outbound] = {
    Step.MARK_PULLED: Outbound.PULLED,
    Step.REQUEST_DELETION: Outbound.DELETION_REQUESTED,
    Step.APPROVE_DELETION: Outbound.DELETION_APPROVED,
    Step.REVERT_TO_REQUESTED: Outbound.DELETION_REQUESTED,
}


def update(session: Session, outbound: OutboundTable, subscriber: str, keys: Sequence[bytes], step: Step) -> int:
    """MARK_PULLED, APPROVE_DELETION, REVERT_TO_REQUESTED, REQUEST_DELETION for `keys`, under the step's guard."""
    if not keys:
        return 0
    return session.execute(
        f"UPDATE {outbound.full_name} SET `state` = '{UPDATES[step].value}' WHERE `subscriber` = ".encode()
        + literal(subscriber) + f" AND {_guard(step)} AND ".encode() + key_condition(outbound.source, keys),
        doing=f"updating {outbound.full_name} ({step.value})",
    )


def remove(session: Session, outbound: OutboundTable, subscriber: str, keys: Sequence[bytes]) -> int:
    """REMOVE_OUTBOUND: delete outbound rows of entities no longer held locally (pulling or pulled only)."""
    if not keys:
        return 0
    return session.execute(
        f"DELETE FROM {outbound.full_name} WHERE `subscriber` = ".encode() + literal(subscriber)
        + f" AND {_guard(Step.REMOVE_OUTBOUND)} AND ".encode() + key_condition(outbound.source, keys),
        doing=f"removing rows from {outbound.full_name}",
    )


def counts(session: Session, outbound: OutboundTable) -> dict[str, dict[str, int]]:
    """Per subscriber, the number of outbound rows in each state."""
    return _counts(session, outbound.full_name)


def _counts(session: Session, full_name: str) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for subscriber, state, count in session.rows(
        f"SELECT `subscriber`, `state`, COUNT(*) FROM {full_name} GROUP BY `subscriber`, `state` "
        "ORDER BY `subscriber`, `state`"
    ):
        result.setdefault(str(subscriber), {})[str(state)] = int(count)
    return result


def keys_page(session: Session, outbound: OutboundTable, subscriber: str, after: bytes | None, size: int,
              states: Sequence[Outbound] | None = None) -> list[bytes]:
    """One page of this subscriber's outbound keys in key order, after `after` (keyset pagination)."""
    condition = b"`subscriber` = " + literal(subscriber)
    if states:
        condition += (" AND `state` IN (" + ",".join(f"'{s.value}'" for s in states) + ")").encode()
    if after is not None:
        condition += b" AND " + key_bound(outbound.source, after, ">")
    found = session.rows(
        f"SELECT {row_literal(outbound.source.key_columns)} FROM {outbound.full_name} WHERE ".encode() + condition
        + f" ORDER BY {outbound.key_names} LIMIT {int(size)}".encode(),
        doing=f"reading {outbound.full_name}",
    )
    return [bytes(row[0]) for row in found]


def schema_counts(session: Session, outbound_schema: str) -> list[tuple[str, str, dict[str, int]]]:
    """(source table, subscriber, rows per state) for every djshare outbound table in `outbound_schema`."""
    found = session.rows(
        "SELECT table_name, table_comment FROM information_schema.tables WHERE table_schema = %s "
        "AND table_comment LIKE %s ORDER BY table_name",
        (outbound_schema, COMMENT_PREFIX + "%"),
    )
    result = []
    for name, comment in found:
        for subscriber, states in _counts(session, quote_name(outbound_schema, str(name))).items():
            result.append((str(comment)[len(COMMENT_PREFIX):], subscriber, states))
    return result

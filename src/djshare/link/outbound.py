"""The outbound table on the source server: one row per (subscriber, pulled entity), with a foreign key
to the source table so that a held row cannot be deleted from the source.

`OutboundSource` is a link's source side on any backend: each method is one protocol step or one read, run as
one statement on the source server; every UPDATE and DELETE carries the step's guard (`protocol.STEP_GUARD`) in
its WHERE. The table's declaration is the backend's own (MariaDB here, PostgreSQL in `link.pg`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import quote_name
from djshare.backends.mariadb_rows import MARIADB, MariaDB, column_list
from djshare.errors import ConfigurationError, MissingPrivilegeError
from djshare.link.protocol import STEP_GUARD, Outbound, Step

COMMENT_PREFIX = "djshare outbound of "
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


def declare(session: Any, outbound: OutboundTable, sql: MariaDB = MARIADB) -> None:
    """Create the outbound schema and table on the source server (backend `sql`) if missing; check that an existing
    one belongs to this source. A missing privilege leaves nothing behind and names the grants the link user needs."""
    source, table = outbound.source, sql.quote(outbound.schema, outbound.name)
    comment = COMMENT_PREFIX + sql.table(source)  # the source table as its server names it
    grants = sql.outbound_grants(session.address.user, source.schema, outbound.schema)
    created_schema = False
    try:
        with session.transaction(f"creating the outbound table {table}") if sql.transactional_ddl \
                else contextlib.nullcontext():
            if not sql.schema_exists(session, outbound.schema):
                session.execute(sql.create_schema(outbound.schema),
                                doing=f"creating the outbound schema {sql.quote(outbound.schema)}")
                created_schema = True
            if outbound.name not in sql.table_names(session, outbound.schema):
                for statement, args in sql.outbound_table(outbound.schema, outbound.name, source,
                                                          [s.value for s in Outbound], comment):
                    session.execute(statement, args or None, doing=f"creating the outbound table {table}")
            existing = sql.table_comment(session, outbound.schema, outbound.name)
            if existing != comment:
                raise ConfigurationError(
                    f"{table} exists but is not the outbound table of {sql.table(source)} (its comment says "
                    f"{existing!r}). Use another LINK_OUTBOUND schema for this link.")
    except MissingPrivilegeError as error:
        if created_schema and not sql.transactional_ddl:  # leave nothing behind
            session.execute(sql.drop_schema(outbound.schema))
        raise MissingPrivilegeError(f"{error} The link user needs: {grants}", grant=grants) from None


UPDATES: dict[Step, Outbound] = {
    Step.MARK_PULLED: Outbound.PULLED,
    Step.REQUEST_DELETION: Outbound.DELETION_REQUESTED,
    Step.APPROVE_DELETION: Outbound.DELETION_APPROVED,
    Step.REVERT_TO_REQUESTED: Outbound.DELETION_REQUESTED,
}
HELD = (Outbound.PULLED, Outbound.DELETION_REQUESTED)  # states in which a subscriber holds an entity


class OutboundSource:
    """A link's source side on any backend (`sql`: its dialect): the source table and one subscriber's outbound
    rows. Each method is one protocol step or one read, run as one statement; every UPDATE and DELETE carries the
    step's guard (`protocol.STEP_GUARD`) in its WHERE."""

    def __init__(self, session: Any, sql: MariaDB, outbound: OutboundTable, subscriber: str) -> None:
        self.session, self.sql, self.table, self.subscriber = session, sql, outbound, subscriber
        self.source = outbound.source
        self.name = sql.quote(self.source.schema, self.source.name)
        self.outbound = sql.quote(outbound.schema, outbound.name)
        self.mine = f"{sql.quote('subscriber')} = {sql.text(subscriber)}"

    def transaction(self, doing: str) -> AbstractContextManager[Any]:
        return self.session.transaction(doing)

    def check_where(self, where: str) -> None:
        """Let the server parse the restriction before anything changes (one round trip, reads no rows)."""
        self.session.rows(f"SELECT 1 FROM {self.name}{where} LIMIT 0", doing=f"checking the restriction on {self.name}")

    def _candidates(self, where: str) -> str:
        """Keys matching the restriction that this subscriber does not hold yet (or is part way through)."""
        q, keys = self.sql.quote, self.sql.key_names(self.source)
        join = " AND ".join(f"o.{q(c)} = s.{q(c)}" for c in self.source.primary_key)
        pulling = self.sql.text(Outbound.PULLING.value)
        return (f"FROM (SELECT {keys} FROM {self.name}{where}) AS s LEFT JOIN {self.outbound} AS o ON o.{self.mine} "
                f"AND {join} WHERE (o.{q('state')} IS NULL OR o.{q('state')} = {pulling})")

    def candidates(self, where: str, after: bytes | None, size: int) -> list[tuple[bytes, str | None]]:
        sql, source = self.sql, self.source
        return [(bytes(key), state) for key, state in self.session.rows(
            f"SELECT {sql.key_literal(source, 's.')}, o.{sql.quote('state')} {self._candidates(where)} AND ".encode()
            + sql.after(source, after, "s.") + f" ORDER BY {sql.key_order(source, 's.')} LIMIT {int(size)}".encode(),
            doing=f"selecting entities to pull from {self.name}")]

    def count_candidates(self, where: str) -> int:
        return int(self.session.scalar(f"SELECT COUNT(*) {self._candidates(where)}",
                                       doing=f"counting entities to pull from {self.name}"))

    def _guard(self, step: Step) -> str:
        states = ", ".join(self.sql.text(s.value) for s in STEP_GUARD[step] if s is not None)
        return f"{self.sql.quote('state')} IN ({states})"

    def observe(self, keys: Sequence[bytes]) -> dict[bytes, Outbound]:
        """Outbound state of each key that has an outbound row for this subscriber (others are absent)."""
        return {bytes(key): Outbound(state) for key, state in self.session.rows(
            f"SELECT {self.sql.key_literal(self.source)}, {self.sql.quote('state')} FROM {self.outbound} WHERE "
            f"{self.mine} AND ".encode() + self.sql.in_keys(self.source, keys), doing=f"reading {self.outbound}")}

    def record(self, keys: Sequence[bytes], state: Outbound) -> int:
        """RECORD_PULLING / ADOPT: insert outbound rows for source rows that exist (a vanished one is skipped)."""
        if not keys:
            return 0
        q, names = self.sql.quote, self.sql.key_names(self.source)
        return int(self.session.execute(
            f"INSERT INTO {self.outbound} ({q('subscriber')}, {names}, {q('state')}) SELECT "
            f"{self.sql.text(self.subscriber)}, {names}, {self.sql.text(state.value)} FROM {self.name} WHERE ".encode()
            + self.sql.in_keys(self.source, keys), doing=f"recording entities in {self.outbound}"))

    def update(self, keys: Sequence[bytes], step: Step) -> int:
        """MARK_PULLED, APPROVE_DELETION, REVERT_TO_REQUESTED, REQUEST_DELETION for `keys`, under the step's guard."""
        if not keys:
            return 0
        q = self.sql.quote
        return int(self.session.execute(
            f"UPDATE {self.outbound} SET {q('state')} = {self.sql.text(UPDATES[step].value)}, "
            f"{q('changed_at')} = CURRENT_TIMESTAMP(6) WHERE {self.mine} AND {self._guard(step)} AND ".encode()
            + self.sql.in_keys(self.source, keys), doing=f"updating {self.outbound} ({step.value})"))

    def remove(self, keys: Sequence[bytes]) -> int:
        """REMOVE_OUTBOUND: delete outbound rows of entities no longer held locally (pulling or pulled only)."""
        if not keys:
            return 0
        return int(self.session.execute(
            f"DELETE FROM {self.outbound} WHERE {self.mine} AND {self._guard(Step.REMOVE_OUTBOUND)} AND ".encode()
            + self.sql.in_keys(self.source, keys), doing=f"removing rows from {self.outbound}"))

    def present(self, keys: Sequence[bytes]) -> set[bytes]:
        """Which of `keys` have a row in the source table."""
        return {bytes(row[0]) for row in self.session.rows(
            f"SELECT {self.sql.key_literal(self.source)} FROM {self.name} WHERE ".encode()
            + self.sql.in_keys(self.source, keys), doing=f"reading {self.name}")}

    def pages(self, condition: str, size: int) -> Iterator[list[bytes]]:
        """This subscriber's outbound keys matching `condition` (SQL on the outbound table), a page at a time in
        key order (keyset pagination)."""
        after: bytes | None = None
        sql = self.sql
        while page := [bytes(row[0]) for row in self.session.rows(
                f"SELECT {sql.key_literal(self.source)} FROM {self.outbound} WHERE {self.mine}{condition} AND "
                .encode() + sql.after(self.source, after) + f" ORDER BY {sql.key_order(self.source)} "
                f"LIMIT {int(size)}".encode(), doing=f"reading {self.outbound}")]:
            yield page
            after = page[-1]

    def outbound_pages(self, size: int) -> Iterator[list[bytes]]:
        return self.pages("", size)

    def held_pages(self, where: str, size: int, states: Sequence[Outbound] = HELD) -> Iterator[list[bytes]]:
        """Held keys (pulled, or asked to delete) whose source rows match `where`."""
        held = ", ".join(self.sql.text(s.value) for s in states)
        condition = f" AND {self.sql.quote('state')} IN ({held})"
        if where.strip():
            keys = self.sql.key_names(self.source)
            condition += f" AND ({keys}) IN (SELECT {keys} FROM {self.name}{where})"
        return self.pages(condition, size)

    def counts(self) -> dict[str, int]:
        q = self.sql.quote
        return {str(state): int(count) for state, count in self.session.rows(
            f"SELECT {q('state')}, COUNT(*) FROM {self.outbound} WHERE {self.mine} GROUP BY {q('state')}",
            doing=f"reading {self.outbound}")}


def counts(session: Any, outbound: OutboundTable, sql: MariaDB = MARIADB) -> dict[str, dict[str, int]]:
    """Per subscriber, the number of outbound rows in each state."""
    return _counts(session, sql.quote(outbound.schema, outbound.name), sql)


def _counts(session: Any, full_name: str, sql: MariaDB = MARIADB) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    q = sql.quote
    for subscriber, state, count in session.rows(
        f"SELECT {q('subscriber')}, {q('state')}, COUNT(*) FROM {full_name} GROUP BY {q('subscriber')}, {q('state')} "
        f"ORDER BY {q('subscriber')}, {q('state')}"
    ):
        result.setdefault(str(subscriber), {})[str(state)] = int(count)
    return result


def schema_counts(session: Any, outbound_schema: str, sql: MariaDB = MARIADB) -> list[tuple[str, str, dict[str, int]]]:
    """(source table, subscriber, rows per state) for every djshare outbound table in `outbound_schema`."""
    return [(comment[len(COMMENT_PREFIX):], subscriber, states)
            for schema, table, comment in sql.commented(session, COMMENT_PREFIX, outbound_schema)
            for subscriber, states in _counts(session, sql.quote(schema, table), sql).items()]

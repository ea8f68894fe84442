"""A table (optionally restricted) on a database server, as one side of a diff. Every checksum is computed
by the server over the exact bytes of each row (its SQL literal: blobs as hex, FLOAT widened to DOUBLE)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from djshare.backends.catalog import INTEGER_TYPES, TableInfo
from djshare.backends.mariadb_rows import MariaDB, split_literal
from djshare.backends.postgresql_sql import PostgreSQL
from djshare.sync.actions import Binary
from djshare.sync.segments import Segment, Summary

__all__ = ["MariaDB", "PostgreSQL", "SqlSession", "TableSide"]  # the dialects live in djshare.backends


class SqlSession(Protocol):
    """What a diff side needs of a connection: `Session` (MariaDB) and `postgres.PgSession` have it."""

    def rows(self, statement: str | bytes, args: Sequence[Any] | None = None,
             doing: str = "") -> list[tuple[Any, ...]]: ...

    def scalar(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> Any: ...

    def stream(self, statement: str | bytes, args: Sequence[Any] | None = None,
               doing: str = "") -> Iterator[tuple[Any, ...]]: ...


class TableSide:
    """A table on a server, restricted by `where`, as one side of a diff; `sql` writes its dialect's SQL."""

    def __init__(self, session: SqlSession, table: TableInfo, where: str = "", sql: MariaDB | None = None) -> None:
        self.session = session
        self.table = table
        self.where = where.strip()
        self.sql = sql or MariaDB()
        self.name = self.sql.table(table)
        self.rows_read = 0  # rows this side sent over the network (row-level data, not summaries)

    def _condition(self, low: bytes | None, high: bytes | None) -> bytes:
        parts = [b"TRUE"]
        if self.where:
            parts.append(f"({self.where})".encode())
        if low is not None:
            parts.append(self.sql.bound(self.table, low, ">="))
        if high is not None:
            parts.append(self.sql.bound(self.table, high, "<"))
        return b" AND ".join(parts)

    def count(self, segment: Segment) -> int:
        return int(self.session.scalar(f"SELECT COUNT(*) FROM {self.name} WHERE ".encode()
                                       + self._condition(segment.low, segment.high),
                                       doing=f"counting rows of {self.name}"))

    def summaries(self, segments: Sequence[Segment]) -> list[Summary]:
        """(rows, checksum) of each segment: one statement, one range scan per segment."""
        if not segments:
            return []
        checksum = self.sql.row_hash(self.table.columns)
        parts = [f"SELECT {i} AS s, COUNT(*) AS n, BIT_XOR({checksum}) AS x FROM {self.name} WHERE ".encode()
                 + self._condition(segment.low, segment.high) for i, segment in enumerate(segments)]
        found = self.session.rows(b" UNION ALL ".join(parts), doing=f"summing segments of {self.name}")
        result = {int(i): Summary(int(n), int(x or 0)) for i, n, x in found}
        return [result.get(i, Summary(0, 0)) for i in range(len(segments))]

    def boundaries(self, segment: Segment, rows: int, parts: int) -> list[bytes]:
        """Keys that cut `segment` (of `rows` rows on this side) into about `parts` parts. Where the first key
        column is an integer, the cuts are evenly spaced values of it (prefix keys), computed without reading
        the table; otherwise (or where the segment holds one value of it) a chain of keyset steps along the
        primary key, formatting only the cut keys."""
        cuts = self.integer_cuts(segment, parts)
        return cuts if cuts is not None else self._stepped_cuts(segment, rows, parts)

    def integer_cuts(self, segment: Segment, parts: int) -> list[bytes] | None:
        """Evenly spaced values of an integer first key column inside `segment`, as prefix keys; None where the
        first key column is not an integer or the segment holds fewer than two of its values."""
        first = self.table.key_columns[0]
        if first.data_type not in INTEGER_TYPES or first.data_type == "bit":  # bit keys are b'...' literals
            return None
        low = None if segment.low is None else _first_int(segment.low)
        high = None if segment.high is None else _first_int(segment.high)
        if low is None or high is None:
            ref = self.sql.name(first.name)
            found = self.session.rows(f"SELECT MIN({ref}), MAX({ref}) FROM {self.name}"
                                      + (f" WHERE {self.where}" if self.where else ""),
                                      doing=f"reading the key range of {self.name}")
            if not found or found[0][0] is None:
                return None
            low = int(found[0][0]) if low is None else low
            high = int(found[0][1]) + 1 if high is None else high
        # cut values c with low < c < high (a prefix (c) lies below every key starting with c)
        span = high - low - 1
        if span < 1:
            return None
        step = max(1, -(-span // parts))
        return [f"('{value}')".encode() for value in range(low + step, high, step)][:parts - 1]

    def _stepped_cuts(self, segment: Segment, rows: int, parts: int) -> list[bytes]:
        step = max(1, math.ceil(rows / parts))
        order = ", ".join(self.sql.cut_order(c) for c in self.table.key_columns)
        cuts: list[bytes] = []
        low = segment.low
        for _ in range(parts - 1):
            found = self.session.rows(
                f"SELECT {self.sql.key_literal(self.table)} FROM {self.name} WHERE ".encode()
                + self._condition(low, segment.high) + f" ORDER BY {order} LIMIT 1 OFFSET {step}".encode(),
                doing=f"cutting a segment of {self.name}")
            if not found:
                break
            low = bytes(found[0][0])
            cuts.append(low)
        return cuts

    def row_hashes(self, segment: Segment) -> dict[bytes, tuple[bytes, tuple[Any, ...]]]:
        """Key literal -> (MD5 of the row's bytes, key values) for every row of `segment`."""
        keys = ", ".join(self.sql.name(c) for c in self.table.primary_key)
        found = self.session.rows(
            f"SELECT {self.sql.key_literal(self.table)}, {self.sql.row_md5(self.table.columns)}, {keys} "
            f"FROM {self.name} WHERE ".encode() + self._condition(segment.low, segment.high),
            doing=f"reading rows of {self.name}")
        self.rows_read += len(found)
        return {bytes(r[0]): (r[1].encode() if isinstance(r[1], str) else bytes(r[1]), tuple(r[2:])) for r in found}

    def values(self, keys: Sequence[bytes], summarize_binary: bool = True) -> dict[bytes, list[Any]]:
        """Each column's value for the rows of `keys` (binary columns as `Binary` size and MD5 summaries)."""
        columns = [self.sql.binary_summary(c) if c.is_binary and summarize_binary else self.sql.exact(c)
                   for c in self.table.columns]
        found = self.session.rows(
            f"SELECT {self.sql.key_literal(self.table)}, {', '.join(columns)} FROM {self.name} "
            "WHERE ".encode() + self.sql.in_keys(self.table, keys),
            doing=f"reading changed rows of {self.name}")
        self.rows_read += len(found)
        summarized = [c.is_binary and summarize_binary for c in self.table.columns]
        return {bytes(r[0]): [_binary(v) if summary and v is not None else _plain(v) for v, summary in
                              zip(r[1:], summarized, strict=True)] for r in found}

    def ordered(self) -> Iterator[dict[str, Any]]:
        """Every row, streamed in key order as Python compares keys: text by its UTF-8 bytes (whatever the
        column's collation), numbers and dates by value."""
        order = ", ".join(self.sql.python_order(c) for c in self.table.key_columns)
        names = [c.name for c in self.table.columns]
        where = f"WHERE {self.where}" if self.where else ""
        select = ", ".join(self.sql.exact(c) for c in self.table.columns)
        for row in self.session.stream(f"SELECT {select} FROM {self.name} {where} ORDER BY {order}",
                                       doing=f"reading {self.name}"):
            self.rows_read += 1
            yield dict(zip(names, (_plain(v) for v in row), strict=True))


def _first_int(key: bytes) -> int:
    """The first column's value of a key literal whose first column is an integer: `('12',...)` -> 12."""
    return int(split_literal(key)[0].strip(b"'"))


def _plain(value: Any) -> Any:
    """bytes for a driver's memoryview (psycopg's bytea), the value itself otherwise."""
    return bytes(value) if isinstance(value, memoryview) else value


def _binary(value: Any) -> Binary:
    size, md5 = (value.decode() if isinstance(value, bytes) else str(value)).split(" ")
    return Binary(int(size), md5)

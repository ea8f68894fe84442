"""A table (optionally restricted) on a database server, as one side of a diff. Every checksum is computed
by the server over the exact bytes of each row (its SQL literal: blobs as hex, FLOAT widened to DOUBLE)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from djshare.sql.catalog import Column, TableInfo
from djshare.sql.transfer import TEXT_TYPES, key_bound, key_condition, row_literal, split_literal
from djshare.sync.actions import Binary
from djshare.sync.segments import Segment, Summary
from djshare.sync.stream import INTEGER_TYPES

ROW_HASH = "CAST(CONV(LEFT(MD5({row}), 16), 16, 10) AS UNSIGNED)"


NUMERIC_TYPES = (INTEGER_TYPES - {"bit"}) | {"decimal", "double", "float", "date", "datetime", "timestamp", "time"}


def hash_input(columns: Sequence[Column]) -> str:
    """SQL for the bytes a row is hashed over, built so that no two different rows give the same input: each
    column's encoding is prefix-free. Numbers, dates and times as their text followed by `,` (which their
    text never holds), FLOAT widened to DOUBLE (exact); strings and binary values as `<byte length>:<bytes>`
    (raw bytes: blobs are not hexed); NULL as `N` (numbers) or `-` (strings), which no other encoding of the
    column starts with."""
    parts = []
    for column in columns:
        ref = f"`{column.name}`"
        if column.data_type in NUMERIC_TYPES:
            value = f"CAST({ref} AS DOUBLE)" if column.data_type == "float" else ref
            parts.append(f"IFNULL(CONCAT({value}, ','), 'N')")
        else:
            value = f"CAST({ref} AS BINARY)" if column.data_type == "bit" else ref
            parts.append(f"IFNULL(CONCAT(LENGTH({value}), ':', {value}), '-')")
    return "CONCAT(" + ", ".join(parts) + ")"


class SqlSession(Protocol):
    """What a diff side needs of a connection: `Session` (MariaDB) and `postgres.PgSession` have it."""

    def rows(self, statement: str | bytes, args: Sequence[Any] | None = None,
             doing: str = "") -> list[tuple[Any, ...]]: ...

    def scalar(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> Any: ...

    def stream(self, statement: str | bytes, args: Sequence[Any] | None = None,
               doing: str = "") -> Iterator[tuple[Any, ...]]: ...


class MariaDB:
    """SQL fragments of a diff side on MariaDB."""

    def name(self, column: str) -> str:
        return f"`{column}`"

    def table(self, info: TableInfo) -> str:
        return info.full_name

    def key_literal(self, info: TableInfo) -> str:
        return row_literal(info.key_columns)

    def bound(self, info: TableInfo, key: bytes, operator: str) -> bytes:
        return key_bound(info, key, operator)

    def in_keys(self, info: TableInfo, keys: Sequence[bytes]) -> bytes:
        return key_condition(info, keys)

    def row_hash(self, columns: Sequence[Column]) -> str:
        """A 64-bit hash of each row (unsigned), to XOR over a segment."""
        return ROW_HASH.format(row=hash_input(columns))

    def row_md5(self, columns: Sequence[Column]) -> str:
        return f"MD5({hash_input(columns)})"

    def binary_summary(self, column: Column) -> str:
        ref = self.name(column.name)
        return f"IF({ref} IS NULL, NULL, CONCAT(LENGTH({ref}), ' ', MD5({ref})))"

    def exact(self, column: Column) -> str:
        return exact(column)

    def cut_order(self, column: Column) -> str:
        """ORDER BY term that agrees with `bound`'s comparisons."""
        return self.name(column.name)

    def python_order(self, column: Column) -> str:
        """ORDER BY term giving Python's order (text by its bytes)."""
        ref = self.name(column.name)
        return f"CAST({ref} AS BINARY)" if column.data_type in TEXT_TYPES else ref


class PostgreSQL(MariaDB):
    """SQL fragments of a diff side on PostgreSQL: text keys compared and ordered `COLLATE "C"` (bytes), on
    both sides alike whatever the databases' collations; the same prefix-free row encoding as on MariaDB, over
    PostgreSQL's text forms (so hashes agree between PostgreSQL servers, not with MariaDB: a MariaDB table and a
    PostgreSQL one are compared by streaming)."""

    def name(self, column: str) -> str:
        return '"' + column.replace('"', '""') + '"'

    def table(self, info: TableInfo) -> str:
        return f"{self.name(info.schema)}.{self.name(info.name)}"

    def key_literal(self, info: TableInfo) -> str:
        parts = " || ',' || ".join(f"quote_nullable({self.name(c.name)})" for c in info.key_columns)
        return f"convert_to('(' || {parts} || ')', 'UTF8')"

    def _reference(self, column: Column) -> str:
        return self.python_order(column)

    def bound(self, info: TableInfo, key: bytes, operator: str) -> bytes:
        return key_bound(info, key, operator, reference=self._reference)

    def in_keys(self, info: TableInfo, keys: Sequence[bytes]) -> bytes:
        joined = b",".join(keys)
        if not joined:
            return b"FALSE"
        names = ", ".join(self.name(c.name) for c in info.key_columns)
        return f"({names}) IN (".encode() + joined + b")"

    def _encoding(self, columns: Sequence[Column]) -> str:
        parts = []
        for column in columns:
            ref = self.name(column.name)
            if column.data_type in NUMERIC_TYPES:
                parts.append(f"convert_to(coalesce({ref}::text || ',', 'N'), 'UTF8')")
            elif column.is_binary:
                parts.append(f"coalesce(convert_to(octet_length({ref})::text || ':', 'UTF8') || {ref}, '\\x2d')")
            else:
                parts.append(f"coalesce(convert_to(octet_length({ref}::text)::text || ':' || {ref}::text, 'UTF8'), "
                             "'\\x2d')")
        return " || ".join(parts)

    def row_hash(self, columns: Sequence[Column]) -> str:
        return f"('x' || left(md5({self._encoding(columns)}), 16))::bit(64)::bigint"

    def row_md5(self, columns: Sequence[Column]) -> str:
        return f"md5({self._encoding(columns)})"

    def binary_summary(self, column: Column) -> str:
        ref = self.name(column.name)
        return f"CASE WHEN {ref} IS NULL THEN NULL ELSE octet_length({ref})::text || ' ' || md5({ref}) END"

    def exact(self, column: Column) -> str:
        return self.name(column.name)  # psycopg gives real and double values exactly

    def cut_order(self, column: Column) -> str:
        return self.python_order(column)

    def python_order(self, column: Column) -> str:
        ref = self.name(column.name)
        return f'{ref} COLLATE "C"' if column.collation == "C" else ref


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


def exact(column: Column) -> str:
    """The column as a SELECT expression whose value reaches Python exactly: MariaDB sends FLOAT as text with
    six significant digits, so FLOAT is widened to DOUBLE (exact) on the server."""
    return f"CAST(`{column.name}` AS DOUBLE)" if column.data_type == "float" else f"`{column.name}`"


def _first_int(key: bytes) -> int:
    """The first column's value of a key literal whose first column is an integer: `('12',...)` -> 12."""
    return int(split_literal(key)[0].strip(b"'"))


def _plain(value: Any) -> Any:
    """bytes for a driver's memoryview (psycopg's bytea), the value itself otherwise."""
    return bytes(value) if isinstance(value, memoryview) else value


def _binary(value: Any) -> Binary:
    size, md5 = (value.decode() if isinstance(value, bytes) else str(value)).split(" ")
    return Binary(int(size), md5)

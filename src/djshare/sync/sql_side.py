"""A table (optionally restricted) on a database server, as one side of a diff. Every checksum is computed
by the server over the exact bytes of each row (its SQL literal: blobs as hex, FLOAT widened to DOUBLE)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from djshare.sql.catalog import Column, TableInfo
from djshare.sql.connection import Session
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


class TableSide:
    def __init__(self, session: Session, table: TableInfo, where: str = "") -> None:
        self.session = session
        self.table = table
        self.where = where.strip()
        self.keys = f"({', '.join(f'`{c}`' for c in table.primary_key)})"
        self.rows_read = 0  # rows this side sent over the network (row-level data, not summaries)

    def _condition(self, low: bytes | None, high: bytes | None) -> bytes:
        parts = [b"TRUE"]
        if self.where:
            parts.append(f"({self.where})".encode())
        if low is not None:
            parts.append(key_bound(self.table, low, ">="))
        if high is not None:
            parts.append(key_bound(self.table, high, "<"))
        return b" AND ".join(parts)

    def count(self, segment: Segment) -> int:
        return int(self.session.scalar(f"SELECT COUNT(*) FROM {self.table.full_name} WHERE ".encode()
                                       + self._condition(segment.low, segment.high),
                                       doing=f"counting rows of {self.table.full_name}"))

    def summaries(self, segments: Sequence[Segment]) -> list[Summary]:
        """(rows, checksum) of each segment: one statement, one range scan per segment."""
        if not segments:
            return []
        checksum = ROW_HASH.format(row=hash_input(self.table.columns))
        parts = [f"SELECT {i} AS s, COUNT(*) AS n, BIT_XOR({checksum}) AS x FROM {self.table.full_name} WHERE ".encode()
                 + self._condition(segment.low, segment.high) for i, segment in enumerate(segments)]
        found = self.session.rows(b" UNION ALL ".join(parts), doing=f"summing segments of {self.table.full_name}")
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
            found = self.session.rows(f"SELECT MIN(`{first.name}`), MAX(`{first.name}`) FROM {self.table.full_name}"
                                      + (f" WHERE {self.where}" if self.where else ""),
                                      doing=f"reading the key range of {self.table.full_name}")
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
        order = ", ".join(f"`{c}`" for c in self.table.primary_key)
        cuts: list[bytes] = []
        low = segment.low
        for _ in range(parts - 1):
            found = self.session.rows(
                f"SELECT {row_literal(self.table.key_columns)} FROM {self.table.full_name} WHERE ".encode()
                + self._condition(low, segment.high) + f" ORDER BY {order} LIMIT 1 OFFSET {step}".encode(),
                doing=f"cutting a segment of {self.table.full_name}")
            if not found:
                break
            low = bytes(found[0][0])
            cuts.append(low)
        return cuts

    def row_hashes(self, segment: Segment) -> dict[bytes, tuple[bytes, tuple[Any, ...]]]:
        """Key literal -> (MD5 of the row's bytes, key values) for every row of `segment`."""
        keys = ", ".join(f"`{c}`" for c in self.table.primary_key)
        found = self.session.rows(
            f"SELECT {row_literal(self.table.key_columns)}, MD5({hash_input(self.table.columns)}), {keys} "
            f"FROM {self.table.full_name} WHERE ".encode() + self._condition(segment.low, segment.high),
            doing=f"reading rows of {self.table.full_name}")
        self.rows_read += len(found)
        return {bytes(r[0]): (r[1].encode() if isinstance(r[1], str) else bytes(r[1]), tuple(r[2:])) for r in found}

    def values(self, keys: Sequence[bytes], summarize_binary: bool = True) -> dict[bytes, list[Any]]:
        """Each column's value for the rows of `keys` (binary columns as `Binary` size and MD5 summaries)."""
        columns = []
        for column in self.table.columns:
            ref = f"`{column.name}`"
            columns.append(f"IF({ref} IS NULL, NULL, CONCAT(LENGTH({ref}), ' ', MD5({ref})))"
                           if column.is_binary and summarize_binary else exact(column))
        found = self.session.rows(
            f"SELECT {row_literal(self.table.key_columns)}, {', '.join(columns)} FROM {self.table.full_name} "
            "WHERE ".encode() + key_condition(self.table, keys),
            doing=f"reading changed rows of {self.table.full_name}")
        self.rows_read += len(found)
        summarized = [c.is_binary and summarize_binary for c in self.table.columns]
        return {bytes(r[0]): [_binary(v) if summary and v is not None else v for v, summary in
                              zip(r[1:], summarized, strict=True)] for r in found}

    def ordered(self) -> Iterator[dict[str, Any]]:
        """Every row, streamed in key order as Python compares keys: text by its UTF-8 bytes (whatever the
        column's collation), numbers and dates by value."""
        order = ", ".join(f"CAST(`{c.name}` AS BINARY)" if c.data_type in TEXT_TYPES else f"`{c.name}`"
                          for c in self.table.key_columns)
        names = [c.name for c in self.table.columns]
        where = f"WHERE {self.where}" if self.where else ""
        select = ", ".join(exact(c) for c in self.table.columns)
        for row in self.session.stream(f"SELECT {select} FROM {self.table.full_name} {where} ORDER BY {order}",
                                       doing=f"reading {self.table.full_name}"):
            self.rows_read += 1
            yield dict(zip(names, row, strict=True))


def exact(column: Column) -> str:
    """The column as a SELECT expression whose value reaches Python exactly: MariaDB sends FLOAT as text with
    six significant digits, so FLOAT is widened to DOUBLE (exact) on the server."""
    return f"CAST(`{column.name}` AS DOUBLE)" if column.data_type == "float" else f"`{column.name}`"


def _first_int(key: bytes) -> int:
    """The first column's value of a key literal whose first column is an integer: `('12',...)` -> 12."""
    return int(split_literal(key)[0].strip(b"'"))


def _binary(value: Any) -> Binary:
    size, md5 = (value.decode() if isinstance(value, bytes) else str(value)).split(" ")
    return Binary(int(size), md5)

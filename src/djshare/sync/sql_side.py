"""A table (optionally restricted) on a database server, as one side of a diff. Every checksum is computed
by the server over the exact bytes of each row (its SQL literal: blobs as hex, FLOAT widened to DOUBLE)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from djshare.sql.catalog import TableInfo
from djshare.sql.connection import Session
from djshare.sql.transfer import key_condition, literal_expression, row_literal
from djshare.sync.segments import Segment, Summary

ROW_HASH = "CAST(CONV(LEFT(MD5({row}), 16), 16, 10) AS UNSIGNED)"


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
            parts.append(f"{self.keys} >= ".encode() + low)
        if high is not None:
            parts.append(f"{self.keys} < ".encode() + high)
        return b" AND ".join(parts)

    def summaries(self, segments: Sequence[Segment]) -> list[Summary]:
        """(rows, checksum) of each segment, in one query."""
        if not segments:
            return []
        cases = b" ".join(f"WHEN {self.keys} < ".encode() + s.high + f" THEN {i}".encode()
                          for i, s in enumerate(segments[:-1]) if s.high is not None)
        segment = b"CASE " + cases + f" ELSE {len(segments) - 1} END".encode() if cases else b"0"
        found = self.session.rows(
            b"SELECT " + segment + f" AS s, COUNT(*), BIT_XOR({ROW_HASH.format(row=row_literal(self.table.columns))}) "
            f"FROM {self.table.full_name} WHERE ".encode() + self._condition(segments[0].low, segments[-1].high)
            + b" GROUP BY s", doing=f"summing segments of {self.table.full_name}")
        result = {int(s): Summary(int(n), int(x)) for s, n, x in found}
        return [result.get(i, Summary(0, 0)) for i in range(len(segments))]

    def boundaries(self, segment: Segment, rows: int, parts: int) -> list[bytes]:
        """Keys that cut `segment` (of `rows` rows on this side) into about `parts` equal parts."""
        step = max(1, math.ceil(rows / parts))
        order = ", ".join(f"`{c}`" for c in self.table.primary_key)
        found = self.session.rows(
            f"SELECT l FROM (SELECT {row_literal(self.table.key_columns)} AS l, ROW_NUMBER() OVER (ORDER BY {order}) "
            f"AS rn FROM {self.table.full_name} WHERE ".encode() + self._condition(segment.low, segment.high)
            + f") AS q WHERE rn > 1 AND (rn - 1) % {step} = 0 ORDER BY rn".encode(),
            doing=f"cutting a segment of {self.table.full_name}")
        return [bytes(r[0]) for r in found]

    def row_hashes(self, segment: Segment) -> dict[bytes, tuple[bytes, list[str]]]:
        """Key literal -> (MD5 of the row's bytes, key column literals) for every row of `segment`."""
        keys = ", ".join(f"CAST({literal_expression(c)} AS BINARY)" for c in self.table.key_columns)
        found = self.session.rows(
            f"SELECT {row_literal(self.table.key_columns)}, MD5({row_literal(self.table.columns)}), {keys} "
            f"FROM {self.table.full_name} WHERE ".encode() + self._condition(segment.low, segment.high),
            doing=f"reading rows of {self.table.full_name}")
        self.rows_read += len(found)
        return {bytes(r[0]): (bytes(r[1].encode() if isinstance(r[1], str) else r[1]),
                              [bytes(v).decode("utf8") for v in r[2:]]) for r in found}

    def values(self, keys: Sequence[bytes], summarize_binary: bool = True) -> dict[bytes, list[str]]:
        """Each column's literal for the rows of `keys` (binary columns as a size and MD5 summary)."""
        columns = []
        for column in self.table.columns:
            if column.is_binary and summarize_binary:
                ref = f"`{column.name}`"
                columns.append(f"IF({ref} IS NULL, 'NULL', CONCAT('<', LENGTH({ref}), ' bytes md5 ', MD5({ref}), '>'))")
            else:
                columns.append(f"CAST({literal_expression(column)} AS BINARY)")
        found = self.session.rows(
            f"SELECT {row_literal(self.table.key_columns)}, {', '.join(columns)} FROM {self.table.full_name} "
            "WHERE ".encode() + key_condition(self.table, keys),
            doing=f"reading changed rows of {self.table.full_name}")
        self.rows_read += len(found)
        return {bytes(r[0]): [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in r[1:]] for r in found}

"""Diffing two row streams in key order (pure): for sides that are not both database tables (a CSV file, any
iterable of dicts, a query), rows are compared one pair at a time as they stream, memory bounded.

Keys are compared as Python compares tuples; a database side streams its rows in that order (text keys by
their UTF-8 bytes). Values from an untyped side (CSV text, loosely typed dicts) are converted to the column
types of the database side before comparing, so "7" in a CSV equals 7 in an int column.
"""

from __future__ import annotations

import datetime
import decimal
import struct
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from djshare.backends.catalog import BINARY_TYPES, INTEGER_TYPES
from djshare.errors import DjshareError
from djshare.sync.actions import Action

FLOAT_TYPES = frozenset({"float", "double"})

Row = Mapping[str, Any]


def convert(data_type: str, value: Any) -> Any:
    """`value` as the database driver would give a column of `data_type` (information_schema DATA_TYPE).
    Text converts to numbers, decimals, dates and datetimes (ISO format); an empty text in a non-text column
    is NULL; UUIDs become their 16 bytes; text in a binary column becomes its UTF-8 bytes."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, str):
        if data_type in BINARY_TYPES:
            return value.encode()
        text_like = not (data_type in INTEGER_TYPES or data_type in FLOAT_TYPES
                         or data_type in {"decimal", "date", "datetime", "timestamp"})
        if text_like:
            return value
        if value == "":
            return None
    try:
        if data_type in INTEGER_TYPES:
            return int(value)
        if data_type == "float":  # single precision: the same float32 whatever text or double it came as
            return struct.unpack("f", struct.pack("f", float(value)))[0]
        if data_type in FLOAT_TYPES:
            return float(value)
        if data_type == "decimal":
            return decimal.Decimal(str(value))
        if data_type == "date" and isinstance(value, str):
            return datetime.date.fromisoformat(value)
        if data_type in {"datetime", "timestamp"} and isinstance(value, str):
            return datetime.datetime.fromisoformat(value)
    except (ValueError, decimal.InvalidOperation) as error:
        raise DjshareError(f"Value {value!r} is not a {data_type}: {error}. Fix the value or the column.") from None
    return value


def typed(rows: Iterable[Row], types: Mapping[str, str]) -> Generator[dict[str, Any], None, None]:
    """Rows with each value converted to the type of its column (columns not in `types` stay as they are)."""
    for row in rows:
        yield {name: convert(types[name], value) if name in types else value for name, value in row.items()}


def key_of(row: Row, key: Sequence[str], side: str) -> tuple[Any, ...]:
    try:
        return tuple(row[name] for name in key)
    except KeyError as error:
        raise DjshareError(f"A row of the {side} side has no key column {error}: {dict(row)!r}. Name the key "
                           "columns with --key (key=...).") from None


def ordered(rows: Iterable[Row], key: Sequence[str], side: str) -> Iterator[Row]:
    """Check that rows come in strictly increasing key order (unique keys) as they pass."""
    previous: tuple[Any, ...] | None = None
    for row in rows:
        current = key_of(row, key, side)
        try:
            wrong = previous is not None and current <= previous
        except TypeError:
            raise DjshareError(f"Key values of the {side} side have mixed types ({previous!r} then {current!r}): "
                               "give every key column one type.") from None
        if wrong:
            problem = "is repeated" if current == previous else f"comes after {previous!r}"
            raise DjshareError(f"Key {current!r} of the {side} side {problem}: rows must be unique and in key "
                               "order (leave `ordered` off to have them sorted).")
        previous = current
        yield row


def _before(first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    try:
        return first < second
    except TypeError:
        raise DjshareError(f"Keys {first!r} (left) and {second!r} (right) have different types: declare the "
                           "same key columns on both sides, with values of one type.") from None


def merge(left: Iterable[Row], right: Iterable[Row], key: Sequence[str], branch: str,
          with_rows: bool = False) -> Iterator[Action]:
    """Actions that make `right` like `left`, from two row streams in strictly increasing key order. Only
    columns both rows have are compared."""
    lefts, rights = ordered(left, key, "left"), ordered(right, key, "right")
    a, b = next(lefts, None), next(rights, None)
    while a is not None or b is not None:
        ka = None if a is None else key_of(a, key, "left")
        kb = None if b is None else key_of(b, key, "right")
        if a is not None and ka is not None and (kb is None or _before(ka, kb)):
            yield Action("added", branch, dict(zip(key, ka, strict=True)), row=dict(a) if with_rows else None)
            a = next(lefts, None)
        elif b is not None and kb is not None and (ka is None or _before(kb, ka)):
            yield Action("removed", branch, dict(zip(key, kb, strict=True)))
            b = next(rights, None)
        elif a is not None and b is not None and ka is not None:
            changes = {c: (a[c], b[c]) for c in a if c in b and c not in key and a[c] != b[c]}
            if changes:
                yield Action("changed", branch, dict(zip(key, ka, strict=True)), changes,
                             row=dict(a) if with_rows else None)
            a, b = next(lefts, None), next(rights, None)

"""Actions: what a diff found, as typed records (pure).

The idiom, as in the seed's datastoresync: `left` is what we need (the source of truth), `right` what we have;
an action says what to do to `right`: add a row only `left` has, remove a row only `right` has, or change the
columns that differ.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("added", "removed", "changed")


@dataclass(frozen=True)
class Binary:
    """A binary value summarized by the server (its size and MD5) instead of sent: blobs can be large."""

    size: int
    md5: str

    def __str__(self) -> str:
        return f"<{self.size} bytes md5 {self.md5}>"


@dataclass(frozen=True)
class Action:
    """One difference for one key. `kind` is added (only left), removed (only right) or changed.

    Values are Python values as the database driver (or the CSV/iterable source) gives them; binary values of
    changed columns are `Binary` summaries unless the diff was asked for values. `row` holds the whole left
    row for added and changed actions when the diff was asked for rows (to apply them).
    """

    kind: str
    branch: str  # the table (entity type) the key belongs to
    key: dict[str, Any]
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # column -> (left, right)
    row: dict[str, Any] | None = None

    def text(self, values: bool = False) -> str:
        """`values`: binary values in hex (0x...), not as size and MD5."""
        key = ", ".join(f"{k}={show(v, values)}" for k, v in self.key.items())
        mark = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        lines = [f"{mark} {self.branch} ({key})"]
        lines += [f"    {column}: {show(right, values)} -> {show(left, values)}"
                  for column, (left, right) in self.changes.items()]
        return "\n".join(lines)

    def json(self, values: bool = False) -> str:
        """`values`: binary values as hex strings ("0x..."), not as size and MD5."""
        return json.dumps({"kind": self.kind, "branch": self.branch, "key": self.key,
                           "changes": {c: {"left": a, "right": b} for c, (a, b) in self.changes.items()}},
                          ensure_ascii=False, default=lambda value: plain(value, values))


def plain(value: Any, values: bool = False) -> Any:
    """A JSON-friendly form of a database value (`values`: bytes in hex, not summarized)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex() if values else str(summarize(bytes(value)))
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta | decimal.Decimal | uuid.UUID | Binary):
        return str(value)
    return repr(value)


def summarize(value: bytes) -> Binary:
    import hashlib

    return Binary(len(value), hashlib.md5(value).hexdigest())  # noqa: S324 - a fingerprint, not security


def show(value: Any, values: bool = False) -> str:
    """A value as a diff prints it: strings quoted, NULL as NULL, bytes summarized (`values`: in hex)."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex() if values else str(summarize(bytes(value)))
    if isinstance(value, str):
        return repr(value)
    return str(value)


def counts(actions: Iterable[Action]) -> dict[str, int]:
    found = Counter(action.kind for action in actions)
    return {kind: found[kind] for kind in KINDS}

"""Typed keys: how a local side whose key columns differ in type from the source's (another backend or format)
finds which entities it holds. The pull loop names entities by the source's key literals; such a side reads the
typed key values of a batch from the source and looks those up in its own tables, compared in one form (the
side's `key_of`). The start of step 6's one `KeyMap`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from djshare.formats.heading import Heading

CHUNK = 1000  # typed keys per lookup query

TypedKey = tuple[Any, ...]


class Rows(Protocol):
    """A session of either backend."""

    def rows(self, statement: str | bytes, args: Sequence[Any] | None = None,
             doing: str = "") -> list[tuple[Any, ...]]: ...

    def stream(self, statement: str | bytes, args: Sequence[Any] | None = None,
               doing: str = "") -> Iterator[tuple[Any, ...]]: ...


def local_keys(session: Rows, master: Heading, typed: Sequence[TypedKey], quote: Callable[[str], str],
               key_of: Callable[[Sequence[Any]], TypedKey]) -> set[TypedKey]:
    """Which of the `typed` keys the local `master` table holds (each as `key_of` gives it), in lookups of CHUNK."""
    names = ", ".join(quote(c.name) for c in master.key)
    row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
    found: set[TypedKey] = set()
    for start in range(0, len(typed), CHUNK):
        chunk = typed[start:start + CHUNK]
        found |= {key_of(r) for r in session.rows(
            f"SELECT {names} FROM {master.full_name} WHERE ({names}) IN ({', '.join([row] * len(chunk))})",
            [v for key in chunk for v in key], doing=f"reading {master.full_name}")}
    return found


def local_key_pages(session: Rows, master: Heading, size: int, quote: Callable[[str], str],
                    key_of: Callable[[Sequence[Any]], TypedKey],
                    on_source: Callable[[list[TypedKey]], dict[TypedKey, bytes]],
                    stranded: list[TypedKey]) -> Iterator[list[bytes]]:
    """The local `master` table's keys, `size` at a time in key order, as source key literals (`on_source`: the
    literals of the typed keys the source still has). Keys the source no longer has are added to `stranded`: their
    rows stay, for a person to decide on."""
    names = ", ".join(quote(c.name) for c in master.key)
    rows = session.stream(f"SELECT {names} FROM {master.full_name} ORDER BY {names}",
                          doing=f"reading {master.full_name}")
    while page := list(itertools.islice(rows, size)):
        typed = [key_of(r) for r in page]
        known = on_source(typed)
        stranded += [k for k in typed if k not in known]
        yield [known[k] for k in typed if k in known]

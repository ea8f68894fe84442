"""One neutral heading of a local table: what a link declares on its local side, whatever the backends and formats
of its two sides (the one `Attribute`/`Heading` that replaces each link kind's own `Target`/`LocalTable`), and the
one way a declared local table is compared with what it should be. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from djshare.backends.catalog import Column, TableInfo


@dataclass(frozen=True)
class Attribute:
    """One column of a local table, as the local side declares it and as a source value converts into it."""

    name: str
    sql_type: str  # the local server's type
    label: str  # the DataJoint type written first in the comment (`uuid`, `int32`, `<blob>`, `blob@store`); "" none
    comment: str  # the rest of the comment
    nullable: bool
    default: str | None  # SQL default expression; "NULL" for a nullable column, None for none
    kind: str = "plain"  # how a source value converts: plain, uuid, json, bool, char, ref (an object in a store)
    store: str = ""  # kind ref: the local store
    source_store: str = ""  # kind ref: the source store
    codec: str = ""  # kind ref: blob or attach
    enum_values: tuple[str, ...] = ()  # a PostgreSQL enum type's labels (declared before the table)

    @property
    def full_comment(self) -> str:
        return f":{self.label}:{self.comment}" if self.label else self.comment


@dataclass(frozen=True)
class Heading:
    """A local table: its source table, the local schema, its attributes and its full name as the local server
    quotes it."""

    source: TableInfo
    schema: str
    columns: tuple[Attribute, ...]
    full_name: str

    @property
    def key(self) -> tuple[Attribute, ...]:
        """The primary-key attributes, in the order of the source's key columns."""
        return tuple(c for c in self.columns if c.name in self.source.primary_key)


def headings(source: TableInfo, parts: tuple[TableInfo, ...], schema: str,
             attribute: Callable[[Column, TableInfo], Attribute], quote: Callable[[str, str], str]
             ) -> tuple[Heading, ...]:
    """The master, then the parts, as local tables in `schema`: each column through `attribute` (which refuses what
    the local side cannot hold), each name quoted by the local server's `quote(schema, table)`."""
    return tuple(Heading(t, schema, tuple(attribute(c, t) for c in t.columns), quote(schema, t.name))
                 for t in (source, *parts))


def differences(local: TableInfo, source: TableInfo, signature: Callable[[Column], object]) -> list[str]:
    """How `local` differs from `source` by each column's `signature` (empty when they match)."""
    return _compare(source.name, {c.name: signature(c) for c in local.columns},
                    {c.name: signature(c) for c in source.columns}, local.primary_key, source.primary_key)


def mismatch(heading: Heading, local: TableInfo) -> list[str]:
    """How a declared local table differs from its heading in what a link relies on (names, nullability, key);
    empty when it matches. The same sentences as `differences`."""
    return _compare(heading.source.name, {c.name: c.nullable for c in local.columns},
                    {c.name: c.nullable for c in heading.columns}, tuple(sorted(local.primary_key)),
                    tuple(sorted(heading.source.primary_key)))


def _compare(table: str, mine: Mapping[str, object], theirs: Mapping[str, object], my_key: tuple[str, ...],
             their_key: tuple[str, ...]) -> list[str]:
    found = [f"column `{n}` of `{table}` differs" for n in sorted(mine.keys() & theirs.keys()) if mine[n] != theirs[n]]
    found += [f"column `{n}` of `{table}` is only in the source" for n in sorted(theirs.keys() - mine.keys())]
    found += [f"column `{n}` of `{table}` is only local" for n in sorted(mine.keys() - theirs.keys())]
    if tuple(my_key) != tuple(their_key):
        found.append(f"the primary key of `{table}` differs")
    return found

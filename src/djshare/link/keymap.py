"""Typed keys: how a local side whose key columns differ in type from the source's (another backend or format)
finds which entities it holds. The pull loop names entities by the source's key literals; such a side reads the
typed key values of a batch from the source and looks those up in its own tables, compared in one form (the
side's `key_of`); `TypedSide` is what such sides share."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from djshare.backends.mariadb_rows import MariaDB
from djshare.formats.heading import Attribute, Heading
from djshare.link.stale import entity_changes
from djshare.link.tables import LinkTables
from djshare.sync.actions import Action

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


class TypedSide:
    """What the two local sides whose tables hold other types than the source's share (a 0.14 or 2.x MariaDB source
    into 2.x on PostgreSQL, `dj2_local.PostgresLocal`; 2.x on PostgreSQL into MariaDB, `pg_mariadb_local.MariaDBCopy`):
    which entities it holds (`present`, `count`, `key_pages`) and which differ from the source (`entities`,
    `stale_keys`), over the source's and the local server's dialects. A side gives how a value converts: `_key`
    (a key value as this side holds it), `_source_param` (a local key value as the source's driver takes it),
    `_compared_source` / `_compared_local` (a value in the one form rows are compared in), `_local_select`. How rows
    and objects are written stays with each side (COPY or INSERT batches; 0.14's objects or 2.x's)."""

    source_sql: MariaDB
    local_sql: MariaDB

    def __init__(self, source: Any, local: Any, tables: LinkTables, declared: tuple[Heading, ...]) -> None:
        self.source, self.local_session, self.tables, self.declared = source, local, tables, declared
        self.name = declared[0].full_name
        self.stranded: list[TypedKey] = []

    def _key(self, values: Sequence[Any]) -> TypedKey:
        raise NotImplementedError

    def _source_param(self, column: Attribute, value: Any) -> Any:
        return value

    def _compared_source(self, column: Attribute, value: Any) -> Any:
        raise NotImplementedError

    def _compared_local(self, column: Attribute, value: Any) -> Any:
        raise NotImplementedError

    def _local_select(self, column: Attribute) -> str:
        return self.local_sql.quote(column.name)

    def _source_keys(self, condition: bytes | str, args: Sequence[Any] | None = None) -> dict[TypedKey, bytes]:
        """Typed key (as this side holds it) -> source key literal, of the source's entities matching `condition`
        (key literals as bytes; or text with placeholders for `args`, which the drivers format only into text)."""
        source, sql = self.tables.source, self.source_sql
        head = (f"SELECT {sql.key_literal(source)}, {', '.join(sql.exact(c) for c in source.key_columns)} FROM "
                f"{sql.table(source)} WHERE ")
        statement = head + condition if isinstance(condition, str) else head.encode() + condition
        return {self._key(row[1:]): bytes(row[0]) for row in self.source.rows(
            statement, args, doing=f"reading keys of {sql.table(source)}")}

    def _local_keys(self, typed: Sequence[TypedKey]) -> set[TypedKey]:
        return local_keys(self.local_session, self.declared[0], typed, self.local_sql.quote, self._key)

    def present(self, keys: list[bytes]) -> set[bytes]:
        typed = self._source_keys(self.source_sql.in_keys(self.tables.source, keys))
        return {typed[k] for k in self._local_keys(list(typed))}

    def count(self) -> int:
        return int(self.local_session.scalar(f"SELECT COUNT(*) FROM {self.name}"))

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        """Local keys as source literals. Keys the source no longer has (no literal can be made for them) are
        collected in `stranded`: their rows stay, for a person to decide on."""
        master, source = self.declared[0], self.tables.source

        def on_source(typed: list[TypedKey]) -> dict[TypedKey, bytes]:
            row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
            return self._source_keys(
                f"({self.source_sql.key_names(source)}) IN ({', '.join([row] * len(typed))})",
                [self._source_param(t, v) for key in typed for t, v in zip(master.key, key, strict=True)])

        return local_key_pages(self.local_session, master, size, self.local_sql.quote, self._key, on_source,
                               self.stranded)

    def entities(self, keys: list[bytes]) -> tuple[dict[bytes, list[Any]], dict[bytes, list[Any]]]:
        """The rows of these entities (master and parts), per source key literal, on the source and here, each in
        the compared form and sorted; an entity without its master row here is absent from the second."""
        source_key, sql = self.tables.source, self.source_sql
        where = sql.in_keys(source_key, keys)
        typed = self._source_keys(where)
        master = self.declared[0]
        theirs: dict[bytes, list[Any]] = {}
        mine: dict[bytes, list[Any]] = {}
        names = ", ".join(self.local_sql.quote(c.name) for c in master.key)
        row = "(" + ", ".join(["%s"] * len(master.key)) + ")"
        for table in self.declared:
            source = table.source
            for found in self.source.rows(
                    f"SELECT {sql.key_literal(source_key)}, {', '.join(sql.exact(c) for c in source.columns)} FROM "
                    f"{sql.table(source)} WHERE ".encode() + where, doing=f"reading {sql.table(source)}"):
                theirs.setdefault(bytes(found[0]), []).append((source.name, *(
                    self._compared_source(t, v) for t, v in zip(table.columns, found[1:], strict=True))))
            if not typed:
                continue
            for found in self.local_session.rows(
                    f"SELECT {names}, {', '.join(self._local_select(c) for c in table.columns)} FROM {table.full_name} "
                    f"WHERE ({names}) IN ({', '.join([row] * len(typed))})", [v for key in typed for v in key],
                    doing=f"reading {table.full_name}"):
                literal = typed.get(self._key(found[:len(master.key)]))
                if literal is not None:
                    mine.setdefault(literal, []).append((source.name, *(
                        self._compared_local(t, v) for t, v in zip(table.columns, found[len(master.key):],
                                                                   strict=True))))
        return ({k: sorted(v, key=repr) for k, v in theirs.items()},
                {k: sorted(v, key=repr) for k, v in mine.items() if any(r[0] == source_key.name for r in v)})

    def stale_keys(self, keys: list[bytes]) -> tuple[list[bytes], int, list[Action]]:
        """The two servers hold different types, so these entities' rows are read from both and compared in the
        local form (float32 by its bits, json by value, objects by their MD5)."""
        theirs, mine = self.entities(keys)
        differ = [k for k in keys if k in mine and mine[k] != theirs.get(k, [])]
        columns = {t.source.name: ([c.name for c in t.columns], t.source.primary_key) for t in self.declared}
        return differ, sum(1 for k in keys if k not in mine), [
            change for k in differ for change in entity_changes(columns, theirs.get(k, []), mine[k])]

"""What can be diffed: a table on a database server (any restriction; a DataJoint table or query expression
gives one), a SQL query, a CSV file, or any iterable of dicts, each with its primary key. A *datastore* is
several of them by branch name (see `datastore.py`)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djshare import backends
from djshare.backends.address import ServerAddress
from djshare.errors import DjshareError
from djshare.restriction import one_condition


@dataclass(frozen=True)
class Table:
    """A table on a server, restricted by `where` (SQL); its key is the table's primary key. Two Tables are
    compared inside their databases (segment checksums, bisection)."""

    address: ServerAddress
    schema: str
    name: str
    where: str = ""

    def __post_init__(self) -> None:
        one_condition(self.where)

    @property
    def label(self) -> str:
        return f"{self.address.label}/{self.schema}.{self.name}"


@dataclass(frozen=True)
class Query:
    """The rows of a SQL query on a server, with its key columns; streamed by the server in key order (text
    keys by their bytes, as Python orders them)."""

    address: ServerAddress
    sql: str
    key: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"query on {self.address.label}"

    def rows(self) -> Iterator[dict[str, Any]]:
        """The query's rows in key order, as dicts (the server's driver types)."""
        with backends.session(self.address) as session:
            yield from session.query_rows(self.sql, self.key, self._check_key)

    def _check_key(self, columns: Mapping[str, Any]) -> None:
        missing = [k for k in self.key if k not in columns]
        if missing:
            raise DjshareError(f"The query has no column {', '.join(missing)} (its columns: "
                               f"{', '.join(columns)}): name its key columns with --key.")


@dataclass(frozen=True)
class Rows:
    """Any iterable of dicts with key columns `key`. Sorted by key in memory unless `ordered` says the rows
    come in strictly increasing key order already (then they stream, and the order is checked)."""

    rows: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]]
    key: tuple[str, ...]
    ordered: bool = False
    label: str = "rows"

    def stream(self, convert: Callable[[Iterable[Mapping[str, Any]]], Iterable[Mapping[str, Any]]] | None = None
               ) -> Iterable[Mapping[str, Any]]:
        """The rows in key order; `convert` (the other side's column types) is applied before they are sorted, so
        that keys sort as the values they are ("11" after "109" as text, 11 before 109 as numbers)."""
        rows = self.rows() if callable(self.rows) else self.rows
        if convert is not None:
            rows = convert(rows)
        if self.ordered:
            return rows
        try:
            return sorted(rows, key=lambda row: tuple(row[k] for k in self.key))
        except KeyError as error:
            raise DjshareError(f"A row of {self.label} has no key column {error}.") from None


def csv_file(path: str | Path, key: Sequence[str], ordered: bool = False, null: str | None = None) -> Rows:
    """A CSV file with a header row. Values are text, converted to the other side's column types when that
    side is a table; a cell equal to `null` (if given) is NULL."""
    path = Path(path)
    if not path.is_file():
        raise DjshareError(f"No CSV file at {path}: give the path of an existing file.")
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    missing = [k for k in key if k not in header]
    if missing:
        raise DjshareError(f"{path} has no column {', '.join(missing)} (its columns: {', '.join(header)}): name "
                           "the key columns with --key.")

    def read() -> Iterator[dict[str, Any]]:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                yield {k: None if null is not None and v == null else v for k, v in row.items()}

    return Rows(read, tuple(key), ordered, str(path))


def datajoint(expression: Any) -> Table:
    """A DataJoint table or restricted table (`Session & "subject='m1'"`) as a diff side: its server (from the
    expression's connection: MariaDB/MySQL, or PostgreSQL under DataJoint 2.x), table and restriction. Works with
    DataJoint 0.14 and 2.x. Joins and projections are not tables: use a Query."""
    if isinstance(expression, type):  # a table class: its instance
        expression = expression()
    connection = expression.connection
    info = connection.conn_info
    full = getattr(expression, "full_table_name", None)
    if full is None or list(getattr(expression, "support", [])) != [full] or _projected(expression, full):
        raise DjshareError(f"This query of {full or 'several tables'} is not a (restricted) table: diff a table, "
                           "or use a Query.")
    schema, name = (part.strip('`"') for part in full.split("."))
    where = expression.where_clause().strip()
    postgresql = getattr(getattr(connection, "adapter", None), "backend", "mysql") == "postgresql"
    address = ServerAddress(info["host"], int(info.get("port") or (5432 if postgresql else 3306)), info["user"],
                            info["passwd"], use_tls=bool(info.get("ssl")),
                            backend="postgresql" if postgresql else "mariadb",
                            database=(info.get("database_name") or "postgres") if postgresql else "")
    return Table(address, schema, name, where[len("WHERE"):].strip() if where.upper().startswith("WHERE") else where)


def _projected(expression: Any, full_name: str) -> bool:
    """Whether a query of one table renamed, computed or dropped columns."""
    import datajoint as dj

    heading = expression.heading
    return heading.names != dj.FreeTable(expression.connection, full_name).heading.names or any(
        attribute.attribute_expression is not None for attribute in heading.attributes.values())


Source = Table | Query | Rows

"""What a server says about its tables, in one shape for every backend (`Column`, `TableInfo`, `ForeignKey`), and
the readers of MariaDB's information_schema: columns, primary keys, part tables, foreign keys."""

from __future__ import annotations

import re
from dataclasses import dataclass

from djshare.backends.mariadb import Session, quote_name
from djshare.errors import UnknownTableError

BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint", "bit", "year"})
TIER_PREFIXES = ("", "_", "__", "#")  # Manual, Imported, Computed, Lookup


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # information_schema DATA_TYPE: int, varchar, longblob, float, ...
    column_type: str  # information_schema COLUMN_TYPE: int(10) unsigned, enum('a','b'), ...
    nullable: bool
    default: str | None  # information_schema COLUMN_DEFAULT (MariaDB quotes string literals)
    comment: str
    extra: str
    collation: str | None = None
    labels: tuple[str, ...] = ()  # an enum's labels in order, where the type does not spell them (PostgreSQL)

    @property
    def is_binary(self) -> bool:
        return self.data_type in BINARY_TYPES


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    comment: str

    @property
    def full_name(self) -> str:
        return quote_name(self.schema, self.name)

    @property
    def key_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.name in self.primary_key)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def schema_exists(session: Session, schema: str) -> bool:
    found = session.scalar("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,))
    return bool(found)


def table_names(session: Session, schema: str) -> list[str]:
    found = session.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name", (schema,)
    )
    return [str(row[0]) for row in found]


def read_table(session: Session, schema: str, name: str) -> TableInfo:
    """Columns in declaration order and the primary key of `schema`.`name`."""
    rows = session.rows(
        "SELECT column_name, data_type, column_type, is_nullable, column_default, column_comment, extra, "
        "collation_name "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, name),
    )
    if not rows:
        raise UnknownTableError(
            f"Table {quote_name(schema, name)} not found on {session.address.host}:{session.address.port} "
            f"(or user {session.address.user} may not see it)."
        )
    columns = tuple(
        Column(str(r[0]), str(r[1]).lower(), str(r[2]), r[3] == "YES", None if r[4] is None else str(r[4]),
               str(r[5]), str(r[6]), None if r[7] is None else str(r[7]))
        for r in rows
    )
    key = session.rows(
        "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = %s AND table_name = %s "
        "AND constraint_name = 'PRIMARY' ORDER BY ordinal_position",
        (schema, name),
    )
    comment = session.scalar(
        "SELECT table_comment FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    )
    return TableInfo(schema, name, columns, tuple(str(r[0]) for r in key), str(comment or ""))


def referencing_columns(session: Session, schema: str, table: str) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every foreign-key column on the server that references `schema`.`table`."""
    return [(str(s), str(t), str(c)) for s, t, c in session.rows(
        "SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage "
        "WHERE referenced_table_schema = %s AND referenced_table_name = %s", (schema, table))]


def tables_named(session: Session, prefix: str, except_schema: str) -> list[tuple[str, str]]:
    """(schema, table) of the server's tables whose names start with `prefix`, outside `except_schema`."""
    like = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
    return [(str(s), str(t)) for s, t in session.rows(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name LIKE %s "
        "AND table_schema <> %s", (like, except_schema))]


def to_snake_case(class_name: str) -> str:
    """DataJoint's rule: CamelCase class name -> snake_case table name."""
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", class_name):
        raise UnknownTableError(
            f"Class name {class_name!r} is not CamelCase (a capital letter, then letters and digits), "
            "so it cannot name a DataJoint table."
        )
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), class_name)[1:]


def to_camel_case(table_name: str) -> str:
    return "".join(part.capitalize() for part in table_name.lstrip("_#").split("_"))


def find_table(session: Session, schema: str, class_name: str) -> str:
    """The name of the table in `schema` that DataJoint class `class_name` stands for, tier prefix included."""
    if not schema_exists(session, schema):
        raise UnknownTableError(
            f"Schema `{schema}` not found on {session.address.host}:{session.address.port} "
            f"(or user {session.address.user} has no privilege on it)."
        )
    snake = to_snake_case(class_name)
    present = set(table_names(session, schema))
    for prefix in TIER_PREFIXES:
        if prefix + snake in present:
            return prefix + snake
    masters = sorted(
        to_camel_case(name) for name in present if not name.startswith("~") and "__" not in name.lstrip("_#")
    )
    raise UnknownTableError(
        f"No table for class {class_name} in `{schema}` on {session.address.host}:{session.address.port}: "
        f"the class name must equal the source table's name (CamelCase of `{snake}`). "
        f"Tables there: {', '.join(masters) or 'none'}."
    )


def part_names(session: Session, schema: str, master: str) -> list[str]:
    """Part tables of `master`: DataJoint names them master__part (one level deep)."""
    prefix = master + "__"
    return [
        name for name in table_names(session, schema)
        if name.startswith(prefix) and "__" not in name[len(prefix):]
    ]


@dataclass(frozen=True)
class ForeignKey:
    child: tuple[str, str]  # (schema, table)
    parent: tuple[str, str]
    columns: tuple[tuple[str, str], ...]  # (child column, parent column) pairs


def foreign_keys_to(session: Session, schemas: list[str] | None = None) -> list[ForeignKey]:
    """Every foreign key the server reports (restricted to parents in `schemas`, if given)."""
    if not schemas:
        return _foreign_keys(session, "", ())
    return _foreign_keys(session, " AND referenced_table_schema IN (" + ",".join(["%s"] * len(schemas)) + ")",
                         tuple(schemas))


def foreign_keys_up(session: Session, schema: str) -> list[ForeignKey]:
    """The foreign keys of the tables in `schema` and, through the schemas they name, of all their ancestors."""
    found: list[ForeignKey] = []
    seen: set[str] = set()
    todo = {schema}
    while todo:
        seen |= todo
        keys = _foreign_keys(session, " AND table_schema IN (" + ",".join(["%s"] * len(todo)) + ")", tuple(todo))
        found += keys
        todo = {fk.parent[0] for fk in keys} - seen
    return found


def _foreign_keys(session: Session, condition: str, args: tuple[str, ...]) -> list[ForeignKey]:
    rows = session.rows(
        "SELECT table_schema, table_name, constraint_name, column_name, referenced_table_schema, "
        "referenced_table_name, referenced_column_name FROM information_schema.key_column_usage "
        f"WHERE referenced_table_name IS NOT NULL{condition} "
        "ORDER BY table_schema, table_name, constraint_name, ordinal_position",
        args,
    )
    grouped: dict[tuple[str, str, str], list[tuple[str, ...]]] = {}
    for schema, table, name, column, parent_schema, parent_table, parent_column in rows:
        grouped.setdefault((str(schema), str(table), str(name)), []).append(
            (str(column), str(parent_schema), str(parent_table), str(parent_column)))
    return [
        ForeignKey((schema, table), (pairs[0][1], pairs[0][2]), tuple((c, pc) for c, _, _, pc in pairs))
        for (schema, table, _), pairs in grouped.items()
    ]


def create_statement(session: Session, full_name: str) -> str:
    """The table's CREATE TABLE statement, as the server writes it (SHOW CREATE TABLE)."""
    return str(session.rows(f"SHOW CREATE TABLE {full_name}", doing=f"reading the declaration of {full_name}")[0][1])

"""The local tables' declarations, as each DataJoint line writes them on each backend: from a neutral heading
(`formats.heading`), or as a copy of the source's own declaration where the backend is the same (its SHOW CREATE
TABLE on MariaDB, its catalog on PostgreSQL), with foreign keys to other tables dropped (their attributes stay)
except a part's key to its master. Pure: text in, statements out; the callers read the source and run them.

- `mariadb_table`: a heading on MariaDB (DataJoint 0.14's layout, or 2.x's with the source's comments), text
  byte-ordered (utf8mb4_bin, as PostgreSQL's "C"); `external_declaration`: 0.14's `~external_<store>`.
- `postgresql_table`: a heading on PostgreSQL as DataJoint 2.3 declares it (enum types first).
- `mariadb_copy`: MariaDB -> MariaDB, the source's CREATE TABLE with comments converted between layouts.
- `postgresql_copy`: PostgreSQL -> PostgreSQL, the source's columns, enum types and comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import quote_name
from djshare.backends.postgresql import key_names, name, text
from djshare.formats.convert import dj014_comment, dj2_comment, renamed_store
from djshare.formats.heading import Heading
from djshare.stores.formats.dj014 import external_table

COMMENT = re.compile(r"COMMENT '(?P<text>(?:[^'\\]|''|\\.)*)'")  # a column's comment in SHOW CREATE TABLE


def external_declaration(schema: str, store: str) -> str:
    """`~external_<store>` as DataJoint 0.14 declares it."""
    return (f"CREATE TABLE IF NOT EXISTS {external_table(schema, store)} (\n"
            "  `hash` binary(16) NOT NULL COMMENT ':uuid:hash of contents (blob), of filename + contents (attach), "
            "or relative filepath (filepath)',\n"
            "  `size` bigint unsigned NOT NULL COMMENT 'size of object in bytes',\n"
            "  `attachment_name` varchar(255) DEFAULT NULL COMMENT 'the filename of an attachment',\n"
            "  `filepath` varchar(1000) DEFAULT NULL COMMENT 'relative filepath or attachment filename',\n"
            "  `contents_hash` binary(16) DEFAULT NULL COMMENT ':uuid:used for the filepath datatype',\n"
            "  `timestamp` timestamp NOT NULL DEFAULT current_timestamp() COMMENT 'automatic timestamp',\n"
            "  PRIMARY KEY (`hash`)\n) ENGINE=InnoDB COMMENT='external storage tracking'")


def _mariadb_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def mariadb_table(table: Heading, master: Heading | None) -> str:
    """CREATE TABLE as DataJoint 0.14 writes it on MariaDB (text columns byte-ordered, as the source's "C")."""
    lines = [f"{quote_name(c.name)} {c.sql_type}" + ("" if c.nullable else " NOT NULL")
             + (f" DEFAULT {c.default}" if c.default and c.default != "NULL" else "")
             + (" DEFAULT NULL" if c.nullable else "") + f" COMMENT {_mariadb_text(c.full_comment)}"
             for c in table.columns]
    lines.append(f"PRIMARY KEY ({', '.join(quote_name(c.name) for c in table.key)})")
    if master is not None:
        names = ", ".join(quote_name(c.name) for c in master.key)
        lines.append(f"FOREIGN KEY ({names}) REFERENCES {master.full_name} ({names}) ON UPDATE CASCADE "
                     "ON DELETE RESTRICT")
    lines += [f"FOREIGN KEY ({quote_name(c.name)}) REFERENCES {external_table(table.schema, c.store)} (`hash`)"
              for c in table.columns if c.kind == "ref"]
    return (f"CREATE TABLE IF NOT EXISTS {table.full_name} (\n  " + ",\n  ".join(lines) + "\n) ENGINE=InnoDB "
            f"DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT={_mariadb_text(table.source.comment)}")


def postgresql_table(table: Heading, master: Heading | None) -> list[str]:
    """CREATE statements for one table as DataJoint 2.3 writes them on PostgreSQL (enum types first)."""
    statements = [
        f"DO $$ BEGIN CREATE TYPE {name(table.schema, c.sql_type)} AS ENUM ("
        + ", ".join("'" + v.replace("'", "''") + "'" for v in c.enum_values) + "); "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        for c in table.columns if c.enum_values
    ]
    lines = []
    for c in table.columns:
        sql_type = name(table.schema, c.sql_type) if c.enum_values else c.sql_type
        lines.append(f"{name(c.name)} {sql_type}" + ("" if c.nullable else " NOT NULL")
                     + (f" DEFAULT {c.default}" if c.default and c.default != "NULL" else ""))
    lines.append(f"PRIMARY KEY ({', '.join(name(c.name) for c in table.key)})")
    if master is not None:
        names = ", ".join(name(c.name) for c in master.key)
        lines.append(f"FOREIGN KEY ({names}) REFERENCES {master.full_name} ({names}) ON UPDATE CASCADE "
                     "ON DELETE RESTRICT")
    statements.append(f"CREATE TABLE IF NOT EXISTS {table.full_name} (\n  " + ",\n  ".join(lines) + "\n)")
    if table.source.comment:
        statements.append(f"COMMENT ON TABLE {table.full_name} IS {text(table.source.comment)}")
    statements += [f"COMMENT ON COLUMN {table.full_name}.{name(c.name)} IS {text(c.full_comment)}"
                   for c in table.columns if c.full_comment and not (master and c.name in master.source.primary_key)]
    return statements


def postgresql_copy(table: TableInfo, master: TableInfo | None, schema: str, store_map: Mapping[str, str],
                    enum: Callable[[str], tuple[str, Sequence[str]] | None]) -> list[str]:
    """Statements declaring a 2.x `table` of a PostgreSQL source again in local `schema` on PostgreSQL: enum
    types first (`enum(column type)`: the source's enum type name and labels, None for no enum), then the table
    with its key, a part's foreign key to its master, and the comments (codec labels included, stores renamed)."""
    statements, columns = [], []
    for column in table.columns:
        kind = column.column_type
        labels = enum(kind) if column.data_type == "enum" else None
        if labels is not None:
            kind = name(schema, labels[0])
            statements.append(f"DO $$ BEGIN CREATE TYPE {kind} AS ENUM ({', '.join(text(v) for v in labels[1])}); "
                              "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        default = column.default
        if default is not None and labels is not None:
            default = re.sub(r"::[^:]*$", f"::{kind}", default)
        columns.append(f"{name(column.name)} {kind}" + ("" if column.nullable else " NOT NULL")
                       + (f" DEFAULT {default}" if default is not None and not default.startswith("nextval(") else ""))
    columns.append(f"PRIMARY KEY ({key_names(table)})")
    if master is not None:
        columns.append(f"FOREIGN KEY ({key_names(master)}) REFERENCES {name(schema, master.name)} "
                       f"({key_names(master)}) ON UPDATE CASCADE ON DELETE RESTRICT")
    here = name(schema, table.name)
    statements.append(f"CREATE TABLE {here} ({', '.join(columns)})")
    if table.comment:
        statements.append(f"COMMENT ON TABLE {here} IS {text(table.comment)}")
    statements += [f"COMMENT ON COLUMN {here}.{name(c.name)} IS {text(renamed_store(c.comment, store_map))}"
                   for c in table.columns if c.comment]
    return statements


def mariadb_copy(create: str, table: TableInfo, master: TableInfo | None, layout: str = "dj2",
                 source_format: str = "dj2") -> str:
    """The source's CREATE TABLE (`create`, as SHOW CREATE TABLE gives it) for `table` in the local schema on
    MariaDB, as IF NOT EXISTS: the source's types, collations and engine, only a part's foreign key to `master`
    kept; column comments as DataJoint writes them in `layout` (`source_format`: the source's), refusing what
    `layout` cannot hold."""
    head, *lines = create.split("\n")
    kept = []
    for line in lines:
        reference = re.search(r"FOREIGN KEY .* REFERENCES (`[^`]*`\.)?`(?P<table>[^`]*)`", line)
        if reference and not (master is not None and reference["table"] == master.name
                              and (reference.group(1) in (None, f"`{table.schema}`."))):
            continue
        column = re.match(r"\s*`(?P<name>[^`]*)` ", line)
        if column and layout != source_format:
            comment = COMMENT.search(line)
            text = comment["text"] if comment else ""
            if layout == "dj014":
                text = dj014_comment(text, column["name"], table.full_name)
            else:
                text = dj2_comment(text, next(c for c in table.columns if c.name == column["name"]), table.full_name)
            if comment:
                line = line[:comment.start()] + f"COMMENT '{text}'" + line[comment.end():]
            elif text:  # SHOW CREATE TABLE leaves an empty comment out
                body, comma = (line[:-1], ",") if line.endswith(",") else (line, "")
                line = f"{body} COMMENT '{text}'{comma}"
        kept.append(line)
    body = "\n".join(kept)
    body = re.sub(r",\n\)", "\n)", body)  # a dropped last constraint leaves a trailing comma
    return head.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1) + "\n" + body

"""The SQL PostgreSQL speaks, as one dialect object (`PostgreSQL`, a subclass of `backends.mariadb_rows.MariaDB`, as
MySQL 8 would be): names and literals, keys named by the server and paged in bytes order, the fragments of a diff
side, the catalog reads and DDL of a link's outbound and subscriber tables. The session, the catalog readers and
the key helpers it builds on are in `backends.postgresql`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from djshare.backends.catalog import Column, ForeignKey, TableInfo
from djshare.backends.mariadb_rows import NUMERIC_TYPES, MariaDB, key_bound
from djshare.backends.postgresql import (
    _psycopg,
    after,
    foreign_keys,
    key_condition,
    key_literal,
    key_names,
    key_order,
    name,
    read_table,
    table_names,
    text,
)

# --- diff: the SQL fragments of a diff side on PostgreSQL (djshare.sync.sql_side.TableSide) ---

class PostgreSQL(MariaDB):
    """SQL fragments of a diff side on PostgreSQL: text keys compared and ordered `COLLATE "C"` (bytes), on
    both sides alike whatever the databases' collations; the same prefix-free row encoding as on MariaDB, over
    PostgreSQL's text forms (so hashes agree between PostgreSQL servers, not with MariaDB: a MariaDB table and a
    PostgreSQL one are compared by streaming)."""

    name_of = "postgresql"

    def quote(self, *parts: str) -> str:
        return name(*parts)

    def text(self, value: str) -> str:
        return text(value)

    def value(self, value: Any) -> str:
        return str(_psycopg().sql.Literal(value).as_string(None))

    def key_literal(self, info: TableInfo, qualifier: str = "") -> str:
        return key_literal(info.key_columns, qualifier)

    def _reference(self, column: Column) -> str:
        return self.python_order(column)

    def bound(self, info: TableInfo, key: bytes, operator: str) -> bytes:
        return key_bound(info, key, operator, reference=self._reference)

    def in_keys(self, info: TableInfo, keys: Sequence[bytes], qualifier: str = "") -> bytes:
        return key_condition(info, keys, qualifier)

    def after(self, info: TableInfo, key: bytes | None, qualifier: str = "") -> bytes:
        return after(info, key, qualifier)

    def key_order(self, info: TableInfo, qualifier: str = "") -> str:
        return key_order(info, qualifier)

    def foreign_keys(self, session: Any, schemas: list[str] | None = None) -> list[ForeignKey]:
        return foreign_keys(session, schemas)

    def read_table(self, session: Any, schema: str, table: str) -> TableInfo:
        return read_table(session, schema, table)

    def key_table(self, work_schema: str, index: int) -> str:
        return name(f"djshare_export_{index}")  # in the session's own pg_temp schema

    def declare_key_table(self, temp: str, info: TableInfo) -> list[str]:
        keys = self.key_names(info)
        return [f"DROP TABLE IF EXISTS pg_temp.{temp}",
                f"CREATE TEMPORARY TABLE {temp} AS SELECT {keys} FROM {self.table(info)} LIMIT 0",
                f"ALTER TABLE {temp} ADD PRIMARY KEY ({keys})"]

    def insert_new(self, table: str, rows: str) -> str:
        return f"INSERT INTO {table} {rows} ON CONFLICT DO NOTHING"

    def upsert(self, columns: Sequence[str], key: Sequence[str]) -> str:
        updated = [c for c in columns if c not in key]
        action = ("DO UPDATE SET " + ", ".join(f"{name(c)} = EXCLUDED.{name(c)}" for c in updated)) if updated \
            else "DO NOTHING"
        return f" ON CONFLICT ({', '.join(name(k) for k in key)}) {action}"

    transactional_ddl = True  # a failed CREATE rolls back with its transaction: nothing to clean up

    def schema_exists(self, session: Any, schema: str) -> bool:
        return bool(session.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)))

    def table_names(self, session: Any, schema: str) -> set[str]:
        return table_names(session, schema)

    def table_comment(self, session: Any, schema: str, table: str) -> str | None:
        found = session.scalar("SELECT obj_description(%s::regclass, 'pg_class')", (name(schema, table),))
        return None if found is None else str(found)

    def use_schema(self, schema: str) -> str:
        return f"SET search_path TO {name(schema)}"

    def check_foreign_keys(self) -> str:
        return "SET session_replication_role = origin"  # PostgreSQL's default: triggers, and so foreign keys, fire

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {name(schema)}"  # needs CREATE on the database

    def drop_schema(self, schema: str) -> str:
        return f"DROP SCHEMA IF EXISTS {name(schema)}"

    def subscriber_table(self, schema: str, table: str, subscriber: str) -> list[tuple[str, tuple[Any, ...]]]:
        full_name = name(schema, table)
        return [(f"CREATE SCHEMA IF NOT EXISTS {name(schema)}", ()),
                (f"CREATE TABLE IF NOT EXISTS {full_name} (one smallint PRIMARY KEY, subscriber varchar(64) NOT NULL)",
                 ()),
                (f"INSERT INTO {full_name} VALUES (1, %s) ON CONFLICT DO NOTHING", (subscriber,))]

    def outbound_grants(self, user: str, source_schema: str, outbound_schema: str) -> str:
        user = name(user)
        return (f"GRANT USAGE ON SCHEMA {name(source_schema)} TO {user}; GRANT SELECT, REFERENCES ON ALL TABLES IN "
                f"SCHEMA {name(source_schema)} TO {user}; CREATE SCHEMA IF NOT EXISTS {name(outbound_schema)} "
                f"AUTHORIZATION {user}")

    def outbound_table(self, schema: str, table: str, source: TableInfo, states: Sequence[str],
                       comment: str) -> list[tuple[str, tuple[Any, ...]]]:
        keys, full_name = key_names(source), name(schema, table)
        return [
            (f"CREATE TABLE IF NOT EXISTS {full_name} (subscriber varchar(64) NOT NULL, "
             + "".join(f"{name(c.name)} {c.column_type} NOT NULL, " for c in source.key_columns)
             + f"state varchar(24) NOT NULL CHECK (state IN ({', '.join(text(s) for s in states)})), "
             "changed_at timestamptz NOT NULL DEFAULT now(), "
             f"PRIMARY KEY (subscriber, {keys}), FOREIGN KEY ({keys}) REFERENCES {name(source.schema, source.name)} "
             f"({keys}) ON UPDATE RESTRICT ON DELETE RESTRICT)", ()),
            (f"CREATE INDEX IF NOT EXISTS {name(table[:50] + '_source_key')} ON {full_name} ({keys})", ()),
            (f"COMMENT ON TABLE {full_name} IS {text(comment)}", ()),
        ]

    def capture_table(self, schema: str, table: str) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {name(schema, table)} (paper varchar(64) NOT NULL, "
                "analysis varchar(64) NOT NULL, seq bigserial, table_schema varchar(64) NOT NULL, "
                "table_name varchar(64) NOT NULL, restriction text NOT NULL, captured_at timestamptz NOT NULL "
                "DEFAULT now(), PRIMARY KEY (paper, analysis, seq))")

    def open_capture_table(self, schema: str, table: str) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {name(schema, table)} (account varchar(300) NOT NULL, "
                "paper varchar(64) NOT NULL, analysis varchar(64) NOT NULL, started_at timestamptz NOT NULL "
                "DEFAULT now(), PRIMARY KEY (account, paper, analysis))")

    def commented(self, session: Any, prefix: str, schema: str | None = None) -> list[tuple[str, str, str]]:
        return [(str(a), str(b), str(c)) for a, b, c in session.rows(
            "SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE c.relkind = 'r' AND obj_description(c.oid, 'pg_class') LIKE %s"
            + (" AND n.nspname = %s" if schema else "") + " ORDER BY 1, 2",
            (prefix + "%", *([schema] if schema else [])), doing="listing tables by their comments")]

    def _encoding(self, columns: Sequence[Column]) -> str:
        parts = []
        for column in columns:
            ref = self.name(column.name)
            if column.data_type in NUMERIC_TYPES:
                parts.append(f"convert_to(coalesce({ref}::text || ',', 'N'), 'UTF8')")
            elif column.is_binary:
                parts.append(f"coalesce(convert_to(octet_length({ref})::text || ':', 'UTF8') || {ref}, '\\x2d')")
            else:
                parts.append(f"coalesce(convert_to(octet_length({ref}::text)::text || ':' || {ref}::text, 'UTF8'), "
                             "'\\x2d')")
        return " || ".join(parts)

    def row_hash(self, columns: Sequence[Column]) -> str:
        return f"('x' || left(md5({self._encoding(columns)}), 16))::bit(64)::bigint"

    def row_md5(self, columns: Sequence[Column]) -> str:
        return f"md5({self._encoding(columns)})"

    def binary_summary(self, column: Column) -> str:
        ref = self.name(column.name)
        return f"CASE WHEN {ref} IS NULL THEN NULL ELSE octet_length({ref})::text || ' ' || md5({ref}) END"

    def exact(self, column: Column) -> str:
        return self.name(column.name)  # psycopg gives real and double values exactly

    def cut_order(self, column: Column) -> str:
        return self.python_order(column)

    def python_order(self, column: Column) -> str:
        ref = self.name(column.name)
        return f'{ref} COLLATE "C"' if column.collation == "C" else ref


POSTGRESQL = PostgreSQL()  # stateless: one for everyone

"""PostgreSQL at the SQL edge (psycopg 3, the `postgresql` extra): connections with djshare's error
messages, the catalog read into the same `TableInfo` shape as MariaDB's (PostgreSQL type names mapped to the
MySQL names the rest of djshare knows; text columns get collation "C", which diff sides compare and order
by: byte order of UTF-8, Python's order), and `PgSession` for the statements a diff side runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from djshare import defaults
from djshare.backends.address import ServerAddress
from djshare.backends.catalog import Column, ForeignKey, TableInfo
from djshare.backends.mariadb_rows import key_bound
from djshare.defaults import timeout
from djshare.errors import (
    AuthenticationError,
    ConfigurationError,
    DjshareError,
    IntegrityViolation,
    InterruptedOperation,
    LinkBusyError,
    MissingPrivilegeError,
    RestrictionError,
    ServerUnreachableError,
    UnknownTableError,
)

DEFAULT_PORT = 5432
TYPES = {  # information_schema data_type -> the MySQL DATA_TYPE with the same values
    "smallint": "smallint", "integer": "int", "bigint": "bigint", "numeric": "decimal", "real": "float",
    "double precision": "double", "date": "date", "timestamp without time zone": "datetime",
    "timestamp with time zone": "timestamp", "time without time zone": "time", "text": "longtext",
    "character varying": "varchar", "character": "char", "bytea": "longblob", "boolean": "tinyint",
    "uuid": "uuid", "json": "json", "jsonb": "json",
}
TEXT = {"text", "character varying", "character"}
TEXT_OIDS = frozenset({25, 1042, 1043})  # text, bpchar, varchar: result column types ordered COLLATE "C"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError("PostgreSQL needs psycopg: pip install 'djshare[postgresql]'.") from None
    return psycopg


def translate(error: Exception, address: ServerAddress, doing: str = "") -> DjshareError:
    """A psycopg error as the djshare error a user can act on (the password is never part of it)."""
    where = f" while {doing}" if doing else ""
    state = getattr(error, "sqlstate", None) or ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if state == "28P01" or "password authentication failed" in message:
        return AuthenticationError(f"Access denied for {address.label}: wrong user name or password. Check "
                                   f"{address.credentials or 'the credentials'}.")
    if state == "3D000":
        return UnknownTableError(f"No database {address.database!r} on {address.host}:{address.port}: {message}.")
    if state in ("42P01", "3F000"):
        return UnknownTableError(f"Table not found on {address.host}:{address.port}{where}: {message}.")
    if state == "42501":
        return MissingPrivilegeError(f"User {address.user} on {address.host}:{address.port} lacks a privilege{where}: "
                                     f"{message}. Ask the server's admin for it.", grant=message)
    if state in ("23503", "23505"):  # foreign_key_violation, unique_violation
        return IntegrityViolation(f"{address.host}:{address.port} refused a change{where}: {message}.")
    if state.startswith("42"):
        return RestrictionError(f"The server at {address.host}:{address.port} rejected the query{where}: {message}. "
                                "Check the restriction: column names and SQL syntax.")
    if isinstance(error, _psycopg().errors._WaitTimeout):  # noqa: SLF001 - psycopg's own name for a wait's timeout
        return InterruptedOperation(f"Lost the connection to {address.host}:{address.port}{where}: no answer for "
                                    f"{timeout()} seconds (DJSHARE_TIMEOUT).")
    if isinstance(error, _psycopg().OperationalError) and doing != "connecting" and not state:
        return InterruptedOperation(f"Lost the connection to {address.host}:{address.port}{where}: {message}.")
    if isinstance(error, _psycopg().OperationalError):
        return ServerUnreachableError(f"Cannot reach the PostgreSQL server at {address.host}:{address.port}{where}: "
                                      f"{message}. Check the host name and port, and that the server is running.")
    return DjshareError(f"{address.host}:{address.port} reported an error{where}: {message}.")


@functools.cache
def _timed_connection() -> Any:
    """psycopg's connection class, with every wait for the server limited to DJSHARE_TIMEOUT seconds: a server
    (or network path) that goes silent fails the statement instead of hanging it, as pymysql's read_timeout does
    for MariaDB. A single statement the server works on longer than that fails too (raise DJSHARE_TIMEOUT)."""
    psycopg = _psycopg()

    class TimedConnection(psycopg.Connection):  # type: ignore[name-defined]
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            return super().wait(gen, interval, timeout if timeout is not None else float(defaults.timeout()))

    return TimedConnection


@contextlib.contextmanager
def session(address: ServerAddress) -> Iterator[PgSession]:
    """A `PgSession` on a new connection, closed on exit."""
    psycopg = _psycopg()
    wait = timeout()  # the server ends a session idle that long (freeing its advisory locks); keepalives find a
    try:              # peer that went away
        connection = _timed_connection().connect(host=address.host, port=address.port, user=address.user,
                                     password=address.password, dbname=address.database or "postgres",
                                     autocommit=True, connect_timeout=10,
                                     sslmode="require" if address.use_tls else "prefer",
                                     options=f"-c idle_session_timeout={wait * 1000} "
                                             f"-c idle_in_transaction_session_timeout={wait * 1000}",
                                     keepalives=1, keepalives_idle=min(wait, 60), keepalives_interval=10,
                                     keepalives_count=max(wait // 10, 1))
    except psycopg.Error as error:
        raise translate(error, address, "connecting") from None
    try:
        yield PgSession(connection, address)
    finally:
        connection.close()


def read_table(session: PgSession, schema: str, name: str) -> TableInfo:
    """The table as `TableInfo`: `data_type` in MySQL's names (see TYPES; enums "enum"), `column_type` the full
    PostgreSQL type (`character varying(16)`, `"lab".enum_1a2b`), comments from the catalog."""
    address, doing = session.address, f"reading the definition of {schema}.{name}"
    columns = session.rows(
        "SELECT c.column_name, c.data_type, c.is_nullable, c.column_default, "
        "format_type(a.atttypid, a.atttypmod), coalesce(col_description(a.attrelid, a.attnum), ''), "
        "t.typtype = 'e', (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e "
        "WHERE e.enumtypid = a.atttypid) FROM information_schema.columns c "
        "JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
        "AND a.attname = c.column_name JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE c.table_schema = %s AND c.table_name = %s ORDER BY c.ordinal_position", (schema, name), doing)
    if not columns:
        raise UnknownTableError(f"No table {schema}.{name} in database {address.database!r} on "
                                f"{address.host}:{address.port}: check the schema and table names.")
    key = [r[0] for r in session.rows(  # the catalog: information_schema hides constraints from SELECT-only users
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)", (schema, name), doing)]
    if not key:
        raise DjshareError(f"{schema}.{name} on {address.host}:{address.port} has no primary key: djshare needs one "
                           "to name rows.")
    comment = session.scalar("SELECT coalesce(obj_description(format('%%I.%%I', %s::text, %s::text)::regclass, "
                             "'pg_class'), '')", (schema, name), doing)
    return TableInfo(schema, name, tuple(
        Column(str(n), "enum" if is_enum else TYPES.get(str(t), str(t)), str(full), nullable == "YES", default,
               str(note), "", "C" if str(t) in TEXT else None, tuple(labels or ()))
        for n, t, nullable, default, full, note, is_enum, labels in columns), tuple(key), str(comment or ""))


class PgSession:
    """A psycopg connection with the few operations a diff side needs (as `Session` has for MariaDB); errors
    become djshare errors. Sessions run in UTC with ISO dates and exact float text, so two PostgreSQL servers
    format equal values alike."""

    def __init__(self, connection: Any, address: ServerAddress) -> None:
        self.connection = connection
        self.address = address
        connection.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 1")

    def rows(self, statement: str | bytes, args: Sequence[Any] | None = None,
             doing: str = "") -> list[tuple[Any, ...]]:
        try:
            return list(self.connection.execute(statement, args).fetchall())
        except _psycopg().Error as error:
            raise translate(error, self.address, doing) from None

    def scalar(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> Any:
        found = self.rows(statement, args, doing)
        return found[0][0] if found else None

    def stream(self, statement: str | bytes, args: Sequence[Any] | None = None,
               doing: str = "") -> Iterator[tuple[Any, ...]]:
        """Rows from a server-side cursor, memory bounded."""
        try:
            with self.connection.transaction(), self.connection.cursor(name="djshare_stream") as cursor:
                cursor.itersize = 2000
                cursor.execute(statement, args)
                yield from cursor
        except _psycopg().Error as error:
            raise translate(error, self.address, doing) from None

    def execute(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> int:
        try:
            return int(self.connection.execute(statement, args).rowcount)
        except _psycopg().Error as error:
            raise translate(error, self.address, doing) from None

    def query_rows(self, query: str, key: Sequence[str],
                   check: Callable[[dict[str, Any]], None]) -> Iterator[dict[str, Any]]:
        """The rows of a user's `query` as dicts, streamed in `key` order (text keys COLLATE "C", by their bytes);
        `check` first sees its columns (name -> type OID)."""
        inner = f"({query.strip().rstrip(';')}) AS djshare_q"
        with self.connection.cursor() as cursor:
            try:
                cursor.execute(f"SELECT * FROM {inner} LIMIT 0")
            except Exception as error:
                raise translate(error, self.address, "running a query") from None
            kinds = {d.name: d.type_code for d in cursor.description or ()}
        check(kinds)
        order = ", ".join(f'"{k}" COLLATE "C"' if kinds[k] in TEXT_OIDS else f'"{k}"' for k in key)
        names = list(kinds)
        for row in self.stream(f"SELECT * FROM {inner} ORDER BY {order}", doing="running a query"):
            yield {n: bytes(v) if isinstance(v, memoryview) else v for n, v in zip(names, row, strict=True)}

    @contextlib.contextmanager
    def transaction(self, doing: str = "") -> Iterator[PgSession]:
        """BEGIN ... COMMIT; ROLLBACK on any error."""
        try:
            with self.connection.transaction():
                yield self
        except _psycopg().Error as error:
            raise translate(error, self.address, doing) from None


def table_names(session: PgSession, schema: str) -> set[str]:
    """The names of the tables in `schema` (none for a schema that does not exist)."""
    return {str(r[0]) for r in session.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))}


def json_references(session: PgSession, schema: str, table: str, column: str) -> set[tuple[str, str]]:
    """(store, path) of the references a JSON column holds (DataJoint 2.x's in-store codecs)."""
    value = f"{name(column)}::jsonb"
    return {(str(store), str(path)) for store, path in session.rows(
        f"SELECT DISTINCT {value} ->> 'store', {value} ->> 'path' FROM {name(schema, table)} "
        f"WHERE {name(column)} IS NOT NULL", doing=f"reading references in {schema}.{table}")}


def schemas_with_json(session: PgSession, except_schema: str) -> list[str]:
    """The database's user schemas, other than `except_schema`, with a json or jsonb column."""
    return [str(r[0]) for r in session.rows(
        "SELECT DISTINCT table_schema FROM information_schema.columns WHERE data_type IN ('json', 'jsonb') "
        "AND table_schema <> %s AND table_schema NOT IN ('pg_catalog', 'information_schema')", (except_schema,))]


def foreign_keys(session: PgSession, schemas: list[str] | None = None) -> list[ForeignKey]:
    """The foreign keys whose child tables are in `schemas` (every one the database has, without)."""
    rows = session.rows(  # the catalog: information_schema hides constraints from SELECT-only users
        "SELECT cn.nspname, c.relname, con.conname, a.attname, pn.nspname, p.relname, pa.attname "
        "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        "JOIN pg_namespace cn ON cn.oid = c.relnamespace JOIN pg_class p ON p.oid = con.confrelid "
        "JOIN pg_namespace pn ON pn.oid = p.relnamespace "
        "CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(child, parent, position) "
        "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.child "
        "JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.parent "
        "WHERE con.contype = 'f' AND (%s::text[] IS NULL OR cn.nspname = ANY(%s)) ORDER BY 1, 2, 3, k.position",
        [schemas, schemas],
        doing="reading foreign keys")
    grouped: dict[tuple[str, str, str], list[tuple[str, str, str, str]]] = {}
    for schema, table, name, column, parent_schema, parent_table, parent_column in rows:
        grouped.setdefault((schema, table, name), []).append((column, parent_schema, parent_table, parent_column))
    return [ForeignKey((schema, table), (pairs[0][1], pairs[0][2]), tuple((c, pc) for c, _, _, pc in pairs))
            for (schema, table, _), pairs in grouped.items()]


# --- link: identifiers, literals, keys named and paged by the server, locks ---

def name(*parts: str) -> str:
    """A PostgreSQL identifier, schema-qualified: "schema"."table"."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def text(value: str) -> str:
    """A string as a PostgreSQL literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + value.replace("'", "''") + "'"


def key_literal(columns: Sequence[Column], qualifier: str = "") -> str:
    """SQL for one bytes value per row naming its key: `('a','7')`, as the server quotes each value (exact:
    floats in their shortest exact text, bytea in hex)."""
    parts = " || ',' || ".join(f"quote_nullable({qualifier}{name(c.name)})" for c in columns)
    return f"convert_to('(' || {parts} || ')', 'UTF8')"


def key_names(table: TableInfo, qualifier: str = "") -> str:
    return ", ".join(qualifier + name(c) for c in table.primary_key)


def key_order(table: TableInfo, qualifier: str = "") -> str:
    """The key columns in the order keys are paged: text by its bytes (COLLATE "C"), as Python orders it."""
    return ", ".join(_ordered(c, qualifier) for c in table.key_columns)


def _ordered(column: Column, qualifier: str = "") -> str:
    return qualifier + name(column.name) + (' COLLATE "C"' if column.collation == "C" else "")


def key_condition(table: TableInfo, keys: Sequence[bytes], qualifier: str = "") -> bytes:
    if not keys:
        return b"FALSE"
    return f"({key_names(table, qualifier)}) IN (".encode() + b",".join(keys) + b")"


def paged_keys(pg: PgSession, table: TableInfo, relation: str, condition: str, size: int) -> Iterator[list[bytes]]:
    """Key literals of `table`'s key columns in `relation` (rows matching `condition`), a page at a time in
    paging order (keyset pagination)."""
    last: bytes | None = None
    while page := [bytes(r[0]) for r in pg.rows(
            f"SELECT {key_literal(table.key_columns)} FROM {relation} WHERE {condition} AND ".encode()
            + after(table, last) + f" ORDER BY {key_order(table)} LIMIT {int(size)}".encode(),
            doing=f"reading {relation}")]:
        yield page
        last = page[-1]


def after(table: TableInfo, key: bytes | None, qualifier: str = "") -> bytes:
    """Keys after `key` in paging order (TRUE without one)."""
    if key is None:
        return b"TRUE"
    return key_bound(table, key, ">", reference=lambda c: _ordered(c, qualifier))


def enum_labels(pg: PgSession, column_type: str) -> tuple[str, list[str]] | None:
    """(type name, labels) if `column_type` is an enum type on `pg`."""
    found = pg.rows("SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t JOIN pg_enum e "
                    "ON e.enumtypid = t.oid WHERE t.oid = %s::regtype GROUP BY t.typname", (column_type,))
    return (str(found[0][0]), list(found[0][1])) if found else None


@contextlib.contextmanager
def advisory_lock(pg: PgSession, key: str, timeout: float, busy: str) -> Iterator[None]:
    """Hold a session-level advisory lock named by `key` (the server drops it with the connection)."""
    number = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)
    deadline = time.monotonic() + timeout
    while not pg.scalar("SELECT pg_try_advisory_lock(%s)", (number,), doing="waiting for a djshare lock"):
        if time.monotonic() > deadline:
            raise LinkBusyError(busy)
        time.sleep(0.2)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            pg.scalar("SELECT pg_advisory_unlock(%s)", (number,))


def __getattr__(attribute: str) -> Any:
    """`PostgreSQL` and `POSTGRESQL` moved to `backends.postgresql_sql`; importable from here for one release."""
    if attribute in ("PostgreSQL", "POSTGRESQL"):
        from djshare.backends import postgresql_sql

        return getattr(postgresql_sql, attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")

"""Batched copy of rows between servers, as SQL literals formatted by the source server.

The source server turns each row into the text of a SQL row literal (`('a',0x..,1.5)`), so Python only
joins bytes into multi-row INSERT statements: nothing is decoded, blobs travel as hex, FLOAT columns
are widened to DOUBLE text (which round-trips exactly; FLOAT text does not), and each INSERT stays below
the target server's `max_allowed_packet`. The same literals identify keys across servers.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pymysql.converters import escape_item, escape_string

from djshare.backends.catalog import (
    INTEGER_TYPES,
    Column,
    ForeignKey,
    TableInfo,
    foreign_keys_to,
    read_table,
    schema_exists,
    table_names,
)
from djshare.backends.mariadb import Session, quote_name
from djshare.errors import DjshareError

TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"})
STATEMENT_CAP = 16 * 1024 * 1024  # bytes; larger INSERTs save few round trips and cost memory


def literal(value: str) -> bytes:
    """A Python string as a quoted SQL string literal (utf8mb4 bytes)."""
    return ("'" + escape_string(value) + "'").encode("utf8")


def literal_expression(column: Column, qualifier: str = "") -> str:
    """SQL that makes the server format `column` as a SQL literal (the word NULL for NULL)."""
    ref = f"{qualifier}{quote_name(column.name)}"
    if column.is_binary:
        return f"IF({ref} IS NULL,'NULL',CONCAT('X''',HEX({ref}),''''))"
    if column.data_type == "float":
        return f"QUOTE(CAST({ref} AS DOUBLE))"
    if column.data_type == "bit":
        return f"IF({ref} IS NULL,'NULL',CONCAT('b''',BIN({ref}),''''))"
    if column.data_type in TEXT_TYPES:
        return f"CONVERT(QUOTE({ref}) USING utf8mb4)"
    return f"QUOTE({ref})"


def row_literal(columns: Sequence[Column], qualifier: str = "") -> str:
    """SQL for one bytes value per row: `(v1,v2,...)` in utf8mb4 (returned as bytes, not decoded)."""
    parts = ",',',".join(literal_expression(c, qualifier) for c in columns)
    return f"CAST(CONCAT('(',{parts},')') AS BINARY)"


def column_list(columns: Sequence[Column], qualifier: str = "") -> str:
    return ",".join(qualifier + quote_name(c.name) for c in columns)


def key_condition(table: TableInfo, keys: Iterable[bytes], qualifier: str = "") -> bytes:
    """`(k1,k2) IN ((..),(..))` for key literals made by `row_literal(table.key_columns)`."""
    joined = b",".join(keys)
    if not joined:
        return b"FALSE"
    return f"({column_list(table.key_columns, qualifier)}) IN (".encode() + joined + b")"


def present_keys(session: Session, table: TableInfo, keys: list[bytes]) -> set[bytes]:
    """Which of `keys` (literals from `row_literal(table.key_columns)`) have a row in `table` on `session`."""
    found = session.rows(
        f"SELECT {row_literal(table.key_columns)} FROM {table.full_name} WHERE ".encode() + key_condition(table, keys),
        doing=f"reading {table.full_name}",
    )
    return {bytes(row[0]) for row in found}


def split_literal(key: bytes) -> list[bytes]:
    """The column parts of a key literal made by `row_literal`: `('a\\'b',X'00',NULL)` -> [b"'a\\'b'", b"X'00'",
    b"NULL"]. Parts are NULL, or quoted strings with backslash escapes, optionally prefixed (X, b)."""
    parts: list[bytes] = []
    body, start, index, quoted = key[1:-1], 0, 0, False
    while index < len(body):
        char = body[index:index + 1]
        if quoted:
            if char == b"\\":
                index += 1
            elif char == b"'":
                quoted = False
        elif char == b"'":
            quoted = True
        elif char == b",":
            parts.append(body[start:index])
            start = index + 1
        index += 1
    parts.append(body[start:])
    return parts


def key_bound(table: TableInfo, key: bytes, operator: str, qualifier: str = "",
              reference: Callable[[Column], str] | None = None) -> bytes:
    """`(k1, k2) <operator> key` written so that the server can use the primary key as a range (MariaDB does
    not for row-constructor comparisons): k1 > v1 OR (k1 = v1 AND k2 > v2) ... for `>`, and likewise for
    `>=`, `<`, `<=`. A `key` with fewer parts than the primary key is a prefix: it compares the leading
    columns only (`(k1, k2) >= ('7')` is `k1 >= '7'`). `reference` writes a column as SQL (another dialect's
    quoting, a collation)."""
    strict = operator.rstrip("=")
    values = split_literal(key)
    refer = reference or (lambda column: qualifier + quote_name(column.name))
    names = [refer(c) for c in table.key_columns][:len(values)]
    terms = []
    for i in range(len(names)):
        equal = [names[j].encode() + b" = " + values[j] for j in range(i)]
        last = f"{names[i]} {strict if i < len(names) - 1 or operator == strict else operator} ".encode() + values[i]
        terms.append(b"(" + b" AND ".join([*equal, last]) + b")")
    return b"(" + b" OR ".join(terms) + b")"


def statement_limit(target: Session) -> int:
    """Largest INSERT to send to `target`: below its max_allowed_packet, with room for the header (a quarter of a
    small packet, 64 KiB of a large one)."""
    packet = target.max_allowed_packet()
    return min(packet - min(64 * 1024, packet // 4), STATEMENT_CAP)


def statements(literals: Iterable[bytes], limit: int, overhead: int, too_big: str) -> Iterator[list[bytes]]:
    """Group row literals into lists whose joined size plus `overhead` stays within `limit` bytes.

    A single row too large for `limit` raises DjshareError(`too_big`, with the row's size).
    """
    chunk: list[bytes] = []
    size = overhead
    for literal in literals:
        if overhead + len(literal) > limit:
            raise DjshareError(too_big.format(size=len(literal), limit=limit))
        if chunk and size + len(literal) + 1 > limit:
            yield chunk
            chunk, size = [], overhead
        chunk.append(literal)
        size += len(literal) + 1
    if chunk:
        yield chunk


def copy_rows(source: Session, target: Session, table: TableInfo, target_name: str, where: bytes,
              limit: int, on_rows: Callable[[int], None] | None = None, keep_existing: bool = False,
              update_existing: bool = False) -> int:
    """Stream the rows of `table` matching `where` from `source` into `target_name` on `target`.

    Runs in whatever transaction `target` has open; returns the number of rows sent. With
    `keep_existing`, a row whose key is already there is left as it is (not an error); with
    `update_existing`, its other columns are set to the source's values in place (no delete, so rows that
    reference it stay valid).
    """
    select = f"SELECT {row_literal(table.columns)} FROM {table.full_name} WHERE ".encode() + where
    header = f"INSERT INTO {target_name} ({column_list(table.columns)}) VALUES ".encode()
    first = quote_name(table.columns[0].name)
    values = [quote_name(c.name) for c in table.columns if c.name not in table.primary_key]
    trailer = b""
    if update_existing:
        trailer = (" ON DUPLICATE KEY UPDATE " + ", ".join(f"{v} = VALUES({v})" for v in values or [first])).encode()
    elif keep_existing:
        trailer = f" ON DUPLICATE KEY UPDATE {first} = {first}".encode()
    too_big = (f"A row of {table.full_name} is {{size:,}} bytes as SQL, more than the {{limit:,}} bytes the server at "
               f"{target.address.host}:{target.address.port} accepts in one statement (max_allowed_packet). Ask its "
               "admin to raise max_allowed_packet.")
    copied = 0
    rows = (bytes(row[0]) for row in source.stream(select, doing=f"reading {table.full_name}"))
    for chunk in statements(rows, limit, len(header) + len(trailer), too_big):
        target.execute(header + b",".join(chunk) + trailer, doing=f"inserting into {target_name}")
        copied += len(chunk)
        if on_rows:
            on_rows(len(chunk))
    return copied


def float32(value: float) -> float:
    """`value` rounded to the nearest single-precision float (how a FLOAT / real column holds it)."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


# --- diff: the SQL fragments of a diff side on MariaDB (djshare.sync.sql_side.TableSide) ---

ROW_HASH = "CAST(CONV(LEFT(MD5({row}), 16), 16, 10) AS UNSIGNED)"


NUMERIC_TYPES = (INTEGER_TYPES - {"bit"}) | {"decimal", "double", "float", "date", "datetime", "timestamp", "time"}


def hash_input(columns: Sequence[Column]) -> str:
    """SQL for the bytes a row is hashed over, built so that no two different rows give the same input: each
    column's encoding is prefix-free. Numbers, dates and times as their text followed by `,` (which their
    text never holds), FLOAT widened to DOUBLE (exact); strings and binary values as `<byte length>:<bytes>`
    (raw bytes: blobs are not hexed); NULL as `N` (numbers) or `-` (strings), which no other encoding of the
    column starts with."""
    parts = []
    for column in columns:
        ref = f"`{column.name}`"
        if column.data_type in NUMERIC_TYPES:
            value = f"CAST({ref} AS DOUBLE)" if column.data_type == "float" else ref
            parts.append(f"IFNULL(CONCAT({value}, ','), 'N')")
        else:
            value = f"CAST({ref} AS BINARY)" if column.data_type == "bit" else ref
            parts.append(f"IFNULL(CONCAT(LENGTH({value}), ':', {value}), '-')")
    return "CONCAT(" + ", ".join(parts) + ")"


class MariaDB:
    """The SQL MariaDB speaks, for link and diff alike: names, literals, keys named by the server (`key_literal`),
    found (`in_keys`) and paged (`after`, `key_order`), and the fragments of a diff side. PostgreSQL subclasses it;
    MySQL 8 would too."""

    name_of = "mariadb"

    def name(self, column: str) -> str:
        return self.quote(column)

    def quote(self, *parts: str) -> str:
        """`schema`.`table` (any number of parts), quotes doubled inside names."""
        return quote_name(*parts)

    def text(self, value: str) -> str:
        """A string as a SQL literal."""
        return literal(value).decode()

    def value(self, value: Any) -> str:
        """A Python value (str, number, bytes, date, datetime, decimal, uuid, None) as a SQL literal."""
        if isinstance(value, uuid.UUID):
            value = value.bytes
        if isinstance(value, bytes | bytearray | memoryview):
            return f"X'{bytes(value).hex()}'"  # not a string in the connection's character set
        return str(escape_item(value, "utf8mb4"))

    def table(self, info: TableInfo) -> str:
        return self.quote(info.schema, info.name)

    def key_literal(self, info: TableInfo, qualifier: str = "") -> str:
        """SQL for one bytes value per row naming its key, formatted by the server (the entity's identity)."""
        return row_literal(info.key_columns, qualifier)

    def key_names(self, info: TableInfo, qualifier: str = "") -> str:
        return ", ".join(qualifier + self.quote(c.name) for c in info.key_columns)

    def bound(self, info: TableInfo, key: bytes, operator: str) -> bytes:
        return key_bound(info, key, operator)

    def in_keys(self, info: TableInfo, keys: Sequence[bytes], qualifier: str = "") -> bytes:
        """`(k1, k2) IN (...)` for key literals from `key_literal` (FALSE for none)."""
        return key_condition(info, keys, qualifier)

    def after(self, info: TableInfo, key: bytes | None, qualifier: str = "") -> bytes:
        """Keys after `key` in paging order (TRUE without one)."""
        return b"TRUE" if key is None else key_bound(info, key, ">", qualifier)

    def key_order(self, info: TableInfo, qualifier: str = "") -> str:
        """The key columns in paging order (the order `after` compares in)."""
        return self.key_names(info, qualifier)

    def foreign_keys(self, session: Any, schemas: list[str] | None = None) -> list[ForeignKey]:
        """Every foreign key the server shows this user (those among the tables of `schemas`, at least, if given)."""
        return foreign_keys_to(session, schemas)

    def read_table(self, session: Any, schema: str, table: str) -> TableInfo:
        return read_table(session, schema, table)

    # --- an export's selection: one temporary key table per table (djshare.export.closure) ---

    def key_table(self, work_schema: str, index: int) -> str:
        """The name of the `index`-th temporary key table (MariaDB keeps temporary tables in a schema)."""
        return self.quote(work_schema, f"djshare_export_{index}")

    def declare_key_table(self, temp: str, info: TableInfo) -> list[str]:
        """Statements that make `temp` an empty table of the keys of `info`, living as long as the session."""
        keys = self.key_names(info)
        return [f"DROP TEMPORARY TABLE IF EXISTS {temp}",
                f"CREATE TEMPORARY TABLE {temp} (PRIMARY KEY ({keys})) SELECT {keys} FROM {self.table(info)} LIMIT 0"]

    def insert_new(self, table: str, rows: str) -> str:
        """Insert `rows` (`(columns) VALUES ...` or a SELECT) into `table`, skipping those whose key it has."""
        return f"INSERT IGNORE INTO {table} {rows}"

    def upsert(self, columns: Sequence[str], key: Sequence[str]) -> str:
        """What follows an INSERT of `columns` so a row whose `key` the table has is updated in place instead."""
        updated = [c for c in columns if c not in key] or list(columns[:1])
        return " ON DUPLICATE KEY UPDATE " + ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in updated)

    # --- catalog and DDL of a link's outbound table (djshare.link.outbound.declare) ---

    transactional_ddl = False  # a failed CREATE leaves what came before it: clean up by hand

    def schema_exists(self, session: Any, schema: str) -> bool:
        return schema_exists(session, schema)

    def table_names(self, session: Any, schema: str) -> set[str]:
        return set(table_names(session, schema))

    def table_comment(self, session: Any, schema: str, table: str) -> str | None:
        return read_table(session, schema, table).comment

    def create_schema(self, schema: str) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {self.quote(schema)}"

    def drop_schema(self, schema: str) -> str:
        return f"DROP DATABASE IF EXISTS {self.quote(schema)}"

    def use_schema(self, schema: str) -> str:
        """Make `schema` the one unqualified table names are in (a copied CREATE TABLE names its table alone)."""
        return f"USE {self.quote(schema)}"

    def check_foreign_keys(self) -> str:
        """Make the session check foreign keys (a restore never loads rows past them)."""
        return "SET foreign_key_checks = 1"

    def subscriber_table(self, schema: str, table: str, subscriber: str) -> list[tuple[str, tuple[Any, ...]]]:
        """Statements making the one-row table `schema`.`table` hold a subscriber name (`subscriber` unless it holds one
        already: the fixed key makes concurrent first uses agree on one name)."""
        full_name = self.quote(schema, table)
        return [(f"CREATE TABLE IF NOT EXISTS {full_name} (`one` tinyint NOT NULL PRIMARY KEY, "
                 "`subscriber` varchar(64) CHARACTER SET ascii NOT NULL) "
                 "COMMENT='djshare: the name this schema uses as a subscriber of source servers'", ()),
                (f"INSERT IGNORE INTO {full_name} VALUES (1, %s)", (subscriber,))]

    def outbound_grants(self, user: str, source_schema: str, outbound_schema: str) -> str:
        """What the link user needs on the source server to declare and use an outbound table."""
        return (f"GRANT SELECT, REFERENCES ON {self.quote(source_schema)}.* TO '{user}'@'%'; "
                f"GRANT ALL PRIVILEGES ON {self.quote(outbound_schema)}.* TO '{user}'@'%'")

    def outbound_table(self, schema: str, table: str, source: TableInfo, states: Sequence[str],
                       comment: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements (with their parameters) declaring an outbound table of `source`: one row per subscriber
        and source key, its state one of `states`, a foreign key to the source table keeping held rows there."""
        keys = self.key_names(source)
        columns = ",\n  ".join(f"{self.quote(c.name)} {c.column_type}" + (f" COLLATE {c.collation}" if c.collation
                                                                          else "") + " NOT NULL"
                               for c in source.key_columns)
        state = "enum(" + ",".join(self.text(s) for s in states) + ")"
        return [(f"CREATE TABLE IF NOT EXISTS {self.quote(schema, table)} (\n"
                 f"  `subscriber` varchar(64) CHARACTER SET ascii NOT NULL,\n  {columns},\n"
                 f"  `state` {state} NOT NULL,\n"
                 "  `changed_at` timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),\n"
                 f"  PRIMARY KEY (`subscriber`, {keys}),\n"
                 f"  KEY `source_key` ({keys}),\n"
                 f"  FOREIGN KEY ({keys}) REFERENCES {self.table(source)} ({keys})\n"
                 "    ON UPDATE RESTRICT ON DELETE RESTRICT\n"
                 ") ENGINE=InnoDB COMMENT=%s", (comment,))]

    def capture_table(self, schema: str, table: str) -> str:
        """The table of the restrictions captures record (djshare.export.capture_tables)."""
        return (f"CREATE TABLE IF NOT EXISTS {self.quote(schema, table)} (`paper` varchar(64) NOT NULL, "
                "`analysis` varchar(64) NOT NULL, `seq` int unsigned NOT NULL AUTO_INCREMENT, "
                "`table_schema` varchar(64) NOT NULL, `table_name` varchar(64) NOT NULL, "
                "`restriction` longtext NOT NULL, `captured_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                "PRIMARY KEY (`paper`, `analysis`, `seq`), KEY (`seq`)) "
                "COMMENT='djshare: rows each analysis of a paper fetched (djshare export)'")

    def open_capture_table(self, schema: str, table: str) -> str:
        """The table of captures opened on the server for a database account."""
        return (f"CREATE TABLE IF NOT EXISTS {self.quote(schema, table)} (`account` varchar(300) NOT NULL, "
                "`paper` varchar(64) NOT NULL, `analysis` varchar(64) NOT NULL, "
                "`started_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                "PRIMARY KEY (`account`, `paper`, `analysis`)) "
                "COMMENT='djshare: captures open for a database account (djshare export start/stop)'")

    def commented(self, session: Any, prefix: str, schema: str | None = None) -> list[tuple[str, str, str]]:
        """(schema, table, comment) of the tables whose comment starts with `prefix` (in `schema`, or anywhere)."""
        return [(str(a), str(b), str(c)) for a, b, c in session.rows(
            "SELECT table_schema, table_name, table_comment FROM information_schema.tables WHERE table_comment LIKE %s"
            + (" AND table_schema = %s" if schema else "") + " ORDER BY table_schema, table_name",
            (prefix + "%", *([schema] if schema else [])), doing="listing tables by their comments")]

    def row_hash(self, columns: Sequence[Column]) -> str:
        """A 64-bit hash of each row (unsigned), to XOR over a segment."""
        return ROW_HASH.format(row=hash_input(columns))

    def row_md5(self, columns: Sequence[Column]) -> str:
        return f"MD5({hash_input(columns)})"

    def binary_summary(self, column: Column) -> str:
        ref = self.name(column.name)
        return f"IF({ref} IS NULL, NULL, CONCAT(LENGTH({ref}), ' ', MD5({ref})))"

    def exact(self, column: Column) -> str:
        return exact(column)

    def cut_order(self, column: Column) -> str:
        """ORDER BY term that agrees with `bound`'s comparisons."""
        return self.name(column.name)

    def python_order(self, column: Column) -> str:
        """ORDER BY term giving Python's order (text by its bytes)."""
        ref = self.name(column.name)
        return f"CAST({ref} AS BINARY)" if column.data_type in TEXT_TYPES else ref


MARIADB = MariaDB()  # stateless: one for everyone


def exact(column: Column) -> str:
    """The column as a SELECT expression whose value reaches Python exactly: MariaDB sends FLOAT as text with
    six significant digits, so FLOAT is widened to DOUBLE (exact) on the server."""
    return exact_named(column.name, column.data_type)


def exact_named(name: str, data_type: str) -> str:
    """`exact` of a column known by its name and type ("float", "double", "varchar", ...)."""
    return f"CAST({quote_name(name)} AS DOUBLE)" if data_type == "float" else quote_name(name)

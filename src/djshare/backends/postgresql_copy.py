"""PostgreSQL's bulk movers: rows in COPY format from one server to another, into and out of files, and rows made in
Python into a table. Nothing is decoded on the way in the binary forms (values arrive exactly as the source holds
them); psycopg's errors are translated here, named by what was being done."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from djshare.backends.postgresql import PgSession, name, translate
from djshare.errors import DjshareError

BLOCK = 1 << 20  # bytes read from a file per write into COPY


def copy_out(select: str | bytes) -> bytes:
    """The statement sending the rows of `select` in binary COPY format."""
    return b"COPY (" + (select.encode() if isinstance(select, str) else select) + b") TO STDOUT (FORMAT BINARY)"


def copy_in(table: str, columns: Sequence[str], binary: bool = True) -> str:
    """The statement taking rows of `columns` into `table` (a quoted name), in binary COPY format or as text rows."""
    return f"COPY {table} ({', '.join(name(c) for c in columns)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")


def between(reader: PgSession, select: str | bytes, writer: PgSession, table: str, columns: Sequence[str],
            doing: str) -> int:
    """Stream the rows of `select` on `reader` into `columns` of `table` on `writer`, block by block; the rows
    written (the writer's transaction, if any, holds them)."""
    try:
        with reader.connection.cursor() as source, writer.connection.cursor() as target:
            with source.copy(copy_out(select)) as rows, target.copy(copy_in(table, columns)) as sink:
                for block in rows:
                    sink.write(block)
            return int(target.rowcount)
    except DjshareError:
        raise
    except Exception as error:  # psycopg's errors, from either server
        raise translate(error, writer.address, doing) from None


def to_file(session: PgSession, select: str | bytes, path: Path, doing: str) -> None:
    """Write the rows of `select` into the file at `path`, in binary COPY format."""
    try:
        with session.connection.cursor() as cursor, path.open("wb") as out, cursor.copy(copy_out(select)) as rows:
            for block in rows:
                out.write(block)
    except Exception as error:  # psycopg's errors
        raise translate(error, session.address, doing) from None


def from_file(session: PgSession, table: str, columns: Sequence[str], path: Path, doing: str) -> None:
    """Load a file of rows in binary COPY format (as `to_file` writes it) into `columns` of `table`."""
    try:
        with session.connection.cursor() as cursor, path.open("rb") as data, \
                cursor.copy(copy_in(table, columns)) as sink:
            while block := data.read(BLOCK):
                sink.write(block)
    except Exception as error:  # psycopg's errors
        raise translate(error, session.address, doing) from None


def write_rows(session: PgSession, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
               doing: str) -> int:
    """Write Python rows (values as psycopg adapts them) into `columns` of `table` with one COPY; rows written."""
    written = 0
    try:
        with session.connection.cursor() as cursor, cursor.copy(copy_in(table, columns, binary=False)) as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
    except DjshareError:
        raise
    except Exception as error:  # psycopg's errors, raised by the COPY
        raise translate(error, session.address, doing) from None
    return written

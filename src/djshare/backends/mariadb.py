"""MariaDB (and MySQL) at the SQL edge: connections, and the one place PyMySQL errors become djshare errors.

Data-plane connections are plain PyMySQL connections in UTC (`time_zone='+00:00'`, so TIMESTAMP values
travel unchanged between servers in different zones) with utf8mb4. Nothing here prints or logs a password.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import FIELD_TYPE

from djshare.backends.address import ServerAddress
from djshare.defaults import timeout
from djshare.errors import (
    AuthenticationError,
    DjshareError,
    IntegrityViolation,
    InterruptedOperation,
    LinkBusyError,
    MissingPrivilegeError,
    RestrictionError,
    ServerUnreachableError,
    UnknownTableError,
)


def translate(error: BaseException, address: ServerAddress, doing: str = "") -> DjshareError:
    """Turn a PyMySQL error into the djshare error a user can act on. `doing` names the operation."""
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    server_message = str(error.args[1]) if len(error.args) > 1 else str(error)
    where = f" while {doing}" if doing else ""
    if code == 1045:
        return AuthenticationError(
            f"Access denied for {address.label}: wrong user name or password. Check "
            f"{address.credentials or 'the credentials'}."
        )
    if code in (2003, 2005, 2002):
        return ServerUnreachableError(
            f"Cannot reach the server at {address.host}:{address.port}{where}: {server_message}. "
            "Check the host name and port, and that the server is running and reachable from here."
        )
    if code in (1044, 1142, 1143, 1227, 1370):
        return MissingPrivilegeError(
            f"User {address.user} on {address.host}:{address.port} lacks a privilege{where}: {server_message}. "
            "Ask the server's admin for the grant named there.",
            grant=server_message,
        )
    if code == 1049:
        return UnknownTableError(f"Schema not found on {address.host}:{address.port}{where}: {server_message}.")
    if code == 1146:
        return UnknownTableError(f"Table not found on {address.host}:{address.port}{where}: {server_message}.")
    if code in (1064, 1054, 1166, 1248, 1241):
        return RestrictionError(
            f"The server at {address.host}:{address.port} rejected the query{where}: {server_message}. "
            "Check the restriction: attribute names and SQL syntax."
        )
    if code in (2006, 2013, 2014, 0) or isinstance(error, pymysql.err.InterfaceError):
        return InterruptedOperation(
            f"Lost the connection to {address.host}:{address.port}{where}: {server_message}."
        )
    if code in (1205, 1213):
        return LinkBusyError(f"{address.host}:{address.port} timed out waiting for a lock{where}: {server_message}.")
    if code in (1062, 1451, 1452, 1216, 1217):
        return IntegrityViolation(f"{address.host}:{address.port} refused a change{where}: {server_message}.")
    return DjshareError(f"{address.host}:{address.port} reported an error{where}: {server_message}.")


@contextlib.contextmanager
def translated(address: ServerAddress, doing: str = "") -> Iterator[None]:
    """Translate driver errors raised inside the block."""
    try:
        yield
    except pymysql.err.MySQLError as error:
        raise translate(error, address, doing) from error


class Session:
    """One PyMySQL connection to one server, with the few operations the link edge needs.

    Runs in UTC with utf8mb4; autocommit is on, and `transaction()` groups statements.
    """

    def __init__(self, address: ServerAddress, *, connect_timeout: int = 10) -> None:
        self.address = address
        ssl: dict[str, Any] | None = {"check_hostname": False} if address.use_tls else None
        wait = timeout()  # a silent peer fails reads and writes; the server ends a session left idle that long
        with translated(address, "connecting"):
            self.connection = pymysql.connect(
                host=address.host, port=address.port, user=address.user, password=address.password,
                charset="utf8mb4", autocommit=True, connect_timeout=connect_timeout, ssl=ssl,
                ssl_disabled=not address.use_tls,  # PyMySQL >= 1.2 builds a TLS context for ssl=None (~37 ms CPU)
                read_timeout=wait, write_timeout=wait,
                init_command="SET time_zone='+00:00', sql_mode='STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
                             + timeouts(wait),
            )
        self._streaming: Generator[tuple[Any, ...], None, None] | None = None

    def _settle(self) -> None:
        """End a stream its reader left part way (an error stopped it): its unbuffered result must be read off the
        connection before the next statement, or PyMySQL warns and does it itself."""
        if self._streaming is not None:
            self._streaming.close()
            self._streaming = None

    def close(self) -> None:
        streaming, self._streaming = self._streaming, None
        with contextlib.suppress(Exception):
            self.connection.close()
        if streaming is not None:  # a stream left part way: nothing more to read once the connection is closed
            with contextlib.suppress(Exception):
                streaming.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> int:
        """Run one statement; return the number of affected rows."""
        self._settle()
        with translated(self.address, doing), self.connection.cursor() as cursor:
            # bytes are sent as they are (pre-formatted literals), without client-side escaping
            return int(cursor.execute(statement, args))  # type: ignore[arg-type]

    def rows(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> list[tuple[Any, ...]]:
        self._settle()
        with translated(self.address, doing), self.connection.cursor() as cursor:
            cursor.execute(statement, args)  # type: ignore[arg-type]
            return list(cursor.fetchall())

    def stream(self, statement: str | bytes, args: Sequence[Any] | None = None,
               doing: str = "") -> Iterator[tuple[Any, ...]]:
        """Rows one at a time from a server-side cursor: memory stays bounded for any result size."""
        self._settle()
        self._streaming = self._stream(statement, args, doing)
        return self._streaming

    def _stream(self, statement: str | bytes, args: Sequence[Any] | None,
                doing: str) -> Generator[tuple[Any, ...], None, None]:
        with translated(self.address, doing):
            cursor = pymysql.cursors.SSCursor(self.connection)
            try:
                cursor.execute(statement, args)  # type: ignore[arg-type]
                yield from cursor
            finally:
                try:
                    cursor.close()
                except Exception:  # noqa: BLE001 - the connection is gone: keep the error that says what happened,
                    result = getattr(cursor, "_result", None)  # and the result must not read the rest when collected
                    if result is not None:
                        result.unbuffered_active = False

    def scalar(self, statement: str | bytes, args: Sequence[Any] | None = None, doing: str = "") -> Any:
        found = self.rows(statement, args, doing)
        return found[0][0] if found else None

    @contextlib.contextmanager
    def transaction(self, doing: str = "") -> Iterator[Session]:
        """BEGIN ... COMMIT; ROLLBACK on any error (a lost connection rolls back on the server)."""
        self._settle()
        with translated(self.address, doing):
            self.connection.begin()
        try:
            yield self
        except BaseException:
            with contextlib.suppress(Exception):
                self.connection.rollback()
            raise
        with translated(self.address, doing):
            self.connection.commit()

    def max_allowed_packet(self) -> int:
        return int(self.scalar("SELECT @@max_allowed_packet"))

    def query_rows(self, query: str, key: Sequence[str],
                   check: Callable[[dict[str, Any]], None]) -> Iterator[dict[str, Any]]:
        """The rows of a user's `query` as dicts, streamed in `key` order (text keys by their bytes, as Python orders
        them); `check` first sees its columns (name -> driver type)."""
        inner = f"({query.strip().rstrip(';')}) AS djshare_q"
        with translated(self.address, "running a query"):
            with self.connection.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {inner} LIMIT 0")
                kinds = {d[0]: d[1] for d in cursor.description or ()}
            check(kinds)
            order = ", ".join(f"CAST(`{k}` AS BINARY)" if kinds[k] in TEXT_FIELDS else f"`{k}`" for k in key)
            # MariaDB sends FLOAT as text with six significant digits: widen it to DOUBLE (exact) on the server
            select = ", ".join(f"CAST({quote_name(k)} AS DOUBLE) AS {quote_name(k)}" if kinds[k] == FIELD_TYPE.FLOAT
                               else quote_name(k) for k in kinds)
            cursor = pymysql.cursors.SSDictCursor(self.connection)
            try:
                cursor.execute(f"SELECT {select} FROM {inner} ORDER BY {order}")
                yield from cursor
            finally:
                cursor.close()


TEXT_FIELDS = frozenset({FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING, FIELD_TYPE.STRING, FIELD_TYPE.ENUM,
                         FIELD_TYPE.SET})  # result column types of text, ordered by their bytes


def timeouts(wait: int) -> str:
    """Session settings ending a session left silent `wait` seconds (and a read or write that stalls that long)."""
    return f"wait_timeout={wait}, net_read_timeout={wait}, net_write_timeout={wait}"


def quote_name(*parts: str) -> str:
    """`schema`.`table` with backticks doubled inside names."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


@contextlib.contextmanager
def named_lock(session: Session, key: str, timeout: float, busy: str) -> Iterator[None]:
    """Hold MariaDB named lock `key` (hashed to fit) on `session`; LinkBusyError(busy) after `timeout` s."""
    name = "djshare:" + hashlib.sha1(key.encode()).hexdigest()[:40]
    got = session.scalar("SELECT GET_LOCK(%s, %s)", (name, timeout), doing="waiting for a djshare lock")
    if got != 1:
        raise LinkBusyError(busy)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            session.scalar("SELECT RELEASE_LOCK(%s)", (name,))

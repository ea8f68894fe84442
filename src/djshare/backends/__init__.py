"""Backends: one module per server kind, holding its SQL, sessions, catalog and bulk movers, for link, export
and diff alike (`mariadb`, `mariadb_rows`, `postgresql`; `address` and `catalog` are shared by all). The modules of
`djshare.sql` re-export these names for one release."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from djshare.backends.address import ServerAddress
    from djshare.backends.mariadb_rows import MariaDB


def dialect(backend: str) -> MariaDB:
    """The SQL of the server kind `backend` names ("mariadb", "mysql" or "postgresql"), as one dialect object."""
    if backend == "postgresql":
        from djshare.backends.postgresql_sql import POSTGRESQL

        return POSTGRESQL
    from djshare.backends.mariadb_rows import MARIADB

    return MARIADB


def session(address: ServerAddress) -> AbstractContextManager[Any]:
    """A session on the server at `address`, of its kind (`mariadb.Session`, `postgresql.PgSession`): `rows`,
    `scalar`, `stream`, `execute` and `transaction` alike, errors translated, closed when the block ends."""
    if address.backend == "postgresql":
        from djshare.backends.postgresql import session as pg_session

        return pg_session(address)
    from djshare.backends.mariadb import Session

    return Session(address)

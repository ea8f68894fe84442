"""Backends: one module per server kind, holding its SQL, sessions, catalog and bulk movers, for link, export
and diff alike (`mariadb`, `mariadb_rows`, `postgresql`; `address` and `catalog` are shared by all). The modules of
`djshare.sql` re-export these names for one release."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from djshare.backends.mariadb_rows import MariaDB


def dialect(backend: str) -> MariaDB:
    """The SQL of the server kind `backend` names ("mariadb", "mysql" or "postgresql"), as one dialect object."""
    if backend == "postgresql":
        from djshare.backends.postgresql_sql import POSTGRESQL

        return POSTGRESQL
    from djshare.backends.mariadb_rows import MARIADB

    return MARIADB

"""Fixtures shared by integration and fault tests: real MariaDB servers, lab users, a source pipeline."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datajoint as dj
import pytest

from tests.pipeline import build_pipeline, fill_pipeline
from tests.servers import LinkUsers, MariaDBServer, create_link_users, mariadb_servers

__all__ = ["Lab", "build_pipeline", "fill_pipeline"]

_counter = itertools.count()


@pytest.fixture(scope="session")
def servers() -> Iterator[list[MariaDBServer]]:
    """Three MariaDB servers: a source and two local (subscriber) servers."""
    with mariadb_servers(3) as running:
        yield running


@pytest.fixture(scope="session")
def default_packet_server() -> Iterator[MariaDBServer]:
    """A local server left at MariaDB's default max_allowed_packet (16 MB)."""
    with mariadb_servers(1, max_allowed_packet="16M", names=("defaults",)) as running:
        yield running[0]


@pytest.fixture(scope="session")
def defaults_server() -> Iterator[MariaDBServer]:
    """A server left at all of MariaDB's defaults (latin1 server character set, 16 MB packets)."""
    with mariadb_servers(1, names=("all-defaults",), defaults=True) as running:
        yield running[0]


def admin_connection(server: MariaDBServer) -> dj.Connection:
    return dj.Connection(server.address, server.admin_user, server.admin_password, use_tls=False)


@dataclass
class Lab:
    """One test's world: unique schema names, the source pipeline, and the env a link reads."""

    source: MariaDBServer
    local: MariaDBServer
    source_schema: str
    outbound_schema: str
    local_schema: str
    users: LinkUsers
    pipeline: dict[str, Any]

    def source_lazy(self, **kwargs: Any) -> Any:
        from djshare import LazySchema

        return LazySchema(self.source_schema, host=self.source.address, **kwargs)

    def local_lazy(self, name: str | None = None) -> Any:
        from djshare import LazySchema

        return LazySchema(name or self.local_schema)

    def linked(self, class_name: str, local_schema: Any = None, source_stores: Any = None, **kwargs: Any) -> Any:
        from djshare import Link

        cls = type(class_name, (), {"__doc__": "The local table."})
        source = self.source_lazy() if source_stores is None else self.source_lazy(stores=source_stores)
        return Link(local_schema or self.local_lazy(), source, **kwargs)(cls)

    def source_link(self, class_name: str, admin: bool = True) -> Any:
        from djshare import SourceLink

        if admin:
            schema = self.source_lazy(user=self.source.admin_user, password=self.source.admin_password)
        else:
            schema = self.source_lazy()
        return SourceLink(schema, class_name)


@pytest.fixture
def lab(servers: list[MariaDBServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    source, local = servers[0], servers[1]
    n = next(_counter) + os.getpid() % 1000 * 1000
    names = f"src{n}", f"outbound{n}", f"local{n}"
    users = LinkUsers(link_user=f"link{n}", regular_user=f"sci{n}")
    create_link_users(source, names[0], names[1], users)
    connection = admin_connection(source)
    pipeline = build_pipeline(connection, names[0])
    monkeypatch.setenv("LINK_USER", users.link_user)
    monkeypatch.setenv("LINK_PASS", users.link_password)
    monkeypatch.setenv("LINK_OUTBOUND", names[1])
    monkeypatch.setitem(dj.config, "database.host", local.address)
    monkeypatch.setitem(dj.config, "database.user", local.admin_user)
    monkeypatch.setitem(dj.config, "database.password", local.admin_password)
    monkeypatch.setitem(dj.config, "database.use_tls", False)
    monkeypatch.setitem(dj.config, "safemode", False)
    yield Lab(source, local, *names, users, pipeline)
    connection.close()

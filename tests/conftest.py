"""Fixtures shared by integration and fault tests: real MariaDB servers, lab users, a source pipeline."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from tests.servers import LinkUsers, MariaDBServer, create_link_users, mariadb_servers

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

    def linked(self, class_name: str, local_schema: Any = None, **kwargs: Any) -> Any:
        from djshare import Link

        cls = type(class_name, (), {"__doc__": "The local table."})
        return Link(local_schema or self.local_lazy(), self.source_lazy(), **kwargs)(cls)

    def source_link(self, class_name: str, admin: bool = True) -> Any:
        from djshare import SourceLink

        if admin:
            schema = self.source_lazy(user=self.source.admin_user, password=self.source.admin_password)
        else:
            schema = self.source_lazy()
        return SourceLink(schema, class_name)


def build_pipeline(connection: dj.Connection, schema_name: str) -> dict[str, Any]:
    """A small source pipeline: a parent, a table with many column types and a FK to the parent, and a
    Computed table with a part table."""
    schema = dj.Schema(schema_name, connection=connection)

    @schema
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject : varchar(16)
        ---
        species = 'mouse' : varchar(30)
        """

    @schema
    class Recording(dj.Manual):
        definition = """
        # a recording session
        -> Subject
        recording : int
        ---
        recorded_at = CURRENT_TIMESTAMP : timestamp   # when it was entered
        note = "it's" : varchar(255)
        weight = null : float
        score : double
        amount = 1.25 : decimal(8,3)
        data = null : longblob
        kind = 'a' : enum('a', 'b')
        day = null : date
        token = null : uuid      # binary(16): bytes that are not UTF-8
        attachment = null : attach
        """

    @schema
    class Scan(dj.Computed):
        definition = """
        -> Recording
        ---
        result : float
        """

        class Channel(dj.Part):
            definition = """
            -> master
            channel : tinyint unsigned
            ---
            trace : longblob
            """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, result=float(key["recording"]) / 3))
            self.Channel.insert(
                [dict(key, channel=c, trace=np.arange(c + 3, dtype=np.float64)) for c in range(2)]
            )

    return {"schema": schema, "Subject": Subject, "Recording": Recording, "Scan": Scan}


def fill_pipeline(pipeline: dict[str, Any], subjects: int = 2, recordings: int = 5) -> None:
    rng = np.random.default_rng(7)
    pipeline["Subject"].insert([{"subject": f"s{i}"} for i in range(subjects)])
    rows = []
    for i in range(subjects):
        for r in range(recordings):
            rows.append({
                "subject": f"s{i}", "recording": r, "weight": float(np.float32(rng.normal())),
                "score": float(rng.normal()), "data": rng.normal(size=(3, 2)),
                "note": "quote ' \" \\ ( ) $ ` é 😀\n", "token": uuid.UUID(bytes=bytes([0, 255, 39, 92, r] + [r] * 11)),
                "day": "2024-02-29" if r % 2 else None,
            })
    pipeline["Recording"].insert(rows)
    pipeline["Scan"].populate()


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

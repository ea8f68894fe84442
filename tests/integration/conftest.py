"""Fixtures of the export tests: a two-schema pipeline on the source server, and DataJoint pointed at it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datajoint as dj
import pytest

from djshare.sql.connection import ServerAddress, Session
from tests.conftest import admin_connection
from tests.pipeline import build_export_pipeline, fill_export
from tests.servers import MariaDBServer

_names = itertools.count()


@dataclass
class ExportLab:
    server: MariaDBServer
    core: str
    analysis: str
    work: str
    pipeline: dict[str, Any]

    def session(self) -> Session:
        return Session(ServerAddress(self.server.host, self.server.port, self.server.admin_user,
                                     self.server.admin_password))


@pytest.fixture
def export_lab(servers: list[MariaDBServer]) -> Iterator[ExportLab]:
    n = next(_names)
    source = servers[0]
    core, analysis, work = f"xcore{n}", f"xana{n}", f"xwork{n}"
    source.execute(f"CREATE DATABASE `{work}`")
    connection = admin_connection(source)
    pipeline = build_export_pipeline(connection, core, analysis)
    fill_export(pipeline)
    yield ExportLab(source, core, analysis, work, pipeline)
    connection.close()


@pytest.fixture
def exporting(export_lab: ExportLab, monkeypatch: pytest.MonkeyPatch) -> ExportLab:
    """The DataJoint settings point at the lab's server, where data and captures live."""
    monkeypatch.setitem(dj.config, "database.host", export_lab.server.address)
    monkeypatch.setitem(dj.config, "database.user", export_lab.server.admin_user)
    monkeypatch.setitem(dj.config, "database.password", export_lab.server.admin_password)
    monkeypatch.setitem(dj.config, "database.use_tls", False)
    return export_lab

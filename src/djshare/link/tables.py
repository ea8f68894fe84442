"""The tables one link involves, by name and shape (no connections)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from djshare.link.local import DELETION_REQUESTED
from djshare.link.outbound import OutboundTable
from djshare.sql.catalog import TableInfo
from djshare.sql.connection import quote_name

Checkpoint = Callable[[str], None]  # called after each committed step group; fault-injection tests raise in it


def no_checkpoint(name: str) -> None:
    return None


@dataclass(frozen=True)
class LinkTables:
    source: TableInfo  # the source master table
    source_parts: tuple[TableInfo, ...]
    local_schema: str
    outbound: OutboundTable
    subscriber: str

    @property
    def local(self) -> TableInfo:
        """The local master: the source's shape in the local schema."""
        return replace(self.source, schema=self.local_schema)

    def local_name(self, table: TableInfo) -> str:
        return quote_name(self.local_schema, table.name)

    @property
    def deletion_requested_name(self) -> str:
        return quote_name(self.local_schema, f"{self.source.name}__{DELETION_REQUESTED}")

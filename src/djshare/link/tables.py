"""The tables one link involves, by name and shape (no connections)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import quote_name
from djshare.link.local import DELETION_REQUESTED
from djshare.link.outbound import OutboundTable
from djshare.stores.formats.dj014 import ExternalColumn
from djshare.stores.spec import StoreSpec
from djshare.sync.actions import Action

if TYPE_CHECKING:
    from djshare.link.protocol import Outbound, Step


@dataclass
class PullReport:
    """What a pull did (or, as a dry run, would do)."""

    pulled: int = 0  # entities copied into the local table
    adopted: int = 0  # local rows that had no outbound row, now recorded
    finished: int = 0  # entities of an interrupted pull that only needed marking
    part_rows: int = 0
    objects: int = 0  # external objects copied into local stores
    batches: int = 0
    would_pull: int = 0  # dry run: entities a real run would copy
    dry_run: bool = False
    notes: dict[str, int] = field(default_factory=dict)
    refreshed: int = 0  # pull(refresh_changed=True): entities whose changed source rows were brought over


Checkpoint = Callable[[str], None]  # called after each committed step group; fault-injection tests raise in it


def no_checkpoint(name: str) -> None:
    return None


@dataclass(frozen=True)
class StorePair:
    """A source store and the local store its objects go to, with the source's `~external` table."""

    source: StoreSpec
    local: StoreSpec
    source_external: TableInfo


@dataclass(frozen=True)
class LinkStores:
    columns: tuple[ExternalColumn, ...] = ()  # external columns of the source master and parts
    pairs: dict[str, StorePair] = field(default_factory=dict)  # by source store name
    copy_objects: bool = True  # False: the local side reads the source's objects where they are


@dataclass(frozen=True)
class LinkTables:
    source: TableInfo  # the source master table
    source_parts: tuple[TableInfo, ...]
    local_schema: str
    outbound: OutboundTable
    subscriber: str
    stores: LinkStores = field(default_factory=LinkStores)

    @property
    def local(self) -> TableInfo:
        """The local master: the source's shape in the local schema."""
        return replace(self.source, schema=self.local_schema)

    def local_name(self, table: TableInfo) -> str:
        return quote_name(self.local_schema, table.name)

    @property
    def deletion_requested_name(self) -> str:
        return quote_name(self.local_schema, f"{self.source.name}__{DELETION_REQUESTED}")


class LocalSide(Protocol):
    """The local side of a link as the pull and repair loops see it. Entities are named by the source's key
    literals (`sql.transfer.row_literal`) on both sides: MariaDB local tables (`pull.MariaDBLocal`) or a
    DataJoint 2.x schema on PostgreSQL (`link.dj2_local.PostgresLocal`)."""

    name: str  # the local master table, for messages

    def present(self, keys: list[bytes]) -> set[bytes]:
        """Which of `keys` have a local master row."""
        ...

    def copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Copy these entities (objects first, then master and part rows in one local transaction)."""
        ...

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        """Every local master key, in pages, as source key literals (repair)."""
        ...

    def count(self) -> int:
        """Local master rows."""
        ...


@runtime_checkable
class Refreshable(LocalSide, Protocol):
    """A local side that can tell which held entities changed at the source and bring them over (stale checks
    and `pull --refresh-changed` of the DataJoint-free link kinds)."""

    def stale_keys(self, keys: list[bytes]) -> tuple[list[bytes], int, list[Action]]:
        """Of these held entities: those whose source rows differ from the local ones, how many have no local
        master row (out of step: `repair`'s business), and what differs in the rows of the first (one action per
        master or part row)."""
        ...

    def refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Bring these entities' current source rows over, in place (objects first; one local transaction)."""
        ...


class SourceSide(Protocol):
    """The source server as the pull and repair loops see it: the source table and the outbound rows of one
    link and subscriber, entities named by key literals (MariaDB: `pull.MariaDBSource`; PostgreSQL:
    `link.pg.PostgresSource`). Each write is one protocol step, guarded by `protocol.STEP_GUARD`."""

    name: str  # the source table, for messages

    def transaction(self, doing: str) -> AbstractContextManager[Any]:
        """One transaction on the source server."""
        ...

    def check_where(self, where: str) -> None:
        """Let the server parse a restriction (" WHERE ..." or "") before anything changes."""
        ...

    def candidates(self, where: str, after: bytes | None, size: int) -> list[tuple[bytes, str | None]]:
        """The next `size` keys (after `after`, in key order) matching `where` that this subscriber does not
        hold yet or is part way through, with their outbound state (None: no outbound row)."""
        ...

    def count_candidates(self, where: str) -> int:
        ...

    def observe(self, keys: list[bytes]) -> dict[bytes, Outbound]:
        """Outbound state of each key that has an outbound row (others are absent)."""
        ...

    def record(self, keys: list[bytes], state: Outbound) -> int:
        """RECORD_PULLING / ADOPT: outbound rows for source rows that exist."""
        ...

    def update(self, keys: list[bytes], step: Step) -> int:
        ...

    def remove(self, keys: list[bytes]) -> int:
        ...

    def present(self, keys: list[bytes]) -> set[bytes]:
        """Which of `keys` have a source row."""
        ...

    def outbound_pages(self, size: int) -> Iterator[list[bytes]]:
        """Every outbound key of this subscriber, in pages (repair)."""
        ...

    def held_pages(self, where: str, size: int) -> Iterator[list[bytes]]:
        """This subscriber's keys in states that have a local row (pulled, deletion requested) whose source rows
        match `where` (" WHERE ..." or ""), in pages (stale checks)."""
        ...

    def counts(self) -> dict[str, int]:
        """This subscriber's outbound rows per state."""
        ...

"""The engine behind the DataJoint 0.14 facade: a class linked by `@Link` (`link.api`) runs pull, repair, stale,
refresh of changed entities and status through the one `LinkRunner`, as every other link kind does, with the
source and local sides on MariaDB (`pull.MariaDBSource`, `pull.MariaDBLocal`: the source's literals as they are,
stale found by the diff engine inside both servers). What is the facade's own: restrictions as DataJoint takes them
(`restriction.where_clause`), and the local tables declared through DataJoint when the class is first used."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import Session
from djshare.errors import DefinitionMismatchError
from djshare.link.gc import GcReport
from djshare.link.gc import gc as run_gc
from djshare.link.lazy import LazySchema
from djshare.link.lock import link_lock
from djshare.link.outbound import OutboundTable
from djshare.link.pull import MariaDBLocal, MariaDBSource
from djshare.link.runner import LinkRunner, Ready
from djshare.link.tables import LinkStores, LinkTables, LocalSide, SourceSide
from djshare.restriction import where_clause


class Settings(Protocol):
    """A `@Link`'s settings."""

    source_schema: LazySchema
    local_schema: LazySchema
    outbound: str | None
    subscriber: str | None
    batch_size: int
    lock_timeout: float


class Plan(Protocol):
    """What setting a linked class up will declare (`api._Plan`)."""

    @property
    def info(self) -> TableInfo: ...

    @property
    def parts(self) -> tuple[TableInfo, ...]: ...

    @property
    def stores(self) -> LinkStores: ...

    @property
    def outbound(self) -> OutboundTable: ...


class Runtime(Protocol):
    """What a linked class knows once it is set up (`api._Runtime`)."""

    tables: LinkTables
    mismatch: list[str]


class Dj014Runner(LinkRunner):
    """The commands of one class linked by `@Link`. `plan` reads what setting the class up will declare (no
    change); `runtime` sets it up (declares through DataJoint) and returns what it knows; `declared` says whether
    that happened or the local table existed already."""

    def __init__(self, table: str, link: Settings, plan: Callable[[], Plan], runtime: Callable[[], Runtime],
                 declared: Callable[[], bool]) -> None:
        super().__init__(table, outbound=link.outbound, subscriber=link.subscriber,
                         batch_size=link.batch_size, lock_timeout=link.lock_timeout)
        self.link, self.plan, self.runtime, self.declared = link, plan, runtime, declared

    def _setup(self, create: bool = True) -> Ready:
        plan = self.plan()
        if not create and not self.declared():
            return Ready(LinkTables(plan.info, plan.parts, self.link.local_schema.name, plan.outbound, "",
                                    plan.stores), [], linked=False)
        rt = self.runtime()
        return Ready(rt.tables, rt.mismatch)

    def _source_session(self) -> contextlib.AbstractContextManager[Session]:
        return self.link.source_schema.session()

    def _where(self, restrictions: tuple[Any, ...]) -> str:
        """Restrictions as DataJoint 0.14 takes them (its own SQL for dicts, lists, query expressions)."""
        return where_clause(self.link.source_schema.connection, self.plan().info.full_name, restrictions)

    @contextlib.contextmanager
    def _sides(self, ready: Ready) -> Iterator[tuple[SourceSide, LocalSide]]:
        tables = ready.tables
        with self.link.source_schema.session() as source, self.link.local_schema.session() as local, \
                link_lock(source, tables.outbound, tables.subscriber, self.lock_timeout):
            yield MariaDBSource(source, tables), MariaDBLocal(source, local, tables)

    def _check_declared(self, ready: Ready) -> None:
        tables = ready.tables
        if ready.mismatch:
            raise DefinitionMismatchError(
                f"The local table {tables.local.full_name} no longer matches the source table "
                f"{tables.source.full_name}: {'; '.join(ready.mismatch)}. Nothing was pulled. Alter the local table "
                "to match (or drop it after saving its rows, and let djshare declare it again)."
            )

    def gc(self, dry_run: bool = False) -> GcReport:
        """Objects djshare copied into the local schema's stores that no row references any more."""
        schema = self.link.local_schema
        with schema.session() as local:
            return run_gc(local, schema.name, schema.store_settings(), dry_run)

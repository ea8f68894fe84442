"""Links across backends: a source table on MariaDB, DataJoint 0.14 or 2.x, pulled into a DataJoint 2.x schema on
PostgreSQL (tables and objects in 2.x's layout, see `dj2_local`). The source side is the same as for any link
(outbound table, lock, protocol); only the local side differs.

    source = LazySchema("lab", host="db.lab.org:3306")                       # LINK_USER / LINK_PASS
    target = PostgresSchema("lab_v2", host="pg.lab.org", database="lab",     # DJ_USER / DJ_PASS
                            stores={"main": {"protocol": "s3", ...}})
    scan = CrossLink("Scan", source, target)                                 # outbound: LINK_OUTBOUND
    scan.pull("session_date > '2024-01-01'")

DataJoint 2.x then reads `lab_v2` as its own schema (`dj.VirtualModule` or classes with the same definitions).
A DataJoint 2.x source on MariaDB is given as `dj2.MariaDBSchema.source(...)` (no DataJoint needed): its tables
hold in-table types only (DataJoint 2.3.5 cannot insert in-store codecs on MariaDB), its type labels name the same
core types on PostgreSQL, and its `~lineage` rows are kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from djshare.backends import postgresql as postgres
from djshare.backends.catalog import TableInfo, find_table, part_names, read_table, table_names
from djshare.backends.mariadb import Session
from djshare.errors import ConfigurationError
from djshare.link import outbound
from djshare.link.dj2 import MariaDBSchema, refuse_in_store, source_lineage
from djshare.link.dj2_local import PostgresLocal, check_declared, declare, local_tables
from djshare.link.gc import GcReport
from djshare.link.local import DELETION_REQUESTED
from djshare.link.lock import link_lock
from djshare.link.outbound import OutboundTable
from djshare.link.pg import PostgresSchema, subscriber_id
from djshare.link.pg import gc as pg_gc
from djshare.link.pull import DEFAULT_BATCH, MariaDBSource
from djshare.link.runner import LinkRunner, Ready, check_store_map, outbound_schema_name, table_exists
from djshare.link.tables import LinkStores, LinkTables, LocalSide, SourceSide, StorePair
from djshare.restriction import where_clause
from djshare.stores.formats import dj014, format_of_schema
from djshare.stores.spec import StoreSpec

if TYPE_CHECKING:
    from djshare.link.api import LazySchema


class CrossLink(LinkRunner):
    """A link from a source table on MariaDB (`table`: its class name or SQL name) to a 2.x schema on PostgreSQL:
    a DataJoint 0.14 schema (`source`: a `LazySchema` with host=) or a 2.x one (a `MariaDBSchema`). `stores` maps
    local store names to source store names where they differ (0.14 sources: their external objects)."""

    def __init__(self, table: str, source: LazySchema | MariaDBSchema, target: PostgresSchema, *,
                 outbound: str | None = None, subscriber: str | None = None, stores: Mapping[str, str] | None = None,
                 batch_size: int = DEFAULT_BATCH, lock_timeout: float = 60.0) -> None:
        if not isinstance(source, MariaDBSchema) and not source.is_source:
            raise ConfigurationError(f"The source schema {source.name!r} needs host= (the source server).")
        super().__init__(table, outbound=outbound, subscriber=subscriber, stores=stores, batch_size=batch_size,
                         lock_timeout=lock_timeout)
        self.source, self.target = source, target

    def _setup(self, create: bool = True) -> Ready:
        if self._ready is not None:
            return self._ready
        outbound_schema = outbound_schema_name(self.outbound)
        schema = self.source.name
        with self.source.session() as source, postgres.session(self.target.address) as pg:
            source_format = format_of_schema(source, schema)
            if source_format == "dj2" and not isinstance(self.source, MariaDBSchema):
                raise ConfigurationError(
                    f"Schema `{schema}` holds DataJoint 2.x tables: give the source as MariaDBSchema.source(...) "
                    "(djshare.link.dj2). Nothing was changed.")
            if source_format == "dj014" and isinstance(self.source, MariaDBSchema):
                raise ConfigurationError(
                    f"Schema `{schema}` is in DataJoint 0.14's layout: give the source as LazySchema(..., host=...), "
                    "whose store settings say where its external objects are. Nothing was changed.")
            name = self.table if not self.table[:1].isupper() else find_table(source, schema, self.table)
            info = read_table(source, schema, name)
            parts = tuple(read_table(source, schema, p) for p in part_names(source, schema, name)
                          if p != f"{name}__{DELETION_REQUESTED}")
            if source_format == "dj2":
                refuse_in_store((info, *parts))
            stores = self._stores(source, info, parts) if source_format == "dj014" else LinkStores()
            ob = OutboundTable.for_source(info, outbound_schema)
            tables = LinkTables(info, parts, self.target.name, ob, "", stores)
            local = local_tables(tables, self.store_map, source_format)  # refuses what 2.x cannot hold
            if not create and not table_exists(pg, self.target.name, info.name):
                return Ready(tables, [], local, linked=False)
            outbound.declare(source, ob)
            subscriber = self.subscriber or subscriber_id(pg, self.target.name)
            tables = replace(tables, subscriber=subscriber)
            mismatch = declare(pg, tables, local, source_lineage(source, tables, source_format))
        self._ready = Ready(tables, mismatch, local)
        return self._ready

    def _stores(self, source: Session, info: TableInfo, parts: tuple[TableInfo, ...]) -> LinkStores:
        assert not isinstance(self.source, MariaDBSchema)
        columns = tuple(found for table in (info, *parts) for column in table.columns
                        if (found := dj014.external_column(table.name, column)) is not None)
        check_store_map(self.store_map, (n.removeprefix("~external_") for n in table_names(source, info.schema)
                                         if n.startswith("~external_")), f"schema `{info.schema}`")
        pairs = {}
        for store in sorted({c.store for c in columns if c.kind != "filepath"}):
            source_spec = StoreSpec.from_config(store, self.source.store_settings(), "source")
            local_spec = StoreSpec.from_config(self.store_map.get(store, store), self.target.stores, "local")
            pairs[store] = StorePair(source_spec, local_spec, read_table(source, info.schema, f"~external_{store}"))
        return LinkStores(columns, pairs)

    @contextlib.contextmanager
    def _sides(self, ready: Ready) -> Iterator[tuple[SourceSide, LocalSide]]:
        with self.source.session() as source, postgres.session(self.target.address) as pg, \
                link_lock(source, ready.tables.outbound, ready.tables.subscriber, self.lock_timeout):
            yield MariaDBSource(source, ready.tables), PostgresLocal(source, pg, ready.tables, ready.local)

    def _source_session(self) -> contextlib.AbstractContextManager[Session]:
        return self.source.session()

    def _where(self, restrictions: tuple[Any, ...]) -> str:
        if isinstance(self.source, MariaDBSchema):
            return super()._where(restrictions)
        return where_clause(self.source.connection, self._setup(create=False).tables.source.full_name, restrictions)

    def _check_declared(self, ready: Ready) -> None:
        check_declared(ready.mismatch, ready.tables)

    def gc(self, dry_run: bool = False) -> GcReport:
        return pg_gc(self.target, dry_run)

    def _stranded(self, local: LocalSide) -> list[bytes]:
        return [repr(k).encode() for k in local.stranded] if isinstance(local, PostgresLocal) else []

"""Links across formats and backends: a DataJoint 0.14 source table on MariaDB pulled into a DataJoint 2.x schema
on PostgreSQL (tables and objects in 2.x's layout, see `dj2_local`). The source side is the same as for any
link (outbound table, lock, protocol); only the local side differs.

    source = LazySchema("lab", host="db.lab.org:3306")                       # LINK_USER / LINK_PASS
    target = PostgresSchema("lab_v2", host="pg.lab.org", database="lab",     # DJ_USER / DJ_PASS
                            stores={"main": {"protocol": "s3", ...}})
    scan = CrossLink("Scan", source, target)                                 # outbound: LINK_OUTBOUND
    scan.pull("session_date > '2024-01-01'")

DataJoint 2.x then reads `lab_v2` as its own schema (`dj.VirtualModule` or classes with the same definitions).
The reverse direction (a 2.x source into 0.14) is refused: see `reverse_refusal`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from djshare.errors import ConfigurationError
from djshare.link import outbound
from djshare.link.api import LazySchema, outbound_schema_name
from djshare.link.dj2_local import PostgresLocal, check_declared, declare, local_tables, subscriber_id
from djshare.link.local import DELETION_REQUESTED
from djshare.link.lock import link_lock
from djshare.link.outbound import OutboundTable
from djshare.link.protocol import Outbound
from djshare.link.pull import DEFAULT_BATCH, PullReport, count_candidates
from djshare.link.pull import pull as run_pull
from djshare.link.repair import RepairReport
from djshare.link.repair import repair as run_repair
from djshare.link.tables import Checkpoint, LinkStores, LinkTables, StorePair, no_checkpoint
from djshare.progress import progress_bar
from djshare.restriction import check_where, where_clause
from djshare.sql import postgres
from djshare.sql.catalog import TableInfo, find_table, part_names, read_table
from djshare.sql.connection import ServerAddress, Session
from djshare.stores.formats import dj014, format_of_schema
from djshare.stores.spec import StoreSpec


class PostgresSchema:
    """A schema on a PostgreSQL server, as a link's local side in DataJoint 2.x's layout.

    User and password: `user=` / `password=`, else DJ_USER / DJ_PASS. `stores`: the local stores in
    DataJoint's `stores` settings form (protocol file or s3; default: dj.config["stores"]).
    """

    def __init__(self, name: str, *, host: str, database: str, user: str | None = None,
                 password: str | None = None, port: int | None = None,
                 stores: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.name, self.host, self.database = name, host, database
        self._user, self._password, self._port = user, password, port
        self._stores = stores

    @property
    def stores(self) -> Mapping[str, Mapping[str, Any]]:
        """`stores=` if given, else DataJoint's settings (dj.config["stores"])."""
        if self._stores is not None:
            return self._stores
        import datajoint as dj

        return dict(dj.config.get("stores") or {})

    @property
    def address(self) -> ServerAddress:
        user = self._user or os.environ.get("DJ_USER")
        password = self._password if self._password is not None else os.environ.get("DJ_PASS")
        if not user or password is None:
            raise ConfigurationError(f"No credentials for the PostgreSQL server {self.host}: set DJ_USER and DJ_PASS "
                                     "(or pass user= and password= to PostgresSchema).")
        address = ServerAddress.parse(self.host, user, password, self._port or postgres.DEFAULT_PORT)
        return replace(address, backend="postgresql", database=self.database)


@dataclass
class _Ready:
    tables: LinkTables
    local: tuple[Any, ...]
    mismatch: list[str]


class CrossLink:
    """A link from a DataJoint 0.14 source table (`table`: its class name or SQL name) to a 2.x schema on
    PostgreSQL. `stores` maps local store names to source store names where they differ."""

    def __init__(self, table: str, source: LazySchema, target: PostgresSchema, *, outbound: str | None = None,
                 subscriber: str | None = None, stores: Mapping[str, str] | None = None,
                 batch_size: int = DEFAULT_BATCH, lock_timeout: float = 60.0) -> None:
        if not source.is_source:
            raise ConfigurationError(f"The source schema {source.name!r} needs host= (the source server).")
        self.table, self.source, self.target = table, source, target
        self.outbound, self.subscriber = outbound, subscriber
        self.store_map = {source_store: local_store for local_store, source_store in (stores or {}).items()}
        self.batch_size, self.lock_timeout = batch_size, lock_timeout
        self._ready: _Ready | None = None

    def _setup(self) -> _Ready:
        """Check everything, then declare the outbound table and the local tables (once per object)."""
        if self._ready is not None:
            return self._ready
        outbound_schema = outbound_schema_name(self.outbound)
        schema = self.source.name
        with self.source.session() as source, postgres.session(self.target.address) as pg:
            if format_of_schema(source, schema) != "dj014":
                raise ConfigurationError(reverse_refusal(schema))
            name = self.table if not self.table[:1].isupper() else find_table(source, schema, self.table)
            info = read_table(source, schema, name)
            parts = tuple(read_table(source, schema, p) for p in part_names(source, schema, name)
                          if p != f"{name}__{DELETION_REQUESTED}")
            stores = self._stores(source, info, parts)
            ob = OutboundTable.for_source(info, outbound_schema)
            tables = LinkTables(info, parts, self.target.name, ob, "", stores)
            local = local_tables(tables, self.store_map)  # refuses what 2.x cannot hold, before any change
            outbound.declare(source, ob)
            subscriber = self.subscriber or subscriber_id(pg, self.target.name)
            tables = replace(tables, subscriber=subscriber)
            mismatch = declare(pg, tables, local)
        self._ready = _Ready(tables, local, mismatch)
        return self._ready

    def _stores(self, source: Session, info: TableInfo, parts: tuple[TableInfo, ...]) -> LinkStores:
        columns = tuple(found for table in (info, *parts) for column in table.columns
                        if (found := dj014.external_column(table.name, column)) is not None)
        pairs = {}
        for store in sorted({c.store for c in columns if c.kind != "filepath"}):
            source_spec = StoreSpec.from_config(store, self.source.store_settings(), "source")
            local_spec = StoreSpec.from_config(self.store_map.get(store, store), self.target.stores, "local")
            pairs[store] = StorePair(source_spec, local_spec, read_table(source, info.schema, f"~external_{store}"))
        return LinkStores(columns, pairs)

    @contextlib.contextmanager
    def _locked(self, ready: _Ready) -> Iterator[tuple[Session, PostgresLocal]]:
        with self.source.session() as source, postgres.session(self.target.address) as pg, \
                link_lock(source, ready.tables.outbound, ready.tables.subscriber, self.lock_timeout):
            yield source, PostgresLocal(source, pg, ready.tables, ready.local)

    def pull(self, *restrictions: Any, dry_run: bool = False, progress: bool = True, batch_size: int | None = None,
             checkpoint: Checkpoint = no_checkpoint, refresh_changed: bool = False) -> PullReport:
        """Pull every source entity matching all `restrictions` not held yet (objects converted first). Safe to
        re-run after any failure; see `repair`."""
        if refresh_changed:
            raise ConfigurationError("Refreshing changed entities (--refresh-changed) is not built for PostgreSQL "
                                     "local schemas yet; find them with `djshare diff` on the two tables.")
        ready = self._setup()
        check_declared(ready.mismatch, ready.tables)
        tables = ready.tables
        where = where_clause(self.source.connection, tables.source.full_name, restrictions)
        with self._locked(ready) as (source, local):
            check_where(source, tables.source.full_name, where)
            total = count_candidates(source, tables, where)
            with progress_bar(f"pull {tables.source.name}", total, progress and not dry_run) as advance:
                return run_pull(source, local, tables, where, batch_size=batch_size or self.batch_size, dry_run=dry_run,
                                on_progress=advance, checkpoint=checkpoint)

    def repair(self, dry_run: bool = False, progress: bool = True,
               checkpoint: Checkpoint = no_checkpoint) -> RepairReport:
        """Make the outbound table agree with the local tables (after a crash, or deletions outside djshare).
        Local rows whose source row is gone are reported in `stranded` and left alone."""
        ready = self._setup()
        with self._locked(ready) as (source, local):
            total = local.count() + int(source.scalar(
                f"SELECT COUNT(*) FROM {ready.tables.outbound.full_name} WHERE `subscriber` = %s",
                (ready.tables.subscriber,)))
            with progress_bar(f"repair {ready.tables.source.name}", total, progress) as advance:
                report = run_repair(source, local, ready.tables, dry_run=dry_run, on_progress=advance,
                                    checkpoint=checkpoint)
            report.stranded += [repr(k).encode() for k in local.stranded]
            return report

    def status(self) -> dict[str, int]:
        """This subscriber's outbound rows by state, and the local row count."""
        ready = self._setup()
        with self._locked(ready) as (source, local):
            counts = outbound.counts(source, ready.tables.outbound).get(ready.tables.subscriber, {})
            result = {state.value: counts.get(state.value, 0) for state in Outbound}
            result["local"] = local.count()
            return result


def reverse_refusal(schema: str) -> str:
    return (f"Schema `{schema}` holds DataJoint 2.x tables: djshare cannot link a 2.x source yet (links need the "
            "source on MariaDB in 0.14's layout). Compare and copy 2.x tables with `djshare diff ... --apply table` "
            "instead. Into a 0.14 local table, only in-table types and <blob@store>/<attach@store> could ever be "
            "converted; <object@store> and <filepath@store> have no 0.14 equivalent.")

"""Links between DataJoint 2.x schemas on PostgreSQL, without DataJoint (runs beside 2.x or 0.14).

    source = PostgresSchema.source("lab2", host="pg.lab.org", database="lab")   # LINK_USER / LINK_PASS
    local = PostgresSchema("collab2", host="pg.collab.org", database="collab")  # DJ_USER / DJ_PASS
    session = PgLink("Session", source, local)                                 # LINK_OUTBOUND
    session.pull("session_date > '2024-01-01'")                                # SQL conditions

The protocol and the loops are those of every link (`pull.pull`, `repair.repair`); this module holds their
PostgreSQL SQL. Source side (`PostgresSource`): an outbound table in its own schema with a foreign key to the
source table, a session-level advisory lock per link and subscriber (released by the server if the process
dies), keys named by literals the server writes (`quote_nullable` of each key column). Local side
(`link.pg_local.PostgresCopy`): the source's tables declared again (types, defaults, comments with their codec
labels, enum types, a part's foreign key to its master, `~lineage`), rows streamed with binary `COPY` from the
source into the local tables, one local transaction per batch.

Objects of hash-addressed codecs (`<blob@store>`, `<attach@store>`, `<hash@store>`) follow their rows: before
a batch's rows, each object goes from the source store (`_hash/{source schema}/{hash}`) to the local store
(`_hash/{local schema}/{hash}`), checked against the MD5 its name is made of, and the rows' JSON references
are rewritten on the way (path, store, schema). Path-addressed codecs carry no content hash: `<object@store>` and
`<npy@store>` files and folders (`{schema_prefix}/{schema}/{table}/{key}/{field}_{token}`) move to the local
store's `schema_prefix` and the local schema, `<filepath@store>` files keep their path; copies are checked by the
size the reference gives (a folder: its files, count and total size, and its manifest), and a file already at
the target path must hold the same bytes. Every object djshare writes is entered in the local `~djshare_objects`
journal first, so `gc` (`link.gc.gc_postgresql`) deletes what it wrote and no row references any more, never the
local lab's own files.

Deletions (`PgSourceLink`, the source lab's side): flag held entities, read the answers, and delete the source
rows no subscriber holds any more; a subscriber answers by deleting locally and running `repair`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends.address import ServerAddress, read_credentials
from djshare.backends.catalog import TableInfo
from djshare.backends.postgresql import (
    PgSession,
    advisory_lock,
    enum_labels,
    name,
    table_names,
)
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.errors import (
    ConfigurationError,
    DefinitionMismatchError,
)
from djshare.formats.declare import postgresql_copy
from djshare.formats.dj2_objects import ObjectColumn, object_columns, object_jobs  # noqa: F401
from djshare.formats.heading import differences
from djshare.formats.lineage import LINEAGE_TABLE, localized
from djshare.link.delete import SourceCommands
from djshare.link.gc import GcReport, gc_postgresql
from djshare.link.journal import PG_JOURNAL as JOURNAL_TABLE  # noqa: F401 (kept importable for one release)
from djshare.link.local import create_local
from djshare.link.local import subscriber_id as local_subscriber_id
from djshare.link.outbound import OutboundSource, OutboundTable, declare
from djshare.link.outbound import schema_counts as outbound_schema_counts
from djshare.link.pg_local import Objects, PostgresCopy, digests, entity_rows  # noqa: F401 (importable here for one release)
from djshare.link.pull import DEFAULT_BATCH
from djshare.link.runner import LinkRunner, Ready, check_store_map, outbound_schema_name, table_exists
from djshare.link.tables import LinkTables, LocalSide, SourceSide
from djshare.stores.formats import format_of_schema
from djshare.stores.spec import StoreSpec


class PostgresSchema:
    """A schema on a PostgreSQL server, as one side of a link.

    User and password: `user=` / `password=`, else the environment (DJ_USER / DJ_PASS; for `source(...)`,
    LINK_USER / LINK_PASS). `stores`: the side's stores in DataJoint's `stores` settings form (default:
    dj.config["stores"]), for links that copy objects.
    """

    def __init__(self, name: str, *, host: str, database: str, user: str | None = None,
                 password: str | None = None, port: int | None = None,
                 stores: Mapping[str, Mapping[str, Any]] | None = None,
                 role: str = "local") -> None:
        self.name, self.host, self.database = name, host, database
        self._user, self._password, self._port = user, password, port
        self._stores = stores
        self._role = role

    @classmethod
    def source(cls, name: str, *, host: str, database: str, user: str | None = None, password: str | None = None,
               port: int | None = None, stores: Mapping[str, Mapping[str, Any]] | None = None) -> PostgresSchema:
        """A source schema: user and password from LINK_USER / LINK_PASS unless given."""
        return cls(name, host=host, database=database, user=user, password=password, port=port, stores=stores,
                   role="link")

    @property
    def stores(self) -> Mapping[str, Mapping[str, Any]]:
        """`stores=` if given, else DataJoint's settings (dj.config["stores"])."""
        if self._stores is not None:
            return self._stores
        import datajoint as dj

        return dict(dj.config.get("stores") or {})

    @property
    def address(self) -> ServerAddress:
        user, password, given = read_credentials(self._role, f"postgresql://{self.host}/{self.database}",
                                                 self._user, self._password, "PostgresSchema")
        address = ServerAddress.parse(self.host, user, password, self._port or postgres.DEFAULT_PORT,
                                      credentials=given)
        return replace(address, backend="postgresql", database=self.database)


def declare_outbound(pg: PgSession, outbound: OutboundTable) -> None:
    """`outbound.declare` on PostgreSQL (kept by this name for one release)."""
    declare(pg, outbound, POSTGRESQL)


def link_lock(pg: PgSession, tables: LinkTables, timeout: float) -> contextlib.AbstractContextManager[None]:
    """One pull or repair of a link and subscriber at a time (an advisory lock on the source server)."""
    return advisory_lock(pg, f"{tables.outbound.schema}.{tables.outbound.name}/{tables.subscriber}", timeout,
                         f"Another djshare run (pull or repair) of {tables.source.schema}.{tables.source.name} for "
                         f"subscriber {tables.subscriber} held the link's lock for more than {timeout:g} s. Wait for "
                         "it to finish and try again.")


class PostgresSource(OutboundSource):
    """A link's source side on PostgreSQL: the source table and the outbound rows of one subscriber."""

    def __init__(self, pg: PgSession, tables: LinkTables) -> None:
        super().__init__(pg, POSTGRESQL, tables.outbound, tables.subscriber)
        self.pg, self.tables = pg, tables


def schema_counts(pg: PgSession, outbound_schema: str) -> list[tuple[str, str, dict[str, int]]]:
    """(source table, subscriber, rows per state) for every djshare outbound table in `outbound_schema`."""
    return outbound_schema_counts(pg, outbound_schema, POSTGRESQL)


def subscriber_id(pg: PgSession, schema: str) -> str:
    """`link.local.subscriber_id` on PostgreSQL (kept by this name for one release)."""
    return local_subscriber_id(pg, schema, POSTGRESQL)


def declare_local(source: PgSession, local: PgSession, tables: LinkTables, store_map: Mapping[str, str]) -> list[str]:
    """Create the local tables and lineage where missing, in one transaction; return how existing local tables
    differ from the source (empty when they match)."""
    schema = tables.local_schema
    statements = {t.name: postgresql_copy(t, None if t is tables.source else tables.source, schema, store_map,
                                          lambda kind: enum_labels(source, kind))
                  for t in (tables.source, *tables.source_parts)}
    names = {t.name for t in (tables.source, *tables.source_parts)}
    lineage = localized(source.rows(f"SELECT table_name, attribute_name, lineage FROM "
                                    f"{name(tables.source.schema, LINEAGE_TABLE)}"),
                        tables.source.schema, schema, names) \
        if LINEAGE_TABLE in table_names(source, tables.source.schema) else []
    create_local(local, schema, statements, lineage, [f"CREATE SCHEMA IF NOT EXISTS {name(schema)}"], POSTGRESQL)
    found = []
    for table in (tables.source, *tables.source_parts):
        found += differences(postgres.read_table(local, schema, table.name), table, lambda c: (c.data_type, c.nullable))
    return found


def table_name(pg: PgSession, schema: PostgresSchema, table: str) -> str:
    """The SQL name of `table`: a class name (CamelCase, tier prefix found) or the name itself."""
    present = table_names(pg, schema.name)
    if not table[:1].isupper():
        candidates = [table]
    else:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", table).lower()
        candidates = [prefix + snake for prefix in ("", "_", "__", "#")]
    for candidate in candidates:
        if candidate in present:
            return candidate
    masters = sorted(t for t in present if not t.startswith("~") and "__" not in t.lstrip("_#"))
    raise ConfigurationError(f"No table for {table} in schema {schema.name} on {schema.host}. "
                             f"Tables there: {', '.join(masters) or 'none'}.")


def part_tables(pg: PgSession, schema: str, master: str) -> tuple[TableInfo, ...]:
    """The part tables of `master` (DataJoint names them master__part)."""
    return tuple(postgres.read_table(pg, schema, p) for p in sorted(table_names(pg, schema))
                 if p.startswith(master + "__") and "__" not in p[len(master) + 2:])


class PgLink(LinkRunner):
    """A link from a DataJoint 2.x table on PostgreSQL (`table`: its class name or SQL name) to a schema on
    another PostgreSQL server, in the same layout. Restrictions: SQL text, dicts, lists (see `sql_restriction`).
    `stores` maps local store names to source store names where they differ; store settings come from each
    side's `PostgresSchema(stores=...)` (default: DataJoint's settings)."""

    source_sql = POSTGRESQL

    def __init__(self, table: str, source: PostgresSchema, local: PostgresSchema, *, outbound: str | None = None,
                 subscriber: str | None = None, stores: Mapping[str, str] | None = None,
                 batch_size: int = DEFAULT_BATCH, lock_timeout: float = 60.0) -> None:
        super().__init__(table, outbound=outbound, subscriber=subscriber, stores=stores, batch_size=batch_size,
                         lock_timeout=lock_timeout)
        self.source, self.local = source, local

    def _setup(self, create: bool = True) -> Ready:
        if self._ready is not None:
            return self._ready
        outbound_schema = outbound_schema_name(self.outbound)
        schema = self.source.name
        with postgres.session(self.source.address) as source, postgres.session(self.local.address) as local:
            table = table_name(source, self.source, self.table)
            if format_of_schema(source, schema) != "dj2":
                raise ConfigurationError(
                    f"Schema {schema} on {self.source.host} is not in DataJoint 2.x's layout (no ~lineage table, no "
                    "codec comments): links between PostgreSQL schemas are built for DataJoint 2.x schemas.")
            info = postgres.read_table(source, schema, table)
            parts = part_tables(source, schema, table)
            columns = object_columns((info, *parts), self.store_map)
            check_store_map(self.store_map, {c.store for c in columns} | set(self.source.stores),
                            f"table {schema}.{table} (its columns' stores and the source's store settings)")
            specs = {store: (StoreSpec.from_config(store, self.source.stores, "source"),
                             StoreSpec.from_config(self.store_map.get(store, store), self.local.stores, "local"))
                     for store in sorted({c.store for c in columns})}
            ob = OutboundTable.for_source(info, outbound_schema)
            if not create and not table_exists(local, self.local.name, info.name):
                return Ready(LinkTables(info, parts, self.local.name, ob, ""), [], linked=False)
            declare_outbound(source, ob)
            subscriber = self.subscriber or subscriber_id(local, self.local.name)
            tables = LinkTables(info, parts, self.local.name, ob, subscriber)
            mismatch = declare_local(source, local, tables, self.store_map)
        self._ready = Ready(tables, mismatch, Objects(tuple(columns), specs))
        return self._ready

    @contextlib.contextmanager
    def _sides(self, ready: Ready) -> Iterator[tuple[SourceSide, LocalSide]]:
        tables = ready.tables
        with postgres.session(self.source.address) as source, postgres.session(self.local.address) as local, \
                link_lock(source, tables, self.lock_timeout):
            yield PostgresSource(source, tables), PostgresCopy(source, local, tables, ready.local)

    def _source_session(self) -> contextlib.AbstractContextManager[PgSession]:
        return postgres.session(self.source.address)

    def gc(self, dry_run: bool = False) -> GcReport:
        """`gc` of the local schema (see there)."""
        return gc(self.local, dry_run)

    def _check_declared(self, ready: Ready) -> None:
        if ready.mismatch:
            tables = ready.tables
            raise DefinitionMismatchError(
                f"The local tables in {tables.local_schema} no longer match the source {tables.source.schema}."
                f"{tables.source.name}: " + "; ".join(ready.mismatch) + ". Nothing was pulled. Alter the local "
                "tables to match (or drop them after saving their rows, and let djshare declare them again).")


class PgSourceLink(SourceCommands):
    """The source lab's side of PostgreSQL links of one table: ask subscribers to delete entities they hold, see
    their answers, and delete the source rows once no one holds them, with their parts and dependent rows (the
    outbound table's foreign key keeps every held row). Restrictions: SQL text, dicts, lists (OR)."""

    sql = POSTGRESQL

    def __init__(self, table: str, source: PostgresSchema, *, outbound: str | None = None) -> None:
        super().__init__(source.name, table, lambda: postgres.session(source.address),
                         lambda: outbound_schema_name(outbound))
        self.source, self.outbound = source, outbound

    def _read(self, source: Any) -> TableInfo:
        return postgres.read_table(source, self.source.name, table_name(source, self.source, self.table))

    def _check_outbound(self, source: Any, ob: OutboundTable) -> None:
        if ob.name not in table_names(source, ob.schema):
            raise ConfigurationError(f"No subscriber has pulled {ob.source.schema}.{ob.source.name} (no outbound "
                                     f"table {ob.schema}.{ob.name}): nothing to ask or finish.")


def gc(local_schema: PostgresSchema, dry_run: bool = False) -> GcReport:
    """Delete objects djshare wrote into the stores of `local_schema` that no row of it references any more
    (`djshare.link.gc.gc_postgresql`). Store settings: `PostgresSchema(stores=...)`, default DataJoint's."""
    with postgres.session(local_schema.address) as local:
        return gc_postgresql(local, local_schema.name, local_schema.stores, dry_run)

"""Links from a DataJoint 2.x schema on PostgreSQL into a schema on MariaDB in DataJoint 0.14's layout, without
DataJoint: the reverse of the cross-format link (`link.crossformat`), for a lab that stays on 0.14. With
`format="dj2"` the local tables are declared as DataJoint 2.x declares them on MariaDB instead (the source's type
labels and codec comments, `~lineage` rows; in-table types only: 2.3.5 cannot insert in-store codecs there).

    source = PostgresSchema.source("lab2", host="pg.lab.org", database="lab")   # LINK_USER / LINK_PASS
    local = MariaDBSchema.local("collab")                                       # DJ_HOST / DJ_USER / DJ_PASS
    session = PgToMariaDBLink("Session", source, local)                         # LINK_OUTBOUND
    session.pull("session_date > '2024-01-01'")                                 # SQL on the source table

The source side is the PostgreSQL one of every link (`link.pg.PostgresSource`: outbound table, advisory lock).
The local tables are declared as DataJoint 0.14 declares them on MariaDB, from the 2.x type each column's
comment names (`:int32:` -> int, `:float32:` -> float, `:uuid:` -> binary(16) with `:uuid:`, `<blob>` -> longblob,
`<attach>` -> longblob with `:attach:`, ...), text compared byte for byte (utf8mb4_bin, as PostgreSQL's "C"
order), a part table's key to its master kept. In-table values are stored alike by both lines (the blob
serialization; an attachment as `name + NUL + contents`), so rows are copied as they are, converted only in
type (uuid to 16 bytes, json to text, bool to 0/1), one local transaction per batch.

Objects of `<blob@store>` and `<attach@store>` become 0.14 external objects: the column a binary(16) hash
(the same MD5 the 2.x hash encodes) referencing `~external_<store>` (declared as 0.14 declares it); before a
batch's rows, each object the local `~external` table lacks is read, checked against its MD5 and size, and
written to `{schema}/{ab}/{cd}/{hex}` (an attachment without its `name + NUL` prefix, at `{hex}.{name}`); its
`~external` row goes in with the batch's rows.

Not possible into 0.14: path-addressed codecs (`<object@>`, `<npy@>`, `<filepath@>`) and `<hash@>`, which 0.14
has no equivalent for, and raw `bytes` (0.14 would read a plain longblob as a serialized blob); both are refused
before anything changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends.catalog import read_table, schema_exists, table_names
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import MARIADB
from djshare.backends.postgresql import PgSession, name
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.errors import ConfigurationError, DefinitionMismatchError
from djshare.formats.convert import attribute_converter, chosen_format
from djshare.formats.declare import external_declaration, mariadb_table
from djshare.formats.heading import Heading, headings, mismatch
from djshare.formats.lineage import LINEAGE_TABLE, localized
from djshare.link.dj2 import MariaDBSchema
from djshare.link.gc import GcReport
from djshare.link.gc import gc as collect_garbage
from djshare.link.local import create_local, subscriber_id
from djshare.link.outbound import OutboundTable
from djshare.link.pg import PostgresSchema, PostgresSource, declare_outbound, link_lock, part_tables, table_name
from djshare.link.pg_mariadb_local import MariaDBCopy
from djshare.link.pull import DEFAULT_BATCH
from djshare.link.runner import LinkRunner, Ready, check_store_map, outbound_schema_name, table_exists
from djshare.link.tables import LinkTables, LocalSide, SourceSide
from djshare.stores.formats import format_of_schema
from djshare.stores.spec import StoreSpec


def local_tables(tables: LinkTables, stores: Mapping[str, str], layout: str = "dj014") -> tuple[Heading, ...]:
    """The master, then the parts, as MariaDB tables in the local schema, in DataJoint 0.14's or 2.x's layout."""
    return headings(tables.source, tables.source_parts, tables.local_schema,
                    attribute_converter("postgresql", "dj2", "mariadb", layout, stores), quote_name)


def declare(local: Session, tables: LinkTables, declared: tuple[Heading, ...],
            lineage: Sequence[tuple[str, str, str]] = ()) -> list[str]:
    """Create the local tables (and, for 2.x's layout, `~lineage` rows) where missing; return how existing ones
    differ (empty when they match)."""
    schema = tables.local_schema
    present = set(table_names(local, schema))
    create_local(local, schema, {t.source.name: [mariadb_table(t, None if t is declared[0] else declared[0])]
                                 for t in declared}, lineage,
                 [external_declaration(schema, store)
                  for store in sorted({c.store for t in declared for c in t.columns if c.kind == "ref"})])
    return [m for t in declared if t.source.name in present
            for m in mismatch(t, read_table(local, schema, t.source.name))]


class PgToMariaDBLink(LinkRunner):
    """A link from a DataJoint 2.x table on PostgreSQL (`table`: its class name or SQL name) into a MariaDB schema
    in DataJoint 0.14's format (`format="dj2"`: 2.x's; `layout=` is its name of earlier releases). Restrictions:
    SQL text, dicts, lists (OR).
    `stores` maps local store names to source store names where they differ; `local_stores`: the local side's
    store settings (default DataJoint's)."""

    source_sql = POSTGRESQL

    def __init__(self, table: str, source: PostgresSchema, local: MariaDBSchema, *, outbound: str | None = None,
                 subscriber: str | None = None, stores: Mapping[str, str] | None = None,
                 local_stores: Mapping[str, Mapping[str, Any]] | None = None, batch_size: int = DEFAULT_BATCH,
                 lock_timeout: float = 60.0, format: str | None = None, layout: str | None = None) -> None:
        self.format = chosen_format(format, layout, "dj014")
        super().__init__(table, outbound=outbound, subscriber=subscriber, stores=stores, batch_size=batch_size,
                         lock_timeout=lock_timeout)
        self.source, self.local, self._local_stores = source, local, local_stores
        self._specs: dict[str, tuple[StoreSpec, StoreSpec]] = {}

    @property
    def layout(self) -> str:
        """The local format (the name of earlier releases)."""
        return self.format

    @property
    def local_stores(self) -> Mapping[str, Mapping[str, Any]]:
        """`local_stores=` if given, else the local side's (`MariaDBSchema(stores=...)`), else DataJoint's settings
        (dj.config["stores"])."""
        if self._local_stores is not None:
            return self._local_stores
        if self.local.stores is not None:
            return self.local.stores
        import datajoint as dj

        return dict(dj.config.get("stores") or {})

    def _setup(self, create: bool = True) -> Ready:
        if self._ready is not None:
            return self._ready
        schema = self.source.name
        with postgres.session(self.source.address) as source, self.local.session() as local:
            table = table_name(source, self.source, self.table)
            if format_of_schema(source, schema) != "dj2":
                raise ConfigurationError(f"Schema {schema} on {self.source.host} is not in DataJoint 2.x's layout: "
                                         "links from PostgreSQL are built for DataJoint 2.x schemas.")
            info = postgres.read_table(source, schema, table)
            parts = part_tables(source, schema, table)
            ob = OutboundTable.for_source(info, outbound_schema_name(self.outbound))
            # the local tables first: what cannot be linked is refused before anything changes
            declared = local_tables(LinkTables(info, parts, self.local.name, ob, ""), self.store_map, self.format)
            self._specs = {c.store: (StoreSpec.from_config(c.source_store, self.source.stores, "source"),
                                     StoreSpec.from_config(c.store, self.local_stores, "local"))
                           for table in declared for c in table.columns if c.kind == "ref"}
            check_store_map(self.store_map, {c.source_store for table in declared for c in table.columns
                                             if c.kind == "ref"} | set(self.source.stores),
                            f"table {schema}.{table} (its columns' stores and the source's store settings)")
            self.local.check_format(self.format)
            lineage: list[tuple[str, str, str]] = []
            if self.format == "dj2" and source.scalar(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                    (schema, LINEAGE_TABLE)):
                lineage = localized(source.rows(f"SELECT table_name, attribute_name, lineage FROM "
                                                f"{name(schema, LINEAGE_TABLE)}"),
                                    schema, self.local.name, (t.name for t in (info, *parts)))
            if not create and not table_exists(local, self.local.name, info.name):
                return Ready(LinkTables(info, parts, self.local.name, ob, ""), [], declared, linked=False)
            declare_outbound(source, ob)
            if not schema_exists(local, self.local.name):
                local.execute(MARIADB.create_schema(self.local.name),
                              doing=f"creating schema `{self.local.name}`")
            tables = LinkTables(info, parts, self.local.name, ob, self.subscriber or subscriber_id(local,
                                                                                               self.local.name))
            mismatch = declare(local, tables, declared, lineage)
        self._ready = Ready(tables, mismatch, declared)
        return self._ready

    @contextlib.contextmanager
    def _sides(self, ready: Ready) -> Iterator[tuple[SourceSide, LocalSide]]:
        tables = ready.tables
        with postgres.session(self.source.address) as source, self.local.session() as local, \
                link_lock(source, tables, self.lock_timeout):
            yield PostgresSource(source, tables), MariaDBCopy(source, local, tables, ready.local, self._specs)

    def _source_session(self) -> contextlib.AbstractContextManager[PgSession]:
        return postgres.session(self.source.address)

    def gc(self, dry_run: bool = False) -> GcReport:
        """`djshare.link.gc` of the local schema with the local store settings (`local_stores`)."""
        with self.local.session() as local:
            return collect_garbage(local, self.local.name, self.local_stores, dry_run)

    def _check_declared(self, ready: Ready) -> None:
        if ready.mismatch:
            raise DefinitionMismatchError(
                f"The local tables in `{ready.tables.local_schema}` no longer match the source "
                f"{ready.tables.source.schema}.{ready.tables.source.name}: " + "; ".join(ready.mismatch)
                + ". Nothing was pulled. Alter the local tables to match (or drop them after saving their rows).")

    def _stranded(self, local: LocalSide) -> list[bytes]:
        return [repr(k).encode() for k in local.stranded] if isinstance(local, MariaDBCopy) else []

"""Links between DataJoint 2.x schemas on MariaDB, without DataJoint: runs beside DataJoint 2.x or 0.14.

    source = MariaDBSchema.source("lab2", host="db.lab.org")   # LINK_USER / LINK_PASS
    local = MariaDBSchema.local("collab2")                     # DJ_HOST / DJ_USER / DJ_PASS
    session = Dj2Link("Session", source, local)                # outbound schema: LINK_OUTBOUND
    session.pull("session_date > '2024-01-01'")                # SQL restrictions on the source table

The source side is the same as for any link (outbound table with a foreign key, named lock, protocol). The
local tables are the source's own `CREATE TABLE` statements (types, codec comments, collations), with
foreign keys to other tables dropped (their attributes stay, as plain attributes) except a part table's
key to its master, and `~lineage` rows naming the local tables as the origin of their keys; DataJoint 2.x
reads the local schema as its own. Rows are copied as the source server formats them (`MariaDBLocal`).

A DataJoint 0.14 source is linked into 2.x's format the same way (`format="dj2"`): its statements with the column
comments 2.x writes (a serialized blob is `:<blob>:`, 0.14's `:attach:` is `:<attach>:`: the stored bytes are the
same), and `~lineage` derived from its foreign keys as 2.x's `rebuild_lineage()` derives it. Its external objects
(`blob@`, `attach@`, `filepath@`) would be in-store codecs, which 2.3.5 cannot insert on MariaDB: refused.

DataJoint 2.3.5 on MariaDB stores only in-table types (`<blob>`, `<attach>`, uuid, json, ...); its in-store
types fail on insert there, and djshare refuses a source column with an in-store codec (`<blob@store>`,
`<attach@store>`, `<object@store>`, `<filepath@store>`, `<hash@store>`) before changing anything.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from djshare.backends.address import ServerAddress, read_credentials
from djshare.backends.catalog import (
    TableInfo,
    create_statement,
    find_table,
    foreign_keys_up,
    part_names,
    read_table,
    schema_exists,
    table_names,
)
from djshare.backends.mariadb import Session, quote_name
from djshare.backends.mariadb_rows import MARIADB
from djshare.errors import ConfigurationError, DefinitionMismatchError
from djshare.formats.convert import chosen_format, refuse_in_store
from djshare.formats.declare import mariadb_copy
from djshare.formats.heading import differences
from djshare.formats.lineage import LINEAGE_TABLE, Row, derived, localized
from djshare.link import outbound
from djshare.link.delete import SourceCommands
from djshare.link.gc import GcReport
from djshare.link.gc import gc as collect_garbage
from djshare.link.local import DELETION_REQUESTED, create_local, subscriber_id
from djshare.link.lock import link_lock
from djshare.link.outbound import OutboundTable
from djshare.link.pull import DEFAULT_BATCH, MariaDBLocal, MariaDBSource
from djshare.link.runner import LinkRunner, Ready, outbound_schema_name, table_exists
from djshare.link.tables import LinkTables, LocalSide, SourceSide
from djshare.stores.formats import format_of_schema


@dataclass(frozen=True)
class MariaDBSchema:
    """A schema on a MariaDB server, named by its address (no DataJoint needed). `stores`: the side's store settings
    in dj.config["stores"] form (None: DataJoint's settings, where a link needs them)."""

    name: str
    address: ServerAddress
    stores: Mapping[str, Mapping[str, Any]] | None = None

    @classmethod
    def source(cls, name: str, *, host: str, user: str | None = None, password: str | None = None,
               port: int | None = None) -> MariaDBSchema:
        """A source schema: user and password from LINK_USER / LINK_PASS unless given."""
        user, password, given = read_credentials("link", host, user, password, "MariaDBSchema.source")
        return cls(name, ServerAddress.parse(host, user, password, port, credentials=given))

    @classmethod
    def local(cls, name: str, *, host: str | None = None, user: str | None = None, password: str | None = None,
              port: int | None = None) -> MariaDBSchema:
        """A local schema: host, user and password from DJ_HOST / DJ_USER / DJ_PASS unless given."""
        host = host or os.environ.get("DJ_HOST") or "localhost"
        user, password, given = read_credentials("local", host, user, password, "MariaDBSchema.local")
        return cls(name, ServerAddress.parse(host, user, password, port, credentials=given))

    def session(self) -> Session:
        return Session(self.address)

    def format(self) -> str | None:
        """"dj2" or "dj014" for a schema that holds tables, else None (absent or empty)."""
        with self.session() as session:
            if not schema_exists(session, self.name) or not [
                    t for t in table_names(session, self.name) if not t.startswith("~")]:
                return None
            return format_of_schema(session, self.name)

    layout = format  # the name of earlier releases

    def check_format(self, format: str) -> None:
        """An existing schema with DataJoint tables must be in `format` (a link never fills it in the other)."""
        found = self.format()
        if found is not None and found != format:
            raise ConfigurationError(
                f"The local schema `{self.name}` is in DataJoint {'2.x' if found == 'dj2' else '0.14'}'s format, not "
                f"the link's ({'2.x' if format == 'dj2' else '0.14'}): pass format={found!r} (CLI: "
                f"--format {found}, or leave it out), or use another local schema. Nothing was changed.")

    check_layout = check_format  # the name of earlier releases


def local_statements(source: Session, info: TableInfo, parts: tuple[TableInfo, ...], layout: str,
                     source_format: str = "dj2") -> dict[str, str]:
    """CREATE TABLE statements of the local master and parts, by table name (refusing what `layout` cannot hold)."""
    return {t.name: mariadb_copy(create_statement(source, t.full_name), t,
                                 None if t is info else info, layout, source_format)
            for t in (info, *parts)}


def source_lineage(source: Session, tables: LinkTables, source_format: str) -> list[Row]:
    """The `~lineage` rows of the linked tables in the local schema: the source's own (2.x), or derived from the
    source's foreign keys as DataJoint 2.x derives them (0.14)."""
    schema, names = tables.source.schema, [t.name for t in (tables.source, *tables.source_parts)]
    if source_format == "dj014":
        rows: Iterable[Sequence[Any]] = derived(schema, {t.name: t.primary_key for t in (tables.source,
                                                                                           *tables.source_parts)},
                                                foreign_keys_up(source, schema))
    elif LINEAGE_TABLE in table_names(source, schema):
        rows = source.rows(f"SELECT table_name, attribute_name, lineage FROM {quote_name(schema, LINEAGE_TABLE)}")
    else:
        rows = []
    return localized(rows, schema, tables.local_schema, names)


def declare_local(source: Session, local: Session, tables: LinkTables, statements: dict[str, str],
                  layout: str = "dj2", source_format: str = "dj2") -> list[str]:
    """Create the local tables and (2.x layout) lineage where missing; return how existing local tables differ
    from the source (empty when they match)."""
    schema = tables.local_schema
    lineage = source_lineage(source, tables, source_format) if layout == "dj2" else []
    create_local(local, schema, {name: [statement] for name, statement in statements.items()}, lineage,
                 [MARIADB.use_schema(schema)])  # the source's CREATE TABLE names its table without a schema
    found = []
    for table in (tables.source, *tables.source_parts):
        found += differences(read_table(local, schema, table.name), table,
                             lambda c: (c.column_type, c.nullable, c.default))
    return found


class Dj2Link(LinkRunner):
    """A link from a DataJoint 2.x table on MariaDB (`table`: its class name or SQL name) to a schema on
    another MariaDB server, or from a DataJoint 0.14 table into 2.x's layout there. Restrictions: SQL text,
    dicts, lists (OR).

    `format`: "dj2" (default) declares the local tables as the source has them; "dj014" as DataJoint 0.14 would
    declare them (`<blob>` as a plain longblob, `<attach>` as `:attach:`, no type labels, no `~lineage`), for a
    lab on DataJoint 0.14: the stored bytes are the same in both lines. An existing local schema must already
    be in that format. (`layout=` is its name of earlier releases.)"""

    def __init__(self, table: str, source: MariaDBSchema, local: MariaDBSchema, *, outbound: str | None = None,
                 subscriber: str | None = None, batch_size: int = DEFAULT_BATCH, lock_timeout: float = 60.0,
                 format: str | None = None, layout: str | None = None) -> None:
        self.format = chosen_format(format, layout, "dj2")
        super().__init__(table, outbound=outbound, subscriber=subscriber, batch_size=batch_size,
                         lock_timeout=lock_timeout)
        self.source, self.local = source, local

    @property
    def layout(self) -> str:
        """The local format (the name of earlier releases)."""
        return self.format

    def _setup(self, create: bool = True) -> Ready:
        if self._ready is not None:
            return self._ready
        outbound_schema = outbound_schema_name(self.outbound)
        schema = self.source.name
        with self.source.session() as source, self.local.session() as local:
            name = find_table(source, schema, self.table) if self.table[:1].isupper() else self.table
            source_format = format_of_schema(source, schema)
            if source_format != "dj2" and self.format != "dj2":
                raise ConfigurationError(
                    f"Schema `{schema}` is in DataJoint 0.14's layout: into 0.14's layout it is linked by djshare's "
                    "DataJoint 0.14 link (`djshare.Link`, `pip install 'djshare[dj014]'`; `djshare pull` there), "
                    "which keeps its external objects. Nothing was changed.")
            info = read_table(source, schema, name)
            parts = tuple(read_table(source, schema, p) for p in part_names(source, schema, name)
                          if p != f"{name}__{DELETION_REQUESTED}")  # a 0.14 copy's own requests stay there
            refuse_in_store((info, *parts))
            statements = local_statements(source, info, parts, self.format, source_format)
            self.local.check_format(self.format)
            ob = OutboundTable.for_source(info, outbound_schema)
            if not create and not table_exists(local, self.local.name, info.name):
                return Ready(LinkTables(info, parts, self.local.name, ob, ""), [], linked=False)
            outbound.declare(source, ob)
            if not schema_exists(local, self.local.name):
                local.execute(MARIADB.create_schema(self.local.name),
                              doing=f"creating schema `{self.local.name}`")
            subscriber = self.subscriber or subscriber_id(local, self.local.name)
            tables = LinkTables(info, parts, self.local.name, ob, subscriber)
            mismatch = declare_local(source, local, tables, statements, self.format, source_format)
        self._ready = Ready(tables, mismatch)
        return self._ready

    @contextlib.contextmanager
    def _sides(self, ready: Ready) -> Iterator[tuple[SourceSide, LocalSide]]:
        with self.source.session() as source, self.local.session() as local, \
                link_lock(source, ready.tables.outbound, ready.tables.subscriber, self.lock_timeout):
            yield MariaDBSource(source, ready.tables), MariaDBLocal(source, local, ready.tables)

    def _source_session(self) -> contextlib.AbstractContextManager[Session]:
        return self.source.session()

    def gc(self, dry_run: bool = False) -> GcReport:
        """These links copy in-table types only, so there is nothing of theirs to collect; the journal says so."""
        with self.local.session() as local:
            return collect_garbage(local, self.local.name, {}, dry_run)

    def _check_declared(self, ready: Ready) -> None:
        if ready.mismatch:
            tables = ready.tables
            raise DefinitionMismatchError(
                f"The local tables in `{tables.local_schema}` no longer match the source {tables.source.full_name}: "
                + "; ".join(ready.mismatch) + ". Nothing was pulled. Alter the local tables to match (or drop "
                "them after saving their rows, and let djshare declare them again).")



class Dj2SourceLink(SourceCommands):
    """The source lab's deletion commands for a DataJoint 2.x table on MariaDB."""

    def __init__(self, table: str, source: MariaDBSchema, *, outbound: str | None = None) -> None:
        super().__init__(source.name, table, source.session, lambda: outbound_schema_name(outbound))


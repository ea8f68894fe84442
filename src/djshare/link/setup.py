"""The composition root: `open_link` picks the link between two sides by what their schemas hold (the source's
DataJoint format, the local schema's, the backends), never by which DataJoint is installed. The only place that
names the concrete link kinds; the CLI and the pair-matrix test open every link through it.

    from djshare.link.dj2 import MariaDBSchema
    from djshare.link.pg import PostgresSchema
    from djshare.link.setup import open_link

    source = MariaDBSchema.source("lab", host="db.lab.example")           # LINK_USER / LINK_PASS
    local = PostgresSchema("lab_v2", host="pg.collab.example", database="collab")
    scan = open_link("Scan", source, local)                                # a CrossLink here
    scan.pull({"subject": "m1"}); scan.stale(); scan.status(); scan.gc()

Sides: `MariaDBSchema` or `PostgresSchema` (no DataJoint needed), or a DataJoint 0.14 `LazySchema` (its settings,
TLS and store settings from dj.config). A link into DataJoint 0.14's format declares its tables through DataJoint,
so its local side is a `LazySchema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from djshare.errors import ConfigurationError
from djshare.lines import require_dj014
from djshare.link.crossformat import CrossLink
from djshare.link.delete import SourceCommands
from djshare.link.dj2 import Dj2Link, Dj2SourceLink, MariaDBSchema
from djshare.link.pg import PgLink, PgSourceLink, PostgresSchema
from djshare.link.pg_mariadb import PgToMariaDBLink
from djshare.link.runner import LinkRunner
from djshare.stores.formats import format_of_schema

if TYPE_CHECKING:
    from djshare.link.api import LazySchema, LinkedTable

FORMATS = ("dj014", "dj2")


def open_link(table: str, source: LazySchema | MariaDBSchema | PostgresSchema,
              local: LazySchema | MariaDBSchema | PostgresSchema, *, format: str | None = None,
              stores: Mapping[str, str] | None = None, source_stores: Mapping[str, Mapping[str, Any]] | None = None,
              copy_objects: bool = True, outbound: str | None = None) -> LinkRunner | LinkedTable:
    """The link of source table `table` (class name or SQL name) into `local`. `format`: "dj014" or "dj2" for a new
    local schema (default: the source's; 0.14's from PostgreSQL into MariaDB); a schema that holds tables keeps its
    own, and a `format` that disagrees is refused. `stores` maps local store names to source store names;
    `source_stores`: the source's store settings where the side does not carry them. Nothing is declared until a
    command needs it."""
    if format is not None and format not in FORMATS:
        raise ConfigurationError(f"format={format!r}: use one of {', '.join(FORMATS)}.")
    mapping = dict(stores or {})
    if isinstance(local, PostgresSchema) and format == "dj014":
        raise ConfigurationError("DataJoint 0.14 has no format on PostgreSQL: a local schema there is in 2.x's "
                                 "format (leave out the format, or give a MariaDB schema for 0.14's).")
    if isinstance(source, PostgresSchema):
        if isinstance(local, PostgresSchema):
            return PgLink(table, source, local, stores=mapping, outbound=outbound)
        maria = _mariadb(local)
        return PgToMariaDBLink(table, source, maria, format=_local_format(maria, format, "dj014"), stores=mapping,
                               outbound=outbound)
    maria_source = source if isinstance(source, MariaDBSchema) else MariaDBSchema(source.name, source.address)
    with maria_source.session() as session:
        source_format = format_of_schema(session, maria_source.name)
    if isinstance(local, PostgresSchema) and source_format == "dj2":
        return CrossLink(table, maria_source, local, outbound=outbound)
    if not isinstance(local, PostgresSchema):
        maria = _mariadb(local)
        local_format = _local_format(maria, format, source_format)
        if "dj2" in (source_format, local_format):  # from 0.14 into 2.x's format too: the same bytes
            return Dj2Link(table, maria_source, maria, format=local_format, outbound=outbound)
    require_dj014()  # a 0.14 schema into 0.14's format or into PostgreSQL: DataJoint 0.14's link
    from djshare.link.api import LazySchema, Link

    if isinstance(source, LazySchema):
        lazy = source
    else:
        address = maria_source.address
        lazy = LazySchema(maria_source.name, host=f"{address.host}:{address.port}", user=address.user,
                          password=address.password, stores=source_stores)
    if isinstance(local, PostgresSchema):
        return CrossLink(table, lazy, local, stores=mapping, outbound=outbound)
    if not isinstance(local, LazySchema):
        raise ConfigurationError(f"A link into DataJoint 0.14's format declares its tables through DataJoint: give "
                                 f"the local side as LazySchema({local.name!r}) (the local server from DataJoint's "
                                 "settings). Nothing was changed.")
    cls = Link(local, lazy, stores=mapping, copy_objects=copy_objects, outbound=outbound)(
        type(table, (), {"__doc__": f"Local copy of {lazy.name}.{table}."}))
    return cls()


def _mariadb(local: LazySchema | MariaDBSchema) -> MariaDBSchema:
    if isinstance(local, MariaDBSchema):
        return local
    return MariaDBSchema(local.name, local.address, local.store_settings())


def _local_format(local: MariaDBSchema, format: str | None, default: str) -> str:
    """`format` (refused where the schema already holds the other), else the schema's own, else `default`."""
    if format is not None:
        local.check_layout(format)
        return format
    return local.format() or default


def open_source(table: str, source: LazySchema | MariaDBSchema | PostgresSchema, *,
                outbound: str | None = None) -> SourceCommands:
    """The source lab's deletion commands for `table` (request, requested, approved, finish, status). A 0.14 schema
    given as a `LazySchema` takes restrictions as DataJoint does (`SourceLink`); every other side takes SQL text,
    dicts and lists without DataJoint, a 0.14 schema on MariaDB included."""
    if isinstance(source, PostgresSchema):
        return PgSourceLink(table, source, outbound=outbound)
    maria = source if isinstance(source, MariaDBSchema) else MariaDBSchema(source.name, source.address)
    with maria.session() as session:
        source_format = format_of_schema(session, maria.name)
    if source_format == "dj014" and not isinstance(source, MariaDBSchema):
        from djshare.link.api import SourceLink

        return SourceLink(source, table, outbound=outbound)
    return Dj2SourceLink(table, maria, outbound=outbound)

# ruff: noqa: E402 - the DataJoint line is checked before DataJoint is imported
"""The link's public API and its wiring: LazySchema, Link (local side) and SourceLink (source side).

This is the one module that builds connections and concrete classes; the modules it calls take them
as arguments.

    local_schema = LazySchema("local_schema")                        # local server: dj.config / DJ_* env
    source_schema = LazySchema("source_schema", host="source:3306")  # LINK_USER / LINK_PASS env

    @Link(local_schema, source_schema)                                # outbound schema: LINK_OUTBOUND env
    class Table:
        '''The local table.'''

    Table().pull()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from djshare.lines import require_dj014

require_dj014()  # before DataJoint's imports: under 2.x they would fail less clearly

import datajoint as dj
from datajoint.expression import QueryExpression
from datajoint.user_tables import TableMeta, UserTable

from djshare.backends.catalog import (
    TableInfo,
    find_table,
    part_names,
    read_table,
    schema_exists,
    table_names,
    to_camel_case,
)
from djshare.backends.mariadb import Session
from djshare.errors import ConfigurationError, DjshareError
from djshare.link import delete as deletion
from djshare.link import outbound
from djshare.link import stale as staleness
from djshare.link.dj014 import Dj014Runner
from djshare.link.gc import GcReport
from djshare.link.gc import gc as run_gc
from djshare.link.journal import declare_journal
from djshare.link.lazy import LazySchema, TimedConnection  # noqa: F401 (TimedConnection: importable here for one release)
from djshare.link.local import (
    DELETION_REQUESTED,
    deletion_requested_definition,
    master_definition,
    mismatches,
    part_definition,
    subscriber_id,
)
from djshare.link.lock import link_lock
from djshare.link.outbound import OutboundTable
from djshare.link.pull import (
    DEFAULT_BATCH,
    PullReport,
    checked_options,
    checked_subscriber,
)
from djshare.link.repair import RepairReport
from djshare.link.runner import check_store_map, outbound_schema_name
from djshare.link.tables import Checkpoint, LinkStores, LinkTables, StorePair, no_checkpoint
from djshare.restriction import where_clause
from djshare.stores.formats.dj014 import external_column
from djshare.stores.spec import StoreSpec


@dataclass(frozen=True)
class _Plan:
    """What setting a linked class up will declare, found without changing anything."""

    info: TableInfo
    parts: tuple[TableInfo, ...]
    stores: LinkStores
    outbound: OutboundTable
    linked: bool  # the local table exists


@dataclass
class _Runtime:
    """What a linked class knows once it is set up."""

    link: Link
    tables: LinkTables
    source_schema: LazySchema
    local_schema: LazySchema
    mismatch: list[str]

    @contextlib.contextmanager
    def locked(self) -> Iterator[tuple[Session, Session]]:
        """Fresh source and local connections, with the link's lock held on the source one."""
        with self.source_schema.session() as source, self.local_schema.session() as local, \
                link_lock(source, self.tables.outbound, self.tables.subscriber, self.link.lock_timeout):
            yield source, local

    def source_table(self) -> dj.FreeTable:
        return dj.FreeTable(self.source_schema.connection, self.tables.source.full_name)


class _LinkedMeta(TableMeta):
    """Sets a linked class up on first use, not when the module is imported. Making an instance checks the link
    (reads only); the tables are declared once the link exists or something needs them (see `_DeclaredFirst`),
    so a dry run of a new link changes nothing."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if _plan(cls).linked:
            _ready(cls)
        return super().__call__(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("_") or not _ready(cls):
            raise AttributeError(name)
        return getattr(cls, name)


def _plan(cls: Any) -> _Plan:
    """What setting `cls` up will declare, read once (every check, no change)."""
    if "_planned" not in cls.__dict__:
        cls._planned = cls._link._plan(cls)
        cls.table_name = cls._planned.info.name
    return cls.__dict__["_planned"]


def _ready(cls: Any) -> bool:
    """Set `cls` up if that has not happened yet; True if this call did it."""
    if "_runtime" in cls.__dict__ or cls.__dict__.get("_setting_up"):
        return False
    cls._setting_up = True
    try:
        cls._runtime = cls._link._setup(cls, _plan(cls))
    finally:
        cls._setting_up = False
    return True


class _DeclaredFirst:
    """One of DataJoint's table properties (connection, heading, ...), read after the linked class is declared:
    every query, insert or delete of a linked table goes through one of them."""

    def __init__(self, attribute: Any) -> None:
        self.attribute = attribute

    def __get__(self, instance: Any, owner: type) -> Any:
        if "_link" in owner.__dict__:  # a linked class, not LinkedTable itself
            _ready(owner)
        return self.attribute.__get__(instance, owner)


class LinkedTable(dj.Manual, metaclass=_LinkedMeta):
    """Base of the classes `Link` makes: a DataJoint table on the local server, fed from a source table."""

    _link: ClassVar[Link]
    _runtime: ClassVar[_Runtime]
    definition = ""
    connection = _DeclaredFirst(UserTable.__dict__["connection"])
    full_table_name = _DeclaredFirst(UserTable.__dict__["full_table_name"])
    heading = _DeclaredFirst(QueryExpression.__dict__["heading"])
    support = _DeclaredFirst(QueryExpression.__dict__["support"])

    @classmethod
    def _rt(cls) -> _Runtime:
        _ready(cls)
        return cls._runtime

    def source(self) -> dj.FreeTable:
        """The source table on the source server (restrict and fetch it like any DataJoint table)."""
        return self._rt().source_table()

    def pull(self, *restrictions: Any, dry_run: bool = False, batch_size: int | None = None,
             progress: bool = True, checkpoint: Checkpoint = no_checkpoint,
             refresh_changed: bool = False) -> PullReport:
        """Pull every source entity (with its part rows) matching all `restrictions` that is not here yet and
        not up for deletion. Safe to re-run after any failure; see `repair`. With `refresh_changed`, also bring
        over the source rows of entities pulled before that changed since (see `stale`).

        `checkpoint` is called with a step's name after each step commits (fault-injection tests raise in it).
        """
        return self._runner().pull(*restrictions, dry_run=dry_run, batch_size=batch_size, progress=progress,
                                   checkpoint=checkpoint, refresh_changed=refresh_changed)

    def stale(self, *restrictions: Any, progress: bool = True) -> staleness.StaleReport:
        """Entities pulled here whose source rows (master or parts) changed after the pull, with what changed;
        compared inside both servers. `pull(refresh_changed=True)` brings them over."""
        return self._runner().stale(*restrictions, progress=progress)

    @classmethod
    def _runner(cls) -> Dj014Runner:
        """The engine's commands for this class (`link.dj014`), made once."""
        if "_engine" not in cls.__dict__:
            cls._engine = Dj014Runner(cls.__name__, cls._link, lambda: _plan(cls), cls._rt,
                                      lambda: "_runtime" in cls.__dict__ or _plan(cls).linked)
        return cls.__dict__["_engine"]

    def repair(self, dry_run: bool = False, progress: bool = True,
               checkpoint: Checkpoint = no_checkpoint) -> RepairReport:
        """Make the outbound table agree with the local table (after a crash, or deletions outside djshare)."""
        return self._runner().repair(dry_run=dry_run, progress=progress, checkpoint=checkpoint)

    def refresh(self) -> int:
        """Bring the DeletionRequested part up to date with the source's requests; returns how many were added."""
        rt = self._rt()
        with rt.source_schema.session() as source, rt.local_schema.session() as local:
            return deletion.refresh(source, local, rt.tables)

    def status(self) -> dict[str, int]:
        """This subscriber's outbound rows by state, and the local row count (as every link kind's `status()`)."""
        return self._runner().status()

    def gc(self, dry_run: bool = False) -> GcReport:
        """`djshare.gc` of the local schema: objects djshare copied there that no row references any more."""
        return self._runner().gc(dry_run)

    def link_status(self) -> dict[str, int]:
        """`status()`, by its first name."""
        return self.status()

    def _delete_then_follow(self, do_delete: Any, checkpoint: Checkpoint) -> Any:
        if getattr(self, "_deleting", False):  # DataJoint's cascade calls delete_quick on this same object
            return do_delete()
        rt = self._rt()
        with rt.locked() as (source, local):
            keys = deletion.local_keys(local, rt.tables, str(self.where_clause()))
            self._deleting = True
            try:
                result = do_delete()
            finally:
                self._deleting = False
            checkpoint("delete_local")
            deletion.after_local_delete(source, local, rt.tables, keys, checkpoint)
        return result

    def delete(self, *args: Any, checkpoint: Checkpoint = no_checkpoint, **kwargs: Any) -> Any:
        """DataJoint's delete (cascade, prompt), then the outbound table follows: entities whose deletion the
        source requested become approved; others are released."""
        return self._delete_then_follow(lambda: super(LinkedTable, self).delete(*args, **kwargs), checkpoint)

    def delete_quick(self, get_count: bool = False) -> Any:
        return self._delete_then_follow(lambda: super(LinkedTable, self).delete_quick(get_count), no_checkpoint)


class Link:
    """Decorator that makes a class the local table of a link to the source table of the same name.

    `outbound`: the outbound schema on the source server (default: LINK_OUTBOUND). `subscriber`: this side's
    name in the outbound table (default: made once per local schema and kept there). `stores`: local store
    name -> source store name, where they differ. `copy_objects=False`: do not copy external objects; the
    local side reads them where the source keeps them (same store place and same schema name required).
    """

    def __init__(self, local_schema: LazySchema, source_schema: LazySchema, *, outbound: str | None = None,
                 subscriber: str | None = None, stores: Mapping[str, str] | None = None, copy_objects: bool = True,
                 lock_timeout: float = 60.0, batch_size: int = DEFAULT_BATCH) -> None:
        if not source_schema.is_source:
            raise ConfigurationError(
                f"The source schema {source_schema.name!r} needs host= (the source server), e.g. "
                f"LazySchema({source_schema.name!r}, host='db.example.org:3306')."
            )
        self.local_schema = local_schema
        self.source_schema = source_schema
        self.outbound = outbound
        self.subscriber = checked_subscriber(subscriber)
        self.batch_size, self.lock_timeout = checked_options(batch_size, lock_timeout)
        self.copy_objects = copy_objects
        self.store_map: dict[str, str] = {}  # source store -> local store
        for local_store, source_store in (stores or {}).items():
            if source_store in self.store_map:
                raise ConfigurationError(f"Source store `{source_store}` is mapped to two local stores "
                                         f"(`{self.store_map[source_store]}` and `{local_store}`).")
            self.store_map[source_store] = local_store

    def __call__(self, cls: type) -> type[LinkedTable]:
        namespace = {"__doc__": cls.__doc__, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                     "_link": self}
        return _LinkedMeta(cls.__name__, (LinkedTable,), namespace)

    def _plan(self, cls: Any) -> _Plan:
        """Find the source table and check everything (names, credentials, servers, stores) without changing
        anything on either server."""
        outbound_schema = outbound_schema_name(self.outbound)
        source_name = self.source_schema.name
        with self.source_schema.session() as source, self.local_schema.session() as local:
            table_name = find_table(source, source_name, cls.__name__)
            info = read_table(source, source_name, table_name)
            parts = tuple(read_table(source, source_name, p) for p in part_names(source, source_name, table_name))
            if any(p.name == f"{table_name}__{DELETION_REQUESTED}" for p in parts):
                raise ConfigurationError(f"{info.full_name} has a part table named DeletionRequested, which "
                                         "djshare needs for its own use on the local side.")
            stores = self._stores(source, info, parts)
            linked = schema_exists(local, self.local_schema.name) and \
                table_name in table_names(local, self.local_schema.name)
        return _Plan(info, parts, stores, OutboundTable.for_source(info, outbound_schema), linked)

    def _setup(self, cls: Any, plan: _Plan) -> _Runtime:
        """Declare the outbound table and the local tables of `plan` (those that do not exist yet)."""
        info, parts, stores, ob = plan.info, plan.parts, plan.stores, plan.outbound
        with self.source_schema.session() as source, self.local_schema.session() as local:
            outbound.declare(source, ob)
            schema = self.local_schema.schema  # creates the local schema if missing
            subscriber = self.subscriber or subscriber_id(local, self.local_schema.name)
            if stores.columns:
                declare_journal(local, self.local_schema.name)
        cls.table_name = info.name
        cls.definition = master_definition(info, self.store_map)
        for part in parts:
            part_class = type(to_camel_case(part.name[len(info.name) + 2:]), (dj.Part,),
                              {"definition": part_definition(part, info, self.store_map)})
            setattr(cls, part_class.__name__, part_class)
        cls.DeletionRequested = type("DeletionRequested", (dj.Part,),
                                     {"definition": deletion_requested_definition(info)})
        try:
            schema(cls)
        except dj.DataJointError as error:
            raise DjshareError(f"DataJoint could not declare the local table for {info.full_name}: {error}") from None
        tables = LinkTables(info, parts, self.local_schema.name, ob, subscriber, stores)
        with self.local_schema.session() as local:
            mismatch = _mismatch(local, tables, self.store_map)
        return _Runtime(self, tables, self.source_schema, self.local_schema, mismatch)

    def _stores(self, source: Session, info: TableInfo, parts: tuple[TableInfo, ...]) -> LinkStores:
        """The external columns and the store pairs they need; every check before anything changes."""
        columns = tuple(
            found for table in (info, *parts) for column in table.columns
            if (found := external_column(table.name, column)) is not None
        )
        used = sorted({c.store for c in columns})
        known = sorted(n.removeprefix("~external_") for n in table_names(source, info.schema)
                       if n.startswith("~external_"))  # the stores the source schema has
        check_store_map(self.store_map, known, f"schema `{info.schema}`")
        pairs: dict[str, StorePair] = {}
        for store in used:
            source_spec = StoreSpec.from_config(store, self.source_schema.store_settings(), "source")
            local_spec = StoreSpec.from_config(self.store_map.get(store, store), self.local_schema.store_settings(),
                                               "local")
            pairs[store] = StorePair(source_spec, local_spec, read_table(source, info.schema, f"~external_{store}"))
            if not self.copy_objects:
                schema_bound = any(c.store == store and c.kind != "filepath" for c in columns)
                if not source_spec.same_place(local_spec) or (
                        schema_bound and self.local_schema.name != self.source_schema.name):
                    raise ConfigurationError(
                        f"copy_objects=False needs the local {local_spec.label} to be the same place as the source "
                        f"{source_spec.label}, and (for blobs and attachments, whose paths include the schema "
                        f"name) the local schema to be named `{self.source_schema.name}` like the source's."
                    )
        return LinkStores(columns, pairs, self.copy_objects)


def _mismatch(local: Session, tables: LinkTables, stores: Mapping[str, str]) -> list[str]:
    found = mismatches(read_table(local, tables.local_schema, tables.source.name), tables.source, stores)
    for part in tables.source_parts:
        found += [f"part {part.name}: {m}"
                  for m in mismatches(read_table(local, tables.local_schema, part.name), part, stores)]
    return found


def gc(local_schema: LazySchema, dry_run: bool = False) -> GcReport:
    """Delete external objects djshare copied into local stores that no row of `local_schema` references.

    Store settings are the local side's (dj.config["stores"], or `stores=` of the LazySchema).
    """
    with local_schema.session() as local:
        return run_gc(local, local_schema.name, local_schema.store_settings(), dry_run)


class SourceLink(deletion.SourceCommands):
    """The source side of a link: deletion requests, approvals, finishing deletions, status (restrictions as
    DataJoint understands them).

    Run with a user that may change the outbound schema; finishing a deletion also needs DELETE on the
    source schema (a source admin, not the link user).
    """

    def __init__(self, source_schema: LazySchema, table: str, *, outbound: str | None = None) -> None:
        if not source_schema.is_source:
            raise ConfigurationError(f"SourceLink needs a LazySchema with host= (got {source_schema!r}).")
        self.source_schema = source_schema
        super().__init__(source_schema.name, table, source_schema.session, lambda: outbound_schema_name(outbound))

    def _where(self, restrictions: tuple[Any, ...], table: TableInfo) -> str:
        return where_clause(self.source_schema.connection, self.sql.table(table), restrictions)

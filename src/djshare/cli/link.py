"""Link commands: pull, repair, refresh, gc, status and the source lab's deletion commands."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table as RichTable

from djshare.backends import postgresql as postgres
from djshare.backends.mariadb import Session
from djshare.cli import sides
from djshare.cli.app import WRONG_LINE, app, err, out, run, stores_file
from djshare.cli.sides import split_table
from djshare.errors import ConfigurationError
from djshare.link.delete import SourceCommands
from djshare.link.dj2 import MariaDBSchema
from djshare.link.gc import GcReport
from djshare.link.gc import gc as collect_garbage
from djshare.link.outbound import schema_counts
from djshare.link.pg import PostgresSchema
from djshare.link.pg import gc as pg_gc
from djshare.link.pg import schema_counts as pg_schema_counts
from djshare.link.protocol import Outbound
from djshare.link.runner import LinkRunner
from djshare.link.setup import open_link, open_source

if TYPE_CHECKING:  # DataJoint 0.14's link facade, imported where a command uses it (it imports DataJoint)
    from djshare.link.api import LazySchema, LinkedTable


def _lazy_schema(name: str, host: str | None = None, stores: Mapping[str, Any] | None = None) -> LazySchema:
    """A side of DataJoint 0.14's link facade, read from DataJoint's settings (only where 0.14 is installed)."""
    from djshare.link.lazy import LazySchema

    return LazySchema(name, host=host, stores=stores)

TableArg = Annotated[str, typer.Argument(help="The source table as SCHEMA.ClassName, e.g. lab.Session.")]
SourceHost = Annotated[str | None, typer.Option("--source-host", envvar="LINK_HOST",
                                                help="Source server, host or host:port.")]
LinkSource = Annotated[str | None, typer.Option(
    "--source-host", envvar="LINK_HOST",
    help="Source server, host or host:port, or postgresql://HOST[:PORT]/DB for a DataJoint 2.x schema there.")]
LocalTarget = Annotated[str, typer.Option("--local-schema", "-l", help=(
    "Schema of the local table (local server), or postgresql://HOST[:PORT]/DB/SCHEMA for a DataJoint 2.x "
    "schema on PostgreSQL."))]
Where = Annotated[list[str] | None, typer.Option("--where", "-w",
                                                 help="SQL restriction on the source table; repeat to AND several.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")]
Subscriber = Annotated[str | None, typer.Option("--subscriber", help="Only this subscriber (default: all).")]
SourceStores = Annotated[Path | None, typer.Option(
    "--source-stores", envvar="LINK_SOURCE_STORES",
    help="JSON file with the source side's store settings (dj.config['stores'] form), for every kind of source.")]
StoreMap = Annotated[list[str] | None, typer.Option(
    "--store", help="LOCAL=SOURCE: local store that receives a source store's objects; repeat per store.")]
CopyObjects = Annotated[bool, typer.Option(
    "--copy-objects/--no-copy-objects", help="Copy external objects, or read them where the source keeps them.")]


@dataclass
class StoreOptions:
    source_stores: Path | None = None
    store: list[str] | None = None
    copy_objects: bool = True


class LocalFormat(StrEnum):
    dj014 = "dj014"
    dj2 = "dj2"


def linked(table: str, host: str | None, local_schema: str, options: StoreOptions | None = None,
           format: str | None = None) -> LinkedTable | LinkRunner:
    """The link of `table` into `local_schema` (`open_link` picks it by what the schemas hold), with the sides a
    lab's settings name: the source from --source-host / LINK_*, the local side from DJ_* (and, where DataJoint 0.14
    is installed, its settings). Nothing is declared until a command needs it."""
    options = options or StoreOptions()
    schema_name, name = split_table(table)
    source, local = sides.link_source(host), sides.local_schema(local_schema)
    stores = stores_file(options.source_stores) if options.source_stores is not None else None
    mapping = {}
    for item in options.store or []:
        local_store, equals, source_store = item.partition("=")
        if not equals or not local_store or not source_store:
            raise ConfigurationError(f"--store {item!r} is not LOCAL=SOURCE (for example --store raw=lab_raw).")
        mapping[local_store] = source_store
    source_side: LazySchema | MariaDBSchema | PostgresSchema
    if source.postgres:  # its stores: --source-stores (default: DataJoint's settings here)
        source_side = PostgresSchema.source(schema_name, host=source.host, database=source.database, stores=stores)
    elif WRONG_LINE is None:  # DataJoint 0.14's settings (TLS) for the source, as its link reads them
        source_side = _lazy_schema(schema_name, host=source.host, stores=stores)
    else:
        source_side = MariaDBSchema.source(schema_name, host=source.host)
    local_side: LazySchema | MariaDBSchema | PostgresSchema
    if local.postgres:
        local_side = postgres_schema(local)
    else:
        local_side = _lazy_schema(local.path) if WRONG_LINE is None else MariaDBSchema.local(local.path)
    return open_link(name, source_side, local_side, format=format, stores=mapping, source_stores=stores,
                     copy_objects=options.copy_objects)


def postgres_schema(local: sides.Location) -> PostgresSchema:
    """A local schema on PostgreSQL in DataJoint 2.x's layout (user and password: DJ_USER and DJ_PASS; stores:
    DataJoint's settings)."""
    return PostgresSchema(local.path, host=local.host, database=local.database)


@app.command()
def pull(table: TableArg, local_schema: LocalTarget, where: Where = None, source_host: LinkSource = None,
         batch_size: Annotated[int, typer.Option(help="Entities per batch (one transaction per server).")] = 2000,
         dry_run: DryRun = False, source_stores: SourceStores = None, store: StoreMap = None,
         copy_objects: CopyObjects = True,
         format: Annotated[LocalFormat | None, typer.Option(
             "--format", help="DataJoint format of a new local schema: dj014 (0.14) or dj2 (2.x). Default: the "
             "source's (0.14's from PostgreSQL into MariaDB); a schema that holds tables keeps its own.")] = None,
         refresh_changed: Annotated[bool, typer.Option(
             "--refresh-changed", help="Also bring over source rows that changed after they were pulled "
             "(see `djshare diff --link`), updated in place.")] = False) -> None:
    """Pull source entities (with part rows and external objects) not yet in the local table; creates the
    local table if needed."""
    options = StoreOptions(source_stores, store, copy_objects)
    report = run(lambda: linked(table, source_host, local_schema, options, format and format.value).pull(
        *(where or []), batch_size=batch_size, dry_run=dry_run, refresh_changed=refresh_changed))
    if dry_run:
        out.print(f"would pull {report.would_pull} entities; would record {report.adopted} local rows")
    else:
        out.print(f"pulled {report.pulled} entities ({report.part_rows} part rows, {report.objects} objects) "
                  f"in {report.batches} batches"
                  + (f"; finished {report.finished} from an interrupted pull" if report.finished else "")
                  + (f"; recorded {report.adopted} local rows" if report.adopted else ""))
    if refresh_changed and not dry_run:
        out.print(f"refreshed {report.refreshed} entities whose source rows changed after the pull")
    for note, count in sorted(report.notes.items()):
        out.print(f"  skipped {count}: {note}")


@app.command()
def repair(table: TableArg, local_schema: LocalTarget, source_host: LinkSource = None, dry_run: DryRun = False,
           source_stores: SourceStores = None, store: StoreMap = None) -> None:
    """Make the outbound table agree with the local table after a crash or deletions outside djshare."""
    options = StoreOptions(source_stores, store)
    report = run(lambda: linked(table, source_host, local_schema, options).repair(dry_run=dry_run))
    verb = "would run" if dry_run else "ran"
    out.print(f"checked {report.checked} keys; {verb}: "
              + (", ".join(f"{step} x{n}" for step, n in sorted(report.steps.items())) or "nothing"))
    if report.stranded:
        err.print(f"[yellow]warning:[/yellow] {len(report.stranded)} local rows have no source row and no outbound "
                  "row; delete them locally or ask the source lab.", highlight=False)


@app.command()
def refresh(table: TableArg, local_schema: LocalTarget, source_host: LinkSource = None,
            source_stores: SourceStores = None, store: StoreMap = None) -> None:
    """The source's deletion requests for this link: copied into the local DeletionRequested part table (DataJoint
    0.14 local tables), else listed here. Delete the entities locally, then `djshare repair` approves them."""
    options = StoreOptions(source_stores, store)
    found = run(lambda: linked(table, source_host, local_schema, options))
    if isinstance(found, LinkRunner):  # no DeletionRequested table on this local side: list them
        keys = run(found.requested)
        _print_keys(keys, "no open deletion requests")
        if keys:
            out.print(f"{len(keys)} open deletion requests: delete them locally, then `djshare repair`")
        return
    added = run(found.refresh)
    out.print(f"{added} new deletion requests")


@app.command("gc")
def garbage_collect(local_schema: LocalTarget, dry_run: DryRun = False) -> None:
    """Delete external objects djshare copied into local stores that no local row references any more
    (never objects djshare did not write). Local store settings come from the DataJoint config."""

    def collect() -> GcReport:
        local = sides.local_schema(local_schema)
        if local.postgres:
            return pg_gc(postgres_schema(local), dry_run=dry_run)
        if WRONG_LINE is None:
            from djshare.link.api import gc

            return gc(_lazy_schema(local.path), dry_run=dry_run)
        # without DataJoint 0.14: the server from DJ_HOST / DJ_USER / DJ_PASS, the stores from the DataJoint
        # installed here (2.x reads the same config files), if any
        with MariaDBSchema.local(local.path).session() as session:
            return collect_garbage(session, local.path, _installed_stores(), dry_run=dry_run)

    report = run(collect)
    for path in report.deleted:
        out.print(f"  {path}", highlight=False)
    out.print(f"{'would delete' if dry_run else 'deleted'} {len(report.deleted)} objects")
    if report.temporaries:
        out.print(f"{'would remove' if dry_run else 'removed'} {len(report.temporaries)} temporary files of "
                  "copies that were killed part way")


def _installed_stores() -> dict[str, Any]:
    try:
        import datajoint as dj
    except ImportError:
        return {}
    return dict(dj.config.get("stores") or {})


@app.command()
def status(source_host: SourceHost = None,
           outbound: Annotated[str | None, typer.Option(envvar="LINK_OUTBOUND", help="Outbound schema.")] = None,
           ) -> None:
    """Per link and subscriber: entities pulled, being pulled, deletion requested, deletion approved. The source
    server: host[:port] (MariaDB) or postgresql://HOST[:PORT]/DB, with LINK_USER / LINK_PASS."""

    def collect() -> list[tuple[str, str, dict[str, int]]]:
        if not outbound:
            raise ConfigurationError("No outbound schema: pass --outbound or set LINK_OUTBOUND.")
        source = sides.link_source(source_host)
        if source.postgres:  # a PostgreSQL source: LINK_USER / LINK_PASS
            with postgres.session(source.address("link")) as pg:
                return pg_schema_counts(pg, outbound)
        with Session(source.address("link")) as session:
            return schema_counts(session, outbound)

    rows = run(collect)
    table = RichTable("source table", "subscriber", *(s.value.replace("_", " ") for s in Outbound))
    for source, subscriber, counts in rows:
        table.add_row(source, subscriber, *(str(counts.get(s.value, 0)) for s in Outbound))
    out.print(table if rows else "no links")


def _refuse(message: str) -> None:
    raise ConfigurationError(message)


def _source_link(table: str, host: str | None) -> SourceCommands:
    """The source-side commands of `table` on --source-host / LINK_HOST (`open_source` picks them by the format)."""
    source = sides.link_source(host or os.environ.get("LINK_HOST"))
    schema_name, name = split_table(table)
    side: LazySchema | MariaDBSchema | PostgresSchema
    if source.postgres:
        side = PostgresSchema.source(schema_name, host=source.host, database=source.database)
    elif WRONG_LINE is None:  # DataJoint 0.14's settings (TLS), as its link reads them
        side = _lazy_schema(schema_name, host=source.host)
    else:
        side = MariaDBSchema.source(schema_name, host=source.host)
    return open_source(name, side)


@app.command("request-deletion")
def request_deletion(table: TableArg, where: Where = None, subscriber: Subscriber = None,
                     source_host: LinkSource = None, dry_run: DryRun = False) -> None:
    """Source side: ask subscribers to delete the held entities matching --where."""
    if not where:
        run(lambda: _refuse("request-deletion needs at least one --where (to request every held entity: --where 1)."))
    n = run(lambda: _source_link(table, source_host).request_deletion(*(where or []), subscriber=subscriber,
                                                                       dry_run=dry_run))
    out.print(f"{'would request' if dry_run else 'requested'} deletion of {n} held entities")


def _print_keys(rows: list[dict[str, Any]], empty: str) -> None:
    if not rows:
        out.print(empty)
        return
    table = RichTable(*rows[0].keys())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@app.command()
def approved(table: TableArg, subscriber: Subscriber = None, source_host: LinkSource = None) -> None:
    """Source side: entities subscribers have deleted after a request (ready for finish-deletion)."""
    _print_keys(run(lambda: _source_link(table, source_host).approved(subscriber)), "no approved deletions")


@app.command()
def requested(table: TableArg, subscriber: Subscriber = None, source_host: LinkSource = None) -> None:
    """Source side: deletion requests subscribers have not acted on yet."""
    _print_keys(run(lambda: _source_link(table, source_host).requested(subscriber)), "no open deletion requests")


@app.command("finish-deletion")
def finish_deletion(table: TableArg, subscriber: Subscriber = None, source_host: LinkSource = None,
                    dry_run: DryRun = False) -> None:
    """Source side: remove approved outbound rows and delete the source rows no one holds, with their parts and
    dependent rows (refused, changing nothing, where a dependent row is held through another link)."""
    report = run(lambda: _source_link(table, source_host).finish_deletion(subscriber, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    out.print(f"{verb} {report.source_rows} source entities"
              + ("" if dry_run else f" and {report.dependent_rows} rows of their parts and dependent tables")
              + f"; {report.outbound_rows} approvals; {report.kept} kept because another subscriber holds them")



"""The `djshare` command line: thin wrappers over the library, with progress bars and one-line errors.

Settings come from the environment, as in the library:
  local server   DJ_HOST (host or host:port), DJ_USER, DJ_PASS (or a DataJoint config file)
  source server  LINK_HOST (host[:port], or postgresql://host[:port]/db; or --source-host), LINK_USER, LINK_PASS
  sides          parsed in `djshare.cli.sides`; users and passwords read by `backends.address.read_credentials`
  outbound       LINK_OUTBOUND (the schema on the source server that holds outbound tables)
  stores         local: the DataJoint config (dj_local_conf.json); source: --source-stores FILE.json
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from djshare import __version__
from djshare.backends import postgresql as postgres
from djshare.backends.address import ServerAddress
from djshare.backends.mariadb import Session
from djshare.cli import sides
from djshare.cli.sides import split_table
from djshare.defaults import CAPTURE_SCHEMA as DEFAULT_SCHEMA
from djshare.errors import ConfigurationError, DjshareError, InterruptedOperation, LinkBusyError
from djshare.export import capture2
from djshare.export import pg as pg_export
from djshare.export import tables as sql_export
from djshare.link.crossformat import CrossLink
from djshare.link.dj2 import Dj2Link, Dj2SourceLink, MariaDBSchema
from djshare.link.gc import GcReport
from djshare.link.gc import gc as collect_garbage
from djshare.link.outbound import schema_counts
from djshare.link.pg import PgLink, PgSourceLink, PostgresSchema
from djshare.link.pg import gc as pg_gc
from djshare.link.pg import schema_counts as pg_schema_counts
from djshare.link.pg_mariadb import PgToMariaDBLink
from djshare.link.protocol import Outbound
from djshare.link.runner import LinkRunner
from djshare.progress import rows_progress
from djshare.stores.formats import format_of_schema
from djshare.sync.diff import compare
from djshare.sync.handlers import ApplyToTables, Handler
from djshare.sync.sources import Source, Table, csv_file

try:  # links and exports need DataJoint 0.14; diff works with either line
    from djshare import export
    from djshare.link.api import LazySchema, Link, LinkedTable, SourceLink, gc
    WRONG_LINE: ConfigurationError | None = None
except ConfigurationError as error:
    WRONG_LINE = error
# DataJoint 2.x schemas need no DataJoint: links, their source-side commands, exports by SQL restrictions
WORKS_ON_ANY_LINE = {"diff", "pull", "repair", "tables", "request-deletion", "requested", "approved", "finish-deletion",
                     "gc", "status"}

app = typer.Typer(
    help="Share DataJoint data between database servers: link a local table to a source table, pull, "
    "and hand deletions back and forth safely.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")
_state = {"debug": False}

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
    help="JSON file with the source side's store settings (dj.config['stores'] form).")]
StoreMap = Annotated[list[str] | None, typer.Option(
    "--store", help="LOCAL=SOURCE: local store that receives a source store's objects; repeat per store.")]
CopyObjects = Annotated[bool, typer.Option(
    "--copy-objects/--no-copy-objects", help="Copy external objects, or read them where the source keeps them.")]

# What the CLI adds to a library error: the command to run next.
HINTS: dict[type[DjshareError], str] = {
    InterruptedOperation: "Run the same command again, or `djshare repair`, to finish.",
    LinkBusyError: "Run the command again when the other run has finished.",
}


def run(action: Callable[[], T], code: int = 1) -> T:
    """Run a library call; print a DjshareError as one red line (traceback with --debug) and exit with `code`."""
    try:
        return action()
    except DjshareError as error:
        if _state["debug"]:
            err.print(traceback.format_exc(), markup=False)
        hint = next((h for kind, h in HINTS.items() if isinstance(error, kind)), "")
        err.print(f"[red]error:[/red] {escape(str(error))}{' ' + hint if hint else ''}", highlight=False)
        raise typer.Exit(code) from None


def source_schema(table: str, host: str | None) -> tuple[LazySchema, str]:  # source side commands
    schema, name = split_table(table)
    return LazySchema(schema, host=sides.link_source(host).host), name


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
    """The link of `table` into `local_schema`, by what the schemas hold: the local format is `format` for a new
    local schema (default: the source's; 0.14's from PostgreSQL into MariaDB), else the one the local schema holds.
    Nothing is declared until a command needs it: a dry run, a bad restriction or a repair of a link not made yet
    change nothing."""
    options = options or StoreOptions()
    schema_name, name = split_table(table)
    source, local = sides.link_source(host), sides.local_schema(local_schema)
    if local.postgres and format == "dj014":
        raise ConfigurationError("DataJoint 0.14 has no format on PostgreSQL: a local schema there is in 2.x's "
                                 "format (leave out --format, or give a MariaDB schema for 0.14's).")
    if source.postgres:
        pg_source = PostgresSchema.source(schema_name, host=source.host, database=source.database)
        if local.postgres:
            return PgLink(name, pg_source, postgres_schema(local))
        maria = mariadb_local(local.path)
        return PgToMariaDBLink(name, pg_source, maria, layout=format or maria.layout() or "dj014")
    source_schema = MariaDBSchema.source(schema_name, host=source.host)
    with source_schema.session() as session:
        source_format = format_of_schema(session, schema_name)
    if local.postgres and source_format == "dj2":  # no DataJoint needed
        return CrossLink(name, source_schema, postgres_schema(local))
    if not local.postgres:
        maria = mariadb_local(local.path)
        if format is not None:
            maria.check_layout(format)  # a schema is never filled in the other format
        local_format = format or maria.layout() or source_format
        if "dj2" in (source_format, local_format):  # the 2.x link on MariaDB (from 0.14 into 2.x's format too)
            return Dj2Link(name, source_schema, maria, layout=local_format)
    if WRONG_LINE is not None:
        raise WRONG_LINE
    stores = None
    if options.source_stores is not None:
        stores = _stores(options.source_stores)
    mapping = {}
    for item in options.store or []:
        local_store, equals, source_store = item.partition("=")
        if not equals or not local_store or not source_store:
            raise ConfigurationError(f"--store {item!r} is not LOCAL=SOURCE (for example --store raw=lab_raw).")
        mapping[local_store] = source_store
    lazy_source = LazySchema(schema_name, host=source.host, stores=stores)
    if local.postgres:
        return CrossLink(name, lazy_source, postgres_schema(local), stores=mapping)
    cls = Link(LazySchema(local.path), lazy_source, stores=mapping, copy_objects=options.copy_objects)(
        type(name, (), {"__doc__": f"Local copy of {table}."}))
    return cls()


def mariadb_local(schema: str) -> MariaDBSchema:
    """A local MariaDB schema for the DataJoint-free link kinds (DJ_HOST, DJ_USER, DJ_PASS; under 0.14 also
    DataJoint's settings)."""
    return MariaDBSchema.local(schema) if WRONG_LINE is not None else MariaDBSchema(schema, LazySchema(schema).address)


def postgres_schema(local: sides.Location) -> PostgresSchema:
    """A local schema on PostgreSQL in DataJoint 2.x's layout (user and password: DJ_USER and DJ_PASS; stores:
    DataJoint's settings)."""
    return PostgresSchema(local.path, host=local.host, database=local.database)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"djshare {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    context: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    _state["debug"] = debug
    logging.getLogger("datajoint").setLevel(logging.DEBUG if debug else logging.WARNING)  # no "connected to" lines
    if WRONG_LINE is not None and context.invoked_subcommand not in WORKS_ON_ANY_LINE:
        err.print(f"[red]error:[/red] {escape(str(WRONG_LINE))}", highlight=False)
        raise typer.Exit(1)


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
            return gc(LazySchema(local.path), dry_run=dry_run)
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


def _source_link(table: str, host: str | None) -> SourceLink | Dj2SourceLink | PgSourceLink:
    source = sides.link_source(host or os.environ.get("LINK_HOST"))
    schema_name, name = split_table(table)
    if source.postgres:
        return PgSourceLink(name, PostgresSchema.source(schema_name, host=source.host, database=source.database))
    dj2_source = MariaDBSchema.source(schema_name, host=source.host)
    with dj2_source.session() as session:
        if format_of_schema(session, schema_name) == "dj2":
            return Dj2SourceLink(name, dj2_source)
    if WRONG_LINE is not None:
        raise WRONG_LINE
    schema, name = source_schema(table, source.host)
    return SourceLink(schema, name)


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


def _side(spec: str, role: str, key: list[str] | None, where: str, null: str | None = None) -> tuple[Source, str]:
    """A diff side from the command line: HOST[:PORT]/SCHEMA.TABLE, or a CSV file. Returns it with its branch name."""
    if spec.lower().endswith(".csv"):
        if not key:
            raise ConfigurationError(f"{spec} is a CSV file: name its key columns with --key.")
        return csv_file(spec, key, null=null), Path(spec).stem
    found = sides.table(spec)
    if found is None:
        raise ConfigurationError(f"{spec!r} is neither HOST[:PORT]/SCHEMA.TABLE (e.g. db.lab:3306/lab.session, "
                                 "the table's SQL name), postgresql://HOST[:PORT]/DATABASE/SCHEMA.TABLE, nor a .csv "
                                 "file.")
    location, schema, name = found
    return Table(location.address(role), schema, name, where), name


def _handler(name: str, right: Source, dry_run: bool) -> Handler:
    if name == "table":
        if not isinstance(right, Table):
            raise ConfigurationError("--apply table changes the right side, which must then be a table.")
        return ApplyToTables({_branch(right): right}, dry_run=dry_run, say=out.print)
    if dry_run:
        raise ConfigurationError("--dry-run goes with --apply table; a handler of your own decides for itself.")
    module_name, colon, class_name = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name) if colon else None
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"Cannot load handler {name!r}: {error}.") from None
    if not (isinstance(cls, type) and issubclass(cls, Handler)):
        raise ConfigurationError(f"--apply {name!r} is neither `table` nor MODULE:CLASS naming a "
                                 "djshare.sync.Handler subclass.")
    return cls()


def _branch(source: Source) -> str:
    return source.name if isinstance(source, Table) else Path(source.label).stem


@app.command("diff")
def diff_command(
        left: Annotated[str | None, typer.Argument(
            help="What we need: HOST[:PORT]/SCHEMA.TABLE (MariaDB), postgresql://HOST[:PORT]/DATABASE/SCHEMA.TABLE, "
            "or FILE.csv.")] = None,
        right: Annotated[str | None, typer.Argument(help="What we have, in the same forms as LEFT.")] = None,
        key: Annotated[list[str] | None, typer.Option(help="Key column of a CSV side; repeat for each.")] = None,
        null: Annotated[str | None, typer.Option(
            "--null", help="A CSV cell equal to this text is NULL (an empty cell is NULL in non-text columns).")]
        = None,
        where: Annotated[str, typer.Option(help="SQL restriction on the table sides.")] = "",
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per action.")] = False,
        only_counts: Annotated[bool, typer.Option("--counts", help="Only how many of each kind.")] = False,
        values: Annotated[bool, typer.Option(help="Show binary values (keys included) in hex, not a size and MD5 "
                                             "summary.")] = False,
        apply: Annotated[str | None, typer.Option(
            help="Apply the actions: `table` makes the right table like the left (FK order, one transaction), "
            "or MODULE:CLASS names a djshare.sync.Handler subclass.")] = None,
        dry_run: DryRun = False,
        link: Annotated[str | None, typer.Option(
            help="Instead of LEFT RIGHT: the linked source table (SCHEMA.ClassName, with --local-schema and the "
            "link's settings, as for pull); lists entities whose source rows changed after they were pulled.")]
        = None,
        local_schema: Annotated[str | None, typer.Option("--local-schema", "-l", help="With --link.")] = None,
        source_host: SourceHost = None) -> None:
    """What differs between two tables on two servers (compared inside the servers), or a table and a CSV file;
    prints the actions that would make RIGHT like LEFT. Credentials: DJSHARE_LEFT_USER/PASS and
    DJSHARE_RIGHT_USER/PASS, default DJ_USER/DJ_PASS. The counts go to stderr, the actions to stdout. Exit status
    as diff(1)'s: 0 no differences (or applied), 1 differences, 2 trouble."""
    if link is not None:
        _stale(link, local_schema, source_host, where, as_json, only_counts)
        return
    if left is None or right is None:
        err.print("[red]error:[/red] give LEFT and RIGHT (or --link TABLE -l LOCAL_SCHEMA).", highlight=False)
        raise typer.Exit(2)

    def work() -> dict[str, int]:
        assert left is not None and right is not None
        ours, left_name = _side(left, "left", key, where, null)
        theirs, right_name = _side(right, "right", key, where, null)
        branch = right_name if isinstance(theirs, Table) else left_name  # what --apply table changes
        handler = _handler(apply, theirs, dry_run) if apply else None
        with rows_progress(f"diff {branch}") as report:
            actions = compare(ours, theirs, branch, summarize_binary=not values and handler is None,
                              with_rows=handler is not None, progress=report)
            if handler is not None:
                return handler.run(actions)
            found = {"added": 0, "removed": 0, "changed": 0}
            for action in actions:
                found[action.kind] += 1
                if not only_counts:
                    out.print(action.json(values) if as_json else action.text(values), markup=False, highlight=False,
                              soft_wrap=True)
            return found

    found = run(work, code=2)
    summary = ", ".join(f"{n} {kind}" for kind, n in found.items())
    if only_counts:
        out.print(json.dumps(found) if as_json else summary, highlight=False)
    else:
        err.print(summary if not apply else f"{'would apply' if dry_run else 'applied'}: {summary}", highlight=False)
    if not apply and any(found.values()):
        raise typer.Exit(1)


def _stale(table: str, local_schema: str | None, source_host: str | None, where: str, as_json: bool,
           only_counts: bool) -> None:
    if not local_schema:
        raise typer.BadParameter("--link needs --local-schema (-l): the schema of the local table.")
    found = run(lambda: linked(table, source_host, local_schema), code=2)
    report = run(lambda: found.stale(*([where] if where else [])), code=2)
    if not only_counts:
        for action in report.changes:
            out.print(action.json() if as_json else action.text(), markup=False, highlight=False, soft_wrap=True)
    summary = (f"{len(report.stale)} stale entities ({len(report.changes)} changed rows)"
               + (f"; {report.out_of_step} on one side only (run `djshare repair`)" if report.out_of_step else ""))
    (out if only_counts else err).print(summary, highlight=False)
    if report.stale and not only_counts:
        err.print("`djshare pull --refresh-changed` brings them over.")
    if report.stale:
        raise typer.Exit(1)


export_app = typer.Typer(help="Export what analyses fetched: preview, write a bundle, restore it, verify it. "
                         "Captures are made in Python (`with djshare.export.capture(paper, analysis): ...`) or "
                         "opened here with `start` for processes that called `djshare.export.follow()`.",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")
CaptureSchema = Annotated[str, typer.Option("--schema", help="Schema holding the captures (on the data server).")]
Paper = Annotated[str, typer.Argument(help="The paper whose captures to export.")]
Target = Annotated[str, typer.Option("--to", help="Target server, host or host:port. User and password: "
                                     "DJSHARE_TARGET_USER and DJSHARE_TARGET_PASS (default DJ_USER, DJ_PASS).")]


def _target(host: str) -> ServerAddress:
    target = sides.server(host, "Target")
    if target.postgres:
        raise ConfigurationError("`djshare export` writes DataJoint 0.14 tables, which live on MariaDB: give "
                                 "--to HOST[:PORT] (for DataJoint 2.x schemas on PostgreSQL: `djshare tables`).")
    return target.address("target")


@export_app.command("start")
def export_start(paper: Annotated[str, typer.Argument(help="The paper the analysis belongs to.")],
                 analysis: Annotated[str, typer.Argument(help="A name for the analysis.")],
                 schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Open a capture for your database account: every process of yours that called `djshare.export.follow()`
    records what it fetches into it, until `djshare export stop`."""
    opened = run(lambda: export.open_capture(paper, analysis, schema=schema))
    out.print(f"capturing {paper}/{analysis}" + ("" if opened else " (was open already)")
              + ": fetches in processes that called djshare.export.follow() are recorded")


@export_app.command("stop")
def export_stop(paper: Annotated[str, typer.Argument(help="The paper whose open captures to close.")],
                analysis: Annotated[str | None, typer.Option(help="Only this analysis.")] = None,
                schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Close your account's open captures of a paper; what they recorded stays."""
    closed = run(lambda: export.close_capture(paper, analysis, schema=schema))
    if not closed:
        err.print(f"[red]error:[/red] no open capture of {escape(paper)}" + (f"/{escape(analysis)}" if analysis else "")
                  + " for your account. `djshare export list` shows the open ones.", highlight=False)
        raise typer.Exit(1)
    out.print(f"stopped {closed} capture{'s' if closed > 1 else ''} of {paper}")


@export_app.command("list")
def export_list(schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Captures on the data server: per paper and analysis, how many restrictions and when; and open captures."""
    found = run(lambda: export.captures(schema=schema))
    opened = run(lambda: export.open_captures(schema=schema))
    if not found and not opened:
        out.print("no captures")
        return
    if found:
        table = RichTable("paper", "analysis", "restrictions", "first", "last")
        for item in found:
            table.add_row(item.paper, item.analysis, str(item.restrictions), str(item.first), str(item.last))
        out.print(table)
    if opened:
        table = RichTable("open for account", "paper", "analysis", "since", title="open captures")
        for account, open_paper, open_analysis, since in opened:
            table.add_row(account, open_paper, open_analysis, str(since))
        out.print(table)


@export_app.command("forget")
def export_forget(paper: Annotated[str, typer.Argument(help="The paper whose captures to delete.")],
                  analysis: Annotated[str | None, typer.Option(help="Only this analysis.")] = None,
                  schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Delete the captures of a paper (or of one analysis); the data itself is untouched."""
    gone = run(lambda: export.forget(paper, analysis, schema=schema))
    out.print(f"forgot {gone} recorded restrictions")


@export_app.command("preview")
def export_preview(paper: Paper,
                   schema: CaptureSchema = DEFAULT_SCHEMA,
                   diagram: Annotated[Path | None, typer.Option(
                       help="Also draw the slice into this file: *.svg or *.png.")] = None,
                   ) -> None:
    """Tables of the export (parents first) and how many rows of each it holds."""
    counts = run(lambda: export.preview(paper, schema=schema, diagram=diagram))
    table = RichTable("table", "rows")
    for name, rows in counts.items():
        table.add_row(name, str(rows))
    out.print(table)
    out.print(f"{sum(counts.values())} rows in {len(counts)} tables")


@export_app.command("write")
def export_write(paper: Paper,
                 directory: Annotated[Path, typer.Argument(help="New directory for the bundle.")],
                 schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Write the export as a bundle: DDL, chunked INSERTs in parent-first order, manifest with checksums."""
    entries = run(lambda: export.write(paper, directory, schema=schema))
    out.print(f"wrote {sum(e.rows for e in entries)} rows of {len(entries)} tables to {directory}")


@export_app.command("script")
def export_script(paper: Paper,
                  path: Annotated[Path, typer.Argument(help="New file for the bash script.")],
                  schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Write a mysqldump script for the export (no credentials in it; safe for any key value)."""
    calls = run(lambda: export.write_script(paper, path, schema=schema))
    out.print(f"wrote {path}: {calls} mysqldump calls; run it with DJSHARE_HOST, DJSHARE_USER and MYSQL_PWD set")


@export_app.command("copy")
def export_copy(paper: Paper, to: Target,
                schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Copy the export straight into another server (no bundle), checking each table's checksum there."""
    copied = run(lambda: export.copy(paper, _target(to), schema=schema))
    out.print(f"copied {sum(c.rows for c in copied)} rows of {len(copied)} tables; checksums match")


@export_app.command("restore")
def export_restore(directory: Annotated[Path, typer.Argument(help="The bundle directory.")], to: Target) -> None:
    """Load a bundle into a server whose schemas do not have its tables yet (foreign-key checks on); its
    external objects go to the stores of the DataJoint config."""
    entries = run(lambda: export.restore(directory, _target(to)))
    out.print(f"restored {sum(e.rows for e in entries)} rows of {len(entries)} tables")


@export_app.command("verify")
def export_verify(directory: Annotated[Path, typer.Argument(help="The bundle directory.")], to: Target) -> None:
    """Check a restored bundle: row counts, checksums, and every foreign-key reference."""
    report = run(lambda: export.verify(directory, _target(to)))
    for problem in report.problems:
        err.print(f"[red]mismatch:[/red] {escape(problem)}", highlight=False)
    if report.problems:
        raise typer.Exit(1)
    out.print(f"verified {report.rows} rows of {report.tables} tables: counts, checksums and foreign keys match")


tables_app = typer.Typer(help="Export rows chosen by SQL restrictions, with the rows they reference and their part "
                         "rows, without DataJoint (DataJoint 2.x schemas, MariaDB or PostgreSQL): copy them into "
                         "another server, or write a bundle and restore and verify it (MariaDB).",
                         no_args_is_help=True)
app.add_typer(tables_app, name="tables")
Server = Annotated[str, typer.Argument(help="HOST[:PORT] (MariaDB) or postgresql://HOST[:PORT]/DATABASE.")]
Rows = Annotated[list[str] | None, typer.Option(
    "--rows", "-r", help="SCHEMA.TABLE or SCHEMA.TABLE:CONDITION (SQL), e.g. \"lab2.session: subject = 'm1'\"; "
    "repeat for more tables.")]
CapturedPaper = Annotated[str | None, typer.Option(
    "--paper", help="Also the rows captured for this paper on SOURCE (djshare.export.capture2, DataJoint 2.x).")]
StoresFile = Annotated[Path | None, typer.Option(help="JSON file with store settings (dj.config['stores'] form).")]


def _server(spec: str, role: str) -> ServerAddress:
    """HOST[:PORT] or postgresql://HOST[:PORT]/DATABASE, with DJSHARE_<ROLE>_USER / _PASS (default DJ_USER, DJ_PASS)."""
    return sides.server(spec).address(role)


def _restrictions(rows: list[str] | None, source: ServerAddress | None = None, paper: str | None = None,
                  capture_schema: str = DEFAULT_SCHEMA) -> list[tuple[str, str]]:
    """--rows, and with --paper the restrictions captured for it on `source`."""
    given = [(table.strip(), condition.strip()) for table, _, condition in (r.partition(":") for r in rows or [])]
    return given + (capture2.recorded(source, paper, capture_schema) if paper and source else [])


def _stores(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"Cannot read store settings from {path}: {error}.") from None
    if not isinstance(found, dict):
        raise ConfigurationError(f"{path} holds a JSON {type(found).__name__}; store settings are an object of store "
                                 "names to settings, as dj.config['stores'].")
    return found


@tables_app.command("copy")
def tables_copy(source: Server, target: Server, rows: Rows = None, paper: CapturedPaper = None,
                capture_schema: CaptureSchema = DEFAULT_SCHEMA, source_stores: StoresFile = None,
                target_stores: StoresFile = None) -> None:
    """Copy the rows (with the rows they reference, their part rows and `~lineage`) into schemas of TARGET that
    do not have these tables; each table is checked after the copy. Credentials: DJSHARE_SOURCE_USER/PASS and
    DJSHARE_TARGET_USER/PASS (default DJ_USER, DJ_PASS). PostgreSQL: objects in stores go from --source-stores
    to --target-stores."""
    def copy() -> list[Any]:
        origin, destination = _server(source, "source"), _server(target, "target")
        if (origin.backend == "postgresql") != (destination.backend == "postgresql"):
            raise ConfigurationError("Copy between two MariaDB servers or two PostgreSQL servers; to compare across "
                                     "them, use `djshare diff`.")
        restrictions = _restrictions(rows, origin, paper, capture_schema)
        if origin.backend == "postgresql":
            return pg_export.copy(origin, restrictions, destination,
                                  stores=(_stores(source_stores), _stores(target_stores)))
        return sql_export.copy(origin, restrictions, destination)

    copied = run(copy)
    out.print(f"copied {sum(c.rows for c in copied)} rows of {len(copied)} tables; checksums match")


@tables_app.command("write")
def tables_write(source: Server, directory: Annotated[Path, typer.Argument(help="The bundle directory (new).")],
                 rows: Rows = None, paper: CapturedPaper = None, capture_schema: CaptureSchema = DEFAULT_SCHEMA,
                 source_stores: StoresFile = None) -> None:
    """Write the rows (with the rows they reference, their part rows and `~lineage`) as a bundle directory.
    Credentials: DJSHARE_SOURCE_USER/PASS (default DJ_USER, DJ_PASS). PostgreSQL: objects in stores come from
    --source-stores into the bundle."""

    def write() -> list[Any]:
        origin = _server(source, "source")
        restrictions = _restrictions(rows, origin, paper, capture_schema)
        if origin.backend == "postgresql":
            return pg_export.write(origin, restrictions, directory, stores=_stores(source_stores))
        return sql_export.write(origin, restrictions, directory)

    entries = run(write)
    out.print(f"wrote {sum(e.rows for e in entries)} rows of {len(entries)} tables to {directory}")


def _postgres_bundle(directory: Path, target: ServerAddress) -> bool:
    """Whether `directory` is a PostgreSQL bundle (refusing one meant for the other kind of server)."""
    try:
        kind = json.loads((directory / pg_export.MANIFEST).read_text()).get("format")
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{directory} is not a djshare bundle ({error}).") from None
    if (kind == pg_export.FORMAT) != (target.backend == "postgresql"):
        raise ConfigurationError(f"{directory} holds a {'PostgreSQL' if kind == pg_export.FORMAT else 'MariaDB'} "
                                 "export: restore it into that kind of server.")
    return bool(kind == pg_export.FORMAT)


@tables_app.command("restore")
def tables_restore(directory: Annotated[Path, typer.Argument(help="The bundle directory.")], target: Server,
                   target_stores: StoresFile = None) -> None:
    """Load a bundle written by `djshare tables write` into TARGET, whose schemas do not have its tables.
    Credentials: DJSHARE_TARGET_USER/PASS (default DJ_USER, DJ_PASS). PostgreSQL: the bundle's objects go to
    --target-stores."""

    def restore() -> list[Any]:
        destination = _server(target, "target")
        if _postgres_bundle(directory, destination):
            return pg_export.restore(directory, destination, stores=_stores(target_stores))
        return sql_export.restore(directory, destination)

    entries = run(restore)
    out.print(f"restored {sum(e.rows for e in entries)} rows of {len(entries)} tables")


@tables_app.command("verify")
def tables_verify(directory: Annotated[Path, typer.Argument(help="The bundle directory.")], target: Server) -> None:
    """Check a restored bundle on TARGET: row counts, checksums, and every foreign-key reference (MariaDB; on
    PostgreSQL the restored tables' foreign keys enforce them)."""

    def verify() -> Any:
        destination = _server(target, "target")
        if _postgres_bundle(directory, destination):
            return pg_export.verify(directory, destination)
        return sql_export.verify(directory, destination)

    report = run(verify)
    for problem in report.problems:
        err.print(f"[red]mismatch:[/red] {escape(problem)}", highlight=False)
    if report.problems:
        raise typer.Exit(1)
    out.print(f"verified {report.rows} rows of {report.tables} tables: counts, checksums and foreign keys match")


@tables_app.command("start")
def tables_start(source: Server, paper: Annotated[str, typer.Argument(help="The paper the analysis belongs to.")],
                 analysis: Annotated[str, typer.Argument(help="A name for the analysis.")],
                 capture_schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Open a capture on SOURCE for your database account (DJSHARE_SOURCE_USER/PASS, default DJ_USER, DJ_PASS):
    processes of that account that called `djshare.export.capture2.follow()` (DataJoint 2.x) record what they
    fetch into it, until `djshare tables stop`."""
    opened = run(lambda: capture2.open_capture(_server(source, "source"), paper, analysis, capture_schema))
    out.print(f"capturing {paper}/{analysis}" + ("" if opened else " (was open already)")
              + ": fetches in processes that called capture2.follow() are recorded")


@tables_app.command("stop")
def tables_stop(source: Server, paper: Annotated[str, typer.Argument(help="The paper whose open captures to close.")],
                analysis: Annotated[str | None, typer.Option(help="Only this analysis.")] = None,
                capture_schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Close your account's open captures of a paper on SOURCE; what they recorded stays (export it with
    `djshare tables write|copy --paper`)."""
    closed = run(lambda: capture2.close_captures(_server(source, "source"), paper, analysis, capture_schema))
    if not closed:
        err.print(f"[red]error:[/red] no open capture of {escape(paper)}" + (f"/{escape(analysis)}" if analysis else "")
                  + " for your account. `djshare tables captures` shows the open ones.", highlight=False)
        raise typer.Exit(1)
    out.print(f"stopped {closed} capture{'s' if closed > 1 else ''} of {paper}")


@tables_app.command("captures")
def tables_captures(source: Server, capture_schema: CaptureSchema = DEFAULT_SCHEMA) -> None:
    """Captures on SOURCE (DataJoint 2.x): per paper and analysis, how many restrictions and when; and the open
    ones."""
    address = run(lambda: _server(source, "source"))
    found = run(lambda: capture2.summaries(address, capture_schema))
    opened = run(lambda: capture2.open_captures(address, capture_schema))
    if not found and not opened:
        out.print("no captures")
    for paper, analysis, count, first, last in found:
        out.print(f"{paper}/{analysis}: {count} restrictions, {first} .. {last}", markup=False, highlight=False)
    for account, paper, analysis, started in opened:
        out.print(f"open: {paper}/{analysis} for {account} since {started}", markup=False, highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]: run the command again, or `djshare repair`, to finish.")
        sys.exit(130)

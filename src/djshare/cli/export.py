"""`djshare export` (captures of DataJoint 0.14 analyses) and `djshare tables` (rows chosen by SQL restrictions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from djshare.backends.address import ServerAddress
from djshare.cli import sides
from djshare.cli.app import WRONG_LINE, app, err, out, run, stores_file
from djshare.defaults import CAPTURE_SCHEMA as DEFAULT_SCHEMA
from djshare.errors import ConfigurationError
from djshare.export import capture2
from djshare.export import pg as pg_export
from djshare.export import tables as sql_export

if WRONG_LINE is None:  # exports of captures need DataJoint 0.14
    from djshare import export

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
                                  stores=(stores_file(source_stores), stores_file(target_stores)))
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
            return pg_export.write(origin, restrictions, directory, stores=stores_file(source_stores))
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
            return pg_export.restore(directory, destination, stores=stores_file(target_stores))
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



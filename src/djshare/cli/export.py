"""`djshare export`: the rows analyses captured for a paper and rows chosen by SQL restrictions, from MariaDB or
PostgreSQL, DataJoint 0.14 or 2.x, through one engine (`djshare.export.engine`). `djshare tables` is the name of
earlier releases for the same commands, kept hidden for one more."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from djshare.backends.address import ServerAddress
from djshare.cli import sides
from djshare.cli.app import WRONG_LINE, app, err, out, run, stores_file
from djshare.defaults import CAPTURE_SCHEMA
from djshare.errors import ConfigurationError
from djshare.export import capture_tables, engine
from djshare.export.selection import named

export_app = typer.Typer(
    help="Export from MariaDB or PostgreSQL (DataJoint 0.14 or 2.x): the rows analyses fetched for a paper (captures, "
    "made in Python with `djshare.export.capture(...)` / `capture2.capture(...)`, or opened here with `start` for "
    "processes that call `follow()`) and rows chosen by SQL restrictions (--rows), with the rows they reference and "
    "their part rows. Preview, write a bundle, copy into another server, restore and verify.",
    no_args_is_help=True)
app.add_typer(export_app, name="export")
tables_app = typer.Typer(help="The name of earlier releases for `djshare export` (SOURCE and TARGET as arguments).",
                         no_args_is_help=True)
app.add_typer(tables_app, name="tables", hidden=True)

CaptureSchema = Annotated[str, typer.Option("--schema", "--capture-schema",
                                            help="Schema holding the captures (on the data server).")]
From = Annotated[str | None, typer.Option(
    "--from", help=f"The data server: {sides.SERVER_FORMS}. Default: the server of the DataJoint settings (DJ_HOST). "
    "User and password: DJSHARE_SOURCE_USER and DJSHARE_SOURCE_PASS (default DJ_USER, DJ_PASS).")]
To = Annotated[str, typer.Option("--to", help=f"The target server: {sides.SERVER_FORMS}. User and password: "
                                 "DJSHARE_TARGET_USER and DJSHARE_TARGET_PASS (default DJ_USER, DJ_PASS).")]
Rows = Annotated[list[str] | None, typer.Option(
    "--rows", "-r", help="SCHEMA.TABLE or SCHEMA.TABLE:CONDITION (SQL), e.g. \"lab2.session: subject = 'm1'\"; "
    "repeat for more tables. With PAPER, added to what was captured for it.")]
SourceStores = Annotated[Path | None, typer.Option(
    help="JSON file with the data server's store settings (dj.config['stores'] form; default: DataJoint 0.14's "
    "dj.config['stores'] where it is installed).")]
TargetStores = Annotated[Path | None, typer.Option(
    help="JSON file with the target's store settings (dj.config['stores'] form; default as --source-stores).")]
Analysis = Annotated[str | None, typer.Option(help="Only this analysis.")]
Directory = Annotated[Path, typer.Argument(help="The bundle directory.")]
Paper = Annotated[str | None, typer.Argument(metavar="PAPER", help="The paper whose captures to export (leave it out "
                                             "for --rows alone).", show_default=False)]


@dataclass(frozen=True)
class Export:
    """What one export command reads: the data server, the restrictions, its stores, where temporary tables go."""

    source: ServerAddress
    restrictions: list[tuple[str, str]]
    stores: Mapping[str, Mapping[str, Any]]
    work_schema: str | None
    paper: str | None

    def label(self, verb: str) -> str:
        """What the progress bar says: `verb`, and the paper."""
        return f"{verb} {self.paper}" if self.paper is not None else verb


def _config_stores() -> dict[str, Any]:
    """DataJoint 0.14's dj.config["stores"] where it is installed, else none."""
    if WRONG_LINE is not None:
        return {}
    import datajoint as dj

    return dict(dj.config.get("stores") or {})


def _stores(path: Path | None) -> Mapping[str, Mapping[str, Any]]:
    return stores_file(path) if path is not None else _config_stores()


def _data_server(spec: str | None, schema: str) -> ServerAddress:
    """--from, else the server of DataJoint 0.14's settings, else DJ_HOST."""
    if spec:
        return sides.server(spec, "Source").address("source")
    if WRONG_LINE is None:
        from djshare.link.lazy import LazySchema

        return LazySchema(schema).address
    if os.environ.get("DJ_HOST"):
        return sides.server(os.environ["DJ_HOST"], "DJ_HOST").address("source")
    raise ConfigurationError(f"No data server: pass --from {sides.SERVER_FORMS}, or set DJ_HOST.")


def _target(spec: str) -> ServerAddress:
    return sides.server(spec, "Target").address("target")


def _rows(rows: list[str] | None) -> list[tuple[str, str]]:
    given = [(table.strip(), condition.strip()) for table, _, condition in (r.partition(":") for r in rows or [])]
    return named(given) if given else []


def _export(paper: str | None, rows: list[str] | None, source: str | None, schema: str,
            source_stores: Path | None) -> Export:
    if paper is None and not rows:
        raise ConfigurationError("Nothing to export: give a PAPER whose captures to export, or --rows "
                                 "SCHEMA.TABLE[:CONDITION] (or both).")
    address = _data_server(source, schema)
    restrictions = (capture_tables.recorded(address, paper, schema) if paper is not None else []) + _rows(rows)
    return Export(address, restrictions, _stores(source_stores), schema if paper is not None else None, paper)


def _paper_and(first: str | None, second: str | None, what: str) -> tuple[str | None, str]:
    """[PAPER] and the argument after it: one argument alone is the second."""
    if first is None:
        raise ConfigurationError(f"Give [PAPER] {what}: the paper whose captures to export (leave it out with "
                                 f"--rows), then the {what.lower()}.")
    return (first, second) if second is not None else (None, first)


@export_app.command("start")
def export_start(paper: Annotated[str, typer.Argument(help="The paper the analysis belongs to.")],
                 analysis: Annotated[str, typer.Argument(help="A name for the analysis.")],
                 source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """Open a capture for your database account: every process of yours that called `follow()`
    (`djshare.export.follow()` under DataJoint 0.14, `djshare.export.capture2.follow()` under 2.x) records what it
    fetches into it, until `djshare export stop`."""
    opened = run(lambda: capture_tables.open_capture(_data_server(source, schema), paper, analysis, schema))
    out.print(f"capturing {paper}/{analysis}" + ("" if opened else " (was open already)")
              + ": fetches in processes that called follow() are recorded")


@export_app.command("stop")
def export_stop(paper: Annotated[str, typer.Argument(help="The paper whose open captures to close.")],
                analysis: Analysis = None, source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """Close your account's open captures of a paper; what they recorded stays."""
    closed = run(lambda: capture_tables.close_captures(_data_server(source, schema), paper, analysis, schema))
    if not closed:
        err.print(f"[red]error:[/red] no open capture of {escape(paper)}" + (f"/{escape(analysis)}" if analysis else "")
                  + " for your account. `djshare export list` shows the open ones.", highlight=False)
        raise typer.Exit(1)
    out.print(f"stopped {closed} capture{'s' if closed > 1 else ''} of {paper}")


@export_app.command("list")
def export_list(source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """Captures on the data server: per paper and analysis, how many restrictions and when; and open captures."""
    address = run(lambda: _data_server(source, schema))
    found = run(lambda: capture_tables.summaries(address, schema))
    opened = run(lambda: capture_tables.open_captures(address, schema))
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
                  analysis: Analysis = None, source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """Delete the captures of a paper (or of one analysis); the data itself is untouched."""
    gone = run(lambda: capture_tables.forget(_data_server(source, schema), paper, analysis, schema))
    out.print(f"forgot {gone} recorded restrictions")


@export_app.command("preview")
def export_preview(paper: Paper = None,
                   rows: Rows = None, source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA,
                   diagram: Annotated[Path | None, typer.Option(
                       help="Also draw the slice into this file: *.svg or *.png.")] = None) -> None:
    """Tables of the export (parents first) and how many rows of each it holds."""
    def preview() -> dict[str, int]:
        chosen = _export(paper, rows, source, schema, None)
        return engine.preview(chosen.source, chosen.restrictions, diagram, chosen.work_schema)

    counts = run(preview)
    table = RichTable("table", "rows")
    for name, count in counts.items():
        table.add_row(name, str(count))
    out.print(table)
    out.print(f"{sum(counts.values())} rows in {len(counts)} tables")


@export_app.command("write")
def export_write(first: Annotated[str | None, typer.Argument(
                     metavar="PAPER", help="The paper whose captures to export (leave it out for --rows alone).",
                     show_default=False)] = None,
                 second: Annotated[str | None, typer.Argument(
                     metavar="DIRECTORY", help="A new directory for the bundle.", show_default=False)] = None,
                 rows: Rows = None, source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA,
                 source_stores: SourceStores = None) -> None:
    """Write the export as a bundle: table declarations, rows in parent-first order (MariaDB: INSERT statements;
    PostgreSQL: binary COPY files), the objects they reference, a manifest with checksums."""
    def write() -> tuple[list[engine.Entry], str]:
        paper, directory = _paper_and(first, second, "DIRECTORY")
        chosen = _export(paper, rows, source, schema, source_stores)
        return engine.write(chosen.source, chosen.restrictions, directory, chosen.stores, label=chosen.label("export"),
                            work_schema=chosen.work_schema), directory

    entries, directory = run(write)
    out.print(f"wrote {sum(e.rows for e in entries)} rows of {len(entries)} tables to {directory}")


@export_app.command("script")
def export_script(first: Annotated[str | None, typer.Argument(
                      metavar="PAPER", help="The paper whose captures to export (leave it out for --rows alone).",
                      show_default=False)] = None,
                  second: Annotated[str | None, typer.Argument(
                      metavar="PATH", help="A new file for the bash script.", show_default=False)] = None,
                  rows: Rows = None, source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA,
                  source_stores: SourceStores = None) -> None:
    """Write a mysqldump script for the export (MariaDB; no credentials in it; safe for any key value)."""
    def write() -> tuple[int, str]:
        paper, path = _paper_and(first, second, "PATH")
        chosen = _export(paper, rows, source, schema, source_stores)
        return engine.write_script(chosen.source, chosen.restrictions, path, chosen.stores, chosen.work_schema), path

    calls, path = run(write)
    out.print(f"wrote {path}: {calls} mysqldump calls; run it with DJSHARE_HOST, DJSHARE_USER and MYSQL_PWD set")


@export_app.command("copy")
def export_copy(to: To, paper: Paper = None,
                rows: Rows = None, source: From = None, schema: CaptureSchema = CAPTURE_SCHEMA,
                source_stores: SourceStores = None, target_stores: TargetStores = None) -> None:
    """Copy the export straight into another server of the same kind, in schemas without these tables (no bundle),
    checking each table there; objects go from the source's stores to the target's."""
    def copy() -> list[Any]:
        chosen = _export(paper, rows, source, schema, source_stores)
        return engine.copy(chosen.source, chosen.restrictions, _target(to), (chosen.stores, _stores(target_stores)),
                           label=chosen.label("copy"), work_schema=chosen.work_schema)

    copied = run(copy)
    out.print(f"copied {sum(c.rows for c in copied)} rows of {len(copied)} tables; checksums match")


@export_app.command("restore")
def export_restore(directory: Directory, to: To, target_stores: TargetStores = None) -> None:
    """Load a bundle into a server of the kind that wrote it, in schemas without its tables (foreign keys checked);
    its objects go to the target's stores."""
    entries = run(lambda: engine.restore(directory, _target(to), _stores(target_stores)))
    out.print(f"restored {sum(e.rows for e in entries)} rows of {len(entries)} tables")


@export_app.command("verify")
def export_verify(directory: Directory, to: To, target_stores: TargetStores = None) -> None:
    """Check a restored bundle: row counts, checksums, every foreign-key reference (MariaDB; on PostgreSQL the
    restored tables' foreign keys enforce them) and its objects."""
    report = run(lambda: engine.verify(directory, _target(to), _stores(target_stores)))
    for problem in report.problems:
        err.print(f"[red]mismatch:[/red] {escape(problem)}", highlight=False)
    if report.problems:
        raise typer.Exit(1)
    out.print(f"verified {report.rows} rows of {report.tables} tables: counts, checksums and foreign keys match")


Server = Annotated[str, typer.Argument(help=f"{sides.SERVER_FORMS}.")]
CapturedPaper = Annotated[str | None, typer.Option("--paper", help="Also the rows captured for this paper.")]


@tables_app.command("copy")
def tables_copy(source: Server, target: Server, rows: Rows = None, paper: CapturedPaper = None,
                capture_schema: CaptureSchema = CAPTURE_SCHEMA, source_stores: SourceStores = None,
                target_stores: TargetStores = None) -> None:
    """`djshare export copy [PAPER] --from SOURCE --to TARGET`."""
    export_copy(target, paper, rows, source, capture_schema, source_stores, target_stores)


@tables_app.command("write")
def tables_write(source: Server, directory: Directory, rows: Rows = None, paper: CapturedPaper = None,
                 capture_schema: CaptureSchema = CAPTURE_SCHEMA, source_stores: SourceStores = None) -> None:
    """`djshare export write [PAPER] DIRECTORY --from SOURCE`."""
    export_write(paper, str(directory), rows, source, capture_schema, source_stores) if paper else export_write(
        str(directory), None, rows, source, capture_schema, source_stores)


@tables_app.command("restore")
def tables_restore(directory: Directory, target: Server, target_stores: TargetStores = None) -> None:
    """`djshare export restore DIRECTORY --to TARGET`."""
    export_restore(directory, target, target_stores)


@tables_app.command("verify")
def tables_verify(directory: Directory, target: Server) -> None:
    """`djshare export verify DIRECTORY --to TARGET`."""
    export_verify(directory, target, None)


@tables_app.command("start")
def tables_start(source: Server, paper: Annotated[str, typer.Argument(help="The paper.")],
                 analysis: Annotated[str, typer.Argument(help="A name for the analysis.")],
                 capture_schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """`djshare export start PAPER ANALYSIS --from SOURCE`."""
    export_start(paper, analysis, source, capture_schema)


@tables_app.command("stop")
def tables_stop(source: Server, paper: Annotated[str, typer.Argument(help="The paper.")], analysis: Analysis = None,
                capture_schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """`djshare export stop PAPER --from SOURCE`."""
    export_stop(paper, analysis, source, capture_schema)


@tables_app.command("captures")
def tables_captures(source: Server, capture_schema: CaptureSchema = CAPTURE_SCHEMA) -> None:
    """`djshare export list --from SOURCE`."""
    export_list(source, capture_schema)

"""`djshare diff`: two tables (or a table and a CSV file), or a link's stale entities."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from djshare.cli import sides
from djshare.cli.app import app, err, out, run
from djshare.cli.link import DryRun, SourceHost, linked
from djshare.errors import ConfigurationError
from djshare.progress import rows_progress
from djshare.sync.diff import compare
from djshare.sync.handlers import ApplyToTables, Handler
from djshare.sync.sources import Source, Table, csv_file


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



"""The command line's application object, its consoles, and how a library error becomes one line."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from djshare import __version__
from djshare.errors import ConfigurationError, DjshareError, InterruptedOperation, LinkBusyError
from djshare.lines import dj014_refusal

# links of DataJoint 0.14 classes need DataJoint 0.14; the rest works with either line. Learned from the installed
# package's metadata: DataJoint itself is imported by the commands that use it, not to start the command line.
WRONG_LINE: ConfigurationError | None = dj014_refusal()
# DataJoint 2.x schemas need no DataJoint: links, their source-side commands, exports
WORKS_ON_ANY_LINE = {"diff", "pull", "repair", "refresh", "export", "tables", "request-deletion", "requested",
                     "approved", "finish-deletion", "gc", "status"}

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



def stores_file(path: Path | None) -> dict[str, Any]:
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



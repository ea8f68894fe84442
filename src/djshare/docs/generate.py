"""Generate docs/cli.md (from --help) and docs/link-states.md (from the protocol's tables).

Run by `make docs`; tests/unit/test_docs.py fails when the committed files differ from what this makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

from djshare.cli import app
from djshare.link.protocol import STATE_FACTS, STEP_SERVER, TRANSITIONS, VIOLATIONS, Command, State, Step

HELP_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def command_names() -> list[str]:
    """Every command but the hidden ones (names of earlier releases), sub-commands as "group command"."""
    names = []
    for name, command in get_command(app).commands.items():  # type: ignore[attr-defined]
        if getattr(command, "hidden", False):
            continue
        names.append(name)
        names += [f"{name} {sub}" for sub in getattr(command, "commands", {})]
    return names


def help_text(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=HELP_ENV, prog_name="djshare")
    lines = [line.rstrip() for line in result.output.splitlines()]
    return "\n".join(lines).strip() + "\n"


def cli_markdown() -> str:
    parts = [
        "# djshare command line\n",
        "Generated from `djshare --help` by `make docs`; do not edit by hand.\n",
        "Settings come from the environment: the local server from `DJ_HOST` (host or host:port), `DJ_USER`, "
        "`DJ_PASS`; the source server from `LINK_HOST`, `LINK_USER`, `LINK_PASS`; the outbound schema from "
        "`LINK_OUTBOUND`. Errors are one red line on stderr and exit status 1; `--debug` adds the traceback.\n",
        "```\n" + help_text() + "```\n",
    ]
    for name in command_names():
        parts.append(f"## djshare {name}\n\n```\n{help_text(*name.split())}```\n")
    return "\n".join(parts)


def states_markdown() -> str:
    lines = [
        "# Link states\n",
        "Generated from `djshare/link/protocol.py` by `make docs`; do not edit by hand.\n",
        "An *entity* is one primary key of the source table as seen by one subscriber. Its state is read off "
        "three stored facts. Every step changes one fact on **one server in one transaction**, and every SQL "
        "UPDATE or DELETE carries a guard on the current outbound state, so a step overtaken by a concurrent "
        "source-side command changes nothing.\n",
        "## States and stored facts\n",
        "| state | source row | outbound row | local row | |",
        "|---|---|---|---|---|",
    ]
    for state, facts in STATE_FACTS.items():
        outbound = facts.outbound.value if facts.outbound else "none"
        remark = "integrity violation: djshare's own steps never reach it (tests/unit)" if state in VIOLATIONS else ""
        lines.append(f"| `{state.value}` | {'yes' if facts.source else 'no'} | {outbound} | "
                     f"{'yes' if facts.local else 'no'} | {remark} |")
    lines += ["", "## Steps\n", "| step | server |", "|---|---|"]
    lines += [f"| `{step.value}` | {STEP_SERVER[step].value} |" for step in Step]
    lines += ["", "## Transitions\n",
              "A command leaves an entity alone where no steps are listed; the note says why.\n"]
    for command in Command:
        lines += [f"### {command.value}\n", "| from | steps | to | note |", "|---|---|---|---|"]
        for state in State:
            move = TRANSITIONS[(state, command)]
            steps = " → ".join(f"`{s.value}`" for s in move.steps) or "—"
            lines.append(f"| `{state.value}` | {steps} | `{move.next_state.value}` | {move.note} |")
        lines.append("")
    lines += ["## Diagram (changes only)\n", "```mermaid", "stateDiagram-v2"]
    for (state, command), move in TRANSITIONS.items():
        if move.steps:
            lines.append(f"    {state.value} --> {move.next_state.value}: {command.value}")
    lines += ["```", ""]
    return "\n".join(lines)


def write(root: Path) -> None:
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "cli.md").write_text(cli_markdown())
    (root / "docs" / "link-states.md").write_text(states_markdown())


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())

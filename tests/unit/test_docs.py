"""The docs cannot drift from the code: generated files are current, every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

from djshare.docs.generate import cli_markdown, command_names, help_text, states_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == cli_markdown(), "run `make docs`"


def test_link_states_are_current() -> None:
    assert (ROOT / "docs" / "link-states.md").read_text() == states_markdown(), "run `make docs`"


def test_every_command_has_help_and_a_section() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    for name in command_names():
        text = help_text(*name.split())
        summary = text.split("\n\n")[1].strip()
        assert len(summary) > 20, name
        assert f"## djshare {name}\n" in reference


def test_readme_opens_with_demo_and_test_and_names_real_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("\n## ")]
    assert "make demo" in head and "make test" in head
    used = {" ".join(m.split()) for m in re.findall(r"^djshare ((?:export |tables )?[a-z][a-z-]+)", readme,
                                                    flags=re.MULTILINE)}
    assert used <= set(command_names())

"""The command line starts without servers: --version and --help answer at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from djshare import __version__


@pytest.mark.parametrize("command", [[sys.executable, "-m", "djshare"], [str(Path(sys.executable).parent / "djshare")]])
def test_version_is_printed_without_a_command(command: list[str]) -> None:
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"djshare {__version__}", done.stderr

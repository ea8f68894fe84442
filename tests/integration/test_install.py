"""What installing djshare brings must not break a lab's own DataJoint code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import datajoint as dj
import pytest

from tests.servers import MariaDBServer

ROOT = Path(__file__).resolve().parents[2]


def test_datajoint_s_own_connection_works_against_a_server_without_tls(servers: list[MariaDBServer]) -> None:
    """DataJoint 0.14.10 with PyMySQL 1.2 asks a server without TLS for TLS unless `database.use_tls` is False;
    the `dj014` extra keeps PyMySQL below 1.2, so a lab's code that never set it keeps working."""
    server = servers[0]
    connection = dj.Connection(server.address, server.admin_user, server.admin_password)  # use_tls left unset
    assert connection.query("SELECT 1").fetchone() == (1,)
    connection.close()


@pytest.mark.parametrize("extra", ["dj014", "dj2"])
def test_the_readme_install_lines_work_in_a_fresh_venv(extra: str, tmp_path: Path) -> None:
    """`pip install './djshare[EXTRA]'` from a checkout, with the venv's own pip (no upgrade first), then the
    command line starts."""
    assert f"pip install './djshare[{extra}]'" in (ROOT / "README.md").read_text()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    checkout = tmp_path / "djshare"
    skipped = shutil.ignore_patterns(".venv*", ".git", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, checkout, ignore=skipped)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"./djshare[{extra}]"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    started = subprocess.run([str(venv / "bin" / "djshare"), "--version"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0 and started.stdout.startswith("djshare "), started.stderr

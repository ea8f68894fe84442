"""Kill a pulling process with SIGKILL (no cleanup, connections dropped mid-session) and re-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Lab, fill_pipeline
from tests.faults.test_crash import assert_consistent, assert_fully_pulled, states

ROOT = Path(__file__).resolve().parents[2]


def run_victim(lab: Lab, step: str, occurrence: int, batch_size: int) -> subprocess.Popen[bytes]:
    spec = {
        "local_host": lab.local.address, "local_user": lab.local.admin_user, "local_password": lab.local.admin_password,
        "source_host": lab.source.address, "link_user": lab.users.link_user, "link_password": lab.users.link_password,
        "source_schema": lab.source_schema, "local_schema": lab.local_schema, "outbound_schema": lab.outbound_schema,
        "class_name": "Scan", "step": step, "occurrence": occurrence, "batch_size": batch_size,
    }
    return subprocess.Popen([sys.executable, "-m", "tests.faults.victim", json.dumps(spec)], cwd=ROOT)


@pytest.mark.parametrize("step", ["insert_local", "record_pulling"])
def test_killed_pull_then_rerun(lab: Lab, step: str) -> None:
    fill_pipeline(lab.pipeline, subjects=2, recordings=6)
    victim = run_victim(lab, step, occurrence=2, batch_size=4)
    assert victim.wait(timeout=120) == -signal.SIGKILL
    assert_consistent(lab)
    assert "pulling" in states(lab)
    Scan = lab.linked("Scan")
    started = time.monotonic()
    Scan().pull(progress=False)  # the dead process's lock went with its connection: no wait
    assert time.monotonic() - started < 30
    assert_fully_pulled(lab, 12)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.2, 0.5, 1.0, 2.0])
def test_killed_at_a_random_moment_then_repair_and_rerun(lab: Lab, delay: float) -> None:
    fill_pipeline(lab.pipeline, subjects=6, recordings=40)
    Scan = lab.linked("Scan")
    assert len(Scan()) == 0  # declared here, so a kill before the victim's pull starts still leaves tables to check
    victim = run_victim(lab, "never", occurrence=1, batch_size=7)
    time.sleep(delay)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert_consistent(lab)
    Scan().repair(progress=False)
    assert_consistent(lab)
    Scan().pull(progress=False)
    assert_fully_pulled(lab, 240)

"""The `djshare` command, run as a separate process with settings in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Lab, fill_pipeline


def djshare(lab: Lab, *args: str, password: str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DJ_HOST=lab.local.address, DJ_USER=lab.local.admin_user, DJ_PASS=lab.local.admin_password,
               LINK_HOST=lab.source.address, LINK_USER=lab.users.link_user,
               LINK_PASS=password or lab.users.link_password, LINK_OUTBOUND=lab.outbound_schema, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "djshare", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_pull_status_and_the_deletion_handshake(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    table = f"{lab.source_schema}.Scan"
    dry = djshare(lab, "pull", table, "-l", lab.local_schema, "--where", "subject='s0'", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would pull 5 entities" in dry.stdout
    result = djshare(lab, "pull", table, "-l", lab.local_schema, "--where", "subject='s0'", "--where", "recording<3")
    assert result.returncode == 0, result.stderr
    assert "pulled 3 entities (6 part rows, 0 objects) in 1 batches" in result.stdout
    assert "pulled 2 entities" in djshare(lab, "pull", table, "-l", lab.local_schema, "-w", "subject='s0'").stdout
    status = djshare(lab, "status")
    assert f"`{lab.source_schema}`.`__scan`" in status.stdout and " 5 " in status.stdout
    admin = ["--source-host", lab.source.address]
    requested = djshare(lab, "request-deletion", table, "--where", "recording=1", *admin)
    assert "requested deletion of 1 held entities" in requested.stdout, requested.stderr
    assert "1 new deletion requests" in djshare(lab, "refresh", table, "-l", lab.local_schema).stdout
    listing = djshare(lab, "requested", table)
    assert "s0" in listing.stdout and "1" in listing.stdout
    lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`__scan__deletion_requested`")
    lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`__scan__channel` WHERE recording=1")
    lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`__scan` WHERE recording=1")
    repaired = djshare(lab, "repair", table, "-l", lab.local_schema)
    assert "approve_deletion x1" in repaired.stdout, repaired.stderr
    assert "s0" in djshare(lab, "approved", table).stdout
    # finishing needs DELETE on the source schema: the link user lacks it
    refused = djshare(lab, "finish-deletion", table)
    assert refused.returncode == 1
    assert "lacks a privilege" in refused.stderr and "Traceback" not in refused.stderr
    assert "s0" in djshare(lab, "approved", table).stdout  # the refused batch changed nothing
    dry = djshare(lab, "finish-deletion", table, "--dry-run")
    assert dry.returncode == 0 and "would delete 1 source entities" in dry.stdout


def test_a_dry_run_a_bad_restriction_and_a_repair_of_nothing_change_nothing(lab: Lab) -> None:
    """None of these may create the local schema, its tables or the outbound table."""
    fill_pipeline(lab.pipeline)
    table = f"{lab.source_schema}.Scan"

    def untouched() -> None:
        assert lab.local.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                               (lab.local_schema,)) == [(0,)]
        assert lab.source.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                                (lab.outbound_schema,)) == [(0,)]

    dry = djshare(lab, "pull", table, "-l", lab.local_schema, "--where", "subject='s0'", "--dry-run")
    assert dry.returncode == 0 and "would pull 5 entities" in dry.stdout, dry.stderr
    untouched()
    bad = djshare(lab, "pull", table, "-l", lab.local_schema, "--where", "subjct='s0'")
    assert bad.returncode == 1 and "subjct" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    untouched()
    nothing = djshare(lab, "repair", table, "-l", lab.local_schema)
    assert nothing.returncode == 1 and "Nothing to repair" in nothing.stderr, nothing.stderr
    untouched()


def test_errors_are_one_line_without_secrets(lab: Lab) -> None:
    result = djshare(lab, "pull", f"{lab.source_schema}.Nope", "-l", lab.local_schema)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: No table for class Nope")
    wrong = djshare(lab, "pull", f"{lab.source_schema}.Scan", "-l", lab.local_schema, password="hunter2-secret")
    assert wrong.returncode == 1 and "wrong user name or password" in wrong.stderr
    assert "hunter2-secret" not in wrong.stderr + wrong.stdout
    debug = djshare(lab, "--debug", "pull", "nodot", "-l", lab.local_schema)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "SCHEMA.ClassName" in debug.stderr
    assert "needs at least one --where" in djshare(lab, "request-deletion", f"{lab.source_schema}.Scan").stderr


def test_the_format_of_a_new_local_schema_is_chosen_and_refusals_change_nothing(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    table = f"{lab.source_schema}.Scan"
    v2 = f"{lab.local_schema}_v2"

    def refused(*args: str) -> str:
        done = djshare(lab, "pull", table, *args)
        assert done.returncode == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done
        assert lab.local.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                               (lab.local_schema,)) == [(0,)]
        return " ".join(done.stderr.split())

    assert "DataJoint 0.14 has no format on PostgreSQL" in refused(
        "-l", "postgresql://localhost:1/db/collab", "--format", "dj014")
    assert "is not a schema name" in refused("-l", f"{lab.local.address}/{lab.local_schema}")
    assert lab.source.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                            (lab.outbound_schema,)) == [(0,)]
    wrong = djshare(lab, "pull", table, "-l", lab.local_schema, "--format", "dj3")
    assert wrong.returncode == 2 and "'dj3' is not one of" in wrong.stderr.replace("\"", "'"), wrong.stderr
    # 0.14 into 2.x's format on MariaDB, then the schema keeps its format: later commands need no --format
    done = djshare(lab, "pull", table, "-l", v2, "--format", "dj2", "-w", "subject='s0'")
    assert done.returncode == 0 and "pulled 5 entities" in done.stdout, done.stderr
    assert lab.local.query(f"SELECT COUNT(*) FROM `{v2}`.`~lineage`")[0][0] > 0
    assert "pulled 0 entities" in djshare(lab, "pull", table, "-l", v2, "-w", "subject='s0'").stdout
    assert "is in DataJoint 2.x's format, not the link's (0.14)" in refused("-l", v2, "--format", "dj014")
    done = djshare(lab, "pull", table, "-l", lab.local_schema, "--format", "dj014", "-w", "subject='s0'")
    assert done.returncode == 0 and "pulled 5 entities" in done.stdout, done.stderr

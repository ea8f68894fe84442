"""Bad input: one clear error, and nothing changed on either server."""

from __future__ import annotations

from typing import Any

import datajoint as dj
import pytest

from djshare.errors import (
    AuthenticationError,
    ConfigurationError,
    DefinitionMismatchError,
    MissingPrivilegeError,
    RestrictionError,
    ServerUnreachableError,
    UnknownTableError,
)
from tests.conftest import Lab, fill_pipeline
from tests.servers import free_port


def schemas(server: Any) -> set[str]:
    return {str(r[0]) for r in server.query("SHOW DATABASES")}


def assert_nothing_changed(lab: Lab) -> None:
    assert lab.local_schema not in schemas(lab.local)
    assert lab.outbound_schema not in schemas(lab.source)


def test_unknown_source_schema(lab: Lab) -> None:
    from djshare import LazySchema, Link

    Recording = Link(lab.local_lazy(), LazySchema("no_such_schema", host=lab.source.address))(type("Recording", (), {}))
    with pytest.raises(UnknownTableError, match="Schema `no_such_schema` not found"):
        Recording()
    assert_nothing_changed(lab)


def test_class_name_must_match_a_source_table(lab: Lab) -> None:
    expected = "No table for class Recordings.*Tables there: Recording, Scan, Subject\\."
    with pytest.raises(UnknownTableError, match=expected):
        lab.linked("Recordings")()
    assert_nothing_changed(lab)


def test_unreachable_source_server(lab: Lab) -> None:
    from djshare import LazySchema, Link

    source = LazySchema(lab.source_schema, host=f"127.0.0.1:{free_port()}")
    Recording = Link(lab.local_lazy(), source)(type("Recording", (), {}))  # lazy: connects to nothing yet
    with pytest.raises(ServerUnreachableError, match=r"Cannot reach the server at 127\.0\.0\.1:\d+"):
        Recording()
    assert_nothing_changed(lab)


def test_wrong_password_is_named_and_never_printed(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINK_PASS", "not-the-password-123")
    with pytest.raises(AuthenticationError, match="wrong user name or password.*LINK_USER and LINK_PASS") as info:
        lab.linked("Recording")()
    assert "not-the-password-123" not in str(info.value)
    assert_nothing_changed(lab)


@pytest.mark.parametrize("variable", ["LINK_USER", "LINK_PASS", "LINK_OUTBOUND"])
def test_missing_link_variables(lab: Lab, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigurationError, match=variable):
        lab.linked("Recording")()
    assert_nothing_changed(lab)


def test_link_user_without_grant_on_the_outbound_schema(lab: Lab) -> None:
    """(MariaDB does not check the REFERENCES privilege, so the outbound grant is the one that bites.)"""
    lab.source.execute(f"REVOKE ALL PRIVILEGES ON `{lab.outbound_schema}`.* FROM '{lab.users.link_user}'@'%'")
    with pytest.raises(MissingPrivilegeError, match=f"lacks a privilege.*{lab.outbound_schema}") as info:
        lab.linked("Recording")().pull(progress=False)  # making the instance only reads
    assert f"GRANT ALL PRIVILEGES ON `{lab.outbound_schema}`.*" in info.value.grant
    assert_nothing_changed(lab)


def test_a_local_schema_the_user_may_not_create_is_one_clear_error(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_pipeline(lab.pipeline)
    lab.local.create_user("reader_" + lab.local_schema, "pw", "SELECT ON *.*")
    monkeypatch.setitem(dj.config, "database.user", "reader_" + lab.local_schema)
    monkeypatch.setitem(dj.config, "database.password", "pw")
    with pytest.raises(MissingPrivilegeError, match=f"Schema `{lab.local_schema}` .* cannot be used as user") as info:
        lab.linked("Recording")().pull(progress=False)
    assert f"GRANT ALL PRIVILEGES ON `{lab.local_schema}`.*" in info.value.grant
    assert lab.local_schema not in schemas(lab.local)


def test_link_user_without_select_sees_no_schema(lab: Lab) -> None:
    lab.source.execute(f"REVOKE SELECT ON `{lab.source_schema}`.* FROM '{lab.users.link_user}'@'%'")
    lab.source.execute(f"REVOKE REFERENCES ON `{lab.source_schema}`.* FROM '{lab.users.link_user}'@'%'")
    with pytest.raises(UnknownTableError, match=f"or user {lab.users.link_user} has no privilege on it"):
        lab.linked("Recording")()
    assert_nothing_changed(lab)


@pytest.mark.parametrize("restriction", [
    "recording >>> 3",
    "no_such_column = 1",
    {"subjekt": "s0"},
    [{"recording": 1}, {"nope": 2}],
])
def test_malformed_restriction_pulls_nothing(lab: Lab, restriction: Any) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    with pytest.raises(RestrictionError) as info:
        Recording().pull(restriction)
    assert "recording" in str(info.value)
    assert len(Recording()) == 0
    assert lab.source.query(f"SELECT COUNT(*) FROM `{lab.outbound_schema}`.`{lab.source_schema}_recording_outbound`") \
        == [(0,)]


@pytest.mark.parametrize("escape", ["1)) OR ((1=1", "1) OR (1=1", "1 OR 1=1 -- ", "1; DELETE FROM x"])
def test_a_restriction_cannot_break_out_of_its_parentheses(lab: Lab, escape: str) -> None:
    """Each restriction is one condition: text that would close the parentheses it is put in (and so override the
    other restrictions) is refused, from the API and the command line, and nothing is pulled."""
    import os
    import subprocess
    import sys

    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    with pytest.raises(RestrictionError, match="Nothing was changed"):
        Recording().pull("recording < 0", escape)
    env = dict(os.environ, LINK_HOST=lab.source.address, DJ_HOST=lab.local.address, DJ_USER=lab.local.admin_user,
               DJ_PASS=lab.local.admin_password)
    done = subprocess.run([sys.executable, "-m", "djshare", "pull", f"{lab.source_schema}.Recording", "-l",
                           lab.local_schema, "--where", "recording < 0", "--where", escape], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Restriction" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(Recording()) == 0
    assert lab.source.query(f"SELECT COUNT(*) FROM `{lab.outbound_schema}`.`{lab.source_schema}_recording_outbound`") \
        == [(0,)]


def test_malformed_deletion_request_changes_nothing(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull()
    with pytest.raises(RestrictionError):
        lab.source_link("Recording").request_deletion("recording = = 1")
    assert Recording().link_status()["pulled"] == 10


def test_pull_into_a_local_table_that_no_longer_matches(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull({"subject": "s0"})
    lab.local.execute(f"ALTER TABLE `{lab.local_schema}`.`recording` MODIFY `score` float NOT NULL")
    Again = lab.linked("Recording")
    expected = "column `score` is float locally but double in the source.*Nothing was pulled"
    with pytest.raises(DefinitionMismatchError, match=expected):
        Again().pull()
    assert len(Again()) == 5 and Again().link_status()["pulled"] == 5


def test_source_side_without_link_does_not_exist(lab: Lab) -> None:
    with pytest.raises(UnknownTableError, match="outbound"):
        lab.source_link("Subject").status()


def test_local_user_missing(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dj.config, "database.user", None)
    with pytest.raises(ConfigurationError, match="DJ_USER"):
        lab.linked("Recording")()


def test_a_dry_run_a_bad_restriction_and_a_repair_of_a_new_link_change_nothing(lab: Lab) -> None:
    """The Python API as the CLI: making the instance checks the link, and nothing is declared before a command
    needs it."""
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    report = Scan().pull("subject = 's0'", dry_run=True, progress=False)
    assert (report.dry_run, report.would_pull, report.pulled) == (True, 5, 0)
    assert_nothing_changed(lab)
    with pytest.raises(RestrictionError, match="subjct"):
        Scan().pull("subjct = 's0'", progress=False)
    assert_nothing_changed(lab)
    with pytest.raises(ConfigurationError, match="Nothing to repair"):
        Scan().repair(progress=False)
    assert_nothing_changed(lab)
    assert Scan().pull("subject = 's0'", progress=False).pulled == 5  # the same object, once it is used
    assert len(Scan()) == 5 and Scan().pull(dry_run=True, progress=False).would_pull == 5  # of 10


def test_a_linked_class_is_declared_when_datajoint_first_uses_it(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    assert len(Scan()) == 0 and lab.local_schema in schemas(lab.local)
    assert Scan.heading.primary_key == ["subject", "recording"]

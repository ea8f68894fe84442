"""Link staleness against real servers: source rows changed after the pull are found (master and part rows,
one byte of a blob), `pull(refresh_changed=True)` brings them over in place, and a crash at any step of the
refresh converges on re-run with every local row still held."""

from __future__ import annotations

from typing import Any

import pytest

from djshare.sync.actions import counts
from tests.conftest import Lab, fill_pipeline
from tests.integration.checks import digest
from tests.integration.test_link import assert_invariant

SCAN, CHANNEL = "__scan", "__scan__channel"


def change_source(lab: Lab) -> None:
    """Four entities change at the source after the pull: a master value, one byte of a part's blob, a part
    row deleted, a part row added."""
    s = f"`{lab.source_schema}`"
    lab.source.execute(f"UPDATE {s}.`{SCAN}` SET result = result + 1 WHERE subject = 's0' AND recording = 1")
    lab.source.execute(f"UPDATE {s}.`{CHANNEL}` SET trace = CONCAT(LEFT(trace, LENGTH(trace) - 1), "
                       "CHAR(ASCII(RIGHT(trace, 1)) ^ 1)) WHERE subject = 's0' AND recording = 2 AND channel = 0")
    lab.source.execute(f"DELETE FROM {s}.`{CHANNEL}` WHERE subject = 's1' AND recording = 0 AND channel = 1")
    lab.source.execute(f"INSERT INTO {s}.`{CHANNEL}` SELECT subject, recording, 7, trace FROM {s}.`{CHANNEL}` "
                       "WHERE subject = 's1' AND recording = 4 AND channel = 0")


def same(lab: Lab) -> bool:
    return all(digest(lab.local, lab.local_schema, t) == digest(lab.source, lab.source_schema, t)
               for t in (SCAN, CHANNEL))


def pulled_scan(lab: Lab) -> Any:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    Scan().pull(progress=False)
    return Scan


def test_stale_entities_are_found_and_refreshed(lab: Lab) -> None:
    Scan = pulled_scan(lab)
    assert Scan().stale(progress=False).stale == []
    change_source(lab)
    report = Scan().stale(progress=False)
    assert len(report.stale) == 4 and report.out_of_step == 0
    assert counts(report.changes) == {"added": 1, "removed": 1, "changed": 2}
    assert {tuple(a.changes) for a in report.changes if a.kind == "changed"} == {("result",), ("trace",)}
    assert len(Scan().stale("subject = 's0'", progress=False).stale) == 2
    assert not same(lab)
    pulled = Scan().pull(refresh_changed=True, progress=False)
    assert (pulled.pulled, pulled.refreshed) == (0, 4)
    assert same(lab) and Scan().stale(progress=False).stale == []
    assert_invariant(lab, SCAN, "subject, recording")


def test_entities_on_one_side_only_are_left_to_repair(lab: Lab) -> None:
    Scan = pulled_scan(lab)
    change_source(lab)
    lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`{CHANNEL}` WHERE subject = 's1' AND recording = 0")
    lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`{SCAN}` WHERE subject = 's1' AND recording = 0")
    report = Scan().stale(progress=False)
    assert report.out_of_step == 1 and len(report.stale) == 3  # the locally deleted entity is not re-created
    Scan().pull(refresh_changed=True, progress=False)
    assert lab.local.query(f"SELECT COUNT(*) FROM `{lab.local_schema}`.`{SCAN}` WHERE subject = 's1' "
                           "AND recording = 0") == [(0,)]


@pytest.mark.parametrize("step", ["refresh_local"])
def test_a_crash_during_refresh_converges_on_rerun(lab: Lab, step: str) -> None:
    Scan = pulled_scan(lab)
    change_source(lab)
    seen: list[str] = []

    def crash(name: str) -> None:
        seen.append(name)
        if name == step and seen.count(step) == 2:
            raise RuntimeError(f"crash after {name}")

    with pytest.raises(RuntimeError, match="crash after"):
        Scan().pull(refresh_changed=True, batch_size=1, progress=False, checkpoint=crash)
    assert len(Scan().stale(progress=False).stale) == 2  # two batches of one committed, two to go
    assert_invariant(lab, SCAN, "subject, recording")
    assert Scan().pull(refresh_changed=True, progress=False).refreshed == 2
    assert same(lab)


def test_a_failure_inside_the_local_transaction_changes_nothing(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    import djshare.link.pull

    Scan = pulled_scan(lab)
    change_source(lab)
    before = {t: digest(lab.local, lab.local_schema, t) for t in (SCAN, CHANNEL)}

    def broken(*args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(djshare.link.pull, "_drop_vanished_parts", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        Scan().pull(refresh_changed=True, progress=False)
    assert {t: digest(lab.local, lab.local_schema, t) for t in before} == before
    monkeypatch.undo()
    assert Scan().pull(refresh_changed=True, progress=False).refreshed == 4 and same(lab)


def test_stale_entities_from_the_command_line(lab: Lab) -> None:
    import json

    from tests.integration.test_cli import djshare

    fill_pipeline(lab.pipeline)
    table = f"{lab.source_schema}.Scan"
    assert djshare(lab, "pull", table, "-l", lab.local_schema).returncode == 0
    change_source(lab)
    shown = djshare(lab, "diff", "--link", table, "-l", lab.local_schema)
    assert shown.returncode == 1, shown.stderr  # stale entities are differences
    assert "~ __scan (subject='s0', recording=1)" in shown.stdout and "4 stale entities" in shown.stderr
    assert lab.users.link_password not in shown.stdout + shown.stderr
    only = djshare(lab, "diff", "--link", table, "-l", lab.local_schema, "--where", "subject = 's1'", "--json")
    assert {json.loads(line)["kind"] for line in only.stdout.splitlines()} == {"added", "removed"}
    refreshed = djshare(lab, "pull", table, "-l", lab.local_schema, "--refresh-changed")
    assert "refreshed 4 entities" in refreshed.stdout, refreshed.stderr
    none = djshare(lab, "diff", "--link", table, "-l", lab.local_schema, "--counts")
    assert none.returncode == 0 and none.stdout.startswith("0 stale entities")
    assert same(lab)
    missing = djshare(lab, "diff", "--link", table)
    assert missing.returncode != 0 and "--local-schema" in missing.stderr


def test_what_the_outbound_table_does_not_guard_is_reported(lab: Lab) -> None:
    """The outbound foreign key keeps a held master row from being deleted; it does not guard part rows, nor a
    master deleted with foreign-key checks switched off. `stale` reports both (README: On the source side)."""
    Scan = pulled_scan(lab)
    s = f"`{lab.source_schema}`"
    lab.source.execute(f"DELETE FROM {s}.`{CHANNEL}` WHERE subject = 's0' AND recording = 3")  # a held entity's parts
    lab.source.execute("SET SESSION foreign_key_checks = 0",
                       f"DELETE FROM {s}.`{CHANNEL}` WHERE subject = 's1' AND recording = 2",
                       f"DELETE FROM {s}.`{SCAN}` WHERE subject = 's1' AND recording = 2")
    report = Scan().stale(progress=False)
    assert report.stale == [b"('s0','3')"]  # its part rows are gone at the source
    assert report.out_of_step == 1  # the master deleted behind the outbound table

"""Links between real MariaDB servers: declaration, pull, parts, deletion handshake, subscribers, grants."""

from __future__ import annotations

import builtins
import threading
import time
from typing import Any

import datajoint as dj
import numpy as np
import pymysql
import pytest

from djshare.errors import IntegrityViolation
from djshare.link.protocol import Outbound
from tests.conftest import Lab, fill_pipeline
from tests.integration.checks import count, digest, invariant_holds
from tests.servers import MariaDBServer


def outbound_name(lab: Lab, table: str) -> str:
    return f"{lab.source_schema}_{table}_outbound"


def states(lab: Lab, table: str) -> dict[str, int]:
    rows = lab.source.query(
        f"SELECT state, COUNT(*) FROM `{lab.outbound_schema}`.`{outbound_name(lab, table)}` GROUP BY state"
    )
    return {str(s): int(n) for s, n in rows}  # type: ignore[call-overload]


def assert_invariant(lab: Lab, table: str, key: str, local: MariaDBServer | None = None,
                     local_schema: str | None = None) -> None:
    missing = invariant_holds(lab.source, local or lab.local, local_schema or lab.local_schema, table,
                              lab.outbound_schema, outbound_name(lab, table.lstrip("_")), key)
    assert missing == []


# --- declaration ------------------------------------------------------------------------------------------


def test_local_table_has_the_source_definition(lab: Lab) -> None:
    Recording = lab.linked("Recording")
    Recording()
    source = dj.FreeTable(lab.pipeline["schema"].connection, f"`{lab.source_schema}`.`recording`")
    local = dj.FreeTable(Recording.connection, f"`{lab.local_schema}`.`recording`")
    for name, attr in source.heading.attributes.items():
        mine = local.heading.attributes[name]
        assert (mine.type, mine.nullable, mine.default, mine.comment, mine.in_key) == (
            attr.type, attr.nullable, attr.default, attr.comment, attr.in_key), name
    default = lab.local.query("SELECT column_default FROM information_schema.columns WHERE table_schema=%s AND "
                              "table_name='recording' AND column_name='recorded_at'", (lab.local_schema,))
    assert default == [("current_timestamp()",)]
    assert local.parents() == []  # the source's foreign key to Subject became plain attributes
    assert local.heading.table_status["comment"] == "a recording session"


def test_computed_source_with_parts(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    assert Scan().table_name == "__scan"
    assert {p.split(".")[-1].strip("`") for p in Scan.parts()} == {"__scan__channel", "__scan__deletion_requested"}
    report = Scan().pull()
    assert (report.pulled, report.part_rows) == (10, 20)
    for table in ("__scan", "__scan__channel"):
        assert digest(lab.local, lab.local_schema, table) == digest(lab.source, lab.source_schema, table)


# --- pull -------------------------------------------------------------------------------------------------


def test_pull_is_byte_exact(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    assert Recording().pull().pulled == 10
    assert digest(lab.local, lab.local_schema, "recording") == digest(lab.source, lab.source_schema, "recording")
    # floats bit for bit, blobs decoded equal, non-UTF-8 binary and awkward text unchanged
    mine = (Recording & {"subject": "s1", "recording": 3}).fetch1()
    theirs = (lab.pipeline["Recording"] & {"subject": "s1", "recording": 3}).fetch1()
    assert np.float32(mine["weight"]).tobytes() == np.float32(theirs["weight"]).tobytes()
    assert np.float64(mine["score"]).tobytes() == np.float64(theirs["score"]).tobytes()
    assert np.array_equal(mine["data"], theirs["data"])
    assert mine["token"] == theirs["token"] and mine["note"] == theirs["note"]
    assert mine["recorded_at"] == theirs["recorded_at"]
    assert_invariant(lab, "recording", "subject, recording")


def test_timestamps_between_servers_in_different_time_zones(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    lab.source.execute(f"UPDATE `{lab.source_schema}`.`recording` SET recorded_at = '2024-03-31 01:30:00'")
    lab.local.execute("SET GLOBAL time_zone = '-07:00'")
    try:
        Recording = lab.linked("Recording")
        Recording().pull()
        query = "SELECT UNIX_TIMESTAMP(recorded_at) FROM `{}`.`recording` ORDER BY subject, recording"
        assert lab.local.query(query.format(lab.local_schema)) == lab.source.query(query.format(lab.source_schema))
    finally:
        lab.local.execute("SET GLOBAL time_zone = SYSTEM")


def test_restricted_pull_and_pull_twice(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    assert Recording().pull({"subject": "s0"}, "recording < 2").pulled == 2
    assert Recording().pull([{"subject": "s1", "recording": 4}, {"subject": "s1", "recording": 0}]).pulled == 2
    assert Recording().pull(lab.pipeline["Subject"] & {"subject": "s1"}).pulled == 3
    assert len(Recording()) == 7
    again = Recording().pull({"subject": "s0"}, "recording < 2")
    assert (again.pulled, again.batches) == (0, 0)
    assert Recording().pull().pulled == 3
    assert Recording().pull().pulled == 0
    assert states(lab, "recording") == {"pulled": 10}


def test_pull_in_many_batches_and_dry_run(lab: Lab) -> None:
    fill_pipeline(lab.pipeline, subjects=3, recordings=7)
    Scan = lab.linked("Scan")
    dry = Scan().pull(dry_run=True)
    assert (dry.would_pull, dry.pulled, len(Scan())) == (21, 0, 0)
    assert count(lab.source, lab.outbound_schema, outbound_name(lab, "scan")) == 0
    report = Scan().pull(batch_size=4)
    assert (report.pulled, report.part_rows, report.batches) == (21, 42, 6)
    assert digest(lab.local, lab.local_schema, "__scan__channel") == digest(lab.source, lab.source_schema,
                                                                             "__scan__channel")


def test_source_view_is_restrictable(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    assert len(Recording().source()) == 10
    assert len(Recording().source() & {"subject": "s0"}) == 5


def test_local_server_at_default_max_allowed_packet(lab: Lab, default_packet_server: MariaDBServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """40 rows of 1 MB blobs (80 MB as hex SQL) into a server left at the 16 MB default."""
    Recording = lab.pipeline["Recording"]
    lab.pipeline["Subject"].insert1({"subject": "big"})
    payload = np.random.default_rng(1).integers(0, 255, size=1 << 20, dtype=np.uint8)
    for r in range(40):
        Recording.insert1({"subject": "big", "recording": r, "score": 1.0, "data": payload + r % 7})
    monkeypatch.setitem(dj.config, "database.host", default_packet_server.address)
    Linked = lab.linked("Recording")
    assert Linked().pull().pulled == 40
    assert digest(default_packet_server, lab.local_schema, "recording") == digest(
        lab.source, lab.source_schema, "recording")


# --- deletion ---------------------------------------------------------------------------------------------


def test_deletion_handshake(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    Scan().pull()
    source_side = lab.source_link("Scan")
    assert source_side.request_deletion({"subject": "s0"}, dry_run=True) == 5
    assert states(lab, "scan") == {"pulled": 10}
    assert source_side.request_deletion({"subject": "s0"}) == 5
    assert Scan().refresh() == 5
    assert len(Scan().DeletionRequested()) == 5
    assert Scan().refresh() == 0
    (Scan() & "recording < 2" & {"subject": "s0"}).delete()
    assert states(lab, "scan") == {"pulled": 5, "deletion_requested": 3, "deletion_approved": 2}
    assert len(Scan().DeletionRequested()) == 3
    approved = source_side.approved()
    assert [(a["subject"], a["recording"]) for a in approved] == [("s0", 0), ("s0", 1)]
    dry = source_side.finish_deletion(dry_run=True)
    assert (dry.outbound_rows, dry.source_rows) == (2, 2)
    report = source_side.finish_deletion()
    assert (report.outbound_rows, report.source_rows, report.kept) == (2, 2, 0)
    assert count(lab.source, lab.source_schema, "__scan") == 8
    assert count(lab.source, lab.source_schema, "__scan__channel") == 16
    assert states(lab, "scan") == {"pulled": 5, "deletion_requested": 3}
    assert Scan().pull().pulled == 0  # requested entities are not pulled again
    assert_invariant(lab, "__scan", "subject, recording")


def test_delete_restricted_by_deletion_requested(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    Scan().pull()
    lab.source_link("Scan").request_deletion({"subject": "s1"}, "recording > 1")
    Scan().refresh()
    (Scan() & Scan().DeletionRequested()).delete()
    assert len(Scan()) == 7 and len(Scan.Channel()) == 14
    assert len(Scan().DeletionRequested()) == 0
    assert states(lab, "scan") == {"pulled": 7, "deletion_approved": 3}


def test_local_deletion_without_request_releases_the_rows(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull()
    (Recording() & {"subject": "s1"}).delete()
    assert states(lab, "recording") == {"pulled": 5}
    Recording.delete_quick()
    assert states(lab, "recording") == {}
    for table in ("__scan__channel", "__scan", "recording"):  # no longer held: the source may delete
        lab.source.execute(f"DELETE FROM `{lab.source_schema}`.`{table}` WHERE subject = 's1'")
    assert Recording().pull().pulled == 5


def test_cancelled_delete_prompt_changes_nothing(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull()
    lab.source_link("Recording").request_deletion({"subject": "s0"})
    monkeypatch.setitem(dj.config, "safemode", True)
    monkeypatch.setattr(builtins, "input", lambda *_: "no")
    (Recording() & {"subject": "s0"}).delete()
    assert len(Recording()) == 10
    assert states(lab, "recording") == {"pulled": 5, "deletion_requested": 5}
    monkeypatch.setattr(builtins, "input", lambda *_: "yes")
    (Recording() & {"subject": "s0"}).delete()
    assert states(lab, "recording") == {"pulled": 5, "deletion_approved": 5}


def test_outbound_rows_of_rows_deleted_outside_djshare_are_repaired(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull()
    lab.source_link("Recording").request_deletion({"subject": "s0", "recording": 0})
    lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`recording` WHERE recording IN (0, 1)")
    report = Recording().repair()
    assert report.steps == {"remove_outbound": 3, "approve_deletion": 1}
    assert states(lab, "recording") == {"pulled": 6, "deletion_approved": 1}
    assert Recording().repair().changed == 0


def test_repair_records_local_rows_without_outbound_rows(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull()
    lab.source.execute(f"DELETE FROM `{lab.outbound_schema}`.`{outbound_name(lab, 'recording')}` LIMIT 3")
    assert Recording().repair(dry_run=True).steps == {"adopt": 3}
    assert states(lab, "recording") == {"pulled": 7}
    assert Recording().repair().steps == {"adopt": 3}
    assert states(lab, "recording") == {"pulled": 10}


# --- several subscribers, concurrency -----------------------------------------------------------------------


def test_two_subscribers_hold_rows_independently(lab: Lab, servers: list[MariaDBServer],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fill_pipeline(lab.pipeline)
    First = lab.linked("Recording")
    First().pull()
    monkeypatch.setitem(dj.config, "database.host", servers[2].address)
    Second = lab.linked("Recording")
    assert Second().pull({"subject": "s0"}).pulled == 5
    ob = outbound_name(lab, "recording")
    assert [int(n) for (n,) in lab.source.query(  # type: ignore[call-overload]
        f"SELECT COUNT(*) FROM `{lab.outbound_schema}`.`{ob}` GROUP BY subscriber ORDER BY 1")] == [5, 10]
    source_side = lab.source_link("Recording")
    for table in ("__scan__channel", "__scan"):  # finish-deletion deletes an entity's parts, not other children
        lab.source.execute(f"DELETE FROM `{lab.source_schema}`.`{table}` WHERE subject='s0' AND recording=0")
    source_side.request_deletion({"subject": "s0", "recording": 0})
    First().refresh()
    (First() & {"subject": "s0", "recording": 0}).delete()
    report = source_side.finish_deletion()
    assert (report.outbound_rows, report.source_rows, report.kept) == (1, 0, 1)  # the second still holds it
    (Second() & {"subject": "s0", "recording": 0}).delete()
    assert source_side.finish_deletion().source_rows == 1
    assert count(lab.source, lab.source_schema, "recording", "subject='s0' AND recording=0") == 0
    assert_invariant(lab, "recording", "subject, recording", servers[2])


def test_finish_deletion_cascades_into_dependent_tables(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull({"subject": "s0"})
    source_side = lab.source_link("Recording")
    source_side.request_deletion({"subject": "s0"}, "recording in (2, 3)")
    (Recording() & {"subject": "s0"} & "recording in (2, 3)").delete()
    report = source_side.finish_deletion()
    assert (report.source_rows, report.dependent_rows) == (2, 2 + 4)  # 2 Scan rows with 2 channels each
    assert count(lab.source, lab.source_schema, "recording") == 8
    assert count(lab.source, lab.source_schema, "__scan", "subject='s0' AND recording IN (2, 3)") == 0
    assert count(lab.source, lab.source_schema, "__scan__channel") == 16
    assert states(lab, "recording") == {"pulled": 3}


def test_finish_deletion_refuses_when_a_dependent_row_is_held_by_another_link(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording, Scan = lab.linked("Recording"), lab.linked("Scan")
    Recording().pull({"subject": "s0"})
    Scan().pull({"subject": "s0", "recording": 2})  # a subscriber holds a Scan row that depends on recording 2
    source_side = lab.source_link("Recording")
    source_side.request_deletion({"subject": "s0"}, "recording in (1, 2)")
    (Recording() & {"subject": "s0"} & "recording in (1, 2)").delete()
    with pytest.raises(IntegrityViolation, match="still held through an outbound table.*changed nothing"):
        source_side.finish_deletion()
    assert states(lab, "recording") == {"pulled": 3, "deletion_approved": 2}
    assert count(lab.source, lab.source_schema, "recording") == 10
    assert count(lab.source, lab.source_schema, "__scan") == 10 and count(lab.source, lab.source_schema,
                                                                           "__scan__channel") == 20


def test_concurrent_pulls_of_one_link_do_not_duplicate(lab: Lab) -> None:
    fill_pipeline(lab.pipeline, subjects=4, recordings=10)
    Recording = lab.linked("Recording")
    assert len(Recording()) == 0  # declares the local tables
    reports: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(lab.linked("Recording")().pull(batch_size=3, progress=False).pulled)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(reports) == 40 and len(Recording()) == 40
    assert states(lab, "recording") == {"pulled": 40}


def test_pull_delete_and_request_at_the_same_time(lab: Lab) -> None:
    """A pull (slowed down), a local delete and a source-side request run together: all finish, and the
    outbound table agrees with the local table afterwards."""
    fill_pipeline(lab.pipeline, subjects=4, recordings=10)
    Recording = lab.linked("Recording")
    Recording().pull({"subject": "s0"})
    errors: list[BaseException] = []

    def guarded(action: Any) -> Any:
        def run() -> None:
            try:
                action()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
        return threading.Thread(target=run)

    slow = lambda name: time.sleep(0.05)  # noqa: E731 - a checkpoint that widens every window
    threads = [
        guarded(lambda: lab.linked("Recording")().pull(batch_size=2, progress=False, checkpoint=slow)),
        guarded(lambda: (lab.linked("Recording")() & {"subject": "s0"} & "recording < 5").delete()),
        guarded(lambda: lab.source_link("Recording").request_deletion({"subject": "s0"})),
        guarded(lambda: lab.source_link("Recording").request_deletion({"subject": "s2"})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Recording().repair(progress=False).changed == 0  # nothing left to reconcile
    assert_invariant(lab, "recording", "subject, recording")
    assert len(Recording()) == 35 and sum(states(lab, "recording").values()) == 35 + states(lab, "recording").get(
        "deletion_approved", 0)


def test_concurrent_first_uses_agree_on_one_subscriber_name(lab: Lab) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from djshare.link.local import subscriber_id
    from djshare.sql.connection import ServerAddress, Session

    lab.local.execute(f"CREATE DATABASE `{lab.local_schema}`")
    address = ServerAddress(lab.local.host, lab.local.port, lab.local.admin_user, lab.local.admin_password)

    def name(_: int) -> str:
        with Session(address) as session:
            return subscriber_id(session, lab.local_schema)

    with ThreadPoolExecutor(6) as pool:
        assert len(set(pool.map(name, range(12)))) == 1


def test_status_counts(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull({"subject": "s0"})
    lab.source_link("Recording").request_deletion({"subject": "s0", "recording": 1})
    assert Recording().link_status() == {
        Outbound.PULLING.value: 0, "pulled": 4, "deletion_requested": 1, "deletion_approved": 0, "local": 5}
    status = lab.source_link("Recording").status()
    assert list(status.values()) == [{"deletion_requested": 1, "pulled": 4}]


# --- grants -----------------------------------------------------------------------------------------------


def test_regular_source_user_cannot_delete_held_rows_or_touch_outbound(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Recording = lab.linked("Recording")
    Recording().pull({"subject": "s0"})
    with pymysql.connect(host=lab.source.host, port=lab.source.port, user=lab.users.regular_user,
                         password=lab.users.regular_password, autocommit=True) as connection:
        cursor = connection.cursor()
        with pytest.raises(pymysql.err.IntegrityError, match="foreign key constraint fails"):
            cursor.execute(f"DELETE FROM `{lab.source_schema}`.`recording` WHERE subject = 's0'")
        for table in ("__scan__channel", "__scan", "recording"):  # rows nobody holds can go
            cursor.execute(f"DELETE FROM `{lab.source_schema}`.`{table}` WHERE subject = 's1'")
        assert cursor.rowcount == 5
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cursor.execute(f"DELETE FROM `{lab.outbound_schema}`.`{outbound_name(lab, 'recording')}`")
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cursor.execute(f"SELECT * FROM `{lab.outbound_schema}`.`{outbound_name(lab, 'recording')}`")
    assert len(Recording()) == 5


def test_a_row_larger_than_the_local_packet_is_one_clear_error(lab: Lab, monkeypatch: pytest.MonkeyPatch,
                                                               recwarn: pytest.WarningsRecorder) -> None:
    """A local server with a 1 MB max_allowed_packet and a 1.5 MB blob: one error naming the limit (a positive
    size), no driver warning, and nothing held on the source."""
    from djshare.errors import DjshareError
    from tests.servers import mariadb_servers

    lab.pipeline["Subject"].insert1({"subject": "big"})
    lab.pipeline["Recording"].insert1({"subject": "big", "recording": 0, "score": 1.0,
                                       "data": np.random.default_rng(2).integers(0, 255, 1_500_000, dtype=np.uint8)})
    with mariadb_servers(1, max_allowed_packet="1M", names=("small",)) as (small,):
        monkeypatch.setitem(dj.config, "database.host", small.address)
        with pytest.raises(DjshareError, match=r"more than the [0-9,]+ bytes the server at .* accepts") as info:
            lab.linked("Recording")().pull(progress=False)
        assert "-" not in str(info.value).split("more than the ")[1].split(" bytes")[0]
    assert [str(w.message) for w in recwarn if "pymysql" in w.filename] == []
    assert states(lab, "recording") == {}

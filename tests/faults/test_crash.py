"""Stop a command between any two steps (or inside one) and check that re-running it, or `repair`,
converges: no local row without an outbound row, no part rows without their master, nothing lost."""

from __future__ import annotations

from typing import Any

import pytest

import djshare.link.delete
import djshare.link.pull
from tests.conftest import Lab, fill_pipeline
from tests.crash import Crash, crash_at
from tests.integration.checks import count, digest, invariant_holds


def assert_consistent(lab: Lab, table: str = "__scan") -> None:
    outbound = f"{lab.source_schema}_{table.lstrip('_')}_outbound"
    assert invariant_holds(lab.source, lab.local, lab.local_schema, table, lab.outbound_schema, outbound,
                           "subject, recording") == []
    if table == "__scan":  # a master is never without its part rows, nor a part row without its master
        assert count(lab.local, lab.local_schema, "__scan__channel") == 2 * count(lab.local, lab.local_schema, "__scan")


def states(lab: Lab) -> dict[str, int]:
    rows = lab.source.query(f"SELECT state, COUNT(*) FROM `{lab.outbound_schema}`.`{lab.source_schema}_scan_outbound` "
                            "GROUP BY state")
    return {str(s): int(n) for s, n in rows}  # type: ignore[call-overload]


def assert_fully_pulled(lab: Lab, total: int) -> None:
    assert states(lab) == {"pulled": total}
    for table in ("__scan", "__scan__channel"):
        assert digest(lab.local, lab.local_schema, table) == digest(lab.source, lab.source_schema, table)


@pytest.mark.parametrize("step", ["record_pulling", "insert_local", "mark_pulled"])
@pytest.mark.parametrize("recovery", ["rerun", "repair_then_pull"])
def test_pull_crash_after_each_step(lab: Lab, step: str, recovery: str) -> None:
    fill_pipeline(lab.pipeline, subjects=2, recordings=6)
    Scan = lab.linked("Scan")
    with pytest.raises(Crash):
        Scan().pull(batch_size=5, checkpoint=crash_at(step, occurrence=2), progress=False)
    assert_consistent(lab)
    if recovery == "repair_then_pull":
        Scan().repair(progress=False)
        assert_consistent(lab)
        assert "pulling" not in states(lab)
    Scan().pull(progress=False)
    assert_fully_pulled(lab, 12)
    assert Scan().repair(progress=False).changed == 0


def test_pull_failing_inside_the_local_transaction_leaves_no_partial_rows(lab: Lab,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fill_pipeline(lab.pipeline, subjects=2, recordings=3)
    Scan = lab.linked("Scan")
    real_copy = djshare.link.pull.copy_rows

    def copy_then_fail(source: Any, target: Any, table: Any, *args: Any, **kwargs: Any) -> int:
        copied = real_copy(source, target, table, *args, **kwargs)
        if table.name.endswith("__channel"):
            raise Crash("after copying part rows, before commit")
        return copied

    monkeypatch.setattr(djshare.link.pull, "copy_rows", copy_then_fail)
    with pytest.raises(Crash):
        Scan().pull(progress=False)
    assert count(lab.local, lab.local_schema, "__scan") == 0  # the local transaction rolled back
    assert states(lab) == {"pulling": 6}
    monkeypatch.undo()
    Scan().pull(progress=False)
    assert_fully_pulled(lab, 6)


@pytest.mark.parametrize("step", ["delete_local", "remove_outbound"])
def test_local_delete_crash(lab: Lab, step: str) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    Scan().pull(progress=False)
    with pytest.raises(Crash):
        (Scan() & {"subject": "s0"}).delete(checkpoint=crash_at(step))
    assert_consistent(lab)
    assert count(lab.local, lab.local_schema, "__scan") == 5
    Scan().repair(progress=False)
    assert states(lab) == {"pulled": 5}
    assert_consistent(lab)


@pytest.mark.parametrize("step", ["delete_local", "approve_deletion"])
def test_requested_delete_crash(lab: Lab, step: str) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    Scan().pull(progress=False)
    lab.source_link("Scan").request_deletion({"subject": "s1"})
    with pytest.raises(Crash):
        (Scan() & {"subject": "s1"}).delete(checkpoint=crash_at(step))
    assert_consistent(lab)
    Scan().repair(progress=False)
    assert states(lab) == {"pulled": 5, "deletion_approved": 5}
    report = lab.source_link("Scan").finish_deletion()
    assert (report.outbound_rows, report.source_rows) == (5, 5)
    assert_consistent(lab)


def test_finish_deletion_crash_between_batches(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_pipeline(lab.pipeline, subjects=2, recordings=6)
    Scan = lab.linked("Scan")
    Scan().pull(progress=False)
    source_side = lab.source_link("Scan")
    source_side.request_deletion()
    Scan().delete()
    monkeypatch.setattr(djshare.link.delete, "BATCH", 5)
    with pytest.raises(Crash):
        source_side.finish_deletion(checkpoint=crash_at("finish_deletion"))
    assert count(lab.source, lab.source_schema, "__scan") == 7
    assert states(lab) == {"deletion_approved": 7}
    assert source_side.finish_deletion().source_rows == 7
    assert count(lab.source, lab.source_schema, "__scan__channel") == 0
    assert states(lab) == {}

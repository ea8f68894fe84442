"""A pull whose source connection drops or goes silent fails with one djshare error, releases the link, and a
re-run converges."""

from __future__ import annotations

import threading
import time

import pytest

from djshare import LazySchema, Link
from djshare.errors import InterruptedOperation
from tests.conftest import Lab, fill_pipeline
from tests.faults.test_crash import assert_consistent, assert_fully_pulled
from tests.proxy import proxy


def linked_through(lab: Lab, address: str, batch_size: int = 5) -> type:
    cls = type("Scan", (), {"__doc__": "The local table."})
    return Link(lab.local_lazy(), LazySchema(lab.source_schema, host=address), batch_size=batch_size,
                lock_timeout=20)(cls)


def test_a_connection_cut_mid_pull_is_one_error_and_a_rerun_converges(lab: Lab,
                                                                    capfd: pytest.CaptureFixture[str]) -> None:
    fill_pipeline(lab.pipeline, subjects=4, recordings=25)  # the pull's source connection reads about 45 KB
    with proxy(lab.source.host, lab.source.port, cut_after=10_000) as cutting, \
            pytest.raises(InterruptedOperation, match="Lost the connection"):
        linked_through(lab, cutting.address)().pull(progress=False)
    assert "AttributeError" not in capfd.readouterr().err  # no driver noise behind the error
    assert_consistent(lab)
    lab.linked("Scan")().pull(progress=False)
    assert_fully_pulled(lab, 100)


def test_a_silent_partition_fails_after_the_timeout_and_frees_the_link(lab: Lab,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fill_pipeline(lab.pipeline, subjects=5, recordings=20)
    monkeypatch.setenv("DJSHARE_TIMEOUT", "3")
    failed: list[BaseException] = []

    def pull_through(address: str) -> None:
        try:
            linked_through(lab, address)().pull(progress=False)
        except BaseException as error:  # noqa: BLE001 - judged below
            failed.append(error)

    with proxy(lab.source.host, lab.source.port, freeze_after=10_000) as silent:  # part way through the pull
        worker = threading.Thread(target=pull_through, args=(silent.address,), daemon=True)
        worker.start()
        worker.join(timeout=60)  # if it hangs after all, leaving the block closes the proxy's sockets: no hang here
        hung = worker.is_alive()
    worker.join(timeout=30)
    assert not hung, "the pull did not give up on the silent server"
    assert len(failed) == 1 and isinstance(failed[0], InterruptedOperation), failed
    assert "Lost the connection" in str(failed[0])
    assert_consistent(lab)
    monkeypatch.delenv("DJSHARE_TIMEOUT")
    started = time.monotonic()
    lab.linked("Scan", lock_timeout=30)().pull(progress=False)  # the server ended the silent session and its lock
    assert time.monotonic() - started < 20
    assert_fully_pulled(lab, 100)


def test_datajoints_own_connection_gives_up_on_a_silent_server(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DataJoint connection a 0.14 link uses (restrictions, declarations) has the same timeout."""
    import datajoint as dj

    monkeypatch.setenv("DJSHARE_TIMEOUT", "2")
    with proxy(lab.source.host, lab.source.port) as silent:
        connection = LazySchema(lab.source_schema, host=silent.address).connection
        assert connection.query("SELECT 1").fetchall() == ((1,),)
        silent.freeze()
        started = time.monotonic()
        with pytest.raises(dj.errors.LostConnectionError):
            connection.query("SELECT 2", reconnect=False)
        assert time.monotonic() - started < 15

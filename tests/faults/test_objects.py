"""Crashes around external-object copies: at most unreferenced objects are left, gc removes them, and
re-running the pull converges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import djshare.stores.copying
from djshare import LazySchema, gc
from djshare.stores.spec import StoreSpec
from tests.crash import Crash, crash_at
from tests.integration.test_stores import make_store_lab, s3, same_samples  # noqa: F401 - fixtures

__all__ = ["make_store_lab", "s3"]


def journal(world: Any) -> int:
    return int(world.lab.local.query(
        f"SELECT COUNT(*) FROM `{world.lab.local_schema}`.`~djshare_objects`")[0][0])


def local_files(world: Any) -> list[Path]:
    """Every object file in the local file stores (temporary files of interrupted writes included)."""
    return [p for name in ("loc_blobs", "loc_files")
            for p in Path(StoreSpec.from_config(name, world.local_stores, "t").location).rglob("*") if p.is_file()]


@pytest.mark.parametrize("local_kind", ["file", "s3"])
def test_crash_after_objects_before_rows(make_store_lab: Any, local_kind: str, tmp_path: Path) -> None:
    world = make_store_lab("file", local_kind)
    Sample = world.linked()
    with pytest.raises(Crash):
        Sample().pull(batch_size=2, checkpoint=crash_at("copy_objects", occurrence=2))
    assert len(Sample()) == 2  # the first batch committed; the second copied objects but inserted no rows
    orphans = gc(LazySchema(world.lab.local_schema, stores=world.local_stores), dry_run=True).deleted
    assert len(orphans) == 2 * 3 + 1  # batch 2: two samples x (signal + 2 chunks) + one attachment
    gc(LazySchema(world.lab.local_schema, stores=world.local_stores))
    Sample().pull()
    same_samples(world, Sample(), tmp_path / "downloads")
    assert gc(LazySchema(world.lab.local_schema, stores=world.local_stores)).deleted == []


def test_rerun_without_gc_reuses_copied_objects(make_store_lab: Any, tmp_path: Path) -> None:
    world = make_store_lab("s3", "file")
    Sample = world.linked()
    with pytest.raises(Crash):
        Sample().pull(checkpoint=crash_at("copy_objects"))
    assert len(Sample()) == 0
    report = Sample().pull()
    assert report.pulled == 6 and report.objects == 0  # every object was already in place
    same_samples(world, Sample(), tmp_path / "downloads")


def test_failure_part_way_through_the_copies(make_store_lab: Any, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """Some objects of a batch are written, then one copy fails: no rows, journal has them all, gc cleans."""
    world = make_store_lab("file", "file")
    real = djshare.stores.copying.Spooled
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise Crash("store went away")
        return real(*args, **kwargs)

    Sample = world.linked()
    with monkeypatch.context() as patch:
        patch.setattr(djshare.stores.copying, "Spooled", flaky)
        with pytest.raises(Crash):
            Sample().pull()
    assert len(Sample()) == 0
    assert journal(world) == 6 * 3 + 3
    assert 0 < len(local_files(world)) < 6 * 3 + 3
    removed = gc(LazySchema(world.lab.local_schema, stores=world.local_stores)).deleted
    assert len(removed) == 6 * 3 + 3 and journal(world) == 0
    assert local_files(world) == []
    Sample().pull()
    same_samples(world, Sample(), tmp_path / "downloads")

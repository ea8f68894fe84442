"""External storage in links: blob@, attach@, filepath@ between file and S3 stores (moto), store mapping,
gc, reading objects in place, and what goes wrong with stores."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare import LazySchema, gc
from djshare.errors import AuthenticationError, ConfigurationError, DjshareError, IntegrityViolation
from djshare.stores.formats.dj014 import ExternalRow, object_path
from djshare.stores.objects import MissingObjectError, open_store
from djshare.stores.spec import StoreNotConfiguredError, StoreSpec
from tests.conftest import Lab
from tests.integration.checks import count, digest
from tests.pipeline import build_external_pipeline, fill_external
from tests.servers import S3Server, s3_server

MAPPING = {"loc_blobs": "src_blobs", "loc_files": "src_files", "loc_raw": "src_raw"}
_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


def store(kind: str, name: str, s3: S3Server, root: Path, bucket: str) -> dict[str, Any]:
    if kind == "file":
        (root / name).mkdir(parents=True, exist_ok=True)
        return {"protocol": "file", "location": str(root / name)}
    return {"protocol": "s3", "endpoint": s3.endpoint, "bucket": bucket, "location": f"lab/{name}",
            "access_key": s3.access_key, "secret_key": s3.secret_key, "secure": False}


@dataclass
class StoreLab:
    lab: Lab
    source_stores: dict[str, dict[str, Any]]
    local_stores: dict[str, dict[str, Any]]
    pipeline: dict[str, Any]
    root: Path

    def linked(self, name: str = "Sample", **kwargs: Any) -> Any:
        kwargs.setdefault("stores", MAPPING)
        return self.lab.linked(name, source_stores=self.source_stores, **kwargs)

    def source_objects(self, store: str) -> list[tuple[ExternalRow, str]]:
        return self._objects(self.lab.source, self.lab.source_schema, store, self.source_stores)

    def local_objects(self, store: str, schema: str | None = None) -> list[tuple[ExternalRow, str]]:
        return self._objects(self.lab.local, schema or self.lab.local_schema, store, self.local_stores)

    def _objects(self, server: Any, schema: str, store: str, stores: dict[str, Any]) -> list[tuple[ExternalRow, str]]:
        spec = StoreSpec.from_config(store, stores, "test")
        rows = server.query(f"SELECT hash, size, attachment_name, filepath, contents_hash FROM `{schema}`."
                            f"`~external_{store}` ORDER BY hash")
        found = [ExternalRow(bytes(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]
        return [(row, object_path(spec, schema, row)) for row in found]

    def read(self, stores: dict[str, Any], store: str, path: str) -> bytes:
        return b"".join(open_store(StoreSpec.from_config(store, stores, "test")).read(path))


@pytest.fixture
def make_store_lab(lab: Lab, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(source_kind: str = "file", local_kind: str = "file", fill: bool = True) -> StoreLab:
        n = next(_buckets)
        source_bucket, local_bucket = f"source-{n}", f"local-{n}"
        for kind, bucket in ((source_kind, source_bucket), (local_kind, local_bucket)):
            if kind == "s3":
                s3.create_bucket(bucket)
        (tmp_path / "stage").mkdir(exist_ok=True)
        source_stores = {
            "src_blobs": store(source_kind, "src_blobs", s3, tmp_path, source_bucket),
            "src_files": store(source_kind, "src_files", s3, tmp_path, source_bucket),
            "src_raw": dict(store("file", "src_raw", s3, tmp_path, ""), stage=str(tmp_path / "stage")),
        }
        (tmp_path / "local_stage").mkdir(exist_ok=True)
        local_stores = {
            "loc_blobs": store(local_kind, "loc_blobs", s3, tmp_path, local_bucket),
            "loc_files": store(local_kind, "loc_files", s3, tmp_path, local_bucket),
            "loc_raw": dict(store("file", "loc_raw", s3, tmp_path, ""), stage=str(tmp_path / "local_stage")),
        }
        monkeypatch.setitem(dj.config, "stores", {**source_stores, **local_stores})
        monkeypatch.setenv("DJ_SUPPORT_FILEPATH_MANAGEMENT", "TRUE")
        pipeline = build_external_pipeline(lab.pipeline["schema"].connection, lab.source_schema)
        files = tmp_path / "files"
        files.mkdir(exist_ok=True)
        if fill:
            fill_external(pipeline, files)
        return StoreLab(lab, source_stores, local_stores, pipeline, tmp_path)

    return make


def same_samples(world: StoreLab, linked: Any, download: Path) -> None:
    source = world.pipeline["Sample"]
    download.mkdir(exist_ok=True)
    for key in linked.fetch("KEY", order_by="sample"):
        mine = (linked & key).fetch1(download_path=str(download / "mine"))
        theirs = (source & key).fetch1(download_path=str(download / "theirs"))
        assert np.array_equal(mine["signal"], theirs["signal"])
        if theirs["document"] is None:
            assert mine["document"] is None
        else:
            assert Path(mine["document"]).name == Path(theirs["document"]).name
            assert Path(mine["document"]).read_bytes() == Path(theirs["document"]).read_bytes()
    for key in linked.Piece.fetch("KEY"):
        assert np.array_equal((linked.Piece & key).fetch1("chunk"), (source.Piece & key).fetch1("chunk"))


@pytest.mark.parametrize(("source_kind", "local_kind"), [("file", "file"), ("file", "s3"), ("s3", "file"),
                                                         ("s3", "s3")])
def test_pull_copies_objects_store_to_store(make_store_lab: Any, source_kind: str, local_kind: str,
                                            tmp_path: Path) -> None:
    world = make_store_lab(source_kind, local_kind)
    Sample = world.linked()
    report = Sample().pull()
    assert (report.pulled, report.part_rows) == (6, 12)
    lab = world.lab
    for source_store, local_store in (("src_blobs", "loc_blobs"), ("src_files", "loc_files")):
        assert digest(lab.local, lab.local_schema, f"~external_{local_store}") == digest(
            lab.source, lab.source_schema, f"~external_{source_store}")
        theirs = world.source_objects(source_store)
        mine = world.local_objects(local_store)
        assert [r for r, _ in mine] == [r for r, _ in theirs] and len(mine) > 0
        for (_, their_path), (_, my_path) in zip(theirs, mine, strict=True):  # byte for byte
            assert world.read(world.local_stores, local_store, my_path) == world.read(
                world.source_stores, source_store, their_path)
    assert report.objects == len(world.local_objects("loc_blobs")) + len(world.local_objects("loc_files"))
    same_samples(world, Sample(), tmp_path / "downloads")
    again = Sample().pull()
    assert (again.pulled, again.objects) == (0, 0)


def test_attachments_keep_their_names(make_store_lab: Any) -> None:
    world = make_store_lab()
    world.linked()().pull()
    names = sorted(r.attachment_name for r, _ in world.local_objects("loc_files"))
    assert names == ["notes 0.bin", "notes 2.bin", "notes 4.bin"]
    assert all(path.endswith("." + row.attachment_name) for row, path in world.local_objects("loc_files"))


def test_filepath_objects(make_store_lab: Any) -> None:
    world = make_store_lab(fill=False)
    stage = Path(world.source_stores["src_raw"]["stage"])
    for i in range(3):
        target = stage / "session" / f"raw_{i}.dat"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(range(256)) * (i + 1))
        world.pipeline["Raw"].insert1({"raw_id": i, "raw": str(target)})
    Raw = world.linked("Raw")
    assert Raw().pull().objects == 3
    for row, path in world.local_objects("loc_raw"):
        assert path.startswith(world.local_stores["loc_raw"]["location"]) and row.filepath is not None
        assert hashlib.md5(Path(path).read_bytes()).digest() == row.contents_hash
    fetched = (Raw & {"raw_id": 2}).fetch1("raw")
    assert Path(fetched).read_bytes() == bytes(range(256)) * 3


def test_store_names_differ_by_mapping_and_unmapped_stores_are_refused(make_store_lab: Any) -> None:
    world = make_store_lab()
    Sample = world.linked()
    assert len(Sample()) == 0  # declares the local tables
    signal = world.lab.local.query(
        "SELECT column_comment FROM information_schema.columns WHERE table_schema=%s AND table_name='sample' "
        "AND column_name='signal'", (world.lab.local_schema,))
    assert signal[0][0].startswith(":blob@loc_blobs:")
    dj.config["stores"] = dict(world.local_stores)  # the local side knows only its own stores
    Unmapped = world.lab.linked("Sample", local_schema=world.lab.local_lazy(world.lab.local_schema + "b"),
                                source_stores=world.source_stores)
    with pytest.raises(StoreNotConfiguredError, match="Store `src_blobs` is used by the local table but not "
                                                       "configured on the local side"):
        Unmapped()


def test_source_store_not_configured_changes_nothing(make_store_lab: Any) -> None:
    world = make_store_lab()
    stores = {k: v for k, v in world.source_stores.items() if k != "src_files"}
    Sample = world.lab.linked("Sample", source_stores=stores, stores=MAPPING)
    with pytest.raises(StoreNotConfiguredError, match="Store `src_files`.*source side"):
        Sample()
    assert world.lab.local_schema not in {r[0] for r in world.lab.local.query("SHOW DATABASES")}


def test_a_mapping_to_a_store_the_source_does_not_have_is_refused(make_store_lab: Any) -> None:
    world = make_store_lab()
    Sample = world.lab.linked("Sample", source_stores=world.source_stores, stores={**MAPPING, "loc_x": "src_typo"})
    with pytest.raises(ConfigurationError, match="names source store `src_typo`, which schema .* does not have "
                                                  r"\(its stores: `src_blobs`, `src_files`, `src_raw`\).*Nothing was "
                                                  "changed"):
        Sample()
    assert world.lab.local_schema not in {r[0] for r in world.lab.local.query("SHOW DATABASES")}


def outbound_rows(world: StoreLab) -> int:
    lab = world.lab
    return count(lab.source, lab.outbound_schema, f"{lab.source_schema}_sample_outbound")


def _break(world: StoreLab, how: str) -> str:
    row, path = world.source_objects("src_blobs")[2]
    spec = StoreSpec.from_config("src_blobs", world.source_stores, "test")
    store = open_store(spec)
    if how == "missing":
        store.delete(path)
    else:  # same size, other bytes
        data = bytearray(world.read(world.source_stores, "src_blobs", path))
        data[-1] ^= 0xFF
        import io

        store.write(path, io.BytesIO(bytes(data)), len(data))
    return path


def journal_holds_only_written_objects(world: StoreLab) -> bool:
    """Every object journal row of the local schema names an object that is in its local store (a refused batch
    leaves none for objects it never wrote), and gc then removes them all."""
    rows = world.lab.local.query(f"SELECT `store`, `path` FROM `{world.lab.local_schema}`.`~djshare_objects`")
    written = all(open_store(StoreSpec.from_config(store, world.local_stores, "t")).exists(path)
                  for store, path in rows)
    gc(world.lab.local_lazy())
    return written and count(world.lab.local, world.lab.local_schema, "~djshare_objects") == 0


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_missing_object_on_the_source_inserts_nothing(make_store_lab: Any, kind: str) -> None:
    world = make_store_lab(kind, "file")
    path = _break(world, "missing")
    Sample = world.linked()
    with pytest.raises(MissingObjectError, match=f"{path}.*missing.*entity sample=.*Nothing was inserted"):
        Sample().pull()
    assert len(Sample()) == 0
    assert count(world.lab.local, world.lab.local_schema, "~external_loc_blobs") == 0
    assert outbound_rows(world) == 0  # the refused batch's pulling rows were removed: the source is as it was
    assert journal_holds_only_written_objects(world)


def test_checksum_mismatch_inserts_nothing(make_store_lab: Any) -> None:
    world = make_store_lab("s3", "s3")
    path = _break(world, "corrupt")
    Sample = world.linked()
    with pytest.raises(IntegrityViolation, match=f"{path}.*MD5 .* where its ~external row says"):
        Sample().pull()
    assert len(Sample()) == 0 and len(world.local_objects("loc_blobs")) == 0
    assert not open_store(StoreSpec.from_config("loc_blobs", world.local_stores, "t")).exists(
        object_path(StoreSpec.from_config("loc_blobs", world.local_stores, "t"), world.lab.local_schema,
                    world.source_objects("src_blobs")[2][0]))


@pytest.mark.parametrize("side", ["source", "local"])
def test_wrong_store_credentials(make_store_lab: Any, side: str) -> None:
    world = make_store_lab("s3", "s3")
    stores = world.source_stores if side == "source" else world.local_stores
    for spec in stores.values():
        if spec["protocol"] == "s3":
            spec["secret_key"] = "not-the-secret-key"
    dj.config["stores"] = {**world.source_stores, **world.local_stores}
    Sample = world.linked()
    with pytest.raises(AuthenticationError, match="refused the credentials.*check access_key and secret_key") as info:
        Sample().pull()
    assert "not-the-secret-key" not in str(info.value)
    assert len(Sample()) == 0
    assert outbound_rows(world) == 0  # no pulling row blocks the source lab's DELETE
    if side == "source":  # (with the local store refusing us, it cannot say what is there: the rows wait for gc)
        assert journal_holds_only_written_objects(world)


def test_a_refused_batch_whose_undo_fails_is_left_to_repair(make_store_lab: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The undo of a refused batch is one source transaction; if the source goes away then, the pulling rows stay
    and `repair` removes them (the protocol's PULLING + REPAIR)."""
    import djshare.link.outbound
    from djshare.errors import InterruptedOperation

    world = make_store_lab("file", "file")
    _break(world, "missing")
    Sample = world.linked()

    def lost(*args: Any) -> int:
        raise InterruptedOperation("Lost the connection (test)")

    with monkeypatch.context() as patched, pytest.raises(MissingObjectError):
        patched.setattr(djshare.link.outbound.OutboundSource, "remove", lost)
        Sample().pull()
    assert outbound_rows(world) > 0 and len(Sample()) == 0
    Sample().repair()
    assert outbound_rows(world) == 0


def test_gc_after_local_deletion_and_handshake(make_store_lab: Any, tmp_path: Path) -> None:
    world = make_store_lab("file", "s3")
    Sample = world.linked()
    Sample().pull()
    before = {p for _, p in world.local_objects("loc_blobs")} | {p for _, p in world.local_objects("loc_files")}
    local = LazySchema(world.lab.local_schema, stores=world.local_stores)
    assert gc(local).deleted == []  # everything is referenced
    (Sample() & "sample < 2").delete()
    world.lab.source_link("Sample").request_deletion({"sample": 4})
    Sample().refresh()
    (Sample() & Sample().DeletionRequested()).delete()
    dry = gc(local, dry_run=True)
    assert len(dry.deleted) == 3 * 3 + 1 + 1  # 3 samples x (signal + 2 chunks), 2 attachments (samples 0, 4)
    spec = StoreSpec.from_config("loc_blobs", world.local_stores, "t")
    assert all(open_store(spec).exists(p) for p in dry.deleted if "loc_blobs" in p)
    report = gc(local)
    assert sorted(report.deleted) == sorted(dry.deleted)
    after = {p for _, p in world.local_objects("loc_blobs")} | {p for _, p in world.local_objects("loc_files")}
    assert after == before - set(report.deleted)
    assert not any(open_store(spec).exists(p) for p in report.deleted if "loc_blobs" in p)
    same_samples(world, Sample(), tmp_path / "downloads")  # what is left still reads back
    assert len(world.source_objects("src_blobs")) == 18  # the source lost nothing
    assert gc(local).deleted == []


def test_gc_removes_temporaries_of_copies_killed_part_way(make_store_lab: Any) -> None:
    """A kill -9 during an object copy leaves its temporary file (`.djshare-...`) next to the object; gc removes
    those that nobody has touched for an hour (a copy in progress writes to its file all the time)."""
    import os
    import time

    world = make_store_lab("file", "file")
    world.linked()().pull()
    folder = Path(world.local_objects("loc_blobs")[0][1]).parent
    stale, fresh = folder / ".djshare-killed", folder / ".djshare-running"
    stale.write_bytes(b"half an object")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    local = LazySchema(world.lab.local_schema, stores=world.local_stores)
    assert gc(local, dry_run=True).temporaries == [str(stale)] and stale.exists()
    report = gc(local)
    assert report.temporaries == [str(stale)] and report.deleted == []
    assert not stale.exists() and fresh.exists()


def test_gc_keeps_an_object_another_entity_still_references(make_store_lab: Any) -> None:
    world = make_store_lab("file", "file", fill=False)
    same = np.arange(50.0)
    world.pipeline["Sample"].insert([{"sample": 1, "signal": same}, {"sample": 2, "signal": same}])
    Sample = world.linked()
    Sample().pull()
    assert len(world.local_objects("loc_blobs")) == 1  # one object, two rows
    (Sample() & {"sample": 1}).delete()
    local = LazySchema(world.lab.local_schema, stores=world.local_stores)
    assert gc(local).deleted == []
    assert np.array_equal((Sample & {"sample": 2}).fetch1("signal"), same)
    (Sample() & {"sample": 2}).delete()
    assert len(gc(local).deleted) == 1


def test_gc_keeps_files_another_local_schema_references(make_store_lab: Any) -> None:
    """Two local schemas link the same filepath table with stores at the same place: filepath objects have no
    schema in their path, so they are the same files. gc of one schema must not delete what the other uses, nor
    what a plain DataJoint schema on that server references."""
    world = make_store_lab(fill=False)
    stage = Path(world.source_stores["src_raw"]["stage"])
    for i, name in enumerate(["r5.dat", "run 1/Daten ü.dat"]):
        (stage / "runs" / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / "runs" / name).write_bytes(bytes(range(256)) * (i + 1))
        world.pipeline["Raw"].insert1({"raw_id": i, "raw": str(stage / "runs" / name)})
    first = world.linked("Raw")
    assert first().pull().objects == 2  # written (and journaled) by the first schema's pull
    second = world.lab.linked("Raw", local_schema=world.lab.local_lazy(world.lab.local_schema + "_b"),
                              source_stores=world.source_stores, stores=MAPPING)
    assert second().pull().objects == 0  # present already: the same files
    (first() & "raw_id >= 0").delete()
    assert gc(LazySchema(world.lab.local_schema, stores=world.local_stores)).deleted == []
    for key in second().fetch("KEY"):
        assert Path((second() & key).fetch1("raw")).exists()  # DataJoint still reads them in the other schema
    (second() & "raw_id >= 0").delete()  # neither journaled them: they stay (they were there before its pull)
    assert gc(LazySchema(world.lab.local_schema + "_b", stores=world.local_stores)).deleted == []
    # a plain DataJoint schema that references a file the first schema's pull wrote
    plain_stage = Path(world.local_stores["loc_raw"]["stage"])
    third = world.lab.linked("Raw", local_schema=world.lab.local_lazy(world.lab.local_schema + "_c"),
                             source_stores=world.source_stores, stores=MAPPING)
    (stage / "runs" / "r7.dat").write_bytes(b"seven" * 50)
    world.pipeline["Raw"].insert1({"raw_id": 7, "raw": str(stage / "runs" / "r7.dat")})
    assert third().pull().objects == 1  # r7.dat written and journaled by this pull
    (plain_stage / "runs").mkdir(parents=True, exist_ok=True)
    (plain_stage / "runs" / "r7.dat").write_bytes(b"seven" * 50)
    plain = dj.Schema(world.lab.local_schema + "_plain", connection=third.connection)

    @plain
    class Kept(dj.Manual):
        definition = """
        kept : int
        ---
        raw : filepath@loc_raw
        """

    Kept.insert1({"kept": 1, "raw": str(plain_stage / "runs" / "r7.dat")})
    (third() & "raw_id = 7").delete()
    assert gc(LazySchema(world.lab.local_schema + "_c", stores=world.local_stores)).deleted == []
    assert Path(Kept.fetch1("raw")).read_bytes() == b"seven" * 50


def test_shared_store_and_schema_name_gc_never_deletes_the_other_servers_objects(make_store_lab: Any,
                                                                                  tmp_path: Path) -> None:
    """The hazard: local and source use the same store place and the same schema name, so their object
    paths coincide. djshare must not journal (and gc must not delete) objects it did not create."""
    world = make_store_lab("s3", "s3")
    for name in ("loc_blobs", "loc_files"):
        world.local_stores[name] = dict(world.source_stores[MAPPING[name]])
    dj.config["stores"] = {**world.source_stores, **world.local_stores}
    same_name = world.lab.local_lazy(world.lab.source_schema)  # a schema on the local server named like the source's
    Sample = world.lab.linked("Sample", local_schema=same_name, source_stores=world.source_stores, stores=MAPPING)
    assert Sample().pull().objects == 0  # the objects were already there: nothing copied, nothing journaled
    (Sample() & "sample < 5").delete()
    assert gc(LazySchema(world.lab.source_schema, stores=world.local_stores)).deleted == []
    spec = StoreSpec.from_config("src_blobs", world.source_stores, "t")
    assert all(open_store(spec).exists(p) for _, p in world.source_objects("src_blobs"))
    same_samples(world, Sample(), tmp_path / "downloads")


def test_pull_without_copying_reads_objects_in_place(make_store_lab: Any, tmp_path: Path) -> None:
    world = make_store_lab("s3", "s3")
    for name in ("loc_blobs", "loc_files"):
        world.local_stores[name] = dict(world.source_stores[MAPPING[name]])
    dj.config["stores"] = {**world.source_stores, **world.local_stores}
    Sample = world.lab.linked("Sample", local_schema=world.lab.local_lazy(world.lab.source_schema),
                              source_stores=world.source_stores, stores=MAPPING, copy_objects=False)
    report = Sample().pull()
    assert (report.pulled, report.objects) == (6, 0)
    same_samples(world, Sample(), tmp_path / "downloads")
    Sample.delete()
    assert gc(LazySchema(world.lab.source_schema, stores=world.local_stores)).deleted == []
    assert len(world.pipeline["Sample"]()) == 6
    assert all(open_store(StoreSpec.from_config("src_blobs", world.source_stores, "t")).exists(p)
               for _, p in world.source_objects("src_blobs"))


def test_cli_pull_and_gc_with_stores(make_store_lab: Any, tmp_path: Path) -> None:
    from tests.integration.test_cli import djshare

    world = make_store_lab("s3", "file")
    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "dj_local_conf.json").write_text(json.dumps({"stores": world.local_stores}))  # DataJoint's own file
    (folder / "source_stores.json").write_text(json.dumps(world.source_stores))
    lab = world.lab
    result = djshare(lab, "pull", f"{lab.source_schema}.Sample", "-l", lab.local_schema, "--source-stores",
                     "source_stores.json", "--store", "loc_blobs=src_blobs", "--store", "loc_files=src_files",
                     cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "pulled 6 entities (12 part rows, 21 objects)" in result.stdout
    assert "would delete 0 objects" in djshare(lab, "gc", "-l", lab.local_schema, "--dry-run", cwd=folder).stdout
    for table in ("sample__piece", "sample"):  # deleted outside djshare: repair and gc follow
        lab.local.execute(f"DELETE FROM `{lab.local_schema}`.`{table}` WHERE sample = 1")
    assert "would delete 3 objects" in djshare(lab, "gc", "-l", lab.local_schema, "--dry-run", cwd=folder).stdout
    assert "deleted 3 objects" in djshare(lab, "gc", "-l", lab.local_schema, cwd=folder).stdout
    bad = djshare(lab, "pull", f"{lab.source_schema}.Sample", "-l", lab.local_schema, "--store", "nonsense",
                  cwd=folder)
    assert bad.returncode == 1 and "is not LOCAL=SOURCE" in bad.stderr


def test_pull_without_copying_needs_the_same_place(make_store_lab: Any) -> None:
    world = make_store_lab("file", "file")
    with pytest.raises(ConfigurationError, match="copy_objects=False needs the local store `loc_blobs`"):
        world.linked(copy_objects=False)()


def test_export_bundle_carries_external_objects(make_store_lab: Any, servers: list[Any], s3: S3Server,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from djshare import export
    from djshare.sql.connection import ServerAddress

    world = make_store_lab("file", "s3")
    lab = world.lab
    monkeypatch.setitem(dj.config, "database.host", lab.source.address)  # export from the lab's own server
    monkeypatch.setitem(dj.config, "database.user", lab.source.admin_user)
    monkeypatch.setitem(dj.config, "database.password", lab.source.admin_password)
    dj.config["stores"] = dict(world.source_stores)
    work = lab.source_schema + "_work"
    with export.capture("paper-x", "a", schema=work):
        (world.pipeline["Sample"] & "sample < 3").fetch(download_path=str(tmp_path / "downloads"))
    entries = export.write("paper-x", tmp_path / "bundle", schema=work, progress=False)
    assert {e.table: e.rows for e in entries}["~external_src_blobs"] == 3 * 3  # signals + pieces
    assert len([p for p in (tmp_path / "bundle" / "objects").rglob("*") if p.is_file()]) == 3 * 3 + 2
    s3.create_bucket(f"archive-{lab.source_schema}")
    archive = {"src_blobs": store("s3", "src_blobs", s3, tmp_path, f"archive-{lab.source_schema}"),
               "src_files": store("file", "archive_files", s3, tmp_path, ""),
               "src_raw": store("file", "archive_raw", s3, tmp_path, "")}
    target = servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    export.restore(tmp_path / "bundle", address, progress=False, stores=archive)
    assert export.verify(tmp_path / "bundle", address, stores=archive).problems == []
    dj.config["stores"] = archive  # read the archive back through DataJoint
    connection = dj.Connection(target.address, target.admin_user, target.admin_password, use_tls=False)
    dj.Schema(lab.source_schema, connection=connection, create_schema=False)  # DataJoint finds stores through it
    restored = dj.FreeTable(connection, f"`{lab.source_schema}`.`sample`")
    for key in restored.fetch("KEY"):
        mine = (restored & key).fetch1(download_path=str(tmp_path / "d1"))
        theirs = (world.pipeline["Sample"] & key).fetch1(download_path=str(tmp_path / "d2"))
        assert np.array_equal(mine["signal"], theirs["signal"])
        assert (mine["document"] is None) == (theirs["document"] is None)
    some = world._objects(target, lab.source_schema, "src_blobs", archive)[0][1]
    open_store(StoreSpec.from_config("src_blobs", archive, "t")).delete(some)
    assert "is missing from the target's store" in export.verify(tmp_path / "bundle", address,
                                                                 stores=archive).problems[0]
    connection.close()
    target.execute(f"DROP DATABASE `{lab.source_schema}`")
    # the same export straight into the server, objects store to store
    dj.config["stores"] = dict(world.source_stores)  # the exporting side's stores again
    fresh = {name: store("file", f"direct_{name}", s3, tmp_path, "") for name in archive}
    copied = export.copy("paper-x", address, schema=work, progress=False, target_stores=fresh)
    assert {c.table: c.rows for c in copied}["~external_src_blobs"] == 9
    assert export.verify(tmp_path / "bundle", address, stores=fresh).problems == []  # same rows, objects there
    target.execute(f"DROP DATABASE `{lab.source_schema}`")


def test_export_restore_keeps_a_different_file_at_a_filepath(make_store_lab: Any, servers: list[Any], s3: S3Server,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore never overwrites a file the target's store already keeps at a filepath's path: it stops naming
    both, removes the tables it had created, and the file stays as it was."""
    from djshare import export
    from djshare.sql.connection import ServerAddress

    world = make_store_lab(fill=False)
    lab = world.lab
    staged = Path(world.source_stores["src_raw"]["stage"]) / "session" / "raw_0.dat"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"run 0 of the lab")
    world.pipeline["Raw"].insert1({"raw_id": 0, "raw": str(staged)})
    monkeypatch.setitem(dj.config, "database.host", lab.source.address)
    monkeypatch.setitem(dj.config, "database.user", lab.source.admin_user)
    monkeypatch.setitem(dj.config, "database.password", lab.source.admin_password)
    monkeypatch.setitem(dj.config, "stores", dict(world.source_stores))
    work = lab.source_schema + "_work"
    with export.capture("paper-raw", "a", schema=work):
        world.pipeline["Raw"].fetch()
    export.write("paper-raw", tmp_path / "bundle", schema=work, progress=False)
    archive = {name: store("file", f"keep_{name}", s3, tmp_path, "") for name in ("src_blobs", "src_files", "src_raw")}
    theirs = Path(archive["src_raw"]["location"]) / "session" / "raw_0.dat"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"the archive's own run 0")
    target = servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    with pytest.raises(IntegrityViolation, match="session/raw_0.dat in .* exists with other contents.*removed the"):
        export.restore(tmp_path / "bundle", address, progress=False, stores=archive)
    assert theirs.read_bytes() == b"the archive's own run 0"
    assert target.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                        (lab.source_schema,)) == []


def test_export_script_copies_and_checks_objects(make_store_lab: Any, servers: list[Any], s3: S3Server,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess

    from djshare import export

    world = make_store_lab("file", "file")
    lab, p = world.lab, world.pipeline
    (tmp_path / "stage" / "raw data").mkdir(parents=True)
    (tmp_path / "stage" / "raw data" / "run $1 (raw).bin").write_bytes(b"raw bytes" * 100)
    p["Raw"].insert1({"raw_id": 1, "raw": str(tmp_path / "stage" / "raw data" / "run $1 (raw).bin")})
    monkeypatch.setitem(dj.config, "database.host", lab.source.address)
    monkeypatch.setitem(dj.config, "database.user", lab.source.admin_user)
    monkeypatch.setitem(dj.config, "database.password", lab.source.admin_password)
    dj.config["stores"] = dict(world.source_stores)
    work = lab.source_schema + "_work"
    with export.capture("paper-o", "a", schema=work):
        (p["Sample"] & "sample < 3").fetch(download_path=str(tmp_path / "downloads"))
        p["Raw"].fetch(download_path=str(tmp_path / "downloads"))
    export.write_script("paper-o", tmp_path / "export.sh", schema=work)
    env = dict(os.environ, DJSHARE_HOST=lab.source.host, DJSHARE_PORT=str(lab.source.port),
               DJSHARE_USER=lab.source.admin_user, MYSQL_PWD=lab.source.admin_password)
    missing = subprocess.run(["bash", str(tmp_path / "export.sh")], env=env, capture_output=True, timeout=120)
    assert missing.returncode != 0 and b"set DJSHARE_OBJECTS to a directory for the 12 external objects" \
        in missing.stderr and missing.stdout == b""
    env["DJSHARE_OBJECTS"] = str(tmp_path / "objects")
    dumped = subprocess.run(["bash", str(tmp_path / "export.sh")], env=env, capture_output=True, timeout=120)
    assert dumped.returncode == 0, dumped.stderr.decode()
    target = servers[2]
    loaded = subprocess.run(["mariadb", "-h", target.host, "-P", str(target.port), "-u", target.admin_user],
                            input=dumped.stdout, env=dict(os.environ, MYSQL_PWD=target.admin_password),
                            capture_output=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr.decode()
    # the objects folder holds each store's layout: it serves as the target's stores as it is
    archive = {name: {"protocol": "file", "location": str(tmp_path / "objects" / name)} for name in world.source_stores}
    archive["src_raw"]["stage"] = str(tmp_path / "stage")
    dj.config["stores"] = archive
    connection = dj.Connection(target.address, target.admin_user, target.admin_password, use_tls=False)
    dj.Schema(lab.source_schema, connection=connection, create_schema=False)
    restored = dj.FreeTable(connection, f"`{lab.source_schema}`.`sample`")
    assert len(restored) == 3
    for key in restored.fetch("KEY"):
        mine = (restored & key).fetch1(download_path=str(tmp_path / "d1"))
        theirs = (p["Sample"] & key).fetch1(download_path=str(tmp_path / "d2"))
        assert np.array_equal(mine["signal"], theirs["signal"])
        if theirs["document"] is not None:
            assert Path(mine["document"]).read_bytes() == Path(theirs["document"]).read_bytes()
    raw = dj.FreeTable(connection, f"`{lab.source_schema}`.`raw`").fetch1("raw")
    assert Path(raw).read_bytes() == b"raw bytes" * 100
    connection.close()
    target.execute(f"DROP DATABASE `{lab.source_schema}`")
    # a damaged object stops the script with a message naming it
    blob = next(f for f in (tmp_path / "src_blobs").rglob("*") if f.is_file())
    blob.write_bytes(b"x" + blob.read_bytes()[1:])
    damaged = subprocess.run(["bash", str(tmp_path / "export.sh")], env=dict(env, DJSHARE_OBJECTS=str(tmp_path / "o2")),
                             capture_output=True, timeout=120)
    assert damaged.returncode == 1 and f"{blob.name} does not match its MD5".encode() in damaged.stderr
    # S3 stores are refused, naming the way out
    dj.config["stores"] = {**world.source_stores, "src_blobs": store("s3", "src_blobs", s3, tmp_path, "nowhere")}
    with pytest.raises(DjshareError, match="Store `src_blobs` is in S3.*djshare export write"):
        export.write_script("paper-o", tmp_path / "export2.sh", schema=work)
    assert not (tmp_path / "export2.sh").exists()


def test_refresh_changed_brings_a_new_external_blob_first(make_store_lab: Any, tmp_path: Path) -> None:
    world = make_store_lab("file", "s3")
    Sample = world.linked()
    Sample().pull(progress=False)
    new_signal = np.arange(12.0).reshape(3, 4)
    world.pipeline["Sample"].update1({"sample": 1, "signal": new_signal})  # a new object, a new hash
    report = Sample().stale(progress=False)
    assert len(report.stale) == 1 and [tuple(a.changes) for a in report.changes] == [("signal",)]
    pulled = Sample().pull(refresh_changed=True, progress=False)
    assert (pulled.refreshed, pulled.objects) == (1, 1)
    assert np.array_equal((Sample & {"sample": 1}).fetch1("signal"), new_signal)
    same_samples(world, Sample, tmp_path / "after")
    assert Sample().stale(progress=False).stale == []

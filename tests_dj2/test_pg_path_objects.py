"""Path-addressed objects on PostgreSQL links and exports (run in .venv2): `<object@store>` files and folders,
`<npy@store>` arrays and `<filepath@store>` files written by DataJoint 2.3.5 follow their rows into the local
store (schema-addressed paths moved to the local schema), DataJoint 2.x reads and verifies the copies, crashes
converge, gc deletes only what djshare wrote and no row references, and a conflicting file stops a batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import ConfigurationError, DjshareError, IntegrityViolation
from djshare.export import pg as export
from djshare.link.pg import PgLink, PostgresSchema
from djshare.stores.formats.dj2 import relocated, schema_path_rule
from tests.crash import Crash, crash_at
from tests.servers import S3Server, s3_server
from tests_dj2.test_pg_export import address
from tests_dj2.test_pg_link import NUMBERS, World, connect, read_object, servers, store, world

__all__ = ["servers", "world"]  # fixtures


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto without request signatures: moto 5.2.5 refuses signed requests for keys with `=` (see s3_server)."""
    with s3_server(tmp_path_factory.mktemp("moto"), authenticate=False) as server:
        yield server


class PathObjects:
    """A source table with `<object@main>` (a folder, a file, raw bytes), `<npy@main>` and `<filepath@main>`
    columns, filled by DataJoint 2.x (for an S3 source: written to a file store, then uploaded to the same paths:
    DataJoint 2.3.5's s3fs requests are refused by moto)."""

    def __init__(self, world: World, source_store: dict[str, Any], local_store: dict[str, Any],
                 s3: S3Server | None = None) -> None:
        self.world, self.source_store, self.local_store = world, source_store, local_store
        staging = world.tmp / "staging"
        (staging / "raw").mkdir(parents=True, exist_ok=True)
        (staging / "raw" / "shared.txt").write_bytes(b"a file the lab put in its store")
        (staging / "raw" / "own.txt").write_bytes(b"only sample 1's")
        dj.config["stores"] = {"main": source_store if source_store["protocol"] == "file" else
                               {"protocol": "file", "location": str(staging)}}
        if source_store["protocol"] == "file":
            for path in (staging / "raw").iterdir():
                (Path(source_store["location"]) / "raw").mkdir(parents=True, exist_ok=True)
                (Path(source_store["location"]) / "raw" / path.name).write_bytes(path.read_bytes())
        schema = dj.Schema(world.source_schema, connection=connect(world.source))

        @schema
        class Recording(dj.Manual):
            definition = """
            recording : int32
            ---
            raw = null : <object@main>
            spikes = null : <npy@main>
            notes = null : <filepath@main>
            """

        self.Recording = Recording
        folder = world.tmp / "folder"
        (folder / "sub").mkdir(parents=True, exist_ok=True)
        (folder / "a.bin").write_bytes(b"\x00a" * 50)
        (folder / "sub" / "b.bin").write_bytes(b"b" * 7)
        single = world.tmp / "single.dat"
        single.write_bytes(b"one file")
        Recording.insert([
            {"recording": 0, "raw": str(folder), "spikes": np.arange(12).reshape(3, 4), "notes": "raw/shared.txt"},
            {"recording": 1, "raw": str(single), "spikes": np.linspace(0, 1, 5), "notes": "raw/own.txt"},
            {"recording": 2, "raw": b"raw bytes", "spikes": None, "notes": "raw/shared.txt"},
            {"recording": 3, "raw": None, "spikes": None, "notes": None}])
        if source_store["protocol"] == "s3":
            assert s3 is not None
            for path in staging.rglob("*"):
                if path.is_file():
                    s3.client().put_object(Bucket=source_store["bucket"], Body=path.read_bytes(),
                                           Key=f"{source_store['location']}/{path.relative_to(staging).as_posix()}")

    def schemas(self) -> tuple[PostgresSchema, PostgresSchema]:
        world = self.world
        return (PostgresSchema(world.source_schema, host=world.source.address, database=world.source.database,
                               user=world.source.admin_user, password=world.source.admin_password,
                               stores={"main": self.source_store}),
                PostgresSchema(world.local_schema, host=world.local.address, database=world.local.database,
                               user=world.local.admin_user, password=world.local.admin_password,
                               stores={"archive": self.local_store}))

    def link(self, **options: Any) -> PgLink:
        source, local = self.schemas()
        return PgLink("Recording", source, local, outbound=self.world.outbound, stores={"archive": "main"},
                      **options)

    def references(self, server: Any, schema: str, column: str) -> dict[int, dict[str, Any]]:
        return {int(k): json.loads(v) for k, v in server.query(
            f'SELECT recording, {column}::text FROM "{schema}".recording WHERE {column} IS NOT NULL')}

    def local_rows(self) -> list[dict[str, Any]]:
        dj.config["stores"] = {"archive": self.local_store}
        dj.config["download_path"] = str(self.world.tmp / "download")
        mine = dj.VirtualModule("mine", self.world.local_schema, connection=connect(self.world.local))
        return list(mine.Recording.to_dicts(order_by="KEY"))


def test_schema_paths_move_to_the_local_prefix_and_schema() -> None:
    rule = schema_path_rule("_schema", "lab", "objects/", "mine")
    assert relocated("_schema/lab/rec/recording=1/raw_Ab-9.dat", rule) == "objects/mine/rec/recording=1/raw_Ab-9.dat"
    assert relocated("_schema/day=3/lab/rec/k=1/raw_x", rule) == "objects/day=3/mine/rec/k=1/raw_x"
    assert relocated("_schema/lab2/rec/k=1/raw_x", rule) is None  # another schema
    assert relocated("lab/rec/k=1/raw_x", rule) is None  # the pre-2.3.1 root layout needs schema_prefix ""
    assert relocated("lab/rec/k=1/raw_x", schema_path_rule("", "lab", "", "mine")) == "mine/rec/k=1/raw_x"


@pytest.mark.parametrize(("source_kind", "local_kind"), [("file", "file"), ("s3", "s3"), ("file", "s3")])
def test_path_addressed_objects_follow_their_rows(world: World, s3: S3Server, source_kind: str,
                                                  local_kind: str) -> None:
    number = next(NUMBERS)
    objects = PathObjects(world, store(source_kind, world.tmp / "source-store", s3, f"source-{number}"),
                          store(local_kind, world.tmp / "local-store", s3, f"local-{number}"), s3)
    report = objects.link().pull(progress=False)
    # the folder's 2 files + its manifest, 2 single-file objects, 2 arrays, 2 distinct filepaths
    assert (report.pulled, report.objects) == (4, 9)
    for column in ("raw", "spikes", "notes"):
        source = objects.references(world.source, world.source_schema, column)
        local = objects.references(world.local, world.local_schema, column)
        assert sorted(local) == sorted(source)
        for key, reference in local.items():
            original = source[key]
            assert reference["store"] == "archive"
            if column == "notes":  # a filepath keeps its path
                assert reference["path"] == original["path"]
            else:
                assert reference["path"] == original["path"].replace(f"/{world.source_schema}/",
                                                                     f"/{world.local_schema}/", 1)
                assert reference["path"].startswith(f"_schema/{world.local_schema}/recording/recording={key}/")
            assert {k: v for k, v in reference.items() if k not in ("path", "store")} == \
                {k: v for k, v in original.items() if k not in ("path", "store")}
            if not reference.get("is_dir"):
                assert read_object(objects.local_store, s3, reference["path"]) == \
                    read_object(objects.source_store, s3, original["path"])
    # DataJoint 2.x reads the copies with the local store only, and its own integrity check passes
    rows = objects.local_rows()
    assert [row["raw"].verify() if row["raw"] else None for row in rows] == [True, True, True, None]
    assert sorted(rows[0]["raw"].listdir()) == ["a.bin", "sub"]
    assert rows[0]["raw"].open("sub/b.bin").read() == b"b" * 7
    assert (rows[1]["raw"].read(), rows[2]["raw"].read()) == (b"one file", b"raw bytes")
    assert np.array_equal(rows[0]["spikes"].load(), np.arange(12).reshape(3, 4))
    assert np.array_equal(rows[1]["spikes"].load(), np.linspace(0, 1, 5))
    assert rows[1]["notes"].read() == b"only sample 1's" and rows[3]["notes"] is None
    again = objects.link().pull(progress=False)
    assert (again.pulled, again.objects) == (0, 0)
    assert objects.link().stale().stale == []
    # a source row that names another file is stale; refresh brings the new reference (the file is there)
    world.source.execute(f'UPDATE "{world.source_schema}".recording SET notes = (SELECT notes FROM '
                         f'"{world.source_schema}".recording WHERE recording = 1) WHERE recording = 2')
    assert objects.link().stale().stale == [b"('2')"]
    assert objects.link().pull(progress=False, refresh_changed=True).refreshed == 1
    assert objects.references(world.local, world.local_schema, "notes")[2]["path"] == "raw/own.txt"
    assert objects.link().stale().stale == []


def only_this_local_schema(world: World) -> None:
    """Drop the local schemas earlier tests left on the shared server: they name their stores "archive" too, and a
    store name means one place in the local settings, so gc would (rightly) keep files their rows name."""
    for (schema,) in world.local.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE "
                                       "'mine2%%' AND schema_name <> %s", (world.local_schema,)):
        world.local.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_gc_and_crashes_with_path_addressed_objects(world: World, s3: S3Server) -> None:
    only_this_local_schema(world)
    objects = PathObjects(world, store("file", world.tmp / "source-store", s3, ""),
                          store("file", world.tmp / "local-store", s3, ""))
    local_store = world.tmp / "local-store"
    with pytest.raises(Crash):  # objects copied, rows not inserted: the next run converges
        objects.link(batch_size=2).pull(progress=False, checkpoint=crash_at("copy_objects", occurrence=2))
    assert world.local.query(f'SELECT count(*) FROM "{world.local_schema}".recording') == [(2,)]
    link = objects.link()
    link.repair(progress=False)
    assert link.pull(progress=False).pulled == 2
    assert link.gc().deleted == []  # every object djshare wrote is referenced
    mine = local_store / "_schema" / world.local_schema / "recording" / "recording=0" / "not-from-djshare"
    mine.write_bytes(b"the local lab's")
    folder = objects.references(world.local, world.local_schema, "raw")[0]["path"]
    world.local.execute(f'DELETE FROM "{world.local_schema}".recording WHERE recording IN (0, 1)')
    link.repair(progress=False)
    deleted = link.gc().deleted
    # recording 0's folder (2 files and its manifest) and array; recording 1's file, array and its own filepath;
    # raw/shared.txt is still referenced by recording 2
    assert len(deleted) == 7 and f"archive:{folder}/sub/b.bin" in deleted and "archive:raw/own.txt" in deleted
    assert not (local_store / f"{folder}.manifest.json").exists() and not (local_store / "raw" / "own.txt").exists()
    assert (local_store / "raw" / "shared.txt").exists() and mine.exists()
    assert [row["recording"] for row in objects.local_rows()] == [2, 3]


def test_a_conflicting_or_damaged_object_stops_its_batch(world: World, s3: S3Server) -> None:
    objects = PathObjects(world, store("file", world.tmp / "source-store", s3, ""),
                          store("file", world.tmp / "local-store", s3, ""))
    (world.tmp / "local-store" / "raw").mkdir(parents=True)
    (world.tmp / "local-store" / "raw" / "own.txt").write_bytes(b"another lab file at the same path")
    with pytest.raises(IntegrityViolation, match="raw/own.txt in store `archive`.* exists with other contents"):
        objects.link().pull("recording = 1", progress=False)
    assert world.local.query(f'SELECT count(*) FROM "{world.local_schema}".recording') == [(0,)]
    (world.tmp / "local-store" / "raw" / "own.txt").write_bytes(b"only sample 1's")  # the same file: kept
    assert objects.link().pull("recording = 1", progress=False).pulled == 1
    raw = objects.references(world.source, world.source_schema, "raw")[2]["path"]
    (world.tmp / "source-store" / raw).write_bytes(b"damaged")
    with pytest.raises(IntegrityViolation, match="has 7 bytes .* says 9 bytes"):
        objects.link().pull(progress=False)
    assert world.local.query(f'SELECT recording FROM "{world.local_schema}".recording') == [(1,)]
    source, local = objects.schemas()
    moved = PostgresSchema(world.source_schema, host=world.source.address, database=world.source.database,
                           user=world.source.admin_user, password=world.source.admin_password,
                           stores={"main": dict(objects.source_store, schema_prefix="elsewhere")})
    with pytest.raises(ConfigurationError, match="does not follow the store's layout"):
        PgLink("Recording", moved, local, outbound=world.outbound, stores={"archive": "main"}).pull(progress=False)
    assert world.local.query(f'SELECT recording FROM "{world.local_schema}".recording') == [(1,)]


def test_exports_carry_path_addressed_objects(world: World, s3: S3Server) -> None:
    objects = PathObjects(world, store("file", world.tmp / "source-store", s3, ""),
                          store("file", world.tmp / "local-store", s3, ""))
    source_stores = {"main": objects.source_store}
    target_stores = {"main": {"protocol": "file", "location": str(world.tmp / "target-store")}}
    restriction = [(f"{world.source_schema}.recording", "recording < 2")]
    copied = export.copy(address(world.source), restriction, address(world.local),
                         stores=(source_stores, target_stores), progress=False)
    assert [(c.table, c.rows) for c in copied if c.table == "recording"] == [("recording", 2)]
    for key, reference in objects.references(world.local, world.source_schema, "raw").items():
        target = world.tmp / "target-store" / reference["path"]
        assert (target.is_dir() if key == 0 else target.read_bytes() == b"one file")
    bundle = world.tmp / "bundle"
    export.write(address(world.source), restriction, bundle, stores=source_stores, progress=False)
    assert (bundle / "objects" / "main" / "raw" / "own.txt").read_bytes() == b"only sample 1's"
    world.local.execute(f'DROP SCHEMA "{world.source_schema}" CASCADE')
    restored = {"main": {"protocol": "file", "location": str(world.tmp / "restored-store")}}
    own = bundle / "objects" / "main" / "raw" / "own.txt"
    own.write_bytes(b"ONLY sample 1's")  # the same size, other bytes: the file's SHA-256 catches it at once
    with pytest.raises(DjshareError, match=r"raw/own.txt \(an external object\) does not match its SHA-256"):
        export.restore(bundle, address(world.local), stores=restored, progress=False)
    assert not (world.tmp / "restored-store").exists()  # refused before any object was written
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"]  # as bundles written before files had checksums: the object's MD5 catches it
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityViolation, match="raw/own.txt in .* has 15 bytes and MD5"):
        export.restore(bundle, address(world.local), stores=restored, progress=False)
    assert world.local.query("SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                             (world.source_schema,)) == [(0,)]  # no table was restored
    own.write_bytes(b"only sample 1's")
    export.restore(bundle, address(world.local), stores=restored, progress=False)
    assert (world.tmp / "restored-store" / "raw" / "own.txt").read_bytes() == b"only sample 1's"
    assert export.verify(bundle, address(world.local)).problems == []


def test_gc_keeps_files_another_local_schema_references(world: World, s3: S3Server) -> None:
    """`<filepath@>` paths carry no schema name: a second local schema linking the same table into the same store
    finds the files there and does not journal them, so the first schema's gc must not delete what it uses."""
    only_this_local_schema(world)
    objects = PathObjects(world, store("file", world.tmp / "source-store", s3, ""),
                          store("file", world.tmp / "local-store", s3, ""))
    source, local = objects.schemas()
    second = PostgresSchema(world.local_schema + "_b", host=world.local.address, database=world.local.database,
                            user=world.local.admin_user, password=world.local.admin_password,
                            stores={"archive": objects.local_store})
    link = objects.link()
    assert link.pull(progress=False).pulled == 4
    other = PgLink("Recording", source, second, outbound=world.outbound, stores={"archive": "main"})
    assert other.pull(progress=False).pulled == 4
    own = world.tmp / "local-store" / "raw" / "own.txt"
    world.local.execute(f'DELETE FROM "{world.local_schema}".recording WHERE recording = 1')
    link.repair(progress=False)
    deleted = link.gc().deleted
    assert "archive:raw/own.txt" not in deleted and own.exists()  # the second schema still references it
    assert len(deleted) == 2  # recording 1's file and array, in this schema's own paths
    assert link.gc().deleted == []  # kept, and no longer journaled here
    world.local.execute(f'DELETE FROM "{world.local_schema}_b".recording WHERE recording = 1')
    other.repair(progress=False)
    assert "archive:raw/own.txt" not in other.gc().deleted and own.exists()  # never djshare's to delete there

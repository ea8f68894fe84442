"""Cross-format links: DataJoint 0.14 source tables on MariaDB pulled into a DataJoint 2.x schema on a real
PostgreSQL 15, then read by DataJoint 2.3 itself (in its own environment, .venv2) and compared with what 0.14
fetches from the source: every column type of the test pipeline, part tables, blobs and attachments in file and
S3 stores converted byte-exact (same MD5, 2.x paths); crashes at every step converge; what cannot be converted
is refused before anything changes."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np
import pytest

from djshare.errors import AuthenticationError, ConfigurationError, RestrictionError
from djshare.link.crossformat import CrossLink, PostgresSchema
from djshare.link.dj2 import Dj2Link, MariaDBSchema
from djshare.link.pg import gc as pg_gc
from djshare.sql.connection import ServerAddress
from djshare.stores.formats.dj2 import Reference, content_hash
from djshare.sync.diff import compare
from djshare.sync.sources import Table
from tests.conftest import Lab, fill_pipeline
from tests.crash import Crash, crash_at
from tests.integration.test_stores import MAPPING, StoreLab, make_store_lab, s3  # noqa: F401 - fixtures
from tests.servers import MariaDBServer, PostgresServer, postgres_server

ROOT = Path(__file__).resolve().parents[2]
DJ2_PYTHON = ROOT / ".venv2" / "bin" / "python"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def target(pg: PostgresServer, schema: str, stores: dict[str, Any] | None = None) -> PostgresSchema:
    return PostgresSchema(schema, host=f"{pg.host}:{pg.port}", database=pg.database, user=pg.admin_user,
                          password=pg.admin_password, stores=stores)


def read_with_dj2(pg: PostgresServer, schema: str, download: Path, stores: dict[str, Any] | None = None) -> Any:
    """What DataJoint 2.x fetches from `schema` (run in the 2.x environment that `make test` builds)."""
    assert DJ2_PYTHON.exists(), "the DataJoint 2.x environment is missing: run `make venv` (make test builds it)"
    settings = {"host": pg.host, "port": pg.port, "user": pg.admin_user, "password": pg.admin_password,
                "database": pg.database, "schema": schema, "stores": stores or {}, "download": str(download),
                "output": str(download) + ".pickle"}
    done = subprocess.run([str(DJ2_PYTHON), str(ROOT / "tests" / "dj2_reader.py"), json.dumps(settings)],
                          capture_output=True, timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return pickle.loads(Path(settings["output"]).read_bytes())


def pg_table(pg: PostgresServer, schema: str, table: str) -> Table:
    return Table(ServerAddress(pg.host, pg.port, pg.admin_user, pg.admin_password, backend="postgresql",
                               database=pg.database), schema, table)


def maria_table(lab: Lab, table: str) -> Table:
    server = lab.source
    return Table(ServerAddress(server.host, server.port, server.admin_user, server.admin_password),
                 lab.source_schema, table)


def same(mine: Any, theirs: Any) -> bool:
    if isinstance(theirs, np.ndarray):
        return isinstance(mine, np.ndarray) and mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    return bool(mine == theirs)


def test_every_column_type_arrives_and_dj2_reads_it(lab: Lab, postgres: PostgresServer, tmp_path: Path) -> None:
    fill_pipeline(lab.pipeline, subjects=2, recordings=4)
    recording = lab.pipeline["Recording"]
    recording.insert1({"subject": "s0", "recording": 99, "note": "quote ' and \\ backslash, é, \U0001f42d",
                       "weight": 0.1, "score": -1e-300, "amount": "-12345.678", "data": {"nested": [1, "x"]},
                       "kind": "b", "day": "2000-02-29", "token": uuid.UUID(int=2**128 - 1),
                       "attachment": _file(tmp_path, "it's.bin", b"\x00\xff" * 50)})
    schema = f"v2_{lab.local_schema}"
    link = CrossLink("Recording", lab.source_lazy(), target(postgres, schema))
    report = link.pull(progress=False)
    assert report.pulled == len(recording())
    assert link.status() == {"pulling": 0, "pulled": len(recording()), "deletion_requested": 0,
                             "deletion_approved": 0, "local": len(recording())}
    # the values, exactly (inside the servers: floats to the bit, decimals, dates, timestamps, bytes)
    scan = CrossLink("Scan", lab.source_lazy(), target(postgres, schema))
    assert scan.pull(progress=False).part_rows == 2 * len(lab.pipeline["Scan"]())
    assert list(compare(maria_table(lab, "__scan"), pg_table(postgres, schema, "__scan"), "scan")) == []
    assert list(compare(maria_table(lab, "__scan__channel"), pg_table(postgres, schema, "__scan__channel"),
                        "channel")) == []
    # DataJoint 2.x reads the schema as its own, with the values 0.14 fetches from the source
    found = read_with_dj2(postgres, schema, tmp_path / "download")
    assert set(found) == {"Recording", "Scan", "Scan.Channel"}
    for label, source in (("Recording", recording), ("Scan", lab.pipeline["Scan"]),
                          ("Scan.Channel", lab.pipeline["Scan"].Channel)):
        theirs = source.fetch(as_dict=True, order_by="KEY", download_path=str(tmp_path / "source"))
        mine = found[label]["rows"]
        assert len(mine) == len(theirs) > 0
        for m, t in zip(mine, theirs, strict=True):
            for column, value in t.items():
                if column == "attachment":  # 2.3.5 cannot fetch in-table <attach> on PostgreSQL: read in SQL
                    assert column not in m
                    stored = postgres.query(f'SELECT attachment FROM "{schema}"."recording" WHERE subject = %s AND '
                                            "recording = %s", (t["subject"], t["recording"]))[0][0]
                    assert stored == (None if value is None else
                                      Path(value).name.encode() + b"\0" + Path(value).read_bytes())
                elif column in ("weight", "result") and value is not None:
                    # 0.14 fetches FLOAT as MariaDB's 6-digit text; the exact value is the stored float32
                    key = {k: t[k] for k in source.primary_key}
                    where = " AND ".join(f"`{k}` = %s" for k in key)
                    exact = lab.source.query(f"SELECT CAST(`{column}` AS DOUBLE) FROM {source.full_table_name} "
                                             f"WHERE {where}", tuple(key.values()))[0][0]
                    assert np.float32(m[column]) == np.float32(exact)  # type: ignore[arg-type]
                    assert abs(m[column] - value) <= 1e-5 * abs(value)
                elif column == "recorded_at":
                    assert m[column] == value  # both in UTC
                elif column == "token":  # 2.3.5 cannot fetch uuid on PostgreSQL: read in SQL
                    assert column not in m
                    assert postgres.query(f'SELECT token FROM "{schema}"."recording" WHERE subject = %s AND '
                                          "recording = %s", (t["subject"], t["recording"])) == [(value,)]
                else:
                    assert same(m[column], value), (label, column, m[column], value)
    heading = found["Recording"]["heading"]
    for declared in ("recording            : int32", "data=null            : <blob>", "attachment=null      : <attach>",
                     "score                : float64", "token=null           : uuid", "weight=null          : float32"):
        assert declared in heading, heading
    # a second pull has nothing to do; repair finds nothing to change
    assert link.pull(progress=False).pulled == 0
    assert link.repair(progress=False).changed == 0


def _file(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("source_kind", "local_kind"), [("file", "file"), ("s3", "s3"), ("file", "s3")])
def test_external_objects_convert_to_the_dj2_layout_byte_exact(make_store_lab: Any, postgres: PostgresServer,  # noqa: F811
                                                               source_kind: str, local_kind: str,
                                                               tmp_path: Path) -> None:
    world: StoreLab = make_store_lab(source_kind, local_kind)
    schema = f"v2_{world.lab.local_schema}"
    local_stores = {name: world.local_stores[name] for name in ("loc_blobs", "loc_files")}
    link = CrossLink("Sample", world.lab.source_lazy(stores=world.source_stores),
                     target(postgres, schema, local_stores), stores=MAPPING)
    report = link.pull(progress=False)
    assert (report.pulled, report.part_rows) == (6, 12)
    # each object: at _hash/{schema}/{base32 of the 0.14 MD5}, the same bytes (an attachment with its name first)
    for store, local_store in (("src_blobs", "loc_blobs"), ("src_files", "loc_files")):
        source_objects = world.source_objects(store)
        assert source_objects
        for row, path in source_objects:
            data = world.read(world.source_stores, store, path)
            if row.kind == "attach":
                assert row.attachment_name is not None
                data = row.attachment_name.encode() + b"\0" + data
            assert hashlib.md5(data).digest() == row.hash  # the same MD5 on both sides
            reference = Reference.of(row.hash, len(data), local_store, schema)
            assert reference.path == f"_hash/{schema}/{content_hash(row.hash)}"
            spec = local_stores[local_store]
            location = spec["location"].lstrip("/") if spec["protocol"] == "s3" else spec["location"]
            assert world.read(local_stores, local_store, f"{location}/{reference.path}") == data
    stored = postgres.query(f'SELECT signal::text FROM "{schema}"."sample" ORDER BY sample')
    assert all(json.loads(s)["path"].startswith(f"_hash/{schema}/") for (s,) in stored)
    # DataJoint 2.x fetches the same arrays and files as 0.14 does from the source
    found = read_with_dj2(postgres, schema, tmp_path / "download", local_stores)
    source = world.pipeline["Sample"]
    theirs = source.fetch(as_dict=True, order_by="KEY", download_path=str(tmp_path / "source"))
    for m, t in zip(found["Sample"]["rows"], theirs, strict=True):
        assert same(m["signal"], t["signal"])
        if t["document"] is None:
            assert m["document"] is None
        else:
            assert m["document"] == (Path(t["document"]).name, Path(t["document"]).read_bytes())
    pieces = source.Piece.fetch(as_dict=True, order_by="KEY")
    assert [same(m["chunk"], t["chunk"]) for m, t in zip(found["Sample.Piece"]["rows"], pieces, strict=True)] == \
        [True] * 12


@pytest.mark.parametrize("step", ["record_pulling", "copy_objects", "insert_local", "mark_pulled"])
def test_a_crash_at_any_step_converges(make_store_lab: Any, postgres: PostgresServer, step: str) -> None:  # noqa: F811
    world: StoreLab = make_store_lab("file", "file")
    schema = f"v2_{world.lab.local_schema}"
    local_stores = {name: world.local_stores[name] for name in ("loc_blobs", "loc_files")}

    def link() -> CrossLink:
        return CrossLink("Sample", world.lab.source_lazy(stores=world.source_stores),
                         target(postgres, schema, local_stores), stores=MAPPING, batch_size=2)

    with pytest.raises(Crash):
        link().pull(progress=False, checkpoint=crash_at(step, occurrence=2))
    held = {r[0] for r in world.lab.source.query(
        f"SELECT sample FROM `{world.lab.outbound_schema}`.`{world.lab.source_schema}_sample_outbound`")}
    local = {r[0] for r in postgres.query(f'SELECT sample FROM "{schema}"."sample"')}
    assert local <= held  # no local row without an outbound row, at any step
    pieces = postgres.query(f'SELECT COUNT(*) FROM "{schema}"."sample__piece"')[0][0]
    assert pieces == 2 * len(local)
    link().repair(progress=False)
    report = link().pull(progress=False)
    assert report.pulled + len(local) == 6
    assert link().status()["pulled"] == 6 and link().status()["pulling"] == 0
    assert link().repair(progress=False).changed == 0
    source_pieces = world.lab.source.query(f"SELECT sample, piece FROM `{world.lab.source_schema}`.`sample__piece`")
    assert sorted(postgres.query(f'SELECT sample, piece FROM "{schema}"."sample__piece"')) == sorted(source_pieces)


def test_what_cannot_be_converted_is_refused_before_any_change(make_store_lab: Any,  # noqa: F811
                                                               postgres: PostgresServer) -> None:
    world: StoreLab = make_store_lab("file", "file")
    schema = f"v2_{world.lab.local_schema}"
    link = CrossLink("Raw", world.lab.source_lazy(stores=world.source_stores), target(postgres, schema, {}))
    with pytest.raises(ConfigurationError, match="filepath@src_raw.*cannot be converted"):
        link.pull(progress=False)
    assert postgres.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)) == \
        [(0,)]
    assert world.lab.source.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                                  (world.lab.outbound_schema,)) == [(0,)]
    wrong = PostgresSchema(schema, host=f"{postgres.host}:{postgres.port}", database=postgres.database,
                           user=postgres.admin_user, password="wrong")
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        CrossLink("Sample", world.lab.source_lazy(stores=world.source_stores), wrong, stores=MAPPING).pull()


def test_each_source_format_is_given_as_its_own_side_and_a_mistake_changes_nothing(lab: Lab,
                                                                                    postgres: PostgresServer) -> None:
    """A 2.x source is a MariaDBSchema (no DataJoint needed), a 0.14 one a LazySchema (its store settings)."""
    local = target(postgres, f"v2_{lab.local_schema}")
    as_dj2 = MariaDBSchema.source(lab.source_schema, host=lab.source.address, user=lab.users.link_user,
                                  password=lab.users.link_password)
    with pytest.raises(ConfigurationError, match="0.14's layout: give the source as LazySchema"):
        CrossLink("Scan", as_dj2, local).pull()
    lab.source.execute(f"CREATE TABLE `{lab.source_schema}`.`~lineage` (table_name varchar(64) NOT NULL, "
                       "attribute_name varchar(64) NOT NULL, lineage varchar(255) NOT NULL, "
                       "PRIMARY KEY (table_name, attribute_name))")
    with pytest.raises(ConfigurationError, match="holds DataJoint 2.x tables: give the source as MariaDBSchema"):
        CrossLink("Scan", lab.source_lazy(), local).pull()
    assert postgres.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                          (local.name,)) == [(0,)]
    assert lab.source.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                            (lab.outbound_schema,)) == [(0,)]


def test_pull_into_postgres_from_the_command_line(lab: Lab, postgres: PostgresServer) -> None:
    fill_pipeline(lab.pipeline, subjects=1, recordings=3)
    schema = f"v2_{lab.local_schema}"
    env = dict(os.environ, DJ_USER=postgres.admin_user, DJ_PASS=postgres.admin_password, LINK_HOST=lab.source.address)
    local = f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}/{schema}"
    done = subprocess.run([sys.executable, "-m", "djshare", "pull", f"{lab.source_schema}.Scan", "-l", local],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pulled 3 entities (6 part rows" in done.stdout
    assert postgres.query(f'SELECT COUNT(*) FROM "{schema}"."__scan__channel"') == [(6,)]
    done = subprocess.run([sys.executable, "-m", "djshare", "repair", f"{lab.source_schema}.Scan", "-l", local],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert dj.__version__.startswith("0.14")


def test_a_local_deletion_is_recorded_by_repair_and_frees_the_source_row(lab: Lab, postgres: PostgresServer) -> None:
    fill_pipeline(lab.pipeline, subjects=1, recordings=3)
    schema = f"v2_{lab.local_schema}"
    link = CrossLink("Scan", lab.source_lazy(), target(postgres, schema))
    assert link.pull(progress=False).pulled == 3
    subject, recording = postgres.query(f'SELECT subject, recording FROM "{schema}"."__scan" ORDER BY recording')[0]
    where = f"subject = '{subject}' AND recording = {recording}"
    postgres.execute(f'DELETE FROM "{schema}"."__scan__channel" WHERE {where}',
                     f'DELETE FROM "{schema}"."__scan" WHERE {where}')
    assert link.repair(progress=False).steps == {"remove_outbound": 1}
    assert link.status()["pulled"] == 2 and link.status()["local"] == 2
    # the source may now delete the entity: no outbound row holds it any more
    source = lab.pipeline["Scan"]
    (source & {"subject": subject, "recording": recording}).delete(safemode=False)
    assert len(source()) == 2


def test_changed_source_rows_are_found_and_refreshed(lab: Lab, postgres: PostgresServer, tmp_path: Path) -> None:
    fill_pipeline(lab.pipeline, subjects=1, recordings=3)
    lab.pipeline["Recording"].insert1({
        "subject": "s0", "recording": 99, "note": "quote ' and \\ backslash, é", "weight": 0.1, "score": -1e-300,
        "amount": "-12345.678", "data": {"nested": [1, "x"]}, "kind": "b", "day": "2000-02-29",
        "token": uuid.UUID(int=2**128 - 1), "attachment": _file(tmp_path, "it's.bin", b"\x00\xff" * 50)})
    schema = f"v2_{lab.local_schema}"
    recording = CrossLink("Recording", lab.source_lazy(), target(postgres, schema))
    scan = CrossLink("Scan", lab.source_lazy(), target(postgres, schema))
    recording.pull(progress=False)
    scan.pull(progress=False)
    # every column type compares equal after its conversion (floats by their bits, uuid, json, attachments)
    assert (recording.stale().stale, recording.stale().out_of_step, scan.stale().stale) == ([], 0, [])
    source = lab.source_schema
    lab.source.execute(f"UPDATE `{source}`.`recording` SET `note` = 'changed', `weight` = 0.25 WHERE `recording` = 99",
                       f"UPDATE `{source}`.`__scan` SET `result` = `result` + 1 WHERE `recording` = 0",
                       f"DELETE FROM `{source}`.`__scan__channel` WHERE `recording` = 1 AND `channel` = 1")
    assert len(recording.stale().stale) == 1 and len(scan.stale().stale) == 2
    # what changed, in one shape for every link kind: a changed master, a changed master, a part row the source dropped
    assert sorted((a.kind, a.branch, sorted(a.changes)) for a in recording.stale().changes) == [
        ("changed", "recording", ["note", "weight"])]
    assert sorted((a.kind, a.branch, a.key.get("channel"), sorted(a.changes))
                  for a in scan.stale().changes) == [("changed", "__scan", None, ["result"]),
                                                     ("removed", "__scan__channel", 1, [])]
    assert len(scan.stale("recording = 1").stale) == 1
    with pytest.raises(Crash):  # the first batch is refreshed, then the process dies
        scan.pull(progress=False, refresh_changed=True, batch_size=1, checkpoint=crash_at("refresh_local"))
    assert len(scan.stale().stale) == 1
    assert scan.pull(progress=False, refresh_changed=True).refreshed == 1
    assert recording.pull(progress=False, refresh_changed=True).refreshed == 1
    assert (recording.stale().stale, scan.stale().stale) == ([], [])
    for table in ("recording", "__scan", "__scan__channel"):
        assert list(compare(maria_table(lab, table), pg_table(postgres, schema, table), table)) == [], table


def test_gc_deletes_the_objects_a_cross_link_wrote_that_no_row_references(make_store_lab: Any,  # noqa: F811
                                                                          postgres: PostgresServer) -> None:
    world: StoreLab = make_store_lab("file", "file")
    schema = f"v2_{world.lab.local_schema}"
    local_stores = {name: world.local_stores[name] for name in ("loc_blobs", "loc_files")}
    local = target(postgres, schema, local_stores)
    link = CrossLink("Sample", world.lab.source_lazy(stores=world.source_stores), local, stores=MAPPING)
    link.pull(progress=False)
    assert pg_gc(local).deleted == []  # every object the pull wrote is referenced
    doomed = 0
    freed = {f"{json.loads(v)['store']}:{json.loads(v)['path']}" for (v,) in postgres.query(
        f'SELECT chunk::text FROM "{schema}"."sample__piece" WHERE sample = %s UNION SELECT signal::text FROM '
        f'"{schema}"."sample" WHERE sample = %s UNION SELECT document::text FROM "{schema}"."sample" WHERE sample = '
        "%s AND document IS NOT NULL", (doomed, doomed, doomed))}
    postgres.execute(f'DELETE FROM "{schema}"."sample__piece" WHERE sample = {doomed}',
                     f'DELETE FROM "{schema}"."sample" WHERE sample = {doomed}')
    link.repair(progress=False)
    deleted = pg_gc(local).deleted
    assert deleted and set(deleted) == freed  # random arrays and one document: no other row shares them
    for item in deleted:
        store, path = item.split(":", 1)
        assert not (Path(local_stores[store]["location"]) / path).exists()
    found = read_with_dj2(postgres, schema, world.root / "after-gc", local_stores)  # what remains still reads
    assert len(found["Sample"]["rows"]) == 5


def test_a_dry_run_a_bad_restriction_and_a_repair_of_a_new_link_change_nothing(lab: Lab,
                                                                                postgres: PostgresServer) -> None:
    fill_pipeline(lab.pipeline, subjects=2, recordings=3)
    schema = f"v2_{lab.local_schema}"
    link = CrossLink("Scan", lab.source_lazy(), target(postgres, schema))

    def untouched() -> None:
        assert postgres.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                              (schema,)) == [(0,)]
        assert lab.source.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                                (lab.outbound_schema,)) == [(0,)]

    report = link.pull("subject = 's0'", dry_run=True, progress=False)
    assert (report.dry_run, report.would_pull, report.pulled) == (True, 3, 0)
    untouched()
    with pytest.raises(RestrictionError, match="subjct"):
        link.pull("subjct = 's0'", progress=False)
    untouched()
    with pytest.raises(ConfigurationError, match="Nothing to repair"):
        link.repair(progress=False)
    untouched()
    assert link.pull("subject = 's0'", progress=False).pulled == 3
    assert link.pull(dry_run=True, progress=False).would_pull == 3


def test_a_mapping_to_a_store_the_source_does_not_have_is_refused(make_store_lab: Any,  # noqa: F811
                                                                  postgres: PostgresServer) -> None:
    world = make_store_lab()
    schema = f"v2_{world.lab.local_schema}"
    link = CrossLink("Sample", world.lab.source_lazy(stores=world.source_stores), target(postgres, schema),
                     stores={**MAPPING, "loc_x": "src_typo"})
    with pytest.raises(ConfigurationError, match="names source store `src_typo`, which schema .* does not have "
                                                  r"\(its stores: `src_blobs`, `src_files`, `src_raw`\)"):
        link.pull(progress=False)
    assert postgres.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)) \
        == [(0,)]


def university_queries(pg: PostgresServer | MariaDBServer, schema: str, output: Path, fill: bool = False) -> Any:
    """DataJoint 2.x's university queries on `schema` (`fill`: declared and filled by 2.x itself first)."""
    on_postgres = isinstance(pg, PostgresServer)
    settings = {"host": pg.host, "port": pg.port, "user": pg.admin_user, "password": pg.admin_password,
                "database": pg.database if on_postgres else "", "schema": schema, "output": str(output),
                "fill": fill, "backend": "postgresql" if on_postgres else "mysql"}
    done = subprocess.run([str(DJ2_PYTHON), str(ROOT / "tests" / "university_queries.py"), json.dumps(settings)],
                          capture_output=True, timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return pickle.loads(output.read_bytes())


def test_tables_linked_one_by_one_answer_dj2s_own_university_queries(lab: Lab, postgres: PostgresServer,
                                                                      tmp_path: Path) -> None:
    """The university pipeline declared and filled by 0.14, linked table by table (children first) into one 2.x
    schema: `~lineage` derived from the source's foreign keys (key and non-key attributes), so 2.x joins,
    restricts and aggregates across the linked tables as it does on a copy it declared itself."""
    from tests.university import TABLES, declare, fill, nonempty

    fill(declare(dj.Schema(lab.source_schema, connection=lab.pipeline["Subject"].connection), dj, "dj014"))
    schema = f"v2_{lab.local_schema}"
    for name, _, _ in reversed(TABLES):
        assert CrossLink(name, lab.source_lazy(), target(postgres, schema)).pull(progress=False).pulled > 0
    native = university_queries(postgres, f"native_{lab.local_schema}", tmp_path / "native.pickle", fill=True)
    assert nonempty(native) and university_queries(postgres, schema, tmp_path / "copy.pickle") == native
    lineage = dict(((t, a), o) for t, a, o in postgres.query(f'SELECT * FROM "{schema}"."~lineage"'))
    assert lineage[("current_term", "term")] == f"{schema}.term.term"  # a non-key attribute, through a foreign key
    assert lineage[("grade", "grade")] == f"{schema}.#letter_grade.grade"


def test_a_014_pipeline_linked_into_dj2_on_mariadb_answers_dj2s_university_queries(lab: Lab, tmp_path: Path) -> None:
    """The university pipeline declared and filled by 0.14, linked table by table (children first) into a 2.x
    schema on MariaDB: 0.14's statements with 2.x's comments and `~lineage` derived from the foreign keys, so
    DataJoint 2.x's own queries give on the copy what they give on a copy 2.x declared and filled itself."""
    from tests.university import TABLES, declare, fill, nonempty

    fill(declare(dj.Schema(lab.source_schema, connection=lab.pipeline["Subject"].connection), dj, "dj014"))
    schema = f"v2_{lab.local_schema}"
    source = MariaDBSchema(lab.source_schema, ServerAddress.parse(lab.source.address, lab.users.link_user,
                                                                  lab.users.link_password))
    local = MariaDBSchema(schema, ServerAddress.parse(lab.local.address, lab.local.admin_user,
                                                      lab.local.admin_password))
    for name, _, _ in reversed(TABLES):
        assert Dj2Link(name, source, local).pull(progress=False).pulled > 0
    native = university_queries(lab.local, f"native_{lab.local_schema}", tmp_path / "native.pickle", fill=True)
    assert nonempty(native) and university_queries(lab.local, schema, tmp_path / "copy.pickle") == native
    lineage = dict(((t, a), o) for t, a, o in lab.local.query(f"SELECT * FROM `{schema}`.`~lineage`"))
    assert lineage[("current_term", "term")] == f"{schema}.term.term"  # a non-key attribute, through a foreign key
    assert lineage[("grade", "grade")] == f"{schema}.#letter_grade.grade"
    assert Dj2Link("Grade", source, local).stale(progress=False).stale == []  # the same bytes on both servers

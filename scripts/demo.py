"""End-to-end demo of a djshare link against two throw-away MariaDB servers (run by `make demo`).

A source lab shares its `Scan` table (a Computed table with a part table) with a collaborator:
link, pull with a progress bar, the deletion handshake, what a regular source user cannot do, and a
table whose blobs and attachments live in external stores (the lab's files, the collaborator's S3); stale
rows found and refreshed; a diff of a CSV roster against a table, applied with a dry run first, and of a
MariaDB table against its PostgreSQL copy; then an export of what an analysis fetched, restored into
another server and verified; and DataJoint 2.x on PostgreSQL: the lab's scans pulled into a 2.x schema (and
refreshed after the lab recomputed some), linked on to another PostgreSQL server, a slice of them exported, and
linked back into a DataJoint 0.14 schema on MariaDB.
Everything is started here and removed at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import datajoint as dj
import pymysql
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from djshare import LazySchema, Link, SourceLink, export, gc
from djshare.backends.address import ServerAddress
from djshare.export import engine
from djshare.link.crossformat import CrossLink
from djshare.link.dj2 import MariaDBSchema
from djshare.link.pg import PgLink, PostgresSchema
from djshare.link.pg_mariadb import PgToMariaDBLink
from djshare.sync.datastore import Datastore, diff, sync
from djshare.sync.diff import compare
from djshare.sync.handlers import ApplyToTables
from djshare.sync.sources import Table, csv_file
from tests.pipeline import (
    build_export_pipeline,
    build_external_pipeline,
    build_pipeline,
    fill_export,
    fill_external,
    fill_pipeline,
)
from tests.servers import MariaDBServer, S3Server, create_link_users, mariadb_servers, postgres_server, s3_server

console = Console()


def step(text: str) -> None:
    console.print(f"\n[bold cyan]== {text}[/bold cyan]")


def external_demo(folder: Path, s3: S3Server, source: MariaDBServer, admin: dj.Connection) -> None:
    s3.create_bucket("collab-data")
    for name in ("lab_blobs", "lab_files", "lab_raw", "files"):
        (folder / name).mkdir()
    lab_stores = {"src_blobs": {"protocol": "file", "location": str(folder / "lab_blobs")},
                  "src_files": {"protocol": "file", "location": str(folder / "lab_files")},
                  "src_raw": {"protocol": "file", "location": str(folder / "lab_raw"), "stage": str(folder)}}
    collab_stores = {name: {"protocol": "s3", "endpoint": s3.endpoint, "bucket": "collab-data", "location": name,
                            "access_key": s3.access_key, "secret_key": s3.secret_key}
                     for name in ("blobs", "documents")}
    dj.config["stores"] = {**lab_stores, **collab_stores}
    os.environ["DJ_SUPPORT_FILEPATH_MANAGEMENT"] = "TRUE"
    fill_external(build_external_pipeline(admin, "lab"), folder / "files")
    console.print("lab.Sample: signal blob@src_blobs, document attach@src_files (file stores), part Piece")

    @Link(LazySchema("collab"), LazySchema("lab", host=source.address, stores=lab_stores),
          stores={"blobs": "src_blobs", "documents": "src_files"})
    class Sample:
        """Samples, with their arrays and documents in the collaborator's S3 bucket."""

    report = Sample().pull()
    console.print(f"pulled {report.pulled} samples, {report.part_rows} pieces, copied {report.objects} objects "
                  "(each checked against its MD5 before it was written)")
    document = (Sample & {"sample": 0}).fetch1("document", download_path=str(folder / "downloads"))
    console.print(f"sample 0 reads back: signal {(Sample & {'sample': 0}).fetch1('signal').shape}, "
                  f"document {Path(document).name!r}")
    (Sample() & "sample < 2").delete()
    local = LazySchema("collab")
    console.print(f"after deleting 2 samples, gc would delete {len(gc(local, dry_run=True).deleted)} objects")
    console.print(f"gc deleted {len(gc(local).deleted)}; the lab's store still has "
                  f"{sum(1 for p in (folder / 'lab_blobs').rglob('*') if p.is_file())} blob files")


def export_demo(folder: Path, source: MariaDBServer, archive: MariaDBServer, admin: dj.Connection) -> None:
    pipeline = build_export_pipeline(admin, "core", "analysis")
    fill_export(pipeline)
    dj.config.update({"database.host": source.address, "database.user": source.admin_user,
                      "database.password": source.admin_password})
    with export.capture("paper-2026", "figure-3"):
        (pipeline["Unit"] & "subject = 'm1' AND session = 2").fetch()
        (pipeline["Figure"] & "figure = 1").fetch1()
    console.print("captured two fetches of analysis figure-3 of paper-2026")
    counts = export.preview("paper-2026", diagram=folder / "slice.svg")
    console.print("closure (parents first): " + ", ".join(f"{name} {rows}" for name, rows in counts.items()))
    export.write("paper-2026", folder / "bundle")
    target = ServerAddress(archive.host, archive.port, archive.admin_user, archive.admin_password)
    export.restore(folder / "bundle", target)
    report = export.verify(folder / "bundle", target)
    console.print(f"restored into {archive.address} and verified {report.rows} rows of {report.tables} tables: "
                  f"{'no problems' if not report.problems else report.problems}")


def diff_demo(folder: Path, source: MariaDBServer, Scan: Any) -> None:
    source.execute("UPDATE lab.__scan SET result = result + 1 WHERE subject = 's0' AND recording < 3")
    stale = Scan().stale(progress=False)
    console.print(f"the lab recomputed 3 scans; the collaborator's copy has {len(stale.stale)} stale entities:")
    console.print(stale.changes[0].text(), markup=False)
    console.print(f"pull --refresh-changed brought {Scan().pull(refresh_changed=True).refreshed} over; "
                  f"stale now: {len(Scan().stale(progress=False).stale)}")
    lab = ServerAddress(source.host, source.port, source.admin_user, source.admin_password)
    roster = folder / "roster.csv"
    roster.write_text("subject,species\ns0,mouse\ns1,rat\ns2,mouse\ns3,mouse\ns4,zebra finch\n")
    need = Datastore({"subject": csv_file(roster, ["subject"])})
    tables = {"subject": Table(lab, "lab", "subject")}
    console.print("roster.csv against lab.subject:")
    for action in diff(need, Datastore(tables)):
        console.print("  " + action.text().replace("\n", "\n  "), markup=False)
    sync(need, Datastore(tables), ApplyToTables(tables, dry_run=True, say=lambda line: console.print("  " + line)))
    sync(need, Datastore(tables), ApplyToTables(tables, say=lambda line: console.print("  " + line)))
    console.print(f"after applying: {len(list(diff(need, Datastore(tables))))} differences")
    with postgres_server() as pg:
        pg.execute("CREATE SCHEMA lab", "CREATE TABLE lab.subject (subject varchar(16) PRIMARY KEY, "
                   "species varchar(30) NOT NULL)")
        with pg.connect() as connection, connection.cursor() as cursor:
            cursor.executemany("INSERT INTO lab.subject VALUES (%s, %s)", source.query("SELECT * FROM lab.subject"))
        copy = Table(ServerAddress(pg.host, pg.port, pg.admin_user, pg.admin_password, backend="postgresql",
                                   database=pg.database), "lab", "subject")
        pg.execute("UPDATE lab.subject SET species = 'Mouse' WHERE subject = 's2'")
        console.print(f"lab.subject on MariaDB against its copy on PostgreSQL {pg.address}:")
        for action in compare(tables["subject"], copy, "subject"):
            console.print("  " + action.text().replace("\n", "\n  "), markup=False)


def dj2_demo(source: MariaDBServer, admin: dj.Connection) -> None:
    with postgres_server() as pg, postgres_server() as archive:
        def schema(server: Any, name: str) -> PostgresSchema:
            return PostgresSchema(name, host=server.address, database=server.database, user=server.admin_user,
                                  password=server.admin_password, stores={})

        report = CrossLink("Scan", LazySchema("lab", host=source.address), schema(pg, "collab2")).pull(progress=False)
        labels = pg.query("SELECT col_description('collab2.__scan'::regclass, 3)")[0][0]
        lineage = pg.query('SELECT count(*) FROM collab2."~lineage"')[0][0]
        console.print(f"pulled {report.pulled} scans ({report.part_rows} channel rows) from MariaDB into DataJoint "
                      f"2.x's layout on PostgreSQL {pg.address} (`result` is {labels!r}; {lineage} lineage rows)")
        onward = PgLink("Scan", schema(pg, "collab2"), schema(archive, "archive2"), outbound="collab2_outbound")
        report = onward.pull(progress=False)
        console.print(f"linked on to {archive.address}: {report.pulled} scans by binary COPY; status {onward.status()}")
        copied = engine.copy(ServerAddress(pg.host, pg.port, pg.admin_user, pg.admin_password, backend="postgresql",
                                           database=pg.database), [("collab2.__scan", "subject = 's0'")],
                             ServerAddress(archive.host, archive.port, archive.admin_user, archive.admin_password,
                                           backend="postgresql", database=archive.database), progress=False)
        console.print("exported subject s0 into the archive server, checked by SHA-256: "
                      + ", ".join(f"{c.schema}.{c.table} {c.rows}" for c in copied))
        source.execute("UPDATE lab.__scan SET result = result + 1 WHERE recording = 0")
        stale = CrossLink("Scan", LazySchema("lab", host=source.address), schema(pg, "collab2"))
        console.print(f"the lab recomputed scans of recording 0: {len(stale.stale().stale)} stale on PostgreSQL; "
                      f"--refresh-changed brought {stale.pull(progress=False, refresh_changed=True).refreshed} over")
        back = PgToMariaDBLink("Scan", schema(pg, "collab2"), MariaDBSchema(
            "back014", ServerAddress(source.host, source.port, source.admin_user, source.admin_password)),
            outbound="collab2_outbound")
        report = back.pull(progress=False)
        heading = dj.VirtualModule("back014", "back014", connection=admin).Scan.heading
        console.print(f"and back from 2.x on PostgreSQL into a DataJoint 0.14 schema on MariaDB: {report.pulled} "
                      f"scans, which DataJoint 0.14 reads (`result` is {heading.attributes['result'].type!r})")


def main() -> None:
    dj.logger.setLevel("WARNING")
    with mariadb_servers(2, names=("source", "collaborator")) as (source, local):
        step(f"Two MariaDB servers: source lab at {source.address}, collaborator at {local.address}")
        admin = dj.Connection(source.address, source.admin_user, source.admin_password, use_tls=False)
        pipeline = build_pipeline(admin, "lab")
        fill_pipeline(pipeline, subjects=4, recordings=250)
        users = create_link_users(source, "lab", "lab_outbound")
        console.print(f"source pipeline `lab`: {len(pipeline['Scan']())} scans with "
                      f"{len(pipeline['Scan'].Channel())} channel rows")
        console.print(f"link user `{users.link_user}`: SELECT, REFERENCES on `lab`, all on `lab_outbound`")

        step("The collaborator links a local table to lab.Scan")
        os.environ.update(LINK_USER=users.link_user, LINK_PASS=users.link_password, LINK_OUTBOUND="lab_outbound")
        dj.config.update({"database.host": local.address, "database.user": local.admin_user,
                          "database.password": local.admin_password, "database.use_tls": False, "safemode": False})

        @Link(LazySchema("collab"), LazySchema("lab", host=source.address))
        class Scan:
            """The collaborator's copy of the lab's scans."""

        console.print("@Link(LazySchema('collab'), LazySchema('lab', host=...))\nclass Scan: ...")

        step("Pull one subject, then everything (progress bar on stderr)")
        report = Scan().pull({"subject": "s0"}, batch_size=50)
        console.print(f"pulled {report.pulled} scans with {report.part_rows} channel rows")
        report = Scan().pull(batch_size=100)
        console.print(f"pulled {report.pulled} more; pulling again finds {Scan().pull().pulled} new")
        console.print(f"local: {len(Scan())} scans, {len(Scan.Channel())} channel rows")

        step("A regular source user cannot delete rows the collaborator holds")
        with pymysql.connect(host=source.host, port=source.port, user=users.regular_user,
                             password=users.regular_password) as connection, connection.cursor() as cursor:
            try:
                cursor.execute("DELETE FROM lab.__scan WHERE subject = 's1'")
            except pymysql.err.IntegrityError as error:
                console.print(f"refused by the foreign key: {error.args[1][:80]}...")

        step("Deletion handshake: the source asks, the collaborator deletes, the source finishes")
        lab_side = SourceLink(LazySchema("lab", host=source.address, user=source.admin_user,
                                         password=source.admin_password), "Scan")
        requested = lab_side.request_deletion({"subject": "s3"}, "recording < 10")
        console.print(f"source requests deletion of {requested} scans")
        console.print(f"collaborator refreshes: {Scan().refresh()} requests; "
                      f"DeletionRequested has {len(Scan().DeletionRequested())}")
        (Scan() & Scan().DeletionRequested()).delete()
        console.print(f"collaborator deleted them; source sees {len(lab_side.approved())} approved")
        finished = lab_side.finish_deletion()
        console.print(f"source finished: {finished.source_rows} scans deleted, {finished.outbound_rows} approvals "
                      "cleared")

        step("Diff and sync: stale rows of the link, a CSV roster against a table, MariaDB against PostgreSQL")
        with tempfile.TemporaryDirectory() as folder:
            diff_demo(Path(folder), source, Scan)

        step("External storage: blobs and attachments travel store to store (lab: files, collaborator: S3)")
        with tempfile.TemporaryDirectory() as folder, s3_server(Path(folder)) as s3:
            external_demo(Path(folder), s3, source, admin)

        step("Export: capture what an analysis fetched, write a bundle, restore it elsewhere, verify it")
        with tempfile.TemporaryDirectory() as folder:
            export_demo(Path(folder), source, local, admin)

        step("DataJoint 2.x on PostgreSQL: a cross-format pull and refresh, a link between PostgreSQL servers, an "
             "export, and back into 0.14")
        dj2_demo(source, admin)

        step("Status, from the command line")
        env = dict(os.environ, LINK_HOST=source.address, COLUMNS="120")
        subprocess.run([sys.executable, "-m", "djshare", "status"], env=env, check=True)
        admin.close()
        step("Done: servers stopped and their directories removed")


if __name__ == "__main__":
    main()

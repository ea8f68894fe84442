"""End-to-end demo of a djshare link against two throw-away MariaDB servers (run by `make demo`).

A source lab shares its `Scan` table (a Computed table with a part table) with a collaborator:
link, pull with a progress bar, the deletion handshake, and what a regular source user cannot do.
Everything is started here and removed at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datajoint as dj
import pymysql
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from djshare import LazySchema, Link, SourceLink
from tests.pipeline import build_pipeline, fill_pipeline
from tests.servers import create_link_users, mariadb_servers

console = Console()


def step(text: str) -> None:
    console.print(f"\n[bold cyan]== {text}[/bold cyan]")


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

        step("Status, from the command line")
        env = dict(os.environ, LINK_HOST=source.address, COLUMNS="120")
        subprocess.run([sys.executable, "-m", "djshare", "status"], env=env, check=True)
        admin.close()
        step("Done: servers stopped and their directories removed")


if __name__ == "__main__":
    main()

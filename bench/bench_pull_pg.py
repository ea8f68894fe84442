"""Pull benchmark into DataJoint 2.x on PostgreSQL: a cross-format djshare pull (0.14 source on MariaDB, local
tables in 2.x's layout on PostgreSQL) vs `pg_dump | psql` of the same PostgreSQL tables, in the same run.

Data: the rows of `bench_pull.py` (10,000 masters with 2 part rows each, 1,000 masters with a 100 KB
longblob) on a throw-away MariaDB source. djshare pulls them into a throw-away PostgreSQL 15; the baseline
then copies the tables djshare wrote, schema and rows, with `pg_dump -n SCHEMA | psql` into another
database on the same server: the cost of moving these rows into PostgreSQL with PostgreSQL's own tools.
djshare also reads from another server and converts the types, so the ratio is an upper bound on its own
overhead. Also printed: `mariadb-dump | mariadb` of the source tables (the 0.14 link's baseline).

    python bench/bench_pull_pg.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pull import USERS, Workload, dump_copy, make_blobs, make_rows  # noqa: E402
from djshare.link.api import LazySchema  # noqa: E402
from djshare.link.crossformat import CrossLink, PostgresSchema  # noqa: E402
from tests.servers import PostgresServer, _pg_binary, create_link_users, mariadb_servers, postgres_server  # noqa: E402

OUTBOUND = "bench_outbound"


def djshare_pull(source_address: str, pg: PostgresServer, schema: str, rows: Workload,
                 blobs: Workload) -> tuple[float, float]:
    def remote(work: Workload) -> LazySchema:
        return LazySchema(work.schema, host=source_address, user=USERS.link_user, password=USERS.link_password)

    target = PostgresSchema(schema, host=pg.address, database=pg.database, user=pg.admin_user,
                            password=pg.admin_password, stores={})
    trial = CrossLink("Trial", remote(rows), target, outbound=OUTBOUND)
    frame = CrossLink("Frame", remote(blobs), target, outbound=OUTBOUND)
    trial.status(), frame.status()  # declare the tables before the clock starts (pg_dump's DDL is cheap too)
    started = time.perf_counter()
    assert trial.pull(progress=False).pulled == 10_000
    middle = time.perf_counter()
    assert frame.pull(progress=False).pulled == 1_000
    return middle - started, time.perf_counter() - middle


def pg_dump_copy(pg: PostgresServer, schema: str, database: str) -> float:
    pg.execute(f"CREATE DATABASE {database}")
    env = dict(os.environ, PGPASSWORD=pg.admin_password)
    connection = ["-h", pg.host, "-p", str(pg.port), "-U", pg.admin_user]
    started = time.perf_counter()
    dump = subprocess.Popen([_pg_binary("pg_dump"), *connection, "-n", schema, pg.database], stdout=subprocess.PIPE,
                            env=env)
    subprocess.run([_pg_binary("psql"), *connection, "-q", "-v", "ON_ERROR_STOP=1", "-d", database],
                   stdin=dump.stdout, stdout=subprocess.DEVNULL, check=True, env=env)
    assert dump.wait() == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with mariadb_servers(2, max_allowed_packet="16M") as (source, maria_local), postgres_server() as pg:
        rows_work, blobs_work = make_rows(source, 10_000), make_blobs(source)
        create_link_users(source, rows_work.schema, OUTBOUND, USERS)
        source.execute(f"GRANT SELECT, REFERENCES ON `{blobs_work.schema}`.* TO '{USERS.link_user}'@'%'")
        pulls_rows, pulls_blobs, pg_dumps, maria_dumps = [], [], [], []
        for run in range(args.repeat):
            schema = f"pulled_{run}"
            rows, blobs = djshare_pull(source.address, pg, schema, rows_work, blobs_work)
            pulls_rows.append(rows)
            pulls_blobs.append(blobs)
            pg_dumps.append(pg_dump_copy(pg, schema, f"dumped_{run}"))
            maria_dumps.append(sum(dump_copy(work, source, source.port, maria_local, f"dump_{run}_{index}")
                                   for index, work in enumerate((rows_work, blobs_work))))
            copied = pg.query(f"SELECT COUNT(*) FROM {schema}.trial__sample")[0][0]
            assert copied == 20_000, copied
            source.execute(f"DELETE FROM `{OUTBOUND}`.`{rows_work.schema}_trial_outbound`",
                           f"DELETE FROM `{OUTBOUND}`.`{blobs_work.schema}_frame_outbound`")
        rows, blobs, pg_dump, maria_dump = (statistics.median(x) for x in (pulls_rows, pulls_blobs, pg_dumps,
                                                                            maria_dumps))
        print("servers: MariaDB 10.11 (source) and PostgreSQL 15 (local) on 127.0.0.1; "
              f"medians of {args.repeat} runs")
        print(f"pg_dump | psql of the pulled tables (all three): {pg_dump:6.2f} s")
        print(f"mariadb-dump | mariadb of the source tables:      {maria_dump:6.2f} s")
        print(f"djshare pull into 2.x, 10,000 masters + 20,000 parts: {rows:6.2f} s")
        print(f"djshare pull into 2.x, 1,000 x 100 KB <blob>:         {blobs:6.2f} s")
        print(f"djshare pull into 2.x, both:                          {rows + blobs:6.2f} s")
        print(f"ratio djshare / (pg_dump | psql): {(rows + blobs) / pg_dump:.2f}")
        print(f"ratio djshare / (mariadb-dump | mariadb): {(rows + blobs) / maria_dump:.2f}")


if __name__ == "__main__":
    main()

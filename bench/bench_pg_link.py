"""Pull benchmark for DataJoint 2.x on PostgreSQL: a djshare link between two PostgreSQL 15 servers vs
`pg_dump | psql` of the same tables between the same servers, in the same run.

Data (a schema in DataJoint 2.x's layout, made in SQL on a throw-away source server): 10,000 masters with 2 part
rows each, and 1,000 masters with a 100 KB `<blob>` (bytea). djshare pulls both into a schema on a throw-away
local server; the baseline copies the three tables, schema and rows, with `pg_dump -n SCHEMA | psql` into a
fresh database on the local server. Prints times and the ratio djshare / (pg_dump | psql).

    python bench/bench_pg_link.py [--repeat N]
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

from djshare.link.pg import PgLink, PostgresSchema  # noqa: E402
from tests.servers import PostgresServer, _pg_binary, postgres_server  # noqa: E402

SOURCE = "bench2"


def make_source(pg: PostgresServer) -> None:
    pg.execute(
        f"CREATE SCHEMA {SOURCE}",
        f'CREATE TABLE {SOURCE}."~lineage" (table_name varchar(64) NOT NULL, attribute_name varchar(64) NOT NULL, '
        "lineage varchar(255) NOT NULL, PRIMARY KEY (table_name, attribute_name))",
        f"CREATE TABLE {SOURCE}.trial (trial integer PRIMARY KEY, label varchar(32) NOT NULL, "
        "value double precision NOT NULL, started timestamp NOT NULL)",
        f"CREATE TABLE {SOURCE}.trial__sample (trial integer NOT NULL REFERENCES {SOURCE}.trial, "
        "sample smallint NOT NULL, reading real NOT NULL, note varchar(64) NOT NULL, PRIMARY KEY (trial, sample))",
        f"CREATE TABLE {SOURCE}.frame (frame integer PRIMARY KEY, image bytea NOT NULL)",
        f"COMMENT ON COLUMN {SOURCE}.trial.trial IS ':int32:'",
        f"COMMENT ON COLUMN {SOURCE}.trial__sample.sample IS ':int16:'",
        f"COMMENT ON COLUMN {SOURCE}.trial__sample.reading IS ':float32:'",
        f"COMMENT ON COLUMN {SOURCE}.frame.image IS ':<blob>:'",
        f"INSERT INTO {SOURCE}.\"~lineage\" VALUES ('trial', 'trial', '{SOURCE}.trial.trial'), "
        f"('trial__sample', 'trial', '{SOURCE}.trial.trial'), "
        f"('trial__sample', 'sample', '{SOURCE}.trial__sample.sample'), ('frame', 'frame', '{SOURCE}.frame.frame')",
        f"INSERT INTO {SOURCE}.trial SELECT i, 'trial ' || i, i / 7.0, "
        "'2024-01-01'::timestamp + i * interval '1 minute' FROM generate_series(1, 10000) i",
        f"INSERT INTO {SOURCE}.trial__sample SELECT t, s, random(), 'note ' || t || '/' || s "
        "FROM generate_series(1, 10000) t, generate_series(1, 2) s",
        f"INSERT INTO {SOURCE}.frame SELECT i, decode(repeat(md5(i::text), 3125), 'hex') "
        "FROM generate_series(1, 1000) i",
    )


def schema(pg: PostgresServer, name: str) -> PostgresSchema:
    return PostgresSchema(name, host=pg.address, database=pg.database, user=pg.admin_user, password=pg.admin_password)


def djshare_pull(source: PostgresServer, local: PostgresServer, target: str, outbound: str) -> tuple[float, float]:
    trial = PgLink("Trial", schema(source, SOURCE), schema(local, target), outbound=outbound)
    frame = PgLink("Frame", schema(source, SOURCE), schema(local, target), outbound=outbound)
    trial.status(), frame.status()  # declare the tables before the clock starts (pg_dump's DDL is cheap too)
    started = time.perf_counter()
    assert trial.pull(progress=False).pulled == 10_000
    middle = time.perf_counter()
    assert frame.pull(progress=False).pulled == 1_000
    return middle - started, time.perf_counter() - middle


def dump_copy(source: PostgresServer, local: PostgresServer, database: str) -> float:
    local.execute(f"CREATE DATABASE {database}")
    started = time.perf_counter()
    dump = subprocess.Popen([_pg_binary("pg_dump"), "-h", source.host, "-p", str(source.port), "-U",
                             source.admin_user, "-n", SOURCE, source.database], stdout=subprocess.PIPE,
                            env=dict(os.environ, PGPASSWORD=source.admin_password))
    subprocess.run([_pg_binary("psql"), "-h", local.host, "-p", str(local.port), "-U", local.admin_user, "-q",
                    "-v", "ON_ERROR_STOP=1", "-d", database], stdin=dump.stdout, stdout=subprocess.DEVNULL,
                   check=True, env=dict(os.environ, PGPASSWORD=local.admin_password))
    assert dump.wait() == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with postgres_server() as source, postgres_server() as local:
        make_source(source)
        dumps, rows, blobs = [], [], []
        for run in range(args.repeat):
            dumps.append(dump_copy(source, local, f"dumped_{run}"))
            pulled = djshare_pull(source, local, f"pulled_{run}", f"outbound_{run}")
            rows.append(pulled[0])
            blobs.append(pulled[1])
        dump, row, blob = (statistics.median(x) for x in (dumps, rows, blobs))
        print(f"servers: two PostgreSQL 15 on 127.0.0.1; medians of {args.repeat} runs")
        print(f"pg_dump | psql (all three tables):              {dump:6.2f} s")
        print(f"djshare pull, 10,000 masters + 20,000 parts:    {row:6.2f} s")
        print(f"djshare pull, 1,000 x 100 KB <blob>:            {blob:6.2f} s")
        print(f"djshare pull, both:                             {row + blob:6.2f} s")
        print(f"ratio djshare / (pg_dump | psql): {(row + blob) / dump:.2f}")


if __name__ == "__main__":
    main()

"""Pull benchmark: djshare pull vs `mariadb-dump | mariadb` of the same rows, in the same run.

Data (made on a throw-away source server): 10,000 masters with 2 part rows each, and 1,000 masters with
a 100 KB longblob. Both copies go to a throw-away local server. Prints times and ratios (djshare / dump);
the target for issue 2 is a ratio of at most 1.5.

    python bench/bench_pull.py [--repeat N] [--latency-ms MS]

With --latency-ms the source server is reached through a proxy that delays each direction by MS (a
remote source: 10 ms gives about 20 ms per round trip), for both djshare and the dump.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import datajoint as dj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import LatencyProxy  # noqa: E402
from djshare import LazySchema, Link  # noqa: E402
from tests.servers import MariaDBServer, create_link_users, mariadb_servers  # noqa: E402

SOURCE, OUTBOUND = "bench_src", "bench_outbound"


def make_source(source: MariaDBServer) -> None:
    connection = dj.Connection(source.address, source.admin_user, source.admin_password, use_tls=False)
    schema = dj.Schema(SOURCE, connection=connection)

    @schema
    class Trial(dj.Manual):
        definition = """
        trial : int
        ---
        label : varchar(32)
        value : double
        started : datetime
        """

        class Sample(dj.Part):
            definition = """
            -> master
            sample : tinyint
            ---
            reading : float
            note : varchar(64)
            """

    @schema
    class Frame(dj.Manual):
        definition = """
        frame : int
        ---
        image : longblob
        """

    source.execute(
        f"INSERT INTO `{SOURCE}`.`trial` SELECT seq, CONCAT('trial ', seq), seq / 7, "
        f"'2024-01-01' + INTERVAL seq MINUTE FROM `{SOURCE}`.seq_1_to_10000",
        f"INSERT INTO `{SOURCE}`.`trial__sample` SELECT t.seq, s.seq, RAND(t.seq * 3 + s.seq), "
        f"CONCAT('note ', t.seq, '/', s.seq) FROM `{SOURCE}`.seq_1_to_10000 t JOIN `{SOURCE}`.seq_1_to_2 s",
        f"INSERT INTO `{SOURCE}`.`frame` SELECT seq, UNHEX(REPEAT(MD5(seq), 6250)) FROM `{SOURCE}`.seq_1_to_1000",
    )
    connection.close()
    assert Trial and Frame


def dump_copy(source: MariaDBServer, local: MariaDBServer, target: str, source_port: int) -> float:
    local.execute(f"CREATE DATABASE `{target}`")
    started = time.perf_counter()
    dump = subprocess.Popen(
        ["mariadb-dump", "-h", source.host, "-P", str(source_port), "-u", source.admin_user,
         f"-p{source.admin_password}", "--single-transaction", SOURCE, "trial", "trial__sample", "frame"],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["mariadb", "-h", local.host, "-P", str(local.port), "-u", local.admin_user,
                    f"-p{local.admin_password}", target], stdin=dump.stdout, check=True)
    assert dump.wait() == 0
    return time.perf_counter() - started


def djshare_copy(source: MariaDBServer, local: MariaDBServer, target: str, source_port: int) -> tuple[float, float]:
    dj.config["database.host"] = local.address
    dj.config["database.user"] = local.admin_user
    dj.config["database.password"] = local.admin_password
    dj.config["database.use_tls"] = False
    remote = LazySchema(SOURCE, host=f"{source.host}:{source_port}", user="link_user", password="link-secret")
    here = LazySchema(target)
    Trial = Link(here, remote, outbound=OUTBOUND)(type("Trial", (), {}))
    Frame = Link(here, remote, outbound=OUTBOUND)(type("Frame", (), {}))
    Trial(), Frame()  # declare the tables before the clock starts (the dump's DDL is cheap too)
    started = time.perf_counter()
    assert Trial().pull(progress=False).pulled == 10_000
    middle = time.perf_counter()
    assert Frame().pull(progress=False).pulled == 1_000
    ended = time.perf_counter()
    return middle - started, ended - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one-way delay to the source server")
    args = parser.parse_args()
    with mariadb_servers(2, max_allowed_packet="16M") as (source, local):
        make_source(source)
        create_link_users(source, SOURCE, OUTBOUND)
        port = LatencyProxy(source.port, args.latency_ms).port if args.latency_ms else source.port
        dumps, pulls_rows, pulls_blobs = [], [], []
        for run in range(args.repeat):
            dumps.append(dump_copy(source, local, f"dump_{run}", port))
            rows, blobs = djshare_copy(source, local, f"pulled_{run}", port)
            pulls_rows.append(rows)
            pulls_blobs.append(blobs)
            source.execute(f"DELETE FROM `{OUTBOUND}`.`{SOURCE}_trial_outbound`",
                           f"DELETE FROM `{OUTBOUND}`.`{SOURCE}_frame_outbound`")
        dump, rows, blobs = (statistics.median(x) for x in (dumps, pulls_rows, pulls_blobs))
        print("servers: MariaDB 10.11 on 127.0.0.1, local at the default max_allowed_packet (16M); "
              f"source latency {args.latency_ms:g} ms each way")
        print(f"mariadb-dump | mariadb (all three tables): {dump:6.2f} s   (median of {args.repeat})")
        print(f"djshare pull, 10,000 masters + 20,000 parts:  {rows:6.2f} s")
        print(f"djshare pull, 1,000 x 100 KB longblob:         {blobs:6.2f} s")
        print(f"djshare pull, both:                           {rows + blobs:6.2f} s")
        print(f"ratio djshare / dump: {(rows + blobs) / dump:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()

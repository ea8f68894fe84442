"""Pull benchmark: djshare pull against `mariadb-dump | mariadb` of the same rows, and against the floor (`SELECT ...
INTO OUTFILE` + `LOAD DATA INFILE`), in the same run, each workload on its own.

Workloads, made on a throw-away source server: masters with 2 part rows each (10,000 and 100,000 masters by default;
`--large` adds 1,000,000), and 1,000 masters with a 100 KB longblob. Both servers run at MariaDB's own defaults
(durable commits: `innodb_flush_log_at_trx_commit=1`, latin1, 16 MB packets). The dump reads the source as the
same restricted link user djshare reads it as (SELECT on the source schema); both write into the local server as
its admin. The floor needs the FILE privilege, so it runs as the admins, with both servers reading and writing files
on this machine. The tools alternate their order run by run; each is timed `--repeat` times (medians, with min and
max), and every copy is checked by its row count.

    python bench/bench_pull.py [--repeat N] [--masters 10000,100000] [--large] [--latency-ms MS]

With --latency-ms the source server is reached through a proxy that delays each direction by MS (a remote source:
10 ms gives about 20 ms per round trip), for djshare and the dump alike (the floor is local by nature, so it is left
out); the rows workload is then 10,000 masters unless --masters says otherwise.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datajoint as dj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import LatencyProxy  # noqa: E402
from djshare import LazySchema, Link  # noqa: E402
from tests.servers import LinkUsers, MariaDBServer, create_link_users, mariadb_servers  # noqa: E402

OUTBOUND = "bench_outbound"
BLOBS = 1_000
USERS = LinkUsers()


@dataclass(frozen=True)
class Workload:
    """Source tables of one workload: a master (with its part, for rows) in a schema of its own."""

    name: str  # what the report calls it
    schema: str
    tables: tuple[str, ...]  # SQL names, parents first
    rows: int  # rows in all tables
    target: float  # the ratio to the dump this workload should reach (issue 15)


def make_rows(source: MariaDBServer, masters: int) -> Workload:
    schema = f"bench_rows_{masters}"
    connection = dj.Connection(source.address, source.admin_user, source.admin_password, use_tls=False)
    declared = dj.Schema(schema, connection=connection)

    @declared
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

    source.execute(
        f"INSERT INTO `{schema}`.`trial` SELECT seq, CONCAT('trial ', seq), seq / 7, "
        f"'2024-01-01' + INTERVAL seq MINUTE FROM `{schema}`.seq_1_to_{masters}",
        f"INSERT INTO `{schema}`.`trial__sample` SELECT t.seq, s.seq, RAND(t.seq * 3 + s.seq), "
        f"CONCAT('note ', t.seq, '/', s.seq) FROM `{schema}`.seq_1_to_{masters} t JOIN `{schema}`.seq_1_to_2 s",
    )
    connection.close()
    assert Trial
    return Workload(f"rows: {masters:,} masters + {2 * masters:,} parts", schema, ("trial", "trial__sample"),
                    3 * masters, 1.0)


def make_blobs(source: MariaDBServer) -> Workload:
    schema = "bench_blobs"
    connection = dj.Connection(source.address, source.admin_user, source.admin_password, use_tls=False)
    declared = dj.Schema(schema, connection=connection)

    @declared
    class Frame(dj.Manual):
        definition = """
        frame : int
        ---
        image : longblob
        """

    source.execute(f"INSERT INTO `{schema}`.`frame` SELECT seq, UNHEX(REPEAT(MD5(seq), 6250)) "
                   f"FROM `{schema}`.seq_1_to_{BLOBS}")
    connection.close()
    assert Frame
    return Workload(f"blobs: {BLOBS:,} masters with a 100 KB longblob", schema, ("frame",), BLOBS, 0.5)


def count(server: MariaDBServer, schema: str, tables: tuple[str, ...]) -> int:
    return sum(int(str(server.query(f"SELECT COUNT(*) FROM `{schema}`.`{t}`")[0][0])) for t in tables)


def dump_copy(work: Workload, source: MariaDBServer, source_port: int, local: MariaDBServer, target: str) -> float:
    """mariadb-dump as the link user | mariadb as the local admin (passwords in MYSQL_PWD, never in argv)."""
    local.execute(f"CREATE DATABASE `{target}`")
    started = time.perf_counter()
    dump = subprocess.Popen(
        ["mariadb-dump", "-h", source.host, "-P", str(source_port), "-u", USERS.link_user, "--single-transaction",
         "--skip-triggers", work.schema, *work.tables],
        stdout=subprocess.PIPE, env=dict(os.environ, MYSQL_PWD=USERS.link_password))
    subprocess.run(["mariadb", "-h", local.host, "-P", str(local.port), "-u", local.admin_user, target],
                   stdin=dump.stdout, check=True, env=dict(os.environ, MYSQL_PWD=local.admin_password))
    assert dump.wait() == 0
    return time.perf_counter() - started


def floor_copy(work: Workload, source: MariaDBServer, local: MariaDBServer, target: str, folder: Path) -> float:
    """SELECT ... INTO OUTFILE on the source, LOAD DATA INFILE into the same tables on the local server."""
    local.execute(f"CREATE DATABASE `{target}`")
    ddl = [str(source.query(f"SHOW CREATE TABLE `{work.schema}`.`{t}`")[0][1]) for t in work.tables]
    local.execute(f"USE `{target}`", *ddl)  # parents first: the part's foreign key names its master
    started = time.perf_counter()
    for table in work.tables:
        path = folder / f"{target}.{table}.tsv"
        source.execute(f"SELECT * FROM `{work.schema}`.`{table}` INTO OUTFILE '{path}'")
        local.execute(f"LOAD DATA INFILE '{path}' INTO TABLE `{target}`.`{table}`")
        path.unlink()
    return time.perf_counter() - started


def djshare_copy(work: Workload, source: MariaDBServer, source_port: int, local: MariaDBServer, target: str) -> float:
    dj.config["database.host"] = local.address
    dj.config["database.user"] = local.admin_user
    dj.config["database.password"] = local.admin_password
    dj.config["database.use_tls"] = False
    remote = LazySchema(work.schema, host=f"{source.host}:{source_port}", user=USERS.link_user,
                        password=USERS.link_password)
    master = work.tables[0].title()
    linked = Link(LazySchema(target), remote, outbound=OUTBOUND)(type(master, (), {}))
    linked()  # declare the tables before the clock starts (the dump's DDL is cheap too)
    started = time.perf_counter()
    linked().pull(progress=False)
    elapsed = time.perf_counter() - started
    source.execute(f"DELETE FROM `{OUTBOUND}`.`{work.schema}_{work.tables[0]}_outbound`")  # the next run pulls again
    return elapsed


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):6.2f} s (min {min(times):.2f}, max {max(times):.2f})"


def measure(work: Workload, source: MariaDBServer, port: int, local: MariaDBServer, repeat: int,
            with_floor: bool, folder: Path) -> None:
    tools: dict[str, Callable[[str], float]] = {
        "mariadb-dump | mariadb (link user)": lambda t: dump_copy(work, source, port, local, t),
        "djshare pull (link user)": lambda t: djshare_copy(work, source, port, local, t),
    }
    if with_floor:
        tools["SELECT INTO OUTFILE + LOAD DATA INFILE (floor, admins)"] = \
            lambda t: floor_copy(work, source, local, t, folder)
    names = list(tools)
    times: dict[str, list[float]] = {name: [] for name in names}
    for run in range(repeat):
        for index in range(len(names)):  # the order turns by one each run
            name = names[(run + index) % len(names)]
            target = f"copy_{len(times[name])}_{names.index(name)}"
            times[name].append(tools[name](target))
            assert count(local, target, work.tables) == work.rows, (name, target)
            local.execute(f"DROP DATABASE `{target}`")
    dump, pull = (statistics.median(times[n]) for n in names[:2])
    print(f"{work.name}: {repeat} runs, tools alternating")
    for name in names:
        print(f"  {name:56} {spread(times[name])}")
    line = f"  ratio djshare / dump (medians): {pull / dump:.2f}  (target <= {work.target:g})"
    if with_floor:
        line += f"; djshare / floor: {pull / statistics.median(times[names[2]]):.2f}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(line + f"; peak RSS of this process so far {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one-way delay to the source server")
    parser.add_argument("--masters", default="", help="comma-separated master counts of the rows workloads")
    parser.add_argument("--large", action="store_true", help="also 1,000,000 masters + 2,000,000 parts")
    args = parser.parse_args()
    masters = [int(m) for m in args.masters.split(",") if m] or ([10_000] if args.latency_ms else [10_000, 100_000])
    if args.large:
        masters.append(1_000_000)
    with mariadb_servers(2, defaults=True) as (source, local), \
            tempfile.TemporaryDirectory(prefix="djshare-floor-") as folder:
        os.chmod(folder, 0o777)  # the servers (as root here) read and write the floor's files
        workloads = [make_rows(source, m) for m in masters] + [make_blobs(source)]
        create_link_users(source, workloads[0].schema, OUTBOUND, USERS)
        source.execute(*(f"GRANT SELECT, REFERENCES ON `{w.schema}`.* TO '{USERS.link_user}'@'%'"
                         for w in workloads))
        port = LatencyProxy(source.port, args.latency_ms).port if args.latency_ms else source.port
        version = str(source.query("SELECT VERSION()")[0][0]).split("-")[0]
        print(f"servers: MariaDB {version} at its defaults on 127.0.0.1 (innodb_flush_log_at_trx_commit="
              f"{source.query('SELECT @@innodb_flush_log_at_trx_commit')[0][0]}, max_allowed_packet "
              f"{int(str(local.query('SELECT @@max_allowed_packet')[0][0])) >> 20} MB); source latency "
              f"{args.latency_ms:g} ms each way; load average {os.getloadavg()[0]:.2f} at the start")
        for work in workloads:
            measure(work, source, port, local, args.repeat, not args.latency_ms, Path(folder))


if __name__ == "__main__":
    main()

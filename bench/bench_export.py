"""Export benchmark: a chain of 8 tables (each row references one row of the table before), 20,000 rows
each; the capture selects 10,000 rows of the last table, so the closure holds 10,000 rows per table.

Times djshare's closure + bundle write + restore into a second server, and in the same run
`mysqldump --where "<explicit key list>"` for the same rows piped into `mariadb` on the second server.

    python bench/bench_export.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datajoint as dj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from djshare.export.bundle import write  # noqa: E402
from djshare.export.closure import compute  # noqa: E402
from djshare.export.restore import restore, verify  # noqa: E402
from djshare.sql.connection import ServerAddress, Session  # noqa: E402
from tests.servers import MariaDBServer, mariadb_servers  # noqa: E402

SCHEMA, TABLES, ROWS, SELECTED = "chain", 8, 20_000, 10_000


def make_chain(server: MariaDBServer) -> None:
    connection = dj.Connection(server.address, server.admin_user, server.admin_password, use_tls=False)
    schema = dj.Schema(SCHEMA, connection=connection)
    context: dict[str, type] = {}
    for i in range(1, TABLES + 1):
        parent = f"-> Link{i - 1}\n" if i > 1 else ""
        definition = f"id{i} : int\n---\n{parent}value{i} : double\nlabel{i} : varchar(40)\n"
        table = type(f"Link{i}", (dj.Manual,), {"definition": definition})
        context[table.__name__] = schema(table, context=context)
        previous = "seq, " if i > 1 else ""
        server.execute(f"INSERT INTO `{SCHEMA}`.`link{i}` SELECT seq, {previous}seq / 3, CONCAT('row ''', seq, '''') "
                       f"FROM `{SCHEMA}`.seq_1_to_{ROWS}")
    connection.close()


def address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


def dump_where(source: MariaDBServer, target: MariaDBServer) -> float:
    target.execute(f"CREATE DATABASE `{SCHEMA}`")
    started = time.perf_counter()
    env = dict(os.environ, MYSQL_PWD=source.admin_password)
    keys = ",".join(str(k) for k in range(1, SELECTED + 1))
    for i in range(1, TABLES + 1):
        dump = subprocess.Popen(["mariadb-dump", "-h", source.host, "-P", str(source.port), "-u", source.admin_user,
                                 "--single-transaction", f"--where=id{i} IN ({keys})", SCHEMA, f"link{i}"],
                                stdout=subprocess.PIPE, env=env)
        subprocess.run(["mariadb", "-h", target.host, "-P", str(target.port), "-u", target.admin_user, SCHEMA],
                       stdin=dump.stdout, check=True, env=dict(os.environ, MYSQL_PWD=target.admin_password))
        assert dump.wait() == 0
    return time.perf_counter() - started


def main() -> None:
    with mariadb_servers(3, max_allowed_packet="16M") as (source, dumped, restored):
        make_chain(source)
        source.execute("CREATE DATABASE `bench_work`")
        baseline = dump_where(source, dumped)
        with tempfile.TemporaryDirectory() as folder, Session(address(source)) as session, \
                Session(address(restored)) as target:
            started = time.perf_counter()
            selection = compute(session, [((SCHEMA, f"link{TABLES}"), f"id{TABLES} <= {SELECTED}")], "bench_work")
            closed = time.perf_counter()
            write(selection, Path(folder) / "bundle")
            written = time.perf_counter()
            restore(Path(folder) / "bundle", target)
            done = time.perf_counter()
            assert all(count == SELECTED for count in selection.counts.values()), selection.counts
            assert verify(Path(folder) / "bundle", target).problems == []
        total = done - started
        print(f"{TABLES} chained tables x {ROWS:,} rows, {SELECTED:,} selected per table; MariaDB 10.11 on 127.0.0.1")
        print(f"mysqldump --where (explicit keys) | mariadb: {baseline:6.2f} s")
        print(f"djshare closure {closed - started:.2f} s + bundle write {written - closed:.2f} s + restore "
              f"{done - written:.2f} s = {total:6.2f} s")
        print(f"ratio djshare / mysqldump: {total / baseline:.2f}")


if __name__ == "__main__":
    main()

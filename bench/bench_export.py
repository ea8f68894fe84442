"""Export benchmark: djshare's closure + bundle write + restore against `mariadb-dump --where` of the same rows
piped into `mariadb`, on servers at MariaDB's default settings, both as the same (admin) user, in one run.

Two workloads, each reported on its own:

- **chain**: 8 tables, each row referencing one row of the table before, 20,000 rows each; the capture selects
  10,000 rows of the last table, so the closure holds 10,000 rows per table.
- **pipeline**: the test suite's two-schema export pipeline (renamed, nullable and repeated foreign keys, a part
  table, awkward strings) at 200 subjects x 10 sessions, and 15 analyses captured through DataJoint (semijoins,
  antijoins, nested subqueries, joins, aggregations, dj.U, renamed keys, limits, a union).

The baseline is given the answer: explicit key lists of the rows djshare's closure selected (computed before
timing), one `mariadb-dump --where` per table and chunk (the first creates the table), parents first. The tools
alternate run by run (djshare first in even runs); each run restores into empty servers. Medians of RUNS runs,
with min and max, and the ratio of the medians.

    python bench/bench_export.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import datajoint as dj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from djshare import export  # noqa: E402
from djshare.backends.address import ServerAddress  # noqa: E402
from djshare.backends.mariadb import Session, quote_name  # noqa: E402
from djshare.backends.mariadb_rows import row_literal  # noqa: E402
from djshare.export.bundle import write  # noqa: E402
from djshare.export.capture_tables import recorded  # noqa: E402
from djshare.export.closure import compute  # noqa: E402
from djshare.export.graph import Table  # noqa: E402
from djshare.export.restoring import restore, verify  # noqa: E402
from tests.integration.test_export_analyses import ANALYSES, Namespace  # noqa: E402
from tests.pipeline import add_deciding_tables, build_export_pipeline, fill_export  # noqa: E402
from tests.servers import MariaDBServer, mariadb_servers  # noqa: E402

CHAIN, TABLES, ROWS, SELECTED = "chain", 8, 20_000, 10_000
CORE, ANALYSIS, WORK = "bench_core", "bench_analysis", "bench_work"
SUBJECTS, SESSIONS = 200, 10
ARGUMENT_BYTES = 100_000  # one --where below the kernel's per-argument limit

Captured = list[tuple[Table, str]]


def make_chain(server: MariaDBServer) -> Captured:
    connection = dj.Connection(server.address, server.admin_user, server.admin_password, use_tls=False)
    schema = dj.Schema(CHAIN, connection=connection)
    context: dict[str, type] = {}
    for i in range(1, TABLES + 1):
        parent = f"-> Link{i - 1}\n" if i > 1 else ""
        definition = f"id{i} : int\n---\n{parent}value{i} : double\nlabel{i} : varchar(40)\n"
        table = type(f"Link{i}", (dj.Manual,), {"definition": definition})
        context[table.__name__] = schema(table, context=context)
        previous = "seq, " if i > 1 else ""
        server.execute(f"INSERT INTO `{CHAIN}`.`link{i}` SELECT seq, {previous}seq / 3, CONCAT('row ''', seq, '''') "
                       f"FROM `{CHAIN}`.seq_1_to_{ROWS}")
    connection.close()
    return [((CHAIN, f"link{TABLES}"), f"id{TABLES} <= {SELECTED}")]


def make_pipeline(server: MariaDBServer) -> Captured:
    """The export pipeline, filled, and 15 analyses of it captured into the paper "bench"."""
    for schema in (CORE, ANALYSIS):  # the server's default is latin1; the pipeline's strings need utf8mb4
        server.execute(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4")
    connection = dj.Connection(server.address, server.admin_user, server.admin_password, use_tls=False)
    p = build_export_pipeline(connection, CORE, ANALYSIS)
    fill_export(p, subjects=SUBJECTS, sessions=SESSIONS)
    excluded = [(f"m{i}", s, "motion") for i in range(SUBJECTS) for s in range(SESSIONS) if (i * SESSIONS + s) % 7 == 1]
    tables = Namespace(add_deciding_tables(p, excluded, SUBJECTS, SESSIONS))
    analyses = {"everything of m1": lambda t: t.Session & "subject = 'm1'", **ANALYSES}
    assert len(analyses) == 15, len(analyses)
    for name, analysis in analyses.items():
        with export.capture("bench", name, schema=WORK):
            analysis(tables).fetch()
    connection.close()
    found: Captured = []
    for name, condition in recorded(address(server), "bench", WORK):
        schema, _, table = name.partition(".")
        found.append(((schema, table), condition))
    return found


def address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


def key_lists(source: MariaDBServer, restrictions: Captured) -> tuple[list[tuple[Table, list[str]]], int]:
    """Per table of the closure (parents first), `--where` conditions listing its selected keys; and the rows."""
    with Session(address(source)) as session:
        selection = compute(session, restrictions, WORK)
        conditions = []
        for table in selection.graph.tables:
            info = selection.info[table]
            names = ", ".join(quote_name(c) for c in info.primary_key)
            keys = [bytes(k).decode() for (k,) in session.rows(
                f"SELECT {row_literal(info.key_columns)} FROM {info.full_name} WHERE {selection.where(table)}")]
            chunks, chunk, size = [], [], 0
            for key in keys:
                if chunk and size + len(key) > ARGUMENT_BYTES:
                    chunks.append(f"({names}) IN ({','.join(chunk)})")
                    chunk, size = [], 0
                chunk.append(key)
                size += len(key) + 1
            chunks.append(f"({names}) IN ({','.join(chunk)})" if chunk else "FALSE")
            conditions.append((table, chunks))
        return conditions, sum(selection.counts.values())


def dump_where(source: MariaDBServer, target: MariaDBServer, conditions: list[tuple[Table, list[str]]]) -> float:
    env = dict(os.environ, MYSQL_PWD=source.admin_password)
    started = time.perf_counter()
    for (schema, table), chunks in conditions:
        target.execute(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
        for index, where in enumerate(chunks):
            options = ["--no-create-info"] if index else []
            dump = subprocess.Popen(["mariadb-dump", "-h", source.host, "-P", str(source.port), "-u",
                                     source.admin_user, "--single-transaction", *options, f"--where={where}", schema,
                                     table], stdout=subprocess.PIPE, env=env)
            subprocess.run(["mariadb", "-h", target.host, "-P", str(target.port), "-u", target.admin_user, schema],
                           stdin=dump.stdout, check=True, env=dict(os.environ, MYSQL_PWD=target.admin_password))
            assert dump.wait() == 0
    return time.perf_counter() - started


def djshare(source: MariaDBServer, target: MariaDBServer, restrictions: Captured, rows: int) -> tuple[float, ...]:
    """(closure, write, restore) seconds."""
    with tempfile.TemporaryDirectory() as folder, Session(address(source)) as session, \
            Session(address(target)) as there:
        started = time.perf_counter()
        selection = compute(session, restrictions, WORK)
        closed = time.perf_counter()
        write(selection, Path(folder) / "bundle")
        written = time.perf_counter()
        restore(Path(folder) / "bundle", there)
        done = time.perf_counter()
        assert sum(selection.counts.values()) == rows
        assert verify(Path(folder) / "bundle", there).problems == []
    return closed - started, written - closed, done - written


def empty(server: MariaDBServer, schemas: list[str]) -> None:
    for schema in schemas:
        server.execute(f"DROP DATABASE IF EXISTS `{schema}`")


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def measure(name: str, source: MariaDBServer, dumped: MariaDBServer, restored: MariaDBServer,
            make: Callable[[MariaDBServer], Captured], runs: int) -> None:
    restrictions = make(source)
    conditions, rows = key_lists(source, restrictions)
    schemas = sorted({schema for (schema, _), _ in conditions})
    baseline: list[float] = []
    ours: list[tuple[float, ...]] = []
    for run in range(runs):
        for tool in (("djshare", "dump") if run % 2 == 0 else ("dump", "djshare")):
            if tool == "dump":
                empty(dumped, schemas)
                baseline.append(dump_where(source, dumped, conditions))
            else:
                empty(restored, schemas)
                ours.append(djshare(source, restored, restrictions, rows))
    totals = [sum(parts) for parts in ours]
    print(f"{name}: {rows:,} rows in {len(conditions)} tables; MariaDB 10.11 at its defaults on 127.0.0.1, "
          f"{runs} runs alternating")
    print(f"  mariadb-dump --where (explicit keys) | mariadb: {spread(baseline)}")
    print(f"  djshare closure {statistics.median(p[0] for p in ours):.2f} s + bundle write "
          f"{statistics.median(p[1] for p in ours):.2f} s + restore {statistics.median(p[2] for p in ours):.2f} s: "
          f"{spread(totals)}")
    print(f"  ratio djshare / mariadb-dump (medians): {statistics.median(totals) / statistics.median(baseline):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with mariadb_servers(3, defaults=True) as (source, dumped, restored):
        source.execute(f"CREATE DATABASE `{WORK}`")
        measure("chain", source, dumped, restored, make_chain, runs)
        measure("pipeline (15 analyses)", source, dumped, restored, make_pipeline, runs)


if __name__ == "__main__":
    main()

"""Diff benchmark: two tables of N rows (composite key int + varchar, 4 columns) on two servers, 1 changed
row. Times djshare's diff and counts the rows it transferred; with --reladiff, also runs reladiff (the
maintained fork of data-diff, which itself does not install here: a dependency downloads a wheel from
GitHub while building) in its own virtualenv, bench/.reladiff-venv, made on first use, on the same tables.

    python bench/bench_diff.py [--rows 2000000] [--reladiff] [--repeat 3]

Each tool runs `--repeat` times, alternating; the best time of each is reported (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from djshare.backends.address import ServerAddress  # noqa: E402
from djshare.backends.catalog import read_table  # noqa: E402
from djshare.backends.mariadb import Session  # noqa: E402
from djshare.sync.actions import counts  # noqa: E402
from djshare.sync.diff import diff  # noqa: E402
from djshare.sync.sql_side import TableSide  # noqa: E402
from tests.servers import MariaDBServer, mariadb_servers  # noqa: E402

SCHEMA = "bench_diff"
VENV = Path(__file__).resolve().parent / ".reladiff-venv"


def fill(server: MariaDBServer, rows: int) -> None:
    server.execute(f"CREATE DATABASE `{SCHEMA}`",
                   f"CREATE TABLE `{SCHEMA}`.`t` (`a` int NOT NULL, `b` varchar(20) NOT NULL, `x` double NOT NULL, "
                   "`y` varchar(40) NOT NULL, PRIMARY KEY (`a`, `b`))",
                   f"INSERT INTO `{SCHEMA}`.`t` SELECT seq DIV 10, CONCAT('key-', seq % 10), seq / 7, "
                   f"CONCAT('value ', seq) FROM `{SCHEMA}`.seq_0_to_{rows - 1}",
                   # the same rows with an int key, which reladiff accepts
                   f"CREATE TABLE `{SCHEMA}`.`u` (`id` int NOT NULL, `a` int NOT NULL, `x` double NOT NULL, "
                   "`y` varchar(40) NOT NULL, PRIMARY KEY (`id`))",
                   f"INSERT INTO `{SCHEMA}`.`u` SELECT seq, seq DIV 10, seq / 7, CONCAT('value ', seq) "
                   f"FROM `{SCHEMA}`.seq_0_to_{rows - 1}")


def address(server: MariaDBServer) -> ServerAddress:
    return ServerAddress(server.host, server.port, server.admin_user, server.admin_password)


def reladiff(left: MariaDBServer, right: MariaDBServer, table: str, keys: list[str],
             columns: list[str]) -> tuple[float, str, bool]:
    if not (VENV / "bin" / "reladiff").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "reladiff[mysql]==0.6.0"], check=True)
    url = "mysql://{user}:{password}@127.0.0.1:{port}/" + SCHEMA
    started = time.perf_counter()
    one = url.format(user=left.admin_user, password=left.admin_password, port=left.port)
    two = url.format(user=right.admin_user, password=right.admin_password, port=right.port)
    result = subprocess.run(
        [str(VENV / "bin" / "reladiff"), one, table, two, table, *(f"-k{k}" for k in keys),
         *(f"-c{c}" for c in columns), "--stats"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    elapsed = time.perf_counter() - started
    output = (result.stdout + result.stderr).strip()[-1500:]
    return elapsed, output, result.returncode == 0 and "ERROR" not in output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--reladiff", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with mariadb_servers(2, max_allowed_packet="16M") as (left, right):
        started = time.perf_counter()
        fill(left, args.rows)
        fill(right, args.rows)
        right.execute(f"UPDATE `{SCHEMA}`.`t` SET y = 'changed' WHERE a = {args.rows // 20} AND b = 'key-3'")
        print(f"filled two tables of {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
        right.execute(f"UPDATE `{SCHEMA}`.`u` SET y = 'changed' WHERE id = {args.rows // 2 + 3}")
        for table, keys, columns in (("t", ["a", "b"], ["x", "y"]), ("u", ["id"], ["a", "x", "y"])):
            ours: list[float] = []
            theirs: list[float] = []
            output, worked = "", False
            for _ in range(args.repeat):
                with Session(address(left)) as one, Session(address(right)) as two:
                    sides = (TableSide(one, read_table(one, SCHEMA, table)),
                             TableSide(two, read_table(two, SCHEMA, table)))
                    started = time.perf_counter()
                    actions = list(diff(*sides, branch=table))
                    ours.append(time.perf_counter() - started)
                if args.reladiff:
                    elapsed, output, worked = reladiff(left, right, table, keys, columns)
                    theirs.append(elapsed)
            transferred = sides[0].rows_read + sides[1].rows_read
            print(f"table {table} (key {', '.join(keys)}): djshare diff {min(ours):.2f} s (best of {args.repeat}), "
                  f"{counts(actions)}, rows transferred {transferred:,} "
                  f"({100 * transferred / (2 * args.rows):.4f} % of the rows)")
            for action in actions:
                print(action.text())
            if args.reladiff and not worked:
                print(f"table {table}: reladiff failed (no time to compare)")
            elif args.reladiff:
                print(f"table {table}: reladiff {min(theirs):.2f} s (best of {args.repeat}); ratio djshare / reladiff "
                      f"{min(ours) / min(theirs):.2f}")
                print("reladiff said: " + "\n    ".join(line for line in output.splitlines() if "WARNING" not in line))


if __name__ == "__main__":
    main()

"""External-storage pull benchmark: djshare pull vs (mariadb-dump | mariadb) + object copy, same run.

Data: 1,000 masters with a 100 KB `blob@store`, once in a file store and once in an S3 store (moto).
Baseline: the rows (table and its ~external table) through mariadb-dump | mariadb, plus `cp -r` of the
file store, a boto3 copy of every object into another bucket (S3 -> S3), or a boto3 download of every
object (S3 -> file), 8 threads as djshare uses. Target ratio: at most 1.3.

    python bench/bench_stores.py [--rows N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import datajoint as dj
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from djshare import LazySchema, Link  # noqa: E402
from tests.servers import MariaDBServer, S3Server, create_link_users, mariadb_servers, s3_server  # noqa: E402

SOURCE, OUTBOUND = "bench_src", "bench_outbound"


def s3_store(s3: S3Server, bucket: str, location: str) -> dict[str, Any]:
    return {"protocol": "s3", "endpoint": s3.endpoint, "bucket": bucket, "location": location,
            "access_key": s3.access_key, "secret_key": s3.secret_key, "secure": False}


def make_source(source: MariaDBServer, rows: int) -> None:
    connection = dj.Connection(source.address, source.admin_user, source.admin_password, use_tls=False)
    schema = dj.Schema(SOURCE, connection=connection)

    @schema
    class Frame(dj.Manual):
        definition = """
        frame : int
        ---
        image : blob@src_files
        """

    @schema
    class Shot(dj.Manual):
        definition = """
        shot : int
        ---
        image : blob@src_s3
        """

    rng = np.random.default_rng(3)
    for table in (Frame, Shot):
        for start in range(0, rows, 100):
            table.insert([{table.primary_key[0]: i, "image": rng.integers(0, 255, 100_000, dtype=np.uint8)}
                          for i in range(start, min(start + 100, rows))])
    connection.close()


def dump(source: MariaDBServer, local: MariaDBServer, target: str, tables: list[str]) -> None:
    local.execute(f"CREATE DATABASE `{target}`")
    process = subprocess.Popen(
        ["mariadb-dump", "-h", source.host, "-P", str(source.port), "-u", source.admin_user,
         f"-p{source.admin_password}", "--single-transaction", SOURCE, *tables], stdout=subprocess.PIPE)
    subprocess.run(["mariadb", "-h", local.host, "-P", str(local.port), "-u", local.admin_user,
                    f"-p{local.admin_password}", target], stdin=process.stdout, check=True)
    assert process.wait() == 0


def baseline_file(source: MariaDBServer, local: MariaDBServer, stores: dict[str, Any], copy_to: Path) -> float:
    started = time.perf_counter()
    dump(source, local, "dump_files", ["frame", "~external_src_files"])
    subprocess.run(["cp", "-r", stores["src_files"]["location"], str(copy_to)], check=True)
    return time.perf_counter() - started


def baseline_s3(source: MariaDBServer, local: MariaDBServer, s3: S3Server) -> float:
    started = time.perf_counter()
    dump(source, local, "dump_s3", ["shot", "~external_src_s3"])
    client = s3.client()
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="source", Prefix="s3")
            for o in page.get("Contents", [])]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.copy({"Bucket": "source", "Key": key}, "baseline", key), keys))
    return time.perf_counter() - started


def baseline_s3_to_file(source: MariaDBServer, local: MariaDBServer, s3: S3Server, folder: Path) -> float:
    started = time.perf_counter()
    dump(source, local, "dump_s3_file", ["shot", "~external_src_s3"])
    client = s3.client()
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="source", Prefix="s3")
            for o in page.get("Contents", [])]

    def download(key: str) -> None:
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file("source", key, str(target))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(download, keys))
    return time.perf_counter() - started


def pull(local_schema: str, source: MariaDBServer, source_stores: dict[str, Any], name: str,
         mapping: dict[str, str]) -> float:
    remote = LazySchema(SOURCE, host=source.address, user="link_user", password="link-secret", stores=source_stores)
    linked = Link(LazySchema(local_schema), remote, outbound=OUTBOUND, stores=mapping)(type(name, (), {}))
    linked()  # declared before the clock starts
    started = time.perf_counter()
    report = linked().pull(progress=False)
    elapsed = time.perf_counter() - started
    assert report.objects == report.pulled
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="djshare-bench-"))
    with mariadb_servers(2, max_allowed_packet="16M") as (source, local), s3_server(root) as s3:
        for bucket in ("source", "local", "baseline"):
            s3.create_bucket(bucket)
        for folder in ("src_files", "loc_files"):
            (root / folder).mkdir()
        source_stores = {"src_files": {"protocol": "file", "location": str(root / "src_files")},
                         "src_s3": s3_store(s3, "source", "s3")}
        local_stores = {"loc_files": {"protocol": "file", "location": str(root / "loc_files")},
                        "loc_s3": s3_store(s3, "local", "s3")}
        dj.config["stores"] = {**source_stores, **local_stores}
        dj.config.update({"database.host": local.address, "database.user": local.admin_user,
                          "database.password": local.admin_password, "database.use_tls": False})
        make_source(source, args.rows)
        create_link_users(source, SOURCE, OUTBOUND)
        file_base = baseline_file(source, local, source_stores, root / "copied")
        file_pull = pull("pulled_files", source, source_stores, "Frame", {"loc_files": "src_files"})
        s3_base = baseline_s3(source, local, s3)
        s3_pull = pull("pulled_s3", source, source_stores, "Shot", {"loc_s3": "src_s3"})
        (root / "loc_from_s3").mkdir()
        dj.config["stores"]["loc_from_s3"] = {"protocol": "file", "location": str(root / "loc_from_s3")}
        down_base = baseline_s3_to_file(source, local, s3, root / "downloaded")
        down_pull = pull("pulled_s3_file", source, source_stores, "Shot", {"loc_from_s3": "src_s3"})
        print(f"{args.rows} masters with a 100 KB blob@store; MariaDB 10.11 and moto_server on 127.0.0.1")
        print(f"file store: dump + cp -r     {file_base:6.2f} s | djshare pull {file_pull:6.2f} s | "
              f"ratio {file_pull / file_base:.2f}")
        print(f"S3 -> S3:   dump + boto3 copy {s3_base:6.2f} s | djshare pull {s3_pull:6.2f} s | "
              f"ratio {s3_pull / s3_base:.2f}")
        print(f"S3 -> file: dump + boto3 download {down_base:6.2f} s | djshare pull {down_pull:6.2f} s | "
              f"ratio {down_pull / down_base:.2f}   (target for all: <= 1.3)")


if __name__ == "__main__":
    main()

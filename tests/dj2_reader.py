"""Run by the DataJoint 2.x environment (.venv2) from tests in the 0.14 environment: read a PostgreSQL schema
with DataJoint 2.x itself and write what it fetched, pickled, to a file.

    .venv2/bin/python tests/dj2_reader.py SETTINGS_JSON

SETTINGS_JSON: {"host", "port", "user", "password", "database", "schema", "stores", "download", "output"}.
Output: {table class name: {"rows": [row dict, ...] in key order, "heading": its definition}}, part tables as
"Master.Part"; attachments as (file name, bytes).
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import datajoint as dj


def main() -> None:
    settings = json.loads(sys.argv[1])
    assert dj.__version__.startswith("2."), dj.__version__
    dj.config["database.backend"] = "postgresql"
    for key in ("host", "port", "user", "password"):
        dj.config[f"database.{key}"] = settings[key]
    dj.config["database.name"] = settings["database"]
    dj.config["database.use_tls"] = False
    dj.config["stores"] = settings["stores"]
    dj.config["download_path"] = settings["download"]
    module = dj.VirtualModule("linked", settings["schema"])
    found: dict[str, Any] = {}
    for name in dir(module):
        table = getattr(module, name)
        if not (isinstance(table, type) and issubclass(table, dj.Table)):
            continue
        parts = [(f"{name}.{p}", value) for p, value in vars(table).items()
                 if isinstance(value, type) and issubclass(value, dj.Part)]
        for label, cls in [(name, table), *parts]:
            # DataJoint 2.3.5 cannot fetch uuid columns nor in-table <attach> on PostgreSQL, not even those it declared
            # itself (psycopg2 hands it text and memoryview where it expects bytes): they are left out here and
            # checked in SQL by the tests
            readable = [n for n in cls.heading.secondary_attributes
                        if not cls.heading[n].uuid and cls.heading[n].type != "<attach>"]
            rows = cls.proj(*readable).to_dicts(order_by="KEY")
            for row in rows:
                for column, value in row.items():
                    if isinstance(value, str) and Path(value).is_file() and value.startswith(settings["download"]):
                        row[column] = (Path(value).name, Path(value).read_bytes())
            found[label] = {"rows": rows, "heading": cls.describe(printout=False)}
    Path(settings["output"]).write_bytes(pickle.dumps(found))


if __name__ == "__main__":
    main()

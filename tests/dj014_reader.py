"""Run by the DataJoint 0.14 environment (.venv) from tests in the 2.x environment: read a MariaDB schema with
DataJoint 0.14 itself and write what it fetched, pickled, to a file.

    .venv/bin/python tests/dj014_reader.py SETTINGS_JSON

SETTINGS_JSON: {"host", "port", "user", "password", "schema", "download", "output"}, and "stores" (dj.config
form) for external objects.
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
    assert dj.__version__.startswith("0.14"), dj.__version__
    dj.config["stores"] = settings.get("stores", {})
    connection = dj.Connection(f"{settings['host']}:{settings['port']}", settings["user"], settings["password"],
                               use_tls=False)
    module = dj.VirtualModule("linked", settings["schema"], connection=connection)
    found: dict[str, Any] = {}
    for name, table in vars(module).items():
        if not (isinstance(table, type) and issubclass(table, dj.Table)):
            continue
        parts = [(f"{name}.{p}", value) for p, value in vars(table).items()
                 if isinstance(value, type) and issubclass(value, dj.Part)]
        for label, cls in [(name, table), *parts]:
            rows = cls.fetch(as_dict=True, order_by="KEY", download_path=settings["download"])
            for row in rows:
                for column, value in row.items():
                    if cls.heading[column].is_attachment and value is not None:
                        row[column] = (Path(value).name, Path(value).read_bytes())
            found[label] = {"rows": rows, "heading": cls.describe(printout=False)}
    Path(settings["output"]).write_bytes(pickle.dumps(found))


if __name__ == "__main__":
    main()

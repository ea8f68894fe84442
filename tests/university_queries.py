"""Run by the DataJoint 2.x environment (.venv2) from tests in the 0.14 environment: run the university queries
(tests/university.py) with DataJoint 2.x on a schema and write their results, pickled, to a file.

    .venv2/bin/python tests/university_queries.py SETTINGS_JSON

SETTINGS_JSON: {"host", "port", "user", "password", "database", "schema", "output", "fill", "backend"}; with "fill":
true the schema is first declared and filled by DataJoint 2.x itself (the results a native 2.x copy gives);
"backend": "postgresql" (default) or "mysql" (MariaDB: without `aggr(..., ...)`, which 2.3.5 cannot run there).
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import datajoint as dj

from tests.university import declare, fill, queries


def main() -> None:
    settings = json.loads(sys.argv[1])
    assert dj.__version__.startswith("2."), dj.__version__
    backend = settings.get("backend", "postgresql")
    connection = dj.Connection(settings["host"], settings["user"], settings["password"], port=settings["port"],
                               use_tls=False, backend=backend,
                               **({"database_name": settings["database"]} if backend == "postgresql" else {}))
    if settings["fill"]:
        fill(declare(dj.Schema(settings["schema"], connection=connection), dj))
    found = queries(dj.VirtualModule("uni", settings["schema"], connection=connection),
                    grouped_with_ellipsis=backend == "postgresql")
    Path(settings["output"]).write_bytes(pickle.dumps(found))


if __name__ == "__main__":
    main()

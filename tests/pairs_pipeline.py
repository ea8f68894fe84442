"""The source pipeline of the pair-matrix test (tests/integration/test_pairs.py), the same tables and rows in either
DataJoint line: a Session master with a Trace part, under a Subject it references. Declared and filled in-process
by DataJoint 0.14, or by DataJoint 2.x in its own environment:

    .venv2/bin/python tests/pairs_pipeline.py SETTINGS_JSON

SETTINGS_JSON: {"backend": "mysql" | "postgresql", "host", "port", "user", "password", "database", "schema", "store"}.
With "store" (a directory: a file store named `pairs`), an Image table with an external object per row is declared
too (`blob@pairs` in 0.14, `<blob@pairs>` in 2.x; 2.3.5 cannot insert in-store codecs on MariaDB).
"""

from __future__ import annotations

import json
import sys
from typing import Any

# (class name, tier, definition) in foreign-key order; `{int}`, `{short}`, `{float}`, `{blob}` per DataJoint line
TABLES: tuple[tuple[str, str, str], ...] = (
    ("Subject", "Manual", """
    subject : varchar(16)
    ---
    weight : {float}
    """),
    ("Session", "Manual", """
    # a recording session
    -> Subject
    session : {int}
    ---
    kind = 'rest' : enum('rest', 'task')
    note = "" : varchar(64)    # free text
    data : {blob}
    """),
)
TRACE = """
    -> master
    trace : {short}
    ---
    samples : {blob}
    """
IMAGE = ("Image", "Manual", """
    -> Subject
    image : {int}
    ---
    pixels : {external}
    """)
TYPES = {"dj014": {"int": "int", "short": "smallint", "float": "float", "blob": "longblob", "external": "blob@pairs"},
         "dj2": {"int": "int32", "short": "int16", "float": "float32", "blob": "<blob>", "external": "<blob@pairs>"}}
SUBJECTS = ("s1", "s2", "s3")
SESSIONS = 4
TRACES = 2
IMAGES = 2  # per subject, each a different array: one object each


def declare(schema: Any, dj: Any, line: str, objects: bool = False) -> dict[str, Any]:
    """Declare the tables in `schema` with DataJoint module `dj` (`line`: "dj014" or "dj2"; `objects`: the Image
    table too, whose objects go to the store `pairs` of dj.config); return the classes."""
    types = TYPES[line]
    trace = type("Trace", (dj.Part,), {"definition": TRACE.format(**types)})
    classes: dict[str, Any] = {}
    for name, tier, definition in TABLES + ((IMAGE,) if objects else ()):
        body: dict[str, Any] = {"definition": definition.format(**types), "__module__": __name__}
        if name == "Session":
            body["Trace"] = trace
        classes[name] = schema(type(name, (getattr(dj, tier),), body), context=classes)
    return classes


def fill(classes: dict[str, Any]) -> None:
    import numpy as np

    classes["Subject"].insert([{"subject": s, "weight": 20.5 + n} for n, s in enumerate(SUBJECTS)])
    for n, subject in enumerate(SUBJECTS):
        for session in range(SESSIONS):
            classes["Session"].insert1({"subject": subject, "session": session, "kind": ("rest", "task")[session % 2],
                                        "note": f"it's {subject}/{session}", "data": np.arange(session + n + 1.0)})
            classes["Session"].Trace.insert([{"subject": subject, "session": session, "trace": t,
                                              "samples": np.eye(t + 1)} for t in range(TRACES)])
        if "Image" in classes:
            classes["Image"].insert([{"subject": subject, "image": i, "pixels": np.full((4, 4), n * 10.0 + i)}
                                     for i in range(IMAGES)])


def main() -> None:
    import datajoint as dj

    settings = json.loads(sys.argv[1])
    assert dj.__version__.startswith("2."), dj.__version__
    options = {"database_name": settings["database"]} if settings["backend"] == "postgresql" else {}
    connection = dj.Connection(settings["host"], settings["user"], settings["password"], port=settings["port"],
                               use_tls=False, backend=settings["backend"], **options)
    if settings.get("store"):
        dj.config["stores"] = {"pairs": {"protocol": "file", "location": settings["store"]}}
    fill(declare(dj.Schema(settings["schema"], connection=connection), dj, "dj2", objects=bool(settings.get("store"))))


if __name__ == "__main__":
    main()

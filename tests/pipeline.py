"""The small source pipeline that tests and the demo link to."""

from __future__ import annotations

import uuid
from typing import Any

import datajoint as dj
import numpy as np


def build_pipeline(connection: dj.Connection, schema_name: str) -> dict[str, Any]:
    """A small source pipeline: a parent, a table with many column types and a FK to the parent, and a
    Computed table with a part table."""
    schema = dj.Schema(schema_name, connection=connection)

    @schema
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject : varchar(16)
        ---
        species = 'mouse' : varchar(30)
        """

    @schema
    class Recording(dj.Manual):
        definition = """
        # a recording session
        -> Subject
        recording : int
        ---
        recorded_at = CURRENT_TIMESTAMP : timestamp   # when it was entered
        note = "it's" : varchar(255)
        weight = null : float
        score : double
        amount = 1.25 : decimal(8,3)
        data = null : longblob
        kind = 'a' : enum('a', 'b')
        day = null : date
        token = null : uuid      # binary(16): bytes that are not UTF-8
        attachment = null : attach
        """

    @schema
    class Scan(dj.Computed):
        definition = """
        -> Recording
        ---
        result : float
        """

        class Channel(dj.Part):
            definition = """
            -> master
            channel : tinyint unsigned
            ---
            trace : longblob
            """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, result=float(key["recording"]) / 3))
            self.Channel.insert(
                [dict(key, channel=c, trace=np.arange(c + 3, dtype=np.float64)) for c in range(2)]
            )

    return {"schema": schema, "Subject": Subject, "Recording": Recording, "Scan": Scan}


def fill_pipeline(pipeline: dict[str, Any], subjects: int = 2, recordings: int = 5) -> None:
    rng = np.random.default_rng(7)
    pipeline["Subject"].insert([{"subject": f"s{i}"} for i in range(subjects)])
    rows = []
    for i in range(subjects):
        for r in range(recordings):
            rows.append({
                "subject": f"s{i}", "recording": r, "weight": float(np.float32(rng.normal())),
                "score": float(rng.normal()), "data": rng.normal(size=(3, 2)),
                "note": "quote ' \" \\ ( ) $ ` é 😀\n", "token": uuid.UUID(bytes=bytes([0, 255, 39, 92, r] + [r] * 11)),
                "day": "2024-02-29" if r % 2 else None,
            })
    pipeline["Recording"].insert(rows)
    pipeline["Scan"].populate()


def build_external_pipeline(connection: dj.Connection, schema_name: str) -> dict[str, Any]:
    """Tables whose values live in external stores: blobs and attachments (with a part table), and
    filepaths. Uses stores `src_blobs`, `src_files` and `src_raw` of dj.config["stores"]."""
    schema = dj.Schema(schema_name, connection=connection)

    @schema
    class Sample(dj.Manual):
        definition = """
        sample : int
        ---
        signal : blob@src_blobs         # an array in the blob store
        document = null : attach@src_files
        """

        class Piece(dj.Part):
            definition = """
            -> master
            piece : smallint
            ---
            chunk : blob@src_blobs
            """

    @schema
    class Raw(dj.Manual):
        definition = """
        raw_id : int
        ---
        raw : filepath@src_raw
        """

    return {"schema": schema, "Sample": Sample, "Raw": Raw}


def fill_external(pipeline: dict[str, Any], files: Any, samples: int = 6) -> None:
    """Samples with random arrays, an attachment every other sample, and two pieces each."""
    rng = np.random.default_rng(11)
    for i in range(samples):
        document = None
        if i % 2 == 0:
            document = files / f"notes {i}.bin"
            document.write_bytes(bytes(rng.integers(0, 256, size=1000 + i, dtype=np.uint8)))
        pipeline["Sample"].insert1({"sample": i, "signal": rng.normal(size=(20, i + 1)), "document": document})
        pipeline["Sample"].Piece.insert(
            [{"sample": i, "piece": p, "chunk": rng.integers(0, 9, size=10 + p)} for p in range(2)])


def build_export_pipeline(connection: dj.Connection, core: str, analysis: str) -> dict[str, Any]:
    """Nine tables over two schemas: renamed foreign keys, two foreign keys to one parent, a part table,
    and awkward strings, for export tests."""
    lab = dj.Schema(core, connection=connection)
    ana = dj.Schema(analysis, connection=connection)

    @lab
    class Lab(dj.Lookup):
        definition = """
        lab : varchar(32)
        ---
        address = "" : varchar(255)
        """

    @lab
    class Subject(dj.Manual):
        definition = """
        subject : varchar(32)
        ---
        -> Lab
        """

    @lab
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int
        ---
        note = "" : varchar(255)
        """

    @lab
    class Electrode(dj.Lookup):
        definition = """
        electrode : int
        ---
        region : varchar(32)
        """

    @lab
    class Scan(dj.Manual):
        definition = """
        -> Session
        scan : int
        ---
        rate : double
        """

        class Channel(dj.Part):
            definition = """
            -> master
            channel : int
            ---
            -> Electrode
            gain : float
            """

    @ana
    class Unit(dj.Manual):
        definition = """
        -> Scan
        unit : int
        ---
        quality : double
        """

    @ana
    class Pair(dj.Manual):
        definition = """
        -> Unit
        -> Unit.proj(partner='unit')
        ---
        correlation : double
        """

    @ana
    class Figure(dj.Manual):
        definition = """
        figure : int
        ---
        -> Session.proj(first_subject='subject', first_session='session')
        -> [nullable] Session.proj(second_subject='subject', second_session='session')
        -> Electrode
        caption : varchar(255)
        """

    return {"lab": lab, "analysis": ana, "Lab": Lab, "Subject": Subject, "Session": Session,
            "Electrode": Electrode, "Scan": Scan, "Unit": Unit, "Pair": Pair, "Figure": Figure}


AWKWARD = ["it's", 'say "hi"', "back\\slash", "(paren)", "$HOME and $(cmd)", "`tick`", "two\nlines", "naïve 😀"]


def fill_export(p: dict[str, Any], subjects: int = 4, sessions: int = 3) -> None:
    p["Lab"].insert([{"lab": "north", "address": AWKWARD[0]}, {"lab": "south", "address": AWKWARD[1]},
                     {"lab": "unused", "address": ""}])
    p["Electrode"].insert([{"electrode": e, "region": f"r{e}"} for e in range(6)])
    p["Subject"].insert([{"subject": f"m{i}", "lab": "north" if i % 2 else "south"} for i in range(subjects)])
    p["Session"].insert([{"subject": f"m{i}", "session": s, "note": AWKWARD[(i + s) % len(AWKWARD)]}
                         for i in range(subjects) for s in range(sessions)])
    scans = [{"subject": f"m{i}", "session": s, "scan": c, "rate": 30.0 + c} for i in range(subjects)
             for s in range(sessions) for c in range(2)]
    p["Scan"].insert(scans)
    scans = [{k: v for k, v in scan.items() if k != "rate"} for scan in scans]
    p["Scan"].Channel.insert([dict(k, channel=h, electrode=(h + k["scan"]) % 6, gain=0.1 * h) for k in scans
                              for h in range(3)])
    p["Unit"].insert([dict(k, unit=u, quality=u / 7) for k in scans for u in range(2)])
    p["Pair"].insert([dict(k, unit=0, partner=1, correlation=0.5) for k in scans[::2]])
    p["Figure"].insert([
        {"figure": 1, "first_subject": "m0", "first_session": 0, "second_subject": "m1", "second_session": 2,
         "electrode": 3, "caption": AWKWARD[4]},
        {"figure": 2, "first_subject": "m2", "first_session": 1, "second_subject": None, "second_session": None,
         "electrode": 5, "caption": AWKWARD[7]},
    ])


def add_deciding_tables(p: dict[str, Any], excluded: list[tuple[str, int, str]], subjects: int = 4,
                        sessions: int = 3) -> dict[str, Any]:
    """Two more tables of the export pipeline whose rows decide what other queries return: Excluded (sessions
    left out of analyses) and Comparison (a score per session), for capture tests and the export benchmark."""
    ana, context = p["analysis"], {"Session": p["Session"]}

    class Excluded(dj.Manual):
        definition = """
        -> Session
        ---
        reason : varchar(64)
        """

    class Comparison(dj.Manual):
        definition = """
        -> Session
        ---
        score : float
        """

    ana(Excluded, context=context)
    ana(Comparison, context=context)
    Excluded.insert([{"subject": subject, "session": session, "reason": why} for subject, session, why in excluded])
    Comparison.insert([{"subject": f"m{i}", "session": s, "score": ((3 * i + 7 * s) % 10) / 10}
                       for i in range(subjects) for s in range(sessions)])
    return dict(p, Excluded=Excluded, Comparison=Comparison)


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

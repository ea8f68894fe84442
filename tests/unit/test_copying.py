"""The one checked copy (`stores.copying.copy_checked`) between two file stores in a temporary folder: checks,
transforms between the DataJoint lines' attachment layouts, the journal hooks, and what an existing target means.
(S3 stores and the server-side copy are exercised by the integration tests against moto.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from djshare.errors import IntegrityViolation
from djshare.stores.copying import CopyJob, copy_checked, read_head
from djshare.stores.formats.dj014 import ExternalRow, copy_job, relative_path
from djshare.stores.formats.dj2 import attachment_name
from djshare.stores.objects import MissingObjectError
from djshare.stores.spec import StoreSpec


def stores(tmp_path: Path) -> tuple[StoreSpec, StoreSpec]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return StoreSpec("a", "file", str(tmp_path / "a")), StoreSpec("b", "file", str(tmp_path / "b"))


def put(spec: StoreSpec, path: str, data: bytes) -> None:
    target = Path(spec.location, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def held(spec: StoreSpec, path: str) -> bytes | None:
    found = Path(spec.location, path)
    return found.read_bytes() if found.exists() else None


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def test_a_checked_object_is_written_and_counted(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    put(a, "x/one", b"contents")
    assert copy_checked([CopyJob(a, "x/one", b, "y/one", 8, md5(b"contents"), True)]) == 1
    assert held(b, "y/one") == b"contents"


def test_wrong_bytes_write_nothing_and_name_the_object(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    put(a, "one", b"contents")
    job = CopyJob(a, "one", b, "one", 8, md5(b"other!!!"), True, record="its ~external row")
    with pytest.raises(IntegrityViolation, match="one in .* has 8 bytes and MD5 .*where its ~external row says 8 "
                                                 "bytes and MD5 .*Nothing was inserted"):
        copy_checked([job])
    assert held(b, "one") is None
    with pytest.raises(IntegrityViolation, match="has 8 bytes .* says 9 bytes"):
        copy_checked([CopyJob(a, "one", b, "one", 9)])


def test_a_prefix_is_written_and_checked_with_the_object(tmp_path: Path) -> None:
    """A 0.14 attachment (contents; MD5 of `name + NUL + contents`) becomes a 2.x one (`name + NUL + contents`)."""
    a, b = stores(tmp_path)
    put(a, "att", b"data")
    whole = b"f.txt\0data"
    assert copy_checked([CopyJob(a, "att", b, "att2", len(whole), md5(whole), True, prefix=b"f.txt\0")]) == 1
    assert held(b, "att2") == whole


def test_skipped_bytes_are_checked_but_not_written(tmp_path: Path) -> None:
    """A 2.x attachment becomes a 0.14 one: its name is read first, then only the contents are written."""
    a, b = stores(tmp_path)
    whole = b"f.txt\0data"
    put(a, "att", whole)
    name = attachment_name(read_head(a, "att", b"\0"))
    assert name == "f.txt"
    assert copy_checked([CopyJob(a, "att", b, "att1", len(whole), md5(whole), True, skip=len(name) + 1)]) == 1
    assert held(b, "att1") == b"data"
    put(a, "plain", b"no name here")
    with pytest.raises(IntegrityViolation, match="not a DataJoint 2.x attachment"):
        attachment_name(read_head(a, "plain", b"\0"))


def test_a_salt_is_hashed_but_neither_written_nor_counted(tmp_path: Path) -> None:
    """0.14 attachments between 0.14 stores: the `~external` row's hash is salted with the name."""
    a, b = stores(tmp_path)
    put(a, "att", b"data")
    job = CopyJob(a, "att", b, "att", 4, md5(b"f.txt\0data"), True, salt=b"f.txt\0")
    assert copy_checked([job]) == 1
    assert held(b, "att") == b"data"


def test_the_journal_hears_of_absent_targets_before_they_are_written(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    put(a, "new", b"1")
    put(a, "old", b"2")
    put(b, "old", b"2")
    seen: list[tuple[str, bytes | None]] = []
    jobs = [CopyJob(a, p, b, p, 1, None, True) for p in ("new", "old")]
    written = copy_checked(jobs, journal=lambda absent: seen.extend((j.target_path, held(b, j.target_path))
                                                                     for j in absent))
    assert written == 1 and seen == [("new", None)]  # journaled while not yet written; the present one left out


def test_a_failed_copy_is_unjournaled_and_the_others_still_finish(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    put(a, "good", b"1")
    failed: list[str] = []
    jobs = [CopyJob(a, "good", b, "good", 1), CopyJob(a, "gone", b, "gone", 1)]
    with pytest.raises(MissingObjectError, match="gone"):
        copy_checked(jobs, unjournal=lambda jobs: failed.extend(j.target_path for j in jobs))
    assert failed == ["gone"] and held(b, "good") == b"1"


def test_an_existing_target_is_kept_if_content_addressed_and_refused_if_it_differs(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    put(a, "hashed", b"source")
    put(b, "hashed", b"source")
    assert copy_checked([CopyJob(a, "hashed", b, "hashed", 6, md5(b"source"), True)]) == 0
    put(a, "path", b"source")
    put(b, "path", b"theirs")
    with pytest.raises(IntegrityViolation, match="path in .* exists with other contents"):
        copy_checked([CopyJob(a, "path", b, "path", 6)])
    assert held(b, "path") == b"theirs"
    put(b, "same", b"source")
    put(a, "same", b"source")
    assert copy_checked([CopyJob(a, "same", b, "same", 6)]) == 0  # the same bytes: nothing to do


def test_without_target_checks_every_job_is_written(tmp_path: Path) -> None:
    """`check_targets=False`: the caller (0.14's local `~external` rows) knows the targets are absent."""
    a, b = stores(tmp_path)
    put(a, "one", b"1")
    assert copy_checked([CopyJob(a, "one", b, "one", 1)], check_targets=False) == 1


def test_0_14_objects_copy_as_their_external_rows_say(tmp_path: Path) -> None:
    """`dj014.copy_job`: a blob and an attachment (hash salted with its name) are content-addressed below the schema;
    a filepath keeps its path, is checked by its contents hash, and a different file already there is refused (an
    export's restore or direct copy never overwrites a file the target lab keeps there)."""
    a, b = stores(tmp_path)
    blob, attached = b"blob bytes", b"file contents"
    rows = [ExternalRow(md5(blob), len(blob), None, None, None),
            ExternalRow(md5(b"notes.txt\0" + attached), len(attached), "notes.txt", None, None),
            ExternalRow(md5(b"raw/run1.dat"), 4, None, "raw/run1.dat", md5(b"1234"))]
    for row, data in zip(rows, (blob, attached, b"1234"), strict=True):
        put(a, str(relative_path("lab", row, a.subfolding)), data)
    jobs = [copy_job(row, a, "lab", b, "lab_copy") for row in rows]
    assert [j.content_addressed for j in jobs] == [True, True, False]
    assert jobs[2].target_path == "raw/run1.dat" and jobs[0].target_path.startswith("lab_copy/")
    assert copy_checked(jobs) == 3
    assert held(b, jobs[1].target_path) == attached  # the name is in the path and the row, not in the bytes
    put(b, "raw/run1.dat", b"4321")
    with pytest.raises(IntegrityViolation, match="raw/run1.dat in .* exists with other contents"):
        copy_checked([jobs[2]])
    assert held(b, "raw/run1.dat") == b"4321"

"""Export against real servers: closure exactness (vs. a brute-force closure in Python), ..."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import datajoint as dj
import pytest

from djshare import export
from djshare.errors import DjshareError
from djshare.export.closure import Selection, compute
from djshare.export.graph import Table
from djshare.sql.catalog import foreign_keys_to, read_table
from djshare.sql.connection import ServerAddress, Session
from tests.conftest import admin_connection
from tests.integration.conftest import ExportLab
from tests.pipeline import AWKWARD
from tests.servers import MariaDBServer


def brute_force(session: Session, captured: list[tuple[Table, str]], tables: list[Table]) -> dict[Table, set[Any]]:
    """The closure rules applied in Python to every row of every table."""
    info = {t: read_table(session, *t) for t in tables}
    rows = {t: [dict(zip([c.name for c in info[t].columns], r, strict=True))
                for r in session.rows(f"SELECT * FROM `{t[0]}`.`{t[1]}`")] for t in tables}
    pk = {t: info[t].primary_key for t in tables}
    chosen: dict[Table, set[Any]] = {t: set() for t in tables}
    for table, condition in captured:
        chosen[table] |= set(session.rows(
            f"SELECT {', '.join(f'`{c}`' for c in pk[table])} FROM `{table[0]}`.`{table[1]}` WHERE {condition}"))
    keys = [fk for fk in foreign_keys_to(session) if fk.child in chosen and fk.parent in chosen]
    from djshare.export.graph import master_of

    changed = True
    while changed:
        changed = False
        for fk in keys:
            for row in rows[fk.child]:
                if tuple(row[c] for c in pk[fk.child]) not in chosen[fk.child]:
                    continue
                values = {p: row[c] for c, p in fk.columns}
                if None in values.values():
                    continue
                target = tuple(values[c] for c in pk[fk.parent])
                if target not in chosen[fk.parent]:
                    chosen[fk.parent].add(target)
                    changed = True
        for part in tables:
            master = master_of(part)
            if master in chosen:
                for row in rows[part]:
                    if tuple(row[c] for c in pk[master]) in chosen[master]:
                        key = tuple(row[c] for c in pk[part])
                        if key not in chosen[part]:
                            chosen[part].add(key)
                            changed = True
    return chosen


def selected(selection: Selection) -> dict[Table, set[Any]]:
    return {t: set(selection.session.rows(f"SELECT * FROM {selection.keys[t]}")) for t in selection.graph.tables}


CAPTURES = [
    [("analysis", "unit", "subject = 'm1' AND session = 2 AND unit = 1")],
    [("analysis", "figure", "figure = 1")],
    [("analysis", "pair", "subject = 'm3'"), ("core", "scan__channel", "channel = 2 AND subject = 'm0'")],
    [("core", "session", "note LIKE '%$%'"), ("analysis", "figure", "figure = 2")],
]


@pytest.mark.parametrize("captures", CAPTURES)
def test_closure_equals_brute_force(export_lab: ExportLab, captures: list[tuple[str, str, str]]) -> None:
    schema = {"core": export_lab.core, "analysis": export_lab.analysis}
    captured = [((schema[s], t), condition) for s, t, condition in captures]
    with export_lab.session() as session:
        selection = compute(session, captured, export_lab.work)
        expected = brute_force(session, captured, list(selection.graph.tables))
        assert selected(selection) == expected
        assert selection.counts == {t: len(v) for t, v in expected.items()}
        # parents come before children in the plan
        order = list(selection.graph.tables)
        for fk in selection.graph.edges:
            assert order.index(fk.parent) < order.index(fk.child)


def test_closure_follows_renamed_and_repeated_foreign_keys(export_lab: ExportLab) -> None:
    with export_lab.session() as session:
        selection = compute(session, [((export_lab.analysis, "figure"), "figure = 1")], export_lab.work)
        sessions = selected(selection)[(export_lab.core, "session")]
        assert sessions == {("m0", 0), ("m1", 2)}  # first_* and second_* both followed
        assert selected(selection)[(export_lab.core, "#lab")] == {("north",), ("south",)}
        assert (export_lab.core, "scan") not in selection.counts  # nothing below the captured rows


def run_analysis(p: dict[str, Any], paper: str, schema: str) -> None:
    with export.capture(paper, "units", schema=schema):
        (p["Unit"] & "subject = 'm1' AND session = 2").fetch()
        (p["Session"] * p["Scan"] & "subject = 'm2'" & "scan = 1").fetch(as_dict=True)
    with export.capture(paper, "figure", schema=schema):
        (p["Figure"] & "figure = 1").fetch1()


def test_capture_preview_write_restore_verify(exporting: ExportLab, servers: list[MariaDBServer],
                                             tmp_path: Path) -> None:
    lab, p = exporting, exporting.pipeline
    run_analysis(p, "paper-a", lab.work)
    counts = export.preview("paper-a", schema=lab.work)
    core = lambda name: f"`{lab.core}`.`{name}`"  # noqa: E731
    assert counts[core("#lab")] == 2 and counts[core("session")] == 5  # m1/2, m2/0..2 via scans, m0/0 via figure
    assert counts[f"`{lab.analysis}`.`unit`"] == 4 and counts[core("scan__channel")] == 3 * 5
    entries = export.write("paper-a", tmp_path / "bundle", schema=lab.work, progress=False)
    assert {f"`{e.schema}`.`{e.table}`": e.rows for e in entries} == counts
    target = servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    export.restore(tmp_path / "bundle", address, progress=False)
    report = export.verify(tmp_path / "bundle", address)
    assert report.problems == [] and report.rows == sum(counts.values())
    notes = target.query(f"SELECT note FROM `{lab.core}`.`session` ORDER BY subject, session")
    assert {n for (n,) in notes} <= set(AWKWARD) and len(notes) == 5
    with pytest.raises(DjshareError, match="already has .*Nothing was changed"):
        export.restore(tmp_path / "bundle", address, progress=False)
    target.execute(f"UPDATE `{lab.core}`.`session` SET note = 'tampered' LIMIT 1")
    assert "differs from the bundle" in export.verify(tmp_path / "bundle", address).problems[0]
    for schema in (lab.analysis, lab.core):  # children's schema first
        target.execute(f"DROP DATABASE `{schema}`")


def test_long_key_lists_are_chunked_and_nothing_is_lost(exporting: ExportLab, servers: list[MariaDBServer],
                                                      tmp_path: Path) -> None:
    lab, p = exporting, exporting.pipeline
    with export.capture("paper-b", "everything", schema=lab.work):
        p["Pair"].fetch()
        p["Figure"].fetch()
    entries = export.write("paper-b", tmp_path / "bundle", schema=lab.work, progress=False, statement_bytes=300)
    assert max(len(e.data) for e in entries) > 5  # many INSERT statements for one table
    target = servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    export.restore(tmp_path / "bundle", address, progress=False)
    assert export.verify(tmp_path / "bundle", address).problems == []
    assert {f"{e.schema}.{e.table}": e.rows for e in entries}[f"{lab.core}.scan__channel"] == 24 * 3 // 2
    for schema in (lab.analysis, lab.core):  # children's schema first
        target.execute(f"DROP DATABASE `{schema}`")


def test_direct_copy_into_another_server(exporting: ExportLab, servers: list[MariaDBServer]) -> None:
    lab, p = exporting, exporting.pipeline
    run_analysis(p, "paper-copy", lab.work)
    target = servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    copied = export.copy("paper-copy", address, schema=lab.work, progress=False)
    assert {f"`{c.schema}`.`{c.table}`": c.rows for c in copied} == export.preview("paper-copy", schema=lab.work)
    with pytest.raises(DjshareError, match="already has .*Nothing was changed"):
        export.copy("paper-copy", address, schema=lab.work, progress=False)
    for schema in (lab.analysis, lab.core):
        target.execute(f"DROP DATABASE `{schema}`")


def test_two_captures_in_parallel_threads_stay_apart(exporting: ExportLab) -> None:
    lab, p = exporting, exporting.pipeline
    barrier = threading.Barrier(2)

    def analysis(paper: str, subject: str) -> None:
        connection = admin_connection(lab.server)  # DataJoint connections are not shared between threads
        unit = dj.FreeTable(connection, f"`{lab.analysis}`.`unit`")
        with export.capture(paper, "a", schema=lab.work):
            barrier.wait()
            for _ in range(5):
                (unit & {"subject": subject}).fetch()
        connection.close()

    threads = [threading.Thread(target=analysis, args=(f"thread-{s}", s)) for s in ("m0", "m3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for subject in ("m0", "m3"):
        counts = export.preview(f"thread-{subject}", schema=lab.work)
        assert counts[f"`{lab.analysis}`.`unit`"] == 12 and counts[f"`{lab.core}`.`subject`"] == 1
    before = lab.server.query(f"SELECT COUNT(*) FROM `{lab.work}`.`export_restriction`")
    p["Unit"].fetch()
    assert lab.server.query(f"SELECT COUNT(*) FROM `{lab.work}`.`export_restriction`") == before


def test_preview_draws_the_slice(exporting: ExportLab, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ElementTree

    run_analysis(exporting.pipeline, "paper-d", exporting.work)
    counts = export.preview("paper-d", schema=exporting.work, diagram=tmp_path / "slice.svg")
    drawing = ElementTree.parse(tmp_path / "slice.svg").getroot()
    texts = " ".join("".join(t.itertext()) for t in drawing.iter("{http://www.w3.org/2000/svg}text"))
    for name, rows in counts.items():
        schema, table = (part.strip("`") for part in name.split("."))
        assert f"{schema}.{table}" in texts and f"{rows:,} rows" in texts
    assert len(list(drawing.iter("{http://www.w3.org/2000/svg}rect"))) == len(counts)


def test_preview_draws_the_slice_as_png(exporting: ExportLab, tmp_path: Path) -> None:
    from PIL import Image

    from djshare.export import diagram
    from djshare.export.capture_tables import recorded
    from djshare.export.selection import select

    run_analysis(exporting.pipeline, "paper-p", exporting.work)
    with pytest.raises(DjshareError, match=r"name it \*.svg or \*.png"):
        export.preview("paper-p", schema=exporting.work, diagram=tmp_path / "slice.pdf")
    assert not (tmp_path / "slice.pdf").exists()
    counts = export.preview("paper-p", schema=exporting.work, diagram=tmp_path / "slice.png")
    image = Image.open(tmp_path / "slice.png").convert("RGB")
    with exporting.session() as session:
        selection = select(session, recorded(session.address, "paper-p", exporting.work), exporting.work)
        drawn = diagram.layout(selection.graph, selection.counts)
    assert image.size == (drawn.width, drawn.height) and len(drawn.boxes) == len(counts) == 8
    fill = tuple(int(diagram.FILL[i:i + 2], 16) for i in (1, 3, 5))
    for box in drawn.boxes:  # a filled box with a border at each table's place; white between boxes
        assert image.getpixel((box.x + diagram.BOX_WIDTH - 4, box.y + diagram.BOX_HEIGHT // 2)) == fill
        assert image.getpixel((box.x + diagram.BOX_WIDTH // 2, box.y)) != fill
        assert image.getpixel((box.x + diagram.BOX_WIDTH + diagram.GAP_X // 2, box.y + 2)) == (255, 255, 255)
        assert {b.table: b.rows for b in drawn.boxes}[box.table] == counts[f"`{box.table[0]}`.`{box.table[1]}`"]


def test_captures_are_listed_and_forgotten(exporting: ExportLab) -> None:
    lab, p = exporting, exporting.pipeline
    run_analysis(p, "paper-l", lab.work)
    listed = {(c.paper, c.analysis): c.restrictions for c in export.captures(schema=lab.work)}
    assert set(listed) == {("paper-l", "units"), ("paper-l", "figure")} and all(listed.values())
    assert export.forget("paper-l", "units", schema=lab.work) == listed[("paper-l", "units")]
    assert [c.analysis for c in export.captures(schema=lab.work)] == ["figure"]
    export.forget("paper-l", schema=lab.work)
    assert export.captures(schema=lab.work) == []


def test_captures_started_from_the_command_line_record_following_processes(exporting: ExportLab) -> None:
    import os
    import subprocess
    import sys

    lab, p = exporting, exporting.pipeline
    env = dict(os.environ, DJ_HOST=lab.server.address, DJ_USER=lab.server.admin_user,
               DJ_PASS=lab.server.admin_password, COLUMNS="200")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args, "--schema", lab.work], env=env,
                              capture_output=True, text=True, timeout=120)

    def recorded() -> dict[tuple[str, str], int]:
        return {(c.paper, c.analysis): c.restrictions for c in export.captures(schema=lab.work)}

    started = djshare("start", "paper-o", "fig3")
    assert started.returncode == 0 and "capturing paper-o/fig3" in started.stdout, started.stderr
    assert "paper-o" in djshare("list").stdout
    lab.server.execute(f"INSERT INTO `{lab.work}`.`export_open` (`account`, `paper`, `analysis`) "
                       "VALUES ('someone_else@%', 'paper-x', 'theirs')")
    (p["Unit"] & "subject = 'm1'").fetch()
    assert recorded() == {}  # this process does not follow yet
    export.follow(lab.work)
    try:
        (p["Unit"] & "subject = 'm1'").fetch()
        (p["Figure"] & "figure = 1").fetch1()
        assert recorded() == {("paper-o", "fig3"): 2}  # another account's open capture records nothing here
        stopped = djshare("stop", "paper-o")
        assert stopped.returncode == 0 and "stopped 1 capture of paper-o" in stopped.stdout, stopped.stderr
        p["Unit"].fetch()
        assert recorded() == {("paper-o", "fig3"): 2}
    finally:
        export.unfollow(lab.work)
    assert export.preview("paper-o", schema=lab.work)[f"`{lab.analysis}`.`figure`"] == 1
    again = djshare("stop", "paper-o")
    assert again.returncode == 1 and "no open capture of paper-o" in again.stderr


def test_nothing_captured_is_a_clear_error(exporting: ExportLab) -> None:
    with pytest.raises(DjshareError, match="Nothing was captured for paper 'nope'"):
        with export.capture("x", "y", schema=exporting.work):
            exporting.pipeline["Lab"].fetch()
        export.preview("nope", schema=exporting.work)


def test_export_from_the_command_line(exporting: ExportLab, servers: list[MariaDBServer], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    lab, p = exporting, exporting.pipeline
    run_analysis(p, "paper-cli", lab.work)
    target = servers[2]
    env = dict(os.environ, DJ_HOST=lab.server.address, DJ_USER=lab.server.admin_user,
               DJ_PASS=lab.server.admin_password, DJSHARE_TARGET_USER=target.admin_user,
               DJSHARE_TARGET_PASS=target.admin_password, COLUMNS="200")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    preview = djshare("preview", "paper-cli", "--schema", lab.work)
    assert preview.returncode == 0, preview.stderr
    assert f"`{lab.analysis}`.`figure`" in preview.stdout and "rows in 8 tables" in preview.stdout
    assert "wrote" in djshare("write", "paper-cli", str(tmp_path / "b"), "--schema", lab.work).stdout
    restored = djshare("restore", str(tmp_path / "b"), "--to", target.address)
    assert restored.returncode == 0 and "restored" in restored.stdout, restored.stderr
    assert "counts, checksums and foreign keys match" in djshare("verify", str(tmp_path / "b"), "--to",
                                                                 target.address).stdout
    target.execute(f"DELETE FROM `{lab.analysis}`.`figure`")
    failed = djshare("verify", str(tmp_path / "b"), "--to", target.address)
    assert failed.returncode == 1 and "mismatch:" in failed.stderr
    again = djshare("write", "paper-cli", str(tmp_path / "b"), "--schema", lab.work)
    assert again.returncode == 1 and "already exists" in again.stderr
    for schema in (lab.analysis, lab.core):
        target.execute(f"DROP DATABASE `{schema}`")


def test_one_export_command_takes_rows_a_paper_or_both_from_a_named_server(
        exporting: ExportLab, servers: list[MariaDBServer], tmp_path: Path) -> None:
    """`djshare export` with --from and --rows (what `djshare tables` did) and with a paper (what it did before):
    rows alone, a paper's captures alone, and both together give the closure of the union; nothing to export is
    refused before anything is written."""
    import os
    import subprocess
    import sys

    from djshare.export import engine
    from djshare.export.capture_tables import recorded

    lab = exporting
    run_analysis(lab.pipeline, "paper-r", lab.work)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "DJSHARE_"))}
    env.update(DJSHARE_SOURCE_USER=lab.server.admin_user, DJSHARE_SOURCE_PASS=lab.server.admin_password,
               COLUMNS="200")

    def djshare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args, "--from", lab.server.address],
                              env=env, capture_output=True, text=True, timeout=120)

    address = ServerAddress(lab.server.host, lab.server.port, lab.server.admin_user, lab.server.admin_password)
    rows = [(f"{lab.core}.session", "note LIKE '%$%'")]
    captured = recorded(address, "paper-r", lab.work)
    alone, papers, both = (engine.preview(address, r, work_schema=lab.work) for r in (rows, captured,
                                                                                      captured + rows))
    assert set(alone) < set(both) or sum(alone.values()) < sum(both.values())
    assert all(both[t] >= max(alone.get(t, 0), papers.get(t, 0)) for t in both)
    done = djshare("preview", "-r", f"{lab.core}.session: note LIKE '%$%'")
    assert done.returncode == 0 and f"{sum(alone.values())} rows in {len(alone)} tables" in done.stdout, done.stderr
    done = djshare("write", "paper-r", str(tmp_path / "both"), "-r", f"{lab.core}.session: note LIKE '%$%'",
                   "--schema", lab.work)
    assert done.returncode == 0 and f"wrote {sum(both.values())} rows of {len(both)} tables" in done.stdout, done
    done = djshare("write", str(tmp_path / "rows"), "-r", f"{lab.core}.session: note LIKE '%$%'")
    assert done.returncode == 0 and f"wrote {sum(alone.values())} rows of {len(alone)} tables" in done.stdout, done
    done = djshare("list", "--schema", lab.work)
    assert done.returncode == 0 and "paper-r" in done.stdout, done.stderr
    refused = djshare("write", str(tmp_path / "none"))
    assert refused.returncode == 1 and "Nothing to export" in refused.stderr, refused.stderr
    assert not (tmp_path / "none").exists()


def test_mysqldump_script_is_safe_for_any_key_and_loses_nothing(
        exporting: ExportLab, defaults_server: MariaDBServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bash export.sh > export.sql && mariadb < export.sql` into a server at MariaDB's defaults (latin1): emoji,
    FLOAT values and every other value arrive exactly."""
    import os
    import subprocess

    import djshare.export.script
    from djshare.export.direct import _digest

    lab, p = exporting, exporting.pipeline
    awkward = "o'n\"$(x)\"`y`\\z(p)$HOME\n"  # fits varchar(32); the shell must expand none of it
    p["Lab"].insert1({"lab": awkward, "address": "x"})
    p["Subject"].insert1({"subject": "m9", "lab": awkward})
    p["Session"].insert1({"subject": "m9", "session": 0, "note": AWKWARD[4]})
    p["Scan"].Channel.insert1({"subject": "m0", "session": 0, "scan": 0, "channel": 9, "electrode": 0,
                               "gain": 29999.869140625})  # FLOAT text (6 digits) would make it 29999.900390625
    with export.capture("paper-s", "a", schema=lab.work):
        (p["Session"] & {"subject": "m9"}).fetch()
        (p["Scan"] & "subject in ('m0', 'm1')").fetch()
        (p["Figure"] & "figure = 2").fetch()  # an emoji in its caption
    monkeypatch.setattr(djshare.export.script, "ARGUMENT_BYTES", 300)  # many chunks per table
    calls = export.write_script("paper-s", tmp_path / "export.sh", schema=lab.work)
    text = (tmp_path / "export.sh").read_text()
    assert lab.server.admin_password not in text and calls > 12
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LANG", "LC_ALL")}  # as from cron
    env.update(DJSHARE_HOST=lab.server.host, DJSHARE_PORT=str(lab.server.port), DJSHARE_USER=lab.server.admin_user,
               MYSQL_PWD=lab.server.admin_password)
    with open(tmp_path / "export.sql", "wb") as out:
        dumped = subprocess.run(["bash", str(tmp_path / "export.sh")], env=env, stdout=out, stderr=subprocess.PIPE,
                                timeout=120)
    assert dumped.returncode == 0, dumped.stderr.decode()
    assert b"command not found" not in dumped.stderr
    target = defaults_server
    with open(tmp_path / "export.sql", "rb") as sql:
        loaded = subprocess.run(["mariadb", "-h", target.host, "-P", str(target.port), "-u", target.admin_user],
                                stdin=sql, env=dict(env, MYSQL_PWD=target.admin_password), capture_output=True,
                                timeout=120)
    assert loaded.returncode == 0, loaded.stderr.decode()
    with lab.session() as source, Session(ServerAddress(target.host, target.port, target.admin_user,
                                                        target.admin_password)) as there:
        from djshare.export.capture_tables import recorded
        from djshare.export.selection import select

        selection = select(source, recorded(source.address, "paper-s", lab.work), lab.work)
        for table in selection.graph.tables:
            assert _digest(there, table) == _digest(source, table, selection.where(table)), table
        assert there.rows(f"SELECT lab FROM `{lab.core}`.`#lab` WHERE lab LIKE 'o%'") == [(awkward,)]
        assert there.rows(f"SELECT caption FROM `{lab.analysis}`.`figure`") == [(AWKWARD[7],)]
        assert there.scalar(f"SELECT COUNT(*) FROM `{lab.core}`.`scan__channel`") == 37
    for schema in (lab.analysis, lab.core):
        target.execute(f"DROP DATABASE IF EXISTS `{schema}`")


def _bundle(exporting: ExportLab, tmp_path: Path, paper: str) -> tuple[Path, list[Any]]:
    run_analysis(exporting.pipeline, paper, exporting.work)
    entries = export.write(paper, tmp_path / paper, schema=exporting.work, progress=False)
    return tmp_path / paper, entries


def _schemas(server: MariaDBServer, *names: str) -> list[Any]:
    return server.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN (%s, %s)", names)


def test_a_damaged_bundle_is_refused_before_anything_is_created(exporting: ExportLab, servers: list[MariaDBServer],
                                                               tmp_path: Path) -> None:
    lab, target = exporting, servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    bundle, entries = _bundle(lab, tmp_path, "paper-damaged")
    session = next(e for e in entries if e.table == "session")
    data = bundle / session.data[0]
    original = data.read_bytes()
    data.write_bytes(original.replace(b"'m1'", b"'m7'", 1))  # one byte
    with pytest.raises(DjshareError, match=rf"{session.data[0]} \(`{lab.core}`.`session`\) does not match its "
                                           r"SHA-256.*Nothing was changed"):
        export.restore(bundle, address, progress=False)
    assert _schemas(target, lab.core, lab.analysis) == []
    data.unlink()
    with pytest.raises(DjshareError, match=rf"lacks {session.data[0]} \(`{lab.core}`.`session`\).*incomplete.*"
                                           "Nothing was changed"):
        export.restore(bundle, address, progress=False)
    assert _schemas(target, lab.core, lab.analysis) == []
    data.write_bytes(original)
    export.restore(bundle, address, progress=False)
    assert export.verify(bundle, address).problems == []
    for schema in (lab.analysis, lab.core):
        target.execute(f"DROP DATABASE `{schema}`")


def test_a_restore_that_fails_part_way_removes_what_it_created(exporting: ExportLab, servers: list[MariaDBServer],
                                                               tmp_path: Path) -> None:
    """A bundle written before files had checksums: its rows are checked as they load, and a table whose rows
    differ stops the restore, which drops the tables and schemas it created."""
    import json

    lab, target = exporting, servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    bundle, entries = _bundle(lab, tmp_path, "paper-old")
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    unit = next(e for e in entries if e.table == "unit")
    data = bundle / unit.data[0]
    data.write_bytes(data.read_bytes().replace(b"0.14285714285714285", b"0.24285714285714285", 1))
    target.execute(f"CREATE DATABASE `{lab.core}`")  # one schema exists already: it stays, emptied
    with pytest.raises(DjshareError, match=rf"`{lab.analysis}`.`unit` was loaded with 4 rows .*other values.*"
                                           r"removed the \d+ tables it had created; the target is as it was"):
        export.restore(bundle, address, progress=False)
    assert _schemas(target, lab.core, lab.analysis) == [(lab.core,)]
    assert target.query(f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{lab.core}'") == [(0,)]
    target.execute(f"DROP DATABASE `{lab.core}`")


def test_export_commands_say_what_is_wrong_in_one_line(exporting: ExportLab, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    lab = exporting
    env = dict(os.environ, DJ_HOST=lab.server.address, DJ_USER=lab.server.admin_user,
               DJ_PASS=lab.server.admin_password, DJSHARE_TARGET_USER=lab.server.admin_user,
               DJSHARE_TARGET_PASS="wrong", COLUMNS="300")

    def djshare(*args: str, password: str = "wrong") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", "export", *args], capture_output=True, text=True,
                              env=dict(env, DJSHARE_TARGET_PASS=password), timeout=120)

    never = f"never{lab.work}"  # a capture schema nothing was ever recorded into
    for command in (["preview", "p"], ["forget", "p"], ["write", "p", str(tmp_path / "b")],
                    ["script", "p", str(tmp_path / "s.sh")], ["copy", "p", "--to", lab.server.address]):
        done = djshare(*command, "--schema", never, password=lab.server.admin_password)
        assert done.returncode == 1 and f"No captures exist on {lab.server.address}" in done.stderr, (command, done)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 3, done.stderr
    run_analysis(lab.pipeline, "paper-e", lab.work)
    done = djshare("forget", "paper-e", "--analysis", "no-such", "--schema", lab.work)
    assert done.returncode == 1 and "Paper 'paper-e' has no analysis 'no-such'" in done.stderr, done.stderr
    assert "figure, units" in done.stderr
    done = djshare("forget", "paper-x", "--schema", lab.work)
    assert done.returncode == 1 and "Nothing was captured for paper 'paper-x'" in done.stderr, done.stderr
    assert "paper-e" in done.stderr
    done = djshare("write", "paper-e", str(tmp_path / "bundle"), "--schema", lab.work)
    assert done.returncode == 0, done.stderr
    assert "connected to" not in done.stderr + done.stdout and "━" not in done.stderr  # no log lines; no bar
    done = djshare("restore", str(tmp_path / "bundle"), "--to", lab.server.address)
    assert done.returncode == 1 and "wrong user name or password" in done.stderr, done.stderr
    assert "DJSHARE_TARGET_USER and DJSHARE_TARGET_PASS" in done.stderr and "LINK_USER" not in done.stderr
    assert "wrong" not in done.stderr.replace("wrong user", "")  # the password is never printed


def test_rows_that_break_a_foreign_key_are_not_restored(exporting: ExportLab, servers: list[MariaDBServer],
                                                        tmp_path: Path) -> None:
    """Foreign-key checks stay on and all rows load in one transaction: a bundle whose rows break a foreign key
    (here its checksums were made again after an edit, as a faulty writer would) restores nothing."""
    import json

    from djshare.export.bundle import file_checksums

    lab, target = exporting, servers[2]
    address = ServerAddress(target.host, target.port, target.admin_user, target.admin_password)
    bundle, entries = _bundle(lab, tmp_path, "paper-fk")
    subject = next(e for e in entries if e.table == "subject")
    data = bundle / subject.data[0]
    data.write_bytes(data.read_bytes().replace(b"'north'", b"'no lab'"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = file_checksums(bundle)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DjshareError, match=rf"loading `{lab.core}`.`subject`.*foreign key.*removed the \d+ tables"):
        export.restore(bundle, address, progress=False)
    assert _schemas(target, lab.core, lab.analysis) == []

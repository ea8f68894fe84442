"""The pair matrix: one scenario on every pair of sides {DataJoint 0.14 on MariaDB, 2.x on MariaDB, 2.x on
PostgreSQL} x {the same}, through the Python API each pair has today. It characterizes djshare before the link
kinds become one engine (issue 14): which verbs work on which pair, in which shape, and which pairs are refused.

Scenario, on a Session master with a Trace part (tests/pairs_pipeline.py; sources declared and filled by the
DataJoint line of their side, 2.x in its own environment): pull 2 of 3 subjects; pull the rest with a crash after
the second local insert, then repair and pull again; change a source row, find it stale, pull it with
refresh-changed; the source requests a deletion, the local side sees the request, deletes the entity and the
source finishes; gc; status. Each step's outcome is compared with `EXPECTED`: "ok", or the gap as today's code
leaves it. Closing a gap fails this test until its row in `EXPECTED` says "ok": the table is the record of what
differs between pairs. The local tables each pair declares are compared with a golden catalog snapshot
(tests/golden/pairs/; DJSHARE_GOLDEN=update rewrites them after a deliberate change).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datajoint as dj
import pytest

from djshare.errors import DjshareError
from djshare.sql.connection import ServerAddress
from tests.crash import Crash, crash_at
from tests.pairs_pipeline import IMAGES, SESSIONS, SUBJECTS, TRACES, declare, fill
from tests.servers import LinkUsers, MariaDBServer, PostgresServer, create_link_users, postgres_server

ROOT = Path(__file__).resolve().parents[2]
DJ2_PYTHON = ROOT / ".venv2" / "bin" / "python"
GOLDEN = ROOT / "tests" / "golden" / "pairs"
SIDES = ("dj014-mariadb", "dj2-mariadb", "dj2-postgresql")
STEPS = ("pull", "crash and repair", "stale", "stale shows changes", "refresh changed", "requested",
         "finish deletion", "gc", "status")
NUMBERS = itertools.count()
OK = "ok"
MISSING = "refused: the pair is missing"
KEYS_ONLY = "gap: keys only, no row changes"
NO_REQUESTED = "gap: the local side cannot list deletion requests"
NO_STALE = "gap: no stale check on this link"
NO_REFRESH = "gap: no refresh-changed on this link"

IN_STORE_ON_MARIADB = "refused: DataJoint 2.3.5 cannot insert in-store codecs on MariaDB"
OBJECTS = {"objects pull": OK, "objects gc": OK}  # sources with an Image table (external objects in a file store)
NO_OBJECTS = {"objects pull": IN_STORE_ON_MARIADB}  # ... into DataJoint 2.x on MariaDB

# today's outcome of every step on every pair (source side, local side); see the module docstring. A 2.x source on
# MariaDB has no Image table (2.3.5 cannot insert in-store codecs there), so no object steps.
EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    ("dj014-mariadb", "dj014-mariadb"): {**dict.fromkeys(STEPS, OK), **OBJECTS},
    ("dj014-mariadb", "dj2-mariadb"): {**dict.fromkeys(STEPS, OK), **NO_OBJECTS},
    ("dj014-mariadb", "dj2-postgresql"): {**dict.fromkeys(STEPS, OK), **OBJECTS},
    ("dj2-mariadb", "dj014-mariadb"): dict.fromkeys(STEPS, OK),
    ("dj2-mariadb", "dj2-mariadb"): dict.fromkeys(STEPS, OK),
    ("dj2-mariadb", "dj2-postgresql"): dict.fromkeys(STEPS, OK),
    ("dj2-postgresql", "dj014-mariadb"): {**dict.fromkeys(STEPS, OK), **OBJECTS},
    ("dj2-postgresql", "dj2-mariadb"): {**dict.fromkeys(STEPS, OK), **NO_OBJECTS},
    ("dj2-postgresql", "dj2-postgresql"): {**dict.fromkeys(STEPS, OK), **OBJECTS},
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@dataclass
class Side:
    """Where one side of a pair lives: its format, its server and schema (outbound schema for a source)."""

    name: str
    server: Any
    schema: str
    outbound: str = ""
    users: LinkUsers = field(default_factory=LinkUsers)
    store: Path | None = None  # the directory of this side's file store `pairs` (a source: with an Image table)

    @property
    def stores(self) -> dict[str, dict[str, Any]]:
        """This side's store settings (dj.config["stores"] form)."""
        return {"pairs": {"protocol": "file", "location": str(self.store)}} if self.store else {}

    @property
    def postgres(self) -> bool:
        return self.name.endswith("postgresql")

    @property
    def format(self) -> str:
        return self.name.split("-")[0]

    def query(self, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
        return list(self.server.query(statement, args))

    def execute(self, *statements: str) -> None:
        self.server.execute(*statements)

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.postgres else f"`{self.schema}`.`{name}`"

    def count(self, name: str, where: str = "") -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {self.table(name)}" + (f" WHERE {where}" if where else ""))[0][0])

    def address(self, admin: bool = True) -> ServerAddress:
        server = self.server
        user, password = (server.admin_user, server.admin_password) if admin or self.postgres else \
            (self.users.link_user, self.users.link_password)
        return ServerAddress(server.host, server.port, user, password,
                             **({"backend": "postgresql", "database": server.database} if self.postgres else {}))


def make_source(name: str, mariadb: MariaDBServer, postgres: PostgresServer, store: Path | None = None) -> Side:
    """A filled source; with `store` (and not 2.x on MariaDB), also an Image table with objects in that store."""
    number = next(NUMBERS) + os.getpid() % 1000 * 1000
    side = Side(name, postgres if name.endswith("postgresql") else mariadb, f"pairsrc{number}", f"pairout{number}",
                LinkUsers(link_user=f"pairlink{number}", regular_user=f"pairsci{number}"),
                store if name != "dj2-mariadb" else None)
    if side.store:
        side.store.mkdir(parents=True, exist_ok=True)
    if side.format == "dj014":
        connection = dj.Connection(mariadb.address, mariadb.admin_user, mariadb.admin_password, use_tls=False)
        stores = dict(dj.config.get("stores") or {})
        dj.config["stores"] = side.stores  # where DataJoint 0.14 writes the source's objects
        try:
            fill(declare(dj.Schema(side.schema, connection=connection), dj, "dj014", objects=bool(side.store)))
        finally:
            dj.config["stores"] = stores
    else:
        assert DJ2_PYTHON.exists(), "the DataJoint 2.x environment is missing: run `make venv` (make test builds it)"
        server = side.server
        settings = {"backend": "postgresql" if side.postgres else "mysql", "host": server.host, "port": server.port,
                    "user": server.admin_user, "password": server.admin_password,
                    "database": getattr(server, "database", ""), "schema": side.schema,
                    "store": str(side.store) if side.store else ""}
        done = subprocess.run([str(DJ2_PYTHON), str(ROOT / "tests" / "pairs_pipeline.py"), json.dumps(settings)],
                              capture_output=True, timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    if not side.postgres:
        create_link_users(mariadb, side.schema, side.outbound, side.users)
    return side


class Pair:
    """Today's API for one pair: the local link of `table` and the source's deletion commands, behind the
    scenario's verbs. Store settings: the source's and the local side's `stores`."""

    def __init__(self, source: Side, local: Side, table: str = "Session") -> None:
        self.source, self.local, self.table = source, local, table
        self.link: Any = None
        self.source_link: Any = None
        self._make()

    def _make(self) -> None:
        """Each side as a lab gives it (0.14: a LazySchema with its settings; 2.x: MariaDBSchema or PostgresSchema),
        the link opened by `open_link` from what the schemas hold."""
        from djshare import LazySchema
        from djshare.link.dj2 import MariaDBSchema
        from djshare.link.pg import PostgresSchema
        from djshare.link.setup import open_link, open_source

        source, local, table = self.source, self.local, self.table
        source_side: Any
        admin: Any  # the source lab's own account, for its deletion commands
        if source.format == "dj014":
            source_side = LazySchema(source.schema, host=source.server.address, user=source.users.link_user,
                                     password=source.users.link_password, stores=source.stores)
            admin = LazySchema(source.schema, host=source.server.address, user=source.server.admin_user,
                               password=source.server.admin_password)
        elif source.postgres:
            source_side = admin = PostgresSchema(
                source.schema, host=source.server.address, database=source.server.database,
                user=source.server.admin_user, password=source.server.admin_password, stores=source.stores)
        else:
            source_side = MariaDBSchema(source.schema, source.address(admin=False))
            admin = MariaDBSchema(source.schema, source.address())
        self.source_link = open_source(table, admin, outbound=source.outbound)
        local_side: Any
        if local.postgres:
            local_side = PostgresSchema(local.schema, host=local.server.address, database=local.server.database,
                                        user=local.server.admin_user, password=local.server.admin_password,
                                        stores=local.stores)
        elif (source.format, local.format) == ("dj014", "dj014"):  # the facade: DataJoint's own settings
            dj.config["database.host"] = local.server.address
            dj.config["database.user"], dj.config["database.password"] = local.server.admin_user, \
                local.server.admin_password
            dj.config["stores"] = {**(dj.config.get("stores") or {}), **local.stores}
            local_side = LazySchema(local.schema)
        else:
            local_side = MariaDBSchema(local.schema, local.address(), local.stores)
        self.link = open_link(table, source_side, local_side, format=local.format, outbound=source.outbound)

    @property
    def facade(self) -> bool:
        from djshare.link.api import LinkedTable

        return isinstance(self.link, LinkedTable)

    def pull(self, *restrictions: str, **options: Any) -> Any:
        target = self.link
        return target.pull(*restrictions, progress=False, **options)

    def repair(self) -> Any:
        return (self.link).repair(progress=False)

    def stale(self) -> Any:
        return (self.link).stale(progress=False)

    def status(self) -> dict[str, int]:
        return dict((self.link).status())

    def requested(self) -> set[tuple[str, int]]:
        if self.facade:
            self.link.refresh()
            return {(r["subject"], int(r["session"])) for r in self.link.DeletionRequested().fetch(as_dict=True)}
        if not hasattr(self.link, "requested"):
            raise Gap(NO_REQUESTED)
        return {(r["subject"], int(r["session"])) for r in self.link.requested()}

    def delete_local(self, where: str, requested: bool = True) -> None:
        """Delete the local rows of entities matching `where` (parts first) as the lab would, then `repair`."""
        if self.facade:
            (self.link & where).delete()
            return
        table = self.table.lower()
        self.local.execute(*(f"DELETE FROM {self.local.table(t)} WHERE {where}"
                             for t in ((f"{table}__trace", table) if table == "session" else (table,))))
        steps = self.repair().steps
        assert not requested or steps == {"approve_deletion": 1}, steps

    def gc(self, dry_run: bool = True) -> Any:
        """The link's own gc, the same verb on every kind."""
        return (self.link).gc(dry_run=dry_run)


class Gap(Exception):
    """A step today's code does not do on this pair (the message is the `EXPECTED` entry)."""


def run_steps(steps: list[tuple[str, Callable[[], None]]], outcome: dict[str, str]) -> None:
    """Run the scenario's steps in order, recording "ok" or the gap of each; a refused pull ends the scenario."""
    for name, step in steps:
        try:
            step()
            outcome[name] = OK
        except Gap as gap:
            outcome[name] = str(gap)
            if name in ("pull", "objects pull"):  # what follows needs what it would have pulled
                return


def stored(store: Path | None) -> int:
    """Objects in a file store (temporaries of killed copies left out)."""
    return sum(1 for p in store.rglob("*") if p.is_file() and ".djshare-" not in p.name) if store else 0


def run_scenario(pair: Pair, outcome: dict[str, str], images: Pair | None = None) -> None:
    """The scenario; `outcome` gets each step's result as it runs (a refused first step ends it). `images`: the
    link of the source's Image table (external objects), where the source has one."""
    source, local = pair.source, pair.local
    per_subject = SESSIONS

    def pull() -> None:
        try:
            report = pair.pull([{"subject": "s1"}, {"subject": "s2"}])  # dicts, OR: as DataJoint takes them
        except DjshareError as error:
            assert local.postgres or not local.query(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (local.schema,)), \
                "a refused link created the local schema"
            raise Gap(MISSING) from error
        assert (report.pulled, report.part_rows) == (2 * per_subject, 2 * per_subject * TRACES)
        assert local.count("session") == 2 * per_subject and local.count("session__trace") == 2 * per_subject * TRACES

    def crash_and_repair() -> None:
        with pytest.raises(Crash):
            pair.pull(batch_size=1, checkpoint=crash_at("insert_local", occurrence=2))
        assert local.count("session") == 2 * per_subject + 2  # two batches of one landed before the crash
        pair.repair()
        assert pair.pull().pulled == per_subject - 2
        assert local.count("session") == len(SUBJECTS) * per_subject

    found: dict[str, Any] = {}

    def stale() -> None:
        source.execute(f"UPDATE {source.table('session')} SET note = 'changed' WHERE subject = 's1' AND session = 0")
        try:
            report = pair.stale()
        except DjshareError as error:
            raise Gap(NO_STALE) from error
        assert len(report.stale) == 1 and report.out_of_step == 0
        found["stale"] = report

    def shows_changes() -> None:
        if not found["stale"].changes:
            raise Gap(KEYS_ONLY)
        assert [(a.kind, a.branch, a.key, {c: v[0] for c, v in a.changes.items()}) for a in found["stale"].changes] \
            == [("changed", "session", {"subject": "s1", "session": 0}, {"note": "changed"})]

    def refresh_changed() -> None:
        try:
            pair.pull(refresh_changed=True)
        except DjshareError as error:
            raise Gap(NO_REFRESH) from error
        assert local.query(f"SELECT note FROM {local.table('session')} WHERE subject = 's1' AND session = 0") == [
            ("changed",)]
        assert pair.stale().stale == []

    where = "subject = 's2' AND session = 1"

    def requested() -> None:
        assert pair.source_link.request_deletion({"subject": "s2", "session": 1}) == 1
        assert pair.requested() == {("s2", 1)}

    def finish_deletion() -> None:
        pair.delete_local(where)
        report = pair.source_link.finish_deletion()
        assert (report.outbound_rows, report.source_rows) == (1, 1)
        assert source.count("session", where) == 0 and source.count("session__trace", where) == 0

    def gc() -> None:
        assert pair.gc().deleted == []  # the Session tables hold no external objects (the Image steps do)

    def status() -> None:
        held = len(SUBJECTS) * per_subject - 1
        assert pair.status() == {"pulling": 0, "pulled": held, "deletion_requested": 0, "deletion_approved": 0,
                                 "local": held}

    def objects_pull() -> None:
        assert images is not None
        objects = len(SUBJECTS) * IMAGES
        try:
            with pytest.raises(Crash):  # killed after the second batch's objects were copied, before its rows
                images.pull(batch_size=2, checkpoint=crash_at("copy_objects", occurrence=2))
        except DjshareError as error:
            assert "cannot insert" in str(error) and "MariaDB" in str(error), error
            assert not images.local.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                          (images.local.schema,)), "a refused link created the local schema"
            raise Gap(IN_STORE_ON_MARIADB) from error
        assert images.local.count("image") == 2 and stored(images.local.store) == 4
        report = images.pull()  # the re-run converges: every row, every object once, nothing orphaned
        assert report.pulled + report.finished == objects - 2 and report.objects <= objects - 2, report
        assert stored(images.local.store) == objects and images.local.count("image") == objects
        assert images.gc(dry_run=True).deleted == []

    def objects_gc() -> None:
        assert images is not None
        objects = len(SUBJECTS) * IMAGES
        images.delete_local("subject = 's1' AND image = 0", requested=False)  # repair releases the entity
        assert len(images.gc(dry_run=True).deleted) == 1 and stored(images.local.store) == objects
        report = images.gc(dry_run=False)
        assert len(report.deleted) == 1 and stored(images.local.store) == objects - 1, report
        again = images.pull()  # the released entity comes back, with its object
        assert (again.pulled, again.objects) == (1, 1) and stored(images.local.store) == objects
        assert images.gc(dry_run=False).deleted == []  # every object is referenced again

    steps = [("pull", pull), ("crash and repair", crash_and_repair), ("stale", stale),
             ("stale shows changes", shows_changes), ("refresh changed", refresh_changed),
             ("requested", requested), ("finish deletion", finish_deletion), ("gc", gc), ("status", status)]
    if images is not None:
        steps += [("objects pull", objects_pull), ("objects gc", objects_gc)]
    run_steps(steps, outcome)


def catalog(side: Side, source_schema: str) -> dict[str, Any]:
    """The local schema as its server's catalog describes it (names of schemas replaced, for a stable snapshot)."""
    if side.postgres:
        columns = side.query(
            "SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod), c.is_nullable, "
            "c.column_default, coalesce(col_description(a.attrelid, a.attnum), '') FROM information_schema.columns c "
            "JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
            "AND a.attname = c.column_name WHERE c.table_schema = %s ORDER BY c.table_name, c.ordinal_position",
            (side.schema,))
        keys = side.query(
            "SELECT c.relname, con.contype, pg_get_constraintdef(con.oid) FROM pg_constraint con JOIN pg_class c ON "
            "c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "ORDER BY 1, 2, 3", (side.schema,))
        comments = side.query("SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' "
                              "ORDER BY 1", (side.schema,))
    else:
        columns = side.query(
            "SELECT table_name, column_name, column_type, is_nullable, column_default, column_comment FROM "
            "information_schema.columns WHERE table_schema = %s ORDER BY table_name, ordinal_position",
            (side.schema,))
        keys = side.query(
            "SELECT table_name, constraint_name, GROUP_CONCAT(CONCAT(column_name, '->', COALESCE(CONCAT("
            "referenced_table_schema, '.', referenced_table_name, '.', referenced_column_name), '')) ORDER BY "
            "ordinal_position) FROM information_schema.key_column_usage WHERE table_schema = %s "
            "GROUP BY table_name, constraint_name ORDER BY 1, 2", (side.schema,))
        comments = side.query("SELECT table_name, table_comment FROM information_schema.tables WHERE table_schema = %s "
                              "ORDER BY 1", (side.schema,))
    lineage = side.query(f"SELECT * FROM {side.table('~lineage')} ORDER BY 1, 2") if any(
        row[0] == "~lineage" for row in comments) else []
    text = json.dumps({"columns": columns, "keys": keys, "tables": comments, "lineage": lineage}, default=str)
    text = re.sub(rf"\b{re.escape(side.schema)}\b", "{local}", text)
    text = re.sub(rf"\b{re.escape(source_schema)}\b", "{source}", text)
    return dict(json.loads(re.sub(r"\bpairout\d+\b", "{outbound}", text)))


def check_golden(pair: Pair) -> None:
    path = GOLDEN / f"{pair.source.name}--{pair.local.name}.json"
    found = catalog(pair.local, pair.source.schema)
    if os.environ.get("DJSHARE_GOLDEN") == "update":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found, indent=1) + "\n")
    assert path.exists(), f"{path} is missing: run this test with DJSHARE_GOLDEN=update once, and review the file"
    assert found == json.loads(path.read_text()), f"the local tables differ from {path}"


@pytest.mark.parametrize("source_name,local_name", list(itertools.product(SIDES, SIDES)))
def test_the_scenario_on_every_pair(source_name: str, local_name: str, servers: list[MariaDBServer],
                                    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    monkeypatch.setitem(dj.config, "database.use_tls", False)
    monkeypatch.setitem(dj.config, "safemode", False)
    for key in ("database.host", "database.user", "database.password"):
        monkeypatch.setitem(dj.config, key, dj.config[key])
    monkeypatch.setitem(dj.config, "stores", dict(dj.config.get("stores") or {}))
    source = make_source(source_name, servers[0], postgres, tmp_path / "source-store")
    server = postgres if local_name.endswith("postgresql") else servers[1]
    local = Side(local_name, server, source.schema.replace("pairsrc", "pairlocal" + local_name.split("-")[0]))
    (tmp_path / "local-store").mkdir()
    images = Pair(source, Side(local_name, server, local.schema + "img", store=tmp_path / "local-store"),
                  "Image") if source.store else None
    pair = Pair(source, local)
    outcome: dict[str, str] = {}
    run_scenario(pair, outcome, images)
    assert outcome == EXPECTED[(source_name, local_name)]
    if outcome["pull"] == OK:
        check_golden(pair)


# --- the same scenario from the command line ----------------------------------------------------------------

CLI_STEPS = ("pull", "repair", "stale", "stale shows changes", "refresh changed", "requested", "finish deletion",
             "gc", "status")
WRONG_FORMAT = "gap: the CLI cannot choose the local format"
CLI_OK = dict.fromkeys(CLI_STEPS, OK)
# today's outcome from the command line: `-l` names a schema and `--format` the format of the new local schema;
# `djshare refresh` copies requests into 0.14's DeletionRequested table, and lists them for the other kinds
EXPECTED_CLI: dict[tuple[str, str], dict[str, str]] = {
    ("dj014-mariadb", "dj014-mariadb"): {**CLI_OK, **OBJECTS},
    ("dj014-mariadb", "dj2-mariadb"): {**CLI_OK, **NO_OBJECTS},
    ("dj014-mariadb", "dj2-postgresql"): {**CLI_OK, **OBJECTS},
    ("dj2-mariadb", "dj014-mariadb"): CLI_OK,
    ("dj2-mariadb", "dj2-mariadb"): CLI_OK,
    ("dj2-mariadb", "dj2-postgresql"): CLI_OK,
    ("dj2-postgresql", "dj014-mariadb"): {**CLI_OK, **OBJECTS},
    ("dj2-postgresql", "dj2-mariadb"): {**CLI_OK, **NO_OBJECTS},
    ("dj2-postgresql", "dj2-postgresql"): {**CLI_OK, **OBJECTS},
}


class Cli:
    """`djshare` commands for a pair, with the environment a lab sets (LINK_* for the source, DJ_* for the local)."""

    def __init__(self, source: Side, local: Side, table: str = "Session", settings: Path | None = None) -> None:
        """`settings`: a directory for the files a lab keeps store settings in (the local side's in
        dj_local_conf.json, DataJoint's own, read from the working directory; the source's in a JSON file named by
        LINK_SOURCE_STORES)."""
        self.source, self.local, self.cwd = source, local, settings
        server = source.server
        self.host = f"postgresql://{server.address}/{server.database}" if source.postgres else server.address
        self.table = f"{source.schema}.{table}"
        self.local_schema = f"postgresql://{local.server.address}/{local.server.database}/{local.schema}" \
            if local.postgres else local.schema
        user, password = (server.admin_user, server.admin_password) if source.postgres else \
            (source.users.link_user, source.users.link_password)
        self.env = dict(os.environ, LINK_HOST=self.host, LINK_USER=user, LINK_PASS=password,
                        LINK_OUTBOUND=source.outbound, DJ_HOST=local.server.address, DJ_USER=local.server.admin_user,
                        DJ_PASS=local.server.admin_password, COLUMNS="300")
        if settings is not None:
            settings.mkdir(parents=True, exist_ok=True)
            (settings / "dj_local_conf.json").write_text(json.dumps({"stores": local.stores}))
            (settings / "source_stores.json").write_text(json.dumps(source.stores))
            self.env["LINK_SOURCE_STORES"] = str(settings / "source_stores.json")
        self.source_admin = dict(self.env, LINK_USER=server.admin_user, LINK_PASS=server.admin_password)

    def __call__(self, *args: str, admin: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "djshare", *args], capture_output=True, text=True,
                              timeout=300, env=self.source_admin if admin else self.env, cwd=self.cwd)

    def local_side(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self(*args, self.table, "-l", self.local_schema)


def local_format(local: Side) -> str:
    """The DataJoint format of the local tables djshare declared: 2.x has codec comments and `~lineage`."""
    if local.postgres:
        return "dj2"
    names = {row[0] for row in local.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                           (local.schema,))}
    return "dj2" if "~lineage" in names else "dj014"


def run_cli_scenario(cli: Cli, outcome: dict[str, str], images: Cli | None = None) -> None:
    source, local = cli.source, cli.local
    per_subject = SESSIONS
    where = "subject = 's2' AND session = 1"

    def ok(done: subprocess.CompletedProcess[str], code: int = 0) -> str:
        assert done.returncode == code, (done.args, done.stdout, done.stderr)
        return done.stdout

    def pull() -> None:
        done = cli.local_side("pull", "-w", "subject <> 's3'", "--format", local.format)
        if done.returncode != 0:
            assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
            raise Gap(MISSING)
        if local_format(local) != local.format:
            raise Gap(WRONG_FORMAT)
        assert f"pulled {2 * per_subject} entities" in done.stdout, done.stdout
        assert local.count("session") == 2 * per_subject

    def repair() -> None:
        local.execute(f"DELETE FROM {local.table('session__trace')} WHERE subject = 's1' AND session = 3",
                      f"DELETE FROM {local.table('session')} WHERE subject = 's1' AND session = 3")
        ok(cli.local_side("repair"))
        ok(cli.local_side("pull"))  # the rest, and the entity deleted outside djshare (released by repair)
        assert local.count("session") == len(SUBJECTS) * per_subject

    found: dict[str, str] = {}

    def stale() -> None:
        source.execute(f"UPDATE {source.table('session')} SET note = 'changed' WHERE subject = 's1' AND session = 0")
        done = cli("diff", "--link", cli.table, "-l", cli.local_schema)
        if done.returncode == 2:
            raise Gap(NO_STALE)
        found["stale"] = ok(done, code=1)
        assert "1 stale entities" in done.stderr, done.stderr

    def shows_changes() -> None:
        if "changed" not in found["stale"]:  # the entity's key, not its changed rows
            raise Gap(KEYS_ONLY)
        assert "~ session (subject='s1', session=0)\n    note: " in found["stale"] and "-> 'changed'" in found["stale"]

    def refresh_changed() -> None:
        done = cli.local_side("pull", "--refresh-changed")
        if done.returncode != 0:
            raise Gap(NO_REFRESH)
        assert local.query(f"SELECT note FROM {local.table('session')} WHERE subject = 's1' AND session = 0") == [
            ("changed",)]

    def requested() -> None:
        ok(cli("request-deletion", cli.table, "-w", where, admin=True))
        assert "s2" in ok(cli("requested", cli.table, admin=True))  # the source side sees it; the local side:
        done = cli.local_side("refresh")
        if done.returncode != 0:
            raise Gap(NO_REQUESTED)
        if "new deletion requests" in done.stdout:  # a 0.14 DeletionRequested table got it
            assert "1 new deletion requests" in done.stdout and local.count("session__deletion_requested") == 1
        else:  # listed
            assert "1 open deletion requests" in done.stdout and "s2" in done.stdout, done.stdout

    def finish_deletion() -> None:
        local.execute(f"DELETE FROM {local.table('session__trace')} WHERE {where}",
                      f"DELETE FROM {local.table('session')} WHERE {where}")
        ok(cli.local_side("repair"))
        ok(cli("finish-deletion", cli.table, admin=True))
        assert source.count("session", where) == 0 and source.count("session__trace", where) == 0

    def gc() -> None:
        ok(cli("gc", "-l", cli.local_schema, "--dry-run"))

    def status() -> None:
        text = ok(cli("status"))
        held = len(SUBJECTS) * per_subject - 1
        rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()
                if re.search(r"[`\"]session[`\"] ", line)]
        assert [row[2:] for row in rows] == [["0", str(held), "0", "0"]], text

    def objects_pull() -> None:
        assert images is not None
        objects = len(SUBJECTS) * IMAGES
        done = images.local_side("pull", "--format", images.local.format)
        if done.returncode != 0:
            assert "cannot insert" in done.stderr and "MariaDB" in done.stderr, done.stderr
            assert not images.local.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                          (images.local.schema,)), "a refused link created the local schema"
            raise Gap(IN_STORE_ON_MARIADB)
        assert f"pulled {objects} entities (0 part rows, {objects} objects)" in done.stdout, done.stdout
        assert stored(images.local.store) == objects

    def objects_gc() -> None:
        assert images is not None
        objects = len(SUBJECTS) * IMAGES
        images.local.execute(f"DELETE FROM {images.local.table('image')} WHERE subject = 's1' AND image = 0")
        ok(images.local_side("repair"))  # releases the entity deleted outside djshare
        assert "would delete 1 objects" in ok(images("gc", "-l", images.local_schema, "--dry-run"))
        assert "deleted 1 objects" in ok(images("gc", "-l", images.local_schema))
        assert stored(images.local.store) == objects - 1
        assert "pulled 1 entities (0 part rows, 1 objects)" in ok(images.local_side("pull"))  # back, with its object
        assert "deleted 0 objects" in ok(images("gc", "-l", images.local_schema))
        assert stored(images.local.store) == objects

    steps = [("pull", pull), ("repair", repair), ("stale", stale), ("stale shows changes", shows_changes),
             ("refresh changed", refresh_changed), ("requested", requested), ("finish deletion", finish_deletion),
             ("gc", gc), ("status", status)]
    if images is not None:
        steps += [("objects pull", objects_pull), ("objects gc", objects_gc)]
    run_steps(steps, outcome)


@pytest.mark.parametrize("source_name,local_name", list(itertools.product(SIDES, SIDES)))
def test_the_scenario_on_every_pair_from_the_command_line(source_name: str, local_name: str,
                                                          servers: list[MariaDBServer],
                                                          postgres: PostgresServer, tmp_path: Path) -> None:
    source = make_source(source_name, servers[0], postgres, tmp_path / "source-store")
    server = postgres if local_name.endswith("postgresql") else servers[1]
    local = Side(local_name, server, source.schema.replace("pairsrc", "paircli" + local_name.split("-")[0]))
    (tmp_path / "local-store").mkdir()
    images = Cli(source, Side(local_name, server, local.schema + "img", store=tmp_path / "local-store"), "Image",
                 tmp_path / "settings") if source.store else None
    outcome: dict[str, str] = {}
    run_cli_scenario(Cli(source, local), outcome, images)
    assert outcome == EXPECTED_CLI[(source_name, local_name)]
    if outcome["pull"] == OK:
        assert catalog(local, source.schema) == json.loads(
            (GOLDEN / f"{source_name}--{local_name}.json").read_text()), "the CLI declares other tables than the API"

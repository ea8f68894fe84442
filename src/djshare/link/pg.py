"""Links between DataJoint 2.x schemas on PostgreSQL, without DataJoint (runs beside 2.x or 0.14).

    source = PostgresSchema.source("lab2", host="pg.lab.org", database="lab")   # LINK_USER / LINK_PASS
    local = PostgresSchema("collab2", host="pg.collab.org", database="collab")  # DJ_USER / DJ_PASS
    session = PgLink("Session", source, local)                                 # LINK_OUTBOUND
    session.pull("session_date > '2024-01-01'")                                # SQL conditions

The protocol and the loops are those of every link (`pull.pull`, `repair.repair`); this module holds their
PostgreSQL SQL. Source side (`PostgresSource`): an outbound table in its own schema with a foreign key to the
source table, a session-level advisory lock per link and subscriber (released by the server if the process
dies), keys named by literals the server writes (`quote_nullable` of each key column). Local side
(`PostgresCopy`): the source's tables declared again (types, defaults, comments with their codec labels, enum
types, a part's foreign key to its master, `~lineage`), rows streamed with binary `COPY` from the source into
the local tables, one local transaction per batch.

Objects of hash-addressed codecs (`<blob@store>`, `<attach@store>`, `<hash@store>`) follow their rows: before
a batch's rows, each object goes from the source store (`_hash/{source schema}/{hash}`) to the local store
(`_hash/{local schema}/{hash}`), checked against the MD5 its name is made of, and the rows' JSON references
are rewritten on the way (path, store, schema). Path-addressed codecs carry no content hash: `<object@store>` and
`<npy@store>` files and folders (`{schema_prefix}/{schema}/{table}/{key}/{field}_{token}`) move to the local
store's `schema_prefix` and the local schema, `<filepath@store>` files keep their path; copies are checked by the
size the reference gives (a folder: its files, count and total size, and its manifest), and a file already at
the target path must hold the same bytes. Every object djshare writes is entered in the local `~djshare_objects`
journal first, so `gc` deletes what it wrote and no row references any more, never the local lab's own files.

Deletions (`PgSourceLink`, the source lab's side): flag held entities, read the answers, and delete the source
rows no subscriber holds any more; a subscriber answers by deleting locally and running `repair`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from djshare.backends import postgresql as postgres
from djshare.backends.address import ServerAddress, read_credentials
from djshare.backends.catalog import Column, TableInfo
from djshare.backends.postgresql import (
    POSTGRESQL,
    PgSession,
    advisory_lock,
    enum_labels,
    key_condition,
    key_literal,
    key_names,
    key_order,
    name,
    paged_keys,
    text,
)
from djshare.errors import (
    ConfigurationError,
    DefinitionMismatchError,
    MissingPrivilegeError,
)
from djshare.formats.declare import postgresql_copy
from djshare.formats.heading import differences
from djshare.formats.lineage import LINEAGE_TABLE, lineage_declaration, lineage_upsert, localized
from djshare.link.delete import SourceCommands
from djshare.link.gc import GcReport
from djshare.link.outbound import COMMENT_PREFIX, OutboundSource, OutboundTable
from djshare.link.outbound import schema_counts as outbound_schema_counts
from djshare.link.protocol import Outbound
from djshare.link.pull import DEFAULT_BATCH, PullReport
from djshare.link.runner import LinkRunner, Ready, check_store_map, outbound_schema_name, table_exists
from djshare.link.stale import entity_changes
from djshare.link.tables import Checkpoint, LinkTables, LocalSide, SourceSide
from djshare.stores.copying import CopyJob, copy_checked, folder_jobs, full_path
from djshare.stores.formats import format_of_schema
from djshare.stores.formats.dj2 import (
    HASHED_CODECS,
    PATH_CODECS,
    SCHEMA_CODECS,
    Reference,
    codec_of,
    digest_of,
    hash_path,
    is_covered,
    relocated,
    schema_path_rule,
)
from djshare.stores.objects import open_store
from djshare.stores.spec import StoreSpec
from djshare.sync.actions import Action

JOURNAL_TABLE = "~djshare_objects"  # objects djshare wrote into the local stores (what gc may delete)
SUBSCRIBER_TABLE = "~djshare_subscriber"


class PostgresSchema:
    """A schema on a PostgreSQL server, as one side of a link.

    User and password: `user=` / `password=`, else the environment (DJ_USER / DJ_PASS; for `source(...)`,
    LINK_USER / LINK_PASS). `stores`: the side's stores in DataJoint's `stores` settings form (default:
    dj.config["stores"]), for links that copy objects.
    """

    def __init__(self, name: str, *, host: str, database: str, user: str | None = None,
                 password: str | None = None, port: int | None = None,
                 stores: Mapping[str, Mapping[str, Any]] | None = None,
                 role: str = "local") -> None:
        self.name, self.host, self.database = name, host, database
        self._user, self._password, self._port = user, password, port
        self._stores = stores
        self._role = role

    @classmethod
    def source(cls, name: str, *, host: str, database: str, user: str | None = None, password: str | None = None,
               port: int | None = None, stores: Mapping[str, Mapping[str, Any]] | None = None) -> PostgresSchema:
        """A source schema: user and password from LINK_USER / LINK_PASS unless given."""
        return cls(name, host=host, database=database, user=user, password=password, port=port, stores=stores,
                   role="link")

    @property
    def stores(self) -> Mapping[str, Mapping[str, Any]]:
        """`stores=` if given, else DataJoint's settings (dj.config["stores"])."""
        if self._stores is not None:
            return self._stores
        import datajoint as dj

        return dict(dj.config.get("stores") or {})

    @property
    def address(self) -> ServerAddress:
        user, password, given = read_credentials(self._role, f"postgresql://{self.host}/{self.database}",
                                                 self._user, self._password, "PostgresSchema")
        address = ServerAddress.parse(self.host, user, password, self._port or postgres.DEFAULT_PORT,
                                      credentials=given)
        return replace(address, backend="postgresql", database=self.database)


@dataclass(frozen=True)
class ObjectColumn:
    """A column holding references to objects in a store."""

    table: TableInfo
    column: Column
    codec: str  # blob, attach, hash (hash-addressed); object, npy, filepath (path-addressed)
    store: str  # the source store
    local_store: str


def object_columns(tables: Sequence[TableInfo], store_map: Mapping[str, str]) -> list[ObjectColumn]:
    """The in-store codec columns of `tables` (`store_map`: source store -> local store)."""
    found = []
    for table in tables:
        for column in table.columns:
            codec = codec_of(column.comment)
            if codec is None or codec[1] is None:
                continue
            kind, store = codec
            if kind not in HASHED_CODECS | PATH_CODECS:
                raise ConfigurationError(
                    f"Column `{column.name}` of {table.schema}.{table.name} is <{kind}@{store}>, a codec djshare "
                    f"does not know (it knows {', '.join(sorted(HASHED_CODECS | PATH_CODECS))}). Nothing was changed.")
            found.append(ObjectColumn(table, column, kind, store or "", store_map.get(store or "", store or "")))
    return found


def object_jobs(column: ObjectColumn, value: str, source: StoreSpec, target: StoreSpec,
                local_schema: str | None) -> list[CopyJob]:
    """The copies that bring one reference's object from `source` to `target`: into `local_schema`'s paths
    (hash-addressed: `_hash/{local schema}/{hash}`; schema-addressed: the target's `schema_prefix` and the local
    schema), or with `local_schema` None to the same path; filepaths keep theirs. A folder goes as its files."""
    reference: dict[str, Any] = json.loads(value)
    path = str(reference.get("path", ""))
    if column.codec in HASHED_CODECS:
        hashed = Reference.parse(reference)
        target_path = path if local_schema is None else hash_path(local_schema, hashed.hash)
        return [CopyJob(source, path, target, target_path, hashed.size, digest_of(hashed.hash), True)]
    target_path = path
    if column.codec in SCHEMA_CODECS and local_schema is not None:
        rule = schema_path_rule(source.schema_prefix, column.table.schema, target.schema_prefix, local_schema)
        moved = relocated(path, rule)
        if moved is None:
            raise ConfigurationError(
                f"<{column.codec}@{column.store}> path {path!r} in {column.table.schema}.{column.table.name} does "
                f"not follow the store's layout ({source.schema_prefix}/{column.table.schema}/...): set "
                "`schema_prefix` of the source store as the source lab's DataJoint has it. Nothing was changed.")
        target_path = moved
    size = reference.get("size")
    job = CopyJob(source, path, target, target_path, None if size is None else int(size))
    return folder_jobs(job, reference.get("item_count")) if reference.get("is_dir") else [job]


def declare_outbound(pg: PgSession, outbound: OutboundTable) -> None:
    """Create the outbound schema and table if missing; check an existing one belongs to this source. A missing
    privilege is reported with the grants the link user needs."""
    source = outbound.source
    table = name(outbound.schema, outbound.name)
    comment = COMMENT_PREFIX + name(source.schema, source.name)
    user = name(pg.address.user)
    grants = (f"GRANT USAGE ON SCHEMA {name(source.schema)} TO {user}; GRANT SELECT, REFERENCES ON ALL TABLES IN "
              f"SCHEMA {name(source.schema)} TO {user}; CREATE SCHEMA IF NOT EXISTS {name(outbound.schema)} "
              f"AUTHORIZATION {user}")
    try:
        _declare_outbound(pg, outbound, table, comment)
    except MissingPrivilegeError as error:  # DDL is transactional here: nothing was left behind
        raise MissingPrivilegeError(f"{error} The link user needs: {grants}", grant=grants) from None


def _declare_outbound(pg: PgSession, outbound: OutboundTable, table: str, comment: str) -> None:
    source = outbound.source
    keys = key_names(source)
    states = ", ".join(text(s.value) for s in Outbound)
    with pg.transaction(f"creating the outbound table {table}"):
        if not pg.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (outbound.schema,)):
            pg.execute(f"CREATE SCHEMA {name(outbound.schema)}")  # needs CREATE on the database
        pg.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (subscriber varchar(64) NOT NULL, "
            + "".join(f"{name(c.name)} {c.column_type} NOT NULL, " for c in source.key_columns)
            + f"state varchar(24) NOT NULL CHECK (state IN ({states})), "
            "changed_at timestamptz NOT NULL DEFAULT now(), "
            f"PRIMARY KEY (subscriber, {keys}), FOREIGN KEY ({keys}) REFERENCES {name(source.schema, source.name)} "
            f"({keys}) ON UPDATE RESTRICT ON DELETE RESTRICT)")
        pg.execute(f"CREATE INDEX IF NOT EXISTS {name(outbound.name[:50] + '_source_key')} ON {table} ({keys})")
        existing = pg.scalar("SELECT obj_description(%s::regclass, 'pg_class')", (table,))
        if existing is None:
            pg.execute(f"COMMENT ON TABLE {table} IS {text(comment)}")
        elif existing != comment:
            raise ConfigurationError(f"{table} exists but is not the outbound table of {source.schema}.{source.name} "
                                     f"(its comment says {existing!r}). Use another LINK_OUTBOUND schema.")


def objects_lock(pg: PgSession, schema: str, timeout: float = 600) -> contextlib.AbstractContextManager[None]:
    """Object copies of pulls and gc in one local schema, one at a time (a lock on the local server)."""
    return advisory_lock(pg, f"objects/{schema}", timeout, f"Another djshare pull or gc kept the objects of local "
                         f"schema {schema} busy for more than {timeout:g} s. Try again when it has finished.")


def journal(pg: PgSession, schema: str, objects: Sequence[tuple[str, str]]) -> None:
    """Record (store, path) of objects djshare is about to write into the local stores."""
    table = name(schema, JOURNAL_TABLE)
    pg.execute(f"CREATE TABLE IF NOT EXISTS {table} (store varchar(64) NOT NULL, path text NOT NULL, "
               "PRIMARY KEY (store, path))")
    with pg.connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s) ON CONFLICT DO NOTHING", list(objects))


def link_lock(pg: PgSession, tables: LinkTables, timeout: float) -> contextlib.AbstractContextManager[None]:
    """One pull or repair of a link and subscriber at a time (an advisory lock on the source server)."""
    return advisory_lock(pg, f"{tables.outbound.schema}.{tables.outbound.name}/{tables.subscriber}", timeout,
                         f"Another djshare run (pull or repair) of {tables.source.schema}.{tables.source.name} for "
                         f"subscriber {tables.subscriber} held the link's lock for more than {timeout:g} s. Wait for "
                         "it to finish and try again.")


class PostgresSource(OutboundSource):
    """A link's source side on PostgreSQL: the source table and the outbound rows of one subscriber."""

    def __init__(self, pg: PgSession, tables: LinkTables) -> None:
        super().__init__(pg, POSTGRESQL, tables.outbound, tables.subscriber)
        self.pg, self.tables = pg, tables


def schema_counts(pg: PgSession, outbound_schema: str) -> list[tuple[str, str, dict[str, int]]]:
    """(source table, subscriber, rows per state) for every djshare outbound table in `outbound_schema`."""
    return outbound_schema_counts(pg, outbound_schema, POSTGRESQL)


def subscriber_id(pg: PgSession, schema: str) -> str:
    """This local schema's name on source servers, made once and kept in a one-row hidden table."""
    table = name(schema, SUBSCRIBER_TABLE)
    pg.execute(f"CREATE SCHEMA IF NOT EXISTS {name(schema)}")
    pg.execute(f"CREATE TABLE IF NOT EXISTS {table} (one smallint PRIMARY KEY, subscriber varchar(64) NOT NULL)")
    pg.execute(f"INSERT INTO {table} VALUES (1, %s) ON CONFLICT DO NOTHING",
               (f"{schema[:40]}-{os.urandom(6).hex()}",))
    return str(pg.scalar(f"SELECT subscriber FROM {table} WHERE one = 1"))


def _tables(pg: PgSession, schema: str) -> set[str]:
    return {str(r[0]) for r in pg.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                       (schema,))}


def declare_local(source: PgSession, local: PgSession, tables: LinkTables, store_map: Mapping[str, str]) -> list[str]:
    """Create the local tables and lineage where missing, in one transaction; return how existing local tables
    differ from the source (empty when they match)."""
    schema = tables.local_schema
    existing = _tables(local, schema)
    statements = [s for t in (tables.source, *tables.source_parts) if t.name not in existing
                  for s in postgresql_copy(t, None if t is tables.source else tables.source, schema, store_map,
                                           lambda kind: enum_labels(source, kind))]
    names = {t.name for t in (tables.source, *tables.source_parts)}
    lineage = localized(source.rows(f"SELECT table_name, attribute_name, lineage FROM "
                                    f"{name(tables.source.schema, LINEAGE_TABLE)}"),
                        tables.source.schema, schema, names) \
        if LINEAGE_TABLE in _tables(source, tables.source.schema) else []
    with local.transaction(f"declaring the local tables in schema {schema}"):
        local.execute(f"CREATE SCHEMA IF NOT EXISTS {name(schema)}")
        for statement in statements:
            local.execute(statement)
        if lineage:
            local.execute(lineage_declaration(schema, "postgresql"))
            for row in lineage:
                local.execute(lineage_upsert(schema, "postgresql"), row)
    found = []
    for table in (tables.source, *tables.source_parts):
        found += differences(postgres.read_table(local, schema, table.name), table, lambda c: (c.data_type, c.nullable))
    return found


@dataclass(frozen=True)
class Objects:
    """The object columns of a link and the store settings of both sides (by source store name)."""

    columns: tuple[ObjectColumn, ...] = ()
    specs: Mapping[str, tuple[StoreSpec, StoreSpec]] | None = None


def _comparable(column: Column) -> str:
    """SQL for a column's value as both sides of a link compare it: hash-addressed objects by their content hash,
    path-addressed ones by their reference without the store and (schema-addressed) with the file name of the
    path only (a new object gets a new token); other columns as they are."""
    codec, ref = codec_of(column.comment), f"{name(column.name)}::jsonb"
    if codec is None or codec[1] is None:
        return name(column.name)
    if codec[0] in HASHED_CODECS:
        return f"({ref} ->> 'hash')"
    if codec[0] in SCHEMA_CODECS:
        return (f"({ref} - 'store' - 'path' || jsonb_build_object('file', regexp_replace({ref} ->> 'path', '^.*/', "
                "'')))::text")
    return f"({ref} - 'store')::text"


def _row_text(table: TableInfo) -> str:
    """SQL for a row's text, equal on both sides of a link (see `_comparable`)."""
    return " || ',' || ".join(f"quote_nullable({_comparable(c)})" for c in table.columns)


def entity_rows(pg: PgSession, schema: str, tables: LinkTables, keys: list[bytes]) -> dict[bytes, list[Any]]:
    """Per master key literal: its master and part rows as (table name, *comparable values), read on the server
    holding `schema` (source or local), for what `stale` reports as changed."""
    master = tables.source
    where = key_condition(master, keys)
    found: dict[bytes, list[Any]] = {}
    for table in (master, *tables.source_parts):
        values = ", ".join(_comparable(c) for c in table.columns)
        for row in pg.rows(f"SELECT {key_literal(master.key_columns)}, {values} FROM {name(schema, table.name)} "
                           "WHERE ".encode() + where,
                           doing=f"reading rows of {schema}.{table.name}"):
            found.setdefault(bytes(row[0]), []).append((table.name, *row[1:]))
    return found


def digests(pg: PgSession, schema: str, tables: LinkTables, keys: list[bytes]) -> dict[bytes, tuple[str, ...]]:
    """Per master key literal: the MD5 of its master row and of each part table's rows in key order, computed on
    the server holding `schema` (source or local)."""
    master = tables.source
    where = key_condition(master, keys)
    found: dict[bytes, tuple[str, ...]] = {bytes(k): (str(d),) for k, d in pg.rows(
        f"SELECT {key_literal(master.key_columns)}, md5({_row_text(master)}) FROM {name(schema, master.name)} "
        "WHERE ".encode() + where, doing=f"hashing rows of {schema}.{master.name}")}
    for part in tables.source_parts:
        rows = {bytes(k): str(d) for k, d in pg.rows(
            f"SELECT {key_literal(master.key_columns)}, md5(string_agg({_row_text(part)}, E'\\n' ORDER BY "
            f"{key_order(part)})) FROM {name(schema, part.name)} WHERE ".encode() + where
            + f" GROUP BY {key_names(master)}".encode(), doing=f"hashing rows of {schema}.{part.name}")}
        found = {key: (*value, rows.get(key, "")) for key, value in found.items()}
    return found


def table_name(pg: PgSession, schema: PostgresSchema, table: str) -> str:
    """The SQL name of `table`: a class name (CamelCase, tier prefix found) or the name itself."""
    present = _tables(pg, schema.name)
    if not table[:1].isupper():
        candidates = [table]
    else:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", table).lower()
        candidates = [prefix + snake for prefix in ("", "_", "__", "#")]
    for candidate in candidates:
        if candidate in present:
            return candidate
    masters = sorted(t for t in present if not t.startswith("~") and "__" not in t.lstrip("_#"))
    raise ConfigurationError(f"No table for {table} in schema {schema.name} on {schema.host}. "
                             f"Tables there: {', '.join(masters) or 'none'}.")


def part_tables(pg: PgSession, schema: str, master: str) -> tuple[TableInfo, ...]:
    """The part tables of `master` (DataJoint names them master__part)."""
    return tuple(postgres.read_table(pg, schema, p) for p in sorted(_tables(pg, schema))
                 if p.startswith(master + "__") and "__" not in p[len(master) + 2:])


class PostgresCopy:
    """A link's local side on PostgreSQL holding the source's tables as they are (same types): objects first,
    then rows stream from source to local with binary COPY, references rewritten for the local schema."""

    def __init__(self, source: PgSession, local: PgSession, tables: LinkTables, objects: Objects = Objects()) -> None:
        self.source, self.local, self.tables, self.objects = source, local, tables, objects
        self.master = replace(tables.source, schema=tables.local_schema)
        self.name = name(tables.local_schema, tables.source.name)

    def present(self, keys: list[bytes]) -> set[bytes]:
        return {bytes(r[0]) for r in self.local.rows(
            f"SELECT {key_literal(self.master.key_columns)} FROM {self.name} WHERE ".encode()
            + key_condition(self.master, keys), doing=f"reading {self.name}")}

    def count(self) -> int:
        return int(self.local.scalar(f"SELECT count(*) FROM {self.name}"))

    def key_pages(self, size: int) -> Iterator[list[bytes]]:
        return paged_keys(self.local, self.master, self.name, "TRUE", size)

    def _selected(self, table: TableInfo, column: Column) -> str:
        """The source column as the local table holds it: references to objects rewritten for the local side
        (store; hash-addressed: path and schema; schema-addressed: path moved to the local schema)."""
        found = [c for c in self.objects.columns if c.table.name == table.name and c.column.name == column.name]
        if not found:
            return name(column.name)
        objects, schema, ref = found[0], self.tables.local_schema, f"{name(column.name)}::jsonb"
        changes = {"store": text(objects.local_store)}
        if objects.codec in HASHED_CODECS:
            changes |= {"path": f"{text(hash_path(schema, ''))} || ({ref} ->> 'hash')", "schema": text(schema)}
        elif objects.codec in SCHEMA_CODECS:
            source, local = (self.objects.specs or {})[objects.store]
            pattern, replacement = schema_path_rule(source.schema_prefix, table.schema, local.schema_prefix, schema)
            changes["path"] = f"regexp_replace({ref} ->> 'path', {text(pattern)}, {text(replacement)})"
        update = "jsonb_build_object(" + ", ".join(f"{text(k)}, {v}" for k, v in changes.items()) + ")"
        return f"CASE WHEN {name(column.name)} IS NULL THEN NULL ELSE ({ref} || {update})::{column.column_type} END"

    def _bring(self, where: bytes) -> int:
        """Copy the objects the rows of `where` reference into the local stores (before the rows). Objects the
        local stores do not have yet are entered in the journal first, so that gc knows djshare wrote them."""
        jobs: list[CopyJob] = []
        specs = self.objects.specs or {}
        for found in self.objects.columns:
            table, column = found.table, name(found.column.name)
            source, local = specs[found.store]
            for (value,) in self.source.rows(
                    f"SELECT DISTINCT {column}::text FROM {name(table.schema, table.name)} WHERE {column} IS NOT NULL "
                    "AND ".encode() + where, doing=f"reading references in {table.schema}.{table.name}"):
                jobs += object_jobs(found, value, source, local, self.tables.local_schema)
        stores = {job.target.name: open_store(job.target) for job in jobs}
        new = [(job.target.name, job.target_path) for job in jobs
               if not stores[job.target.name].exists(full_path(job.target, job.target_path))]
        if new:
            journal(self.local, self.tables.local_schema, new)
        return copy_checked(jobs) if jobs else 0

    def copy(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Objects first (checked), then master and part rows of `keys` in one local transaction (binary COPY,
        streamed); gc of the local schema waits meanwhile."""
        with contextlib.ExitStack() as stack:
            if self.objects.columns:
                stack.enter_context(objects_lock(self.local, self.tables.local_schema))
                report.objects += self._bring(key_condition(self.tables.source, keys))
                checkpoint("copy_objects")
            self._copy_rows(keys, report)

    def _copy_rows(self, keys: list[bytes], report: PullReport) -> None:
        where = key_condition(self.tables.source, keys)
        with self.local.transaction(f"inserting into {self.name}"):
            for table in (self.tables.source, *self.tables.source_parts):
                columns = ", ".join(name(c.name) for c in table.columns)
                selected = ", ".join(self._selected(table, c) for c in table.columns)
                target = name(self.tables.local_schema, table.name)
                copied = self._stream(f"COPY (SELECT {selected} FROM {name(table.schema, table.name)} WHERE "
                                      .encode() + where + b") TO STDOUT (FORMAT BINARY)",
                                      f"COPY {target} ({columns}) FROM STDIN (FORMAT BINARY)", target)
                if table is self.tables.source:
                    report.pulled += copied
                else:
                    report.part_rows += copied

    def stale_keys(self, keys: list[bytes]) -> tuple[list[bytes], int, list[Action]]:
        """Each side hashes these entities' rows inside its server (objects by their content hash, since paths,
        stores and schemas differ by design) and the digests are compared; only the rows of entities that differ
        are read, to say what changed."""
        theirs = digests(self.source, self.tables.source.schema, self.tables, keys)
        mine = digests(self.local, self.tables.local_schema, self.tables, keys)
        differ = [k for k in keys if k in mine and mine[k] != theirs.get(k)]
        changes: list[Action] = []
        if differ:
            source_rows = entity_rows(self.source, self.tables.source.schema, self.tables, differ)
            local_rows = entity_rows(self.local, self.tables.local_schema, self.tables, differ)
            columns = {t.name: ([c.name for c in t.columns], t.primary_key)
                       for t in (self.tables.source, *self.tables.source_parts)}
            changes = [change for k in differ
                       for change in entity_changes(columns, source_rows.get(k, []), local_rows.get(k, []))]
        return differ, sum(1 for k in keys if k not in mine), changes

    def refresh(self, keys: list[bytes], report: PullReport, checkpoint: Checkpoint) -> None:
        """Bring the source's current rows of entities held here: objects first, then in one local transaction
        each table's rows are updated in place (rows that reference them stay valid), new part rows inserted and
        part rows the source dropped deleted. The outbound state does not change."""
        with objects_lock(self.local, self.tables.local_schema) if self.objects.columns else contextlib.nullcontext():
            if self.objects.columns:
                report.objects += self._bring(key_condition(self.tables.source, keys))
                checkpoint("copy_objects")
            where = key_condition(self.tables.source, keys)
            with self.local.transaction(f"refreshing {self.name}"):
                for table in (self.tables.source, *self.tables.source_parts):
                    self._refresh_table(table, where)
            report.refreshed += len(keys)

    def _refresh_table(self, table: TableInfo, where: bytes) -> None:
        target = name(self.tables.local_schema, table.name)
        columns = ", ".join(name(c.name) for c in table.columns)
        selected = ", ".join(self._selected(table, c) for c in table.columns)
        self.local.execute(f"CREATE TEMPORARY TABLE djshare_refresh (LIKE {target}) ON COMMIT DROP")
        self._stream(f"COPY (SELECT {selected} FROM {name(table.schema, table.name)} WHERE ".encode() + where
                     + b") TO STDOUT (FORMAT BINARY)", f"COPY djshare_refresh ({columns}) FROM STDIN (FORMAT BINARY)",
                     target)
        keys = key_names(table)
        if table is not self.tables.source:  # part rows the source no longer has
            self.local.execute(f"DELETE FROM {target} WHERE ".encode() + where
                               + f" AND ({keys}) NOT IN (SELECT {keys} FROM djshare_refresh)".encode(),
                               doing=f"deleting dropped rows of {target}")
        values = [c.name for c in table.columns if c.name not in table.primary_key]
        update = ("DO UPDATE SET " + ", ".join(f"{name(c)} = EXCLUDED.{name(c)}" for c in values)) if values \
            else "DO NOTHING"
        self.local.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM djshare_refresh "
                           f"ON CONFLICT ({keys}) {update}", doing=f"refreshing {target}")
        self.local.execute("DROP TABLE djshare_refresh")

    def _stream(self, out: bytes, into: str, target: str) -> int:
        try:
            with self.source.connection.cursor() as reader, self.local.connection.cursor() as writer:
                with reader.copy(out) as source, writer.copy(into) as sink:
                    for block in source:
                        sink.write(block)
                return int(writer.rowcount)
        except Exception as error:  # psycopg's errors, from either server
            raise postgres.translate(error, self.local.address, f"copying rows into {target}") from None


class PgLink(LinkRunner):
    """A link from a DataJoint 2.x table on PostgreSQL (`table`: its class name or SQL name) to a schema on
    another PostgreSQL server, in the same layout. Restrictions: SQL text, dicts, lists (see `sql_restriction`).
    `stores` maps local store names to source store names where they differ; store settings come from each
    side's `PostgresSchema(stores=...)` (default: DataJoint's settings)."""

    source_sql = POSTGRESQL

    def __init__(self, table: str, source: PostgresSchema, local: PostgresSchema, *, outbound: str | None = None,
                 subscriber: str | None = None, stores: Mapping[str, str] | None = None,
                 batch_size: int = DEFAULT_BATCH, lock_timeout: float = 60.0) -> None:
        super().__init__(table, outbound=outbound, subscriber=subscriber, stores=stores, batch_size=batch_size,
                         lock_timeout=lock_timeout)
        self.source, self.local = source, local

    def _setup(self, create: bool = True) -> Ready:
        if self._ready is not None:
            return self._ready
        outbound_schema = outbound_schema_name(self.outbound)
        schema = self.source.name
        with postgres.session(self.source.address) as source, postgres.session(self.local.address) as local:
            table = table_name(source, self.source, self.table)
            if format_of_schema(source, schema) != "dj2":
                raise ConfigurationError(
                    f"Schema {schema} on {self.source.host} is not in DataJoint 2.x's layout (no ~lineage table, no "
                    "codec comments): links between PostgreSQL schemas are built for DataJoint 2.x schemas.")
            info = postgres.read_table(source, schema, table)
            parts = part_tables(source, schema, table)
            columns = object_columns((info, *parts), self.store_map)
            check_store_map(self.store_map, {c.store for c in columns} | set(self.source.stores),
                            f"table {schema}.{table} (its columns' stores and the source's store settings)")
            specs = {store: (StoreSpec.from_config(store, self.source.stores, "source"),
                             StoreSpec.from_config(self.store_map.get(store, store), self.local.stores, "local"))
                     for store in sorted({c.store for c in columns})}
            ob = OutboundTable.for_source(info, outbound_schema)
            if not create and not table_exists(local, self.local.name, info.name):
                return Ready(LinkTables(info, parts, self.local.name, ob, ""), [], linked=False)
            declare_outbound(source, ob)
            subscriber = self.subscriber or subscriber_id(local, self.local.name)
            tables = LinkTables(info, parts, self.local.name, ob, subscriber)
            mismatch = declare_local(source, local, tables, self.store_map)
        self._ready = Ready(tables, mismatch, Objects(tuple(columns), specs))
        return self._ready

    @contextlib.contextmanager
    def _sides(self, ready: Ready) -> Iterator[tuple[SourceSide, LocalSide]]:
        tables = ready.tables
        with postgres.session(self.source.address) as source, postgres.session(self.local.address) as local, \
                link_lock(source, tables, self.lock_timeout):
            yield PostgresSource(source, tables), PostgresCopy(source, local, tables, ready.local)

    def _source_session(self) -> contextlib.AbstractContextManager[PgSession]:
        return postgres.session(self.source.address)

    def gc(self, dry_run: bool = False) -> GcReport:
        """`gc` of the local schema (see there)."""
        return gc(self.local, dry_run)

    def _check_declared(self, ready: Ready) -> None:
        if ready.mismatch:
            tables = ready.tables
            raise DefinitionMismatchError(
                f"The local tables in {tables.local_schema} no longer match the source {tables.source.schema}."
                f"{tables.source.name}: " + "; ".join(ready.mismatch) + ". Nothing was pulled. Alter the local "
                "tables to match (or drop them after saving their rows, and let djshare declare them again).")


class PgSourceLink(SourceCommands):
    """The source lab's side of PostgreSQL links of one table: ask subscribers to delete entities they hold, see
    their answers, and delete the source rows once no one holds them, with their parts and dependent rows (the
    outbound table's foreign key keeps every held row). Restrictions: SQL text, dicts, lists (OR)."""

    sql = POSTGRESQL

    def __init__(self, table: str, source: PostgresSchema, *, outbound: str | None = None) -> None:
        super().__init__(source.name, table, lambda: postgres.session(source.address),
                         lambda: outbound_schema_name(outbound))
        self.source, self.outbound = source, outbound

    def _read(self, source: Any) -> TableInfo:
        return postgres.read_table(source, self.source.name, table_name(source, self.source, self.table))

    def _check_outbound(self, source: Any, ob: OutboundTable) -> None:
        if ob.name not in _tables(source, ob.schema):
            raise ConfigurationError(f"No subscriber has pulled {ob.source.schema}.{ob.source.name} (no outbound "
                                     f"table {ob.schema}.{ob.name}): nothing to ask or finish.")


def _references(local: PgSession, schema: str) -> dict[str, set[str]]:
    """Store -> the object paths that rows of `schema` name (every in-store column, any codec)."""
    referenced: dict[str, set[str]] = {}
    for table in sorted(_tables(local, schema) - {JOURNAL_TABLE, SUBSCRIBER_TABLE, LINEAGE_TABLE}):
        for found in postgres.read_table(local, schema, table).columns:
            codec = codec_of(found.comment)
            if codec is None or codec[1] is None or found.data_type not in ("json", "jsonb"):
                continue
            column = name(found.name)
            for store, path in local.rows(
                    f"SELECT DISTINCT {column}::jsonb ->> 'store', {column}::jsonb ->> 'path' FROM "
                    f"{name(schema, table)} WHERE {column} IS NOT NULL"):
                referenced.setdefault(str(store), set()).add(str(path))
    return referenced


def _used_elsewhere(local: PgSession, schema: str, store: str, stores: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Object paths in `store`'s place that rows of the database's *other* schemas name: a `<filepath@>` path has
    no schema in it, so another schema (linked, or DataJoint's own) using the same place may reference the very
    file this schema's pull wrote."""
    spec = StoreSpec.from_config(store, stores, "local")
    found: set[str] = set()
    for (other,) in local.rows(
            "SELECT DISTINCT table_schema FROM information_schema.columns WHERE data_type IN ('json', 'jsonb') "
            "AND table_schema <> %s AND table_schema NOT IN ('pg_catalog', 'information_schema')", (schema,)):
        for theirs, paths in _references(local, str(other)).items():
            if theirs in stores and StoreSpec.from_config(theirs, stores, "local").same_place(spec):
                found |= paths
    return found


def gc(local_schema: PostgresSchema, dry_run: bool = False) -> GcReport:
    """Delete objects djshare wrote into the stores of `local_schema` that no row of it references any more
    (never objects djshare did not write). An object that a row of another schema in the database names (same
    store place, same path) is kept, and leaves the journal: it is no longer this schema's alone. Store settings:
    `PostgresSchema(stores=...)`, default DataJoint's."""
    schema = local_schema.name
    report = GcReport(dry_run=dry_run)
    with postgres.session(local_schema.address) as local, objects_lock(local, schema):
        if JOURNAL_TABLE not in _tables(local, schema):
            return report
        referenced = _references(local, schema)
        elsewhere: dict[str, set[str]] = {}
        journaled = {(str(s), str(p)) for s, p in local.rows(
            f"SELECT store, path FROM {name(schema, JOURNAL_TABLE)}")}
        for store, path in sorted(journaled):
            if is_covered(path, referenced.get(store, set())):
                continue
            if store not in elsewhere:
                elsewhere[store] = _used_elsewhere(local, schema, store, local_schema.stores)
            shared = is_covered(path, elsewhere[store])  # kept, and no longer this schema's alone
            if not shared:
                report.deleted.append(f"{store}:{path}")
            if not dry_run:
                if not shared:
                    spec = StoreSpec.from_config(store, local_schema.stores, "local")
                    open_store(spec).delete(full_path(spec, path))
                local.execute(f"DELETE FROM {name(schema, JOURNAL_TABLE)} WHERE store = %s AND path = %s",
                              (store, path))
    return report

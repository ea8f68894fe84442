"""The journal of the objects djshare wrote into a local side's stores (`~djshare_objects`), and the lock that keeps
object copies and gc of one local schema one at a time, on both local backends.

An object is journaled before it is written (`stores.copying.copy_checked` calls back with the absent targets), so
a crash between the write and the rows leaves an object gc knows djshare wrote; gc deletes only journaled objects
no row references. On MariaDB an entry is (store, hash, path), as 0.14's `~external` rows name objects by hash; on
PostgreSQL (store, path), as 2.x references name them by path."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from djshare.backends.mariadb import Session, named_lock, quote_name
from djshare.backends.mariadb_rows import MARIADB, literal
from djshare.backends.postgresql import PgSession, advisory_lock, name, table_names
from djshare.backends.postgresql_sql import POSTGRESQL

JOURNAL = "~djshare_objects"
PG_JOURNAL = JOURNAL
BATCH = 1000  # entries per statement


def journal_name(schema: str) -> str:
    return quote_name(schema, JOURNAL)


def declare_journal(local: Session, schema: str) -> None:
    local.execute(
        f"CREATE TABLE IF NOT EXISTS {journal_name(schema)} (`store` varchar(64) CHARACTER SET ascii NOT NULL, "
        "`hash` binary(16) NOT NULL, `path` varchar(1024) NOT NULL, "
        "`created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (`store`, `hash`)) "
        "COMMENT='djshare: external objects djshare wrote into local stores (gc deletes unreferenced ones)'"
    )


def record(local: Session, schema: str, entries: Sequence[tuple[str, bytes, str]]) -> None:
    """Journal (store, hash, path) of objects about to be written into the stores of MariaDB schema `schema`, in
    one transaction (the journal is declared)."""
    with local.transaction("journaling objects"):
        for start in range(0, len(entries), BATCH):
            local.execute(
                f"INSERT INTO {journal_name(schema)} (`store`, `hash`, `path`) VALUES ".encode()
                + b",".join(b"(" + literal(store) + b",X'" + digest.hex().encode() + b"'," + literal(path) + b")"
                            for store, digest, path in entries[start:start + BATCH])
                + MARIADB.upsert(("store", "hash", "path"), ("store", "hash")).encode(),
                doing="journaling objects",
            )


def forget(local: Session, schema: str, entries: Sequence[tuple[str, str]]) -> None:
    """Remove the entries (store, path) of objects that were never written (best effort: gc would clear them too,
    as deleting a missing object changes nothing)."""
    if not entries:
        return
    with local.transaction("removing journal rows of objects never written"):
        for store, path in entries:
            local.execute(f"DELETE FROM {journal_name(schema)} WHERE `store` = %s AND `path` = %s", (store, path),
                          doing="removing journal rows")


def journaled_stores(local: Session, schema: str) -> list[str]:
    """The stores of MariaDB schema `schema` that journal entries name."""
    return [str(r[0]) for r in local.rows(f"SELECT DISTINCT `store` FROM {journal_name(schema)} ORDER BY 1")]


def journaled_paths(local: Session, schema: str, store: str) -> list[str]:
    return [str(r[0]) for r in local.rows(f"SELECT `path` FROM {journal_name(schema)} WHERE `store` = %s", (store,))]


def unreferenced(local: Session, schema: str, store: str, references: Sequence[tuple[str, str, str]]
                 ) -> list[tuple[bytes, str]]:
    """(hash, path) of the journal entries of `store` that no row names in any of `references` ((schema, table,
    column) holding object hashes)."""
    conditions = "".join(f" AND NOT EXISTS (SELECT 1 FROM {quote_name(s, t)} WHERE {quote_name(c)} = j.`hash`)"
                         for s, t, c in references)
    rows = local.rows(f"SELECT j.`hash`, j.`path` FROM {journal_name(schema)} AS j WHERE j.`store` = %s{conditions}",
                      (store,))
    return [(bytes(h), str(p)) for h, p in rows]


def forget_object(local: Session, schema: str, store: str, digest: bytes) -> None:
    """Remove the journal entry of the object `digest` of `store`."""
    local.execute(f"DELETE FROM {journal_name(schema)} WHERE `store` = %s AND `hash` = %s", (store, digest))


def objects_lock(local: Session, schema: str, timeout: float = 600) -> contextlib.AbstractContextManager[None]:
    """Object copies of pulls and `gc` in one local MariaDB schema, one at a time (lock on the local server)."""
    return named_lock(local, f"objects/{local.address.host}:{local.address.port}/{schema}", timeout,
                      f"Another djshare pull or gc kept the objects of local schema `{schema}` busy for more than "
                      f"{timeout:g} s. Try again when it has finished.")


def pg_objects_lock(pg: PgSession, schema: str, timeout: float = 600) -> contextlib.AbstractContextManager[None]:
    """Object copies of pulls and gc in one local PostgreSQL schema, one at a time (a lock on the local server)."""
    return advisory_lock(pg, f"objects/{schema}", timeout, f"Another djshare pull or gc kept the objects of local "
                         f"schema {schema} busy for more than {timeout:g} s. Try again when it has finished.")


def pg_journal(pg: PgSession, schema: str, objects: Sequence[tuple[str, str]]) -> None:
    """Journal (store, path) of objects djshare is about to write into the stores of PostgreSQL schema `schema`."""
    table = name(schema, PG_JOURNAL)
    pg.execute(f"CREATE TABLE IF NOT EXISTS {table} (store varchar(64) NOT NULL, path text NOT NULL, "
               "PRIMARY KEY (store, path))")
    with pg.connection.cursor() as cursor:
        cursor.executemany(POSTGRESQL.insert_new(table, "VALUES (%s, %s)"), list(objects))


def pg_entries(pg: PgSession, schema: str) -> set[tuple[str, str]]:
    """(store, path) of every object journaled in PostgreSQL schema `schema` (none where there is no journal)."""
    if PG_JOURNAL not in table_names(pg, schema):
        return set()
    return {(str(s), str(p)) for s, p in pg.rows(f"SELECT store, path FROM {name(schema, PG_JOURNAL)}")}


def pg_forget(pg: PgSession, schema: str, store: str, path: str) -> None:
    pg.execute(f"DELETE FROM {name(schema, PG_JOURNAL)} WHERE store = %s AND path = %s", (store, path))

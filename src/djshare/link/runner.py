"""The one engine: pull, repair, status, stale checks and refresh of one link, for every kind (`crossformat.CrossLink`,
`dj2.Dj2Link`, `pg.PgLink`, `pg_mariadb.PgToMariaDBLink`, and the 0.14 facade's classes through `dj014.Dj014Runner`):
a subclass says how to set the link up once and how to open its two sides under the link's lock; the loops
(`pull.pull`, `repair.repair`) and the protocol are the same for every link. Stale checks and
`pull(refresh_changed=True)` are chosen by what the local side can do: a MariaDB side on the source's backend
(`pull.MariaDBLocal`) is compared by the diff engine inside both servers (`link.stale`), a `Refreshable` one compares
held entities itself, page by page, and refreshes them in place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from djshare.backends.mariadb_rows import MARIADB, MariaDB
from djshare.errors import ConfigurationError
from djshare.link import stale as staleness
from djshare.link.delete import listed
from djshare.link.gc import GcReport
from djshare.link.protocol import Outbound
from djshare.link.pull import MariaDBLocal, PullReport, checked_options, checked_subscriber
from djshare.link.pull import pull as run_pull
from djshare.link.repair import RepairReport
from djshare.link.repair import repair as run_repair
from djshare.link.stale import StaleReport
from djshare.link.tables import Checkpoint, LinkTables, LocalSide, Refreshable, SourceSide, no_checkpoint
from djshare.progress import progress_bar, rows_progress, shown
from djshare.restriction import sql_restriction


@dataclass
class Ready:
    """What setting a link up found: its tables, and how existing local tables differ from the source."""

    tables: LinkTables
    mismatch: list[str]
    local: Any = None  # the local side's own description of its tables
    linked: bool = True  # False: found by `_setup(create=False)` for a link not made yet; nothing was declared


ENV_OUTBOUND = "LINK_OUTBOUND"


def outbound_schema_name(explicit: str | None) -> str:
    """The outbound schema: `explicit`, else LINK_OUTBOUND."""
    name = explicit or os.environ.get(ENV_OUTBOUND)
    if not name:
        raise ConfigurationError(
            f"No outbound schema: set {ENV_OUTBOUND} to the schema on the source server that holds outbound "
            "tables (the link user needs all privileges on it), or pass outbound= to the link."
        )
    return name


class LinkRunner:
    """The commands of one link. Subclasses implement `_setup`, `_sides`, `_where` and `_check_declared`, and say
    which backend the source is on (`source_sql`)."""

    source_sql: MariaDB = MARIADB

    def __init__(self, table: str, *, outbound: str | None, subscriber: str | None, batch_size: int,
                 lock_timeout: float, stores: Mapping[str, str] | None = None) -> None:
        """`stores` maps local store names to source store names where they differ (kept as source -> local)."""
        self.table, self.outbound, self.subscriber = table, outbound, checked_subscriber(subscriber)
        self.store_map = {source_store: local_store for local_store, source_store in (stores or {}).items()}
        self.batch_size, self.lock_timeout = checked_options(batch_size, lock_timeout)
        self._ready: Ready | None = None

    def _setup(self, create: bool = True) -> Ready:
        """Check everything, then declare the outbound and local tables (once per object). With `create=False`,
        a link whose local table does not exist yet is only checked: a Ready with `linked=False`, nothing changed."""
        raise NotImplementedError

    def _source_session(self) -> contextlib.AbstractContextManager[Any]:
        """A session on the source server."""
        raise NotImplementedError

    def _source_name(self, tables: LinkTables) -> str:
        """The source table's name as the source server's SQL writes it."""
        return self.source_sql.table(tables.source)

    def _checked(self, restrictions: tuple[Any, ...], dry_run: bool) -> tuple[str, Ready]:
        """The WHERE clause of `restrictions`, checked by the source server, and the link set up; for a dry run of
        a link not made yet, a Ready with `linked=False` (nothing declared)."""
        where = self._where(restrictions)
        ready = self._setup(create=False)
        with self._source_session() as source:
            name = self._source_name(ready.tables)
            source.rows(f"SELECT 1 FROM {name}{where} LIMIT 0", doing=f"checking the restriction on {name}")
        return where, (self._setup() if ready.linked or not dry_run else ready)

    def _matching(self, ready: Ready, where: str) -> int:
        """Source entities matching `where` (for a dry run of a link not made yet)."""
        name = self._source_name(ready.tables)
        with self._source_session() as source:
            return int(source.scalar(f"SELECT COUNT(*) FROM {name}{where}", doing=f"counting {name}"))

    def _sides(self, ready: Ready) -> contextlib.AbstractContextManager[tuple[SourceSide, LocalSide]]:
        """The source and local sides, with the link's lock held on the source server."""
        raise NotImplementedError

    def _where(self, restrictions: tuple[Any, ...]) -> str:
        """" WHERE ..." (or "") for the source table restricted by every one of `restrictions`: SQL text, dicts of
        attribute values, lists of these (OR), as `restriction.sql_restriction` takes them. Reads only: a
        malformed restriction changes nothing."""
        return sql_restriction(restrictions, self._setup(create=False).tables.source, self.source_sql)

    def _check_declared(self, ready: Ready) -> None:
        """Raise DefinitionMismatchError if existing local tables no longer match the source."""
        raise NotImplementedError

    def pull(self, *restrictions: Any, dry_run: bool = False, progress: bool = True, batch_size: int | None = None,
             checkpoint: Checkpoint = no_checkpoint, refresh_changed: bool = False) -> PullReport:
        """Pull every source entity matching all `restrictions` not held yet. Safe to re-run after any failure;
        see `repair`. With `refresh_changed`, also bring over the current rows of held entities whose source rows
        changed after the pull (see `stale`): updated in place, one local transaction per batch, the outbound
        state unchanged."""
        size = self.batch_size if batch_size is None else checked_options(batch_size)[0]
        where, ready = self._checked(restrictions, dry_run)
        if not ready.linked:
            return PullReport(dry_run=True, would_pull=self._matching(ready, where))
        self._check_declared(ready)
        tables = ready.tables
        with self._sides(ready) as (source, local):
            if refresh_changed and not isinstance(local, (Refreshable, MariaDBLocal)):
                raise ConfigurationError("Refreshing changed entities (--refresh-changed) is not built for this kind "
                                         "of link yet; find them with `djshare diff` on the two tables.")
            bar = shown(progress and not dry_run)  # the count of candidates is a full scan: only for a bar
            total = source.count_candidates(where) if bar else None
            with progress_bar(f"pull {tables.source.name}", total, bar) as advance:
                report = run_pull(source, local, where, batch_size=size, dry_run=dry_run, on_progress=advance,
                                  checkpoint=checkpoint)
            if refresh_changed and not dry_run:
                self._refresh_changed(source, local, where, size, report, progress, checkpoint)
            return report

    def _refresh_changed(self, source: SourceSide, local: LocalSide, where: str, size: int, report: PullReport,
                         progress: bool, checkpoint: Checkpoint) -> None:
        """Bring over the current rows of held entities whose source rows changed, `size` at a time."""
        name = self._setup().tables.source.name
        if isinstance(local, MariaDBLocal):  # one backend, one format: the diff engine finds them inside both servers
            found = staleness.find(local.source, local.session, local.tables, where)
            with progress_bar(f"refresh {name}", len(found.stale), progress) as advance:
                staleness.refresh(local.source, local.session, local.tables, found, size, advance, checkpoint)
            report.refreshed += found.refreshed
            report.part_rows += found.part_rows
            report.objects += found.objects
            return
        assert isinstance(local, Refreshable)
        stale = self._stale(source, local, where, size).stale
        with progress_bar(f"refresh {name}", len(stale), progress) as advance:
            for start in range(0, len(stale), size):
                local.refresh(stale[start:start + size], report, checkpoint)
                checkpoint("refresh_local")
                advance(len(stale[start:start + size]))

    def stale(self, *restrictions: Any, batch_size: int | None = None, progress: bool = True) -> StaleReport:
        """Entities held here (pulled, or asked to delete) whose source rows, master or parts, changed after the
        pull, with what changed in which rows (`changes`; how each kind of local side compares them: see its
        `stale_keys`); entities held but not here are counted in `out_of_step` (`repair`'s business)."""
        where, ready = self._checked(restrictions, dry_run=False)
        self._check_declared(ready)
        with self._sides(ready) as (source, local):
            if isinstance(local, MariaDBLocal):  # compared inside both servers by the diff engine (segment checksums)
                with rows_progress(f"compare {ready.tables.source.name}", progress) as report:
                    return staleness.find(local.source, local.session, local.tables, where, report)
            if not isinstance(local, Refreshable):
                raise ConfigurationError("Stale checks (`djshare diff --link`) are not built for this kind of link "
                                         "yet; compare the tables with `djshare diff`.")
            counts = source.counts() if progress else {}
            held = sum(counts.get(state.value, 0) for state in (Outbound.PULLED, Outbound.DELETION_REQUESTED))
            with progress_bar(f"compare {ready.tables.source.name}", held, progress) as advance:
                return self._stale(source, local, where, batch_size or self.batch_size, advance)

    @staticmethod
    def _stale(source: SourceSide, local: Refreshable, where: str, size: int,
               advance: Callable[[int], None] = lambda n: None) -> StaleReport:
        report = StaleReport()
        for page in source.held_pages(where, size):
            stale, missing, changes = local.stale_keys(page)
            report.stale += stale
            report.out_of_step += missing
            report.changes += changes
            advance(len(page))
        return report

    def repair(self, dry_run: bool = False, progress: bool = True,
               checkpoint: Checkpoint = no_checkpoint) -> RepairReport:
        """Make the outbound table agree with the local tables (after a crash, or deletions outside djshare).
        Local rows whose source row is gone are reported in `stranded` and left alone."""
        ready = self._setup(create=False)
        if not ready.linked:
            raise ConfigurationError(f"Nothing to repair: local schema `{ready.tables.local_schema}` has no linked "
                                     f"table for {ready.tables.source.full_name} (pull makes it). Nothing was changed.")
        with self._sides(ready) as (source, local):
            total = local.count() + sum(source.counts().values())
            with progress_bar(f"repair {ready.tables.source.name}", total, progress) as advance:
                report = run_repair(source, local, dry_run=dry_run, on_progress=advance, checkpoint=checkpoint)
            report.stranded += self._stranded(local)
            return report

    def _stranded(self, local: LocalSide) -> list[bytes]:
        """Local rows the local side found without a source row (besides those repair finds itself)."""
        return []

    def requested(self) -> list[dict[str, Any]]:
        """This subscriber's entities whose deletion the source asked for (their key values). Delete them locally,
        then `repair()`: that approves the deletions, and the source then finishes them."""
        ready = self._setup(create=False)
        if not ready.linked:
            return []
        with self._source_session() as source:
            return listed(source, ready.tables.outbound, Outbound.DELETION_REQUESTED, ready.tables.subscriber,
                          sql=self.source_sql)

    def gc(self, dry_run: bool = False) -> GcReport:
        """Delete the objects djshare copied into the local stores that no local row references any more (never
        objects it did not write); see `djshare.link.gc` (`gc` on MariaDB, `gc_postgresql` on PostgreSQL)."""
        raise NotImplementedError

    def status(self) -> dict[str, int]:
        """This subscriber's outbound rows by state, and the local row count."""
        ready = self._setup()
        with self._sides(ready) as (source, local):
            counts = source.counts()
            result = {state.value: counts.get(state.value, 0) for state in Outbound}
            result["local"] = local.count()
            return result


def check_store_map(mapped: Iterable[str], known: Iterable[str], source: str) -> None:
    """Refuse a store mapping that names a source store `source` (e.g. "schema `lab`") does not have."""
    known = sorted(set(known))
    unknown = sorted(set(mapped) - set(known))
    if unknown:
        raise ConfigurationError(
            f"The store mapping names source store{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(f'`{s}`' for s in unknown)}, which {source} does not have (its stores: "
            f"{', '.join(f'`{s}`' for s in known) or 'none'}). Map LOCAL=SOURCE with a source store that exists. "
            "Nothing was changed.")


def table_exists(session: Any, schema: str, table: str) -> bool:
    """Whether `schema`.`table` exists (a MariaDB or a PostgreSQL session: both have information_schema)."""
    return bool(session.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND "
                               "table_name = %s", (schema, table), doing=f"looking for table {schema}.{table}"))


"""Plan progress, computed once per change of the data it counts.

A plan's progress runs a dozen counting queries (bench/load_mix.py: p50 ~300 ms under the
mixed load, one in five requests). Between two writes every request would compute the
same answer, so it is cached and thrown away when anything it reads may have changed:

the *write generation*, bumped after every committed transaction of this service's write
sessions that wrote to a table progress counts from (`COUNTED`: deals and their lines,
payments, pledges, filings, securitisations, reported figures, and the listings the
catalog feed brings). Patents and organisations arriving from the catalog do not bump it:
they count only through a deal. It is bumped *after* COMMIT: a computation that started
before a commit is stored under the old generation, so it is never served after it.

A hit costs no database round trip: on a busy machine each one is a wait for the
scheduler (bench/load_mix.py). The generation sees the writes of this process only: the
service runs as one process (one uvicorn worker), and a second one writing the same database would
have to share the generation (e.g. LISTEN/NOTIFY) before this cache could stay on.

Requests for the same key while it is being computed wait for that computation instead
of starting their own (under load a write invalidates the entry for every reader at once).

Below the whole plan, each counting rule's series is cached on its own (`series`) and
kept while no table it *read* has been written: every counted table has its own
generation, and the tables a computation read are taken from the statements it ran, not
declared by hand. Under the mixed load half the writes are deals and half are listings the
catalog feed brings; a deal then recomputes the eight rules over deals and payments, and a
listing the two over the pool, instead of all fifteen.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.util import find_tables

WROTE = "progress_cache_wrote"  # session.info: the counted tables a transaction wrote
READS = "progress_cache_reads"  # session.info: the tables a computation's statements read
COUNTED = frozenset({
    "deal", "deal_patent", "deal_supplier", "payment", "pledge", "product_filing",
    "securitisation", "reported_figure", "listing", "pool_event",
})  # fmt: skip


def _counted(objects: Any) -> set[str]:
    return {n for o in objects if (n := getattr(o, "__tablename__", None)) in COUNTED}


@event.listens_for(Session, "do_orm_execute")
def _note_reads(state: ORMExecuteState) -> None:
    reads = state.session.info.get(READS)
    if reads is not None:
        reads.update(tables_read(state.statement))


def tables_read(statement: Any) -> set[str]:
    """The names of the tables a statement reads, subqueries and columns included."""
    return {t.name for t in find_tables(statement, check_columns=True) if isinstance(t, Table)}


class TrackedSession(Session):
    """The service's write sessions: they report committed writes to the progress cache."""


class ProgressCache:
    def __init__(self, max_entries: int = 256) -> None:
        self.table_generations = dict.fromkeys(COUNTED, 0)
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self.series_hits = 0
        self.series_misses = 0
        self._entries: OrderedDict[Hashable, tuple[int, dict[str, Any]]] = OrderedDict()
        self._running: dict[tuple[Hashable, int], asyncio.Future[dict[str, Any]]] = {}
        self._series: OrderedDict[Hashable, tuple[dict[str, int], Any]] = OrderedDict()

    @property
    def generation(self) -> int:
        """Moves whenever any counted table is written (what the whole-plan entries keep)."""
        return sum(self.table_generations.values())

    def bump(self, tables: Iterable[str] = COUNTED) -> None:
        """After a commit that wrote `tables` (all counted tables when unknown)."""
        for name in tables:
            self.table_generations[name] += 1

    def watch(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Make `sessionmaker`'s sessions bump the generation after a committed write."""
        cache = self

        class Session(TrackedSession):
            pass

        @event.listens_for(Session, "after_flush")
        def _flushed(session: Session, _ctx: UOWTransaction) -> None:
            # still the pre-flush lists here
            wrote = _counted(session.new) | _counted(session.dirty) | _counted(session.deleted)
            if wrote:
                session.info.setdefault(WROTE, set()).update(wrote)

        @event.listens_for(Session, "do_orm_execute")
        def _executed(state: ORMExecuteState) -> None:
            if state.is_insert or state.is_update or state.is_delete:
                name = getattr(getattr(state.statement, "table", None), "name", None)
                if name is None or name in COUNTED:  # unknown target: assume all count
                    wrote = COUNTED if name is None else {name}
                    state.session.info.setdefault(WROTE, set()).update(wrote)

        @event.listens_for(Session, "after_commit")
        def _committed(session: Session) -> None:
            wrote = session.info.pop(WROTE, None)
            if wrote:
                cache.bump(wrote)

        @event.listens_for(Session, "after_soft_rollback")
        def _rolled_back(session: Session, _previous: Any) -> None:
            session.info.pop(WROTE, None)

        sessionmaker.configure(sync_session_class=Session)

    async def get(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """The cached result for `key`, or `compute()`'s (shared with concurrent callers).
        The result is shared: callers must not change it."""
        version = self.generation  # read before anything the computation sees
        cached = self._entries.get(key)
        if cached is not None and cached[0] == version:
            self._entries.move_to_end(key)
            self.hits += 1
            return cached[1]
        running = self._running.get((key, version))
        if running is None:
            self.misses += 1
            # Its own task: a caller that goes away does not cancel it for the others.
            running = asyncio.ensure_future(self._compute(key, version, compute))
            self._running[(key, version)] = running
        else:
            self.hits += 1
        return await asyncio.shield(running)

    async def series(
        self, session: AsyncSession, key: Hashable, compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        """`compute()`'s result (it runs its statements on `session`), or the one stored
        for `key` while no counted table it read has been written since. A result that
        read a table outside `COUNTED` is not stored: nothing would say when it changed."""
        cached = self._series.get(key)
        if cached is not None and all(
            self.table_generations[name] == g for name, g in cached[0].items()
        ):
            self._series.move_to_end(key)
            self.series_hits += 1
            return cached[1]
        self.series_misses += 1
        before = dict(self.table_generations)  # read before anything the computation sees
        reads: set[str] = set()
        session.sync_session.info[READS] = reads
        try:
            result = await compute()
        finally:
            session.sync_session.info.pop(READS, None)
        if reads <= COUNTED:
            self._series[key] = ({name: before[name] for name in reads}, result)
            self._series.move_to_end(key)
            while len(self._series) > self.max_entries * 16:
                self._series.popitem(last=False)
        return result

    async def _compute(
        self,
        key: Hashable,
        version: int,
        compute: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        try:
            result = await compute()
        finally:
            self._running.pop((key, version), None)
        self._entries[key] = (version, result)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return result

"""Several worker processes serving one matching database (uvicorn `--workers N`).

Every worker holds its own copy of the patent and need indexes and answers queries from
it. Exactly one worker — the leader, whoever holds an exclusive `flock` on
`<index_dir>/leader.lock` — follows the catalog feed (writes the copied rows and the
cursor) and writes index snapshots. The others only read the database:

- the catalog cursor: when it moves, `PatentIndexer.sync` re-indexes the rows the leader
  stamped up to it (the cursor and the rows commit in one transaction, so a follower never
  sees the cursor ahead of its rows);
- the matching service's own feed: needs are written by whichever worker got the request,
  so every worker re-reads the needs published since it last looked;
- resolved parked entries: a replay is applied by whichever worker got the request and
  keeps its old feed id, so every worker re-indexes what it stamped.

A lock held by a process is released by the kernel when it dies, so a follower takes over
within one poll interval when the leader exits; uvicorn starts a replacement worker, which
becomes a follower. Start-up (migrations, index load, first snapshot) runs under a second,
blocking lock so workers start one after the other and later ones load the first one's
snapshot instead of each building the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.matching.domain.needs import NeedIndexer
from services.matching.domain.sync import PatentIndexer
from services.matching.models import FeedCursor, FeedEntry, Need, ParkedFeedEntry
from shared.feed import changed_ids

log = logging.getLogger("tjp.matching.replicas")


class FileLock:
    """An exclusive `flock` on a file; released by `release()` or when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("ab")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        return True

    def acquire(self) -> None:
        """Block until the lock is ours (call it in a thread from async code)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("ab")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@contextlib.asynccontextmanager
async def startup_turn(index_dir: str | Path) -> AsyncIterator[None]:
    """One worker at a time through start-up (see the module docstring)."""
    lock = FileLock(Path(index_dir) / "startup.lock")
    await asyncio.to_thread(lock.acquire)
    try:
        yield
    finally:
        lock.release()


class ReplicaFollower:
    """Keeps this worker's indexes current with what other workers wrote (see module doc),
    and promotes this worker to leader when the leader lock becomes free."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        indexer: PatentIndexer,
        needs: NeedIndexer,
        leader_lock: FileLock,
        become_leader: Any,
        interval: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.indexer = indexer
        self.needs = needs
        self.leader_lock = leader_lock
        self.become_leader = become_leader
        self.interval = interval
        self.need_position = 0
        self.replays_seen: set[int] = set()
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def role(self) -> str:
        return "leader" if self.leader_lock.held else "follower"

    async def prime(self) -> None:
        """Start from the present: the index and needs were just loaded from the database."""
        async with self.sessionmaker() as session:
            self.need_position = int(
                await session.scalar(select(FeedEntry.id).order_by(FeedEntry.id.desc()).limit(1))
                or 0
            )
            self.replays_seen = set(
                await session.scalars(
                    select(ParkedFeedEntry.id).where(ParkedFeedEntry.resolved_at.is_not(None))
                )
            )

    async def poll_once(self) -> None:
        if not self.leader_lock.held and self.leader_lock.try_acquire():
            log.info("worker %s is now the matching leader", os.getpid())
            await self.become_leader()
        async with self.sessionmaker() as session:
            # One cheap round trip per poll; the rest only when something moved.
            catalog_position, need_head, resolved = (
                await session.execute(
                    select(
                        select(FeedCursor.position)
                        .where(FeedCursor.source == "catalog")
                        .scalar_subquery(),
                        select(func.max(FeedEntry.id)).scalar_subquery(),
                        select(func.count())
                        .select_from(ParkedFeedEntry)
                        .where(ParkedFeedEntry.resolved_at.is_not(None))
                        .scalar_subquery(),
                    )
                )
            ).one()
            needs: list[Need] = []
            if (need_head or 0) > self.need_position:
                ids = await changed_ids(session, FeedEntry, "need", self.need_position, need_head)
                if ids:
                    needs = list(await session.scalars(select(Need).where(Need.id.in_(ids))))
            replays: list[Any] = []
            if resolved != len(self.replays_seen):
                replays = list(
                    (
                        await session.execute(
                            select(ParkedFeedEntry.id, ParkedFeedEntry.entry_id).where(
                                ParkedFeedEntry.resolved_at.is_not(None)
                            )
                        )
                    ).all()
                )
        # The leader's own consumer syncs after each page; a follower syncs here.
        catalog_position = catalog_position or 0
        if not self.leader_lock.held and self.indexer.index.position < catalog_position:
            await self.indexer.sync(catalog_position)
        for need in needs:
            await self.needs.refresh(need)
        self.need_position = max(self.need_position, need_head or 0)
        for parked_id, entry_id in replays:
            if parked_id not in self.replays_seen:
                await self.indexer.reindex_stamped(entry_id)
                self.replays_seen.add(parked_id)

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; the database may be restarting
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("replica follower: %s", self.last_error)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="matching-replica-follower")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

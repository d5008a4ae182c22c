"""Transactional outbox ("change feed") and its consumer.

Producers call `append()` inside the transaction that makes the change. On PostgreSQL
the append takes a transaction-level advisory lock, so feed ids become visible in
commit order and a consumer reading `after=<id>` can never skip a late-committing
row. SQLite serialises writers anyway.

Consumers poll `GET /v1/feed?after=<cursor>` and store the cursor in the same
transaction as their own writes (`FeedCursor`), so every entry is applied once.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import insert_rows

log = logging.getLogger("tjp.feed")

FEED_LOCK_KEY = 7_310_001  # any constant; one advisory lock per database


def utcnow() -> datetime:
    return datetime.now(UTC)


class FeedEntryMixin:
    """Columns of a service's `feed_entry` table."""

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedCursorMixin:
    """Where a consumer is in an upstream feed (one row per upstream)."""

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


async def lock(session: AsyncSession) -> None:
    """Take the feed's append lock for the rest of the transaction (PostgreSQL; SQLite
    writers already hold the database lock). Entries get ids in commit order because
    appenders queue here. A transaction that will append and also updates rows another
    appender may update (a listing an upload re-evaluates) must call this *before* its
    first such row lock: holding the row and then waiting here, while the other side
    holds this lock and waits for the row, is a deadlock."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_KEY})


async def append(
    session: AsyncSession,
    model: type[Any],
    entries: Sequence[tuple[str, str, str, dict[str, Any]]],
) -> None:
    """Write (entity, entity_id, op, payload) rows in the caller's transaction."""
    if not entries:
        return
    await lock(session)
    now = utcnow()
    rows = [
        {"entity": e, "entity_id": str(i), "op": o, "payload": p, "created_at": now}
        for e, i, o, p in entries
    ]
    await insert_rows(session, model.__table__, rows)


class FeedItem(BaseModel):
    id: int
    entity: str
    entity_id: str
    op: str
    payload: dict[str, Any]
    created_at: datetime


class FeedPage(BaseModel):
    items: list[FeedItem]
    next_after: int
    has_more: bool


def feed_router(model: type[Any], session_dep: Any, *, tag: str = "feed") -> APIRouter:
    router = APIRouter(tags=[tag])

    @router.get("/v1/feed", response_model=FeedPage, summary="Change feed in commit order")
    async def read_feed(
        session: session_dep,
        after: int = Query(
            0, ge=0, le=2**63 - 1, description="return entries with id greater than this"
        ),
        limit: int = Query(500, ge=1, le=5000),
        entity: str | None = Query(None, description="only this entity kind"),
    ) -> FeedPage:
        stmt = select(model).where(model.id > after).order_by(model.id).limit(limit + 1)
        if entity:
            stmt = stmt.where(model.entity == entity)
        rows = list((await session.execute(stmt)).scalars())
        has_more = len(rows) > limit
        rows = rows[:limit]
        items = [
            FeedItem(
                id=r.id,
                entity=r.entity,
                entity_id=r.entity_id,
                op=r.op,
                payload=r.payload,
                created_at=r.created_at,
            )
            for r in rows
        ]
        return FeedPage(items=items, next_after=rows[-1].id if rows else after, has_more=has_more)

    return router


Handler = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


class FeedConsumer:
    """Polls an upstream feed and applies pages transactionally with the cursor."""

    def __init__(
        self,
        *,
        source: str,
        client: httpx.AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        cursor_model: type[Any],
        handler: Handler,
        page_size: int = 1000,
        idle_interval: float = 0.5,
    ) -> None:
        self.source = source
        self.client = client
        self.sessionmaker = sessionmaker
        self.cursor_model = cursor_model
        self.handler = handler
        self.page_size = page_size
        self.idle_interval = idle_interval
        self.position = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def load_position(self) -> int:
        async with self.sessionmaker() as session:
            row = await session.get(self.cursor_model, self.source)
            self.position = row.position if row else 0
        return self.position

    async def poll_once(self) -> int:
        """Fetch and apply one page; return how many entries were applied."""
        resp = await self.client.get(
            "/v1/feed", params={"after": self.position, "limit": self.page_size}
        )
        resp.raise_for_status()
        page = resp.json()
        items = page["items"]
        if not items:
            return 0
        async with self.sessionmaker() as session, session.begin():
            # Locked, so two replicas sharing a database never apply the same page twice.
            row = await session.get(self.cursor_model, self.source, with_for_update=True)
            if row is None:
                row = self.cursor_model(source=self.source, position=0)
                session.add(row)
            # Another replica may have moved on; only apply what is new to this database.
            fresh = [i for i in items if i["id"] > row.position]
            if fresh:
                await self.handler(session, fresh)
                row.position = fresh[-1]["id"]
                row.updated_at = utcnow()
            new_position = row.position
        self.position = new_position
        return len(fresh)

    async def catch_up(self) -> int:
        total = 0
        await self.load_position()
        while True:
            n = await self.poll_once()
            total += n
            if n < self.page_size:
                return total

    async def run(self) -> None:
        await self.load_position()
        while True:
            try:
                n = await self.poll_once()
                self.last_error = None
                if n == 0:
                    await asyncio.sleep(self.idle_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; upstream may be restarting
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("feed %s: %s", self.source, self.last_error)
                await asyncio.sleep(min(5.0, self.idle_interval * 4))

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"feed-consumer-{self.source}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

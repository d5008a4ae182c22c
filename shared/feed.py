"""Transactional outbox ("change feed") and its consumer.

Producers call `append()` inside the transaction that makes the change; the entries are
written as it commits. On PostgreSQL that write takes a transaction-level advisory lock,
so feed ids become visible in commit order and a consumer reading `after=<id>` can never
skip a late-committing row. SQLite serialises writers anyway.

Consumers poll `GET /v1/feed?after=<cursor>` and store the cursor in the same
transaction as their own writes (`FeedCursor`), so every entry is applied once. A consumer
at the head long-polls (`wait=<seconds>`): the producer answers as soon as one of its own
commits appends (a `FeedSignal` wakes the waiting request), or within a second for a write
by another process, instead of the consumer finding it on its next timed poll.

An entry the handler cannot apply (a "poison" entry) is retried a bounded number of
times, then parked — stored with its error in the consumer's `parked_feed_entry` table,
in the same transaction that moves the cursor past it — and the consumer keeps going.
Parked entries make `/readyz` say `degraded`, are counted on `/metrics`, and an admin
replays one with `POST /v1/feed/parked/{id}/replay` once the cause is fixed.
"""

import asyncio
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    String,
    Text,
    cast,
    event,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_session, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.util import await_

from shared.db import copy_records
from shared.errors import Forbidden, NotFound, Unprocessable
from shared.params import PathId

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


class ParkedEntryMixin:
    """A feed entry the consumer gave up on, with why; `resolved_at` once replayed."""

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    source: Mapped[str] = mapped_column(String(40), index=True)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Commits made by this process that appended to a feed (`append` marks the session): an
# in-memory copy beside the database (the catalog's keyword index) may skip asking the
# database for the feed's head while this has not moved since it last looked, for as long
# as it tolerates not seeing other processes' writes. Compared for change only.
_local_commits = itertools.count(1)
_local_commit = 0


def local_feed_commits() -> int:
    """Changes whenever a transaction of this process that appended to a feed commits."""
    return _local_commit


@event.listens_for(Session, "after_commit")
def _count_feed_commit(session: Session) -> None:
    global _local_commit
    if session.info.pop("feed_appended", False):
        _local_commit = next(_local_commits)
        for signal in list(_signals):
            signal.notify()


class FeedSignal:
    """Wakes the long-polling readers of one app's feed when a transaction of this process
    that appended to a feed commits. Commits happen on more than one thread (the catalog's
    upload loop has its own), so each waiter is woken through its own event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self.closing = False
        _signals.add(self)

    async def wait(self, timeout: float, seen: int) -> None:
        """Until the next feed commit after `seen` (a `local_feed_commits()` value read
        before the caller last looked), `close()`, or `timeout` seconds."""
        loop = asyncio.get_running_loop()
        waiter = (loop, loop.create_future())
        with self._lock:
            self._waiters.add(waiter)
        try:
            # Registered first, then compared: a commit in between is not missed.
            if self.closing or local_feed_commits() != seen:
                return
            await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop has closed; its waiter is gone with it
                pass

    def close(self) -> None:
        """Answer every waiting reader now and let no new one wait (the server is
        stopping: a long poll would otherwise hold its shutdown for up to `wait`)."""
        self.closing = True
        self.notify()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_signals: weakref.WeakSet[FeedSignal] = weakref.WeakSet()
_app_signals: weakref.WeakKeyDictionary[Any, FeedSignal] = weakref.WeakKeyDictionary()
LONG_POLL_MAX = 30.0
RECHECK_EVERY = 1.0  # seconds: how soon a long poll sees another process's append


def feed_signal(app: Any) -> FeedSignal:
    """The signal of `app`'s feed readers (made on first use)."""
    signal = _app_signals.get(app)
    if signal is None:
        signal = _app_signals[app] = FeedSignal()
    return signal


def close_long_polls(app: Any) -> None:
    """Answer `app`'s waiting feed readers at once; call as its server begins to stop."""
    feed_signal(app).close()


# Appends are staged in the session and written just before COMMIT (`_write_staged`):
# the commit-order lock is then held only for the feed rows' insert and the COMMIT itself,
# never while the transaction does its other work, and its holder waits for no row lock (a
# transaction takes every row lock it needs before it queues here: no deadlock).
_STAGED = "feed_staged"  # [(table, records)]: (entity, entity_id, op, payload, created_at),
# the payload as the database takes it (JSON text for PostgreSQL's COPY, a dict for SQLite)
_MARKS = "feed_marks"  # [(savepoint transaction, staged count when it began)]
_COLUMNS = ("entity", "entity_id", "op", "payload", "created_at")


def _stage(session: AsyncSession, model: type[Any], records: list[tuple[Any, ...]]) -> None:
    info = session.sync_session.info
    info.setdefault(_STAGED, []).append((model.__table__, records))
    info["feed_appended"] = True


def _copies(session: AsyncSession) -> bool:
    return bool(session.get_bind().dialect.name == "postgresql")


async def append(
    session: AsyncSession,
    model: type[Any],
    entries: Sequence[tuple[str, str, str, dict[str, Any]]],
) -> None:
    """Add (entity, entity_id, op, payload) entries to the caller's transaction: they are
    written when it commits, and dropped if it (or the savepoint they were added in) rolls
    back. Async for its callers' sake; it does no I/O."""
    if not entries:
        return
    now = utcnow()
    if _copies(session):
        dumps = orjson.dumps
        _stage(session, model, [(e, str(i), o, dumps(p).decode(), now) for e, i, o, p in entries])
    else:
        _stage(session, model, [(e, str(i), o, p, now) for e, i, o, p in entries])


async def append_json(
    session: AsyncSession,
    model: type[Any],
    entries: Sequence[tuple[str, str, str, str]],
) -> None:
    """`append` with each payload already JSON text (a bulk upload encodes 50,000 of
    them where it validates, off the writing's path); the stored entries are the same."""
    if not entries:
        return
    now = utcnow()
    if _copies(session):
        _stage(session, model, [(e, str(i), o, p, now) for e, i, o, p in entries])
    else:
        loads = orjson.loads
        _stage(session, model, [(e, str(i), o, loads(p), now) for e, i, o, p in entries])


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    """Write the transaction's staged entries, under the commit-order lock, just before
    COMMIT. Runs inside the async session's greenlet, so coroutines are awaited with
    `await_`. Savepoint releases fire this too: only the outermost commit writes."""
    if session.in_nested_transaction() or not session.info.get(_STAGED):
        return
    session.flush()  # pending ORM changes take their row locks before the feed lock
    staged = session.info.pop(_STAGED)
    conn = session.connection()
    if conn.dialect.name != "postgresql":  # SQLite writers hold the database lock already
        for table, records in staged:
            conn.execute(table.insert(), [dict(zip(_COLUMNS, r, strict=True)) for r in records])
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_KEY})
    proxy = async_session(session)
    assert proxy is not None  # every session of the platform is an AsyncSession's
    for table, records in staged:
        await_(copy_records(proxy, table, _COLUMNS, records))


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: Any) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, []).append(
            (transaction, len(session.info.get(_STAGED, ())))
        )


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_savepoint(session: Session, previous_transaction: Any) -> None:
    """A savepoint rolled back: drop what was staged inside it (the whole transaction's
    end is `_end_of_transaction`)."""
    marks = session.info.get(_MARKS, [])
    for i, (transaction, staged) in enumerate(marks):
        if transaction is previous_transaction:
            del session.info.get(_STAGED, [])[staged:]
            del marks[i:]
            return


@event.listens_for(Session, "after_transaction_end")
def _end_of_transaction(session: Session, transaction: Any) -> None:
    """Committed, rolled back or closed: nothing staged survives the transaction."""
    if transaction.parent is None:
        for key in (_STAGED, _MARKS, "feed_appended"):
            session.info.pop(key, None)


async def changed_ids(
    session: AsyncSession,
    model: type[Any],
    entity: str,
    after: int,
    upto: int,
    limit: int | None = None,
) -> set[int] | None:
    """Ids of the `entity` rows a feed table says changed in (after, upto]: what an
    in-memory copy beside the database must re-read to be current at `upto`. With `limit`:
    None when more than `limit` entries name one (too many to re-read at once)."""
    stmt = select(model.entity_id).where(model.id > after, model.id <= upto, model.entity == entity)
    rows = list(await session.scalars(stmt if limit is None else stmt.limit(limit + 1)))
    if limit is not None and len(rows) > limit:
        return None
    return {int(i) for i in rows}


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


def _item_columns(model: type[Any]) -> tuple[Any, ...]:
    # The payload as the text stored: the page is assembled from it, never decoded and
    # re-encoded (a feed page is mostly payloads; both consumers read every page).
    return (model.id, model.entity, model.entity_id, model.op, cast(model.payload, Text),
            model.created_at)  # fmt: skip


def feed_page_json(rows: Sequence[Any], after: int, has_more: bool) -> bytes:
    """A `FeedPage` as JSON, from (id, entity, entity_id, op, payload text, created_at)
    rows: the same document pydantic would write (tests/shared/test_feed_page.py)."""
    dumps, utc_z = orjson.dumps, orjson.OPT_UTC_Z
    items = b",".join(
        b'{"id":%d,"entity":%b,"entity_id":%b,"op":%b,"payload":%b,"created_at":%b}'
        % (i, dumps(e), dumps(eid), dumps(op), payload.encode(), dumps(_aware(at), option=utc_z))
        for i, e, eid, op, payload, at in rows
    )
    next_after = rows[-1][0] if rows else after
    return b'{"items":[%b],"next_after":%d,"has_more":%b}' % (
        items,
        next_after,
        b"true" if has_more else b"false",
    )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def feed_router(model: type[Any], session_dep: Any, *, tag: str = "feed") -> APIRouter:
    router = APIRouter(tags=[tag])

    @router.get("/v1/feed", response_model=FeedPage, summary="Change feed in commit order")
    async def read_feed(
        request: Request,
        session: session_dep,
        after: int = Query(
            0,
            ge=0,
            le=2**63 - 1,
            description=(
                "return entries with id greater than this; at most the feed's last id "
                "(`next_after` of the latest page): a cursor past the end answers 422"
            ),
        ),
        limit: int = Query(500, ge=1, le=5000),
        entity: str | None = Query(None, description="only this entity kind"),
        wait: float = Query(
            0,
            ge=0,
            le=LONG_POLL_MAX,
            allow_inf_nan=False,  # "nan" is refused as not a finite number
            description=(
                "long poll: when nothing is after `after`, wait up to this many seconds for "
                "the next entry and answer as soon as it commits, instead of an empty page "
                "at once"
            ),
        ),
    ) -> Response:
        if after:
            # A cursor past the end is a client bug (or a rewound producer): say so rather
            # than answer "nothing new" forever.
            head = await session.scalar(select(func.max(model.id))) or 0
            if after > head:
                raise Unprocessable.field(
                    "after", f"cursor {after} is beyond the end of this feed (last id {head})"
                )
        stmt = (
            select(*_item_columns(model))
            .where(model.id > after)
            .order_by(model.id)
            .limit(limit + 1)
        )
        if entity:
            stmt = stmt.where(model.entity == entity)
        signal = feed_signal(request.app)
        deadline = time.monotonic() + wait
        while True:
            seen = local_feed_commits()
            rows = list(await session.execute(stmt))
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0 or signal.closing:
                break
            await session.rollback()  # no connection held while waiting
            await signal.wait(min(remaining, RECHECK_EVERY), seen)
            if await request.is_disconnected():
                break
        has_more = len(rows) > limit
        rows = rows[:limit]
        return Response(feed_page_json(rows, after, has_more), media_type="application/json")

    return router


Handler = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


class FeedConsumer:
    """Polls an upstream feed and applies pages transactionally with the cursor.

    A page whose handler fails is retried `max_attempts` times (backing off); then its
    entries are applied one at a time and an entry that still fails is parked in
    `parked_model` (when given) so the entries after it are not held up.

    With `long_poll` seconds, a poll made at the head waits upstream that long for the
    next entry (`wait=`), so an entry arrives as it commits rather than up to
    `idle_interval` later; `idle_interval` stays the least time between two empty polls."""

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
        long_poll: float = 0.0,
        parked_model: type[Any] | None = None,
        max_attempts: int = 3,
        unready_after: int = 3,
    ) -> None:
        self.source = source
        self.client = client
        self.sessionmaker = sessionmaker
        self.cursor_model = cursor_model
        self.handler = handler
        self.page_size = page_size
        self.idle_interval = idle_interval
        self.long_poll = min(long_poll, LONG_POLL_MAX)
        self.parked_model = parked_model
        self.max_attempts = max_attempts
        self.unready_after = unready_after
        self.position = 0
        self.last_error: str | None = None
        self.failures = 0  # consecutive failed polls
        self.failures_total = 0
        self.applied_total = 0
        self.parked_total = 0
        self.parked_open = 0
        self._page_attempts: dict[int, int] = {}
        # When a poll last found nothing more upstream: the lag metric counts from here.
        self.at_head_at = time.monotonic()
        self.at_head = False  # the last poll reached the head (the next one may wait)
        self.applied_at = 0.0  # time.monotonic() of the last page that applied something
        self._task: asyncio.Task[None] | None = None

    def health(self) -> str:
        """`ok at N`, `degraded: ...` (entries parked) or `error: ...` (keeps failing)."""
        if self.failures >= self.unready_after and self.last_error:
            return f"error: {self.last_error} ({self.failures} failed tries)"
        if self.parked_open:
            return f"degraded: ok at {self.position}, {self.parked_open} entries parked"
        return f"ok at {self.position}"

    def metrics(self) -> dict[str, float]:
        return {
            "position": self.position,
            "applied_total": self.applied_total,
            "failures_total": self.failures_total,
            "parked_total": self.parked_total,
            "parked_open": self.parked_open,
            "lag_seconds": round(time.monotonic() - self.at_head_at, 3),
        }

    async def load_position(self) -> int:
        async with self.sessionmaker() as session:
            row = await session.get(self.cursor_model, self.source)
            self.position = row.position if row else 0
            if self.parked_model is not None:
                m = self.parked_model
                self.parked_open = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(m)
                        .where(m.source == self.source, m.resolved_at.is_(None))
                    )
                    or 0
                )
        return self.position

    async def _apply(self, items: list[dict[str, Any]]) -> int:
        """Apply entries with the cursor in one transaction; return how many were new."""
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
        self.applied_total += len(fresh)
        if fresh:
            self.applied_at = time.monotonic()
        return len(fresh)

    async def _park(self, item: dict[str, Any], error: str, attempts: int) -> None:
        assert self.parked_model is not None
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(self.cursor_model, self.source, with_for_update=True)
            if row is None:
                row = self.cursor_model(source=self.source, position=0)
                session.add(row)
            if item["id"] <= row.position:
                return  # another replica got past it
            session.add(
                self.parked_model(
                    source=self.source,
                    entry_id=item["id"],
                    entity=item.get("entity", ""),
                    entity_id=str(item.get("entity_id", "")),
                    op=item.get("op", ""),
                    payload=item.get("payload") or {},
                    error=error[:4000],
                    attempts=attempts,
                )
            )
            row.position = item["id"]
            row.updated_at = utcnow()
        self.position = item["id"]
        self.parked_total += 1
        self.parked_open += 1
        log.error("feed %s: parked entry %s after %s tries: %s", self.source, item["id"],
                  attempts, error)  # fmt: skip

    async def _apply_one_by_one(self, items: list[dict[str, Any]]) -> int:
        applied = 0
        for item in items:
            if item["id"] <= self.position:
                continue
            error = ""
            for attempt in range(1, self.max_attempts + 1):
                try:
                    applied += await self._apply([item])
                    break
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt == self.max_attempts:
                        await self._park(item, error, attempt)
        return applied

    async def poll_once(self, wait: float = 0.0) -> int:
        """Fetch and apply one page; return how many entries were applied (or parked).
        With `wait`, an upstream with nothing new holds the answer up to that long."""
        params: dict[str, Any] = {"after": self.position, "limit": self.page_size}
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if wait > 0:
            params["wait"] = wait
            timeout = httpx.Timeout(wait + 10.0, connect=3.0)
        resp = await self.client.get("/v1/feed", params=params, timeout=timeout)
        resp.raise_for_status()
        page = resp.json()
        items = page["items"]
        self.at_head = not page["has_more"]
        if not items:
            self.at_head_at = time.monotonic()
            return 0
        first = items[0]["id"]
        try:
            n = await self._apply(items)
        except Exception:
            tries = self._page_attempts.get(first, 0) + 1
            if self.parked_model is None or tries < self.max_attempts:
                self._page_attempts = {first: tries}
                raise
            # The page keeps failing: find the entry to blame, park it, go on.
            self._page_attempts = {}
            before = self.position
            await self._apply_one_by_one(items)
            return len([i for i in items if before < i["id"] <= self.position])
        self._page_attempts = {}
        if not page["has_more"]:
            self.at_head_at = time.monotonic()
        return n

    async def replay(self, parked_id: int) -> dict[str, Any]:
        """Apply a parked entry again (after its cause was fixed); mark it resolved."""
        if self.parked_model is None:
            raise NotFound(f"the {self.source} feed consumer parks nothing")
        m = self.parked_model
        async with self.sessionmaker() as session, session.begin():
            parked = await session.get(m, parked_id, with_for_update=True)
            if parked is None or parked.source != self.source:
                raise NotFound(f"parked entry {parked_id} does not exist")
            if parked.resolved_at is not None:
                return {"id": parked.id, "status": "already resolved"}
            entry = {
                "id": parked.entry_id, "entity": parked.entity, "entity_id": parked.entity_id,
                "op": parked.op, "payload": parked.payload, "created_at": parked.parked_at,
            }  # fmt: skip
            try:
                async with session.begin_nested():
                    await self.handler(session, [entry])
            except Exception as exc:
                parked.attempts += 1
                parked.error = f"{type(exc).__name__}: {exc}"[:4000]
                status, error = "failed", parked.error
            else:
                parked.resolved_at = utcnow()
                status, error = "replayed", None
        if status == "replayed":
            self.parked_open = max(0, self.parked_open - 1)
        return {"id": parked_id, "status": status, "error": error}

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
                started = time.monotonic()
                n = await self.poll_once(self.long_poll if self.at_head else 0.0)
                self.last_error = None
                self.failures = 0
                if n == 0:  # a long poll that waited has already spent the interval
                    await asyncio.sleep(self.idle_interval - (time.monotonic() - started))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; upstream may be restarting
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.failures += 1
                self.failures_total += 1
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


class ParkedItem(BaseModel):
    id: int
    source: str
    entry_id: int
    entity: str
    entity_id: str
    error: str
    attempts: int
    parked_at: datetime
    resolved_at: datetime | None


def parked_router(parked_model: type[Any], session_dep: Any, principal_dep: Any) -> APIRouter:
    """Admin-only: list parked entries and replay one. Consumers are found by source on
    `app.state.feed_consumers`."""
    router = APIRouter(prefix="/v1/feed/parked", tags=["feed"])

    def admin_only(principal: Any) -> None:
        if principal.role.value != "admin":
            raise Forbidden("only an admin may see or replay parked feed entries")

    @router.get("", response_model=list[ParkedItem], summary="Parked (poison) feed entries")
    async def list_parked(
        session: session_dep,
        principal: principal_dep,
        include_resolved: bool = False,
    ) -> list[Any]:
        admin_only(principal)
        stmt = select(parked_model).order_by(parked_model.id)
        if not include_resolved:
            stmt = stmt.where(parked_model.resolved_at.is_(None))
        return list((await session.scalars(stmt)).all())

    @router.post("/{parked_id}/replay", summary="Apply a parked feed entry again")
    async def replay(
        parked_id: PathId,
        request: Request,
        principal: principal_dep,
    ) -> dict[str, Any]:
        admin_only(principal)
        consumers: dict[str, FeedConsumer] = getattr(request.app.state, "feed_consumers", {})
        async with request.app.state.db.sessionmaker() as session:
            parked = await session.get(parked_model, parked_id)
        if parked is None or parked.source not in consumers:
            raise NotFound(f"parked entry {parked_id} does not exist")
        return await consumers[parked.source].replay(parked_id)

    return router

"""Feed appends are written as their transaction commits, under the commit-order lock:
entries of a rolled-back transaction or savepoint never appear, ids follow commit order
(not the order transactions began appending), and an appender never waits for another
appender's open transaction (on PostgreSQL; SQLite serialises writers anyway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import Integer, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import feed
from shared.db import Database
from shared.feed import FeedEntryMixin
from shared.testing import fresh_database
from tests.conftest import require_engine


class Base(DeclarativeBase):
    pass


class Entry(FeedEntryMixin, Base):
    __tablename__ = "feed_entry"


class Counter(Base):
    __tablename__ = "counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    require_engine(request.param)
    with fresh_database(request.param, tmp_path, "append") as u:
        yield u


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    require_engine("postgresql")
    with fresh_database("postgresql", tmp_path, "order") as u:
        yield u


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    """The tables made, one counter row, disposed of at the end."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with db.sessionmaker() as session:
            session.add(Counter(id=1, n=0))
            await session.commit()
        yield db
    finally:
        await db.dispose()


async def entries(db: Database) -> list[tuple[str, dict[str, object]]]:
    async with db.sessionmaker() as session:
        rows = await session.execute(select(Entry.entity_id, Entry.payload).order_by(Entry.id))
        return [(i, p) for i, p in rows.all()]


def test_entries_are_written_at_commit_and_dropped_with_what_rolls_back(url: str) -> None:
    async def run() -> None:
        async with opened(url) as db:
            async with db.sessionmaker() as session:
                await feed.append(session, Entry, [("x", "1", "upsert", {"n": 1})])
                assert await session.scalar(select(Entry.id)) is None  # staged, not written
                await session.rollback()
            async with db.sessionmaker() as session:
                await feed.append(session, Entry, [("x", "2", "upsert", {"n": 2})])
                with pytest.raises(RuntimeError):
                    async with session.begin_nested():
                        await feed.append(session, Entry, [("x", "3", "upsert", {"n": 3})])
                        raise RuntimeError("this item fails; its savepoint rolls back")
                async with session.begin_nested():  # a released savepoint keeps its entries
                    await feed.append_json(session, Entry, [("x", "4", "upsert", '{"n":4}')])
                await feed.append(session, Entry, [("x", "5", "upsert", {"n": 5})])
                await session.commit()
            async with db.sessionmaker() as session:  # closed without a commit
                await feed.append(session, Entry, [("x", "6", "upsert", {"n": 6})])
            assert await entries(db) == [("2", {"n": 2}), ("4", {"n": 4}), ("5", {"n": 5})]

    asyncio.run(run())


def test_ids_follow_commit_order_and_appenders_do_not_wait_for_each_other(pg_url: str) -> None:
    """A appends first and keeps its transaction open (it holds a row lock too); B
    appends and commits meanwhile without waiting; A commits after. B's entry comes first,
    so a reader at `after=<B's id>` cannot later find A's entry behind it."""

    async def run() -> None:
        async with opened(pg_url) as db:
            async with db.sessionmaker() as a, db.sessionmaker() as b:
                await a.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
                await feed.append(a, Entry, [("x", "A", "upsert", {})])
                await feed.append(b, Entry, [("x", "B", "upsert", {})])
                await asyncio.wait_for(b.commit(), timeout=5)  # A's open append: no wait
                assert [i for i, _ in await entries(db)] == ["B"]
                await a.commit()
            assert [i for i, _ in await entries(db)] == ["B", "A"]

    asyncio.run(run())


def test_a_transaction_waiting_for_a_row_does_not_block_the_holder_from_committing(
    pg_url: str,
) -> None:
    """B appends and then waits for the row A holds; A appends and commits. Were the feed
    lock taken at B's append, A would wait for it while B waits for A's row: a deadlock."""

    async def run() -> None:
        async with opened(pg_url) as db:
            async with db.sessionmaker() as a, db.sessionmaker() as b:
                await a.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
                await feed.append(b, Entry, [("x", "B", "upsert", {})])
                b_update = asyncio.create_task(
                    b.execute(text("UPDATE counter SET n = n + 10 WHERE id = 1"))
                )
                await asyncio.sleep(0.2)
                assert not b_update.done()  # B waits for A's row lock
                await feed.append(a, Entry, [("x", "A", "upsert", {})])
                await asyncio.wait_for(a.commit(), timeout=5)
                await asyncio.wait_for(b_update, timeout=5)
                await b.commit()
            assert [i for i, _ in await entries(db)] == ["A", "B"]
            async with db.sessionmaker() as session:
                assert await session.scalar(select(Counter.n)) == 11

    asyncio.run(run())

"""The connection pool on PostgreSQL: read-only sessions run in autocommit (no BEGIN and
ROLLBACK round trips) and refuse writes; a pooled connection the server dropped is replaced
before use, whether it was used a moment ago (its socket is closed) or sat idle (it fails
a ping); and a service whose database connections were all cut keeps answering."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import column, insert, table, text

import shared.db
from shared import feed
from shared.db import Database
from shared.testing import fresh_database
from tests.conftest import CatalogHandle, require_engine, start_catalog
from tests.factories import patent
from tests.shared.apps import app_over
from tests.shared.test_feed_append import Base as FeedBase
from tests.shared.test_feed_append import Entry

XACT_START = text("SELECT xact_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    require_engine("postgresql")
    with fresh_database("postgresql", tmp_path, "pool") as url:
        yield url


async def terminate(url: str, pids: list[int]) -> None:
    """Cut connections from the server's side, as a restart or an idle timeout does."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
    finally:
        await conn.close()


def test_read_sessions_autocommit_and_refuse_writes(pg_url: str) -> None:
    async def run() -> None:
        db = Database(pg_url)
        try:
            async with db.sessionmaker() as session:
                await session.execute(text("CREATE TABLE kept (x int)"))
                await session.commit()
            for maker, own_transactions in ((db.read_sessionmaker, True), (db.sessionmaker, False)):
                async with maker() as session:
                    first = await session.scalar(XACT_START)
                    await asyncio.sleep(0.02)
                    # autocommit: each statement is a transaction of its own
                    assert (await session.scalar(XACT_START) != first) is own_transactions
            async with db.read_sessionmaker() as session:
                with pytest.raises(RuntimeError, match="read-only"):
                    await session.execute(insert(table("kept", column("x"))).values(x=1))
            async with db.sessionmaker() as session:  # the write session still writes
                await session.execute(insert(table("kept", column("x"))).values(x=2))
                await session.commit()
                assert await session.scalar(text("SELECT array_agg(x) FROM kept")) == [2]
        finally:
            await db.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("idle", [False, True], ids=["used-just-now", "idle"])
def test_a_connection_the_server_dropped_is_replaced(
    pg_url: str, idle: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Used just now: the pool sees the closed socket and takes a new connection, no round
    trip. Idle (past `PING_IDLE_AFTER`), on a socket that looks open (a half-open TCP
    connection after a network fault or a firewall's idle timeout: `is_closed()` says
    False): the ping fails, and the pool takes a new connection."""
    if idle:
        monkeypatch.setattr(shared.db, "PING_IDLE_AFTER", 0.0)
        monkeypatch.setattr(asyncpg.Connection, "is_closed", lambda _self: False)

    async def run() -> None:
        db = Database(pg_url, pool_size=1, max_overflow=0)
        try:
            async with db.read_sessionmaker() as session:
                before = await session.scalar(text("SELECT pg_backend_pid()"))
            await terminate(pg_url, [before])
            await asyncio.sleep(0.1)  # the server's goodbye reaches the client's loop
            async with db.read_sessionmaker() as session:
                after = await session.scalar(text("SELECT pg_backend_pid()"))
            assert after != before
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_service_keeps_answering_after_its_connections_are_cut(tmp_path: Path) -> None:
    """Every connection of a running catalog is terminated (as a database restart does);
    its next search and its next upload both succeed."""
    require_engine("postgresql")
    with fresh_database("postgresql", tmp_path, "cut") as url:
        server, admin = start_catalog(url)
        try:
            catalog = CatalogHandle(server.url, url, admin)
            _, key = catalog.org("天津断线大学")
            with catalog.client(key) as c:
                for _ in range(3):  # several pooled connections, used just now
                    assert c.get("/v1/patents", params={"q": "电池"}).status_code == 200
                    r = c.post("/v1/patents", json=patent("天津断线大学", title="断线前的电池"))
                    assert r.status_code == 201, r.text

                async def cut() -> None:
                    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
                    try:  # with a timeout, pg_terminate_backend waits for the backend to end
                        await conn.execute(
                            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    finally:
                        await conn.close()

                asyncio.run(cut())
                # A restart takes longer than the service's loop needs to read the goodbyes;
                # a request inside that window gets a 503 (next test), never a 500.
                time.sleep(0.2)
                r = c.get("/v1/patents", params={"q": "断线前"})
                assert r.status_code == 200, r.text
                assert [p["title"] for p in r.json()["items"]] == ["断线前的电池"] * 3
                r = c.post("/v1/patents", json=patent("天津断线大学", title="断线后的电池"))
                assert r.status_code == 201, r.text
        finally:
            server.stop()


def fatal_goodbye() -> bytes:
    """The ErrorResponse a backend sends before it ends the connection (57P01)."""
    fields = b"SFATAL\0C57P01\0Mterminating connection due to administrator command\0\0"
    return b"E" + struct.pack("!i", 4 + len(fields)) + fields


@pytest.mark.parametrize("how", ["ends-mid-statement", "goodbye-read-before-its-eof"])
def test_a_connection_that_ends_mid_request_is_dropped_and_answered_503(
    pg_url: str, how: str
) -> None:
    """A backend that ends while serving a statement (it terminates itself, as a restart
    does to a busy connection), or whose goodbye the loop has read but not yet the socket's
    end (asyncpg then says "another operation is in progress"), fails that request with a
    503 and a Retry-After, the problem a client retries, not a 500; the pool drops the
    connection, and the next request is served on a new one."""
    db = Database(pg_url, pool_size=1, max_overflow=0)

    app = app_over(db)

    @app.get("/pid")
    async def pid(end: bool = False) -> int:
        async with db.read_sessionmaker() as session:
            if end and how == "ends-mid-statement":
                await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            elif end:
                raw = await (await session.connection()).get_raw_connection()
                raw.driver_connection._protocol.data_received(fatal_goodbye())
            return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)

    with TestClient(app, raise_server_exceptions=False) as client:
        before = client.get("/pid").json()
        r = client.get("/pid", params={"end": True})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "1"
        assert r.json()["type"].endswith("/unavailable") and "连接中断" in r.json()["detail"]
        after = client.get("/pid")
        assert after.status_code == 200 and after.json() != before


@pytest.mark.parametrize("how", ["copy_records", "feed-entries-at-commit"])
def test_a_connection_lost_during_a_copy_is_answered_503(pg_url: str, how: str) -> None:
    """COPY (bulk uploads; every feed entry, just before COMMIT) goes round SQLAlchemy, so
    a backend that ends under it must still be told apart from a bug: 503 and Retry-After,
    nothing written, and the next request served on a new connection."""
    db = Database(pg_url, pool_size=1, max_overflow=0)
    app = app_over(db)
    kept = table("kept", column("x"))

    @app.post("/copy")
    async def copy(cut: bool = False) -> int:
        async with db.sessionmaker() as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
            if how == "feed-entries-at-commit":
                await feed.append(session, Entry, [("x", 1, "upsert", {}), ("x", 2, "upsert", {})])
            if cut:
                conn = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
                try:  # with a timeout, pg_terminate_backend waits for the backend to end
                    await conn.execute("SELECT pg_terminate_backend($1, 5000)", pid)
                finally:
                    await conn.close()
                await asyncio.sleep(0.1)  # the goodbye reaches this loop
            if how == "copy_records":
                await shared.db.copy_records(session, kept, ["x"], [(1,), (2,)])
            await session.commit()
            return pid

    @app.get("/count")
    async def count() -> int:
        written = "SELECT count(*) FROM " + ("kept" if how == "copy_records" else "feed_entry")
        async with db.read_sessionmaker() as session:
            return int(await session.scalar(text(written)) or 0)

    async def prepare() -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(FeedBase.metadata.create_all)
            await conn.execute(text("CREATE TABLE kept (x int)"))
        await db.dispose()  # its connections belong to this loop, not the app's

    asyncio.run(prepare())
    with TestClient(app, raise_server_exceptions=False) as client:
        before = client.post("/copy")
        assert before.status_code == 200, before.text
        r = client.post("/copy", params={"cut": True})
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1" and "连接中断" in r.json()["detail"]
        after = client.post("/copy")
        assert after.status_code == 200 and after.json() != before.json()
        assert client.get("/count").json() == 4  # two requests wrote, the cut one nothing

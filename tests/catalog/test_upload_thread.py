"""Synchronous uploads run on one long-lived event loop beside the service's, with their
own connection pool (domain/bulk.py UploadThread), on SQLite and PostgreSQL: uploads
reuse its connections, run side by side, and one whose caller goes away still commits."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from services.catalog.api.bulk import INLINE_BYTES, file_size, off_loop
from services.catalog.cli import create_org_with_key
from services.catalog.domain.bulk import UploadThread
from services.catalog.main import MIGRATIONS
from services.catalog.models import Patent
from shared.auth import Principal, Role
from shared.db import Database, upgrade
from shared.testing import fresh_database
from tests.factories import patent

OWNER = "天津同步上传大学"


@pytest.fixture
def catalog_db(engine: str, db_dir: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    with fresh_database(engine, db_dir, "upthread") as url:
        upgrade(MIGRATIONS, url)
        org, _ = asyncio.run(
            create_org_with_key(
                url, {"kind": "university", "name": OWNER, "district": "nankai"}, None
            )  # fmt: skip
        )
        yield url, org, Principal("k", org, Role.SUPPLIER, "university").to_dict()


def records(n: int) -> list[tuple[int, dict[str, Any]]]:
    return [(i + 1, patent(OWNER)) for i in range(n)]


async def patents_in(url: str) -> int:
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(Patent)) or 0)
    finally:
        await db.dispose()


def test_uploads_reuse_one_loop_and_its_connections(
    catalog_db: tuple[str, int, dict[str, Any]],
) -> None:
    url, org, principal = catalog_db

    async def run() -> None:
        uploads = UploadThread(url)
        first = await uploads.apply(org, "json", records(5), None, "h1", principal)
        assert first["summary"]["accepted"] == 5
        thread, engine = uploads._thread, uploads._engine
        assert thread is not None and thread.is_alive() and engine is not None
        connects: list[object] = []
        event.listen(engine.sync_engine, "connect", lambda *_: connects.append(1))
        for i in range(5):
            body = await uploads.apply(org, "json", records(3), None, f"h{i}", principal)
            assert body["summary"]["accepted"] == 3
        assert connects == []  # one after the other: the first upload's connection each time
        # Side by side on the one loop: every report whole.
        bodies = await asyncio.gather(
            *(uploads.apply(org, "json", records(4), None, f"g{i}", principal) for i in range(3))
        )
        assert [b["summary"]["accepted"] for b in bodies] == [4, 4, 4]
        assert uploads._thread is thread and uploads._engine is engine
        assert len(connects) <= 2  # the three side by side may open two more, kept
        await uploads.close()
        assert not thread.is_alive()
        assert await patents_in(url) == 5 + 15 + 12

    asyncio.run(run())


def test_an_upload_whose_caller_goes_away_still_commits(
    catalog_db: tuple[str, int, dict[str, Any]],
) -> None:
    url, org, principal = catalog_db

    async def run() -> None:
        uploads = UploadThread(url)
        caller = asyncio.create_task(
            uploads.apply(org, "json", records(1500), None, "big", principal)
        )
        await asyncio.sleep(0)  # handed to the upload loop, nowhere near written
        assert not caller.done()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await uploads.close()  # waits for the upload that is still running
        assert await patents_in(url) == 1500

    asyncio.run(run())


def test_small_text_uploads_are_read_on_the_loop_and_the_rest_off_it() -> None:
    """A small text upload is hashed and parsed where the request runs (a hop to a worker
    thread and back cost more than the work); anything larger, or XLSX, leaves the loop."""

    async def run() -> None:
        here = threading.get_ident()
        assert await off_loop(True, threading.get_ident) == here
        assert await off_loop(False, threading.get_ident) != here

    asyncio.run(run())
    body = io.BytesIO(b"x" * (INLINE_BYTES + 1))
    body.seek(10)
    assert file_size(body) == INLINE_BYTES + 1 and body.tell() == 0

"""Applying a feed's entries page by page to a fresh copy, for the replica tests of
matching and indicators: the same entries cut into pages of any size must leave the copy
as one entry at a time would."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import create_engine, upgrade
from shared.testing import fresh_database

Entries = list[dict[str, Any]]


def random_pages(entries: Entries, rng: random.Random, cuts: int) -> list[Entries]:
    """`entries` cut at `cuts` random places: feed pages of uneven sizes."""
    at = sorted(rng.sample(range(1, len(entries)), cuts))
    return [entries[a:b] for a, b in zip([0, *at], [*at, len(entries)], strict=True)]


def copy_after(
    engine: str,
    tmp_dir: Path,
    migrations: Path,
    handler: Callable[[AsyncSession, Entries], Awaitable[None]],
    pages: list[Entries],
    read: Callable[[AsyncSession], Awaitable[Any]],
) -> Any:
    """A fresh database with `migrations`, each page applied by `handler` in a transaction
    of its own (as a feed consumer does), then what `read` finds there."""

    async def run(url: str) -> Any:
        db = create_engine(url)
        sessions = async_sessionmaker(db, expire_on_commit=False)
        try:
            for page in pages:
                async with sessions() as session, session.begin():
                    await handler(session, page)
            async with sessions() as session:
                return await read(session)
        finally:
            await db.dispose()

    with fresh_database(engine, tmp_dir, "replica") as url:
        upgrade(migrations, url)
        return asyncio.run(run(url))

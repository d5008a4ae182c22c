"""Dependency aliases of the catalog API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.settings import CatalogSettings
from shared.db import Database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    # GET requests only read: on SQLite they then run side by side instead of queueing.
    async for session in db.session(read_only=request.method in ("GET", "HEAD")):
        yield session


def get_settings(request: Request) -> CatalogSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[CatalogSettings, Depends(get_settings)]

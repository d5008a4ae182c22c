"""Dependency aliases of the matching API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.settings import MatchingSettings
from shared.db import Database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async for session in db.session():
        yield session


def get_settings(request: Request) -> MatchingSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


SessionDep = Annotated[
    AsyncSession, Depends(get_session, scope="function")
]  # commit before responding
SettingsDep = Annotated[MatchingSettings, Depends(get_settings)]

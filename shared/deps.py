"""FastAPI dependencies every service uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session on `app.state.db`; GET/HEAD read without the SQLite write lock."""
    db: Database = request.app.state.db
    async for session in db.session(read_only=request.method in ("GET", "HEAD")):
        yield session


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]

"""A bare app over a database, for tests of how the shared layers answer database
failures without a whole service around them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shared.db import Database
from shared.errors import install_error_handlers


def app_over(db: Database) -> FastAPI:
    """The platform's error handlers installed; `db` disposed of on the app's own loop as
    it stops (its connections belong to that loop)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await db.dispose()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    return app

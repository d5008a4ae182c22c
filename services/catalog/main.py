"""Catalog service: organisations, patents, pool listings, bundles and the change feed."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import update

from services.catalog.api import (
    bulk,
    bundles,
    listings,
    organisations,
    patents,
    people,
    sessions,
    stats,
)
from services.catalog.api.deps import SessionDep
from services.catalog.domain import bulk_pool
from services.catalog.domain.bulk import UploadThread
from services.catalog.domain.conversions import apply_deal_entries
from services.catalog.domain.keys import DbAuthenticator
from services.catalog.domain.keywords import KeywordIndex
from services.catalog.domain.throttle import LoginThrottle
from services.catalog.models import FeedCursor, FeedEntry, ParkedFeedEntry, UploadJob
from services.catalog.settings import CatalogSettings
from shared.app import create_service_app
from shared.auth import PrincipalDep
from shared.db import Database, upgrade_async
from shared.feed import FeedConsumer, feed_router, parked_router, utcnow
from shared.http import service_client
from shared.observability import track_jobs

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("tjp.catalog")


async def mark_interrupted_jobs(db: Database) -> None:
    """Jobs live in this process; after a restart, say so instead of showing them running."""
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(UploadJob)
            .where(UploadJob.status.in_(("queued", "running")))
            .values(
                status="failed",
                finished_at=utcnow(),
                error="interrupted by a service restart; upload the file again "
                "(records already applied will come back as unchanged)",
            )
        )


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            await upgrade_async(MIGRATIONS, settings.database_url)
        db = Database(settings.database_url)
        app.state.db = db
        app.state.settings = settings
        app.state.authenticator = DbAuthenticator(db.sessionmaker)
        app.state.login_throttle = LoginThrottle(
            settings.login_max_failures,
            settings.login_max_failures_per_client,
            settings.login_failure_window_seconds,
        )
        # Timed into the upload-job histogram of /metrics as each job ends.
        app.state.jobs = track_jobs({}, app.state.metrics)
        app.state.uploads = UploadThread(db.url)
        await mark_interrupted_jobs(db)
        # Built in the background; until then keyword searches scan (same results).
        keywords = KeywordIndex(db.read_sessionmaker) if settings.keyword_index else None
        if keywords:
            keywords.start(busy=lambda: bool(app.state.jobs))
        app.state.keywords = keywords
        consumer = None
        client = None
        if settings.indicators_url:
            client = service_client(settings.indicators_url, timeout=10.0)
            consumer = FeedConsumer(
                source="indicators",
                client=client,
                sessionmaker=db.sessionmaker,
                cursor_model=FeedCursor,
                handler=apply_deal_entries,
                parked_model=ParkedFeedEntry,
                long_poll=settings.feed_long_poll,
            )
            consumer.start()
        # Everything built at start-up lives as long as the service: keep it out of the
        # cyclic GC's full collections, which otherwise walk it all and stall the event
        # loop for 200-300 ms during a 2,000-record upload (bench/loop_stall.py).
        gc.collect()
        gc.freeze()
        app.state.consumer = consumer
        app.state.feed_consumers = {"indicators": consumer} if consumer else {}

        def readiness() -> dict[str, str]:
            checks = {"indicators_feed": consumer.health()} if consumer else {}
            if keywords:
                checks["keyword_index"] = keywords.describe()
            return checks

        app.state.readiness = readiness
        try:
            yield
        finally:
            if consumer:
                await consumer.stop()
            if keywords:
                await keywords.stop()
            if client:
                await client.aclose()
            for task in list(app.state.jobs.values()):
                task.cancel()
            await app.state.uploads.close()
            bulk_pool.shutdown()
            await db.dispose()

    app = create_service_app(
        title="Tianjin patent pool — catalog",
        description=(
            "Organisations, patents and the sleeping-patent pool. Universities upload "
            "patents (single or bulk); every change is published on `/v1/feed`."
        ),
        lifespan=lifespan,
    )
    app.include_router(organisations.router)
    app.include_router(people.router)
    app.include_router(sessions.router)
    app.include_router(patents.router)
    app.include_router(listings.router)
    app.include_router(bundles.router)
    app.include_router(bulk.router)
    app.include_router(stats.router)
    app.include_router(feed_router(FeedEntry, SessionDep))
    app.include_router(parked_router(ParkedFeedEntry, SessionDep, PrincipalDep))
    app.state.max_body_bytes = settings.max_body_bytes
    app.state.body_limits = {"/v1/patents/bulk": settings.max_upload_bytes}
    # 10,000 items each with its own terms and date pass 1 MB; still read whole and checked
    app.state.json_body_limits = {"/v1/listings/bulk": settings.max_bulk_listing_bytes}
    return app

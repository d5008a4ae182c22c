"""Indicators service: the conversion ledger, plan progress, reported figures, snapshots."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.indicators.api import activity, deals, events, plans, reporting
from services.indicators.api.deps import SessionDep
from services.indicators.domain.plans import all_plans
from services.indicators.domain.progress_cache import ProgressCache
from services.indicators.domain.replica import (
    CatalogLookup,
    apply_catalog_entries,
    apply_matching_entries,
)
from services.indicators.models import FeedCursor, FeedEntry, ParkedFeedEntry
from services.indicators.settings import IndicatorsSettings
from shared.app import create_service_app
from shared.auth import PrincipalDep, RemoteAuthenticator
from shared.db import Database, upgrade_async
from shared.feed import FeedConsumer, feed_router, parked_router
from shared.http import service_client

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("tjp.indicators")


def create_app(settings: IndicatorsSettings | None = None) -> FastAPI:
    settings = settings or IndicatorsSettings()
    all_plans()  # fail at startup, not at the first request, if a plan file is broken

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            await upgrade_async(MIGRATIONS, settings.database_url)
        db = Database(settings.database_url)
        app.state.db = db
        app.state.settings = settings
        catalog = service_client(settings.catalog_url, timeout=10.0)
        app.state.authenticator = RemoteAuthenticator(catalog)
        lookup = CatalogLookup(catalog, db.read_sessionmaker, db.sessionmaker)
        app.state.lookup = lookup
        app.state.metrics.state.gauges.update(
            tjp_indicators_catalog_checks=(
                "Requests that looked in the local copies for what the catalog feed had "
                "not yet brought (since start)", lambda: lookup.checks_total),
            tjp_indicators_catalog_feed_arrivals=(
                "Requests whose missing organisations and patents the catalog feed brought "
                "while they waited (since start)", lambda: lookup.feed_arrivals_total),
            tjp_indicators_catalog_fetches=(
                "Organisations and patents fetched from the catalog inside a request (since start)",
                lambda: lookup.fetches_total),
        )  # fmt: skip

        async def apply_catalog(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
            await apply_catalog_entries(session, entries)
            lookup.remember_on_commit(session, entries)

        app.state.progress_cache = ProgressCache()
        app.state.progress_cache.watch(db.sessionmaker)
        consumers: dict[str, FeedConsumer] = {}
        consumers["catalog"] = FeedConsumer(
            source="catalog",
            client=catalog,
            sessionmaker=db.sessionmaker,
            cursor_model=FeedCursor,
            handler=apply_catalog,
            idle_interval=settings.feed_idle_interval,
            long_poll=settings.feed_long_poll,
            parked_model=ParkedFeedEntry,
        )
        matching = None
        if settings.matching_url:
            matching = service_client(settings.matching_url, timeout=10.0)
            consumers["matching"] = FeedConsumer(
                source="matching",
                client=matching,
                sessionmaker=db.sessionmaker,
                cursor_model=FeedCursor,
                handler=apply_matching_entries,
                idle_interval=settings.feed_idle_interval,
                long_poll=settings.feed_long_poll,
                parked_model=ParkedFeedEntry,
            )
        app.state.consumers = consumers
        app.state.feed_consumers = consumers
        if settings.follow_feeds:
            for c in consumers.values():
                c.start()
            lookup.follow(
                consumers["catalog"], settings.lookup_feed_wait, settings.lookup_hedge_after
            )

        def readiness() -> dict[str, Any]:
            return {f"{name}_feed": c.health() for name, c in consumers.items()}

        app.state.readiness = readiness
        try:
            yield
        finally:
            for c in consumers.values():
                await c.stop()
            await catalog.aclose()
            if matching:
                await matching.aclose()
            await db.dispose()

    app = create_service_app(
        title="Tianjin patent pool — indicators",
        description=(
            "The conversion ledger (assignments, licences, equity contributions to SMEs), "
            "pledge financing and other countable events, the plans' targets and their "
            "progress (3000 pooled, 1000 converted, Binhai's 22 indicators, Dongli's tables), "
            "reported figures, frozen snapshots, drill-down and Excel exports. Deals are "
            "published on `/v1/feed` for the catalog."
        ),
        lifespan=lifespan,
    )
    app.include_router(deals.router)
    app.include_router(events.router)
    app.include_router(plans.router)
    app.include_router(reporting.router)
    app.include_router(activity.router)
    app.include_router(feed_router(FeedEntry, SessionDep))
    app.include_router(parked_router(ParkedFeedEntry, SessionDep, PrincipalDep))

    app.state.max_body_bytes = settings.max_body_bytes
    # A district's spreadsheet of up to 2,000 deals.
    app.state.body_limits = {"/v1/deals/batch": 4 * settings.max_body_bytes}
    return app

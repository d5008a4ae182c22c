"""Matching service: needs, ranked and explained patents, reverse matching, leads."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.matching.api import leads, match, needs, ops
from services.matching.api.deps import SessionDep
from services.matching.domain.needs import NeedIndexer
from services.matching.domain.replicas import FileLock, ReplicaFollower, startup_turn
from services.matching.domain.sync import CatalogConsumer, PatentIndexer, apply_catalog_entries
from services.matching.models import FeedCursor, FeedEntry, ParkedFeedEntry
from services.matching.settings import MatchingSettings
from shared.app import create_service_app
from shared.auth import PrincipalDep, RemoteAuthenticator
from shared.db import Database, upgrade_async
from shared.feed import feed_router, parked_router
from shared.http import service_client

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("tjp.matching")


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replicas = settings.workers > 1
        async with startup_turn(settings.index_dir) if replicas else contextlib.nullcontext():
            if settings.migrate_on_startup:
                await upgrade_async(MIGRATIONS, settings.database_url)
            db = Database(settings.database_url)
            # The indexer only reads; beside other workers, its reads must not take SQLite's
            # write lock (the leader's feed writes would queue behind them).
            indexer = PatentIndexer(
                db.read_sessionmaker if replicas else db.sessionmaker, settings.index_dir
            )
            await indexer.start()
            need_indexer = NeedIndexer(db.sessionmaker)
            await need_indexer.rebuild()
            if replicas and indexer.saved_position != indexer.index.position:
                # The next worker through start-up loads this instead of indexing again.
                await indexer.snapshot(force=True)
        client = service_client(settings.catalog_url, timeout=30.0)
        auth_client = service_client(settings.catalog_url, timeout=10.0)
        app.state.db = db
        app.state.settings = settings
        app.state.authenticator = RemoteAuthenticator(auth_client)
        app.state.indexer = indexer
        app.state.needs = need_indexer
        app.state.metrics.state.gauges.update(
            tjp_matching_index_patents=("Patents in the matching index", lambda: len(indexer.index)),
            tjp_matching_index_terms=("Terms in the patent index's vocabulary",
                                      lambda: len(indexer.index.terms)),
            tjp_matching_index_needs=("Open needs in the reverse-matching index",
                                      lambda: len(need_indexer.index)),
        )  # fmt: skip
        # The start-up objects (hit cards, vocabulary, ...) live as long as the service: keep
        # them out of the cyclic GC's full collections, which would otherwise walk them all
        # and stall requests for milliseconds.
        gc.collect()
        gc.freeze()
        consumer = CatalogConsumer(
            indexer,
            source="catalog",
            client=client,
            sessionmaker=db.sessionmaker,
            cursor_model=FeedCursor,
            handler=apply_catalog_entries,
            parked_model=ParkedFeedEntry,
            idle_interval=settings.feed_idle_interval,
            long_poll=settings.feed_long_poll,
        )
        app.state.consumer = consumer
        app.state.feed_consumers = {"catalog": consumer}

        async def snapshots() -> None:
            while True:
                await asyncio.sleep(settings.snapshot_interval)
                try:
                    await indexer.snapshot()
                except Exception:  # keep serving; the next attempt may succeed
                    log.exception("index snapshot failed")

        tasks: list[asyncio.Task[None]] = []

        async def lead() -> None:
            """Follow the feed and write snapshots (the only worker that does)."""
            if settings.consume_feed:
                consumer.start()
            tasks.append(asyncio.create_task(snapshots(), name="matching-snapshots"))

        leader_lock = FileLock(Path(settings.index_dir) / "leader.lock")
        follower: ReplicaFollower | None = None
        if replicas:
            follower = ReplicaFollower(
                db.read_sessionmaker, indexer, need_indexer, leader_lock, lead,
                settings.feed_idle_interval,
            )  # fmt: skip
            await follower.prime()
            await follower.poll_once()  # takes the leader lock if it is free
            follower.start()
        else:
            await lead()
        app.state.replica = follower

        def role() -> str:
            return follower.role if follower else "single"

        def feed_health() -> str:
            if follower is None or follower.leader_lock.held:
                return consumer.health()
            return f"followed by the leader; this worker's index at {indexer.index.position}"

        app.state.readiness = lambda: {
            "catalog_feed": feed_health(),
            "index": f"{len(indexer.index)} patents at {indexer.index.position}",
            "worker": f"{role()} (pid {os.getpid()})",
        }
        try:
            yield
        finally:
            if follower is not None:
                await follower.stop()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await consumer.stop()
            if follower is None or leader_lock.held:
                try:
                    await indexer.snapshot(force=True)
                except Exception:
                    log.exception("final index snapshot failed")
            leader_lock.release()
            await client.aclose()
            await auth_client.aclose()
            await db.dispose()

    app = create_service_app(
        title="Tianjin patent pool — matching",
        description=(
            "SMEs post technology needs; the matcher ranks pooled patents for a need or a "
            "plain-language problem with reasons, finds the needs a patent fits, and keeps "
            "leads (interest → accepted/declined), published on `/v1/feed`."
        ),
        lifespan=lifespan,
    )
    app.include_router(needs.router)
    app.include_router(match.router)
    app.include_router(leads.router)
    app.include_router(ops.router)
    app.include_router(feed_router(FeedEntry, SessionDep))
    app.include_router(parked_router(ParkedFeedEntry, SessionDep, PrincipalDep))
    app.state.max_body_bytes = settings.max_body_bytes
    return app


app_factory = create_app

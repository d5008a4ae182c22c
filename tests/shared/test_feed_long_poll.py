"""Long-polled feeds (`GET /v1/feed?wait=`), on SQLite and PostgreSQL, with a real catalog.

A reader at the head waits and is answered when an entry commits: at once for a commit of
the producer's own process (its request handlers and the catalog's upload loop, a thread
of its own), within `RECHECK_EVERY` for a write by anyone else. A stopping server answers
its waiting readers at once. A consumer with `long_poll` receives entries without waiting
for its idle interval.

"At once" is checked without timing thresholds: the recheck is set to a minute and the
reader asks to wait half a minute, so a reader that was not woken would still be waiting
when the test gives up on it (20 s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from services.catalog.main import create_app as create_catalog_app
from services.catalog.settings import CatalogSettings
from services.indicators.main import create_app as create_indicators_app
from services.indicators.settings import IndicatorsSettings
from shared import feed
from shared.testing import LiveServer, fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.factories import patent
from tests.hostile import run_sql

GIVE_UP = 20.0  # seconds; every long poll below asks for 30


@pytest.fixture(scope="module")
def served(engine: str, db_dir: Path) -> Iterator[tuple[LiveServer, CatalogHandle]]:
    with fresh_database(engine, db_dir, "longpoll") as url:
        server, admin_key = start_catalog(url)
        try:
            yield server, CatalogHandle(server.url, url, admin_key)
        finally:
            server.stop()


def head(catalog: CatalogHandle) -> int:
    return int(run_sql(catalog.database_url, ["SELECT coalesce(max(id), 0) FROM feed_entry"])[0][0])


def long_poll(
    pool: ThreadPoolExecutor, catalog: CatalogHandle, after: int, wait: float = 30
) -> Future[dict[str, Any]]:
    def get() -> dict[str, Any]:
        with catalog.client() as c:
            r = c.get("/v1/feed", params={"after": after, "wait": wait})
            assert r.status_code == 200, r.text
            return dict(r.json())

    return pool.submit(get)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def waiting(server: LiveServer, n: int = 1) -> Callable[[], bool]:
    signal = feed.feed_signal(server.app)
    return lambda: len(signal._waiters) == n


@pytest.fixture
def slow_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a wake-up can answer a waiting reader in time."""
    monkeypatch.setattr(feed, "RECHECK_EVERY", 60.0)


def single(c: Any, owner: str) -> None:
    assert c.post("/v1/patents", json=patent(owner)).status_code == 201


def bulk(c: Any, owner: str) -> None:
    # Up to the synchronous limit, a bulk upload commits on the catalog's upload loop.
    records = json.dumps([patent(owner) for _ in range(3)])
    r = c.post("/v1/patents/bulk", content=records, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["summary"]["accepted"] == 3, r.text


@pytest.mark.parametrize("write", [single, bulk], ids=["request", "upload-loop"])
def test_a_commit_of_the_producer_answers_a_waiting_reader(
    served: tuple[LiveServer, CatalogHandle], slow_recheck: None, write: Any
) -> None:
    server, catalog = served
    _, key = catalog.org("天津长轮询大学")
    after = head(catalog)
    with ThreadPoolExecutor(1) as pool, catalog.client(key) as c:
        answer = long_poll(pool, catalog, after)
        until(waiting(server), "the reader never waited")
        assert not answer.done()
        write(c, "天津长轮询大学")
        page = answer.result(timeout=GIVE_UP)
    assert page["items"] and page["items"][0]["id"] == after + 1
    assert {i["entity"] for i in page["items"]} >= {"patent"}
    assert page["next_after"] == page["items"][-1]["id"]


def test_a_write_by_another_process_shows_within_the_recheck(
    served: tuple[LiveServer, CatalogHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, catalog = served
    monkeypatch.setattr(feed, "RECHECK_EVERY", 0.05)
    after = head(catalog)
    with ThreadPoolExecutor(1) as pool:
        answer = long_poll(pool, catalog, after)
        until(waiting(server), "the reader never waited")
        # Plain SQL on a connection of its own: no session of this process commits.
        run_sql(
            catalog.database_url,
            ["INSERT INTO feed_entry (entity, entity_id, op, payload, created_at) "
             "VALUES ('organisation', '0', 'noop', '{}', CURRENT_TIMESTAMP)"],
        )  # fmt: skip
        page = answer.result(timeout=GIVE_UP)
    assert [(i["id"], i["op"]) for i in page["items"]] == [(after + 1, "noop")]


def test_a_reader_with_nothing_to_read_gets_an_empty_page_after_its_wait(
    served: tuple[LiveServer, CatalogHandle],
) -> None:
    server, catalog = served
    after = head(catalog)
    started = time.monotonic()
    with catalog.client() as c:
        page = c.get("/v1/feed", params={"after": after, "wait": 0.3}).json()
    assert page == {"items": [], "next_after": after, "has_more": False}
    assert time.monotonic() - started >= 0.3  # it did wait (a lower bound, not a threshold)
    until(waiting(server, 0), "a reader stayed registered after answering")
    # Waiting is only for a reader at the head: behind it, the page comes at once.
    with catalog.client() as c:
        page = c.get("/v1/feed", params={"after": 0, "limit": 1, "wait": 30}).json()
    assert len(page["items"]) == 1 and page["has_more"]


def test_a_stopping_server_answers_its_waiting_readers(
    served: tuple[LiveServer, CatalogHandle], slow_recheck: None
) -> None:
    _, catalog = served
    second = LiveServer(create_catalog_app(CatalogSettings(database_url=catalog.database_url)))
    second.start()
    try:
        other = CatalogHandle(second.url, catalog.database_url, catalog.admin_key)
        after = head(catalog)
        with ThreadPoolExecutor(1) as pool:
            answer = long_poll(pool, other, after)
            until(waiting(second), "the reader never waited")
            feed.close_long_polls(second.app)
            page = answer.result(timeout=GIVE_UP)
        assert page == {"items": [], "next_after": after, "has_more": False}
    finally:
        second.stop()


def test_a_long_polling_consumer_gets_entries_before_its_idle_interval(
    served: tuple[LiveServer, CatalogHandle], engine: str, db_dir: Path, slow_recheck: None
) -> None:
    """Indicators poll an idle catalog once a minute here: only the long poll can bring the
    new patent in time."""
    _, catalog = served
    _, key = catalog.org("天津长轮询大学")
    with fresh_database(engine, db_dir, "longpoll_indicators") as url:
        settings = IndicatorsSettings(
            database_url=url, catalog_url=catalog.url, feed_idle_interval=60, feed_long_poll=30
        )
        indicators = LiveServer(create_indicators_app(settings)).start()
        try:
            consumer = indicators.app.state.consumers["catalog"]
            until(lambda: consumer.at_head and consumer.position == head(catalog),
                  "the consumer never caught up")  # fmt: skip
            with catalog.client(key) as c:
                single(c, "天津长轮询大学")
            target = head(catalog)
            until(lambda: consumer.position == target, "the consumer did not get the entry")
        finally:
            indicators.stop()


def test_a_wait_that_is_not_a_finite_number_of_seconds_is_refused(
    served: tuple[LiveServer, CatalogHandle],
) -> None:
    _, catalog = served
    with catalog.client() as c:
        for wait, reason in (("nan", "finite"), ("inf", "finite"), ("31", "30"), ("-1", "0")):
            r = c.get("/v1/feed", params={"after": 0, "wait": wait})
            assert r.status_code == 422, (wait, r.text)
            assert r.json()["errors"][0]["field"] == "wait" and reason in r.text, r.text

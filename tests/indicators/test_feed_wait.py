"""A deal naming a patent the catalog feed has not brought yet, on both engines.

While the feed is busy (a page applied in the last second) the deal waits for the feed
consumer to bring the patent instead of asking the catalog; after `lookup_hedge_after` it
asks the catalog too and takes the first answer; on a quiet feed it asks the catalog at
once. The consumer is stopped and restarted by hand so the patent is certainly missing
when the deal arrives; `lookup_feed_wait` is half a minute, so a deal that waited the whole
wait would outlast the test's patience (20 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.testing import LiveServer, fresh_database
from tests.conftest import CatalogHandle
from tests.indicators.conftest import IndicatorsHandle, deal_body, start_indicators

GIVE_UP = 20.0


@dataclass
class Served:
    server: LiveServer
    h: IndicatorsHandle
    loop: asyncio.AbstractEventLoop  # the service's event loop, where its consumer runs

    @property
    def consumer(self) -> Any:
        return self.server.app.state.consumers["catalog"]

    @property
    def lookup(self) -> Any:
        return self.server.app.state.lookup

    def stop_consumer(self) -> None:
        asyncio.run_coroutine_threadsafe(self.consumer.stop(), self.loop).result(GIVE_UP)

    def start_consumer(self) -> None:
        self.loop.call_soon_threadsafe(self.consumer.start)


@pytest.fixture(scope="module")
def served(catalog: CatalogHandle, engine: str, db_dir: Path) -> Iterator[Served]:
    with fresh_database(engine, db_dir, "indfeedwait") as url:
        server, handle = start_indicators(catalog, url, lookup_feed_wait=30, lookup_hedge_after=30)
        try:
            loop = server.app.state.consumers["catalog"]._task.get_loop()
            yield Served(server, handle, loop)
        finally:
            server.stop()


def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def parties(h: IndicatorsHandle, tag: str) -> tuple[str, int, str, int]:
    _, bureau = h.org(f"天津市知识产权局（{tag}）", "other", "city_bureau", district="hexi")
    uni, uni_key = h.org(f"天津{tag}大学", "university", "supplier", district="nankai")
    sme, _ = h.org(f"{tag}科技公司", "sme", "sme", district="binhai", is_sme=True)
    h.patent(uni_key, f"天津{tag}大学", listed=True)  # the consumer knows the parties
    h.wait_synced()
    return bureau, uni, uni_key, sme


def test_a_busy_feed_brings_the_patent_while_the_deal_waits(served: Served) -> None:
    h, lookup = served.h, served.lookup
    bureau, uni, uni_key, sme = parties(h, "等待")
    served.stop_consumer()
    appno = h.patent(uni_key, "天津等待大学", listed=True)  # not in indicators yet
    served.consumer.applied_at = time.monotonic() + 3600  # the feed counts as busy
    fetches, checks = lookup.fetches_total, lookup.checks_total
    try:
        with ThreadPoolExecutor(1) as pool, h.client(bureau) as c:
            body = deal_body(patents=[appno], suppliers=[uni], recipient=sme)
            answer = pool.submit(c.post, "/v1/deals", json=body)
            until(lambda: lookup.checks_total > checks, "the deal never looked for the patent")
            time.sleep(0.3)  # let it reach its wait (a deal that did not wait has fetched)
            served.start_consumer()
            r = answer.result(timeout=GIVE_UP)
    finally:
        served.consumer.applied_at = 0.0
        if served.consumer._task is None:
            served.start_consumer()
    assert r.status_code == 201, r.text
    assert lookup.fetches_total == fetches  # the feed brought it; the catalog was not asked
    assert lookup.feed_arrivals_total >= 1


def deal_on_new_patent(served: Served, who: tuple[str, int, str, int], tag: str) -> tuple[Any, int]:
    """With the consumer stopped, upload a patent and record a deal naming it: the answer,
    and how many calls to the catalog the deal made."""
    h, lookup = served.h, served.lookup
    bureau, uni, uni_key, sme = who
    appno = h.patent(uni_key, f"天津{tag}大学", listed=True)
    fetches = lookup.fetches_total
    with ThreadPoolExecutor(1) as pool, h.client(bureau) as c:
        body = deal_body(patents=[appno], suppliers=[uni], recipient=sme)
        r = pool.submit(c.post, "/v1/deals", json=body).result(timeout=GIVE_UP)
    return r, lookup.fetches_total - fetches


def test_on_a_quiet_feed_an_unknown_patent_is_fetched_at_once(served: Served) -> None:
    who = parties(served.h, "安静")
    served.stop_consumer()
    try:
        served.consumer.applied_at = 0.0  # nothing applied for a long time
        r, fetched = deal_on_new_patent(served, who, "安静")
        assert r.status_code == 201, r.text
        assert fetched == 1
    finally:
        served.start_consumer()


def test_a_busy_feed_that_is_slow_is_overtaken_by_asking_the_catalog(served: Served) -> None:
    """The feed is busy but never brings the patent (its consumer is stopped): after
    `hedge_after` the deal asks the catalog and is answered, without waiting out
    `lookup_feed_wait` (30 s, past the test's patience)."""
    who = parties(served.h, "对冲")
    served.stop_consumer()
    served.consumer.applied_at = time.monotonic() + 3600  # the feed counts as busy
    served.lookup.hedge_after = 0.05
    try:
        r, fetched = deal_on_new_patent(served, who, "对冲")
        assert r.status_code == 201, r.text
        assert fetched == 1
    finally:
        served.lookup.hedge_after = 30.0
        served.consumer.applied_at = 0.0
        served.start_consumer()

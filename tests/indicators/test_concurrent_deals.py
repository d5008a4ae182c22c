"""Many deals recorded at once over HTTP: all succeed (409 only for a real duplicate), and a
consumer following the deal feed while they are written misses none (commit order)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shared.testing import fresh_database
from tests.conftest import CatalogHandle
from tests.indicators.conftest import IndicatorsHandle, deal_body, start_indicators

N = 16
M = 64  # deals at once in the commit-order test: enough that commits interleave


@pytest.fixture(scope="module")
def quiet(catalog: CatalogHandle, engine: str, db_dir: Path) -> Iterator[IndicatorsHandle]:
    """An indicators service that does not follow the catalog feed: every organisation and
    patent a deal names is fetched from the catalog by the deal request itself."""
    with fresh_database(engine, db_dir, "indquiet") as url:
        server, handle = start_indicators(catalog, url, follow_feeds=False)
        try:
            yield handle
        finally:
            server.stop()


def record(h: IndicatorsHandle, key: str, body: dict[str, Any]) -> tuple[int, Any]:
    with h.client(key) as c:
        r = c.post("/v1/deals", json=body)
    return r.status_code, r.json()


def test_concurrent_deals_naming_the_same_new_patent_and_party_all_succeed(
    quiet: IndicatorsHandle,
) -> None:
    h = quiet
    _, bureau = h.org("天津市知识产权局（并发）", "other", "city_bureau", district="hexi")
    uni, uni_key = h.org("天津并发大学", "university", "supplier", district="nankai")
    sme, _ = h.org("并发许可科技公司", "sme", "sme", district="binhai", is_sme=True)
    appno = h.patent(uni_key, "天津并发大学")  # known to the catalog only
    bodies = [
        deal_body(patents=[appno], suppliers=[uni], recipient=sme, kind="licence",
                  licence_type="non_exclusive")
        for _ in range(N)
    ]  # fmt: skip
    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(lambda b: record(h, bureau, b), bodies))
    assert [status for status, _ in results] == [201] * N, results
    assert len({body["id"] for _, body in results}) == N
    with h.client() as c:
        listed = c.get("/v1/deals", params={"application_number": appno, "limit": 100}).json()
    assert len(listed["items"]) == N


def test_concurrent_deals_succeed_and_the_feed_is_read_in_commit_order(
    indicators: IndicatorsHandle, bureau: str
) -> None:
    h = indicators
    uni, uni_key = h.org("天津顺序大学", "university", "supplier", district="nankai")
    sme, _ = h.org("顺序科技公司", "sme", "sme", district="binhai", is_sme=True)
    patents = [h.patent(uni_key, "天津顺序大学") for _ in range(M)]
    h.wait_synced(timeout=60)
    with h.client() as c:
        start = c.get("/v1/feed", params={"limit": 5000}).json()
    cursor = start["next_after"]
    while start["has_more"]:
        with h.client() as c:
            start = c.get("/v1/feed", params={"after": cursor, "limit": 5000}).json()
        cursor = start["next_after"]

    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def follow() -> None:
        """A consumer polling while deals are written: it must never skip one."""
        nonlocal cursor
        with h.client() as c:
            while True:
                last_round = done.is_set()
                page = c.get("/v1/feed", params={"after": cursor, "limit": 1000}).json()
                seen.extend(page["items"])
                cursor = page["next_after"]
                if last_round and not page["has_more"]:
                    return

    dup = deal_body(patents=[patents[0]], suppliers=[uni], recipient=sme,
                    evidence_number="CONCURRENT-DUP-1")  # fmt: skip
    bodies = [deal_body(patents=[a], suppliers=[uni], recipient=sme) for a in patents]
    reader = threading.Thread(target=follow)
    reader.start()
    try:
        with ThreadPoolExecutor(M + 2) as pool:
            results = list(pool.map(lambda b: record(h, bureau, b), [*bodies, dup, dup]))
    finally:
        done.set()
        reader.join(timeout=60)
    statuses = [s for s, _ in results]
    assert statuses[:M] == [201] * M, results
    assert sorted(statuses[M:]) == [201, 409]  # the same evidence twice: a real duplicate
    created = {b["id"] for s, b in results if s == 201}

    ids = [e["id"] for e in seen]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    published = {int(e["entity_id"]) for e in seen if e["entity"] == "deal"}
    assert published == created  # every deal once, none skipped by the following reader
    with h.client() as c:
        everything = c.get("/v1/feed", params={"after": ids[0] - 1, "limit": 5000}).json()
    assert [e["id"] for e in everything["items"]] == ids

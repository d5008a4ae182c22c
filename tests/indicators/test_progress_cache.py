"""Plan progress is cached, and the cache is never behind: writes and reads interleaved,
every answer over HTTP equal to a computation from scratch on the same database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.encoders import jsonable_encoder

from services.indicators.domain.common import today
from services.indicators.domain.plans import get_plan, plan_progress
from services.indicators.domain.progress_cache import ProgressCache
from shared.db import Database
from shared.testing import LiveServer, fresh_database
from tests.conftest import CatalogHandle
from tests.indicators.conftest import IndicatorsHandle, deal_body, start_indicators

PLAN, YEAR = "city-001", 2022


@pytest.fixture(scope="module")
def served(
    catalog: CatalogHandle, engine: str, db_dir: Path
) -> Iterator[tuple[LiveServer, IndicatorsHandle]]:
    with fresh_database(engine, db_dir, "indprogress") as url:
        server, handle = start_indicators(catalog, url)
        try:
            yield server, handle
        finally:
            server.stop()


def scratch(h: IndicatorsHandle, year: int = YEAR) -> Any:
    """The progress computed now, without the service and its cache."""

    async def run() -> Any:
        db = Database(h.database_url)
        try:
            as_of = min(today(), date(year, 12, 31))
            result = await plan_progress(db.sessionmaker, get_plan(PLAN), year, as_of=as_of)
        finally:
            await db.dispose()
        return json.loads(json.dumps(jsonable_encoder(result)))

    return asyncio.run(run())


def served_progress(h: IndicatorsHandle, year: int = YEAR) -> Any:
    with h.client() as c:
        r = c.get(f"/v1/plans/{PLAN}/progress", params={"year": year})
    assert r.status_code == 200, r.text
    return r.json()


def test_interleaved_writes_and_reads_match_a_fresh_computation(
    served: tuple[LiveServer, IndicatorsHandle],
) -> None:
    server, h = served
    cache: ProgressCache = server.server.config.app.state.progress_cache
    _, bureau = h.org("天津市知识产权局（缓存）", "other", "city_bureau", district="hexi")
    uni, uni_key = h.org("天津缓存大学", "university", "supplier", district="nankai")
    sme, _ = h.org("缓存科技公司", "sme", "sme", district="binhai", is_sme=True)
    patents = [h.patent(uni_key, "天津缓存大学", listed=True) for _ in range(4)]
    h.wait_synced()

    first = served_progress(h)
    assert first == scratch(h)
    hits = cache.hits
    assert served_progress(h) == first  # nothing written: served from the cache
    assert cache.hits == hits + 1

    def sme_deals(progress: Any) -> Any:
        return next(i for i in progress["indicators"] if i["rule"] == "sme_patent_deals")["actual"]

    deals = []
    with h.client(bureau) as c:
        for i, appno in enumerate(patents):
            before = sme_deals(served_progress(h))
            r = c.post("/v1/deals", json=deal_body(
                patents=[appno], suppliers=[uni], recipient=sme,
                effective=f"{YEAR}-0{i + 3}-10", contract=f"{YEAR}-0{i + 3}-01",
                payments=[{"amount": "1000", "received_on": f"{YEAR}-0{i + 3}-12"}],
            ))  # fmt: skip
            assert r.status_code == 201, r.text
            deals.append(r.json()["id"])
            now = served_progress(h)
            assert sme_deals(now) == before + 1  # the deal is counted at once
            assert now == scratch(h)
        # a payment alone (no feed entry) and a cancellation each change the figures
        r = c.post(f"/v1/deals/{deals[0]}/payments",
                   json={"payments": [{"amount": "2500", "received_on": f"{YEAR}-06-01"}]})  # fmt: skip
        assert r.status_code == 200, r.text
        assert served_progress(h) == scratch(h)
        r = c.post(f"/v1/deals/{deals[1]}/cancel", json={"reason": "合同解除"})
        assert r.status_code == 200, r.text
        after_cancel = served_progress(h)
        assert sme_deals(after_cancel) == len(patents) - 1
        assert after_cancel == scratch(h)
    # an upstream change: a listing taken out of the pool in the catalog, through the feed
    with h.catalog.client(uni_key) as c:
        listing = c.get(f"/v1/patents/{patents[3]}").json()["listing"]
        r = c.patch(f"/v1/listings/{listing['id']}", json={"status": "withdrawn", "reason": "撤回"})
        assert r.status_code == 200, r.text
    h.wait_synced()
    assert served_progress(h) == scratch(h)
    assert served_progress(h, 2023) == scratch(h, 2023)


def test_concurrent_writers_and_readers_end_exact(
    served: tuple[LiveServer, IndicatorsHandle],
) -> None:
    _, h = served
    _, bureau = h.org("天津市知识产权局（并发缓存）", "other", "city_bureau", district="hexi")
    uni, uni_key = h.org("天津并发缓存大学", "university", "supplier", district="nankai")
    sme, _ = h.org("并发缓存科技公司", "sme", "sme", district="binhai", is_sme=True)
    patents = [h.patent(uni_key, "天津并发缓存大学") for _ in range(8)]
    h.wait_synced()
    base = next(i for i in served_progress(h)["indicators"] if i["rule"] == "sme_patent_deals")

    def write(appno: str) -> int:
        with h.client(bureau) as c:
            r = c.post("/v1/deals", json=deal_body(patents=[appno], suppliers=[uni],
                                                     recipient=sme))  # fmt: skip
        return r.status_code

    def read(_: int) -> int:
        return len(served_progress(h)["indicators"])

    with ThreadPoolExecutor(8) as pool:
        writes = [pool.submit(write, a) for a in patents]
        reads = [pool.submit(read, i) for i in range(16)]
        assert [w.result() for w in writes] == [201] * len(patents)
        assert all(r.result() > 0 for r in reads)
    final = served_progress(h)
    assert final == scratch(h)
    now = next(i for i in final["indicators"] if i["rule"] == "sme_patent_deals")
    assert now["actual"] == base["actual"] + len(patents)


def test_the_progress_document_is_the_one_fastapi_would_write() -> None:
    """The route writes progress with orjson; the document must not change from what
    FastAPI's own encoder wrote before (awkward values: decimals, year keys, dates)."""
    from decimal import Decimal

    from shared.responses import FastJSONResponse

    awkward = {
        "amounts": {2021: Decimal("10"), 2022: Decimal("1.50"), 2023: Decimal("1E+2")},
        "as_of": date(2026, 11, 28),
        "parts": ({"share": 0.125, "none": None, "name": "滨海新区"}, [1, 2.5, True]),
        "empty": {},
    }
    want = json.loads(json.dumps(jsonable_encoder(awkward)))
    assert json.loads(FastJSONResponse(awkward).body) == want
    assert want["amounts"] == {"2021": 10, "2022": 1.5, "2023": 100}


def test_a_write_recomputes_only_the_rules_that_read_what_it_wrote(
    served: tuple[LiveServer, IndicatorsHandle],
) -> None:
    """Each rule's series is kept while the tables its statements read are unchanged: a
    pledge recomputes the plan's pledge rules and no other (the rules' own declarations of
    what they count say which those are)."""
    from services.indicators.domain.rules import RULES

    server, h = served
    cache: ProgressCache = server.app.state.progress_cache
    _, bureau = h.org("天津市知识产权局（分规则）", "other", "city_bureau", district="hexi")
    _, uni_key = h.org("天津分规则大学", "university", "supplier", district="nankai")
    sme, _ = h.org("分规则科技公司", "sme", "sme", district="binhai", is_sme=True)
    appno = h.patent(uni_key, "天津分规则大学", listed=True)
    h.wait_synced()
    rules = {i.rule for i in get_plan(PLAN).indicators if i.source == "computed" and i.rule}
    pledge_rules = {r for r in rules if RULES[r].record_kind == "pledge"}
    assert 0 < len(pledge_rules) < len(rules)

    before = served_progress(h)
    misses, hits = cache.series_misses, cache.series_hits
    assert served_progress(h) == scratch(h)  # whole-plan hit: no rule even looked at
    assert (cache.series_misses, cache.series_hits) == (misses, hits)

    pledge = {"registration_number": "ZY-分规则-1", "pledgor_org_id": sme, "lender": "天津银行",
              "amount": "5000000", "registered_on": f"{YEAR}-05-01", "asset_kind": "patent",
              "application_numbers": [appno]}  # fmt: skip
    with h.client(bureau) as c:
        r = c.post("/v1/pledges", json=pledge)
        assert r.status_code == 201, r.text
    now = served_progress(h)
    assert cache.series_misses - misses == len(pledge_rules)
    assert cache.series_hits - hits == len(rules) - len(pledge_rules)
    assert now == scratch(h)
    assert now != before  # the pledge counts

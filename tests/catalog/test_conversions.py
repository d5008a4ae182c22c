"""Deals from the indicators feed convert pooled patents, and cancelled deals return them."""

from __future__ import annotations

import asyncio

from services.catalog.domain.conversions import apply_deal_entries
from shared.db import Database
from tests.conftest import CatalogHandle
from tests.factories import offer, patent


def apply(catalog: CatalogHandle, *deals: dict) -> None:
    async def run() -> None:
        db = Database(catalog.database_url)
        try:
            async with db.sessionmaker() as s, s.begin():
                await apply_deal_entries(s, [{"entity": "deal", "payload": d} for d in deals])
        finally:
            await db.dispose()

    asyncio.run(run())


def test_deal_converts_and_cancellation_restores(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津转化大学")
    p1, p2 = patent("天津转化大学"), patent("天津转化大学")
    with catalog.client(key) as c:
        for p in (p1, p2):
            c.post("/v1/patents", json=p)
            c.post("/v1/listings", json={"application_number": p["application_number"], **offer()})
    nums = [p1["application_number"], p2["application_number"]]
    deal = {"id": "D-100", "kind": "licence", "status": "effective", "application_numbers": nums}
    second = {
        "id": "D-101",
        "kind": "licence",
        "status": "effective",
        "application_numbers": nums[:1],
    }
    apply(catalog, deal, second)
    with catalog.client() as c:
        got = [c.get(f"/v1/patents/{n}").json()["listing"] for n in nums]
        assert [g["status"] for g in got] == ["converted", "converted"]
        elig = c.get(f"/v1/patents/{nums[0]}/eligibility").json()
        assert "already converted (deal D-100, D-101)" in elig["reasons"]
    apply(catalog, {**deal, "status": "cancelled"})
    with catalog.client() as c:
        # p1 is still converted by D-101; p2 has no live deal and goes back to the pool.
        assert c.get(f"/v1/patents/{nums[0]}").json()["listing"]["status"] == "converted"
        assert c.get(f"/v1/patents/{nums[1]}").json()["listing"]["status"] == "listed"
    apply(catalog, {**second, "status": "cancelled"})
    apply(catalog, {**second, "status": "cancelled"})  # replaying an entry changes nothing
    with catalog.client() as c:
        assert c.get(f"/v1/patents/{nums[0]}").json()["listing"]["status"] == "listed"
        lid = c.get(f"/v1/patents/{nums[0]}").json()["listing"]["id"]
        history = [h["to"] for h in c.get(f"/v1/listings/{lid}/history").json()]
    assert history == ["listed", "converted", "listed"]


def test_a_converted_listing_is_published_with_its_number_and_owners(
    catalog: CatalogHandle,
) -> None:
    """The listing's feed entry names the patent's number and every owner (read in one
    narrow statement since the deal no longer loads whole patents)."""
    a_id, key_a = catalog.org("天津发布大学")
    b_id, key_b = catalog.org("天津发布研究院", kind="institute")
    body = patent("天津发布大学", patentees=["天津发布大学", "天津发布研究院"])
    number = body["application_number"]
    with catalog.client(key_a) as a, catalog.client(key_b) as b:
        assert a.post("/v1/patents", json=body).status_code == 201
        assert b.post("/v1/patents", json=body).status_code == 200  # the co-owner joins
        r = a.post("/v1/listings", json={"application_number": number, **offer()})
        assert r.status_code == 201, r.text
        lid = r.json()["id"]
    apply(catalog, {"id": "D-300", "status": "effective", "application_numbers": [number]})
    with catalog.client() as c:
        entries = c.get("/v1/feed", params={"after": 0, "limit": 1000}).json()["items"]
    last = [e for e in entries if e["entity"] == "listing" and e["entity_id"] == str(lid)][-1]
    assert last["payload"]["status"] == "converted"
    assert last["payload"]["application_number"] == number
    assert last["payload"]["owner_org_ids"] == sorted([a_id, b_id])

from __future__ import annotations

from tests.conftest import CatalogHandle
from tests.factories import offer, patent


def _pooled(catalog: CatalogHandle, org: str, **extra: object) -> tuple[str, dict, str]:
    _, key = catalog.org(org)
    body = patent(org, **extra)
    with catalog.client(key) as c:
        assert c.post("/v1/patents", json=body).status_code == 201
        r = c.post(
            "/v1/listings", json={"application_number": body["application_number"], **offer()}
        )
        assert r.status_code == 201, r.text
    return key, r.json(), body["application_number"]


def test_listing_lifecycle_and_history(catalog: CatalogHandle) -> None:
    key, listing, num = _pooled(catalog, "天津挂牌大学")
    assert listing["status"] == "listed" and listing["modes"] == [
        "assignment",
        "non_exclusive_licence",
    ]
    lid = listing["id"]
    with catalog.client(key) as c:
        r = c.post("/v1/listings", json={"application_number": num, **offer()})
        assert r.status_code == 409
        assert (
            c.patch(f"/v1/listings/{lid}", json={"status": "negotiating"}).json()["status"]
            == "negotiating"
        )
        r = c.patch(f"/v1/listings/{lid}", json={"status": "converted"})
        assert r.status_code == 409  # only a registered deal converts
        assert (
            c.patch(f"/v1/listings/{lid}", json={"status": "withdrawn"}).json()["status"]
            == "withdrawn"
        )
        r = c.post(
            "/v1/listings",
            json={"application_number": num, **offer(zero_price=True, price_cny=None)},
        )
        assert r.status_code == 201 and r.json()["id"] == lid and r.json()["zero_price"] is True
        history = c.get(f"/v1/listings/{lid}/history").json()
    assert [h["to"] for h in history] == ["listed", "negotiating", "withdrawn", "listed"]


def test_ineligible_patents_are_refused_with_reasons(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津失效大学")
    lapsed = patent("天津失效大学", legal_status="lapsed")
    old = patent(
        "天津失效大学",
        application_number="200510000001.0",
        application_date="2005-01-05",
        grant_date="2006-01-01",
    )
    from shared.appno import make_application_number

    old["application_number"] = make_application_number(2005, "2", 1)
    with catalog.client(key) as c:
        c.post("/v1/patents", json=lapsed)
        r = c.post("/v1/patents", json=old)
        assert r.status_code == 201, r.text
        for body, words in ((lapsed, "legal status: lapsed"), (old, "term ended")):
            r = c.post(
                "/v1/listings", json={"application_number": body["application_number"], **offer()}
            )
            assert r.status_code == 422
            assert any(words in e["reason"] for e in r.json()["errors"]), r.json()
        elig = c.get(f"/v1/patents/{lapsed['application_number']}/eligibility").json()
        assert elig["eligible"] is False


def test_offer_terms_are_validated(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津条款大学")
    body = patent("天津条款大学")
    with catalog.client(key) as c:
        c.post("/v1/patents", json=body)
        num = body["application_number"]
        r = c.post("/v1/listings", json={"application_number": num, "modes": ["licence-ish"]})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "modes[0]"
        r = c.post(
            "/v1/listings",
            json={"application_number": num, "modes": ["equity"], "zero_price": True},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "zero_price"
        r = c.post(
            "/v1/listings",
            json={"application_number": num, "modes": ["assignment"], "deferred_licence_fee": True},
        )
        assert r.json()["errors"][0]["field"] == "deferred_licence_fee"
        r = c.post(
            "/v1/listings",
            json={"application_number": num, "modes": ["assignment"], "negotiable": False},
        )
        assert r.json()["errors"][0]["field"] == "price_cny"


def test_legal_status_change_lapses_and_restores_listing(catalog: CatalogHandle) -> None:
    key, listing, num = _pooled(catalog, "天津状态大学")
    with catalog.client(key) as c:
        r = c.patch(f"/v1/patents/{num}/legal-status", json={"legal_status": "未缴年费"})
        assert r.status_code == 200 and r.json()["legal_status"] == "lapsed"
        assert r.json()["listing"]["status"] == "lapsed"
        assert "legal status: lapsed" in r.json()["listing"]["status_reason"]
        r = c.patch(f"/v1/patents/{num}/legal-status", json={"legal_status": "granted"})
        assert r.json()["listing"]["status"] == "listed"
    with catalog.client() as c:
        feed = c.get("/v1/feed", params={"entity": "listing", "limit": 5000}).json()["items"]
    states = [e["payload"]["status"] for e in feed if e["entity_id"] == str(listing["id"])]
    assert states == ["listed", "lapsed", "listed"]


def test_pool_filters(catalog: CatalogHandle) -> None:
    oid, _ = catalog.org("天津筛选大学", district="binhai")
    key, listing, num = _pooled(catalog, "天津筛选大学")
    with catalog.client(key) as c:
        c.patch(
            f"/v1/listings/{listing['id']}", json={"terms": offer(modes=["equity"], price_cny="1")}
        )
    with catalog.client() as c:
        got = c.get("/v1/listings", params={"district": "binhai", "mode": "equity"}).json()["items"]
        assert num in [i["application_number"] for i in got]
        got = c.get("/v1/listings", params={"district": "binhai", "mode": "assignment"}).json()[
            "items"
        ]
        assert num not in [i["application_number"] for i in got]
        got = c.get(
            "/v1/patents",
            params={"owner_kind": "university", "pool_status": "pooled", "owner": oid},
        ).json()["items"]
        assert [i["application_number"] for i in got] == [num]
        got = c.get("/v1/patents", params={"owner_kind": "soe", "owner": oid}).json()["items"]
        assert got == []

"""Pool migration: back-dated listings and withdrawals (bureau/admin, audited), bulk
listing with per-record results, strict filters, and the smaller record checks."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import asyncpg

from services.catalog.api.listings import STATISTICS_AFTER
from shared import bizdate
from shared.appno import check_char
from tests.conftest import CatalogHandle
from tests.factories import offer, patent


def _uploaded(
    catalog: CatalogHandle, org: str, n: int = 1, **extra: object
) -> tuple[str, list[str]]:
    _, key = catalog.org(org)
    numbers = []
    with catalog.client(key) as c:
        for _ in range(n):
            body = patent(org, **extra)
            r = c.post("/v1/patents", json=body)
            assert r.status_code == 201, r.text
            numbers.append(body["application_number"])
    return key, numbers


def _bureau(catalog: CatalogHandle) -> str:
    return catalog.org("天津市知识产权局(迁移)", kind="other", role="city_bureau")[1]


def test_back_dated_listing_and_withdrawal_by_the_bureau(catalog: CatalogHandle) -> None:
    key, [num] = _uploaded(catalog, "天津迁移大学")
    tomorrow = (bizdate.today() + timedelta(days=1)).isoformat()
    with catalog.client(key) as c:  # the owner may not back-date
        r = c.post("/v1/listings", json={"application_number": num, "listed_at": "2021-03-01",
                                         **offer()})  # fmt: skip
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "listed_at"
    with catalog.client(_bureau(catalog)) as c:
        r = c.post("/v1/listings", json={"application_number": num, "listed_at": tomorrow,
                                         **offer()})  # fmt: skip
        assert r.status_code == 422 and "future" in r.json()["errors"][0]["reason"]
        r = c.post("/v1/listings", json={"application_number": num, "listed_at": "2021-03-01",
                                         **offer()})  # fmt: skip
        assert r.status_code == 201, r.text
        listing = r.json()
        # first_listed_at is the start of 2021-03-01 in Tianjin
        assert listing["first_listed_at"].startswith("2021-02-28T16:00:00")
        lid = listing["id"]
        r = c.patch(f"/v1/listings/{lid}",
                    json={"status": "withdrawn", "effective_from": "2020-12-31"})  # fmt: skip
        assert r.status_code == 422  # before the listing began
        r = c.patch(f"/v1/listings/{lid}", json={"status": "withdrawn",
                    "effective_from": "2023-06-30", "reason": "学校撤回"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["status_since"].startswith("2023-06-29T16:00:00")
        history = c.get(f"/v1/listings/{lid}/history").json()
    assert [(h["to"], str(h["at"])[:10]) for h in history] == [
        ("listed", "2021-02-28"), ("withdrawn", "2023-06-29"),
    ]  # fmt: skip
    assert all("city_bureau" in h["recorded_by"] for h in history)
    assert all(h["recorded_at"][:4] == str(bizdate.today().year) for h in history)
    with catalog.client() as c:
        feed = c.get("/v1/feed", params={"entity": "listing", "limit": 5000}).json()["items"]
    mine = [e["payload"] for e in feed if e["entity_id"] == str(lid)]
    assert mine[-1]["status_since"].startswith("2023-06-29T16:00:00")


def test_bulk_listing_reports_each_record_and_is_idempotent(catalog: CatalogHandle) -> None:
    key, numbers = _uploaded(catalog, "天津批量挂牌大学", 5)
    _, [lapsed] = _uploaded(catalog, "天津批量挂牌大学", 1, legal_status="lapsed")
    _, [foreign] = _uploaded(catalog, "天津别家大学", 1)
    items = [{"application_number": n} for n in numbers]
    items[1]["terms"] = {"modes": ["open_licence"], "price_cny": "0", "negotiable": False}
    body = {
        "terms": offer(),
        "items": [*items, {"application_number": lapsed}, {"application_number": foreign},
                  {"application_number": numbers[0]}, {"application_number": "12345"},
                  {"application_number": numbers[2], "terms": {"modes": ["assignment"],
                   "use_first_pay_later": True}}],
    }  # fmt: skip
    with catalog.client(key) as c:
        r = c.post("/v1/listings/bulk", json=body)
        assert r.status_code == 200, r.text
        rep = r.json()
        statuses = [x["status"] for x in rep["results"]]
        assert statuses == ["listed", "listed", "listed", "listed", "listed", "not_eligible",
                            "rejected", "rejected", "rejected", "rejected"]  # fmt: skip
        assert "legal status: lapsed" in rep["results"][5]["errors"][0]["reason"]
        assert "not owned" in rep["results"][6]["errors"][0]["reason"]
        assert "repeated" in rep["results"][7]["errors"][0]["reason"]
        assert rep["results"][8]["errors"][0]["field"] == "application_number"
        assert "use_first_pay_later" in str(rep["results"][9]["errors"][0])
        assert "licence mode" in rep["results"][9]["errors"][0]["reason"]
        assert rep["summary"]["listed"] == 5 and rep["summary"]["total"] == 10
        got = c.get(f"/v1/patents/{numbers[1]}").json()["listing"]
        assert got["modes"] == ["open_licence"] and got["price_cny"] in ("0", "0.00", 0)
        # the same request again changes nothing and says so
        again = c.post("/v1/listings/bulk", json=body).json()
        assert [x["status"] for x in again["results"][:5]] == ["unchanged"] * 5
        assert [x["listing_id"] for x in again["results"][:5]] == [
            x["listing_id"] for x in rep["results"][:5]
        ]
        # new terms for one: updated
        body2 = {"terms": offer(price_cny="1"), "items": [{"application_number": numbers[0]}]}
        assert c.post("/v1/listings/bulk", json=body2).json()["results"][0]["status"] == "updated"


def test_bulk_listing_back_dated_by_the_bureau(catalog: CatalogHandle) -> None:
    key, numbers = _uploaded(catalog, "天津批量迁移大学", 3)
    body = {"terms": offer(), "listed_at": "2021-06-01",
            "items": [{"application_number": n} for n in numbers]}  # fmt: skip
    with catalog.client(key) as c:
        r = c.post("/v1/listings/bulk", json=body).json()
        assert {x["status"] for x in r["results"]} == {"rejected"}
        assert r["results"][0]["errors"][0]["field"] == "listed_at"
    with catalog.client(_bureau(catalog)) as c:
        r = c.post("/v1/listings/bulk", json=body).json()
        assert [x["status"] for x in r["results"]] == ["listed"] * 3
        got = c.get(f"/v1/listings/{r['results'][0]['listing_id']}").json()
        assert got["first_listed_at"].startswith("2021-05-31T16:00:00")
        months = c.get("/v1/stats/pool").json()["first_pooled_by_month"]
        assert months.get("2021-06", 0) >= 3 and "2021-05" not in months  # Tianjin months


def test_unknown_filter_values_are_422_and_chinese_names_work(catalog: CatalogHandle) -> None:
    oid, _ = catalog.org("天津南开筛选大学", district="nankai")
    key, [num] = _uploaded(catalog, "天津南开筛选大学")
    with catalog.client(key) as c:
        c.post("/v1/listings", json={"application_number": num, **offer()})
    with catalog.client() as c:
        for param, bad in (("pool_status", "foo"), ("district", "atlantis"),
                           ("patent_type", "gadget"), ("owner_kind", "alien"),
                           ("legal_status", "sleeping")):  # fmt: skip
            for path in ("/v1/patents", "/v1/listings"):
                r = c.get(path, params={param: bad})
                assert r.status_code == 422, (path, param, r.text)
                err = r.json()["errors"][0]
                assert err["field"] == param and bad in err["reason"]
        r = c.get("/v1/organisations", params={"district": "南开区", "q": "天津南开筛选大学"})
        assert [o["id"] for o in r.json()["items"]] == [oid]
        assert c.get("/v1/organisations", params={"kind": "alien"}).status_code == 422
        r = c.get("/v1/patents", params={"pool_status": "foo"})
        assert "listed" in r.json()["errors"][0]["reason"]
        for district in ("南开区", "nankai", "Nankai"):
            got = c.get("/v1/patents", params={"district": district, "owner": oid}).json()
            assert [p["application_number"] for p in got["items"]] == [num]
        got = c.get("/v1/patents", params={"patent_type": "发明", "owner": oid}).json()
        assert [p["application_number"] for p in got["items"]] == [num]


def test_twelve_digit_numbers_exist_from_2003_and_not_in_the_future(
    catalog: CatalogHandle,
) -> None:
    _, key = catalog.org("天津号码大学")
    next_year = bizdate.today().year + 1
    with catalog.client(key) as c:
        for year, words in ((1999, "before 2003"), (next_year, "future")):
            digits = f"{year}10012345"
            body = patent("天津号码大学", application_number=f"{digits}.{check_char(digits)}",
                          application_date=f"{year}-01-02", grant_date=None,
                          legal_status="pending")  # fmt: skip
            r = c.post("/v1/patents", json=body)
            assert r.status_code == 422, r.text
            assert any(words in e["reason"] for e in r.json()["errors"]), r.json()


def test_use_first_pay_later_needs_a_licence_mode(catalog: CatalogHandle) -> None:
    key, [num] = _uploaded(catalog, "天津先用后付大学")
    with catalog.client(key) as c:
        r = c.post("/v1/listings", json={"application_number": num, "modes": ["assignment"],
                                         "price_cny": "100", "use_first_pay_later": True})  # fmt: skip
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"].endswith("use_first_pay_later"), r.json()
        r = c.post("/v1/listings", json={"application_number": num,
                   "modes": ["assignment", "non_exclusive_licence"], "price_cny": "100",
                   "use_first_pay_later": True})  # fmt: skip
        assert r.status_code == 201, r.text


def test_other_methods_on_the_bulk_route_are_405(catalog: CatalogHandle) -> None:
    with catalog.client(catalog.admin_key) as c:
        for method in ("GET", "PATCH", "DELETE"):
            r = c.request(method, "/v1/listings/bulk")
            assert r.status_code == 405, (method, r.text)
            assert r.headers["allow"] == "POST"
        assert c.request("TRACE", "/v1/listings/1").headers["allow"] == "GET, PATCH"


def test_a_full_bulk_listing_request_fits_and_is_still_checked(catalog: CatalogHandle) -> None:
    """10,000 items, each with its own terms and date, pass the 1 MB limit of plain JSON
    routes; the route has its own limit but its body is checked like any JSON body."""
    key, [number] = _uploaded(catalog, "天津整批挂牌大学", 1)
    terms = {"modes": ["assignment", "non_exclusive_licence"], "price_cny": "50000.00",
             "negotiable": False, "note": "可面谈，提供技术指导" * 3}  # fmt: skip
    items = [{"application_number": number, "terms": terms, "listed_at": None}]
    items += [{"application_number": f"20231{i:07d}.X", "terms": terms} for i in range(9_999)]
    body = json.dumps({"items": items}, ensure_ascii=False).encode()
    assert len(body) > 1_048_576
    with catalog.client(key) as c:
        r = c.post("/v1/listings/bulk", content=body,
                   headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 200, r.text[:500]
        rep = r.json()
        assert rep["summary"]["total"] == 10_000 and rep["summary"]["listed"] == 1
        assert rep["results"][0]["status"] == "listed"
        assert {x["status"] for x in rep["results"][1:]} == {"rejected"}
        nul = body.replace("可面谈".encode(), "可\\u0000谈".encode(), 1)
        r = c.post("/v1/listings/bulk", content=nul, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "items[0].terms.note" in r.text


def test_a_big_bulk_listing_refreshes_the_planner_statistics(catalog: CatalogHandle) -> None:
    """Stale statistics (7 pooled listings estimated of 5,000) made PostgreSQL drive a
    filtered keyword search from the listings: 91 ms instead of 5 at 5k patents."""
    _, key = catalog.org("天津统计刷新大学")
    records = [patent("天津统计刷新大学") for _ in range(STATISTICS_AFTER)]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    with catalog.client(key) as c:
        r = c.post("/v1/patents/bulk", content=body,
                   headers={"content-type": "application/x-ndjson"})  # fmt: skip
        assert r.status_code == 200 and r.json()["summary"]["accepted"] == STATISTICS_AFTER
        before = analysed_at(catalog)
        items = [{"application_number": x["application_number"]} for x in records]
        r = c.post("/v1/listings/bulk", json={"terms": offer(), "items": items})
        assert r.status_code == 200 and r.json()["summary"]["listed"] == STATISTICS_AFTER
    if catalog.database_url.startswith("postgresql"):
        deadline = time.monotonic() + 30
        while analysed_at(catalog) == before:
            assert time.monotonic() < deadline, "listing statistics were not refreshed"
            time.sleep(0.1)


def analysed_at(catalog: CatalogHandle) -> object:
    """When `listing` was last analysed (PostgreSQL; None on SQLite, which has no such view)."""
    if not catalog.database_url.startswith("postgresql"):
        return None

    async def read() -> object:
        conn = await asyncpg.connect(catalog.database_url.replace("+asyncpg", ""))
        try:
            return await conn.fetchval(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'listing'"
            )
        finally:
            await conn.close()

    return asyncio.run(read())

"""The keyword search writes its page with pydantic-core directly; the bytes must be the
ones FastAPI writes for the same `PatentPage` returned from a route (its documented
response model): the same fields, order, number and date formats, and Chinese unescaped."""

from __future__ import annotations

import asyncio

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, serialize_response

from services.catalog import schemas
from services.catalog.api import patents as patents_api
from tests.conftest import CatalogHandle
from tests.factories import offer, patent


def fastapi_bytes(page: schemas.PatentPage) -> bytes:
    """What FastAPI makes of `page` returned from the search route."""
    route = next(
        r for r in patents_api.router.routes
        if isinstance(r, APIRoute) and r.path == "/v1/patents" and "GET" in r.methods
    )  # fmt: skip
    assert route.response_model is schemas.PatentPage  # the OpenAPI document still says so
    content = asyncio.run(serialize_response(field=route.response_field, response_content=page))
    return bytes(JSONResponse(content).body)


def test_the_search_page_is_the_json_fastapi_writes(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津页面大学")
    with catalog.client(key) as c:
        for i in range(3):
            body = patent("天津页面大学", title=f"一种页面测试的电池{i}")
            assert c.post("/v1/patents", json=body).status_code == 201
            if i:  # listed: a price (Decimal) and the listing's timestamps on the page
                r = c.post("/v1/listings", json={"application_number":
                                                 body["application_number"], **offer()})  # fmt: skip
                assert r.status_code == 201, r.text
        r = c.get("/v1/patents", params={"q": "页面测试", "limit": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    page = schemas.PatentPage.model_validate_json(r.content)
    assert len(page.items) == 2 and page.next_cursor  # a second page exists
    assert any(p.listing and p.listing.price_cny for p in page.items)
    assert r.content == fastapi_bytes(page)


def test_a_search_item_is_the_patent_as_fetched_without_its_claims(catalog: CatalogHandle) -> None:
    """The page is read as plain columns, not ORM objects: every field must still be the
    one a patent's own GET shows (listing, owners, dates, JSON lists), claims left out."""
    _, key = catalog.org("天津列项大学")
    _, co_key = catalog.org("天津列项研究院", kind="institute")
    numbers = []
    with catalog.client(key) as c, catalog.client(co_key) as co:
        for i in range(4):
            body = patent("天津列项大学", title=f"一种列项比对的传感器{i}", claims="1. 一种传感器。" * 50,
                          patentees=["天津列项大学", "天津列项研究院"])  # fmt: skip
            assert c.post("/v1/patents", json=body).status_code == 201
            numbers.append(body["application_number"])
        # the co-owner joins one; a listing (price, timestamps, modes) on two
        assert co.post("/v1/patents", json=body).status_code == 200
        for n in numbers[1:3]:
            r = c.post("/v1/listings", json={"application_number": n, **offer(note="面议")})
            assert r.status_code == 201, r.text
        page = c.get("/v1/patents", params={"q": "列项比对", "limit": 10}).json()
        singles = {n: c.get(f"/v1/patents/{n}").json() for n in numbers}
    assert len(page["items"]) == 4
    for item in page["items"]:
        single = singles[item["application_number"]]
        assert single["claims"] and item["claims"] is None
        assert item == {**single, "claims": None}
    assert sum(item["listing"] is not None for item in page["items"]) == 2
    assert max(len(item["owner_org_ids"]) for item in page["items"]) == 2

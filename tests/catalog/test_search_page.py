"""The keyword search writes its page with pydantic-core directly; the bytes must be the
ones FastAPI writes for the same `PatentPage` returned from a route (its documented
response model): the same fields, order, number and date formats, and Chinese unescaped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, serialize_response

from services.catalog import schemas
from services.catalog.api import patents as patents_api
from services.catalog.domain.keywords import KeywordIndex
from services.catalog.domain.search import (
    Filters,
    apply_sort,
    build_query,
    page_columns,
    search_rows,
)
from shared.db import Database
from tests.conftest import CatalogHandle, read_statements
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


def subplan_loops(plan: dict[str, Any]) -> list[int]:
    """How often each subquery of an EXPLAIN ANALYZE plan (JSON) ran."""
    own = [plan["Actual Loops"]] if plan.get("Subplan Name", "").startswith("SubPlan") else []
    return own + [n for child in plan.get("Plans", []) for n in subplan_loops(child)]


def test_a_search_page_reads_its_owners_in_its_own_statement_on_postgresql(
    catalog: CatalogHandle,
) -> None:
    """On PostgreSQL a page's owners come with its rows, one statement, and their subquery
    runs only for the rows the page returns, not for every row sorted before the LIMIT.
    SQLite would run it for every sorted row, so there they are a second statement."""
    org_id, key = catalog.org("天津同读大学")
    with catalog.client(key) as c:
        for i in range(12):
            body = patent("天津同读大学", title=f"一种同读测试的阀门{i}")
            assert c.post("/v1/patents", json=body).status_code == 201
    postgres = catalog.database_url.startswith("postgresql")

    async def run() -> None:
        db = Database(catalog.database_url)
        statements = read_statements(db)
        try:
            index = KeywordIndex(db.read_sessionmaker, recheck_after=60.0)
            await index.build()
            async with db.read_sessionmaker() as session:
                assert await index.current(session)
                statements.clear()
                found = await search_rows(session, Filters(q="同读测试"), "-id", None, 4, index)
                assert len(found.rows) == 4
                assert all(found.owners[row.id] == {org_id} for row in found.rows)
                selects = [sql for sql in statements if sql.lstrip().startswith("SELECT")]
                assert len(selects) == (1 if postgres else 2), statements
                if not postgres:
                    return
                # No keyword: every patent is sorted by date, then three are kept.
                stmt = page_columns(apply_sort(build_query(Filters(), None),
                                               "application_date", None), True).limit(3)  # fmt: skip
                conn = await session.connection()
                compiled = stmt.compile(dialect=conn.dialect)
                params = tuple(compiled.params[name] for name in compiled.positiontup or ())
                raw = await conn.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}", params
                )
                plan = raw.scalar_one()
                plan = (plan if isinstance(plan, list) else json.loads(plan))[0]
                assert plan["Plan"]["Actual Rows"] == 3
                assert subplan_loops(plan["Plan"]) and max(subplan_loops(plan["Plan"])) <= 3
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_patents_own_get_is_what_a_write_of_it_answers(catalog: CatalogHandle) -> None:
    """`GET /v1/patents/{number}` reads the patent as a search row (one statement on
    PostgreSQL); a write answers from the ORM objects. Both must show the same patent:
    claims, co-owners and listing included, and the same for a patent without a listing."""
    _, key = catalog.org("天津单读大学")
    _, co_key = catalog.org("天津单读研究院", kind="institute")
    with catalog.client(key) as c, catalog.client(co_key) as co:
        listed = patent("天津单读大学", title="一种单读比对的阀门", claims="1. 一种阀门。" * 20,
                        patentees=["天津单读大学", "天津单读研究院"])  # fmt: skip
        plain = patent("天津单读大学", title="一种单读比对的泵")
        for body in (listed, plain):
            assert c.post("/v1/patents", json=body).status_code == 201
        assert co.post("/v1/patents", json=listed).status_code == 200  # the co-owner joins
        number = listed["application_number"]
        r = c.post("/v1/listings", json={"application_number": number, **offer(note="面议")})
        assert r.status_code == 201, r.text
        for body in (listed, plain):
            n = body["application_number"]
            got = c.get(f"/v1/patents/{n}").json()
            # an unchanged status: the write answers the patent as it stands
            same = {"legal_status": got["legal_status"], "grant_date": got["grant_date"]}
            written = c.patch(f"/v1/patents/{n}/legal-status", json=same)
            assert written.status_code == 200, written.text
            assert got == written.json()
            assert got["claims"] == body.get("claims", got["claims"])
        assert len(c.get(f"/v1/patents/{number}").json()["owner_org_ids"]) == 2
        assert c.get(f"/v1/patents/{number}").json()["listing"]["status"] == "listed"
        absent = patent("天津单读大学")["application_number"]  # valid, never uploaded
        missing = c.get(f"/v1/patents/{absent}")
    assert missing.status_code == 404 and missing.json()["status"] == 404, missing.text

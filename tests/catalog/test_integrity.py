"""Issue 9, failure handling: only unique-key races are "409, retry"; any other integrity
error is a bug — a 500 logged with the request id — and values the database cannot store
are a 422."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import CatalogHandle
from tests.factories import offer, patent
from tests.hostile import refusal_rule, run_sql


def test_concurrent_creates_of_one_patent_give_one_201_and_no_500(
    catalog: CatalogHandle,
) -> None:
    org_id, key = catalog.org("天津并发测试大学")
    for _ in range(3):  # a few rounds: the race is real, its interleaving is not fixed
        body = patent("天津并发测试大学")

        def post(body: dict[str, object]) -> int:
            with catalog.client(key) as c:
                return c.post("/v1/patents", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, [body] * 8))
        assert statuses.count(201) == 1, statuses
        assert set(statuses) <= {201, 200, 409}, statuses
        with catalog.client() as c:
            r = c.get("/v1/patents", params={"owner": org_id, "limit": 200})
            numbers = [p["application_number"] for p in r.json()["items"]]
        assert numbers.count(body["application_number"]) == 1


@pytest.fixture
def bundle_check(catalog: CatalogHandle) -> object:
    """A real non-unique integrity rule on the bundle table: names may not start with
    'X' (a CHECK constraint on PostgreSQL, an ABORT trigger on SQLite)."""
    add, drop = refusal_rule(catalog.database_url, "bundle", "name", "X")
    run_sql(catalog.database_url, add)
    yield None
    run_sql(catalog.database_url, drop)


def test_a_non_unique_integrity_error_is_a_500_with_the_request_id(
    catalog: CatalogHandle, bundle_check: object, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = catalog.org("天津约束测试大学")
    with catalog.client(key) as c:
        numbers = []
        for _ in range(2):
            body = patent("天津约束测试大学")
            assert c.post("/v1/patents", json=body).status_code == 201
            numbers.append(body["application_number"])
            r = c.post("/v1/listings", json={"application_number": numbers[-1], **offer()})
            assert r.status_code == 201, r.text
        with caplog.at_level(logging.ERROR, logger="tjp.errors"):
            r = c.post(
                "/v1/bundles",
                json={"name": "X 打包", "application_numbers": numbers},
                headers={"x-request-id": "rid-integrity-1"},
            )
        assert r.status_code == 500, r.text
        assert r.json()["request_id"] == "rid-integrity-1"
        assert any("rid=rid-integrity-1" in rec.getMessage() for rec in caplog.records)
        # The same request without the broken rule: the bundle is made, so nothing stuck.
        r = c.post("/v1/bundles", json={"name": "正常打包", "application_numbers": numbers})
        assert r.status_code == 201, r.text
        # And the unique rule still says 409.
        r = c.post("/v1/bundles", json={"name": "正常打包", "application_numbers": numbers})
        assert r.status_code == 409, r.text

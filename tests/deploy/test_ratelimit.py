"""Per-key rate limits on writes and matching: 429 problem+json with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.catalog.settings import CatalogSettings
from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS
from shared.db import upgrade
from shared.testing import fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.deploy.conftest import scrape, value
from tests.factories import patent
from tests.matching.conftest import MatchingHandle

WRITES = "3 per 2 seconds"
MATCHING = "2 per 2 seconds"


@pytest.fixture(scope="module")
def limited(
    db_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CatalogHandle, MatchingHandle]]:
    with (
        fresh_database("sqlite", db_dir, "catalog") as catalog_url,
        fresh_database("sqlite", db_dir, "matching") as matching_url,
    ):
        server, admin = start_catalog(catalog_url, rate_limit_writes=WRITES)
        catalog = CatalogHandle(server.url, catalog_url, admin)
        upgrade(MATCHING_MIGRATIONS, matching_url)
        matching = MatchingHandle(
            catalog, matching_url, tmp_path_factory.mktemp("index"),
            extra={"rate_limit_matching": MATCHING},
        )  # fmt: skip
        matching.start()
        try:
            yield catalog, matching
        finally:
            matching.stop()
            server.stop()


def test_writes_past_the_limit_get_429_with_retry_after(
    limited: tuple[CatalogHandle, MatchingHandle],
) -> None:
    catalog, _ = limited
    # Each organisation is two writes by the admin key (the organisation, its key).
    _, key_a = catalog.org("限流甲大学")
    time.sleep(2.1)  # let the admin's writes age out of the window
    _, key_b = catalog.org("限流乙大学")
    with catalog.client(key_a) as a, catalog.client(key_b) as b:
        codes = [a.post("/v1/patents", json=patent("限流甲大学")).status_code for _ in range(3)]
        assert codes == [201, 201, 201]
        refused = a.post("/v1/patents", json=patent("限流甲大学"))
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 2
        body = refused.json()
        assert body["status"] == 429 and body["retry_after"] == wait
        assert "3 per 2 second" in body["detail"]
        assert refused.headers["x-request-id"]
        # Another key is not held back, and reads are not limited at all.
        assert b.post("/v1/patents", json=patent("限流乙大学")).status_code == 201
        assert all(a.get("/v1/patents").status_code == 200 for _ in range(6))
        # The refused write changed nothing: a's patents are the three that went through.
        mine = a.get("/v1/patents", params={"limit": 50}).json()
        assert sum(1 for p in mine["items"] if "限流甲大学" in str(p)) == 3
        time.sleep(wait)
        assert a.post("/v1/patents", json=patent("限流甲大学")).status_code == 201
    assert value(scrape(catalog.url), "tjp_rate_limited_total", limit="writes") == 1


def test_matching_is_limited_per_caller(limited: tuple[CatalogHandle, MatchingHandle]) -> None:
    _, matching = limited
    q = {"text": "锂离子电池", "pooled_only": False}
    with httpx.Client(base_url=matching.url, timeout=30) as c:
        assert [c.post("/v1/match", json=q).status_code for _ in range(2)] == [200, 200]
        r = c.post("/v1/match", json=q)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "匹配请求过多" in r.json()["detail"]  # Chinese by default, like every problem
        r = c.post("/v1/match", json=q, headers={"Accept-Language": "en"})
        assert r.status_code == 429 and "matching requests" in r.json()["detail"]
        # Other routes of the service are not matching routes.
        assert c.get("/v1/index").status_code == 200
    assert value(scrape(matching.url), "tjp_rate_limited_total", limit="matching") == 2


def test_limits_are_off_unless_configured_and_typos_fail_at_start() -> None:
    assert CatalogSettings().rate_limit_writes == ""
    with pytest.raises(ValueError, match="rate limit"):
        CatalogSettings(rate_limit_writes="three a minute")

"""Issue 9, defects 4 and 9c: a catalog outage. Authenticated writes in matching and
indicators answer 503 with Retry-After (not 500), public reads keep working, `/readyz`
says 503 while the feed consumers keep failing, and everything recovers when the catalog
comes back on the same port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.catalog.main import create_app as create_catalog_app
from services.catalog.settings import CatalogSettings
from services.indicators.main import create_app as create_indicators_app
from services.indicators.settings import IndicatorsSettings
from services.matching.main import create_app as create_matching_app
from services.matching.settings import MatchingSettings
from shared.testing import LiveServer, fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.indicators.conftest import deal_body


class Platform:
    def __init__(self, db_dir: Path, engine: str, stack: Any) -> None:
        self.catalog_db = stack.enter_context(fresh_database(engine, db_dir, "cat"))
        server, admin = start_catalog(self.catalog_db)
        self.catalog_server = server
        self.catalog = CatalogHandle(server.url, self.catalog_db, admin)
        self.port = server.port
        common = {"catalog_url": server.url, "feed_idle_interval": 0.05}
        ind_db = stack.enter_context(fresh_database(engine, db_dir, "ind"))
        self.indicators = LiveServer(
            create_indicators_app(IndicatorsSettings(database_url=ind_db, **common))
        ).start()
        match_db = stack.enter_context(fresh_database(engine, db_dir, "match"))
        self.matching = LiveServer(
            create_matching_app(
                MatchingSettings(
                    database_url=match_db, index_dir=str(db_dir / f"index-{engine}"), **common
                )
            )
        ).start()

    def stop_catalog(self) -> None:
        self.catalog_server.stop()

    def restart_catalog(self) -> None:
        app = create_catalog_app(CatalogSettings(database_url=self.catalog_db))
        self.catalog_server = LiveServer(app, port=self.port).start()


@pytest.fixture(scope="module")
def platform(engine: str, db_dir: Path) -> Iterator[Platform]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        p = Platform(db_dir, engine, stack)
        try:
            yield p
        finally:
            p.indicators.stop()
            p.matching.stop()
            p.catalog_server.stop()


def wait_ready(url: str, want: int, timeout: float = 30) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/readyz", timeout=10)
        if r.status_code == want:
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, (want, r.status_code, r.text)
        time.sleep(0.1)


def test_a_catalog_outage_is_503_with_retry_after_and_reads_keep_working(
    platform: Platform,
) -> None:
    import httpx

    ready = wait_ready(platform.indicators.url, 200)
    assert ready["status"] == "ok"
    assert wait_ready(platform.matching.url, 200)["status"] == "ok"
    sme_id, sme_key = platform.catalog.org("停机测试公司", kind="sme", role="sme",
                                           district="binhai")  # fmt: skip
    _, bureau_key = platform.catalog.org("停机测试局", kind="other", role="city_bureau",
                                         district="hexi")  # fmt: skip
    need = {"title": "锂电池正极材料循环寿命提升", "description": "提高循环稳定性的技术",
            "modes": ["assignment"], "industry": "1.2"}  # fmt: skip
    platform.stop_catalog()
    try:
        r = httpx.post(f"{platform.matching.url}/v1/needs", json=need,
                       headers={"Authorization": f"Bearer {sme_key}", "Accept-Language": "en"},
                       timeout=30)  # fmt: skip
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) > 0
        assert "catalog" in r.json()["detail"]
        body = deal_body(patents=["202110123456.7"], suppliers=[1], recipient=sme_id)
        r = httpx.post(f"{platform.indicators.url}/v1/deals", json=body,
                       headers={"Authorization": f"Bearer {bureau_key}"}, timeout=30)  # fmt: skip
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        # Public reads need no key and keep working.
        assert httpx.get(f"{platform.indicators.url}/v1/plans", timeout=30).status_code == 200
        assert httpx.get(f"{platform.matching.url}/v1/index", timeout=30).status_code == 200
        # The feed consumers keep failing: not ready.
        for url in (platform.indicators.url, platform.matching.url):
            ready = wait_ready(url, 503)
            assert ready["status"] == "unavailable"
            assert ready["catalog_feed"].startswith("error: ")
    finally:
        platform.restart_catalog()
    assert wait_ready(platform.indicators.url, 200)["status"] == "ok"
    assert wait_ready(platform.matching.url, 200)["status"] == "ok"
    r = httpx.post(f"{platform.matching.url}/v1/needs", json=need,
                   headers={"Authorization": f"Bearer {sme_key}"}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text


def test_readyz_says_ok_when_ready(platform: Platform) -> None:
    import httpx

    for url in (platform.catalog.url, platform.indicators.url, platform.matching.url):
        r = httpx.get(f"{url}/readyz", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text

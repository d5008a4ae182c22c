"""The three services live on SQLite, wired together, with a little data to fuzz."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS
from shared.db import upgrade
from shared.testing import fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.factories import offer, patent
from tests.indicators.conftest import start_indicators
from tests.matching.conftest import MatchingHandle


@dataclass
class Platform:
    urls: dict[str, str]
    keys: dict[str, str]


@pytest.fixture(scope="module")
def platform(db_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with (
        fresh_database("sqlite", db_dir, "catalog") as catalog_url,
        fresh_database("sqlite", db_dir, "matching") as matching_url,
        fresh_database("sqlite", db_dir, "indicators") as indicators_url,
    ):
        server, admin = start_catalog(catalog_url)
        catalog = CatalogHandle(server.url, catalog_url, admin)
        _, university = catalog.org("天津模糊测试大学")
        _, sme = catalog.org("天津模糊测试企业", "sme", "sme")
        _, bureau = catalog.org("天津市知识产权局", "other", "city_bureau", district="hexi")
        with catalog.client(university) as c:
            for _ in range(3):
                p = patent("天津模糊测试大学")
                assert c.post("/v1/patents", json=p).status_code == 201
                body = {"application_number": p["application_number"], **offer()}
                assert c.post("/v1/listings", json=body).status_code == 201
        upgrade(MATCHING_MIGRATIONS, matching_url)
        matching = MatchingHandle(catalog, matching_url, tmp_path_factory.mktemp("index"))
        matching.start()
        indicators_server, indicators = start_indicators(catalog, indicators_url)
        try:
            yield Platform(
                urls={
                    "catalog": catalog.url,
                    "matching": matching.url,
                    "indicators": indicators.url,
                },
                keys={"catalog": university, "matching": sme, "indicators": bureau},
            )
        finally:
            indicators_server.stop()
            matching.stop()
            server.stop()

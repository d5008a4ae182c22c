"""The whole platform live on loopback: catalog (following the indicators feed), matching,
indicators and the portal, each a real uvicorn server, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.indicators.main import create_app as create_indicators_app
from services.indicators.settings import IndicatorsSettings
from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS
from services.portal.main import create_app as create_portal_app
from services.portal.settings import PortalSettings
from shared.db import upgrade
from shared.testing import LiveServer, free_port, fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.matching.conftest import MatchingHandle

SYNC_UPLOAD_LIMIT = 5  # larger uploads become background jobs (the job histogram)


@dataclass
class Live:
    catalog: CatalogHandle
    matching: MatchingHandle
    indicators_url: str
    portal_url: str
    servers: list[Any] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        return {
            "catalog": self.catalog.url,
            "matching": self.matching.url,
            "indicators": self.indicators_url,
            "portal": self.portal_url,
        }


@pytest.fixture(scope="module")
def live(db_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    indicators_port = free_port()
    with (
        fresh_database("sqlite", db_dir, "catalog") as catalog_url,
        fresh_database("sqlite", db_dir, "matching") as matching_url,
        fresh_database("sqlite", db_dir, "indicators") as indicators_url,
    ):
        server, admin = start_catalog(
            catalog_url,
            indicators_url=f"http://127.0.0.1:{indicators_port}",
            sync_upload_limit=SYNC_UPLOAD_LIMIT,
        )
        catalog = CatalogHandle(server.url, catalog_url, admin)
        upgrade(MATCHING_MIGRATIONS, matching_url)
        matching = MatchingHandle(catalog, matching_url, tmp_path_factory.mktemp("index"))
        matching.start()
        indicators = LiveServer(
            create_indicators_app(
                IndicatorsSettings(
                    database_url=indicators_url,
                    catalog_url=catalog.url,
                    matching_url=matching.url,
                    feed_idle_interval=0.05,
                )
            ),
            port=indicators_port,
        ).start()
        portal = LiveServer(
            create_portal_app(
                PortalSettings(
                    catalog_url=catalog.url,
                    matching_url=matching.url,
                    indicators_url=indicators.url,
                    upload_dir=str(tmp_path_factory.mktemp("uploads")),
                )
            )
        ).start()
        try:
            yield Live(catalog, matching, indicators.url, portal.url)
        finally:
            portal.stop()
            indicators.stop()
            matching.stop()
            server.stop()


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics as {(sample name, labels): value}, parsed by prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)

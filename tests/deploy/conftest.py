"""The whole platform live on loopback: catalog (following the indicators feed), matching,
indicators and the portal, each a real uvicorn server, on SQLite."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.catalog.main import create_app as create_catalog_app
from services.catalog.settings import CatalogSettings
from services.indicators.main import create_app as create_indicators_app
from services.indicators.settings import IndicatorsSettings
from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS
from services.portal.main import create_app as create_portal_app
from services.portal.settings import PortalSettings
from shared.db import upgrade
from shared.testing import LiveServer, bound_socket, free_port, fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.matching.conftest import MatchingHandle

SYNC_UPLOAD_LIMIT = 5  # larger uploads become background jobs (the job histogram)


@dataclass
class Live:
    catalog: CatalogHandle
    matching: MatchingHandle
    indicators_url: str
    portal_url: str

    @property
    def urls(self) -> dict[str, str]:
        return {
            "catalog": self.catalog.url,
            "matching": self.matching.url,
            "indicators": self.indicators_url,
            "portal": self.portal_url,
        }


@contextmanager
def platform(urls: dict[str, str], work: Path, admin_key: str | None = None) -> Iterator[Live]:
    """Start the four services on the given databases ({service: database url}); the
    catalog is migrated and given an admin key unless `admin_key` names an existing one."""
    indicators_sock = bound_socket()  # the catalog is told the port before indicators starts
    indicators_port = int(indicators_sock.getsockname()[1])
    catalog_settings: dict[str, Any] = {
        "indicators_url": f"http://127.0.0.1:{indicators_port}",
        "sync_upload_limit": SYNC_UPLOAD_LIMIT,
    }
    if admin_key is None:
        server, admin_key = start_catalog(urls["catalog"], **catalog_settings)
    else:
        server = LiveServer(
            create_catalog_app(CatalogSettings(database_url=urls["catalog"], **catalog_settings))
        ).start()
    catalog = CatalogHandle(server.url, urls["catalog"], admin_key)
    stops = [server.stop]
    try:
        yield from _rest(urls, work, catalog, indicators_sock, stops)
    finally:
        for stop in reversed(stops):
            stop()


def _rest(
    urls: dict[str, str], work: Path, catalog: CatalogHandle, indicators_sock: socket.socket,
    stops: list[Any],
) -> Iterator[Live]:  # fmt: skip
    upgrade(MATCHING_MIGRATIONS, urls["matching"])
    index_dir = work / f"index-{free_port()}"
    index_dir.mkdir(parents=True)
    matching = MatchingHandle(catalog, urls["matching"], index_dir)
    matching.start()
    stops.append(matching.stop)
    indicators = LiveServer(
        create_indicators_app(
            IndicatorsSettings(
                database_url=urls["indicators"],
                catalog_url=catalog.url,
                matching_url=matching.url,
                feed_idle_interval=0.05,
            )
        ),
        sock=indicators_sock,
    ).start()
    stops.append(indicators.stop)
    portal = LiveServer(
        create_portal_app(
            PortalSettings(
                catalog_url=catalog.url,
                matching_url=matching.url,
                indicators_url=indicators.url,
                upload_dir=str(work / "uploads"),
            )
        )
    ).start()
    stops.append(portal.stop)
    yield Live(catalog, matching, indicators.url, portal.url)


@pytest.fixture(scope="module")
def live(db_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with (
        fresh_database("sqlite", db_dir, "catalog") as catalog_url,
        fresh_database("sqlite", db_dir, "matching") as matching_url,
        fresh_database("sqlite", db_dir, "indicators") as indicators_url,
        platform(
            {"catalog": catalog_url, "matching": matching_url, "indicators": indicators_url},
            tmp_path_factory.mktemp("live"),
        ) as running,
    ):
        yield running


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


def wait_for(pred: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)

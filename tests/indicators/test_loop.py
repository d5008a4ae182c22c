"""Closing the loop: the catalog follows this service's deal feed, so pool and ledger agree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.indicators.main import create_app
from services.indicators.settings import IndicatorsSettings
from shared.testing import LiveServer, bound_socket, fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.indicators.conftest import IndicatorsHandle


@pytest.fixture(scope="module")
def pair(engine: str, db_dir: Path) -> Iterator[IndicatorsHandle]:
    """A catalog that follows the indicators feed, and the indicators service."""
    sock = bound_socket()  # the catalog is told the port before indicators starts
    port = int(sock.getsockname()[1])
    with (
        fresh_database(engine, db_dir, "loopcat") as cat_url,
        fresh_database(engine, db_dir, "loopind") as ind_url,
    ):
        cat_server, admin_key = start_catalog(cat_url, indicators_url=f"http://127.0.0.1:{port}")
        catalog = CatalogHandle(cat_server.url, cat_url, admin_key)
        app = create_app(
            IndicatorsSettings(
                database_url=ind_url, catalog_url=catalog.url, feed_idle_interval=0.05
            )
        )
        server = LiveServer(app, sock=sock).start()
        try:
            yield IndicatorsHandle(server.url, ind_url, catalog)
        finally:
            server.stop()
            cat_server.stop()


def listing_status(h: IndicatorsHandle, appno: str) -> str:
    with h.catalog.client() as c:
        return str(c.get(f"/v1/patents/{appno}").json()["listing"]["status"])


def wait_for(pred: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_deals_convert_pooled_patents_and_cancellation_returns_them(
    pair: IndicatorsHandle,
) -> None:
    h = pair
    uni, key = h.org("天津闭环大学", "university", "supplier", district="nankai")
    sme, _ = h.org("闭环科技公司", "sme", None, district="dongli", is_sme=True)
    _, bureau = h.org("闭环市局", "other", "city_bureau", district="hexi")
    a, b = (h.patent(key, "天津闭环大学", listed=True) for _ in range(2))
    h.wait_synced()
    d = h.deal(bureau, patents=[a, b], suppliers=[uni], recipient=sme, kind="assignment")
    wait_for(lambda: listing_status(h, a) == "converted" and listing_status(h, b) == "converted")
    h.wait_synced()  # the catalog's listing changes come back on its feed
    with h.client() as c:
        wait_for(lambda: c.get("/v1/consistency").json()["consistent"])
        from services.indicators.domain.common import today

        y = today().year
    prog = h.progress("city-001", y, district="nankai")
    assert (prog["C03"]["actual"], prog["C03B"]["actual"]) == (2, 0)  # ever 2, now 0
    with h.client(bureau) as c:
        assert c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "合同解除"}).status_code == 200
    wait_for(lambda: listing_status(h, a) == "listed" and listing_status(h, b) == "listed")
    h.wait_synced()
    with h.client() as c:
        wait_for(lambda: c.get("/v1/consistency").json()["consistent"])
    prog = h.progress("city-001", y, district="nankai")
    assert (prog["C03"]["actual"], prog["C03B"]["actual"]) == (2, 2)

"""Issue 9, failure handling: the indicators service asks the catalog about organisations
and patents it has not seen yet — never while its write transaction is open (a slow
catalog would hold the database's locks; on SQLite the only write lock).

Each catalog lookup is observed with an httpx event hook on the service's own client,
which asks the database itself whether a transaction is open at that moment: SQLite
refuses a second writer (`BEGIN IMMEDIATE` with no wait), PostgreSQL lists the
connection as `idle in transaction`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from shared.testing import fresh_database
from tests.conftest import CatalogHandle
from tests.indicators.conftest import IndicatorsHandle, deal_body, start_indicators


def transaction_open(database_url: str) -> Any:
    u = make_url(database_url)
    if u.get_backend_name() == "sqlite":

        async def sqlite_check() -> bool:
            conn = sqlite3.connect(u.database, timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True  # "database is locked": someone holds the write lock
            finally:
                conn.close()

        return sqlite_check

    async def pg_check() -> bool:
        conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                     database=u.database)  # fmt: skip
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
                u.database,
            )
            return bool(n)
        finally:
            await conn.close()

    return pg_check


@pytest.fixture(scope="module")
def observed(catalog: CatalogHandle, engine: str, db_dir: Path) -> Iterator[tuple[Any, list]]:
    """An indicators service that follows no feed (so every party is a catalog lookup),
    with a hook recording, for each lookup, whether a transaction was open."""
    with fresh_database(engine, db_dir, "ind_tx") as url:
        server, handle = start_indicators(catalog, url, follow_feeds=False)
        seen: list[tuple[str, bool]] = []
        check = transaction_open(url)

        async def hook(request: httpx.Request) -> None:
            if request.method == "GET" and request.url.path.startswith(
                ("/v1/organisations/", "/v1/patents/")
            ):
                seen.append((request.url.path, await check()))

        app = server.server.config.app
        app.state.lookup.client.event_hooks["request"].append(hook)
        try:
            yield handle, seen
        finally:
            server.stop()


def test_catalog_lookups_happen_before_the_transaction(
    observed: tuple[IndicatorsHandle, list[tuple[str, bool]]],
) -> None:
    h, seen = observed
    uni, uni_key = h.org("天津事务测试大学", district="nankai")
    sme, _ = h.org("事务测试科技公司", "sme", "sme", district="hedong")
    _, bureau = h.org("事务测试市局", "other", "city_bureau", district="hexi")
    p = h.patent(uni_key, "天津事务测试大学")
    deal = h.deal(bureau, patents=[p], suppliers=[uni], recipient=sme)
    assert deal["qualifies"] is True
    paths = [path for path, _ in seen]
    assert f"/v1/organisations/{uni}" in paths and f"/v1/organisations/{sme}" in paths
    assert f"/v1/patents/{p}" in paths
    assert [path for path, open_ in seen if open_] == []
    # The batch route and the event routes look up the same way.
    seen.clear()
    other, _ = h.org("事务测试二号公司", "sme", "sme", district="hedong")
    with h.client(bureau) as c:
        r = c.post("/v1/deals/batch", json=[deal_body(patents=[p], suppliers=[uni],
                                                      recipient=other)])  # fmt: skip
        assert r.status_code == 200 and len(r.json()["created"]) == 1, r.text
    assert [path for path, _ in seen] == [f"/v1/organisations/{other}"]
    assert [path for path, open_ in seen if open_] == []

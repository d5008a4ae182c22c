"""Issue 9, failure handling: a feed entry the consumer cannot apply is parked after a
bounded number of tries, the entries after it are applied, `/readyz` says degraded,
`/metrics` counts it, and an admin replays it once its cause is fixed. The poison is real:
the indicators database refuses the entry (a CHECK constraint on PostgreSQL, an ABORT
trigger on SQLite), as a schema drift or a bad deploy would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from services.indicators.models import Patent
from shared.db import Database
from tests.hostile import refusal_rule, run_sql
from tests.indicators.conftest import IndicatorsHandle, _append, new_appno


async def _patent(url: str, appno: str) -> Patent | None:
    db = Database(url)
    try:
        async with db.sessionmaker() as s:
            return await s.scalar(select(Patent).where(Patent.application_number == appno))
    finally:
        await db.dispose()


@pytest.fixture
def refuse_poison(indicators: IndicatorsHandle) -> Iterator[list[str]]:
    """Make the indicators database refuse patents titled 'POISON…'; return the SQL that
    lifts the rule (the operator's fix)."""
    add, lift = refusal_rule(indicators.database_url, "patent", "title", "POISON")
    run_sql(indicators.database_url, add)
    yield lift
    run_sql(indicators.database_url, lift)


def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_a_poison_entry_is_parked_the_rest_applied_and_replayed(
    indicators: IndicatorsHandle, refuse_poison: list[str]
) -> None:
    h = indicators
    uni, _ = h.org("天津毒丸测试大学")
    h.wait_synced()
    poison_no = new_appno()
    poison = {
        "id": 990_000_001, "application_number": poison_no, "publication_number": None,
        "patent_type": "invention", "title": f"POISON {poison_no}", "abstract": "",
        "claims": None, "ipc_codes": [], "main_ipc": None, "industries": ["1.2"],
        "patentees": [], "inventors": [], "owner_org_ids": [uni],
        "application_date": "2019-03-01", "grant_date": "2020-06-01",
        "expiry_date": "2039-03-01", "legal_status": "granted", "version": 1,
    }  # fmt: skip
    asyncio.run(_append(h.catalog.database_url, [("patent", str(poison["id"]), "upsert", poison)]))
    after = h.seed_patent([uni])
    head = h.catalog_feed_head()

    with h.client() as c:
        # Parked, and the consumer went on past it to the head of the feed.
        ready = wait_for(lambda: (r := c.get("/readyz")).json()["catalog_feed"]
                         == f"degraded: ok at {head}, 1 entries parked" and r)  # fmt: skip
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["catalog_feed"] == f"degraded: ok at {head}, 1 entries parked"
        metrics = c.get("/metrics").text
        assert 'tjp_feed_parked_open{source="catalog"} 1' in metrics
        assert 'tjp_feed_parked_total{source="catalog"} 1' in metrics
    # The entry after the poison was applied; the poison was not.
    assert asyncio.run(_patent(h.database_url, after["application_number"])) is not None
    assert asyncio.run(_patent(h.database_url, poison_no)) is None

    admin = h.catalog.admin_key
    _, uni_key = h.catalog.orgs["天津毒丸测试大学"]
    with h.client(uni_key) as c:
        assert c.get("/v1/feed/parked").status_code == 403
    with h.client(admin) as c:
        parked = c.get("/v1/feed/parked").json()
        assert len(parked) == 1
        item = parked[0]
        assert item["entity"] == "patent" and item["entity_id"] == str(poison["id"])
        assert item["attempts"] == 3 and item["error"]
        # Replaying before the cause is fixed fails and says why; it stays parked.
        r = c.post(f"/v1/feed/parked/{item['id']}/replay")
        assert r.status_code == 200 and r.json()["status"] == "failed", r.text
        assert len(c.get("/v1/feed/parked").json()) == 1
        run_sql(h.database_url, refuse_poison)  # the operator fixes the cause
        r = c.post(f"/v1/feed/parked/{item['id']}/replay")
        assert r.json()["status"] == "replayed", r.text
        assert c.get("/v1/feed/parked").json() == []
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        assert 'tjp_feed_parked_open{source="catalog"} 0' in c.get("/metrics").text
    patent = asyncio.run(_patent(h.database_url, poison_no))
    assert patent is not None and patent.title == f"POISON {poison_no}"

"""The replica takes an organisation's dated timeline from the catalog feed: versions
valid from each effective day (Tianjin time), replaced idempotently."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from services.indicators.domain.ledger import party_at
from services.indicators.domain.replica import apply_org
from services.indicators.main import MIGRATIONS
from services.indicators.models import OrgVersion
from shared.db import Database, upgrade
from shared.testing import fresh_database


def payload(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    now = timeline[-1]
    return {"id": 77, "kind": now["kind"], "name": "某科技有限公司", "district": now["district"],
            "province": None, "in_tianjin": now["district"] is not None, "is_sme": now["is_sme"],
            "updated_at": "2026-11-27T07:00:00+00:00", "timeline": timeline}  # fmt: skip


FIRST = {"effective_from": None, "kind": "sme", "name": "某科技有限公司", "district": "binhai",
         "in_tianjin": True, "is_sme": True}  # fmt: skip
OUTGROWN = {**FIRST, "effective_from": "2022-07-01", "kind": "enterprise", "is_sme": False}


async def scenario(url: str) -> list[Any]:
    db = Database(url)
    seen: list[Any] = []
    try:
        async with db.sessionmaker() as s, s.begin():
            await apply_org(s, payload([FIRST]))
        async with db.sessionmaker() as s, s.begin():
            await apply_org(s, payload([FIRST, OUTGROWN]))
            await apply_org(s, payload([FIRST, OUTGROWN]))  # the same entry again: no change
        async with db.sessionmaker() as s:
            for day in (date(2021, 5, 1), date(2022, 6, 30), date(2022, 7, 1), date(2025, 1, 1)):
                seen.append((await party_at(s, 77, day)).is_sme)
            seen.append(await s.scalar(select(func.count()).select_from(OrgVersion)))
    finally:
        await db.dispose()
    return seen


def test_versions_follow_the_effective_dates_not_arrival(engine: str, db_dir: Path) -> None:
    with fresh_database(engine, db_dir, "timeline") as url:
        upgrade(MIGRATIONS, url)
        seen = asyncio.run(scenario(url))
    # SME until 2022-06-30 inclusive, not from 2022-07-01 (Tianjin days); two versions
    assert seen == [True, True, False, False, 2]

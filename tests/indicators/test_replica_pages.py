"""The indicators' copy of the catalog, written a page of feed entries at a time.

A page's new patents, listings and pool events go out in a few batched statements, and the
events of listings whose status changed are chained once per page. Whatever the page
boundaries, the copy must come out as applying the entries one at a time leaves it: the
same rows, and every listing's history of states with each state ending when the next
began. Checked on both engines, with pages of every size from one entry to all of them.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.indicators.domain.replica import apply_catalog_entries, insert_missing
from services.indicators.main import MIGRATIONS
from services.indicators.models import Listing, Org, OrgVersion, Patent, PoolEvent
from shared.db import create_engine, upgrade
from shared.testing import fresh_database
from tests.conftest import require_engine
from tests.replica_pages import copy_after, random_pages

DISTRICTS = ["和平区", "南开区", "滨海新区", None]
STATUSES = ["listed", "negotiating", "transferred", "withdrawn", "listed"]


def random_feed(rng: random.Random, n: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    pos = 0

    def add(entity: str, payload: dict[str, Any]) -> None:
        nonlocal pos
        pos += 1
        entries.append({"id": pos, "entity": entity, "op": "upsert", "payload": payload})

    for o in range(1, 5):
        add("organisation", _org(o, rng.choice(DISTRICTS), 1))
    day = 1
    for _ in range(n):
        r = rng.random()
        day += rng.randint(0, 2)  # equal days happen: ties are ordered by arrival
        if r < 0.3:
            pid = rng.randint(1, 20)
            owners = rng.sample(range(1, 5), rng.randint(1, 2))
            # now and then re-created upstream under a new id, keeping its number
            add("patent", _patent(pid, owners, day, rng.choice([pid] * 4 + [pid + 100])))
        elif r < 0.93:
            pid = rng.randint(1, 20)
            add("listing", _listing(pid, rng.choice(STATUSES), day, rng))
        else:
            add("organisation", _org(rng.randint(1, 4), rng.choice(DISTRICTS), day))
    return entries


def _ts(day: int) -> str:
    return f"2025-{1 + day // 28:02d}-{1 + day % 28:02d}T08:00:00+00:00"


def _org(oid: int, district: str | None, day: int) -> dict[str, Any]:
    return {"id": oid, "kind": "university", "name": f"大学{oid}", "district": district,
            "province": "天津市", "is_sme": False, "updated_at": _ts(day)}  # fmt: skip


def _patent(pid: int, owners: list[int], day: int, row_id: int) -> dict[str, Any]:
    return {
        "id": row_id, "application_number": f"2019{pid:08d}", "patent_type": "invention",
        "title": f"专利{pid}/{day}", "industries": ["1.1"], "owner_org_ids": owners,
        "legal_status": "granted", "application_date": "2019-01-01", "grant_date": "2021-01-01",
    }  # fmt: skip


def _listing(pid: int, status: str, day: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": 1000 + pid, "patent_id": pid, "application_number": f"2019{pid:08d}",
        "owner_org_ids": [1 + pid % 4], "status": status,
        "first_listed_at": _ts(rng.choice([0, 1])),
        "updated_at": _ts(day), "status_since": _ts(day),
    }  # fmt: skip


async def read_copy(session: AsyncSession) -> dict[str, Any]:
    events = await session.scalars(
        select(PoolEvent).order_by(PoolEvent.listing_id, PoolEvent.at, PoolEvent.id)
    )
    return {
        "orgs": sorted((o.id, o.district) for o in await session.scalars(select(Org))),
        "versions": sorted(
            (v.org_id, v.valid_from.isoformat(), v.district or "")
            for v in await session.scalars(select(OrgVersion))
        ),
        "patents": sorted(
            (p.id, p.application_number, p.title, tuple(p.owner_org_ids))
            for p in await session.scalars(select(Patent))
        ),
        "listings": sorted(
            (li.id, li.status, li.owner_district or "", li.updated_at.isoformat())
            for li in await session.scalars(select(Listing))
        ),
        "events": [
            (
                e.listing_id,
                e.status,
                e.at.isoformat(),
                e.ended_at.isoformat() if e.ended_at else None,
                e.owner_district,
            )
            for e in events
        ],  # fmt: skip
    }


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
@pytest.mark.parametrize("seed", [3, 4])
def test_pages_of_any_size_leave_the_copy_as_one_entry_at_a_time_would(
    engine_name: str, seed: int, tmp_path: Path
) -> None:
    require_engine(engine_name)
    rng = random.Random(seed)
    entries = random_feed(rng, 250)
    pages = random_pages(entries, rng, 5)
    results = [
        copy_after(engine_name, tmp_path, MIGRATIONS, apply_catalog_entries, split, read_copy)
        for split in ([[e] for e in entries], pages, [entries])
    ]
    one_by_one = results[0]
    chained = [e for e in one_by_one["events"] if e[3] is not None]
    assert len(chained) > 20, "the feed should change listings' states many times"
    patents = one_by_one["patents"]
    assert any(p[0] > 100 for p in patents), "some patents should be re-created under new ids"
    assert len({p[1] for p in patents}) == len(patents), "one row per application number"
    assert results[1] == one_by_one
    assert results[2] == one_by_one


def test_a_page_naming_a_patent_a_deal_is_inserting_waits_and_updates_it(tmp_path: Path) -> None:
    """A deal stores a patent the feed has not brought yet (`insert_missing`) while the
    consumer applies the page that brings it: the page waits for the deal's transaction,
    then updates the row, instead of failing on the unique key and being tried again."""
    require_engine("postgresql")

    async def run(url: str) -> tuple[str, str]:
        db = create_engine(url)
        sessions = async_sessionmaker(db, expire_on_commit=False)
        fetched = {**_patent(7, [1], 1, 7), "title": "从目录取得"}
        fed = {**_patent(7, [1, 2], 2, 7), "title": "由数据流带来"}
        try:
            async with sessions() as deal, deal.begin():
                await insert_missing(deal, [], [fetched])
                page = asyncio.ensure_future(
                    copy_page(
                        sessions, [{"id": 1, "entity": "patent", "op": "upsert", "payload": fed}]
                    )  # fmt: skip
                )
                await asyncio.sleep(0.3)
                assert not page.done(), "the page should wait for the deal's row"
            await page
            async with sessions() as session:
                row = await session.get(Patent, 7)
                assert row is not None
                return row.title, row.application_number
        finally:
            await db.dispose()

    with fresh_database("postgresql", tmp_path, "race") as url:
        upgrade(MIGRATIONS, url)
        assert asyncio.run(run(url)) == ("由数据流带来", "201900000007")


async def copy_page(sessions: async_sessionmaker[AsyncSession], page: list[dict[str, Any]]) -> None:
    async with sessions() as session, session.begin():
        await apply_catalog_entries(session, page)

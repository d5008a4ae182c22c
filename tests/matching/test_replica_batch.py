"""The matching service's copy of the catalog, written a run of feed entries at a time.

A page of patent and listing entries is written with a few set-based statements instead
of several statements per entry. What must not change is the result: every row as the
last entry about it says, and each patent stamped (`index_pos`) with the feed id of the
last entry that touched it (its own, its listing's, or its owner's district change),
exactly as applying the entries one at a time would leave it. A plain Python model of
those rules is the reference, on both engines.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.domain.sync import apply_catalog_entries
from services.matching.main import MIGRATIONS
from services.matching.models import Listing, Organisation, Patent, PatentOwner
from tests.conftest import require_engine
from tests.replica_pages import copy_after, random_pages

DISTRICTS = ["和平区", "南开区", "滨海新区", None]
STATUSES = ["listed", "negotiating", "transferred", "withdrawn"]


def random_feed(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Entries as the catalog publishes them: organisations, patents (re-versioned, owners
    changing), listings (status changes, listings for patents the copy never saw)."""
    entries: list[dict[str, Any]] = []
    pos = 100
    orgs = list(range(1, 6))
    for o in orgs:
        pos += 1
        entries.append(_org(pos, o, rng.choice(DISTRICTS)))
    versions: dict[int, int] = {}
    for _ in range(n):
        pos += rng.randint(1, 3)  # feed ids are increasing, not contiguous
        r = rng.random()
        if r < 0.45:
            pid = rng.randint(1, 25)
            versions[pid] = versions.get(pid, 0) + 1
            entries.append(_patent(pos, pid, versions[pid], rng.sample(orgs, rng.randint(0, 2))))
        elif r < 0.9:
            pid = rng.choice(list(versions) or [1]) if rng.random() < 0.9 else 999
            entries.append(_listing(pos, 1000 + pid, pid, rng.choice(STATUSES), rng))
        else:
            entries.append(_org(pos, rng.choice(orgs), rng.choice(DISTRICTS)))
    return entries


def _org(pos: int, oid: int, district: str | None) -> dict[str, Any]:
    payload = {"id": oid, "kind": "university", "name": f"大学{oid}", "district": district,
               "province": "天津市", "is_sme": False}  # fmt: skip
    return {"id": pos, "entity": "organisation", "op": "upsert", "payload": payload}


def _patent(pos: int, pid: int, version: int, owners: list[int]) -> dict[str, Any]:
    payload = {
        "id": pid, "application_number": f"2019{pid:08d}", "patent_type": "invention",
        "title": f"专利{pid}第{version}版", "abstract": "一种方法" * version, "claims": None,
        "ipc_codes": ["H01M 4/00"], "industries": ["1.1"], "patentees": ["某大学"],
        "owner_org_ids": owners, "legal_status": "granted", "version": version,
    }  # fmt: skip
    return {"id": pos, "entity": "patent", "op": "upsert", "payload": payload}


def _listing(pos: int, lid: int, pid: int, status: str, rng: random.Random) -> dict[str, Any]:
    payload = {
        "id": lid, "patent_id": pid, "status": status,
        "modes": rng.sample(["assignment", "licence", "equity"], rng.randint(1, 2)),
        "price_cny": rng.choice([None, "0", "120000.00"]), "negotiable": rng.random() < 0.5,
        "zero_price": rng.random() < 0.3, "use_first_pay_later": rng.random() < 0.3,
        "deferred_licence_fee": False,
    }  # fmt: skip
    return {"id": pos, "entity": "listing", "op": "upsert", "payload": payload}


def expected_state(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The copy after applying the entries one at a time, by the rules in sync.py."""
    orgs: dict[int, dict[str, Any]] = {}
    patents: dict[int, dict[str, Any]] = {}
    listings: dict[int, dict[str, Any]] = {}
    for e in entries:
        p, pos = e["payload"], e["id"]
        if e["entity"] == "organisation":
            old = orgs.get(p["id"])
            if old is not None and old["district"] != p["district"]:
                for row in patents.values():
                    if p["id"] in row["owners"]:
                        row["index_pos"] = pos
            orgs[p["id"]] = {"district": p["district"], "feed_pos": pos}
        elif e["entity"] == "patent":
            patents[p["id"]] = {
                "title": p["title"], "version": p["version"], "index_pos": pos,
                "owners": sorted(set(p["owner_org_ids"])),
                "owner_org_ids": sorted(set(p["owner_org_ids"])),
            }  # fmt: skip
        else:
            listings[p["id"]] = {
                "patent_id": p["patent_id"], "status": p["status"], "modes": p["modes"],
                "price_cny": p["price_cny"], "zero_price": p["zero_price"], "feed_pos": pos,
            }  # fmt: skip
            if p["patent_id"] in patents:
                patents[p["patent_id"]]["index_pos"] = pos
    return {"orgs": orgs, "patents": patents, "listings": listings}


async def read_copy(session: AsyncSession) -> dict[str, Any]:
    owners: dict[int, list[int]] = {}
    for po in await session.scalars(select(PatentOwner)):
        owners.setdefault(po.patent_id, []).append(po.org_id)
    return {
        "orgs": {
            o.id: {"district": o.district, "feed_pos": o.feed_pos}
            for o in await session.scalars(select(Organisation))
        },
        "patents": {
            p.id: {
                "title": p.title,
                "version": p.version,
                "index_pos": p.index_pos,
                "owners": sorted(owners.get(p.id, [])),
                "owner_org_ids": p.owner_org_ids,
            }  # fmt: skip
            for p in await session.scalars(select(Patent))
        },
        "listings": {
            li.id: {
                "patent_id": li.patent_id,
                "status": li.status,
                "modes": li.modes,
                "price_cny": li.price_cny,
                "zero_price": li.zero_price,
                "feed_pos": li.feed_pos,
            }  # fmt: skip
            for li in await session.scalars(select(Listing))
        },
    }


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
@pytest.mark.parametrize("seed", [1, 2])
def test_pages_of_any_size_leave_the_copy_as_one_entry_at_a_time_would(
    engine_name: str, seed: int, tmp_path: Path
) -> None:
    require_engine(engine_name)
    rng = random.Random(seed)
    entries = random_feed(rng, 300)
    want = expected_state(entries)
    assert any(p["index_pos"] != max(e["id"] for e in entries) for p in want["patents"].values())
    pages = random_pages(entries, rng, 6)
    for split in (pages, [entries], [[e] for e in entries]):
        got = copy_after(engine_name, tmp_path, MIGRATIONS, apply_catalog_entries, split, read_copy)
        assert got == want, f"{len(split)} pages"

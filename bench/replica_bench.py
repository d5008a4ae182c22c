"""What it costs matching and indicators to copy the catalog's feed.

Every patent uploaded to the catalog, and every pooling or status change, arrives at
matching and at indicators as a feed entry, which each writes into its own copy in its
consumer's transaction, a page at a time. This measures that write: the handler each
service's feed consumer runs, in process, against a fresh database, on a feed shaped like
a bulk upload followed by pooling, deals and a legal-status sync (organisations, then N
patents, N listings, N/3 status changes, N/3 changed patents).

    .venv/bin/python bench/replica_bench.py               # 5,000 patents, PostgreSQL
    .venv/bin/python bench/replica_bench.py --n 20000 --engine sqlite
    .venv/bin/python bench/replica_bench.py --smoke       # 300 patents, CI

It prints CPU and wall time and SQL statements per entry for pages of 1,000 (what a
consumer fetches when it is behind: after a bulk upload) and, in the same run, for pages
of one entry (a consumer at the head, receiving entries as they come). Then what it costs
the catalog to serve those entries as feed pages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.catalog.main import MIGRATIONS as CATALOG_MIGRATIONS  # noqa: E402
from services.catalog.models import FeedEntry  # noqa: E402
from services.indicators.domain.replica import (  # noqa: E402
    apply_catalog_entries as indicators_apply,
)
from services.indicators.main import MIGRATIONS as INDICATORS_MIGRATIONS  # noqa: E402
from services.matching.domain.sync import apply_catalog_entries as matching_apply  # noqa: E402
from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS  # noqa: E402
from shared.db import create_engine, upgrade  # noqa: E402
from shared.feed import FeedItem, FeedPage, feed_page_json  # noqa: E402
from shared.testing import fresh_database, postgres_reachable  # noqa: E402

Handler = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]
STAMP = "2026-03-01T00:00:00+00:00"


def feed(n: int) -> list[dict[str, Any]]:
    """Catalog feed entries as the catalog publishes them (the fields both copies read)."""
    entries: list[dict[str, Any]] = []

    def add(entity: str, payload: dict[str, Any]) -> None:
        entries.append({"id": len(entries) + 1, "entity": entity, "op": "upsert",
                        "payload": payload})  # fmt: skip

    for o in range(1, 6):
        add("organisation", {"id": o, "kind": "university", "name": f"天津某大学{o}",
                             "district": "南开区", "province": "天津市", "is_sme": False,
                             "updated_at": STAMP})  # fmt: skip

    def patent(pid: int, legal_status: str, version: int) -> dict[str, Any]:
        return {
            "id": pid, "application_number": f"2019{pid:08d}", "patent_type": "invention",
            "title": f"一种锂电池正极材料的制备方法{pid}", "abstract": "本发明公开了一种正极材料。" * 8,
            "claims": None, "ipc_codes": ["H01M 4/00"], "industries": ["1.1"],
            "patentees": ["天津某大学"], "owner_org_ids": [pid % 5 + 1],
            "legal_status": legal_status, "version": version, "application_date": "2019-01-01",
            "grant_date": "2021-01-01",
        }  # fmt: skip

    for pid in range(1, n + 1):
        add("patent", patent(pid, "granted", 1))

    def listing(pid: int, status: str, at: str) -> dict[str, Any]:
        return {
            "id": 100_000 + pid, "patent_id": pid, "application_number": f"2019{pid:08d}",
            "owner_org_ids": [pid % 5 + 1], "status": status, "modes": ["assignment"],
            "price_cny": "50000.00", "negotiable": True, "zero_price": False,
            "use_first_pay_later": False, "deferred_licence_fee": False,
            "first_listed_at": STAMP, "updated_at": at, "status_since": at,
        }  # fmt: skip

    for pid in range(1, n + 1):
        add("listing", listing(pid, "listed", STAMP))
    for pid in range(1, n + 1, 3):
        add("listing", listing(pid, "transferred", "2026-05-01T00:00:00+00:00"))
    for pid in range(2, n + 1, 3):  # a legal-status sync: changed patents, not new ones
        add("patent", patent(pid, "lapsed", 2))
    return entries


async def timed(url: str, handler: Handler, entries: list[dict[str, Any]], page: int) -> dict:
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    statements = 0

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(entries), page):
            async with sessions() as session, session.begin():
                await handler(session, entries[i : i + page])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await engine.dispose()
    n = len(entries)
    return {"cpu_ms": cpu * 1000 / n, "wall_ms": wall * 1000 / n, "statements": statements / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="patents (entries ≈ 2.7 × n)")
    ap.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--smoke", action="store_true", help="300 patents")
    args = ap.parse_args()
    n = 300 if args.smoke else args.n
    if args.engine == "postgresql" and not postgres_reachable():
        sys.exit("PostgreSQL is unreachable (TEST_DATABASE_URL); try --engine sqlite")
    entries = feed(n)
    load = os.getloadavg()
    print(f"replica writes: {len(entries):,} catalog feed entries ({n:,} patents), "
          f"{args.engine}, load average {load[0]:.1f} {load[1]:.1f}")  # fmt: skip
    print("\n| copy | page | CPU ms / entry | wall ms / entry | statements / entry |")
    print("|---|---:|---:|---:|---:|")
    services: list[tuple[str, Handler, Path]] = [
        ("matching", matching_apply, MATCHING_MIGRATIONS),
        ("indicators", indicators_apply, INDICATORS_MIGRATIONS),
    ]
    one_by_one = entries if n <= 5000 else entries[: len(entries) // 4]
    with tempfile.TemporaryDirectory() as tmp:
        for name, handler, migrations in services:
            for page, part in ((1000, entries), (1, one_by_one)):
                with fresh_database(args.engine, Path(tmp), f"replica_{name}") as url:
                    upgrade(migrations, url)
                    r = asyncio.run(timed(url, handler, part, page))
                print(f"| {name} | {page:,} | {r['cpu_ms']:.3f} | {r['wall_ms']:.3f} | "
                      f"{r['statements']:.3f} |", flush=True)  # fmt: skip
    if one_by_one is not entries:
        print(f"\n(pages of one: the first {len(one_by_one):,} entries only)")
    with tempfile.TemporaryDirectory() as tmp:
        with fresh_database(args.engine, Path(tmp), "replica_feed") as url:
            upgrade(CATALOG_MIGRATIONS, url)
            r = asyncio.run(feed_reads(url, entries))
    print("\nReading those entries back as feed pages of 1,000 (what each consumer fetches),")
    print("the query and the JSON page, in process:\n")
    print("| page built from | CPU ms per 1,000 entries |\n|---|---:|")
    for name, ms in r.items():
        print(f"| {name} | {ms:.1f} |")


async def feed_reads(url: str, entries: list[dict[str, Any]]) -> dict[str, float]:
    """The catalog's feed page built the way `shared.feed` does now (stored payload text
    assembled with orjson) against the way it did before (ORM rows, payloads decoded,
    pydantic models validated and encoded), from the same table in the same run."""
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    now = datetime.now(UTC)
    rows = [{"id": e["id"], "entity": e["entity"], "entity_id": str(e["payload"]["id"]),
             "op": "upsert", "payload": e["payload"], "created_at": now} for e in entries]  # fmt: skip
    try:
        async with sessions() as session, session.begin():
            await session.execute(insert(FeedEntry), rows)

        async def stored_text(session: AsyncSession, after: int) -> bytes:
            cols = (FeedEntry.id, FeedEntry.entity, FeedEntry.entity_id, FeedEntry.op,
                    cast(FeedEntry.payload, Text), FeedEntry.created_at)  # fmt: skip
            stmt = select(*cols).where(FeedEntry.id > after).order_by(FeedEntry.id).limit(1001)
            page = list(await session.execute(stmt))
            return feed_page_json(page[:1000], after, len(page) > 1000)

        async def pydantic_models(session: AsyncSession, after: int) -> bytes:
            stmt = select(FeedEntry).where(FeedEntry.id > after).order_by(FeedEntry.id).limit(1001)
            page = list((await session.execute(stmt)).scalars())
            items = [FeedItem(id=x.id, entity=x.entity, entity_id=x.entity_id, op=x.op,
                              payload=x.payload, created_at=x.created_at) for x in page[:1000]]  # fmt: skip
            out = FeedPage(items=items, next_after=page[min(len(page), 1000) - 1].id,
                           has_more=len(page) > 1000)  # fmt: skip
            # FastAPI validated the returned model against response_model once more.
            return FeedPage.model_validate(out.model_dump()).model_dump_json().encode()

        result = {}
        for name, build in (("stored payload text (now)", stored_text),
                            ("ORM rows + pydantic (before)", pydantic_models)):  # fmt: skip
            cpu = time.process_time()
            async with sessions() as session:
                for after in range(0, len(entries), 1000):
                    assert (await build(session, after)).startswith(b'{"items":[')
            result[name] = (time.process_time() - cpu) * 1000 / (len(entries) / 1000)
        return result
    finally:
        await engine.dispose()


if __name__ == "__main__":
    main()

"""What it costs the catalog to keep its keyword index current while patents keep coming.

Under the mixed load (bench/load_mix.py) universities upload about 300 patents a second
in small files. The keyword index (services/catalog/domain/keywords.py) takes each change
into a delta that every search scans. Before, past 2,000 changes it rebuilt the whole
index from every stored text; now, past `seal_after` (256) it seals the delta into a
segment built from the texts in memory, merges the newest segments as they grow, and
rebuilds from the database only when the sealed patents outnumber the base.

    .venv/bin/python bench/keyword_upkeep.py                 # 20,000 + 12 × 2,000, PostgreSQL
    .venv/bin/python bench/keyword_upkeep.py --n 100000 --rounds 20
    .venv/bin/python bench/keyword_upkeep.py --smoke         # CI

One run, one database: N patents are uploaded and indexed, then `--rounds` rounds each
upload `--per-round` more in uploads of 20 (a fifth of them new texts for patents already
there), each index catching up after every upload as searches make it, and finishing its
background work at the end of the round. Printed per way: the catalog-side CPU of that
upkeep (catch-up, seal, merge or rebuild; the database's own work reading the texts for a
rebuild is not in it), the delta a search scanned on average, and the latency of keyword
lookups in the index (`ordered`, in process) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalog_bench import OWNER, make_records, percentile  # noqa: E402
from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.domain.bulk import UploadThread  # noqa: E402
from services.catalog.domain.keywords import KeywordIndex  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from shared.auth import Principal, Role  # noqa: E402
from shared.db import Database, upgrade  # noqa: E402
from shared.testing import fresh_database, postgres_reachable  # noqa: E402

KEYWORDS = ["电", "电池", "方法", "装置", "锂离子", "催化剂", "传感器", "控制 系统", "材料"]


async def upload(
    uploads: UploadThread, org: int, principal: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    for i in range(0, len(records), 2000):
        rows = list(enumerate(records[i : i + 2000], 1))
        body = await uploads.apply(org, "json", rows, None, "bench", principal)
        assert body["summary"]["rejected"] == 0, body["summary"]


async def settle(index: KeywordIndex) -> float:
    """Finish the background seal, merge or rebuild and catch up; the CPU seconds it took."""
    cpu = time.process_time()
    assert await index.catch_up(10**9)
    while index._rebuild is not None and not index._rebuild.done():
        await index._rebuild
        await index.catch_up(10**9)  # what changed while it ran
    return time.process_time() - cpu


WAYS = {
    "before: rebuild every 2,000 changes": {"seal_after": 2000, "max_segments": 1},
    "seal every 2,000, no merging, rebuild at 8 segments": {
        "seal_after": 2000,
        "max_segments": 8,
        "merge_ratio": 0,
    },
    "now: seal every 256, merge, rebuild past the base": {},
}


async def run(url: str, n: int, rounds: int, per_round: int, smoke: bool) -> None:
    org, _ = await create_org_with_key(
        url, {"kind": "university", "name": OWNER, "district": "nankai"}, None
    )
    principal = Principal("bench", org, Role.SUPPLIER, "university").to_dict()
    uploads = UploadThread(url)
    db = Database(url)
    rng = random.Random(5)
    records = make_records(n + rounds * per_round, seed=3)
    try:
        await upload(uploads, org, principal, records[:n])
        indexes = {}
        for name, settings in WAYS.items():
            if smoke:  # a tenth of the thresholds: still seals, merges and rebuilds
                settings = {**settings, "seal_after": settings.get("seal_after", 256) // 10}
            indexes[name] = KeywordIndex(db.read_sessionmaker, **settings)
            await indexes[name].build()
        cpu = dict.fromkeys(indexes, 0.0)
        scanned = dict.fromkeys(indexes, 0)
        catch_ups = 0
        rebuilds = {name: index.rebuilds for name, index in indexes.items()}
        for r in range(rounds):
            fresh = records[n + r * per_round : n + (r + 1) * per_round]
            # A fifth of each round gives patents already there a new text.
            olds = rng.sample(range(n + r * per_round), per_round // 5)
            for i, o in zip(range(0, per_round, 5), olds, strict=False):
                fresh[i] = {
                    **records[o],
                    "title": fresh[i]["title"],
                    "abstract": fresh[i]["abstract"],
                }
            for i in range(0, per_round, 20):
                await upload(uploads, org, principal, fresh[i : i + 20])
                catch_ups += 1
                for name, index in indexes.items():  # as the next search would
                    c = time.process_time()
                    assert await index.catch_up(10**9)
                    cpu[name] += time.process_time() - c
                    scanned[name] += len(index.delta)
                    await asyncio.sleep(0)  # a background seal may start
            for name, index in indexes.items():
                cpu[name] += await settle(index)
        changes = rounds * per_round
        print("\n| way | full rebuilds | seals / merges | upkeep CPU ms per changed patent "
              "| delta a search scans (mean) | lookup p50 / p99 µs |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for name, index in indexes.items():
            times = []
            for _ in range(20):
                for q in KEYWORDS:
                    t = time.perf_counter()
                    index.ordered(q.split(), "grant_date" if len(times) % 2 else None)
                    times.append((time.perf_counter() - t) * 1e6)
            print(f"| {name} | {index.rebuilds - rebuilds[name]} | {index.seals} / "
                  f"{index.merges} | {1000 * cpu[name] / changes:.3f} | "
                  f"{scanned[name] / catch_ups:,.0f} | {percentile(times, 50):.0f} / "
                  f"{percentile(times, 99):.0f} |", flush=True)  # fmt: skip
            await index.stop()
    finally:
        await uploads.close()
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="patents indexed before the rounds")
    ap.add_argument("--rounds", type=int, default=12, help="rounds of uploads")
    ap.add_argument("--per-round", type=int, default=2000, help="patents per round")
    ap.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--smoke", action="store_true", help="500 + 3 × 300 patents")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.rounds, args.per_round = 500, 3, 300
    if args.engine == "postgresql" and not postgres_reachable():
        sys.exit("PostgreSQL is unreachable (TEST_DATABASE_URL); try --engine sqlite")
    load = os.getloadavg()
    print(f"keyword index upkeep: {args.n:,} patents, then {args.rounds} rounds of "
          f"{args.per_round:,} uploaded, {args.engine}, load average {load[0]:.1f} "
          f"{load[1]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        with fresh_database(args.engine, Path(tmp), "kwupkeep") as url:
            upgrade(MIGRATIONS, url)
            asyncio.run(run(url, args.n, args.rounds, args.per_round, args.smoke))


if __name__ == "__main__":
    main()

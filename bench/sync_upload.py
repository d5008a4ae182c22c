"""CPU per synchronous bulk upload of 20 records: a loop, engine and connection made for each
upload (the code before `UploadThread`) against the catalog's long-lived upload loop.

    .venv/bin/python bench/sync_upload.py            # 300 uploads of 20 each way, PostgreSQL
    .venv/bin/python bench/sync_upload.py --engine sqlite --uploads 100
    .venv/bin/python bench/sync_upload.py --smoke    # CI

Both ways run the same upload (`services/catalog/domain/bulk.py` `_apply_upload`: validate,
write, report, one transaction) in process against one fresh database, one after the
other, alternating in rounds so that drift on a shared machine hits both. CPU is this
process's (every thread); PostgreSQL's own work, a new backend per upload the old way, is
not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalog_bench import OWNER, make_records  # noqa: E402
from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.domain.bulk import UploadThread, _apply_upload  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from shared.auth import Principal, Role  # noqa: E402
from shared.db import create_engine, upgrade  # noqa: E402
from shared.testing import fresh_database, postgres_reachable  # noqa: E402

Batch = list[tuple[int, dict[str, Any]]]


def engine_per_upload(url: str, *args: Any) -> dict[str, Any]:
    """The old way, in a worker thread: a new event loop, engine and connection."""

    async def once() -> dict[str, Any]:
        engine = create_engine(url, poolclass=NullPool)
        try:
            return await _apply_upload(async_sessionmaker(engine, expire_on_commit=False), *args)
        finally:
            await engine.dispose()

    return asyncio.run(once())


async def run(url: str, uploads: int, size: int) -> dict[str, list[float]]:
    org, _ = await create_org_with_key(
        url, {"kind": "university", "name": OWNER, "district": "nankai"}, None
    )
    principal = Principal("bench", org, Role.SUPPLIER, "university").to_dict()
    records = make_records(2 * (uploads + 1) * size, seed=9)
    batches: list[Batch] = [
        list(enumerate(records[i : i + size], 1)) for i in range(0, len(records), size)
    ]
    thread = UploadThread(url)
    cpu: dict[str, list[float]] = {"a new loop, engine and connection each": [],
                                   "one long-lived upload loop": []}  # fmt: skip
    old, new = cpu
    try:
        # One of each first, untimed: imports, rule tables and jieba load on first use.
        await asyncio.to_thread(
            engine_per_upload, url, org, "json", batches.pop(), None, "w", principal
        )
        await thread.apply(org, "json", batches.pop(), None, "w", principal)
        for i, batch in enumerate(batches):
            args = (org, "json", batch, None, "bench", principal)
            way = old if i % 2 == 0 else new
            c, t = time.process_time(), time.perf_counter()
            if way == old:
                body = await asyncio.to_thread(engine_per_upload, url, *args)
            else:
                body = await thread.apply(*args)
            cpu[way].append(time.process_time() - c)
            cpu[way + " (wall)"] = [*cpu.get(way + " (wall)", []), time.perf_counter() - t]
            assert body["summary"]["accepted"] == size, body["summary"]
    finally:
        await thread.close()
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uploads", type=int, default=300, help="uploads each way")
    ap.add_argument("--size", type=int, default=20, help="records per upload")
    ap.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--smoke", action="store_true", help="10 uploads each way")
    args = ap.parse_args()
    if args.smoke:
        args.uploads = 10
    if args.engine == "postgresql" and not postgres_reachable():
        sys.exit("PostgreSQL is unreachable (TEST_DATABASE_URL); try --engine sqlite")
    load = os.getloadavg()
    print(f"synchronous uploads: {args.uploads} of {args.size} records each way, "
          f"{args.engine}, load average {load[0]:.1f} {load[1]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        with fresh_database(args.engine, Path(tmp), "syncupload") as url:
            upgrade(MIGRATIONS, url)
            cpu = asyncio.run(run(url, args.uploads, args.size))
    print("\n| upload runs on | CPU ms per upload | wall ms per upload |\n|---|---:|---:|")
    for way in ("a new loop, engine and connection each", "one long-lived upload loop"):
        n = len(cpu[way])
        print(f"| {way} | {1000 * sum(cpu[way]) / n:.1f} | "
              f"{1000 * sum(cpu[way + ' (wall)']) / n:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()

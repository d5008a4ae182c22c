"""Profile of the bulk-upload path in process: where the Python time of an upload job goes.

    .venv/bin/python bench/bulk_profile.py [--n 20000] [--top 25] [--reupload] [--smoke]
        [--pg postgresql://postgres@127.0.0.1:5432/test]

Runs what `POST /v1/patents/bulk` runs for a job — NDJSON parse, `run_job` (repeat check,
validation, upsert, change feed, progress) — against a fresh PostgreSQL database, with
the recombined demo records of bench/catalog_bench.py. Validation runs inline instead of
in a worker thread so that one cProfile sees all of it (the service overlaps it with the
database's work; here phases add up). Prints the phase times, then the top functions by
own time and by cumulative time. `--reupload` profiles a second upload of the same file
(every row `unchanged`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.catalog_bench import OWNER, make_records  # noqa: E402
from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.domain import bulk_files  # noqa: E402
from services.catalog.domain.bulk import run_job  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from services.catalog.models import UploadJob  # noqa: E402
from shared.db import Database, upgrade  # noqa: E402
from shared.testing import _pg_admin  # noqa: E402

WARM_UP = 200


class Phases:
    """Wall and CPU seconds of each phase: the parse, and each function handed to
    `to_thread` (the job's validation); the rest of an upload is its writing."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    async def to_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            name = getattr(fn, "__name__", str(fn))
            self.add(name, time.perf_counter() - t, time.process_time() - c)


async def upload(db: Database, org_id: int, body: bytes, phases: Phases) -> dict[str, Any]:
    t, c = time.perf_counter(), time.process_time()
    records = bulk_files.parse(body, "ndjson", max_records=len(body))
    phases.add("parse", time.perf_counter() - t, time.process_time() - c)
    job_id = f"profile-{time.monotonic_ns()}"
    async with db.sessionmaker() as s, s.begin():
        s.add(UploadJob(id=job_id, org_id=org_id, status="queued", format="ndjson",
                        total=len(records)))  # fmt: skip
    await run_job(db.sessionmaker, job_id, org_id, records, phases.to_thread)
    async with db.sessionmaker() as s:
        job = await s.get(UploadJob, job_id)
        assert job is not None and job.status == "done", job and job.error
        return dict(job.summary or {})


async def backend_cpu(db: Database) -> float:
    """CPU seconds used so far by the database's server processes (PostgreSQL on this
    machine): what the writes cost on the database's side."""
    async with db.sessionmaker() as s:
        pids = (await s.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        ))).scalars().all()  # fmt: skip
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # not on this machine, or gone
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()


async def profile(
    url: str, org_id: int, n: int, reupload: bool
) -> tuple[float, dict[str, Any], Phases, cProfile.Profile]:
    """(first small upload's seconds, timed upload's summary, its phases, the profile of
    a second upload of the same kind)."""
    records = make_records(2 * n + WARM_UP)
    warm, timed, profiled = records[:WARM_UP], records[WARM_UP:][:n], records[WARM_UP:][n:]
    db = Database(url)
    try:
        t = time.perf_counter()
        await upload(db, org_id, ndjson(warm), Phases())  # rule tables, jieba, connections
        first = time.perf_counter() - t
        # As the service does after start-up (services/catalog/main.py): what lives for
        # good stays out of the cyclic collector's passes.
        gc.collect()
        gc.freeze()
        if reupload:
            profiled = timed
            await upload(db, org_id, ndjson(timed), Phases())
        phases = Phases()
        pg0 = await backend_cpu(db)
        t, c = time.perf_counter(), time.process_time()
        summary = await upload(db, org_id, ndjson(timed), phases)
        phases.add("upload", time.perf_counter() - t, time.process_time() - c)
        phases.add("database", 0.0, await backend_cpu(db) - pg0)
        prof = cProfile.Profile()
        body = ndjson(profiled)
        prof.enable()
        await upload(db, org_id, body, Phases())
        prof.disable()
        return first, summary, phases, prof
    finally:
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--reupload", action="store_true", help="profile an all-unchanged upload")
    ap.add_argument(
        "--pg",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--smoke", action="store_true", help="a tiny run (2,000 patents) for CI")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.top = 2_000, 10
    dbname = f"tjp_bulkprof_{os.getpid()}"
    asyncio.run(_pg_admin(args.pg, f'CREATE DATABASE "{dbname}"'))
    url = args.pg.rsplit("/", 1)[0] + "/" + dbname
    try:
        upgrade(MIGRATIONS, url)
        org_id, _ = asyncio.run(
            create_org_with_key(
                url, {"kind": "university", "name": OWNER, "district": "nankai"}, None
            )  # fmt: skip
        )
        first, summary, phases, prof = asyncio.run(profile(url, org_id, args.n, args.reupload))
        expected = "unchanged" if args.reupload else "accepted"
        assert summary[expected] == args.n, summary
        wall, cpu = phases.wall, phases.cpu
        print(f"bulk profile: {args.n:,} records, {expected}, without the profiler")
        print(f"first upload in the process ({WARM_UP} records, loads the rule tables):"
              f" {first:.2f} s")  # fmt: skip
        print("| phase | wall s | CPU s | CPU µs/record |\n|---|---:|---:|---:|")
        rest = ("parse", "validate_records")
        for name, w, c in (
            ("parse NDJSON", wall["parse"], cpu["parse"]),
            ("validate + prepare", wall["validate_records"], cpu["validate_records"]),
            ("write (upsert, feed, progress)", wall["upload"] - sum(wall[k] for k in rest),
             cpu["upload"] - sum(cpu[k] for k in rest)),
            ("whole upload, Python", wall["upload"], cpu["upload"]),
            ("PostgreSQL backend (same upload)", float("nan"), cpu["database"]),
        ):  # fmt: skip
            print(f"| {name} | {w:.2f} | {c:.2f} | {c / args.n * 1e6:,.0f} |")
        print(f"upload rate: {args.n / wall['upload']:,.0f} records/s")
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
            print(f"\ntop {args.top} by {key} (second upload, under cProfile):")
            print(out.getvalue().split("\n", 6)[-1].rstrip())
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    finally:
        asyncio.run(_pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

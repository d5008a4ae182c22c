"""Catalog benchmark: bulk upload of N patents through the API into PostgreSQL, with a raw
COPY of the same rows as the ceiling, then keyword-search latency at that size.

    .venv/bin/python bench/catalog_bench.py [--n 100000] [--pg postgresql://postgres@127.0.0.1:5432/test]
        [--smoke]

Records are real demo texts (services/catalog/demo) recombined: title of one record,
abstract of another, fresh valid application numbers — labelled "recombined" in output.
The catalog runs as its own uvicorn process (as in production); peak memory is its RSS
high-water mark (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.domain.ingest import prepare  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from services.catalog.schemas import PatentIn  # noqa: E402
from shared.appno import make_application_number  # noqa: E402
from shared.auth import Role  # noqa: E402
from shared.db import upgrade  # noqa: E402
from shared.testing import _pg_admin, free_port  # noqa: E402

OWNER = "天津基准大学"
IPCS = [
    "H01M10/0525",
    "G06F16/35",
    "C12N9/00",
    "B23K26/00",
    "H02M7/48",
    "A61K36/00",
    "G01N33/00",
    "C08L67/02",
    "H04W72/04",
    "B64C39/02",
]


def make_records(n: int, seed: int = 1) -> list[dict]:
    demo = [
        json.loads(line)
        for line in (ROOT / "services/catalog/demo/demo_patents.jsonl")
        .read_text("utf-8")
        .splitlines()
    ]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.choice(demo), rng.choice(demo)
        year = 2010 + i % 12
        out.append(
            {
                "application_number": make_application_number(year, "1", 1_000_000 + i),
                "title": a["title"],
                "abstract": b["abstract"],
                "ipc_codes": rng.sample(IPCS, k=rng.randint(1, 3)),
                "patentees": [OWNER],
                "inventors": ["张三", "李四"],
                "application_date": f"{year}-03-15",
                "grant_date": f"{year + 2}-06-01",
                "legal_status": "granted",
            }
        )
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its live children (the catalog and its
    upload-validation worker): a cost per patent that other load on the machine does not
    change much, unlike the rate."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # itself, or a child
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def copy_ceiling(url: str, records: list[dict]) -> float:
    """COPY the same prepared rows into a clone of the patent table (indexes included)."""
    rows = []
    cols = [
        "application_number",
        "publication_number",
        "patent_type",
        "title",
        "abstract",
        "claims",
        "ipc_codes",
        "main_ipc",
        "ipc_text",
        "industries",
        "industry_text",
        "patentees",
        "inventors",
        "application_date",
        "grant_date",
        "expiry_date",
        "legal_status",
        "content_hash",
        "version",
        "created_at",
        "updated_at",
    ]
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    for r in records:
        v = prepare(PatentIn.model_validate(r)).values
        rows.append(
            tuple(
                json.dumps(v[c], ensure_ascii=False)
                if c in ("ipc_codes", "industries", "patentees", "inventors")
                else (
                    1 if c == "version" else now if c in ("created_at", "updated_at") else v.get(c)
                )
                for c in cols
            )
        )
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS patent_copy_bench; "
            "CREATE TABLE patent_copy_bench (LIKE patent INCLUDING ALL)"
        )
        t = time.perf_counter()
        await conn.copy_records_to_table("patent_copy_bench", records=rows, columns=cols)
        elapsed = time.perf_counter() - t
        await conn.execute("DROP TABLE patent_copy_bench")
    finally:
        await conn.close()
    return len(rows) / elapsed


POOL_TERMS = {"modes": ["assignment", "non_exclusive_licence"], "negotiable": True}


def pooling_rates(
    c: httpx.Client, auth: dict[str, str], records: list[dict], one_by_one: int
) -> tuple[float, float]:
    """Patents pooled per second: the first `one_by_one` with a POST /v1/listings each,
    the rest with POST /v1/listings/bulk, 10,000 per request."""
    numbers = [r["application_number"] for r in records]
    single, rest = numbers[:one_by_one], numbers[one_by_one:]
    t = time.perf_counter()
    for n in single:
        r = c.post("/v1/listings", json={"application_number": n, **POOL_TERMS}, headers=auth)
        assert r.status_code == 201, r.text
    one = len(single) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(0, len(rest), 10_000):
        body = {"terms": POOL_TERMS,
                "items": [{"application_number": n} for n in rest[i : i + 10_000]]}  # fmt: skip
        r = c.post("/v1/listings/bulk", json=body, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["listed"] == len(body["items"]), r.json()["summary"]
    bulk = len(rest) / (time.perf_counter() - t)
    return one, bulk


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument(
        "--pg",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--keep-db", action="store_true", help="leave the database for inspection")
    ap.add_argument(
        "--one-by-one", type=int, default=500,
        help="patents pooled with one POST /v1/listings each (the rest in bulk)",
    )  # fmt: skip
    ap.add_argument(
        "--smoke", action="store_true", help="a tiny run (5,000 patents, 20 queries) for CI"
    )
    args = ap.parse_args()
    if args.smoke:
        args.n, args.queries, args.one_by_one = 5_000, 20, 100
    base = args.pg
    dbname = f"tjp_bench_{os.getpid()}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{dbname}"'))
    url = base.rsplit("/", 1)[0] + "/" + dbname
    proc = None
    try:
        upgrade(MIGRATIONS, url)
        _, key = asyncio.run(
            create_org_with_key(
                url, {"kind": "university", "name": OWNER, "district": "nankai"}, Role.SUPPLIER
            )
        )
        records = make_records(args.n)
        port = free_port()
        env = {
            **os.environ,
            "CATALOG_DATABASE_URL": url,
            "PYTHONPATH": str(ROOT),
            "CATALOG_MAX_UPLOAD_RECORDS": "50000",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.catalog.main:create_app",
                "--factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        api = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(api + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        auth = {"Authorization": f"Bearer {key}"}
        chunks = [records[i : i + 50_000] for i in range(0, len(records), 50_000)]
        bodies = ["\n".join(json.dumps(r, ensure_ascii=False) for r in c).encode() for c in chunks]
        with httpx.Client(base_url=api, timeout=600) as c:
            t0, cpu0 = time.perf_counter(), cpu_seconds(proc.pid)
            for body in bodies:
                r = c.post(
                    "/v1/patents/bulk",
                    content=body,
                    headers={**auth, "content-type": "application/x-ndjson"},
                )
                if r.status_code == 200:
                    continue
                job = r.json()
                while True:
                    s = c.get(job["poll"], headers=auth).json()
                    if s["status"] in ("done", "failed"):
                        break
                    time.sleep(0.05)
                assert s["status"] == "done", s
                assert s["summary"]["accepted"] == len(body.splitlines()), s["summary"]
            upload_s = time.perf_counter() - t0
            server_cpu = cpu_seconds(proc.pid) - cpu0
            rate = len(records) / upload_s
            peak = vm_hwm_mb(proc.pid)
            # Re-upload of identical data: all unchanged, nothing written.
            t1 = time.perf_counter()
            r = c.post(
                "/v1/patents/bulk",
                content=bodies[0],
                headers={**auth, "content-type": "application/x-ndjson"},
            )
            s = job = r.json()  # a small file is answered at once, a large one is a job
            while r.status_code == 202 and (s := c.get(job["poll"], headers=auth).json())[
                "status"
            ] not in ("done", "failed"):
                time.sleep(0.05)
            unchanged_rate = len(chunks[0]) / (time.perf_counter() - t1)
            assert s["summary"]["unchanged"] == len(chunks[0]), s["summary"]
            ceiling = asyncio.run(copy_ceiling(url, records))
            one_rate, bulk_rate = pooling_rates(c, auth, records, args.one_by_one)
            # Keyword search latency through HTTP.
            rng = random.Random(3)
            words = [
                "电池",
                "传感器",
                "锂离子电池",
                "量子点",
                "催化剂",
                "图像",
                "机器人",
                "一种",
                "纳米",
                "无人机",
                "基因",
                "混凝土",
                "电池 正极",
                "不存在的词语",
            ]
            filters: list[dict[str, str]] = [
                {},
                {"pool_status": "unlisted"},
                {"ipc": "H01M"},
                {"sort": "-grant_date"},
                {"patent_type": "invention"},
            ]
            lat = []
            for _ in range(args.queries):
                params: dict[str, str | int] = {
                    "q": rng.choice(words),
                    **rng.choice(filters),
                    "limit": 20,
                }
                t = time.perf_counter()
                r = c.get("/v1/patents", params=params)
                lat.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
        print(
            json.dumps(
                {
                    "records": len(records),
                    "data": "demo texts recombined (title x abstract), generated numbers",
                    "upload_seconds": round(upload_s, 2),
                    "patents_per_s": round(rate),
                    "copy_ceiling_rows_per_s": round(ceiling),
                    "ratio_to_copy": round(rate / ceiling, 3),
                    "server_cpu_us_per_patent": round(server_cpu / len(records) * 1e6),
                    "reupload_unchanged_per_s": round(unchanged_rate),
                    "pool_one_by_one_per_s": round(one_rate, 1),
                    "pool_bulk_per_s": round(bulk_rate),
                    "pool_one_by_one_sample": args.one_by_one,
                    "server_peak_rss_mb": round(peak),
                    "search_queries": len(lat),
                    "search_p50_ms": round(statistics.median(lat), 1),
                    "search_p99_ms": round(percentile(lat, 99), 1),
                    "search_max_ms": round(max(lat), 1),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "upload_workers": int(os.environ.get("CATALOG_UPLOAD_WORKERS", "0")),
                },
                ensure_ascii=False,
                indent=1,
            )
        )
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=20)
        if args.keep_db:
            print(f"kept database {dbname}")
        else:
            asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

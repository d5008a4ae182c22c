"""A whole platform on PostgreSQL with N pooled patents, for bench/portal_bench.py --setup N.

Creates three scratch databases, starts catalog, matching, indicators and the portal as
uvicorn subprocesses on free loopback ports, and loads through the APIs: a university
(owner of every patent), an SME, the city bureau, one person each; N patents (demo texts
recombined, as bench/catalog_bench.py) uploaded in 50,000-record NDJSON jobs; every patent
pooled through POST /v1/listings/bulk by the city bureau (demo-style offer terms, entry
dates back-dated over 2021-2023);
60 effective deals over 2021-2023. Then it waits until matching has indexed and indicators
has counted everything on the catalog feed.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalog_bench import OWNER, make_records  # noqa: E402
from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from shared.auth import Role  # noqa: E402
from shared.db import upgrade  # noqa: E402
from shared.testing import _pg_admin, free_port  # noqa: E402

PASSWORD = "bench-pass-2024"


def wait(url: str, path: str = "/readyz", timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def serve(
    module: str,
    port: int,
    env: dict[str, str],
    log: Path,
    workers: int = 1,
    profile: Path | None = None,
) -> subprocess.Popen[bytes]:
    # Under cProfile the process writes `profile` when SIGINT stops it (uvicorn re-raises
    # the signal it stopped on; SIGTERM would end the process before cProfile writes).
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [sys.executable, *prof, "-m", "uvicorn", f"{module}:create_app", "--factory",
           "--port", str(port), "--log-level", "warning"]  # fmt: skip
    if workers > 1:  # matching's own supervisor (services/matching/workers.py), as run locally
        cmd = [sys.executable, "-m", module.removesuffix(".main"), "--workers", str(workers),
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(
        cmd, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def feed_head(catalog: str) -> int:
    after = 0
    with httpx.Client(base_url=catalog, timeout=60) as c:
        while True:
            page = c.get("/v1/feed", params={"after": after, "limit": 5000}).json()
            after = page["next_after"]
            if not page["has_more"]:
                return int(after)


def keyword_index_at(catalog: str, head: int) -> bool:
    """Whether the catalog's keyword index reflects its feed up to `head` (/readyz says)."""
    check = str(httpx.get(catalog + "/readyz", timeout=10).json().get("keyword_index", ""))
    m = re.search(r"at feed (\d+)", check)
    return m is not None and int(m.group(1)) >= head


def pool_all(catalog: str, bureau_key: str, numbers: list[str]) -> float:
    """Pool every patent through the public API: POST /v1/listings/bulk, 10,000 per
    request, as the city bureau migrating a pool (entry dates back-dated over 2021-2023,
    demo-style offer terms). Returns patents pooled per second."""
    from services.catalog.demo.load import _terms

    rng = random.Random(7)
    start = date(2021, 1, 4)
    t = time.perf_counter()
    with httpx.Client(base_url=catalog, timeout=900,
                      headers={"Authorization": f"Bearer {bureau_key}"}) as c:  # fmt: skip
        for i in range(0, len(numbers), 10_000):
            items = [
                {"application_number": n,
                 "terms": _terms(rng).model_dump(mode="json", exclude_defaults=True),
                 "listed_at": (start + timedelta(days=rng.randrange(0, 3 * 365 - 5))).isoformat()}
                for n in numbers[i : i + 10_000]
            ]  # fmt: skip
            r = c.post("/v1/listings/bulk", json={"items": items})
            assert r.status_code == 200, r.text
            assert r.json()["summary"]["listed"] == len(items), r.json()["summary"]
    return len(numbers) / (time.perf_counter() - t)


@contextmanager
def platform(
    n: int,
    pg: str,
    log_dir: Path,
    *,
    name: str = "portalbench",
    convert_listings: bool = False,
    matching_workers: int = 1,
    profile: frozenset[str] = frozenset(),
) -> Iterator[dict[str, Any]]:
    """`convert_listings`: the catalog follows the indicators feed, as in production, so a
    deal takes its patents out of the pool (bench/load_mix.py measures that path too).
    `matching_workers` > 1 serves matching from that many processes. Services named in
    `profile` run under cProfile and leave `<log_dir>/<service>.prof` when stopped."""
    log_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{name}_{os.getpid()}"
    urls = {
        s: pg.rsplit("/", 1)[0] + f"/tjp_{tag}_{s}" for s in ("catalog", "matching", "indicators")
    }
    for s in urls:
        asyncio.run(_pg_admin(pg, f'CREATE DATABASE "tjp_{tag}_{s}"'))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(MIGRATIONS, urls["catalog"])
        _, admin = asyncio.run(
            create_org_with_key(
                urls["catalog"],
                {"kind": "other", "name": "平台管理员", "district": "heping"},
                Role.ADMIN,
            )
        )
        ports = {s: free_port() for s in ("catalog", "matching", "indicators", "portal")}
        base = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
        common = {"CATALOG_URL": base["catalog"], "MATCHING_URL": base["matching"],
                  "INDICATORS_URL": base["indicators"]}  # fmt: skip
        for s in ("catalog", "matching", "indicators", "portal"):
            env = {f"{s.upper()}_{k}": v for k, v in common.items()}
            if s != "portal":
                env[f"{s.upper()}_DATABASE_URL"] = urls[s]
            if s == "catalog" and not convert_listings:
                env.pop("CATALOG_INDICATORS_URL")  # deals need not convert listings here
            if s == "matching":
                env["MATCHING_INDEX_DIR"] = str(log_dir / "matching-index")
            env["PORTAL_UPLOAD_DIR"] = str(log_dir / "uploads")
            workers = matching_workers if s == "matching" else 1
            prof = log_dir / f"{s}.prof" if s in profile else None
            procs.append(
                serve(f"services.{s}.main", ports[s], env, log_dir / f"{s}.log", workers, prof)
            )
            wait(base[s], "/healthz" if s == "portal" else "/readyz")
        t0 = time.perf_counter()
        people: dict[str, dict[str, Any]] = {}
        with httpx.Client(base_url=base["catalog"], timeout=600,
                          headers={"Authorization": f"Bearer {admin}"}) as c:  # fmt: skip
            for role, kind, name, district, extra in (
                ("supplier", "university", OWNER, "nankai", {}),
                (
                    "sme",
                    "sme",
                    "天津基准科技有限公司",
                    "binhai",
                    {"is_sme": True, "sme_basis": "小型企业"},
                ),
                ("city_bureau", "other", "天津市知识产权局（基准）", "hexi", {}),
            ):
                r = c.post(
                    "/v1/organisations",
                    json={"kind": kind, "name": name, "district": district, **extra},
                )
                assert r.status_code == 201, r.text
                org = r.json()["id"]
                key = c.post(f"/v1/organisations/{org}/keys", json={"role": role}).json()["key"]
                login = f"{role}@bench.cn"
                r = c.post(f"/v1/organisations/{org}/people",
                           json={"name": role, "email": login, "password": PASSWORD, "role": role})  # fmt: skip
                assert r.status_code == 201, r.text
                people[role] = {"org_id": org, "key": key, "login": login, "password": PASSWORD}
        records = make_records(n)
        uni = {
            "Authorization": f"Bearer {people['supplier']['key']}",
            "content-type": "application/x-ndjson",
        }
        with httpx.Client(base_url=base["catalog"], timeout=900) as c:
            for i in range(0, n, 50_000):
                body = b"\n".join(orjson.dumps(r) for r in records[i : i + 50_000])
                r = c.post("/v1/patents/bulk", content=body, headers=uni)
                if r.status_code == 202:
                    while (s := c.get(r.json()["poll"], headers=uni).json())["status"] not in (
                        "done",
                        "failed",
                    ):
                        time.sleep(0.5)
                    assert s["status"] == "done", s
        print(f"setup: {n:,} patents uploaded in {time.perf_counter() - t0:.0f} s", flush=True)
        numbers = [r["application_number"] for r in records]
        rate = pool_all(base["catalog"], people["city_bureau"]["key"], numbers)
        print(f"setup: pooled in {time.perf_counter() - t0:.0f} s "
              f"(bulk listing {rate:,.0f} patents/s)", flush=True)  # fmt: skip
        city = {"Authorization": f"Bearer {people['city_bureau']['key']}"}
        head = feed_head(base["catalog"])
        deadline = time.monotonic() + 1800
        while True:  # indicators must know the patents before deals can name them
            at = (
                httpx.get(base["indicators"] + "/readyz", timeout=10).json().get("catalog_feed", "")
            )
            if at.startswith("ok at ") and int(at.split()[-1]) >= head:
                break
            assert time.monotonic() < deadline, at
            time.sleep(1)
        with httpx.Client(base_url=base["indicators"], timeout=60, headers=city) as c:
            for i in range(60):
                year = 2021 + i % 3
                body = {
                    "kind": "assignment", "status": "effective",
                    "application_numbers": [numbers[i * 3]],
                    "supplier_org_ids": [people["supplier"]["org_id"]],
                    "recipient_org_id": people["sme"]["org_id"],
                    "contract_date": f"{year}-04-01", "effective_date": f"{year}-04-10",
                    "evidence": {"type": "transfer_registration", "number": f"BENCH-{i:05d}",
                                 "date": f"{year}-04-10"},
                    "contract_amount": "50000",
                }  # fmt: skip
                r = c.post("/v1/deals", json=body)
                assert r.status_code == 201, r.text
        while True:
            st = httpx.get(base["matching"] + "/v1/index", timeout=10).json()
            if st["patents"]["position"] >= head:
                break
            assert time.monotonic() < deadline, st
            time.sleep(1)
        print(f"setup: indexed and counted in {time.perf_counter() - t0:.0f} s", flush=True)
        # The catalog's keyword index follows its own feed and rebuilds after a large
        # upload; until it is current, keyword searches take the plain scan.
        while not keyword_index_at(base["catalog"], head):
            assert time.monotonic() < deadline, "the catalog's keyword index never caught up"
            time.sleep(1)
        print(f"setup: keyword index current in {time.perf_counter() - t0:.0f} s", flush=True)
        yield {
            "portal": base["portal"],
            "people": people,
            "base": base,
            "numbers": numbers,
            "admin_key": admin,
            "databases": urls,
            "pids": {
                s: p.pid
                for s, p in zip(("catalog", "matching", "indicators", "portal"), procs, strict=True)
            },
        }
    finally:
        for s, p in zip(("catalog", "matching", "indicators", "portal"), procs, strict=False):
            p.send_signal(signal.SIGINT if s in profile else signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for s in urls:
            asyncio.run(_pg_admin(pg, f'DROP DATABASE IF EXISTS "tjp_{tag}_{s}" WITH (FORCE)'))

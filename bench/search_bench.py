"""Keyword search at N patents, plain scan vs the in-memory character index, in one run.

    .venv/bin/python bench/search_bench.py [--n 100000] [--engine postgresql|sqlite]
        [--queries 60] [--smoke]

For each mode (CATALOG_KEYWORD_INDEX=false: every keyword search scans patent_search, the
code before the index; =true: domain/keywords.py) a fresh database, a catalog uvicorn
process, a bulk upload of the same N records through the API (timed: the index must not
slow it), then GET /v1/patents?q= latency by keyword class over HTTP. Records are the demo
texts recombined (bench/catalog_bench.py) plus 20 planted records carrying words whose
characters occur nowhere else (the rare classes: each such keyword is in one patent).
Queries mix the filters and sorts the catalog bench uses. Figures on a shared machine are
noisy: `uptime` is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalog_bench import OWNER, make_records, percentile, vm_hwm_mb  # noqa: E402
from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.domain.textnorm import search_text  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from shared.auth import Role  # noqa: E402
from shared.db import upgrade  # noqa: E402
from shared.testing import _pg_admin, free_port  # noqa: E402

FILTERS: list[dict[str, str]] = [
    {},
    {"pool_status": "unlisted"},
    {"ipc": "H01M"},
    {"sort": "-grant_date"},
    {"patent_type": "invention"},
]
WORDS_3PLUS = ["传感器", "锂离子电池", "无人机", "混凝土", "催化剂", "机器人", "量子点"]
ABSENT_3PLUS = ["不存在的词语", "鑫鑫鑫", "量子纠缠泡面", "天津煎饼果子机"]
TWO_TERMS = ["电池 正极", "一种 方法", "传感器 无线", "纳米 材料"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def is_cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


def keyword_classes(records: list[dict], rng: random.Random) -> tuple[dict[str, list[str]], list]:
    """Keyword classes, and the planted words (each to go into exactly one record)."""
    texts = {search_text(r["title"], r["abstract"]) for r in records[:5000]}
    texts |= {search_text(r["title"], r["abstract"]) for r in rng.sample(records, 2000)}
    chars: Counter[str] = Counter(c for t in texts for c in set(t) if is_cjk(c))
    bigrams: Counter[str] = Counter(
        t[i : i + 2] for t in texts for i in range(len(t) - 1) if all(map(is_cjk, t[i : i + 2]))
    )
    unused = [chr(cp) for cp in range(0x4E00, 0x9FA5) if chr(cp) not in chars]
    rng.shuffle(unused)
    planted = ["".join(unused[2 * i : 2 * i + 2]) for i in range(20)]
    absent = unused[40:80]
    common_chars = [c for c, _ in chars.most_common(20)]
    absent_pairs: list[str] = []
    while len(absent_pairs) < 10:  # two common characters, never side by side
        pair = rng.choice(common_chars) + rng.choice(common_chars)
        if pair not in bigrams and pair[0] != pair[1]:
            absent_pairs.append(pair)
    classes = {
        "1 char, common": common_chars,
        "1 char, rare (in 1 patent)": [w[0] for w in planted],
        "1 char, absent": absent[:20],
        "2 chars, common": [b for b, _ in bigrams.most_common(20)],
        "2 chars, rare (in 1 patent)": planted,
        "2 chars, absent (common chars)": absent_pairs,
        "3+ chars, present": WORDS_3PLUS,
        "3+ chars, absent": ABSENT_3PLUS + ["".join(absent[20:23]), "".join(absent[23:27])],
        "two terms": TWO_TERMS,
    }
    return classes, planted


def start_catalog(
    url: str, index: bool, profile: Path | None = None
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CATALOG_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
           "CATALOG_MAX_UPLOAD_RECORDS": "50000",
           "CATALOG_KEYWORD_INDEX": "true" if index else "false"}  # fmt: skip
    # Under cProfile the server writes its profile when it is stopped (see run_mode).
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen(
        [sys.executable, *prof, "-m", "uvicorn", "services.catalog.main:create_app",
         "--factory", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(api + "/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return proc, api


def upload(c: httpx.Client, key: str, records: list[dict]) -> float:
    """Bulk upload in 50,000-record files; patents per second."""
    auth = {"Authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    for i in range(0, len(records), 50_000):
        chunk = records[i : i + 50_000]
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in chunk).encode()
        r = c.post("/v1/patents/bulk", content=body,
                   headers={**auth, "content-type": "application/x-ndjson"})  # fmt: skip
        s = r.json()
        while r.status_code == 202 and s.get("status") not in ("done", "failed"):
            time.sleep(0.05)
            s = c.get(r.json()["poll"], headers=auth).json()
        summary = s["summary"]
        assert summary["accepted"] == len(chunk), summary
    return len(records) / (time.perf_counter() - t0)


def wait_index(c: httpx.Client, n: int) -> float:
    """Until /readyz shows the index over everything uploaded; seconds."""
    t = time.perf_counter()
    while True:
        c.get("/v1/patents", params={"q": "电池"})  # a search notices the backlog
        state = c.get("/readyz").json().get("keyword_index", "")
        counts = re.match(r"(\d+) patents in \d+ segment\(s\) \+ (\d+) changed", state)
        if counts and int(counts[1]) + int(counts[2]) >= n:
            return time.perf_counter() - t
        if time.perf_counter() - t > 600:
            raise TimeoutError(state)
        time.sleep(0.2)


def run_mode(
    args: argparse.Namespace, index: bool, records: list[dict], classes: dict[str, list[str]]
) -> dict:
    if args.engine == "postgresql":
        dbname = f"tjp_searchbench_{os.getpid()}_{int(index)}"
        asyncio.run(_pg_admin(args.pg, f'CREATE DATABASE "{dbname}"'))
        url = args.pg.rsplit("/", 1)[0] + "/" + dbname
    else:
        path = Path(f"/tmp/tjp-searchbench-{os.getpid()}-{int(index)}.db")
        url = f"sqlite+aiosqlite:///{path}"
    out: dict = {"mode": "index" if index else "scan", "uptime_before": uptime()}
    proc = None
    try:
        upgrade(MIGRATIONS, url)
        _, key = asyncio.run(create_org_with_key(
            url, {"kind": "university", "name": OWNER, "district": "nankai"}, Role.SUPPLIER))  # fmt: skip
        profile = (
            Path(f"/tmp/tjp-searchbench-{os.getpid()}.prof") if index and args.profile else None
        )
        proc, api = start_catalog(url, index, profile)
        with httpx.Client(base_url=api, timeout=600) as c:
            assert key
            out["upload_patents_per_s"] = round(upload(c, key, records))
            if index:
                out["index_build_after_upload_s"] = round(wait_index(c, len(records)), 1)
                out["index"] = c.get("/readyz").json()["keyword_index"]
            rng = random.Random(5)
            per_class: dict[str, list[float]] = {}
            for name, words in classes.items():
                lat = per_class.setdefault(name, [])
                for i in range(args.queries):
                    params: dict[str, Any] = {
                        "q": rng.choice(words),
                        **FILTERS[i % len(FILTERS)],
                        "limit": 20,
                    }
                    t = time.perf_counter()
                    r = c.get("/v1/patents", params=params)
                    lat.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
            out["classes"] = {
                name: {"p50_ms": round(percentile(lat, 50), 1),
                       "p99_ms": round(percentile(lat, 99), 1)}
                for name, lat in per_class.items()
            }  # fmt: skip
            every = [x for lat in per_class.values() for x in lat]
            out["all_p99_ms"] = round(percentile(every, 99), 1)
            out["server_peak_rss_mb"] = round(vm_hwm_mb(proc.pid))
        out["uptime_after"] = uptime()
    finally:
        if proc:
            # uvicorn re-raises the signal that stopped it: SIGINT ends in KeyboardInterrupt,
            # which lets cProfile write its file (SIGTERM would kill it first).
            proc.send_signal(signal.SIGINT if profile else signal.SIGTERM)
            proc.wait(timeout=60)
        if proc and profile and profile.exists():
            print_profile(profile)
        if args.engine == "postgresql":
            asyncio.run(_pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    return out


def print_profile(path: Path, top: int = 30) -> None:
    """The catalog's own time (upload, index build and the queries), heaviest first."""
    import pstats

    stats = pstats.Stats(str(path))
    print(f"\ncatalog profile (index mode, whole run), top {top} by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print(f"\nthe project's own functions, top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(r"/(services|shared)/", top)
    path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument(
        "--pg",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--queries", type=int, default=60, help="per keyword class")
    ap.add_argument("--smoke", action="store_true", help="2,000 patents, 5 queries a class")
    ap.add_argument("--only-index", action="store_true", help="skip the plain-scan run")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="run the catalog under cProfile in the index run and print its top costs",
    )
    args = ap.parse_args()
    if args.smoke:
        args.n, args.queries = 2_000, 5
    print(f"machine: {os.cpu_count()} cores; {uptime()}", flush=True)
    rng = random.Random(7)
    records = make_records(args.n)
    classes, planted = keyword_classes(records, rng)
    for k, word in enumerate(planted):  # each planted word in exactly one record
        r = records[k * (args.n // len(planted))]
        r["title"] = f"{r['title']}（{word}型）"
    if args.only_index:
        print(json.dumps(run_mode(args, True, records, classes), ensure_ascii=False), flush=True)
        return
    results = [run_mode(args, False, records, classes), run_mode(args, True, records, classes)]
    for r in results:
        print(json.dumps(r, ensure_ascii=False), flush=True)
    scan, idx = results
    print(f"\nGET /v1/patents?q= at {args.n:,} patents on {args.engine}, {args.queries} queries "
          "a class over HTTP, filters and sorts mixed (ms):\n")  # fmt: skip
    print("| keyword class | scan p50 | scan p99 | index p50 | index p99 |")
    print("|---|---|---|---|---|")
    for name in classes:
        a, b = scan["classes"][name], idx["classes"][name]
        print(f"| {name} | {a['p50_ms']} | {a['p99_ms']} | {b['p50_ms']} | {b['p99_ms']} |")
    print(f"| every class | | {scan['all_p99_ms']} | | {idx['all_p99_ms']} |")
    print(f"\nbulk upload, patents/s: scan (no index) {scan['upload_patents_per_s']}, "
          f"with the index {idx['upload_patents_per_s']}")  # fmt: skip
    print(f"index built {idx['index_build_after_upload_s']} s after the upload: {idx['index']}")
    print(f"catalog peak RSS, MB: scan {scan['server_peak_rss_mb']}, "
          f"index {idx['server_peak_rss_mb']}")  # fmt: skip
    print(f"uptime: {scan['uptime_before']} ... {idx['uptime_after']}")


if __name__ == "__main__":
    main()

"""Through HTTP: query latency, throughput under concurrent load, upload-to-matchable delay.

    .venv/bin/python -m bench.matching.http_bench --docs 100000

Starts a real catalog and a real matching service (uvicorn subprocesses, SQLite). The
matching service starts from an index snapshot of N SYNTHETIC patents (real sentences
recombined, see perf.py) whose rows are bulk-inserted into its database; uploads then go
through the catalog API and the feed like in production.

Latency is measured with one keep-alive connection (http.client, sequential requests: the
client adds ~0.1 ms); throughput and latency under load with an asyncio load generator at
concurrency 1/8/32 (a minimal HTTP/1.1 client on asyncio streams, ~0.1-0.2 ms of CPU a
request; httpx's AsyncClient, used before, cost ~2 ms, taken from the servers' cores). Every client runs in its own process (the services are
uvicorn subprocesses too), so nothing shares the matching server's GIL; but all of them
share the machine's cores, so throughput figures include the load generator's CPU use.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from bench.matching.corpus import dev_need_ids, load_needs
from bench.matching.perf import _analyse, synthetic

BASE_ID = 10_000_000


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def serve(factory: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", factory, "--factory", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def prepare(n: int, tmp: Path) -> tuple[str, str]:
    from sqlalchemy import create_engine, insert

    from services.matching.domain.index import Attrs, MatchIndex
    from services.matching.main import MIGRATIONS
    from services.matching.models import Listing, Organisation, Patent
    from shared.db import upgrade

    url = f"sqlite+aiosqlite:///{tmp}/matching.db"
    upgrade(MIGRATIONS, url)
    docs = list(synthetic(n))
    eng = create_engine(f"sqlite:///{tmp}/matching.db")
    with eng.begin() as conn:
        conn.execute(insert(Organisation), [{"id": BASE_ID, "kind": "university",
                     "name": "合成数据大学", "district": "nankai", "is_sme": False, "feed_pos": 0}])  # fmt: skip
        for i in range(0, n, 20_000):
            chunk = docs[i : i + 20_000]
            conn.execute(insert(Patent), [
                {"id": BASE_ID + i + j, "application_number": f"SYN{i + j:09d}",
                 "patent_type": "invention", "title": t, "abstract": a, "claims": None,
                 "ipc_codes": [], "industries": [], "patentees": ["合成数据大学"],
                 "owner_org_ids": [BASE_ID], "legal_status": "granted", "version": 1,
                 "index_pos": 0} for j, (t, a) in enumerate(chunk)])  # fmt: skip
            conn.execute(insert(Listing), [
                {"id": BASE_ID + i + j, "patent_id": BASE_ID + i + j, "status": "listed",
                 "modes": ["assignment"], "price_cny": "10000.00", "negotiable": True,
                 "zero_price": False, "use_first_pay_later": False,
                 "deferred_licence_fee": False, "feed_pos": 0} for j in range(len(chunk))])  # fmt: skip
    eng.dispose()
    batches = [docs[i : i + 2000] for i in range(0, n, 2000)]
    idx = MatchIndex()
    with mp.get_context("fork").Pool(2) as pool:
        idx.build(
            (BASE_ID + k, bag, Attrs(pooled=True, modes=1, patent_type=1, districts=1 << 3))
            for k, (bag, _) in enumerate(b for res in pool.imap(_analyse, batches) for b in res)
        )
    idx.save(tmp / "index", "patents")
    return url, str(tmp / "index")


def latencies(port: int, texts: list[str], n: int, warmup: int = 20) -> list[float]:
    """Sequential POST /v1/match on one keep-alive connection; milliseconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"}
    out = []
    try:
        for i in range(n + warmup):
            body = json.dumps({"text": texts[i % len(texts)]}, ensure_ascii=False).encode()
            t = time.perf_counter()
            conn.request("POST", "/v1/match", body, headers)
            r = conn.getresponse()
            data = r.read()
            if i >= warmup:
                out.append((time.perf_counter() - t) * 1000)
            assert r.status == 200, data[:500]
    finally:
        conn.close()
    return out


async def load(url: str, texts: list[str], seconds: float, concurrency: int) -> dict:
    """`concurrency` keep-alive connections, each sending its next request as soon as the
    last answer is read. The client is a minimal HTTP/1.1 one over asyncio streams (requests
    encoded up front, responses read by Content-Length): httpx's AsyncClient cost ~2 ms of
    CPU a request, on the cores the servers need."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        b"POST /v1/match HTTP/1.1\r\nHost: %s:%d\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (host.encode(), port, len(body), body)
        for body in (json.dumps({"text": t}, ensure_ascii=False).encode() for t in texts)
    ]
    done = 0
    lat: list[float] = []
    stop = time.monotonic() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < stop:
                t = time.perf_counter()
                writer.write(requests[(i + done) % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line[:15].lower() == b"content-length:"
                )
                await reader.readexactly(length)
                lat.append((time.perf_counter() - t) * 1000)
                assert head[9:12] == b"200", head
                done += 1
        finally:
            writer.close()

    t, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    rps = done / (time.monotonic() - t)
    cpu = time.process_time() - cpu
    return {"rps": round(rps), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "requests": done,
            "client_cpu_ms_per_request": round(cpu * 1000 / max(1, done), 2)}  # fmt: skip


def load_process(url: str, texts: list[str], seconds: float, concurrency: int) -> dict:
    return asyncio.run(load(url, texts, seconds, concurrency))


def in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a client in a fresh process (spawned: no copy of this one's corpus)."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def worker_pids(master: int) -> list[int]:
    """The uvicorn workers under `python -m services.matching` (or the process itself)."""
    kids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master):
            kids.append(int(status.parent.name))
    # uvicorn's multiprocessing also starts a resource tracker: workers are the big ones.
    return [k for k in kids if rss_mb(k) > 100] or [master]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_workers(url: str, n: int, timeout: float = 300) -> None:
    """Until n distinct worker pids answered /v1/index (they start one after the other)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < n:
        try:
            seen.add(httpx.get(f"{url}/v1/index", timeout=5).json()["worker"]["pid"])
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(seen)} of {n} workers answered")
        time.sleep(0.05)


def measure(
    workers: int, run: int, args: argparse.Namespace, tmp: Path, murl: str, index_dir: str,
    cport: int, key: str, texts: list[str], levels: tuple[int, ...], load_s: float,
) -> dict:  # fmt: skip
    from shared.appno import make_application_number
    from shared.testing import free_port

    mport = free_port()
    log = (tmp / f"matching-{workers}w.log").open("w")
    t = time.perf_counter()
    mat = subprocess.Popen(
        [sys.executable, "-m", "services.matching", "--port", str(mport)],
        env={**os.environ, "MATCHING_DATABASE_URL": murl, "MATCHING_WORKERS": str(workers),
             "MATCHING_CATALOG_URL": f"http://127.0.0.1:{cport}",
             "MATCHING_INDEX_DIR": index_dir, "MATCHING_FEED_IDLE_INTERVAL": "0.05"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    murl_http = f"http://127.0.0.1:{mport}"
    out: dict = {"workers": workers, "uptime_before": uptime()}
    try:
        wait_ready(murl_http, timeout=600)
        wait_workers(murl_http, workers)
        out["matching_start_s"] = round(time.perf_counter() - t, 1)
        pids = worker_pids(mat.pid)
        out["rss_mb_per_worker"] = [round(rss_mb(p)) for p in pids]
        lat = in_child(latencies, mport, texts, args.queries)
        out["http_p50_ms"] = round(float(np.percentile(lat, 50)), 2)
        out["http_p90_ms"] = round(float(np.percentile(lat, 90)), 2)
        out["http_p99_ms"] = round(float(np.percentile(lat, 99)), 2)
        out["http_max_ms"] = round(max(lat), 2)
        for conc in levels:
            before = sum(cpu_s(p) for p in pids)
            res = in_child(load_process, murl_http, texts, load_s, conc)
            res["server_cpu_ms_per_request"] = round(
                (sum(cpu_s(p) for p in pids) - before) * 1000 / max(1, res["requests"]), 2
            )
            out[f"load_c{conc}"] = res
        out["rss_mb_per_worker_after_load"] = [round(rss_mb(p)) for p in pids]
        delays = []
        with httpx.Client(base_url=f"http://127.0.0.1:{cport}", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as cc:  # fmt: skip
            for i in range(3 if args.smoke else 10):
                word = f"钌铱催化第{run}{i}号基准样品"
                appno = make_application_number(2020, "1", 900_000 + run * 100 + i)
                t = time.perf_counter()
                r = cc.post("/v1/patents", json={
                    "application_number": appno, "title": word, "abstract": word + "的制备。",
                    "patentees": ["天津基准大学"], "legal_status": "granted",
                    "application_date": "2020-01-01", "grant_date": "2022-01-01"})  # fmt: skip
                assert r.status_code == 201, r.text
                r = cc.post("/v1/listings", json={"application_number": appno,
                            "modes": ["assignment"], "price_cny": "1000"})  # fmt: skip
                assert r.status_code == 201, r.text
                # Matchable on every worker: new connections land on either; ask until 2 *
                # workers answers in a row have it.
                in_a_row = 0
                while in_a_row < 2 * workers:
                    hits = httpx.post(f"{murl_http}/v1/match", json={"text": word, "k": 50},
                                      timeout=30).json()["hits"]  # fmt: skip
                    found = any(h["application_number"] == appno for h in hits)
                    in_a_row = in_a_row + 1 if found else 0
                    if time.perf_counter() - t > 30:
                        raise TimeoutError("upload never became matchable")
                    if not found:
                        time.sleep(0.01)
                delays.append(time.perf_counter() - t)
        out["upload_to_matchable_median_s"] = round(float(np.median(delays)), 3)
        out["upload_to_matchable_max_s"] = round(max(delays), 3)
        out["uptime_after"] = uptime()
    finally:
        mat.send_signal(2)  # SIGINT: uvicorn stops its workers, the leader snapshots
        try:
            mat.wait(60)
        except subprocess.TimeoutExpired:
            mat.kill()
        log.close()
    return out


ROWS = [
    ("start (s, until every worker answers)", lambda r: r["matching_start_s"]),
    ("RSS per worker after start (MB)", lambda r: r["rss_mb_per_worker"]),
    ("RSS per worker after load (MB)", lambda r: r["rss_mb_per_worker_after_load"]),
    ("1 client sequential, p50 ms", lambda r: r["http_p50_ms"]),
    ("1 client sequential, p99 ms", lambda r: r["http_p99_ms"]),
    ("1 client sequential, max ms", lambda r: r["http_max_ms"]),
]


def table(results: list[dict], levels: tuple[int, ...]) -> str:
    rows: list[tuple[str, Callable[..., Any]]] = list(ROWS)
    for c in levels:
        rows += [
            (f"{c} clients, requests/s", lambda r, c=c: r[f"load_c{c}"]["rps"]),
            (f"{c} clients, p50 ms", lambda r, c=c: r[f"load_c{c}"]["p50_ms"]),
            (f"{c} clients, p99 ms", lambda r, c=c: r[f"load_c{c}"]["p99_ms"]),
            (f"{c} clients, server CPU ms per request (all workers)",
             lambda r, c=c: r[f"load_c{c}"]["server_cpu_ms_per_request"]),
            (f"{c} clients, load generator CPU ms per request",
             lambda r, c=c: r[f"load_c{c}"]["client_cpu_ms_per_request"]),
        ]  # fmt: skip
    rows += [
        ("upload → matchable on every worker, median s",
         lambda r: r["upload_to_matchable_median_s"]),
        ("upload → matchable on every worker, max s", lambda r: r["upload_to_matchable_max_s"]),
    ]  # fmt: skip
    head = "| figure | " + " | ".join(f"{r['workers']} worker(s)" for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    lines += ["| " + name + " | " + " | ".join(str(f(r)) for r in results) + " |"
              for name, f in rows]  # fmt: skip
    base = results[0]
    for r in results[1:]:
        for c in levels:
            ratio = r[f"load_c{c}"]["rps"] / max(1, base[f"load_c{c}"]["rps"])
            lines.append(
                f"\nthroughput at {c} clients, {r['workers']} workers / {base['workers']}: "
                f"{ratio:.2f}x"
            )
    cores = os.cpu_count() or 1
    c8 = "load_c8" if 8 in levels else f"load_c{max(levels)}"
    per = base[c8]["server_cpu_ms_per_request"] + base[c8]["client_cpu_ms_per_request"]
    if per > 0:
        lines.append(
            f"\nceiling on this machine: {cores} cores / ({base[c8]['server_cpu_ms_per_request']}"
            f" server + {base[c8]['client_cpu_ms_per_request']} load-generator CPU ms a request)"
            f" = {cores * 1000 / per:.0f} requests/s if nothing else runs; one worker is capped"
            f" at one core = {1000 / base[c8]['server_cpu_ms_per_request']:.0f} requests/s"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument(
        "--workers", default="1,2", help="worker counts to compare, one run each (e.g. 1,2)"
    )
    ap.add_argument("--smoke", action="store_true", help="2,000 patents, short runs (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.docs, args.queries = 2_000, 30
    load_s, levels = (2, (8,)) if args.smoke else (10, (1, 8, 32))
    counts = [int(w) for w in args.workers.split(",")]
    from services.catalog.main import MIGRATIONS as CAT_MIG
    from shared.auth import Role
    from shared.db import upgrade
    from shared.testing import free_port
    from tests.conftest import next_uscc

    print(f"machine: {os.cpu_count()} cores; {uptime()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="tjp-httpbench-"))
    t0 = time.perf_counter()
    murl, index_dir = prepare(args.docs, tmp)
    print(f"prepared {args.docs} synthetic patents in {time.perf_counter() - t0:.0f}s", flush=True)
    curl = f"sqlite+aiosqlite:///{tmp}/catalog.db"
    upgrade(CAT_MIG, curl)
    from services.catalog.cli import create_org_with_key

    _, key = asyncio.run(create_org_with_key(
        curl, {"kind": "university", "name": "天津基准大学", "district": "nankai",
               "uscc": next_uscc()}, Role.SUPPLIER))  # fmt: skip
    assert key is not None  # a supplier organisation is made with a key
    cport = free_port()
    cat = serve("services.catalog.main:create_app", cport, {"CATALOG_DATABASE_URL": curl},
                tmp / "catalog.log")  # fmt: skip
    needs = load_needs()
    texts = [needs[i].title + "。" + needs[i].description for i in dev_need_ids()]
    results = []
    try:
        wait_ready(f"http://127.0.0.1:{cport}")
        for run, workers in enumerate(counts):
            r = measure(workers, run, args, tmp, murl, index_dir, cport, key, texts, levels,
                        load_s)  # fmt: skip
            print(json.dumps({"docs": args.docs, **r}, ensure_ascii=False), flush=True)
            results.append(r)
    finally:
        cat.terminate()
        cat.wait(30)
    print(f"\nPOST /v1/match at {args.docs:,} patents (SQLite; the load generator shares the "
          f"machine's {os.cpu_count()} cores with the workers; uptime per run in the JSON "
          "lines above):\n")  # fmt: skip
    print(table(results, levels), flush=True)


if __name__ == "__main__":
    main()

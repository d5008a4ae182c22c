"""Event-loop stall during a synchronous bulk upload.

    .venv/bin/python bench/loop_stall.py [--records 2000] [--rounds 3] [--smoke]

Starts the catalog as its own uvicorn process on SQLite (a temporary directory), then
pings `/healthz` every 5 ms from a separate thread while a supplier uploads `--records`
new patents in one synchronous request (answered at once, up to the synchronous limit).
Two figures per upload: the loop's own stall (a task inside the service sleeps 2 ms in
a loop and records how late it wakes: the longest time the loop could run nothing else)
and the worst `/healthz` latency seen by the client (the stall plus thread and OS
scheduling on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.catalog.cli import create_org_with_key  # noqa: E402
from services.catalog.main import MIGRATIONS  # noqa: E402
from shared.appno import make_application_number  # noqa: E402
from shared.auth import Role  # noqa: E402
from shared.db import upgrade  # noqa: E402
from shared.testing import free_port  # noqa: E402

OWNER = "天津卡顿测试大学"


def records(n: int, start: int) -> list[dict[str, object]]:
    return [
        {
            "application_number": make_application_number(2019, "1", start + i),
            "title": f"一种锂离子电池正极材料的制备方法{i}",
            "abstract": "本发明公开了一种锂离子电池正极材料，提高了电池的循环寿命和安全性。" * 3,
            "ipc_codes": ["H01M 4/131", "H01M10/0525"],
            "patentees": [OWNER],
            "inventors": ["张三", "李四"],
            "application_date": "2019-03-01",
            "grant_date": "2021-05-01",
            "legal_status": "granted",
        }
        for i in range(n)
    ]


def lag_app() -> object:
    """The catalog app plus `/_lag`: the worst event-loop lag since the previous call."""
    import gc

    from services.catalog.main import create_app

    app = create_app()
    state: dict[str, Any] = {"worst": 0.0, "task": None, "gc": 0.0, "gc_start": 0.0}

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            state["gc_start"] = time.perf_counter()
        else:
            state["gc"] = max(state["gc"], time.perf_counter() - state["gc_start"])

    gc.callbacks.append(gc_timer)

    async def monitor() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.002)
            state["worst"] = max(state["worst"], time.perf_counter() - t0 - 0.002)

    @app.get("/_lag", include_in_schema=False)
    async def lag() -> dict[str, float]:
        if state["task"] is None:
            state["task"] = asyncio.create_task(monitor())
        worst, state["worst"] = state["worst"], 0.0
        gc_worst, state["gc"] = state["gc"], 0.0
        return {"worst_ms": worst * 1000, "gc_ms": gc_worst * 1000}

    return app


class Pinger(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, float]] = []  # (sent at, latency)
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                c.get("/healthz")
                self.samples.append((t0, time.perf_counter() - t0))
                time.sleep(0.005)

    def between(self, a: float, b: float) -> list[float]:
        return [lat for t, lat in self.samples if a <= t <= b]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny run (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.records, args.rounds = 50, 1
    tmp = Path(tempfile.mkdtemp(prefix="loop-stall-"))
    url = f"sqlite+aiosqlite:///{tmp}/catalog.db"
    upgrade(MIGRATIONS, url)
    _, key = asyncio.run(
        create_org_with_key(
            url, {"kind": "university", "name": OWNER, "district": "nankai"}, Role.SUPPLIER
        )  # fmt: skip
    )
    port = free_port()
    env = {**os.environ, "CATALOG_DATABASE_URL": url, "CATALOG_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.loop_stall:lag_app",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "catalog did not start"
            time.sleep(0.1)
        pinger = Pinger(base)
        pinger.start()
        time.sleep(1.0)
        idle = pinger.between(0, time.perf_counter())
        worst, stalls = [], []
        with httpx.Client(base_url=base, timeout=300,
                          headers={"Authorization": f"Bearer {key}"}) as c:  # fmt: skip
            for r in range(args.rounds):
                body = records(args.records, 100_000 + r * args.records)
                c.get("/_lag")
                t0 = time.perf_counter()
                resp = c.post("/v1/patents/bulk", json=body)
                t1 = time.perf_counter()
                lag = c.get("/_lag").json()
                stall = lag["worst_ms"]
                stalls.append(stall)
                assert resp.status_code == 200, resp.text[:300]
                assert resp.json()["summary"]["accepted"] == args.records
                during = pinger.between(t0, t1)
                worst.append(max(during) * 1000)
                print(f"round {r + 1}: upload of {args.records} records {t1 - t0:.2f} s; "
                      f"loop stall {stall:.0f} ms (longest GC pause {lag['gc_ms']:.0f} ms); "
                      f"{len(during)} pings, worst "
                      f"{max(during) * 1000:.0f} ms, "
                      f"median {statistics.median(during) * 1000:.1f} ms")  # fmt: skip
        pinger.stop.set()
        pinger.join()
        print(f"idle pings: median {statistics.median(idle) * 1000:.1f} ms, "
              f"worst {max(idle) * 1000:.1f} ms")  # fmt: skip
        print(
            f"worst loop stall during a {args.records}-record synchronous upload: "
            f"{max(stalls):.0f} ms (rounds: {', '.join(f'{w:.0f}' for w in stalls)})"
        )
        print(f"worst ping during a {args.records}-record synchronous upload: "
              f"{max(worst):.0f} ms (rounds: {', '.join(f'{w:.0f}' for w in worst)})")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()

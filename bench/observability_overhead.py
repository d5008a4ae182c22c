"""What the request id, metrics and rate-limit middleware cost per request.

    .venv/bin/python bench/observability_overhead.py            # 20,000 requests a variant
    .venv/bin/python bench/observability_overhead.py --smoke    # 300

Calls one service app's ASGI interface directly (no sockets, no HTTP parsing), so the
difference between variants is the middleware's own work: `bare` has the app's metrics
switched off and no limits; `metrics` records every request; `metrics+limits` also counts
each call against the production limits (compose's "20/second;600/minute"), the requests
spread over 1,000 keys so that none is refused, as many callers each under their limit
would be. Variants are run in alternating rounds and the median round is reported, in
microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from fastapi import APIRouter

from shared.app import create_service_app, noop_lifespan
from shared.settings import ServiceSettings

SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "http", "path": "/v1/match", "raw_path": b"/v1/match", "query_string": b"",
    "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    "headers": [(b"host", b"bench"), (b"content-length", b"2"),
                (b"content-type", b"application/json")],
}  # fmt: skip


PRODUCTION_LIMIT = "20/second;600/minute"
KEYS = [f"Bearer bench-key-{i}".encode() for i in range(1000)]


def make_app(variant: str) -> Any:
    app = create_service_app(title="bench", description="bench", lifespan=noop_lifespan)
    router = APIRouter()

    @router.post("/v1/match")
    async def match() -> dict[str, int]:
        return {"hits": 0}

    app.include_router(router)
    limit = PRODUCTION_LIMIT if variant == "metrics+limits" else ""
    app.state.settings = ServiceSettings(rate_limit_writes=limit, rate_limit_matching=limit)
    if variant == "bare":
        app.state.metrics = None
    return app


async def run(app: Any, n: int) -> float:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    for i in range(n):
        headers = [*SCOPE["headers"], (b"authorization", KEYS[i % len(KEYS)])]
        await app({**SCOPE, "headers": headers}, receive, send)
    elapsed = time.perf_counter() - start
    assert set(statuses) == {200}, set(statuses)
    return elapsed / n * 1e6


async def main(n: int, rounds: int) -> dict[str, float]:
    variants = ["bare", "metrics", "metrics+limits"]
    apps = {v: make_app(v) for v in variants}
    for app in apps.values():
        await run(app, 50)  # build the middleware stack, warm caches
    results: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            results[v].append(await run(apps[v], n // rounds))
    return {v: round(statistics.median(r), 1) for v, r in results.items()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    n = 300 if args.smoke else args.n
    us = asyncio.run(main(n, rounds=5))
    print(json.dumps({"requests_per_variant": n, "us_per_request": us,
                      "metrics_cost_us": round(us["metrics"] - us["bare"], 1),
                      "limits_cost_us": round(us["metrics+limits"] - us["metrics"], 1)}))  # fmt: skip

"""Per-key rate limits on writes and on matching, answered with 429 and `Retry-After`.

Two limits, each a `limits` rate string such as "600/minute" or "20/second;600/minute"
(empty: no limit, the default so local runs, tests and benchmarks are not throttled):

- `rate_limit_writes`: POST, PUT, PATCH and DELETE anywhere on the service;
- `rate_limit_matching`: the matcher's ranking routes (`MATCHING_PATHS`), the costly reads.

The key is the caller's bearer token (hashed; the token itself is not kept), else its
address. Counters are in memory, per process (the asyncio storage: the threaded one expires
entries from a timer thread that contended for the GIL, 150-300 us a request in
bench/observability_overhead.py): with N replicas behind a balancer a key gets
up to N times the limit, which is what the production settings assume (deploy/README.md).
Plain ASGI before routing, so a refused request costs neither authentication nor parsing.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from shared.errors import TooManyRequests
from shared.guards import send_problem
from shared.i18n import N_

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MATCHING_PATHS = re.compile(r"^/v1/(match|needs/[^/]+/matches|patents/[^/]+/needs)/?$")


@dataclass(frozen=True)
class Policy:
    writes: list[RateLimitItem]
    matching: list[RateLimitItem]
    limiter: MovingWindowRateLimiter

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        def items(spec: str | None) -> list[RateLimitItem]:
            return parse_many(spec) if spec and spec.strip() else []

        return cls(
            items(getattr(settings, "rate_limit_writes", "")),
            items(getattr(settings, "rate_limit_matching", "")),
            MovingWindowRateLimiter(MemoryStorage()),
        )

    def limit_for(self, method: str, path: str) -> tuple[str, list[RateLimitItem]]:
        if self.matching and MATCHING_PATHS.match(path):
            return "matching", self.matching
        if self.writes and method in WRITE_METHODS:
            return "writes", self.writes
        return "", []

    async def retry_after(self, name: str, key: str, items: list[RateLimitItem]) -> int | None:
        """None if the request may go ahead (and is counted), else seconds to wait."""
        for item in items:
            if not await self.limiter.hit(item, name, key):
                reset = (await self.limiter.get_window_stats(item, name, key)).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None


def caller_key(scope: dict[str, Any]) -> str:
    auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    if auth[:7].lower() == b"bearer " and len(auth) > 7:
        return "key:" + hashlib.sha256(auth[7:].strip()).hexdigest()[:24]
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    """Reads the limits from `app.state.settings` at the first request (the settings are
    put there by the service's lifespan)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.policy: Policy | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        if self.policy is None:
            self.policy = Policy.from_settings(getattr(state, "settings", None))
        name, items = self.policy.limit_for(scope["method"], scope["path"])
        wait = await self.policy.retry_after(name, caller_key(scope), items) if items else None
        if wait is None:
            await self.app(scope, receive, send)
            return
        metrics = getattr(state, "metrics", None)
        if metrics is not None:
            metrics.rate_limited.labels(name).inc()
        limits = ", ".join(str(i) for i in items)
        message = (
            N_(f"too many matching requests with this key; at most {limits}; retry in {wait} s")
            if name == "matching"
            else N_(f"too many writes with this key; at most {limits}; retry in {wait} s")
        )
        exc = TooManyRequests(message, retry_after=wait)
        await send_problem(send, exc, scope["path"], scope, retry_after=str(wait))

"""Throttling of failed sign-ins, in memory of one process.

After `per_login` failures for one login, or `per_client` from one client address, within
`window` seconds, sign-in answers 429 until the oldest of those failures leaves the window.
Several catalog processes each keep their own counts (an attacker gets that many times the
budget); a shared store (PostgreSQL or Redis) would be the next step if that matters.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

MAX_TRACKED = 100_000


class LoginThrottle:
    def __init__(
        self,
        per_login: int,
        per_client: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_login = per_login
        self.per_client = per_client
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, login: str, client: str) -> int | None:
        """Seconds to wait before this login / client may try again, or None."""
        now = self.clock()
        waits = []
        for key, limit in (
            (f"login:{login}", self.per_login),
            (f"client:{client}", self.per_client),
        ):
            q = self._recent(key, now)
            if len(q) >= limit:
                waits.append(q[-limit] + self.window - now)
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, login: str, client: str) -> None:
        now = self.clock()
        if len(self._failures) > MAX_TRACKED:
            for key in list(self._failures):
                self._recent(key, now)
        for key in (f"login:{login}", f"client:{client}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, login: str) -> None:
        self._failures.pop(f"login:{login}", None)

"""HTTP clients of the three services, with the errors a page can show.

A backend that cannot be reached, times out or answers 5xx is *unavailable*: the page says
which part is missing and shows the rest. A 4xx answer is a `BackendError` carrying the
service's RFC 9457 problem (detail and per-field errors) for the page to explain.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from services.portal import i18n
from shared.http import service_client

SERVICES = ("catalog", "matching", "indicators")
T = TypeVar("T")


class BackendUnavailable(Exception):
    def __init__(self, service: str, cause: str = "") -> None:
        super().__init__(f"{service} unavailable: {cause}")
        self.service = service
        self.cause = cause


class BackendError(Exception):
    def __init__(self, service: str, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{service} answered {status}: {problem.get('detail')}")
        self.service = service
        self.status = status
        self.problem = problem

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or "")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.problem.get("errors") or [])


@dataclass
class Part:
    """What an optional section of a page got: its data, or which service was missing."""

    data: Any = None
    unavailable: str | None = None
    error: BackendError | None = None


@dataclass
class Backends:
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @classmethod
    def create(cls, urls: dict[str, str], timeout: float) -> Backends:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
        return cls(
            {
                name: service_client(url, timeout=timeout, limits=limits)
                for name, url in urls.items()
            }
        )

    async def aclose(self) -> None:
        for c in self.clients.values():
            await c.aclose()

    async def request(
        self, service: str, method: str, path: str, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        # problem details and upload reasons come back in the reader's language
        headers.setdefault("Accept-Language", "en" if i18n.get_locale() == "en" else "zh-CN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            r = await self.clients[service].request(method, path, headers=headers, **kw)
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise BackendUnavailable(service, type(exc).__name__) from None
        if r.status_code >= 500:
            raise BackendUnavailable(service, f"HTTP {r.status_code}")
        if r.status_code >= 400:
            try:
                problem = r.json()
                if not isinstance(problem, dict):
                    problem = {"detail": str(problem)}
            except ValueError:
                problem = {"detail": r.text[:300]}
            raise BackendError(service, r.status_code, problem)
        return r

    async def get(self, service: str, path: str, **kw: Any) -> Any:
        return (await self.request(service, "GET", path, **kw)).json()

    async def post(self, service: str, path: str, **kw: Any) -> Any:
        r = await self.request(service, "POST", path, **kw)
        return r.json() if r.content else None

    async def patch(self, service: str, path: str, **kw: Any) -> Any:
        r = await self.request(service, "PATCH", path, **kw)
        return r.json() if r.content else None


async def optional(awaitable: Awaitable[T]) -> Part:
    """Run one section's call; an unavailable service becomes a message, not an error page."""
    try:
        return Part(data=await awaitable)
    except BackendUnavailable as exc:
        return Part(unavailable=exc.service)
    except BackendError as exc:
        return Part(error=exc)

"""Clients between services share one TLS context: building one per client, in several
service threads at once, crashed the interpreter inside OpenSSL during the test suite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.http import DEFAULT_TIMEOUT, SAFE_TO_REPEAT, TLS, RetryingTransport, service_client
from shared.testing import LiveServer, free_port


def test_every_service_client_shares_the_one_tls_context() -> None:
    async def contexts() -> list[object]:
        clients = [service_client(f"http://127.0.0.1:{9000 + i}") for i in range(3)]
        try:
            return [c._transport.inner._pool._ssl_context for c in clients]  # type: ignore[attr-defined]
        finally:
            for c in clients:
                await c.aclose()

    assert all(ctx is TLS for ctx in asyncio.run(contexts()))


# --- time limits and retries -----------------------------------------------------------


@pytest.fixture(scope="module")
def slow_server() -> Iterator[tuple[LiveServer, dict[str, int]]]:
    """Answers after 1 s and counts every request that reached it, per method."""
    app = FastAPI()
    hits = {"GET": 0, "POST": 0}

    @app.api_route("/slow", methods=["GET", "POST"])
    async def slow(request: Request) -> dict[str, int]:
        hits[request.method] += 1
        await asyncio.sleep(1.0)
        return hits

    server = LiveServer(app).start()
    yield server, hits
    server.stop()


def test_every_client_has_a_time_limit() -> None:
    async def timeouts() -> tuple[httpx.Timeout, httpx.Timeout]:
        async with (
            service_client("http://127.0.0.1:9") as a,
            service_client("http://127.0.0.1:9", timeout=2.0) as b,
        ):
            return a.timeout, b.timeout

    default, given = asyncio.run(timeouts())
    assert default == DEFAULT_TIMEOUT and given == httpx.Timeout(2.0)


def test_timed_out_reads_are_retried_but_writes_are_not(
    slow_server: tuple[LiveServer, dict[str, int]],
) -> None:
    server, hits = slow_server

    async def call(method: str) -> None:
        async with service_client(server.url, timeout=0.2, attempts=3) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.request(method, "/slow")

    asyncio.run(call("GET"))
    asyncio.run(call("POST"))
    time.sleep(0.3)  # the server counts on arrival; let the last request land
    assert hits == {"GET": 3, "POST": 1}


def test_a_post_marked_safe_to_repeat_is_retried_like_a_read(
    slow_server: tuple[LiveServer, dict[str, int]],
) -> None:
    """Key introspection is a POST that changes nothing: it says so, and is retried."""
    server, hits = slow_server
    hits.update(GET=0, POST=0)

    async def call() -> None:
        async with service_client(server.url, timeout=0.2, attempts=3) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.post("/slow", extensions={SAFE_TO_REPEAT: True})

    asyncio.run(call())
    time.sleep(0.3)
    assert hits == {"GET": 0, "POST": 3}


class CountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await super().handle_async_request(request)


def test_a_refused_connection_is_retried_for_any_method() -> None:
    inner = CountingTransport()

    async def run() -> None:
        transport = RetryingTransport(inner, attempts=3, backoff=0.01)
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(httpx.ConnectError):
                await c.post(f"http://127.0.0.1:{free_port()}/x", json={})

    asyncio.run(run())
    assert inner.calls == 3  # nothing was sent, so even a POST may be tried again

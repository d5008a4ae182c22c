"""Clients between services share one TLS context: building one per client, in several
service threads at once, crashed the interpreter inside OpenSSL during the test suite."""

from __future__ import annotations

import asyncio

from shared.http import TLS, service_client


def test_every_service_client_shares_the_one_tls_context() -> None:
    async def contexts() -> list[object]:
        clients = [service_client(f"http://127.0.0.1:{9000 + i}") for i in range(3)]
        try:
            return [c._transport._pool._ssl_context for c in clients]  # type: ignore[attr-defined]
        finally:
            for c in clients:
                await c.aclose()

    assert all(ctx is TLS for ctx in asyncio.run(contexts()))

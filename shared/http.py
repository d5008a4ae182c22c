"""HTTP clients from one service to another.

- Every client shares one TLS context made once, at import. httpx otherwise builds a new
  context per client and loads the CA bundle into it; two threads doing that at the same
  moment crashed the interpreter inside OpenSSL (a segmentation fault when the tests start
  several services, each in its own thread, at once). The services talk plain HTTP on one
  host today; the context is there for when they do not.
- Every call has a time limit: a caller that names none gets `DEFAULT_TIMEOUT`.
- The request id of the request being served (shared.observability.REQUEST_ID) goes out as
  `x-request-id`, so one id follows a request through every service's logs.
- Retries only where repeating cannot do harm: a connection that was never made is retried
  for any method (nothing was sent); a timeout or a dropped connection after sending is
  retried only for GET, HEAD and OPTIONS, which change nothing, or for a request that says
  it is safe to repeat (`extensions={SAFE_TO_REPEAT: True}`: a POST that only reads, such
  as a key introspection — a keep-alive connection the server closed just as it was reused
  otherwise fails a user's request).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from shared.observability import REQUEST_ID

TLS = httpx.create_ssl_context()
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
SAFE_TO_REPEAT = "tjp_safe_to_repeat"  # request extension: a POST that changes nothing
# Errors after which the request may have reached the server (and may have been applied).
_AFTER_SENDING = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RetryingTransport(httpx.AsyncBaseTransport):
    """Retries `attempts - 1` times with a short doubling pause, by the rules above."""

    def __init__(self, inner: httpx.AsyncBaseTransport, attempts: int = 3,
                 backoff: float = 0.1) -> None:  # fmt: skip
        self.inner = inner
        self.attempts = max(1, attempts)
        self.backoff = backoff

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.inner.handle_async_request(request)
            except _NEVER_SENT:
                if attempt == self.attempts:
                    raise
            except _AFTER_SENDING:
                repeatable = request.method in IDEMPOTENT or request.extensions.get(SAFE_TO_REPEAT)
                if not repeatable or attempt == self.attempts:
                    raise
            await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _forward_request_id(request: httpx.Request) -> None:
    rid = REQUEST_ID.get()
    if rid and "x-request-id" not in request.headers:
        request.headers["x-request-id"] = rid


def service_client(
    base_url: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    attempts: int = 3,
    limits: httpx.Limits | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    transport = RetryingTransport(
        httpx.AsyncHTTPTransport(verify=TLS, limits=limits or httpx.Limits()), attempts
    )
    # Between services messages stay in English (the catalogue's keys); each service
    # translates at its own edge for its reader (shared/i18n.py).
    headers = {"Accept-Language": "en", **(kwargs.pop("headers", None) or {})}
    hooks = kwargs.pop("event_hooks", {})
    hooks = {**hooks, "request": [_forward_request_id, *hooks.get("request", [])]}
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        transport=transport,
        event_hooks=hooks,
        headers=headers,
        **kwargs,
    )

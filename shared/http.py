"""HTTP clients from one service to another.

Every client shares one TLS context made once, at import. httpx otherwise builds a new
context per client and loads the CA bundle into it; two threads doing that at the same
moment crashed the interpreter inside OpenSSL (a segmentation fault when the tests start
several services, each in its own thread, at once). The services talk plain HTTP on one
host today; the context is there for when they do not.
"""

from __future__ import annotations

from typing import Any

import httpx

TLS = httpx.create_ssl_context()


def service_client(base_url: str, **kwargs: Any) -> httpx.AsyncClient:
    # Between services messages stay in English (the catalogue's keys); each service
    # translates at its own edge for its reader (shared/i18n.py).
    headers = {"Accept-Language": "en", **(kwargs.pop("headers", None) or {})}
    return httpx.AsyncClient(base_url=base_url, verify=TLS, headers=headers, **kwargs)

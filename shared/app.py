"""The common shape of every service's FastAPI app."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from sqlalchemy import text

from shared.db import Database
from shared.errors import install_error_handlers
from shared.guards import DEFAULT_MAX_BODY, GuardMiddleware
from shared.openapi import install_openapi

log = logging.getLogger("tjp.access")


class RequestIdMiddleware:
    """Pass on (or make) an `x-request-id` and log the request. Plain ASGI: Starlette's
    BaseHTTPMiddleware costs a few hundred microseconds a request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = (
            next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
            or uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = 0

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s %.1fms rid=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
                rid,
            )


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_service_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    version: str = "0.1.0",
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # /docs is served by install_openapi with local assets; ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)

    # Size and NUL checks come before routing and authentication; the request id wraps
    # them so a refusal still carries one.
    app.state.max_body_bytes = DEFAULT_MAX_BODY
    app.state.body_limits = {}
    app.add_middleware(GuardMiddleware)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: 200 `ok` or `degraded` (serving; feed entries parked), 503 otherwise",
    )
    async def readyz(response: Response) -> dict[str, Any]:
        db: Database = app.state.db
        checks: dict[str, Any] = {}
        ready = True
        try:
            async with db.engine.connect() as conn:
                rev = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            checks["database"] = "ok"
            checks["migration"] = rev
        except Exception as exc:  # readiness must report, never raise
            checks["database"] = f"error: {type(exc).__name__}"
            ready = False
        extra = getattr(app.state, "readiness", None)
        if extra:
            checks.update(extra())
        values = [str(v) for v in checks.values()]
        if any(v.startswith("error") for v in values):
            ready = False
        degraded = any(v.startswith("degraded") for v in values)
        response.status_code = 200 if ready else 503
        checks["status"] = ("degraded" if degraded else "ok") if ready else "unavailable"
        return checks

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Counters in the Prometheus text format",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> PlainTextResponse:
        consumers = getattr(app.state, "feed_consumers", None) or {}
        by_name: dict[str, list[str]] = {}
        for source, consumer in sorted(consumers.items()):
            for name, value in consumer.metrics().items():
                by_name.setdefault(name, []).append(f'tjp_feed_{name}{{source="{source}"}} {value}')
        lines = []
        for name, samples in by_name.items():
            lines.append(
                f"# TYPE tjp_feed_{name} {'counter' if name.endswith('_total') else 'gauge'}"
            )
            lines += samples
        return PlainTextResponse("\n".join(lines) + "\n")

    return app


async def noop_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield

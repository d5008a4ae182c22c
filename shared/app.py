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
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from shared.db import Database
from shared.errors import install_error_handlers
from shared.guards import DEFAULT_MAX_BODY, GuardMiddleware
from shared.observability import REQUEST_ID, ServiceMetrics, route_template
from shared.openapi import install_openapi
from shared.ratelimit import RateLimitMiddleware

access_log = logging.getLogger("tjp.access")
# A client-sent id longer than this is cut: it goes into every log line and header.
MAX_REQUEST_ID = 128


class RequestIdMiddleware:
    """Pass on (or make) an `x-request-id`, time the request into the app's metrics (when it
    has `app.state.metrics`) and write one access-log record. Plain ASGI: Starlette's
    BaseHTTPMiddleware costs a few hundred microseconds a request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rid = given.decode("latin-1")[:MAX_REQUEST_ID] if given else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        metrics: ServiceMetrics | None = getattr(scope["app"].state, "metrics", None)
        start = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        if metrics:
            metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            if metrics:
                metrics.in_progress.dec()
                if route != "/metrics":
                    metrics.observe_request(scope["method"], route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    scope["path"],
                    status,
                    seconds * 1000,
                    extra={"method": scope["method"], "path": scope["path"], "route": route,
                           "status": status, "duration_ms": round(seconds * 1000, 2)},
                )  # fmt: skip
            REQUEST_ID.reset(token)


def install_metrics(app: FastAPI, service: str, *, in_schema: bool = True) -> ServiceMetrics:
    """`app.state.metrics` and a `/metrics` route in the Prometheus text format."""
    metrics = ServiceMetrics(service)
    app.state.metrics = metrics
    metrics.state.feed_consumers = lambda: getattr(app.state, "feed_consumers", None) or {}

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics: requests, latency and errors by route, feeds, jobs",
        response_class=PlainTextResponse,
        include_in_schema=in_schema,
        responses={
            200: {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics


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

    # Size and NUL checks and the rate limits come before routing and authentication; the
    # request id (and the metrics) wrap them so a refusal still carries one and is counted.
    app.state.max_body_bytes = DEFAULT_MAX_BODY
    app.state.body_limits = {}
    app.state.json_body_limits = {}
    app.add_middleware(GuardMiddleware)
    app.add_middleware(RateLimitMiddleware)
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

    install_metrics(app, title)
    return app


async def noop_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield

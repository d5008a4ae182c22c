"""Portal: server-rendered pages (Jinja2 + htmx) over the catalog, matching and indicators
APIs. It imports none of the services; it forwards the signed-in person's token."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal import i18n
from services.portal.api import auth, bureau, pages, sme, supplier
from services.portal.api.session import CsrfRejected, SessionMiddleware, session_of
from services.portal.api.web import SignInRequired, WrongRole, render
from services.portal.domain.backends import BackendError, Backends, BackendUnavailable
from services.portal.settings import PortalSettings
from shared.app import RequestIdMiddleware, install_metrics

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("tjp.portal")


class LocaleMiddleware:
    """Sets the request's language from `?lang=`, the session, or Accept-Language."""

    def __init__(self, app: Any, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            session = scope.get("state", {}).get("session") or {}
            lang = session.get("lang")
            if not lang:
                accept = next((v for k, v in scope["headers"] if k == b"accept-language"), b"")
                first = accept.decode("latin-1").split(",")[0].strip().lower()
                lang = "en" if first.startswith("en") else self.default
            i18n.set_locale(lang)
        await self.app(scope, receive, send)


class ServerTimingMiddleware:
    """`Server-Timing: app;dur=<ms>` on every response: the time the portal spent,
    including its calls to the services (read by bench/portal_bench.py)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={ms:.1f}".encode()),
                ]
            await send(message)

        await self.app(scope, receive, timed)


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    i18n.load_catalogues()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends.create(
            {
                "catalog": settings.catalog_url,
                "matching": settings.matching_url,
                "indicators": settings.indicators_url,
            },
            settings.api_timeout,
        )
        try:
            yield
        finally:
            await app.state.backends.aclose()

    app = FastAPI(
        title="Tianjin patent platform portal",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    Path(settings.upload_dir).mkdir(parents=True, exist_ok=True)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, pages, sme, supplier, bureau):
        app.include_router(module.router)

    install_metrics(app, "portal", in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request, response: Response) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, client in request.app.state.backends.clients.items():
            try:
                r = await client.get("/healthz", timeout=2)
                checks[name] = "ok" if r.status_code == 200 else f"error: HTTP {r.status_code}"
            except Exception as exc:  # readiness reports, never raises
                checks[name] = f"error: {type(exc).__name__}"
        if any(v != "ok" for v in checks.values()):
            response.status_code = 503
        return checks

    install_error_pages(app)
    # Outermost first: request id, then the session, then the language (reads the session).
    app.add_middleware(LocaleMiddleware, default=settings.default_locale)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key or secrets.token_urlsafe(32),
        max_age=settings.session_max_age,
    )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ServerTimingMiddleware)
    return app


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _signin(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/signin"})
        return RedirectResponse(f"/signin?next={exc.next_url}", status_code=303)

    def error_page(
        request: Request, template: str, ctx: dict[str, Any], status: int
    ) -> HTMLResponse:
        # An htmx request gets a short message to swap in, not a whole page inside a page.
        if request.headers.get("hx-request"):
            template = "partials/error.html"
        return render(request, template, ctx, status=status)

    @app.exception_handler(WrongRole)
    async def _role(request: Request, exc: WrongRole) -> HTMLResponse:
        return error_page(request, "errors/403.html", {"reason": "role"}, 403)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> HTMLResponse:
        return error_page(request, "errors/403.html", {"reason": "csrf"}, 403)

    @app.exception_handler(BackendUnavailable)
    async def _unavailable(request: Request, exc: BackendUnavailable) -> HTMLResponse:
        log.warning("%s unavailable on %s: %s", exc.service, request.url.path, exc.cause)
        template = (
            "partials/unavailable.html" if request.headers.get("hx-request") else "errors/503.html"
        )
        return render(request, template, {"service": exc.service}, status=503)

    @app.exception_handler(BackendError)
    async def _backend_error(request: Request, exc: BackendError) -> Response:
        if exc.status == 401:
            # The token expired or was revoked: sign in again.
            session_of(request).pop("user", None)
            return RedirectResponse(f"/signin?next={request.url.path}&expired=1", status_code=303)
        status = exc.status if exc.status in (403, 404, 409, 422) else 400
        template = (
            "partials/error.html" if request.headers.get("hx-request") else "errors/backend.html"
        )
        return render(request, template, {"error": exc}, status=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return render(request, "errors/404.html", status=404)
        return render(
            request, "errors/500.html", {"status": exc.status_code}, status=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_page(request, "errors/500.html", {"status": 500}, 500)

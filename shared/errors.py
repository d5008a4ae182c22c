"""One error shape for every service: RFC 9457 `application/problem+json`.

    ProblemError            base; status 400 unless a subclass says otherwise
    ├── NotFound            404
    ├── Unauthorized        401 (no or bad credentials)
    ├── Forbidden           403 (credentials fine, not allowed)
    ├── Conflict            409
    ├── PayloadTooLarge     413
    ├── UnsupportedMedia    415
    └── Unprocessable       422 (a field-level validation failure)

Validation failures carry `errors: [{"field": "...", "reason": "..."}]`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tjp.errors")


class ProblemError(Exception):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        if title:
            self.title = title
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://tjpatent.example/problems/{self.type_slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class NotFound(ProblemError):
    status, title, type_slug = 404, "Not found", "not-found"


class Unauthorized(ProblemError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"


class Forbidden(ProblemError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class Conflict(ProblemError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ProblemError):
    status, title, type_slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMedia(ProblemError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


class Unprocessable(ProblemError):
    status, title, type_slug = 422, "Validation failed", "validation"

    @classmethod
    def field(cls, field: str, reason: str) -> Unprocessable:
        return cls(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'patents', 3, 'ipc') -> 'patents[3].ipc'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.\[\]]*): (.+)$", re.S)


def pydantic_errors(errors: list[Any]) -> list[dict[str, Any]]:
    result = []
    for e in errors:
        reason = str(e.get("msg", "invalid"))
        # pydantic prefixes custom ValueErrors with "Value error, ".
        reason = reason.removeprefix("Value error, ")
        field = field_path(e.get("loc", ()))
        # Cross-field validators raise "field: reason"; name that field, not the body.
        m = _FIELD_PREFIX.match(reason)
        if m and (field == "body" or not e.get("loc") or field.endswith("]")):
            prefix = "" if field == "body" else field + "."
            field, reason = prefix + m.group(1), m.group(2)
        result.append({"field": field, "reason": reason})
    return result


def problem_response(
    exc: ProblemError, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        exc.body(str(request.url.path) if request else None),
        status_code=exc.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def allowed_methods(request: Request) -> str:
    """Every method some route accepts on this path. Starlette's own 405 names only the
    first route that matched the path, while GET and PATCH of one path are two routes."""
    routes: Iterable[Any] = request.app.router.routes
    try:  # FastAPI >= 0.16x includes routers lazily; this walks into them
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(request.app.router.routes))
    except ImportError:
        pass
    path = request.scope["path"]
    exact: set[str] = set()  # routes declared for exactly this path (no parameters)
    matching: set[str] = set()
    for route in routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods = set(getattr(route, "methods", None) or ())
            matching |= methods
            if getattr(route, "path_format", None) == path:
                exact |= methods
    # /v1/patents/bulk is its own resource, although /v1/patents/{number} matches it too.
    return ", ".join(sorted(exact or matching))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = pydantic_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response(Unprocessable(detail, errors=errors), request)

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> JSONResponse:
        # A model re-validated inside a handler (e.g. a PATCH merged onto stored data).
        errors = pydantic_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response(Unprocessable(detail, errors=errors), request)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Our checks run before writing; this is the race they cannot see (two requests
        # creating the same thing at once). Nothing was written: the transaction rolled back.
        log.info("integrity conflict on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            Conflict("a concurrent request changed the same data; nothing was written — retry"),
            request,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = ProblemError(str(exc.detail))
        err.status = exc.status_code
        err.title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        err.type_slug = "http-error"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(err, request, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        err = ProblemError("An unexpected error occurred; it has been logged.")
        err.status, err.title, err.type_slug = 500, "Internal server error", "internal"
        return problem_response(err, request)

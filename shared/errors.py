"""One error shape for every service: RFC 9457 `application/problem+json`.

    ProblemError            base; status 400 unless a subclass says otherwise
    ├── NotFound            404
    ├── Unauthorized        401 (no or bad credentials)
    ├── Forbidden           403 (credentials fine, not allowed)
    ├── Conflict            409
    ├── PayloadTooLarge     413
    ├── UnsupportedMedia    415
    ├── Unprocessable       422 (a field-level validation failure)
    ├── TooManyRequests     429 (with Retry-After)
    └── ServiceUnavailable  503 (a dependency is down; `retry_after` seconds → Retry-After)

Validation failures carry `errors: [{"field": "...", "reason": "..."}]`.

Title, detail and reasons are written in English and rendered in the request's language
(shared/i18n.py: Chinese by default, English with `Accept-Language: en`).
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
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.i18n import choose_language, translate, translate_errors, translate_pydantic

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


class ServiceUnavailable(ProblemError):
    status, title, type_slug = 503, "Service unavailable", "unavailable"


class Unprocessable(ProblemError):
    status, title, type_slug = 422, "Validation failed", "validation"

    @classmethod
    def field(cls, field: str, reason: str) -> Unprocessable:
        return cls(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


class TooManyRequests(ProblemError):
    status, title, type_slug = 429, "Too many requests", "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


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


def pydantic_errors(errors: list[Any], lang: str = "en") -> list[dict[str, Any]]:
    """Field errors from pydantic's; reasons in `lang` (by error type and its context)."""
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
        if lang != "en":
            reason = translate_pydantic(e, reason, lang)
        result.append({"field": field, "reason": reason})
    return result


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_unique_violation(exc: IntegrityError) -> bool:
    """A unique or primary-key violation: two requests made the same thing at once. Any
    other integrity error (foreign key, check, not null) is a bug, not a race."""
    code = _sqlstate(exc)
    if code:
        return bool(code == "23505")
    name = getattr(exc.orig, "sqlite_errorname", "")
    if name:
        return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    return "UNIQUE constraint failed" in str(exc.orig)


# Values the database cannot store (numbers out of range, NUL in text, bad encodings):
# the input's fault, found late — a 422, never a 500.
_INPUT_SQLSTATES = {"22003", "22021", "22P05", "22008", "22001"}

# A deadlock broken by the server, or a serialization failure: retrying succeeds.
_RETRY_SQLSTATES = {"40P01", "40001"}


def is_unstorable_input(exc: Exception) -> bool:
    if isinstance(exc, OverflowError):
        return True
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in _INPUT_SQLSTATES


def _race_lost(request: Request) -> JSONResponse:
    """A request that lost a race to a concurrent one (a unique key both created, or a
    deadlock PostgreSQL broke): its transaction rolled back whole; a retry succeeds."""
    return problem_response(
        Conflict("a concurrent request changed the same data; nothing was written — retry"),
        request,
    )


def request_id(request: Request | None) -> str | None:
    return getattr(request.state, "request_id", None) if request is not None else None


def request_language(request: Request | None) -> str:
    return choose_language(request.headers.get("accept-language") if request else None)


def localised(body: dict[str, Any], lang: str) -> dict[str, Any]:
    """A problem body with its title, detail and reasons in `lang`."""
    if lang == "en":
        return body
    body = dict(body)
    for k in ("title", "detail"):
        if isinstance(body.get(k), str):
            body[k] = translate(body[k], lang)
    if isinstance(body.get("errors"), list):
        body["errors"] = translate_errors(body["errors"], lang)
    return body


def problem_response(
    exc: ProblemError, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    headers["Content-Language"] = "en" if request_language(request) == "en" else "zh-CN"
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(
        localised(exc.body(str(request.url.path) if request else None), request_language(request)),
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
        if getattr(getattr(route, "endpoint", None), "refuses_method", False):
            continue  # a guard that answers 405 (see refuse_other_methods) allows nothing
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods = set(getattr(route, "methods", None) or ())
            matching |= methods
            if getattr(route, "path_format", None) == path:
                exact |= methods
    # /v1/patents/bulk is its own resource, although /v1/patents/{number} matches it too.
    return ", ".join(sorted(exact or matching))


def refuse_other_methods(router: Any, path: str, methods: list[str]) -> None:
    """Answer 405 for `methods` on `path`, which a parameterised sibling route would
    otherwise take (PATCH /v1/listings/bulk is not PATCH /v1/listings/{listing_id}).
    Register it before the sibling."""

    async def refuse() -> None:
        raise StarletteHTTPException(status_code=405, detail="Method Not Allowed")

    refuse.refuses_method = True  # type: ignore[attr-defined]
    router.add_api_route(path, refuse, methods=methods, include_in_schema=False)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = pydantic_errors(list(exc.errors()), request_language(request))
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response(Unprocessable(detail, errors=errors), request)

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> JSONResponse:
        # A model re-validated inside a handler (e.g. a PATCH merged onto stored data).
        errors = pydantic_errors(list(exc.errors()), request_language(request))
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response(Unprocessable(detail, errors=errors), request)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        if not is_unique_violation(exc):
            return await _unexpected(request, exc)
        # Our checks run before writing; this is the race they cannot see (two requests
        # creating the same thing at once). Nothing was written: the transaction rolled back.
        log.info(
            "unique-key race on %s %s rid=%s: %s",
            request.method,
            request.url.path,
            request_id(request),
            exc.orig,
        )
        return _race_lost(request)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:  # the pool has dropped the connection: a retry works
            log.warning(
                "database connection lost on %s %s: %s", request.method, request.url.path, exc.orig
            )
            return problem_response(
                ServiceUnavailable(
                    "the database connection was lost during the request; retry it",
                    retry_after=1,
                ),
                request,
            )
        if _sqlstate(exc) in _RETRY_SQLSTATES:
            # Two transactions waited on each other's rows (PostgreSQL broke the deadlock by
            # failing this one) or a serializable transaction lost: this one rolled back.
            log.info("transaction conflict on %s %s: %s", request.method, request.url.path,
                     exc.orig)  # fmt: skip
            return _race_lost(request)
        if not is_unstorable_input(exc):
            return await _unexpected(request, exc)
        log.info("unstorable input on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            Unprocessable(
                "a value is out of the range the database can store (too large a number,"
                " a NUL character or an impossible date)",
                errors=[{"field": "body", "reason": "value out of storable range"}],
            ),
            request,
        )

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return problem_response(
            Unprocessable(
                "a number is too large to store",
                errors=[{"field": "body", "reason": "number out of the 64-bit range"}],
            ),
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
        rid = request_id(request)
        log.error(
            "unhandled error on %s %s rid=%s",
            request.method,
            request.url.path,
            rid,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        err = ProblemError(
            "An unexpected error occurred; it has been logged"
            + (f" under request id {rid}." if rid else "."),
            request_id=rid,
        )
        err.status, err.title, err.type_slug = 500, "Internal server error", "internal"
        return problem_response(err, request)

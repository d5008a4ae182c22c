"""The OpenAPI document every service publishes, made to tell the truth.

FastAPI documents a route's success response and a generic 422. Our services also answer
RFC 9457 problems (`application/problem+json`) for bad requests, missing resources,
authentication, conflicts, oversized or unreadable bodies, and outages. Rather than
repeat that on every route decorator, `truthful_openapi` post-processes the generated
document once per app:

- the `bearerAuth` security scheme (FastAPI declares it from the security dependency of
  `shared.auth.current_principal`, so `/docs` has an Authorize button); operations that
  take a key only optionally (`optional_principal`) get an optional requirement;
- the `Problem` schema and, per operation, the problem statuses it can answer;
- `/docs` served with the Swagger UI files shipped in `shared/static/swagger-ui`
  (no CDN at run time).

The status codes declared per operation:

| status | when | declared on |
|---|---|---|
| 400 | a request the service cannot use (e.g. bad cursor, malformed file) | every operation |
| 401 / 403 | no or bad key / the key's role or organisation may not do this | authenticated operations |
| 404 | the resource, or one the request refers to, does not exist | every `/v1` operation |
| 409 | a conflicting or concurrent write; nothing was written | writes |
| 413 / 415 | body too large / content type not accepted | operations with a body |
| 422 | a field is invalid: `errors: [{field, reason}]` | every operation with input |
| 503 | the database, or the catalog checking the key, is unavailable | authenticated operations |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from shared.auth import BEARER_SCHEME, OPTIONAL_BEARER_SCHEME
from shared.errors import PROBLEM_JSON

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static/shared"
WRITE_METHODS = {"post", "put", "patch", "delete"}
# Only if no operation requires a key (then FastAPI did not declare the scheme itself).
OPTIONAL_FALLBACK_SCHEME = {"type": "http", "scheme": "bearer"}

PROBLEM_SCHEMAS: dict[str, Any] = {
    "ProblemFieldError": {
        "type": "object",
        "title": "ProblemFieldError",
        "required": ["field", "reason"],
        "properties": {
            "field": {"type": "string", "description": "e.g. `patents[3].ipc_codes`"},
            "reason": {"type": "string"},
        },
    },
    "Problem": {
        "type": "object",
        "title": "Problem",
        "description": "RFC 9457 problem details; some problems add fields of their own.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
            },
        },
        "additionalProperties": True,
        "example": {
            "type": "https://tjpatent.example/problems/validation",
            "title": "Validation failed",
            "status": 422,
            "detail": "application_number: not a CN application number",
            "instance": "/v1/patents",
            "errors": [{"field": "application_number", "reason": "not a CN application number"}],
        },
    },
}

PROBLEM_DESCRIPTIONS = {
    "400": "Bad request: the request cannot be used as sent",
    "401": "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)",
    "403": "The key's role or organisation may not do this",
    "404": "Not found: the resource, or one the request refers to, does not exist",
    "409": "Conflict with the current state or a concurrent write; nothing was written",
    "413": "The body is larger than this operation accepts",
    "415": "The body's content type is not accepted here",
    "422": "Validation failed: `errors` names each field and why",
    "503": "The database or the catalog (which checks keys) is unavailable; retry later",
}


def _problem_response(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": PROBLEM_DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == "401":
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}
        }
    if status == "503":
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
        }
    return response


def problem_statuses(method: str, operation: dict[str, Any], auth: str | None) -> list[str]:
    has_input = bool(operation.get("parameters")) or "requestBody" in operation
    statuses = ["400", "404"]
    if auth:
        statuses += ["401", "403", "503"]
    if method in WRITE_METHODS:
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    if has_input:
        statuses.append("422")
    return sorted(statuses)


# pydantic renders a Decimal as "a number, or any string"; the string must be a number.
DECIMAL_STRING = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
# shared.guards refuses a NUL (U+0000) in any string, key or value, of a path, query or
# JSON body (PostgreSQL text cannot hold it); say so on every free string and object key.
NO_NUL = r"^[^\x00]*$"
JSON_VALUE_REF = "#/components/schemas/JsonValue"
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "title": "JsonValue",
    "description": "Any JSON value without a NUL (U+0000) in its strings or keys.",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": JSON_VALUE_REF},
        },
    ],
}


def _tighten(node: Any) -> None:
    """Make generated schemas as strict as the validation behind them."""
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    branches = node.get("anyOf")
    if isinstance(branches, list):
        types = [b.get("type") for b in branches if isinstance(b, dict)]
        if "number" in types and "string" in types:
            for b in branches:
                if b.get("type") == "string" and len(b) == 1:
                    b["pattern"] = DECIMAL_STRING
    if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(node):
        node["pattern"] = NO_NUL
    if node.get("type") == "object":
        node.setdefault("propertyNames", {"pattern": NO_NUL})
        # An undeclared field is ignored, but its value is still JSON without a NUL.
        node.setdefault("additionalProperties", {"$ref": JSON_VALUE_REF})
    for value in node.values():
        _tighten(value)


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(PROBLEM_SCHEMAS)
    schemes = components.get("securitySchemes", {})
    schemes.pop(OPTIONAL_BEARER_SCHEME, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in WRITE_METHODS | {"get", "head"}:
                continue
            auth = None
            names = {name for req in operation.get("security", []) for name in req}
            if BEARER_SCHEME in names:
                auth = "required"
                operation["security"] = [{BEARER_SCHEME: []}]
            elif OPTIONAL_BEARER_SCHEME in names:
                auth = "optional"
                operation["security"] = [{BEARER_SCHEME: []}, {}]
                schemes.setdefault(BEARER_SCHEME, OPTIONAL_FALLBACK_SCHEME)
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError shape is not ours
            if not path.startswith("/v1/"):
                continue  # /healthz, /readyz: no input, no problems
            for status in problem_statuses(method, operation, auth):
                responses.setdefault(status, _problem_response(status))
    _tighten(schema)
    schemas["JsonValue"] = JSON_VALUE_SCHEMA  # after _tighten: already as strict as it gets
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    """Truthful `/openapi.json` and `/docs` with locally served Swagger UI."""
    app.openapi = lambda: truthful_openapi(app)  # type: ignore[method-assign]
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="shared-static")
    ui = f"{STATIC_PATH}/swagger-ui"
    redirect_url = "/docs/oauth2-redirect"

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ui}/swagger-ui-bundle.js",
            swagger_css_url=f"{ui}/swagger-ui.css",
            swagger_favicon_url=f"{ui}/favicon-32x32.png",
            oauth2_redirect_url=redirect_url,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", swagger_ui, include_in_schema=False, methods=["GET"])
    app.add_api_route(redirect_url, swagger_ui_redirect, include_in_schema=False, methods=["GET"])


def file_responses(*media_types: str, json_too: bool = False) -> dict[int | str, Any]:
    """`responses=` for a route that answers a file (CSV, XLSX) instead of, or besides, JSON."""
    content: dict[str, Any] = {"application/json": {}} if json_too else {}
    for media_type in media_types:
        content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": "the file", "content": content}}

"""Request guards that run before routing, authentication or parsing (plain ASGI).

- Body size: a declared `Content-Length` over the route's limit is refused at once (413);
  a chunked body is counted as it streams and refused as soon as it passes the limit.
  JSON routes get a small limit (`app.state.max_body_bytes`, 1 MB); routes listed in
  `app.state.body_limits` ({path: bytes}) get their own and are spooled to a temporary
  file (memory up to 1 MB, then disk), handed to the route as `scope["state"]["body_file"]`;
  routes in `app.state.json_body_limits` get a larger limit but are read and checked like
  any JSON route (bulk requests).
- NUL bytes: PostgreSQL cannot store U+0000 in text, so a NUL anywhere in the path, the
  query string or a JSON body is a 422 naming the parameter or field, never a driver 500;
  so is an integer in a JSON body that no 64-bit column can hold.

Everything here happens before the app sees the request, so a hostile body costs neither
memory nor an introspection call to the catalog.
"""

from __future__ import annotations

import json
import re
import tempfile
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson

from shared.errors import (
    PROBLEM_JSON,
    PayloadTooLarge,
    ProblemError,
    Unprocessable,
    field_path,
    localised,
)
from shared.i18n import choose_language

DEFAULT_MAX_BODY = 1024 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
REPLAY_CHUNK = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def scope_language(scope: dict[str, Any]) -> str:
    for k, v in scope.get("headers") or ():
        if k == b"accept-language":
            return choose_language(v.decode("latin-1"))
    return choose_language(None)


async def send_problem(
    send: Any, exc: ProblemError, path: str, scope: dict[str, Any], **headers: str
) -> None:
    """Answer from the middleware itself, in the reader's language; `connection="close"`
    when the rest of the body is left unread (the connection cannot be reused)."""
    body = orjson.dumps(localised(exc.body(path), scope_language(scope)))
    raw = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def nul_field(obj: Any, loc: tuple[Any, ...] = ()) -> str | None:
    """The path of the first string (key or value) holding a NUL, or None."""
    if isinstance(obj, str):
        return field_path(loc) if "\x00" in obj else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "\x00" in str(k):
                return field_path((*loc, str(k).replace("\x00", "")))
            found = nul_field(v, (*loc, k))
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = nul_field(v, (*loc, i))
            if found:
                return found
    return None


NUL_REASON = "must not contain a NUL character (U+0000)"


def query_nul(query_string: bytes) -> str | None:
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in k or "\x00" in v:
            return k.replace("\x00", "") or "query"
    return None


INT64_REASON = "must be an integer within the signed 64-bit range"
_LONG_NUMBER = re.compile(rb"\d{19,}")


def huge_int_field(obj: Any, loc: tuple[Any, ...] = ()) -> str | None:
    """The path of the first integer outside the signed 64-bit range, or None."""
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        return field_path(loc) if not -(2**63) <= obj < 2**63 else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = huge_int_field(v, (*loc, k))
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = huge_int_field(v, (*loc, i))
            if found:
                return found
    return None


def json_body_problem(body: bytes) -> ProblemError | None:
    """A NUL in a string or an integer no database column can hold, named by field."""
    # Cheap tests first: JSON carries a NUL only as the escape \u0000, and an integer
    # past int64 has at least 19 digits.
    nul = b"\\u0000" in body or b"\x00" in body
    if not nul and not _LONG_NUMBER.search(body):
        return None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        # The route reports the syntax error; a raw NUL byte is refused here.
        return Unprocessable.field("body", NUL_REASON) if b"\x00" in body else None
    bad = nul_field(doc) if nul else None
    if bad:
        return Unprocessable.field(bad, NUL_REASON)
    bad = huge_int_field(doc)
    return Unprocessable.field(bad, INT64_REASON) if bad else None


class BodyTooLarge(PayloadTooLarge):
    def __init__(self, limit: int, declared: int | None = None) -> None:
        said = f"the body is {declared:,} bytes; " if declared is not None else ""
        super().__init__(f"{said}the limit of this route is {limit:,} bytes", limit_bytes=limit)


class GuardMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path:
            await send_problem(send, Unprocessable.field("path", NUL_REASON), "/", scope)
            return
        bad = query_nul(scope.get("query_string", b""))
        if bad:
            await send_problem(send, Unprocessable.field(bad, NUL_REASON), path, scope)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        spooled_limits: dict[str, int] = getattr(state, "body_limits", None) or {}
        json_limits: dict[str, int] = getattr(state, "json_body_limits", None) or {}
        spool = path in spooled_limits
        limit: int = (
            spooled_limits.get(path)
            or json_limits.get(path)
            or int(getattr(state, "max_body_bytes", DEFAULT_MAX_BODY))
        )
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_problem(send, BodyTooLarge(limit, declared), path, scope, connection="close")
            return
        if spool:
            file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
            try:
                if not await _read_body(receive, limit, file.write):
                    await send_problem(send, BodyTooLarge(limit), path, scope, connection="close")
                    return
                file.seek(0)
                scope.setdefault("state", {})["body_file"] = file
                await self.app(scope, _replay_file(file, receive), send)
            finally:
                file.close()
            return
        chunks: list[bytes] = []
        if not await _read_body(receive, limit, chunks.append):
            await send_problem(send, BodyTooLarge(limit), path, scope, connection="close")
            return
        body = b"".join(chunks)
        ctype = _header(scope, b"content-type")
        if b"json" in ctype:
            problem = json_body_problem(body)
            if problem:
                await send_problem(send, problem, path, scope)
                return
        await self.app(scope, _replay_bytes(body, receive), send)


def _header(scope: Any, name: bytes) -> bytes:
    return next((v for k, v in scope["headers"] if k == name), b"")


def _content_length(scope: Any) -> int | None:
    raw = _header(scope, b"content-length")
    return int(raw) if raw.isdigit() else None


async def _read_body(receive: Any, limit: int, sink: Any) -> bool:
    """Pass body chunks to `sink` until the end; False as soon as `limit` is passed."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return False
        if chunk:
            sink(chunk)
        if not message.get("more_body", False):
            return True


def _replay_bytes(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()  # http.disconnect, once the client goes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _replay_file(file: IO[bytes], receive: Any) -> Any:
    done = False

    async def replay() -> dict[str, Any]:
        nonlocal done
        if done:
            return await receive()
        chunk = file.read(REPLAY_CHUNK)
        more = len(chunk) == REPLAY_CHUNK
        if not more:
            done = True
            file.seek(0)  # the route may read the file itself afterwards
        return {"type": "http.request", "body": chunk, "more_body": more}

    return replay

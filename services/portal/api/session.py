"""The signed session cookie and CSRF protection.

The cookie holds the signed-in person's API token, who they are, the CSRF secret and the
language. It is signed (itsdangerous) so it cannot be forged or altered, HttpOnly so page
scripts never see the token, SameSite=Lax, and Secure whenever the request came over TLS.
Every POST must carry the session's CSRF token (form field `csrf_token` or header
`X-CSRF-Token`, which htmx sends from the page body); without it the answer is 403.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders

COOKIE = "tjp_session"


class Session(dict[str, Any]):
    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.modified = True
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = True
        return super().pop(key, *default)

    def clear(self) -> None:
        self.modified = True
        super().clear()


class SessionMiddleware:
    """Plain ASGI: loads the cookie into `scope['session']`-like state and writes it back."""

    def __init__(self, app: Any, secret_key: str, max_age: int) -> None:
        self.app = app
        self.max_age = max_age
        self.signer = URLSafeTimedSerializer(secret_key, salt="tjp-portal-session")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = Session()
        raw = _cookie(scope, COOKIE)
        if raw:
            try:
                session.update(self.signer.loads(raw, max_age=self.max_age))
            except (BadSignature, ValueError, TypeError):
                session.modified = True  # drop a bad or expired cookie
        scope.setdefault("state", {})["session"] = session
        secure = scope.get("scheme") == "https"

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start" and session.modified:
                headers = MutableHeaders(scope=message)
                flags = f"Path=/; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}"
                if session:
                    value = self.signer.dumps(dict(session))
                    headers.append(
                        "set-cookie", f"{COOKIE}={value}; Max-Age={self.max_age}; {flags}"
                    )
                else:
                    headers.append("set-cookie", f"{COOKIE}=; Max-Age=0; {flags}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(scope: Any, name: str) -> str | None:
    for k, v in scope.get("headers", []):
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                key, _, value = part.strip().partition("=")
                if key == name:
                    return value
    return None


def session_of(request: Request) -> Session:
    return request.state.session


def csrf_token(request: Request) -> str:
    session = session_of(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


class CsrfRejected(Exception):
    pass


async def csrf_protect(request: Request) -> None:
    """Router dependency: every unsafe method needs the session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session_of(request).get("csrf")
    sent = request.headers.get("x-csrf-token")
    if not sent:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise CsrfRejected()

"""What every page needs: the signed-in user, role guards, templates and helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from services.portal import i18n
from services.portal.api.session import csrf_token, session_of
from services.portal.domain.backends import Backends
from services.portal.domain.labels import district_name, label
from services.portal.domain.views import filtered_note, offer_of
from services.portal.settings import PortalSettings

TEMPLATES = Path(__file__).parent.parent / "templates"

SUPPLIER = "supplier"
SME = "sme"
BUREAUS = ("district_bureau", "city_bureau", "admin")


@dataclass
class User:
    token: str
    role: str
    name: str
    org_id: int
    org_name: str
    org_kind: str
    district: str | None
    org_admin: bool = False

    @classmethod
    def from_session(cls, data: dict[str, Any] | None) -> User | None:
        if not data or not data.get("token"):
            return None
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @property
    def is_bureau(self) -> bool:
        return self.role in BUREAUS


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class WrongRole(Exception):
    pass


def current_user(request: Request) -> User | None:
    return User.from_session(session_of(request).get("user"))


# Dependencies are coroutines: FastAPI runs a plain `def` one in a worker thread, a hop
# that costs more than the dependency (tests/shared/test_no_thread_hops.py).
async def optional_user(request: Request) -> User | None:
    return current_user(request)


async def backends(request: Request) -> Backends:
    return request.app.state.backends


async def settings(request: Request) -> PortalSettings:
    return request.app.state.settings


def require(*roles: str) -> Any:
    async def dep(request: Request) -> User:
        user = current_user(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        if roles and user.role not in roles:
            raise WrongRole()
        return user

    return Depends(dep)


OptionalUser = Annotated[User | None, Depends(optional_user)]
BackendsDep = Annotated[Backends, Depends(backends)]
SettingsDep = Annotated[PortalSettings, Depends(settings)]


def _money(value: Any) -> str:
    """Like a figure, but nothing at all (not a dash) when there is no amount."""
    return "" if value is None or value == "" else _number(value)


def _percent(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def _number(value: Any) -> str:
    """1234 -> "1,234"; "1234.5000" -> "1,234.5"; None -> "—" (a figure not yet known)."""
    if value is None or value == "":
        return "—"
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if d == d.to_integral():
        return f"{int(d):,}"
    return f"{d.normalize():,f}"


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = v
    return urlencode(params)


def build_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext
    )
    env.filters.update(
        money=_money,
        percent=_percent,
        number=_number,
        label=label,
        district=district_name,
        urlq=lambda s: quote(str(s), safe=""),
        tojson_attr=lambda v: json.dumps(v, ensure_ascii=False),
        offer=offer_of,
        filtered=filtered_note,
    )
    return env


ENV = build_env()


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    user = current_user(request)
    ctx: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf": csrf_token(request),
        "lang": i18n.get_locale(),
        "languages": i18n.LANGUAGES,
        "flash": session_of(request).pop("flash", None) if "flash" in session_of(request) else None,
        "query": lambda **kw: _query(request, **kw),
        "Markup": Markup,
    }
    ctx.update(context or {})
    html = ENV.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    session_of(request)["flash"] = {"message": message, "kind": kind}

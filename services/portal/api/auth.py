"""Sign-in and sign-out through the catalog's identity API, and the language switch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal import i18n
from services.portal.api.session import csrf_protect, session_of
from services.portal.api.web import BackendsDep, OptionalUser, flash, render
from services.portal.domain.backends import BackendError, BackendUnavailable

router = APIRouter(dependencies=[Depends(csrf_protect)])


def safe_next(url: str | None) -> str:
    """Only local paths: an open redirect would let a link send people elsewhere."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def home_of(role: str) -> str:
    return {
        "sme": "/me/needs",
        "supplier": "/pool/patents",
        "district_bureau": "/bureau",
        "city_bureau": "/bureau",
        "admin": "/bureau",
    }.get(role, "/")


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(
    request: Request, user: OptionalUser, next: str = "/", expired: int = 0
) -> Response:
    return render(request, "signin.html", {"next": safe_next(next), "expired": bool(expired)})


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, api: BackendsDep) -> Response:
    form = await request.form()
    login = str(form.get("login") or "").strip()
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""))
    ctx: dict[str, Any] = {"next": next_url, "login": login}
    if not login or not password:
        ctx["error"] = i18n.gettext("Enter your e-mail or phone number and your password.")
        return render(request, "signin.html", ctx, status=422)
    # The catalog throttles failed sign-ins per login and per client address; every
    # sign-in comes from the portal, so it passes on the visitor's address (the catalog's
    # uvicorn trusts X-Forwarded-For from its configured proxies: loopback by default).
    visitor = request.client.host if request.client else ""
    try:
        body = await api.post(
            "catalog",
            "/v1/sessions",
            json={"login": login, "password": password},
            headers={"X-Forwarded-For": visitor} if visitor else None,
        )
    except BackendUnavailable:
        ctx["error"] = i18n.gettext(
            "Sign-in is temporarily unavailable (the catalog service cannot be reached). "
            "Please try again later."
        )
        return render(request, "signin.html", ctx, status=503)
    except BackendError as exc:
        if exc.status == 429:
            ctx["error"] = i18n.gettext(
                "Too many attempts. Please wait a few minutes and try again."
            )
            return render(request, "signin.html", ctx, status=429)
        ctx["error"] = i18n.gettext("The e-mail/phone or the password is wrong.")
        return render(request, "signin.html", ctx, status=401 if exc.status == 401 else 400)
    person = body.get("person") or {}
    org = body.get("organisation") or {}
    session = session_of(request)
    csrf = session.get("csrf")
    lang = session.get("lang")
    session.clear()  # a fresh session on sign-in (no fixation of an earlier one)
    if csrf:
        session["csrf"] = csrf
    if lang:
        session["lang"] = lang
    session["user"] = {
        "token": body["token"],
        "role": person.get("role"),
        "name": person.get("name") or login,
        "org_id": org.get("id"),
        "org_name": org.get("name") or "",
        "org_kind": org.get("kind") or "",
        "district": org.get("district"),
        "org_admin": bool(person.get("org_admin")),
    }
    return RedirectResponse(next_url if next_url != "/" else home_of(str(person.get("role"))), 303)


@router.post("/signout")
async def signout(request: Request, api: BackendsDep) -> Response:
    session = session_of(request)
    user = session.get("user") or {}
    if user.get("token"):
        try:
            await api.request("catalog", "DELETE", "/v1/sessions/current", token=user["token"])
        except (BackendUnavailable, BackendError):
            pass  # the cookie goes anyway; the token expires on its own
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(request, i18n.gettext("You have signed out."))
    return RedirectResponse("/", status_code=303)


@router.get("/lang/{code}")
async def switch_language(request: Request, code: str, next: str = "/") -> Response:
    if code in i18n.LANGUAGES:
        session_of(request)["lang"] = code
    return RedirectResponse(safe_next(next), status_code=303)

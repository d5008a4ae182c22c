"""SME pages: my needs (with their matches), interest in a patent (a lead), my leads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal import i18n
from services.portal.api.session import csrf_protect
from services.portal.api.web import SME, BackendsDep, User, flash, render, require
from services.portal.domain.backends import BackendError, optional

router = APIRouter(dependencies=[Depends(csrf_protect)])
SmeUser = Annotated[User, require(SME)]


@router.get("/me/needs", response_class=HTMLResponse)
async def my_needs(request: Request, api: BackendsDep, user: SmeUser) -> Response:
    needs = await optional(
        api.get("matching", "/v1/needs", params={"mine": "true", "limit": 100}, token=user.token)
    )
    return render(request, "sme/needs.html", {"needs": needs})


@router.post("/me/needs")
async def create_need(request: Request, api: BackendsDep, user: SmeUser) -> Response:
    form = await request.form()
    body = {
        "title": str(form.get("title") or "").strip(),
        "description": str(form.get("description") or "").strip(),
        "industry": str(form.get("need_industry") or form.get("industry") or ""),
        "modes": [str(m) for m in form.getlist("modes") if m],
    }
    try:
        need = await api.post("matching", "/v1/needs", json=body, token=user.token)
    except BackendError as exc:
        if exc.status != 422:
            raise
        return render(request, "errors/backend.html", {"error": exc}, status=422)
    flash(request, i18n.gettext("Your need has been saved."))
    return RedirectResponse(f"/me/needs/{need['id']}", status_code=303)


@router.get("/me/needs/{need_id}", response_class=HTMLResponse)
async def need_page(request: Request, need_id: int, api: BackendsDep, user: SmeUser) -> Response:
    need = await api.get("matching", f"/v1/needs/{need_id}", token=user.token)
    if need.get("org_id") != user.org_id:
        return render(request, "errors/403.html", {"reason": "role"}, status=403)
    matches = await optional(api.get("matching", f"/v1/needs/{need_id}/matches", params={"k": 10}))
    return render(request, "sme/need.html", {"need": need, "matches": matches})


@router.post("/me/needs/{need_id}/status")
async def need_status(request: Request, need_id: int, api: BackendsDep, user: SmeUser) -> Response:
    form = await request.form()
    status = "closed" if form.get("status") == "closed" else "open"
    await api.patch("matching", f"/v1/needs/{need_id}", json={"status": status}, token=user.token)
    return RedirectResponse(f"/me/needs/{need_id}", status_code=303)


@router.post("/patents/{number}/interest")
async def interest(request: Request, number: str, api: BackendsDep, user: SmeUser) -> Response:
    form = await request.form()
    body = {
        "need_id": int(str(form.get("need_id") or 0) or 0),
        "application_number": number,
        "message": str(form.get("message") or "")[:2000],
    }
    try:
        await api.post("matching", "/v1/leads", json=body, token=user.token)
    except BackendError as exc:
        if exc.status == 409:
            flash(request, i18n.gettext("You have already told the owner about this need."), "warn")
            return RedirectResponse("/me/leads", status_code=303)
        raise
    flash(request, i18n.gettext("The owner has been told of your interest."))
    return RedirectResponse("/me/leads", status_code=303)


@router.get("/me/leads", response_class=HTMLResponse)
async def my_leads(request: Request, api: BackendsDep, user: SmeUser) -> Response:
    leads = await optional(
        api.get("matching", "/v1/leads", params={"limit": 200}, token=user.token)
    )
    return render(request, "sme/leads.html", {"leads": leads})


@router.post("/me/leads/{lead_id}/withdraw")
async def withdraw_lead(
    request: Request, lead_id: int, api: BackendsDep, user: SmeUser
) -> Response:
    await api.post("matching", f"/v1/leads/{lead_id}/withdraw", json={}, token=user.token)
    return RedirectResponse("/me/leads", status_code=303)

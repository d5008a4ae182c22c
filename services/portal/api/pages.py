"""Public pages: home, patent search, the patent page, describe-your-problem."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import i18n
from services.portal.api.session import csrf_protect
from services.portal.api.web import BackendsDep, OptionalUser, render
from services.portal.domain.backends import BackendError, Backends, BackendUnavailable, optional
from services.portal.domain.labels import LABELS
from services.portal.domain.views import highlight, match_text_of, offer_of, query_words
from shared.regions import TIANJIN_DISTRICTS

router = APIRouter(dependencies=[Depends(csrf_protect)])

PAGE_SIZE = 10
SEARCH_FILTERS = (
    "industry",
    "mode",
    "zero_price",
    "use_first_pay_later",
    "patent_type",
    "district",
    "owner_kind",
)


async def industries(request: Request, api: Backends) -> list[dict[str, Any]]:
    """SEI industries (reference data, cached once read)."""
    cached = getattr(request.app.state, "industries", None)
    if cached:
        return cached
    try:
        rows = await api.get("catalog", "/v1/industries")
    except (BackendUnavailable, BackendError):
        return []
    seen: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for r in rows:
        if r["industry_no"] not in seen:
            seen[r["industry_no"]] = r["industry_name"]
            out.append({"code": r["industry_no"], "name": r["industry_name"], "branch": False})
        out.append({"code": r["branch_no"], "name": r["branch_name"], "branch": True})
    request.app.state.industries = out
    return out


def filter_options() -> dict[str, Any]:
    return {
        "modes": LABELS["mode"],
        "patent_types": LABELS["patent_type"],
        "owner_kinds": {k: LABELS["org_kind"][k] for k in ("university", "institute", "soe")},
        "districts": TIANJIN_DISTRICTS,
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, api: BackendsDep, user: OptionalUser) -> Response:
    stats = await optional(api.get("catalog", "/v1/stats/pool"))
    return render(request, "home.html", {"stats": stats})


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, api: BackendsDep, user: OptionalUser) -> Response:
    qp = request.query_params
    q = (qp.get("q") or "").strip()[:200]
    params: dict[str, Any] = {"limit": PAGE_SIZE, "pool_status": qp.get("pool_status") or "pooled"}
    if params["pool_status"] == "all":
        params.pop("pool_status")
    if q:
        params["q"] = q
    for name in SEARCH_FILTERS:
        if qp.get(name):
            params[name] = qp[name]
    if qp.get("cursor"):
        params["cursor"] = qp["cursor"]
    page = max(1, int(qp.get("page") or 1)) if (qp.get("page") or "1").isdigit() else 1
    words = query_words(q)
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    unavailable = None
    error = None
    try:
        result = await api.get("catalog", "/v1/patents", params=params)
    except BackendUnavailable as exc:
        unavailable = exc.service
    except BackendError as exc:
        error = exc
    rows = [
        {
            "patent": p,
            "offer": offer_of(p.get("listing")),
            "snippet": highlight(p.get("abstract") or "", words),
            "title": highlight(p.get("title") or "", words, width=500),
        }
        for p in result.get("items", [])
    ]
    ctx = {
        "q": q,
        "rows": rows,
        "next_cursor": result.get("next_cursor"),
        "page": page,
        "filters": {k: qp.get(k, "") for k in (*SEARCH_FILTERS, "pool_status")},
        "industries": await industries(request, api),
        "options": filter_options(),
        "unavailable": unavailable,
        "error": error,
    }
    template = (
        "partials/search_results.html" if request.headers.get("hx-request") else "search.html"
    )
    return render(request, template, ctx)


@router.get("/patents/{number}", response_class=HTMLResponse)
async def patent_page(
    request: Request, number: str, api: BackendsDep, user: OptionalUser
) -> Response:
    patent = await api.get("catalog", f"/v1/patents/{number}")
    owners_task = asyncio.gather(
        *(
            optional(api.get("catalog", f"/v1/organisations/{i}"))
            for i in patent.get("owner_org_ids", [])[:5]
        )
    )
    bundles_task = asyncio.gather(
        *(
            optional(api.get("catalog", "/v1/bundles", params={"org_id": i}))
            for i in patent.get("owner_org_ids", [])[:5]
        )
    )
    similar_task = optional(
        api.post("matching", "/v1/match", json={"text": match_text_of(patent), "k": 6})
    )
    needs_task = (
        optional(api.get("matching", "/v1/needs", params={"mine": "true"}, token=user.token))
        if user and user.role == "sme"
        else asyncio.sleep(0, result=None)
    )
    owners, bundle_parts, similar, my_needs = await asyncio.gather(
        owners_task, bundles_task, similar_task, needs_task
    )
    bundles = [
        b
        for part in bundle_parts
        if part.data
        for b in part.data
        if patent["application_number"] in b.get("application_numbers", [])
    ]
    if similar.data:
        similar.data = [
            h
            for h in similar.data.get("hits", [])
            if h["application_number"] != patent["application_number"]
        ][:5]
    open_needs = []
    if my_needs is not None and my_needs.data:
        open_needs = [n for n in my_needs.data.get("items", []) if n.get("status") == "open"]
    return render(
        request,
        "patent.html",
        {
            "p": patent,
            "offer": offer_of(patent.get("listing")),
            "owners": [o.data for o in owners if o.data],
            "bundles": bundles,
            "similar": similar,
            "my_needs": my_needs,
            "open_needs": open_needs,
        },
    )


@router.get("/problem", response_class=HTMLResponse)
async def problem_form(request: Request, api: BackendsDep, user: OptionalUser) -> Response:
    return render(
        request,
        "problem.html",
        {
            "text": "",
            "result": None,
            "industries": await industries(request, api),
            "options": filter_options(),
            "filters": {},
        },
    )


def match_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"text": str(form.get("text") or "")[:20000], "k": 10}
    if form.get("industry"):
        body["industries"] = [str(form["industry"])]
    if form.get("mode"):
        body["modes"] = [str(form["mode"])]
    if form.get("zero_price") in ("true", "false"):
        body["zero_price"] = form["zero_price"] == "true"
    if form.get("patent_type"):
        body["patent_types"] = [str(form["patent_type"])]
    if form.get("district"):
        body["owner_districts"] = [str(form["district"])]
    return body


@router.post("/problem", response_class=HTMLResponse)
async def problem_results(request: Request, api: BackendsDep, user: OptionalUser) -> Response:
    form = await request.form()
    body = match_body(form)
    ctx: dict[str, Any] = {
        "text": body["text"],
        "filters": {
            k: form.get(k, "")
            for k in ("industry", "mode", "zero_price", "patent_type", "district")
        },
        "industries": await industries(request, api),
        "options": filter_options(),
        "result": None,
        "unavailable": None,
        "error": None,
    }
    status = 200
    if not body["text"].strip():
        ctx["error_text"] = i18n.gettext("Describe the problem in a sentence or two.")
        status = 422
    else:
        try:
            ctx["result"] = await api.post("matching", "/v1/match", json=body)
        except BackendUnavailable as exc:
            ctx["unavailable"] = exc.service
            status = 503
        except BackendError as exc:
            ctx["error"] = exc
            status = 422
    template = (
        "partials/problem_results.html" if request.headers.get("hx-request") else "problem.html"
    )
    return render(request, template, ctx, status=status if template == "problem.html" else 200)

"""University / institute / SOE pages: upload, my patents and listings, leads, needs that fit."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from services.portal import i18n
from services.portal.api.session import csrf_protect
from services.portal.api.web import SUPPLIER, BackendsDep, SettingsDep, User, flash, render, require
from services.portal.domain.backends import BackendError, optional
from services.portal.domain.labels import LABELS
from services.portal.domain.uploads import UploadStore, explain_row, format_of, rejected_csv
from services.portal.domain.views import offer_of

router = APIRouter(dependencies=[Depends(csrf_protect)])
Supplier = Annotated[User, require(SUPPLIER)]
PAGE = 20


def store(request: Request) -> UploadStore:
    return UploadStore(request.app.state.settings.upload_dir)


# ------------------------------------------------------------------ upload


@router.get("/pool/upload", response_class=HTMLResponse)
async def upload_form(request: Request, user: Supplier) -> Response:
    return render(request, "pool/upload.html")


@router.get("/pool/template.{fmt}")
async def template(fmt: str, api: BackendsDep, user: Supplier) -> Response:
    if fmt not in ("xlsx", "csv"):
        return Response(status_code=404)
    r = await api.request("catalog", "GET", "/v1/patents/bulk/template", params={"format": fmt})
    return Response(
        r.content,
        media_type=r.headers.get("content-type"),
        headers={"Content-Disposition": f'attachment; filename="patent-template.{fmt}"'},
    )


@router.post("/pool/upload", response_class=HTMLResponse)
async def upload(
    request: Request, api: BackendsDep, settings: SettingsDep, user: Supplier
) -> Response:
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return render(
            request, "pool/upload.html", {"error": i18n.gettext("Choose a file to upload.")}, 422
        )
    fmt = format_of(file.filename)
    if fmt is None:
        return render(
            request,
            "pool/upload.html",
            {"error": i18n.gettext("Upload a CSV or XLSX file (or JSON / NDJSON).")},
            422,
        )
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        return render(
            request, "pool/upload.html", {"error": i18n.gettext("The file is too large.")}, 413
        )
    st = store(request)
    uid = st.create(user.org_id, file.filename, fmt, data)
    try:
        r = await api.request(
            "catalog",
            "POST",
            "/v1/patents/bulk",
            token=user.token,
            files={"file": (file.filename, data, file.content_type or "application/octet-stream")},
            headers={"Idempotency-Key": f"portal-{uid}"},
            timeout=300,
        )
    except BackendError as exc:
        return render(request, "pool/upload.html", {"error": exc.detail, "problem": exc}, 422)
    meta = st.meta(uid)
    body = r.json()
    if r.status_code == 202:
        meta["job_id"] = body["job_id"]
        meta["total"] = body.get("total")
    else:
        meta["report"] = {"summary": body["summary"], "rows": body["rows"]}
    st.save_meta(uid, meta)
    return RedirectResponse(f"/pool/uploads/{uid}", status_code=303)


def load_upload(request: Request, uid: str, user: User) -> dict[str, Any]:
    try:
        meta = store(request).meta(uid)
    except (KeyError, OSError):
        meta = {}
    if not meta or meta.get("org_id") != user.org_id:
        # Another organisation's upload looks like none at all.
        from starlette.exceptions import HTTPException

        raise HTTPException(404)
    return meta


async def refresh_job(
    request: Request, api: Any, uid: str, meta: dict[str, Any], user: User
) -> dict[str, Any]:
    """Poll the catalog's job; once finished keep its report with the upload."""
    if "report" in meta or "job_id" not in meta:
        return {"status": "done"}
    job = await api.get("catalog", f"/v1/uploads/{meta['job_id']}", token=user.token)
    if job["status"] in ("done", "finished", "completed") or job.get("report"):
        report = await api.get("catalog", f"/v1/uploads/{meta['job_id']}/report", token=user.token)
        meta["report"] = {"summary": report["summary"], "rows": report["rows"]}
        store(request).save_meta(uid, meta)
    return job


def report_context(meta: dict[str, Any]) -> dict[str, Any]:
    report = meta.get("report") or {}
    rejected = [
        {**r, "problems": explain_row(r)}
        for r in report.get("rows", [])
        if r.get("status") == "rejected"
    ]
    return {"meta": meta, "summary": report.get("summary"), "rejected": rejected}


@router.get("/pool/uploads/{uid}", response_class=HTMLResponse)
async def upload_report(request: Request, uid: str, api: BackendsDep, user: Supplier) -> Response:
    meta = load_upload(request, uid, user)
    job = await refresh_job(request, api, uid, meta, user)
    return render(
        request, "pool/upload_report.html", {"uid": uid, "job": job, **report_context(meta)}
    )


@router.get("/pool/uploads/{uid}/progress", response_class=HTMLResponse)
async def upload_progress(request: Request, uid: str, api: BackendsDep, user: Supplier) -> Response:
    meta = load_upload(request, uid, user)
    job = await refresh_job(request, api, uid, meta, user)
    if "report" in meta:
        # Finished: reload the whole page so the report renders (htmx follows HX-Refresh).
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    return render(request, "pool/upload_progress.html", {"uid": uid, "job": job})


@router.get("/pool/uploads/{uid}/rejected.csv")
async def rejected_rows(request: Request, uid: str, user: Supplier) -> Response:
    meta = load_upload(request, uid, user)
    rows = (meta.get("report") or {}).get("rows", [])
    data = rejected_csv(store(request).original(uid), meta["format"], rows, i18n.gettext("Error"))
    stem = str(meta.get("filename") or "upload").rsplit(".", 1)[0]
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(stem)}-rejected.csv"
        },
    )


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


# ------------------------------------------------------------------ my patents and listings


@router.get("/pool/patents", response_class=HTMLResponse)
async def my_patents(request: Request, api: BackendsDep, user: Supplier) -> Response:
    qp = request.query_params
    params: dict[str, Any] = {"owner": user.org_id, "limit": PAGE}
    if qp.get("pool_status") in (
        "pooled",
        "unlisted",
        "converted",
        "withdrawn",
        "lapsed",
        "listed",
        "negotiating",
    ):
        params["pool_status"] = qp["pool_status"]
    if qp.get("q"):
        params["q"] = qp["q"][:200]
    if qp.get("cursor"):
        params["cursor"] = qp["cursor"]
    page = await api.get("catalog", "/v1/patents", params=params)
    unlisted = [p for p in page["items"] if not p.get("listing")]
    eligibility = await asyncio.gather(
        *(
            optional(api.get("catalog", f"/v1/patents/{p['application_number']}/eligibility"))
            for p in unlisted
        )
    )
    reasons = {
        p["application_number"]: e.data
        for p, e in zip(unlisted, eligibility, strict=True)
        if e.data
    }
    bundles = await optional(api.get("catalog", "/v1/bundles", params={"org_id": user.org_id}))
    rows = [
        {
            "p": p,
            "offer": offer_of(p.get("listing")),
            "eligibility": reasons.get(p["application_number"]),
        }
        for p in page["items"]
    ]
    return render(
        request,
        "pool/patents.html",
        {
            "rows": rows,
            "next_cursor": page.get("next_cursor"),
            "pool_status": qp.get("pool_status", ""),
            "q": qp.get("q", ""),
            "bundles": bundles,
        },
    )


def terms_from(form: Any) -> dict[str, Any]:
    price = str(form.get("price_cny") or "").strip().replace(",", "")
    return {
        "modes": [str(m) for m in form.getlist("modes") if m],
        "price_cny": price or None,
        "negotiable": form.get("negotiable") == "on",
        "zero_price": form.get("zero_price") == "on",
        "use_first_pay_later": form.get("use_first_pay_later") == "on",
        "deferred_licence_fee": form.get("deferred_licence_fee") == "on",
        "note": str(form.get("note") or "")[:2000],
    }


@router.get("/pool/patents/{number}/offer", response_class=HTMLResponse)
async def offer_form(request: Request, number: str, api: BackendsDep, user: Supplier) -> Response:
    patent = await api.get("catalog", f"/v1/patents/{number}")
    if user.org_id not in patent.get("owner_org_ids", []):
        return render(request, "errors/403.html", {"reason": "role"}, status=403)
    eligibility = None
    if not patent.get("listing"):
        eligibility = await api.get("catalog", f"/v1/patents/{number}/eligibility")
    return render(
        request,
        "pool/offer.html",
        {
            "p": patent,
            "listing": patent.get("listing"),
            "modes": LABELS["mode"],
            "eligibility": eligibility,
        },
    )


@router.post("/pool/patents/{number}/offer", response_class=HTMLResponse)
async def save_offer(request: Request, number: str, api: BackendsDep, user: Supplier) -> Response:
    form = await request.form()
    terms = terms_from(form)
    patent = await api.get("catalog", f"/v1/patents/{number}")
    try:
        if (patent.get("listing") or {}).get("status") in ("listed", "negotiating"):
            await api.patch(
                "catalog",
                f"/v1/listings/{patent['listing']['id']}",
                json={"terms": terms},
                token=user.token,
            )
        else:
            await api.post(
                "catalog",
                "/v1/listings",
                json={"application_number": number, **terms},
                token=user.token,
            )
    except BackendError as exc:
        if exc.status not in (403, 409, 422):
            raise
        ctx = {
            "p": patent,
            "listing": patent.get("listing"),
            "modes": LABELS["mode"],
            "problem": exc,
            "terms": terms,
        }
        return render(request, "pool/offer.html", ctx, status=exc.status)
    flash(request, i18n.gettext("The offer terms have been saved."))
    return RedirectResponse("/pool/patents", status_code=303)


@router.post("/pool/listings/{listing_id}/status")
async def listing_status(
    request: Request, listing_id: int, api: BackendsDep, user: Supplier
) -> Response:
    form = await request.form()
    status = str(form.get("status") or "")
    if status != "withdrawn":  # re-listing goes through the offer form (new terms)
        return render(request, "errors/404.html", status=404)
    body = {"status": status, "reason": str(form.get("reason") or "")[:300]}
    await api.patch("catalog", f"/v1/listings/{listing_id}", json=body, token=user.token)
    flash(request, i18n.gettext("The patent has been withdrawn from the pool."))
    return RedirectResponse("/pool/patents", status_code=303)


@router.get("/pool/patents/{number}/needs", response_class=HTMLResponse)
async def needs_for_patent(
    request: Request, number: str, api: BackendsDep, user: Supplier
) -> Response:
    result = await optional(
        api.get("matching", f"/v1/patents/{number}/needs", params={"k": 5}, token=user.token)
    )
    return render(request, "pool/patent_needs.html", {"result": result, "number": number})


@router.post("/pool/bundles", response_class=HTMLResponse)
async def create_bundle(request: Request, api: BackendsDep, user: Supplier) -> Response:
    form = await request.form()
    price = str(form.get("price_cny") or "").strip().replace(",", "")
    body = {
        "name": str(form.get("name") or "").strip(),
        "description": str(form.get("description") or "")[:5000],
        "price_cny": price or None,
        "application_numbers": [str(n) for n in form.getlist("application_numbers") if n],
    }
    await api.post("catalog", "/v1/bundles", json=body, token=user.token)
    flash(request, i18n.gettext("The bundle has been created."))
    return RedirectResponse("/pool/patents#bundles", status_code=303)


@router.post("/pool/bundles/{bundle_id}/withdraw")
async def withdraw_bundle(
    request: Request, bundle_id: int, api: BackendsDep, user: Supplier
) -> Response:
    await api.patch(
        "catalog", f"/v1/bundles/{bundle_id}", json={"status": "withdrawn"}, token=user.token
    )
    flash(request, i18n.gettext("The bundle has been withdrawn."))
    return RedirectResponse("/pool/patents#bundles", status_code=303)


# ------------------------------------------------------------------ incoming leads


@router.get("/pool/leads", response_class=HTMLResponse)
async def incoming_leads(request: Request, api: BackendsDep, user: Supplier) -> Response:
    leads = await optional(
        api.get("matching", "/v1/leads", params={"limit": 200}, token=user.token)
    )
    return render(request, "pool/leads.html", {"leads": leads})


@router.post("/pool/leads/{lead_id}/{answer}")
async def answer_lead(
    request: Request, lead_id: int, answer: str, api: BackendsDep, user: Supplier
) -> Response:
    if answer not in ("accept", "decline"):
        return render(request, "errors/404.html", status=404)
    form = await request.form()
    await api.post(
        "matching",
        f"/v1/leads/{lead_id}/{answer}",
        json={"note": str(form.get("note") or "")[:2000]},
        token=user.token,
    )
    flash(
        request,
        i18n.gettext("Lead accepted: the company's contact details are shown below.")
        if answer == "accept"
        else i18n.gettext("Lead declined."),
    )
    return RedirectResponse("/pool/leads", status_code=303)

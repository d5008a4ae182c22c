"""Bureau pages (city and district): dashboard, plan tables, drill-down, exports, reported
figures, snapshots. A district bureau sees its district's figures of the city plan."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal import i18n
from services.portal.api.session import csrf_protect
from services.portal.api.web import BUREAUS, BackendsDep, SettingsDep, User, flash, render, require
from services.portal.domain.backends import BackendError, optional
from services.portal.domain.dashboard import (
    HEADLINES,
    breakdown_series,
    by_code,
    cumulative_series,
    yearly_series,
)
from services.portal.domain.labels import LABELS, district_name
from shared.regions import TIANJIN_DISTRICTS

router = APIRouter(dependencies=[Depends(csrf_protect)])
SHANGHAI = ZoneInfo("Asia/Shanghai")
Bureau = Annotated[User, require(*BUREAUS)]
EXPORT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def scope_district(request: Request, user: User) -> str | None:
    """A district bureau is held to its own district; the city bureau may pick one."""
    if user.role == "district_bureau":
        return user.district
    d = request.query_params.get("district")
    return d if d in TIANJIN_DISTRICTS else None


def year_param(request: Request) -> int | None:
    y = request.query_params.get("year", "")
    return int(y) if y.isdigit() and 2000 <= int(y) <= 2100 else None


def clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v not in (None, "")}


async def plan_meta(request: Request, api: Any, code: str) -> dict[str, Any]:
    """A plan's definition (window, years); plans are data files, so read once."""
    cache: dict[str, Any] = request.app.state.__dict__.setdefault("plans", {})
    if code not in cache:
        cache[code] = await api.get("indicators", f"/v1/plans/{code}")
    return cache[code]


def breakdown_window(meta: dict[str, Any], year: int | None) -> dict[str, str]:
    """From the plan's start to the end of the period shown (never past today, Beijing)."""
    today = datetime.now(SHANGHAI).date()
    deadline = date.fromisoformat(meta["deadline"])
    end = date(year, 12, 31) if year else min(today, deadline)
    return {"from": meta["start"], "to": min(end, today, deadline).isoformat()}


@router.get("/bureau", response_class=HTMLResponse)
async def dashboard(
    request: Request, api: BackendsDep, settings: SettingsDep, user: Bureau
) -> Response:
    plan = settings.city_plan
    district = scope_district(request, user)
    year = year_param(request)
    meta = await plan_meta(request, api, plan)
    # The breakdowns cover the plan's window up to the period end (or today), so all six
    # calls go out together instead of waiting for the progress answer first.
    window = breakdown_window(meta, year)
    progress, *parts = await asyncio.gather(
        api.get(
            "indicators",
            f"/v1/plans/{plan}/progress",
            params=clean({"year": year, "district": district}),
        ),
        *(
            optional(
                api.get(
                    "indicators",
                    "/v1/breakdowns/sme_patent_deals",
                    params=clean({"by": by, **window, "district": district}),
                )
            )
            for by in ("district", "industry", "supplier", "kind")
        ),
        optional(api.get("indicators", "/v1/breakdowns/pool", params={"by": "district"})),
    )
    rows = by_code(progress)
    kind_names = {k: i18n.gettext(v) for k, v in LABELS["deal_kind"].items()}
    charts = {
        "cumulative": {code: cumulative_series(rows[code]) for code in HEADLINES if code in rows},
        "yearly": yearly_series(rows["C04"]) if "C04" in rows else None,
        "by_district": breakdown_series(parts[0].data, "district", dict(TIANJIN_DISTRICTS)),
        "by_industry": breakdown_series(parts[1].data, "industry"),
        "by_supplier": breakdown_series(parts[2].data, "supplier"),
        "by_kind": breakdown_series(parts[3].data, "kind", kind_names),
        "pool_by_district": breakdown_series(parts[4].data, "district", dict(TIANJIN_DISTRICTS)),
        "labels": {
            "cumulative": i18n.gettext("Cumulative"),
            "target": i18n.gettext("Target"),
            "new": i18n.gettext("New in the year"),
            "change": i18n.gettext("Change on the year before (%)"),
            "patent_deals": i18n.gettext("Patent-deals"),
            "pooled": i18n.gettext("Ever pooled"),
        },
        "drill": f"/bureau/plans/{plan}/C04/records?"
        + ("" if not district else f"district={district}&"),
    }
    return render(
        request,
        "bureau/dashboard.html",
        {
            "progress": progress,
            "headlines": [rows[c] for c in HEADLINES if c in rows],
            "rising": rows.get("C04", {}).get("rising_every_year"),
            "yearly": charts["yearly"],
            "charts": charts,
            "breakdowns_down": next((p.unavailable for p in parts if p.unavailable), None),
            "district": district,
            "plan": plan,
            "districts": TIANJIN_DISTRICTS,
        },
    )


@router.get("/bureau/plans", response_class=HTMLResponse)
async def plans(request: Request, api: BackendsDep, user: Bureau) -> Response:
    items = await api.get("indicators", "/v1/plans")
    if user.role == "district_bureau":
        items = [p for p in items if p.get("scope") == "city" or p.get("district") == user.district]
    return render(request, "bureau/plans.html", {"plans": items})


@router.get("/bureau/plans/{code}", response_class=HTMLResponse)
async def plan_table(request: Request, code: str, api: BackendsDep, user: Bureau) -> Response:
    district = scope_district(request, user)
    year = year_param(request)
    params = clean({"year": year, "district": district})
    try:
        progress = await api.get("indicators", f"/v1/plans/{code}/progress", params=params)
    except BackendError as exc:
        if exc.status == 422 and district:  # district plans take no district parameter
            params.pop("district")
            progress = await api.get("indicators", f"/v1/plans/{code}/progress", params=params)
        else:
            raise
    return render(
        request,
        "bureau/plan.html",
        {
            "progress": progress,
            "code": code,
            "district": params.get("district"),
            "districts": TIANJIN_DISTRICTS,
        },
    )


@router.get("/bureau/plans/{code}/{indicator}/records", response_class=HTMLResponse)
async def records(
    request: Request, code: str, indicator: str, api: BackendsDep, user: Bureau
) -> Response:
    district = scope_district(request, user)
    qp = request.query_params
    params = clean(
        {
            "year": year_param(request),
            "district": district,
            "cumulative": qp.get("cumulative")
            if qp.get("cumulative") in ("true", "false")
            else None,
            "after": qp.get("after") if (qp.get("after") or "").isdigit() else None,
            "limit": 100,
        }
    )
    body = await api.get(
        "indicators", f"/v1/plans/{code}/indicators/{indicator}/records", params=params
    )
    return render(
        request,
        "bureau/records.html",
        {"body": body, "code": code, "indicator": indicator, "district": district},
    )


async def proxy_export(
    api: Any, user: User, path: str, params: dict[str, Any], fmt: str, name: str
) -> Response:
    r = await api.request(
        "indicators", "GET", path, params={**params, "format": fmt}, token=user.token, timeout=300
    )
    return Response(
        r.content,
        media_type=EXPORT_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@router.get("/bureau/export/plans/{code}.{fmt}")
async def export_plan(
    request: Request, code: str, fmt: str, api: BackendsDep, user: Bureau
) -> Response:
    if fmt not in EXPORT_TYPES:
        return render(request, "errors/404.html", status=404)
    params = clean({"year": year_param(request), "district": scope_district(request, user)})
    return await proxy_export(
        api, user, f"/v1/plans/{code}/progress", params, fmt, f"{code}-progress"
    )


@router.get("/bureau/export/ledger.{fmt}")
async def export_ledger(request: Request, fmt: str, api: BackendsDep, user: Bureau) -> Response:
    if fmt not in EXPORT_TYPES:
        return render(request, "errors/404.html", status=404)
    params = clean({"year": year_param(request), "district": scope_district(request, user)})
    return await proxy_export(api, user, "/v1/ledger/export", params, fmt, "ledger")


# ------------------------------------------------------------------ reported figures


@router.get("/bureau/figures", response_class=HTMLResponse)
async def figures(
    request: Request, api: BackendsDep, settings: SettingsDep, user: Bureau
) -> Response:
    plan_code = request.query_params.get("plan") or settings.city_plan
    plan, current = await asyncio.gather(
        api.get("indicators", f"/v1/plans/{plan_code}"),
        api.get("indicators", "/v1/figures", params={"plan": plan_code}),
    )
    if user.role == "district_bureau":
        current = [
            f for f in current if f.get("scope") in (user.district, f"district:{user.district}")
        ]
    reported = [i for i in plan.get("indicators", []) if i.get("source") == "reported"]
    return render(
        request,
        "bureau/figures.html",
        {"plan": plan, "figures": current, "reported": reported, "districts": TIANJIN_DISTRICTS},
    )


@router.post("/bureau/figures", response_class=HTMLResponse)
async def submit_figure(request: Request, api: BackendsDep, user: Bureau) -> Response:
    form = await request.form()
    plan = str(form.get("plan") or "")
    district = (
        user.district
        if user.role == "district_bureau"
        else (str(form.get("district") or "") or None)
    )
    body = {
        "plan": plan,
        "indicator": str(form.get("indicator") or ""),
        "year": int(str(form.get("year") or 0) or 0),
        "value": str(form.get("value") or "").replace(",", ""),
        "district": district,
        "note": str(form.get("note") or ""),
    }
    if plan != "city-001":
        body.pop("district")
    await api.post("indicators", "/v1/figures", json=body, token=user.token)
    flash(request, i18n.gettext("The figure has been recorded."))
    return RedirectResponse(f"/bureau/figures?plan={plan}", status_code=303)


# ------------------------------------------------------------------ snapshots


@router.get("/bureau/snapshots", response_class=HTMLResponse)
async def snapshots(
    request: Request, api: BackendsDep, settings: SettingsDep, user: Bureau
) -> Response:
    items, plans_ = await asyncio.gather(
        api.get("indicators", "/v1/snapshots"), api.get("indicators", "/v1/plans")
    )
    return render(
        request,
        "bureau/snapshots.html",
        {"snapshots": items, "plans": plans_, "city_plan": settings.city_plan},
    )


@router.post("/bureau/snapshots")
async def create_snapshot(request: Request, api: BackendsDep, user: Bureau) -> Response:
    form = await request.form()
    body = {
        "plan": str(form.get("plan") or ""),
        "year": int(str(form.get("year") or 0) or 0),
        "district": user.district if user.role == "district_bureau" else None,
        "note": str(form.get("note") or ""),
    }
    snap = await api.post("indicators", "/v1/snapshots", json=body, token=user.token)
    flash(request, i18n.gettext("The figures have been frozen in a snapshot."))
    return RedirectResponse(f"/bureau/snapshots/{snap['id']}", status_code=303)


@router.get("/bureau/snapshots/{snap_id}", response_class=HTMLResponse)
async def snapshot(request: Request, snap_id: int, api: BackendsDep, user: Bureau) -> Response:
    snap, diff = await asyncio.gather(
        api.get("indicators", f"/v1/snapshots/{snap_id}"),
        optional(api.get("indicators", f"/v1/snapshots/{snap_id}/diff")),
    )
    return render(
        request,
        "bureau/snapshot.html",
        {"snap": snap, "diff": diff, "district_name": district_name},
    )

"""Plans, progress, drill-down, breakdowns and exports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from services.indicators.api.deps import SessionDep, SessionmakerDep
from services.indicators.domain import exports
from services.indicators.domain.common import today
from services.indicators.domain.plans import (
    all_plans,
    default_year,
    get_plan,
    plan_progress,
    scope_of,
)
from services.indicators.domain.progress_cache import ProgressCache
from services.indicators.domain.records import (
    BREAKDOWN_RULES,
    breakdown,
    pool_breakdown,
    records,
)
from services.indicators.domain.rules import RULES, Window
from shared.errors import Unprocessable
from shared.openapi import file_responses
from shared.params import MAX_ID, MAX_YEAR, MIN_YEAR, YearQuery
from shared.responses import FastJSONResponse

router = APIRouter(prefix="/v1", tags=["plans"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"


@router.get("/plans")
async def list_plans() -> list[dict[str, Any]]:
    return [p.summary() for p in all_plans().values()]


@router.get("/plans/{code}")
async def plan_definition(code: str) -> dict[str, Any]:
    """The plan as transcribed: every indicator with its targets and source quote."""
    plan = get_plan(code)
    inds = []
    for i in plan.indicators:
        inds.append(
            {
                "code": i.code, "row": i.row, "levels": list(i.levels), "name_zh": i.name_zh,
                "name_en": i.name_en, "unit": i.unit, "base_unit": i.base_unit, "kind": i.kind,
                "source": i.source, "rule": i.rule,
                "rule_summary": RULES[i.rule].summary if i.rule else None,
                "reporter": i.reporter, "targets": {str(y): v for y, v in i.targets.items()},
                "target_notes": {str(y): v for y, v in i.target_notes.items()},
                "national": i.national, "rising": i.rising, "section": i.section,
                "quote": i.quote, "note": i.note,
            }
        )  # fmt: skip
    return {**plan.summary(), "indicators": inds}


def _as_of(as_of: date | None) -> date:
    d = as_of or today()
    if d > today():
        raise Unprocessable.field("as_of", "is in the future")
    return d


@router.get("/plans/{code}/progress", responses=file_responses(CSV, XLSX, json_too=True))
async def progress(
    code: str,
    request: Request,
    sessionmaker: SessionmakerDep,
    year: int | None = Query(
        None,
        ge=MIN_YEAR,
        le=MAX_YEAR,
        description="the period (default: this year or the deadline)",
    ),
    district: str | None = Query(None, description="city plan only: one district's figures"),
    as_of: date | None = Query(None, description="count as of this date (default today)"),
    format: str = Query("json", pattern="^(json|csv|xlsx)$"),
) -> Any:
    """Actual, target, progress, status and projection for every indicator of the plan."""
    plan = get_plan(code)
    y = year or default_year(plan)
    day = _as_of(as_of)
    cache: ProgressCache = request.app.state.progress_cache
    result = await cache.get(
        (plan.code, y, district, day),
        lambda: plan_progress(
            sessionmaker, plan, y, district=district, as_of=day, series_cache=cache
        ),
    )
    name = f"{plan.code}-{result['scope']}-{y}"
    if format == "csv":
        return Response(
            exports.progress_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "xlsx":
        import asyncio

        body = await asyncio.to_thread(exports.progress_xlsx, result)
        return Response(
            body,
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return FastJSONResponse(result)  # a plain dict: orjson, not jsonable_encoder


@router.get("/plans/{code}/indicators/{indicator}/records")
async def indicator_records(
    code: str,
    indicator: str,
    session: SessionDep,
    year: YearQuery = None,
    district: str | None = None,
    cumulative: bool | None = Query(
        None, description="records from the plan start (default for cumulative indicators)"
    ),
    as_of: date | None = None,
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """The records behind a figure: ledger lines, deals, payments, pledges, listings,
    or, for a reported indicator, every submission with its history."""
    plan = get_plan(code)
    ind = plan.indicator(indicator)
    y = year or default_year(plan)
    scope = scope_of(plan, district)
    if ind.source == "reported":
        from services.indicators.domain.reporting import list_figures
        from services.indicators.schemas import FigureOut

        figs = await list_figures(
            session, plan.code, indicator=ind.code, scope=None, year=None, history=True
        )
        return {
            "indicator": ind.code,
            "source": "reported",
            "items": [
                FigureOut.model_validate(f).model_dump(mode="json")
                for f in figs
                if f.year <= y and (scope == "city" or f.scope == scope)
            ],
        }
    assert ind.rule
    end = min(_as_of(as_of), date(y, 12, 31))
    cum = ind.kind == "cumulative_count" if cumulative is None else cumulative
    start = plan.start if cum else max(plan.start, date(y, 1, 1))
    if ind.kind == "growth_rate" and not cum:
        start = date(y, 1, 1)
    if ind.rule == "pooled_current":
        start = date(1900, 1, 1)
    w = Window(start=start, as_of=end, district=None if scope == "city" else scope)
    out = await records(session, ind.rule, w, after=after, limit=limit)
    return {"indicator": ind.code, "source": "computed", **out}


@router.get("/breakdowns/pool")
async def breakdown_pool(
    session: SessionDep,
    by: str = Query("district", pattern="^(district|year)$"),
    as_of: date | None = None,
) -> list[dict[str, Any]]:
    """Ever pooled and currently pooled patents by district or by the year first listed."""
    return await pool_breakdown(session, by, _as_of(as_of))


@router.get("/breakdowns/{rule}")
async def breakdown_rule(
    rule: Annotated[str, Path(pattern=f"^({'|'.join(BREAKDOWN_RULES)})$")],
    session: SessionDep,
    by: str = Query("year", description="year | district | supplier | industry | kind"),
    from_: date = Query(date(2000, 1, 1), alias="from"),
    to: date | None = None,
    district: str | None = None,
) -> dict[str, Any]:
    """Patent-deal lines by one dimension. Rules: sme_patent_deals (the 1000 target),
    transfers_licences, all_deals. Suppliers: the first qualifying supplier of a deal."""
    if rule not in BREAKDOWN_RULES:
        raise Unprocessable.field("rule", f"one of {', '.join(BREAKDOWN_RULES)}")
    w = Window(start=from_, as_of=_as_of(to), district=district)
    rows = await breakdown(session, rule, by, w)
    return {"rule": rule, "by": by, "from": from_.isoformat(), "to": w.as_of.isoformat(),
            "district": district, "rows": rows,
            "total_patent_deals": sum(r["patent_deals"] for r in rows)}  # fmt: skip


@router.get("/ledger/export", responses=file_responses(CSV, XLSX))
async def export_ledger(
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    format: str = Query("xlsx", pattern="^(csv|xlsx)$"),
    year: YearQuery = None,
    district: str | None = None,
    status: str | None = None,
) -> Any:
    """The whole ledger (one row per deal, headers in Chinese) as CSV or Excel."""
    filters = {"year": year, "district": district, "status": status}
    if format == "csv":

        async def stream() -> AsyncIterator[bytes]:
            # The body is sent after the request's session has closed: the stream reads
            # with a session of its own, closed when it ends (an orphaned connection was
            # otherwise finalised by the garbage collector on another thread).
            async with sessionmaker() as own:
                async for chunk in exports.ledger_csv(own, **filters):
                    yield chunk

        return StreamingResponse(
            stream(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
        )
    path = await exports.ledger_xlsx_file(session, **filters)
    return FileResponse(
        path,
        media_type=XLSX,
        filename="ledger.xlsx",
        background=BackgroundTask(os.unlink, path),
    )

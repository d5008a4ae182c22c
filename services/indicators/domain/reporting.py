"""Reported figures (with history) and frozen period snapshots."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.indicators import schemas
from services.indicators.domain.common import aware, day_end_utc, money_text, num
from services.indicators.domain.plans import Plan, get_plan, plan_progress, scope_of
from services.indicators.models import Deal, ReportedFigure, Snapshot
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable


def check_figure_writer(principal: Principal, plan: Plan, scope: str) -> None:
    """city_bureau (and admin): any scope; district_bureau: its own district only."""
    if principal.role in (Role.ADMIN, Role.CITY_BUREAU):
        return
    if principal.role is Role.DISTRICT_BUREAU:
        if scope != "city" and principal.district == scope:
            return
        raise Forbidden(
            f"a district bureau reports only for its own district ({principal.district}), "
            f"not for {scope}"
        )
    raise Forbidden(f"role {principal.role.value} cannot report figures")


async def submit_figure(
    session: AsyncSession, body: schemas.FigureCreate, principal: Principal
) -> ReportedFigure:
    plan = get_plan(body.plan)
    ind = plan.indicator(body.indicator)
    if ind.source != "reported":
        raise Unprocessable.field(
            "indicator", f"{ind.code} is computed from the ledger (rule {ind.rule}); not reported"
        )
    district = body.district
    if district is None and plan.district is None and principal.role is Role.DISTRICT_BUREAU:
        district = principal.district  # a district bureau reports for its district
    scope = scope_of(plan, district)
    check_figure_writer(principal, plan, scope)
    if not (plan.base_year <= body.year <= max(plan.deadline.year, *plan.years) + 2):
        raise Unprocessable.field(
            "year", f"plan {plan.code} runs {plan.base_year}-{plan.deadline.year}"
        )
    if ind.kind in ("growth_rate",) and body.value < 0:
        raise Unprocessable.field("value", "the base value of a growth indicator is >= 0")
    if ind.kind == "share" and not (0 <= body.value <= 100):
        raise Unprocessable.field("value", "a share is a percentage between 0 and 100")
    previous = await session.scalar(
        select(ReportedFigure)
        .where(
            ReportedFigure.plan_code == plan.code,
            ReportedFigure.indicator_code == ind.code,
            ReportedFigure.scope == scope,
            ReportedFigure.year == body.year,
            ReportedFigure.current.is_(True),
        )
        .with_for_update()
    )
    if previous is not None:
        if not body.note.strip():
            raise Unprocessable.field("note", "a correction says why the value changed")
        previous.current = False
    fig = ReportedFigure(
        plan_code=plan.code,
        indicator_code=ind.code,
        scope=scope,
        year=body.year,
        value=body.value,
        note=body.note,
        current=True,
        supersedes_id=previous.id if previous else None,
        submitted_by_org_id=principal.org_id,
        submitted_by_role=principal.role.value,
        submitted_by_key_id=principal.key_id,
    )
    session.add(fig)
    await session.flush()
    return fig


async def list_figures(
    session: AsyncSession,
    plan_code: str,
    *,
    indicator: str | None,
    scope: str | None,
    year: int | None,
    history: bool,
) -> list[ReportedFigure]:
    stmt = select(ReportedFigure).where(ReportedFigure.plan_code == plan_code)
    if indicator:
        stmt = stmt.where(ReportedFigure.indicator_code == indicator)
    if scope:
        stmt = stmt.where(ReportedFigure.scope == scope)
    if year:
        stmt = stmt.where(ReportedFigure.year == year)
    if not history:
        stmt = stmt.where(ReportedFigure.current.is_(True))
    stmt = stmt.order_by(
        ReportedFigure.indicator_code, ReportedFigure.scope, ReportedFigure.year, ReportedFigure.id
    )
    return list((await session.scalars(stmt)).all())


def _digest(figures: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(figures, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


async def create_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    body: schemas.SnapshotCreate,
    principal: Principal,
    as_of: date,
) -> Snapshot:
    plan = get_plan(body.plan)
    scope = scope_of(plan, body.district)
    check_figure_writer(principal, plan, scope)
    district = None if scope == "city" or plan.district else scope
    progress = await plan_progress(sessionmaker, plan, body.year, district=district, as_of=as_of)
    clash = await session.scalar(
        select(func.count())
        .select_from(Snapshot)
        .where(Snapshot.plan_code == plan.code, Snapshot.scope == scope, Snapshot.year == body.year)
    )
    figures = {"progress": progress, "sequence": int(clash or 0) + 1}
    snap = Snapshot(
        plan_code=plan.code,
        scope=scope,
        year=body.year,
        as_of=date.fromisoformat(progress["as_of"]),
        note=body.note,
        figures=figures,
        content_sha256=_digest(figures),
        created_by_org_id=principal.org_id,
        created_by_role=principal.role.value,
    )
    session.add(snap)
    await session.flush()
    return snap


async def load_snapshot(session: AsyncSession, snap_id: int) -> Snapshot:
    snap = await session.get(Snapshot, snap_id)
    if snap is None:
        raise NotFound(f"snapshot {snap_id} does not exist")
    if _digest(snap.figures) != snap.content_sha256:
        raise Conflict(f"snapshot {snap_id} does not match its checksum; it was altered")
    return snap


async def live_progress_for(
    sessionmaker: async_sessionmaker[AsyncSession], snap: Snapshot
) -> dict[str, Any]:
    plan = get_plan(snap.plan_code)
    return await plan_progress(
        sessionmaker,
        plan,
        snap.year,
        district=None if snap.scope == "city" or plan.district else snap.scope,
    )


async def snapshot_diff(
    session: AsyncSession, snap: Snapshot, live: dict[str, Any]
) -> dict[str, Any]:
    """Frozen vs live figures, and the ledger changes since the freeze that explain them."""
    plan = get_plan(snap.plan_code)
    frozen_rows = {r["code"]: r for r in snap.figures["progress"]["indicators"]}
    changes = []
    for r in live["indicators"]:
        f = frozen_rows.get(r["code"])
        if f is None:
            continue
        if f["actual"] != r["actual"] or f["status"] != r["status"]:
            delta: Any = None
            if f["actual"] is not None and r["actual"] is not None:
                if isinstance(r["actual"], str):  # an amount: exact decimal strings
                    delta = money_text(Decimal(r["actual"]) - Decimal(str(f["actual"])))
                else:
                    delta = num(r["actual"] - f["actual"], 4)
            changes.append(
                {
                    "code": r["code"],
                    "name_zh": r["name_zh"],
                    "frozen": f["actual"],
                    "live": r["actual"],
                    "delta": delta,
                    "frozen_status": f["status"],
                    "live_status": r["status"],
                }
            )
    frozen_at = aware(snap.created_at)
    assert frozen_at is not None
    period_end = date.fromisoformat(snap.figures["progress"]["as_of"])
    start = plan.start
    district = None if snap.scope == "city" else snap.scope
    base = [Deal.effective_date >= start, Deal.effective_date <= period_end]
    if district:
        base.append(Deal.recipient_district == district)
    cancelled = (
        await session.execute(
            select(Deal.id, Deal.cancelled_reason, Deal.cancelled_at, Deal.qualifies)
            .where(Deal.status == "cancelled", Deal.cancelled_at > frozen_at, *base)
            .order_by(Deal.id)
            .limit(1000)
        )
    ).all()
    added = (
        await session.execute(
            select(Deal.id, Deal.status, Deal.created_at, Deal.qualifies)
            .where(Deal.created_at > frozen_at, Deal.status == "effective", *base)
            .order_by(Deal.id)
            .limit(1000)
        )
    ).all()
    return {
        "snapshot_id": snap.id,
        "plan": plan.code,
        "scope": snap.scope,
        "year": snap.year,
        "frozen_at": frozen_at.isoformat(),
        "period_end": period_end.isoformat(),
        "changed": changes,
        "deals_cancelled_since": [
            {"deal_id": i, "reason": r, "cancelled_at": aware(at).isoformat() if at else None,
             "qualifies": q}
            for i, r, at, q in cancelled
        ],
        "deals_recorded_since": [
            {"deal_id": i, "status": s, "created_at": aware(at).isoformat() if at else None,
             "qualifies": q}
            for i, s, at, q in added
        ],
        "live_as_of_period_end": day_end_utc(period_end).isoformat(),
    }  # fmt: skip

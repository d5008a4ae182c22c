"""Reported figures and period snapshots."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from services.indicators import schemas
from services.indicators.api.deps import SessionDep, SessionmakerDep
from services.indicators.domain import reporting
from services.indicators.domain.common import today
from services.indicators.domain.plans import get_plan
from services.indicators.models import ReportedFigure, Snapshot
from shared.auth import PrincipalDep, Role, require_role
from shared.params import PathId, YearQuery

router = APIRouter(prefix="/v1", tags=["reporting"])


@router.post("/figures", response_model=schemas.FigureOut, status_code=status.HTTP_201_CREATED)
async def submit_figure(
    body: schemas.FigureCreate, session: SessionDep, principal: PrincipalDep
) -> ReportedFigure:
    """Submit (or correct) a reported indicator's value for a year. A correction keeps the
    earlier value in the history and must say why (note). district_bureau: own district
    only; city_bureau: any; suppliers and SMEs: 403."""
    require_role(principal, Role.CITY_BUREAU, Role.DISTRICT_BUREAU)
    return await reporting.submit_figure(session, body, principal)


@router.get("/figures", response_model=list[schemas.FigureOut])
async def list_figures(
    session: SessionDep,
    plan: str,
    indicator: str | None = None,
    scope: str | None = None,
    year: YearQuery = None,
    history: bool = False,
) -> list[ReportedFigure]:
    """Current values, or with history=true every submission (who, when, what, why)."""
    get_plan(plan)
    return await reporting.list_figures(
        session, plan, indicator=indicator, scope=scope, year=year, history=history
    )


@router.post("/snapshots", response_model=schemas.SnapshotOut, status_code=status.HTTP_201_CREATED)
async def create_snapshot(
    body: schemas.SnapshotCreate,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    principal: PrincipalDep,
) -> Snapshot:
    """Freeze a period's figures as reported to the city. Snapshots never change."""
    require_role(principal, Role.CITY_BUREAU, Role.DISTRICT_BUREAU)
    return await reporting.create_snapshot(sessionmaker, session, body, principal, today())


@router.get("/snapshots", response_model=list[schemas.SnapshotOut])
async def list_snapshots(session: SessionDep, plan: str | None = None) -> list[Snapshot]:
    from sqlalchemy import select

    stmt = select(Snapshot).order_by(Snapshot.id)
    if plan:
        stmt = stmt.where(Snapshot.plan_code == plan)
    return list((await session.scalars(stmt)).all())


@router.get("/snapshots/{snap_id}", response_model=schemas.SnapshotOut)
async def get_snapshot(snap_id: PathId, session: SessionDep) -> Snapshot:
    return await reporting.load_snapshot(session, snap_id)


@router.get("/snapshots/{snap_id}/diff")
async def snapshot_diff(snap_id: PathId, sessionmaker: SessionmakerDep) -> dict[str, Any]:
    """What changed between the frozen figures and the live ones, and the deals why."""
    # short sessions only: on SQLite a held transaction would block the progress queries
    async with sessionmaker() as session:
        snap = await reporting.load_snapshot(session, snap_id)
    live = await reporting.live_progress_for(sessionmaker, snap)
    async with sessionmaker() as session:
        return await reporting.snapshot_diff(session, snap, live)

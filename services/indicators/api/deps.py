"""Dependency aliases of the indicators API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.indicators.domain.replica import RequestLookup
from services.indicators.settings import IndicatorsSettings
from shared.deps import SessionDep as SessionDep  # re-exported for the routers


async def get_settings(request: Request) -> IndicatorsSettings:
    return request.app.state.settings


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.db.sessionmaker


async def get_lookup(request: Request) -> RequestLookup:
    lookup: RequestLookup = request.app.state.lookup.for_request()
    return lookup


SettingsDep = Annotated[IndicatorsSettings, Depends(get_settings)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
LookupDep = Annotated[RequestLookup, Depends(get_lookup)]

"""Dependency aliases of the matching API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.matching.settings import MatchingSettings
from shared.deps import SessionDep as SessionDep  # re-exported for the routers


async def get_settings(request: Request) -> MatchingSettings:
    return request.app.state.settings


SettingsDep = Annotated[MatchingSettings, Depends(get_settings)]

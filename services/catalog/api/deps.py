"""Dependency aliases of the catalog API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.catalog.settings import CatalogSettings
from shared.deps import SessionDep as SessionDep  # re-exported for the routers


async def get_settings(request: Request) -> CatalogSettings:
    return request.app.state.settings


SettingsDep = Annotated[CatalogSettings, Depends(get_settings)]

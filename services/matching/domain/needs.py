"""Needs: views, the needs index (for reverse matching) and feed payloads."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.matching import schemas
from services.matching.domain.codes import industry_mask, industry_name, mode_mask
from services.matching.domain.index import Attrs, MatchIndex
from services.matching.domain.text import analyse_query
from services.matching.models import Need, Organisation
from shared import bizdate
from shared.auth import Principal, Role


def is_open(need: Need) -> bool:
    return need.status == "open" and (
        need.valid_until is None or need.valid_until >= bizdate.today()
    )


def sees_contact(need: Need, principal: Principal | None) -> bool:
    if principal is None:
        return False
    return principal.org_id == need.org_id or principal.role in (Role.ADMIN, Role.CITY_BUREAU)


def need_view(need: Need, org: Organisation | None, full: bool) -> schemas.Need:
    view = schemas.Need.model_validate(need)
    view.industry_name = industry_name(need.industry)
    if org is not None:
        view.org_name, view.org_district = org.name, org.district
    if not full:
        view.contact_name = view.contact_phone = view.contact_email = None
    return view


def need_payload(need: Need) -> dict[str, Any]:
    return {
        "id": need.id,
        "org_id": need.org_id,
        "title": need.title,
        "industry": need.industry,
        "status": need.status,
        "created_at": need.created_at.isoformat() if need.created_at else None,
    }


def need_bag(need: Need) -> dict[str, float]:
    return analyse_query(need.description, title=need.title, ipc_codes=need.ipc_hints)


def need_attrs(need: Need) -> Attrs:
    return Attrs(
        pooled=is_open(need),
        industries=industry_mask([need.industry]),
        modes=mode_mask(need.modes),
    )


class NeedIndexer:
    """Open needs, indexed like patents, so a patent can find the needs it fits."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.index = MatchIndex(refit_min=50)

    async def rebuild(self) -> None:
        async with self.sessionmaker() as session:
            needs = list(await session.scalars(select(Need).where(Need.status == "open")))
        docs = [(n.id, need_bag(n), need_attrs(n)) for n in needs if is_open(n)]
        await asyncio.to_thread(self.index.build, docs)

    async def refresh(self, need: Need) -> None:
        """Re-index one need from the request's object (readers re-check the database, so a
        rolled-back change only costs a skipped hit)."""
        if not is_open(need):
            await asyncio.to_thread(self.index.remove, [need.id])
        else:
            doc = (need.id, need_bag(need), need_attrs(need))
            await asyncio.to_thread(self.index.upsert_many, [doc])

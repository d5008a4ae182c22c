"""Leads: an SME's interest in a patent for one of its needs, answered by the owner."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import or_, select

from services.matching import schemas
from services.matching.api.deps import SessionDep
from services.matching.api.needs import load_need
from services.matching.domain.codes import POOLED
from services.matching.domain.needs import is_open, need_bag
from services.matching.models import (
    FeedEntry,
    Lead,
    Listing,
    Need,
    Organisation,
    Patent,
    PatentOwner,
)
from shared import feed
from shared.appno import InvalidNumber, normalize_application_number
from shared.auth import Principal, PrincipalDep, Role, require_role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.feed import utcnow
from shared.params import MAX_ID, PathId

router = APIRouter(prefix="/v1", tags=["leads"])

# from-state -> to-state -> who may make the move
TRANSITIONS = {
    ("open", "accepted"): "owner",
    ("open", "declined"): "owner",
    ("open", "withdrawn"): "sme",
    ("accepted", "withdrawn"): "sme",
}


def lead_payload(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "need_id": lead.need_id,
        "patent_id": lead.patent_id,
        "application_number": lead.application_number,
        "sme_org_id": lead.sme_org_id,
        "owner_org_ids": lead.owner_org_ids,
        "status": lead.status,
        "created_at": lead.created_at.isoformat() if lead.created_at else None,
        "updated_at": lead.updated_at.isoformat() if lead.updated_at else None,
    }


def is_owner(lead: Lead, principal: Principal) -> bool:
    return principal.role is Role.SUPPLIER and principal.org_id in lead.owner_org_ids


def can_see(lead: Lead, principal: Principal) -> bool:
    return (
        principal.org_id == lead.sme_org_id
        or principal.org_id in lead.owner_org_ids
        or principal.role in (Role.ADMIN, Role.CITY_BUREAU, Role.DISTRICT_BUREAU)
    )


async def lead_view(session: SessionDep, lead: Lead, principal: Principal) -> schemas.Lead:
    view = schemas.Lead.model_validate(lead)
    need = await session.get(Need, lead.need_id)
    patent = await session.get(Patent, lead.patent_id)
    sme = await session.get(Organisation, lead.sme_org_id)
    view.need_title = need.title if need else None
    view.patent_title = patent.title if patent else None
    view.sme_org_name = sme.name if sme else None
    party = principal.org_id in (lead.sme_org_id, *lead.owner_org_ids)
    if need and party and (lead.status == "accepted" or principal.org_id == lead.sme_org_id):
        view.contact = {
            "org_name": view.sme_org_name,
            "district": sme.district if sme else None,
            "name": need.contact_name,
            "phone": need.contact_phone,
            "email": need.contact_email,
        }
    return view


async def publish(session: SessionDep, lead: Lead) -> None:
    await session.flush()
    await feed.append(session, FeedEntry, [("lead", str(lead.id), "upsert", lead_payload(lead))])


@router.post("/leads", response_model=schemas.Lead, status_code=status.HTTP_201_CREATED)
async def create_lead(
    body: schemas.LeadCreate, session: SessionDep, principal: PrincipalDep, request: Request
) -> schemas.Lead:
    """Mark interest in a pooled patent for one of your needs (SME key)."""
    require_role(principal, Role.SME)
    need = await load_need(session, body.need_id)
    if need.org_id != principal.org_id:
        raise Forbidden("you can only express interest for your own organisation's needs")
    if not is_open(need):
        raise Unprocessable.field("need_id", f"need {need.id} is closed or expired")
    try:
        appno = normalize_application_number(body.application_number)
    except InvalidNumber as exc:
        raise Unprocessable.field("application_number", str(exc)) from None
    patent = await session.scalar(select(Patent).where(Patent.application_number == appno))
    if patent is None:
        raise NotFound(f"patent {appno} is not known to matching")
    listing = await session.scalar(select(Listing).where(Listing.patent_id == patent.id))
    if listing is None or listing.status not in POOLED:
        raise Unprocessable.field("application_number", f"patent {appno} is not in the pool")
    clash = await session.scalar(
        select(Lead).where(Lead.need_id == need.id, Lead.patent_id == patent.id)
    )
    if clash is not None and clash.status != "withdrawn":
        raise Conflict(
            f"lead {clash.id} already links need {need.id} and {appno}", lead_id=clash.id
        )
    score = await asyncio.to_thread(_score, request, need, patent.id)
    lead = clash or Lead(need_id=need.id, patent_id=patent.id)
    lead.application_number = appno
    lead.sme_org_id = principal.org_id
    lead.owner_org_ids = list(patent.owner_org_ids)
    lead.status = "open"
    lead.message = body.message
    lead.response_note = ""
    lead.score = score
    lead.updated_at = utcnow()
    if clash is None:
        session.add(lead)
    await publish(session, lead)
    return await lead_view(session, lead, principal)


def _score(request: Request, need: Need, patent_id: int) -> float | None:
    """The matcher's score of this patent for this need (kept with the lead)."""
    index = request.app.state.indexer.index
    from services.matching.domain.index import Filters

    hits = index.search(need_bag(need), 1000, Filters(), explain=0)
    return next((round(h.score, 5) for h in hits if h.key == patent_id), None)


@router.get("/leads", response_model=schemas.LeadPage)
async def list_leads(
    session: SessionDep,
    principal: PrincipalDep,
    status_: str | None = Query(None, alias="status"),
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(50, ge=1, le=500),
) -> schemas.LeadPage:
    """Leads you are party to: an SME sees its own, an owner the leads on its patents,
    the bureaus all."""
    stmt = select(Lead).where(Lead.id > after).order_by(Lead.id)
    if principal.role not in (Role.ADMIN, Role.CITY_BUREAU, Role.DISTRICT_BUREAU):
        owned = select(PatentOwner.patent_id).where(PatentOwner.org_id == principal.org_id)
        stmt = stmt.where(or_(Lead.sme_org_id == principal.org_id, Lead.patent_id.in_(owned)))
    if status_:
        stmt = stmt.where(Lead.status == status_)
    rows = list(await session.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [await lead_view(session, r, principal) for r in rows]
    return schemas.LeadPage(items=items, next_cursor=str(rows[-1].id) if more else None)


async def load_lead(session: SessionDep, lead_id: int, principal: Principal) -> Lead:
    lead = await session.get(Lead, lead_id)
    if lead is None or not can_see(lead, principal):
        raise NotFound(f"lead {lead_id} does not exist")
    return lead


@router.get("/leads/{lead_id}", response_model=schemas.Lead)
async def get_lead(lead_id: PathId, session: SessionDep, principal: PrincipalDep) -> schemas.Lead:
    return await lead_view(session, await load_lead(session, lead_id, principal), principal)


async def move(
    session: SessionDep, lead_id: int, principal: Principal, to: str, note: str
) -> schemas.Lead:
    lead = await load_lead(session, lead_id, principal)
    who = TRANSITIONS.get((lead.status, to))
    if who is None:
        raise Conflict(f"lead {lead_id} is {lead.status}; it cannot become {to}")
    if who == "owner" and not (is_owner(lead, principal) or principal.role is Role.ADMIN):
        raise Forbidden("only a supplier key of the patent's owner may accept or decline a lead")
    if who == "sme" and principal.org_id != lead.sme_org_id and principal.role is not Role.ADMIN:
        raise Forbidden("only the SME that raised the lead may withdraw it")
    lead.status = to
    if note:
        lead.response_note = note
    lead.updated_at = utcnow()
    await publish(session, lead)
    return await lead_view(session, lead, principal)


@router.post("/leads/{lead_id}/accept", response_model=schemas.Lead)
async def accept(
    lead_id: PathId,
    session: SessionDep,
    principal: PrincipalDep,
    body: schemas.LeadAnswer | None = None,
) -> schemas.Lead:
    return await move(session, lead_id, principal, "accepted", body.note if body else "")


@router.post("/leads/{lead_id}/decline", response_model=schemas.Lead)
async def decline(
    lead_id: PathId,
    session: SessionDep,
    principal: PrincipalDep,
    body: schemas.LeadAnswer | None = None,
) -> schemas.Lead:
    return await move(session, lead_id, principal, "declined", body.note if body else "")


@router.post("/leads/{lead_id}/withdraw", response_model=schemas.Lead)
async def withdraw(
    lead_id: PathId,
    session: SessionDep,
    principal: PrincipalDep,
    body: schemas.LeadAnswer | None = None,
) -> schemas.Lead:
    return await move(session, lead_id, principal, "withdrawn", body.note if body else "")

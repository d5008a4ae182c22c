"""Other countable events: pledge financing, SME patent-product filings, securitisations.

Written by city_bureau / admin (any) and district_bureau (an organisation in its
district); suppliers and SMEs read only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.indicators import schemas
from services.indicators.api.deps import LookupDep, SessionDep
from services.indicators.domain.ledger import party_at
from services.indicators.models import Pledge, ProductFiling, Securitisation
from shared.auth import Principal, PrincipalDep, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable, is_unique_violation
from shared.params import MAX_ID, PathId, YearQuery
from shared.regions import TIANJIN_DISTRICTS

router = APIRouter(prefix="/v1", tags=["events"])


def check_event_writer(principal: Principal, district: str | None) -> None:
    if principal.role in (Role.ADMIN, Role.CITY_BUREAU):
        return
    if principal.role is Role.DISTRICT_BUREAU:
        if district and principal.district == district:
            return
        raise Forbidden("a district bureau records events of its own district only")
    raise Forbidden(f"role {principal.role.value} cannot record events")


async def _known_org(session: Any, lookup: Any, org_id: int, field: str) -> None:
    if await lookup.org(session, org_id) is None:
        raise Unprocessable.field(field, f"organisation {org_id} is unknown")


@router.post("/pledges", response_model=schemas.PledgeOut, status_code=status.HTTP_201_CREATED)
async def create_pledge(
    body: schemas.PledgeCreate, session: SessionDep, principal: PrincipalDep, lookup: LookupDep
) -> Pledge:
    await lookup.prefetch([body.pledgor_org_id])  # before the transaction
    await _known_org(session, lookup, body.pledgor_org_id, "pledgor_org_id")
    party = await party_at(session, body.pledgor_org_id, body.registered_on)
    check_event_writer(principal, party.district)
    if await session.scalar(
        select(Pledge.id).where(Pledge.registration_number == body.registration_number.strip())
    ):
        raise Conflict(f"pledge registration {body.registration_number} is already recorded")
    pledge = Pledge(
        registration_number=body.registration_number.strip(),
        pledgor_org_id=party.org_id,
        pledgor_name=party.name,
        pledgor_kind=party.kind,
        pledgor_district=party.district,
        pledgor_is_sme=party.is_sme,
        lender=body.lender,
        amount=body.amount,
        registered_on=body.registered_on,
        year=body.registered_on.year,
        asset_kind=body.asset_kind,
        application_numbers=body.application_numbers,
        trademark_numbers=body.trademark_numbers,
        note=body.note,
        created_by_org_id=principal.org_id,
    )
    session.add(pledge)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict("pledge registration number already recorded") from exc
    return pledge


@router.get("/pledges", response_model=list[schemas.PledgeOut])
async def list_pledges(
    session: SessionDep,
    year: YearQuery = None,
    district: str | None = None,
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(100, ge=1, le=1000),
) -> list[Pledge]:
    stmt = select(Pledge).where(Pledge.id > after).order_by(Pledge.id).limit(limit)
    if year:
        stmt = stmt.where(Pledge.year == year)
    if district:
        stmt = stmt.where(Pledge.pledgor_district == district)
    return list((await session.scalars(stmt)).all())


@router.post("/pledges/{pledge_id}/cancel", response_model=schemas.PledgeOut)
async def cancel_pledge(
    pledge_id: PathId, body: schemas.CancelBody, session: SessionDep, principal: PrincipalDep
) -> Pledge:
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None:
        raise NotFound(f"pledge {pledge_id} does not exist")
    check_event_writer(principal, pledge.pledgor_district)
    if pledge.status == "cancelled":
        raise Conflict(f"pledge {pledge_id} is already cancelled")
    pledge.status = "cancelled"
    pledge.cancelled_reason = body.reason
    await session.flush()
    return pledge


@router.post(
    "/product-filings", response_model=schemas.ProductFilingOut, status_code=status.HTTP_201_CREATED
)
async def create_filing(
    body: schemas.ProductFilingCreate,
    session: SessionDep,
    principal: PrincipalDep,
    lookup: LookupDep,
) -> ProductFiling:
    await lookup.prefetch([body.org_id])  # before the transaction
    await _known_org(session, lookup, body.org_id, "org_id")
    party = await party_at(session, body.org_id, body.filed_on)
    check_event_writer(principal, party.district)
    if await session.scalar(
        select(ProductFiling.id).where(ProductFiling.filing_number == body.filing_number.strip())
    ):
        raise Conflict(f"filing {body.filing_number} is already recorded")
    filing = ProductFiling(
        filing_number=body.filing_number.strip(),
        org_id=party.org_id,
        org_name=party.name,
        org_district=party.district,
        org_is_sme=party.is_sme,
        product_name=body.product_name,
        filed_on=body.filed_on,
        year=body.filed_on.year,
        application_numbers=body.application_numbers,
        note=body.note,
        created_by_org_id=principal.org_id,
    )
    session.add(filing)
    await session.flush()
    return filing


@router.get("/product-filings", response_model=list[schemas.ProductFilingOut])
async def list_filings(
    session: SessionDep,
    year: YearQuery = None,
    district: str | None = None,
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(100, ge=1, le=1000),
) -> list[ProductFiling]:
    stmt = select(ProductFiling).where(ProductFiling.id > after).order_by(ProductFiling.id)
    if year:
        stmt = stmt.where(ProductFiling.year == year)
    if district:
        stmt = stmt.where(ProductFiling.org_district == district)
    return list((await session.scalars(stmt.limit(limit))).all())


@router.post(
    "/securitisations",
    response_model=schemas.SecuritisationOut,
    status_code=status.HTTP_201_CREATED,
)
async def create_securitisation(
    body: schemas.SecuritisationCreate,
    session: SessionDep,
    principal: PrincipalDep,
    lookup: LookupDep,
) -> Securitisation:
    if body.district is not None and body.district not in TIANJIN_DISTRICTS:
        raise Unprocessable.field("district", f"unknown district {body.district}")
    await lookup.prefetch(body.originator_org_ids)  # before the transaction
    for i, oid in enumerate(body.originator_org_ids):
        await _known_org(session, lookup, oid, f"originator_org_ids[{i}]")
    check_event_writer(principal, body.district)
    if await session.scalar(select(Securitisation.id).where(Securitisation.code == body.code)):
        raise Conflict(f"securitisation {body.code} is already recorded")
    sec = Securitisation(
        **body.model_dump(),
        year=body.issued_on.year,
        created_by_org_id=principal.org_id,
    )
    session.add(sec)
    await session.flush()
    return sec


@router.get("/securitisations", response_model=list[schemas.SecuritisationOut])
async def list_securitisations(session: SessionDep, year: YearQuery = None) -> list[Securitisation]:
    stmt = select(Securitisation).order_by(Securitisation.id)
    if year:
        stmt = stmt.where(Securitisation.year == year)
    return list((await session.scalars(stmt)).all())

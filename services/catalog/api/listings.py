"""Pool listings: put a patent into the pool with offer terms, and move it through its lifecycle.

listed -> negotiating -> converted | withdrawn | lapsed. `converted` comes only from the
indicators feed (a registered deal); `lapsed` from legal-status changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.api.patents import filters, load_patent, require_owner, supplier_org
from services.catalog.domain.ingest import ineligibility, publish_listing, set_listing_status
from services.catalog.domain.listings import apply_terms, open_listing, terms_of
from services.catalog.domain.search import Filters, build_query
from services.catalog.models import Listing, ListingEvent, Patent
from shared import feed
from shared.auth import PrincipalDep, Role
from shared.errors import Conflict, NotFound, Unprocessable
from shared.feed import utcnow
from shared.params import MAX_ID, PathId

router = APIRouter(prefix="/v1", tags=["listings"])

# Transitions an owner may make by hand.
OWNER_MOVES = {
    ("listed", "negotiating"), ("negotiating", "listed"),
    ("listed", "withdrawn"), ("negotiating", "withdrawn"),
}  # fmt: skip


async def to_schema(session: SessionDep, listing: Listing) -> schemas.Listing:
    patent = await session.get(Patent, listing.patent_id)
    assert patent is not None
    out = schemas.Listing.model_validate(listing)
    out.application_number = patent.application_number
    out.title = patent.title
    return out


async def load_listing(session: SessionDep, listing_id: PathId) -> Listing:
    listing = await session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"listing {listing_id} does not exist")
    return listing


@router.post("/listings", response_model=schemas.Listing, status_code=status.HTTP_201_CREATED)
async def create_listing(
    body: schemas.ListingCreate, session: SessionDep, principal: PrincipalDep
) -> schemas.Listing:
    """Pool one of your organisation's patents with its offer terms."""
    org = await supplier_org(session, principal)
    patent = await load_patent(session, body.application_number)
    await require_owner(session, patent, principal)
    reasons = await ineligibility(session, patent)
    if reasons:
        raise Unprocessable(
            f"patent {patent.application_number} cannot be pooled: {'; '.join(reasons)}",
            errors=[{"field": "application_number", "reason": r} for r in reasons],
        )
    listing = await session.scalar(select(Listing).where(Listing.patent_id == patent.id))
    if listing is not None and listing.status in schemas.POOLED + ("converted",):
        raise Conflict(
            f"patent {patent.application_number} is already {listing.status} "
            f"(listing {listing.id})",
            listing_id=listing.id,
        )
    if listing is None:
        listing = await open_listing(session, patent_id=patent.id, org_id=org.id, terms=body)
    else:  # re-listing a withdrawn or lapsed patent keeps its history
        await feed.lock(session)  # before the listing's row lock (see update_listing)
        apply_terms(listing, body)
        listing.listed_by_org_id = org.id
        await set_listing_status(session, listing, "listed", "re-listed by the owner")
    return await to_schema(session, listing)


@router.get("/listings/{listing_id}", response_model=schemas.Listing)
async def get_listing(listing_id: PathId, session: SessionDep) -> schemas.Listing:
    return await to_schema(session, await load_listing(session, listing_id))


@router.get("/listings/{listing_id}/history")
async def listing_history(listing_id: PathId, session: SessionDep) -> list[dict[str, object]]:
    await load_listing(session, listing_id)
    rows = await session.scalars(
        select(ListingEvent).where(ListingEvent.listing_id == listing_id).order_by(ListingEvent.id)
    )
    return [
        {"from": e.from_status, "to": e.to_status, "reason": e.reason, "at": e.at} for e in rows
    ]


@router.patch("/listings/{listing_id}", response_model=schemas.Listing)
async def update_listing(
    listing_id: PathId, body: schemas.ListingUpdate, session: SessionDep, principal: PrincipalDep
) -> schemas.Listing:
    """Change offer terms, or move listed <-> negotiating, or withdraw (owners only)."""
    await feed.lock(session)  # before the listing's row lock: the order bulk upload uses
    listing = await load_listing(session, listing_id)
    patent = await session.get(Patent, listing.patent_id)
    assert patent is not None
    if principal.role is not Role.ADMIN:
        await supplier_org(session, principal)
    await require_owner(session, patent, principal)
    if body.terms is not None:
        if listing.status not in schemas.POOLED:
            raise Conflict(f"listing {listing.id} is {listing.status}; re-list it to change terms")
        before = terms_of(listing)
        apply_terms(listing, body.terms)
        if terms_of(listing) != before:
            listing.version += 1
            listing.updated_at = utcnow()
            await session.flush()
            if body.status is None or body.status.value == listing.status:
                await publish_listing(session, listing)
    if body.status is not None and body.status.value != listing.status:
        move = (listing.status, body.status.value)
        if move not in OWNER_MOVES:
            raise Conflict(f"a listing cannot go from {move[0]} to {move[1]} by hand")
        await set_listing_status(
            session, listing, body.status.value, body.reason or f"{move[1]} by the owner"
        )
    return await to_schema(session, listing)


@router.get("/listings", response_model=schemas.ListingPage)
async def list_listings(
    session: SessionDep,
    f: Annotated[Filters, Depends(filters)],
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: last listing id seen"),
    limit: int = Query(50, ge=1, le=500),
) -> schemas.ListingPage:
    """Listings (default: those currently in the pool), with the patent filters."""
    if f.pool_status is None:
        f.pool_status = "pooled"
    if f.pool_status == "unlisted":
        raise Unprocessable.field(
            "pool_status", "unlisted patents have no listing; use /v1/patents"
        )
    stmt = build_query(f).where(Listing.id > after).order_by(Listing.id).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for patent, listing in rows:
        item = schemas.Listing.model_validate(listing)
        item.application_number = patent.application_number
        item.title = patent.title
        items.append(item)
    return schemas.ListingPage(items=items, next_cursor=str(rows[-1][1].id) if more else None)

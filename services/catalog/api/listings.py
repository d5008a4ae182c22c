"""Pool listings: put a patent into the pool with offer terms, and move it through its lifecycle.

listed -> negotiating -> converted | withdrawn | lapsed. `converted` comes only from the
indicators feed (a registered deal); `lapsed` from legal-status changes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, status
from pydantic import ValidationError
from sqlalchemy import select

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.api.patents import filters, load_patent, require_owner, supplier_org
from services.catalog.domain.bulk import refresh_statistics
from services.catalog.domain.ingest import (
    ineligibility,
    last_event_at,
    publish_listing,
    set_listing_status,
)
from services.catalog.domain.listings import apply_terms, terms_of
from services.catalog.domain.pooling import (
    BACKDATE_REASON,
    MIGRATORS,
    PoolRequest,
    PoolResult,
    audit_label,
    date_problem,
    event_time,
    normalised,
    pool_many,
    summary,
)
from services.catalog.domain.search import Filters, build_query
from services.catalog.models import Listing, ListingEvent, Patent
from shared import bizdate
from shared.auth import Principal, PrincipalDep
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    pydantic_errors,
    refuse_other_methods,
)
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
    """Pool one of your organisation's patents with its offer terms.

    The city bureau and admins may pool any organisation's patent for its owner and give
    `listed_at` in the past (pool migration; audited in the listing's history)."""
    if principal.role not in MIGRATORS:
        await supplier_org(session, principal)
    problem = date_problem(body.listed_at, principal)
    if problem:
        if problem == BACKDATE_REASON:
            raise Forbidden(
                f"listed_at: {problem}", errors=[{"field": "listed_at", "reason": problem}]
            )
        raise Unprocessable.field("listed_at", problem)
    patent = await load_patent(session, body.application_number)
    if principal.role not in MIGRATORS:
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
    [result] = await pool_many(
        session,
        principal,
        [PoolRequest(0, patent.application_number, body, body.listed_at)],
    )
    if result.status not in ("listed", "updated", "unchanged"):
        error = result.errors[0] if result.errors else {"field": "application_number",
                                                        "reason": result.status}  # fmt: skip
        raise Unprocessable.field(error["field"], error["reason"])
    assert result.listing_id is not None
    listing = await session.get(Listing, result.listing_id)
    assert listing is not None
    await session.refresh(listing)
    return await to_schema(session, listing)


@router.post(
    "/listings/bulk",
    response_model=schemas.BulkListingReport,
    response_model_exclude_none=True,  # an item without a listing has no listing_id
)
async def bulk_listing(
    body: schemas.BulkListingCreate,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
    background: BackgroundTasks,
) -> schemas.BulkListingReport:
    """Pool many patents in one request (up to 10,000), with a result per item:
    listed | updated (terms changed) | unchanged (already pooled on these terms) |
    not_eligible (with the reasons) | rejected (bad item, with the field and reason).

    A retry of the same request answers `unchanged` for what was pooled, so it is safe.
    Suppliers pool their own patents; the city bureau and admins pool any for its owner
    and may back-date `listed_at` (pool migration)."""
    if principal.role not in MIGRATORS:
        await supplier_org(session, principal)
    requests: list[PoolRequest] = []
    early: list[PoolResult] = []
    for i, raw in enumerate(body.items):
        try:
            item = schemas.BulkListingItem.model_validate(raw)
        except ValidationError as exc:
            number = raw.get("application_number") if isinstance(raw, dict) else None
            early.append(PoolResult(i, str(number) if number else None, "rejected",
                                    errors=pydantic_errors(list(exc.errors()))))  # fmt: skip
            continue
        number = normalised(item.application_number)
        terms = item.terms or body.terms
        if number is None or terms is None:
            field_name, reason = (
                ("application_number", "not a valid CN application number")
                if number is None
                else ("terms", "give offer terms for the item or for the whole request")
            )
            early.append(PoolResult(i, item.application_number, "rejected",
                                    errors=[{"field": field_name, "reason": reason}]))  # fmt: skip
            continue
        requests.append(PoolRequest(i, number, terms, item.listed_at or body.listed_at))
    results = sorted(early + await pool_many(session, principal, requests), key=lambda r: r.index)
    if sum(r.status in ("listed", "updated") for r in results) >= STATISTICS_AFTER:
        # after the response, when the request's transaction has committed
        background.add_task(refresh_statistics, request.app.state.db.sessionmaker)
    return schemas.BulkListingReport(
        summary=summary(results),
        results=[schemas.BulkListingResult(**r.to_dict()) for r in results],
    )


STATISTICS_AFTER = 500  # pooled in one request: enough to make the planner's view stale


# The bulk route is its own resource although /listings/{listing_id} matches its path.
refuse_other_methods(router, "/listings/bulk", ["GET", "PATCH", "PUT", "DELETE"])


@router.get("/listings/{listing_id}", response_model=schemas.Listing)
async def get_listing(listing_id: PathId, session: SessionDep) -> schemas.Listing:
    return await to_schema(session, await load_listing(session, listing_id))


@router.get("/listings/{listing_id}/history")
async def listing_history(listing_id: PathId, session: SessionDep) -> list[dict[str, object]]:
    await load_listing(session, listing_id)
    rows = await session.scalars(
        select(ListingEvent).where(ListingEvent.listing_id == listing_id).order_by(ListingEvent.id)
    )
    # `at`: when the change took effect; `recorded_at` / `recorded_by`: the audit of it
    # (they differ for a back-dated, migrated pool).
    return [
        {"from": e.from_status, "to": e.to_status, "reason": e.reason, "at": e.at,
         "recorded_at": e.recorded_at, "recorded_by": e.recorded_by}
        for e in rows
    ]  # fmt: skip


@router.patch("/listings/{listing_id}", response_model=schemas.Listing)
async def update_listing(
    listing_id: PathId, body: schemas.ListingUpdate, session: SessionDep, principal: PrincipalDep
) -> schemas.Listing:
    """Change offer terms, or move listed <-> negotiating, or withdraw (owners only)."""
    listing = await load_listing(session, listing_id)
    patent = await session.get(Patent, listing.patent_id)
    assert patent is not None
    if principal.role not in MIGRATORS:
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
        at = await status_time(session, listing, body.effective_from, principal)
        await set_listing_status(
            session, listing, body.status.value, body.reason or f"{move[1]} by the owner",
            at=at, recorded_by=audit_label(principal),
        )  # fmt: skip
    elif body.effective_from is not None:
        raise Unprocessable.field("effective_from", "dates a status change; send `status` too")
    return await to_schema(session, listing)


async def status_time(
    session: SessionDep, listing: Listing, day: date | None, principal: Principal
) -> datetime | None:
    """When a status change took effect: now, or a past day for the bureau (migration),
    never before the listing's last recorded change."""
    problem = date_problem(day, principal)
    if problem == BACKDATE_REASON:
        raise Forbidden(
            f"effective_from: {problem}", errors=[{"field": "effective_from", "reason": problem}]
        )
    if problem:
        raise Unprocessable.field("effective_from", problem)
    at = event_time(day)
    if at is None:
        return None
    last = await last_event_at(session, listing.id)
    if last is not None and at < last:
        raise Unprocessable.field(
            "effective_from",
            f"is before the listing's last recorded change ({bizdate.business_date(last)})",
        )
    return at


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

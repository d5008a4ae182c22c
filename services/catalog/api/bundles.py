"""Bundles: named groups of pooled patents offered together (the plan's "e-commerce model")."""

from __future__ import annotations

from fastapi import APIRouter, Query, status
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.api.patents import normalize_number, supplier_org
from services.catalog.domain.feed_payloads import bundle_payload
from services.catalog.models import Bundle, BundleItem, FeedEntry, Listing, Patent, PatentOwner
from shared import feed
from shared.auth import PrincipalDep, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable, is_unique_violation
from shared.feed import utcnow
from shared.params import MAX_ID, PathId

router = APIRouter(prefix="/v1", tags=["bundles"])


async def resolve_listings(session: SessionDep, org_id: int, numbers: list[str]) -> list[int]:
    """Listing ids for the numbers; each must be pooled and owned by the bundling organisation."""
    norm = [normalize_number(n, f"application_numbers[{i}]") for i, n in enumerate(numbers)]
    if len(set(norm)) != len(norm):
        raise Unprocessable.field("application_numbers", "the same patent is named twice")
    rows = dict(
        (
            await session.execute(
                select(Patent.application_number, Listing.id)
                .join(Listing, Listing.patent_id == Patent.id)
                .join(PatentOwner, PatentOwner.patent_id == Patent.id)
                .where(
                    Patent.application_number.in_(norm),
                    PatentOwner.org_id == org_id,
                    Listing.status.in_(schemas.POOLED),
                )
            )
        ).all()
    )
    errors = [
        {
            "field": f"application_numbers[{i}]",
            "reason": f"{n} is not a pooled patent of your organisation",
        }
        for i, n in enumerate(norm)
        if n not in rows
    ]
    if errors:
        raise Unprocessable("; ".join(e["reason"] for e in errors), errors=errors)
    return [rows[n] for n in norm]


async def to_schema(session: SessionDep, bundle: Bundle) -> schemas.Bundle:
    numbers = (
        await session.scalars(
            select(Patent.application_number)
            .join(Listing, Listing.patent_id == Patent.id)
            .join(BundleItem, BundleItem.listing_id == Listing.id)
            .where(BundleItem.bundle_id == bundle.id)
            .order_by(Patent.application_number)
        )
    ).all()
    return schemas.Bundle(
        id=bundle.id,
        org_id=bundle.org_id,
        name=bundle.name,
        description=bundle.description,
        price_cny=bundle.price_cny,
        status=bundle.status,
        application_numbers=list(numbers),
        created_at=bundle.created_at,
        updated_at=bundle.updated_at,
    )


async def publish(session: SessionDep, bundle: Bundle) -> None:
    ids = (
        await session.scalars(
            select(BundleItem.listing_id).where(BundleItem.bundle_id == bundle.id)
        )
    ).all()
    await feed.append(
        session,
        FeedEntry,
        [("bundle", str(bundle.id), "upsert", bundle_payload(bundle, list(ids)))],
    )


@router.post("/bundles", response_model=schemas.Bundle, status_code=status.HTTP_201_CREATED)
async def create_bundle(
    body: schemas.BundleCreate, session: SessionDep, principal: PrincipalDep
) -> schemas.Bundle:
    org = await supplier_org(session, principal)
    listing_ids = await resolve_listings(session, org.id, body.application_numbers)
    bundle = Bundle(
        org_id=org.id, name=body.name, description=body.description, price_cny=body.price_cny
    )
    session.add(bundle)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict(f"you already have a bundle named {body.name}") from None
    session.add_all([BundleItem(bundle_id=bundle.id, listing_id=i) for i in listing_ids])
    await session.flush()
    await publish(session, bundle)
    return await to_schema(session, bundle)


@router.get("/bundles", response_model=list[schemas.Bundle])
async def list_bundles(
    session: SessionDep,
    org_id: int | None = Query(None, ge=1, le=MAX_ID),
    include_withdrawn: bool = Query(False),
) -> list[schemas.Bundle]:
    stmt = select(Bundle).order_by(Bundle.id)
    if org_id is not None:
        stmt = stmt.where(Bundle.org_id == org_id)
    if not include_withdrawn:
        stmt = stmt.where(Bundle.status == "active")
    return [await to_schema(session, b) for b in (await session.scalars(stmt.limit(500))).all()]


@router.get("/bundles/{bundle_id}", response_model=schemas.Bundle)
async def get_bundle(bundle_id: PathId, session: SessionDep) -> schemas.Bundle:
    bundle = await session.get(Bundle, bundle_id)
    if bundle is None:
        raise NotFound(f"bundle {bundle_id} does not exist")
    return await to_schema(session, bundle)


@router.patch("/bundles/{bundle_id}", response_model=schemas.Bundle)
async def update_bundle(
    bundle_id: PathId, body: schemas.BundleUpdate, session: SessionDep, principal: PrincipalDep
) -> schemas.Bundle:
    bundle = await session.get(Bundle, bundle_id)
    if bundle is None:
        raise NotFound(f"bundle {bundle_id} does not exist")
    if bundle.org_id != principal.org_id and principal.role is not Role.ADMIN:
        raise Forbidden("this bundle belongs to another organisation")
    changes = body.model_dump(exclude_unset=True)
    numbers = changes.pop("application_numbers", None)
    for k, v in changes.items():
        setattr(bundle, k, v)
    if numbers is not None:
        ids = await resolve_listings(session, bundle.org_id, numbers)
        await session.execute(delete(BundleItem).where(BundleItem.bundle_id == bundle.id))
        session.add_all([BundleItem(bundle_id=bundle.id, listing_id=i) for i in ids])
    bundle.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict("you already have a bundle with that name") from None
    await publish(session, bundle)
    return await to_schema(session, bundle)

"""Pool statistics for the indicators service and the bureau."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from services.catalog.api.deps import SessionDep
from services.catalog.domain.industry import industry_catalogue
from services.catalog.models import Listing, ListingEvent, Organisation, Patent, PatentOwner
from services.catalog.schemas import POOLED
from shared import bizdate
from shared.regions import TIANJIN_DISTRICTS

router = APIRouter(prefix="/v1", tags=["stats"])


@router.get("/stats/pool", summary="Pooled patents by owner, owner kind, district, industry, month")
async def pool_stats(session: SessionDep) -> dict[str, Any]:
    """Counts of patents currently pooled (listed or negotiating) and ever pooled.

    A co-owned patent counts once in the totals and once under each owner; a patent
    tagged with two industries counts under both.
    """
    pooled = select(Listing.patent_id).where(Listing.status.in_(POOLED)).subquery()
    total = await session.scalar(select(func.count()).select_from(pooled))
    ever = await session.scalar(select(func.count(Listing.id)))
    by_status = dict(
        (await session.execute(select(Listing.status, func.count()).group_by(Listing.status))).all()
    )

    owner_rows = (
        await session.execute(
            select(
                Organisation.id,
                Organisation.name,
                Organisation.kind,
                Organisation.district,
                func.count(PatentOwner.patent_id),
            )
            .join(PatentOwner, PatentOwner.org_id == Organisation.id)
            .join(pooled, pooled.c.patent_id == PatentOwner.patent_id)
            .group_by(Organisation.id, Organisation.name, Organisation.kind, Organisation.district)
            .order_by(func.count(PatentOwner.patent_id).desc())
        )
    ).all()
    # Distinct patents per owner kind / district (a patent co-owned by two universities is one).
    by_kind = dict(
        (
            await session.execute(
                select(Organisation.kind, func.count(func.distinct(PatentOwner.patent_id)))
                .join(PatentOwner, PatentOwner.org_id == Organisation.id)
                .join(pooled, pooled.c.patent_id == PatentOwner.patent_id)
                .group_by(Organisation.kind)
            )
        ).all()
    )
    by_district = {
        (d or "outside"): c
        for d, c in (
            await session.execute(
                select(Organisation.district, func.count(func.distinct(PatentOwner.patent_id)))
                .join(PatentOwner, PatentOwner.org_id == Organisation.id)
                .join(pooled, pooled.c.patent_id == PatentOwner.patent_id)
                .group_by(Organisation.district)
            )
        ).all()
    }
    industries: dict[str, int] = {}
    for (tags,) in (
        await session.execute(
            select(Patent.industries).join(pooled, pooled.c.patent_id == Patent.id)
        )
    ).all():
        for t in tags or ():
            industries[t] = industries.get(t, 0) + 1
    names = {b["branch_no"]: b["branch_name"] for b in industry_catalogue()}
    # Month a patent first entered the pool.
    first = (
        select(ListingEvent.listing_id, func.min(ListingEvent.at).label("at"))
        .where(ListingEvent.to_status == "listed")
        .group_by(ListingEvent.listing_id)
        .subquery()
    )
    months: dict[str, int] = {}
    for (at,) in (await session.execute(select(first.c.at))).all():
        key = bizdate.business_date(at).strftime("%Y-%m")  # Tianjin months, not UTC
        months[key] = months.get(key, 0) + 1
    return {
        "pooled": total or 0,
        "ever_pooled": ever or 0,
        "by_status": by_status,
        "by_owner": [
            {"org_id": i, "name": n, "kind": k, "district": d, "pooled": c}
            for i, n, k, d, c in owner_rows
        ],
        "by_owner_kind": by_kind,
        "by_district": [
            {"district": d, "name": TIANJIN_DISTRICTS.get(d, "天津市外"), "pooled": c}
            for d, c in sorted(by_district.items())
        ],
        "by_industry": [
            {"branch_no": b, "branch_name": names.get(b, b), "pooled": c}
            for b, c in sorted(industries.items())
        ],
        "first_pooled_by_month": dict(sorted(months.items())),
    }


@router.get("/industries", summary="Strategic emerging industry branches (2021 concordance)")
async def industries() -> list[dict[str, str]]:
    return industry_catalogue()

"""Matchmaking activity (from the matching feed) and the pool/ledger consistency check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import and_, exists, or_, select

from services.indicators.api.deps import SessionDep
from services.indicators.domain.common import local_year
from services.indicators.models import Deal, DealPatent, Lead, Listing, Need

router = APIRouter(prefix="/v1", tags=["activity"])
POOLED = ("listed", "negotiating")


def _lead_converted() -> Any:
    """A lead became a deal: a non-cancelled deal names it, or gives its patent to its SME."""
    by_patent = exists().where(
        DealPatent.application_number == Lead.application_number,
        DealPatent.recipient_org_id == Lead.sme_org_id,
        DealPatent.deal_id == Deal.id,
        Deal.status != "cancelled",
    )
    by_id = exists().where(Deal.lead_id == Lead.id, Deal.status != "cancelled")
    return or_(by_patent, by_id)


@router.get("/activity")
async def activity(session: SessionDep) -> dict[str, Any]:
    """Needs posted, leads made, leads accepted and leads that became deals, by year."""
    years: dict[int, dict[str, Any]] = {}

    def bucket(y: int) -> dict[str, Any]:
        return years.setdefault(
            y, {"year": y, "needs_posted": 0, "leads": 0, "leads_accepted": 0,
                "leads_converted": 0}
        )  # fmt: skip

    for (at,) in (await session.execute(select(Need.created_at))).all():
        bucket(local_year(at))["needs_posted"] += 1
    rows = (
        await session.execute(
            select(Lead.created_at, Lead.status, _lead_converted().label("converted"))
        )
    ).all()
    for at, status, converted in rows:
        b = bucket(local_year(at))
        b["leads"] += 1
        b["leads_accepted"] += 1 if status == "accepted" else 0
        b["leads_converted"] += 1 if converted else 0
    by_year = [years[y] for y in sorted(years)]
    totals = {
        k: sum(b[k] for b in by_year)
        for k in ("needs_posted", "leads", "leads_accepted", "leads_converted")
    }
    return {"by_year": by_year, "totals": totals}


@router.get("/consistency")
async def consistency(session: SessionDep) -> dict[str, Any]:
    """Pool vs ledger: patents of live deals still pooled, converted listings without a
    live deal. Both lists are empty once the catalog has caught up with the deal feed.
    Also lists the deals recorded on patents not in force (bureau override), which the
    ledger keeps but no indicator counts."""
    live_deal = and_(DealPatent.deal_id == Deal.id, Deal.status != "cancelled")
    still_pooled = (
        await session.execute(
            select(Listing.application_number, Listing.status)
            .where(
                Listing.status.in_(POOLED),
                exists().where(DealPatent.patent_id == Listing.patent_id, live_deal),
            )
            .limit(100)
        )
    ).all()
    orphan_converted = (
        await session.execute(
            select(Listing.application_number, Listing.status)
            .where(
                Listing.status == "converted",
                ~exists().where(DealPatent.patent_id == Listing.patent_id, live_deal),
            )
            .limit(100)
        )
    ).all()
    excluded = (
        await session.execute(
            select(
                Deal.id, Deal.effective_date, Deal.contract_date, Deal.not_in_force_reason,
                Deal.override_reason, Deal.status,
            )
            .where(Deal.excluded, Deal.status != "cancelled")
            .order_by(Deal.id)
            .limit(1000)
        )
    ).all()  # fmt: skip
    return {
        "consistent": not still_pooled and not orphan_converted,
        "pooled_but_in_live_deal": [a for a, _ in still_pooled],
        "converted_without_live_deal": [a for a, _ in orphan_converted],
        # recorded by a bureau with override_not_in_force: in the ledger, in no count
        "deals_on_patents_not_in_force": [
            {
                "deal_id": i,
                "status": st,
                "effective_date": e.isoformat() if e else None,
                "contract_date": c.isoformat(),
                "reason": r,
                "override_reason": o,
            }
            for i, e, c, r, o, st in excluded
        ],
    }

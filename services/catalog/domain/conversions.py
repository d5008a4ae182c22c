"""Following the indicators feed: a registered or effective deal converts the pooled
patents it names; when every deal naming a patent is cancelled it returns to the pool."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.ingest import ineligibility, last_event_at, set_listing_status
from services.catalog.models import ConvertedPatent, Listing, Patent
from services.catalog.schemas import POOLED
from shared import bizdate

ACTIVE_DEAL = ("registered", "effective")


async def apply_deal_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if entry["entity"] != "deal":
            continue
        await apply_deal(session, entry["payload"])


async def _deal_time(
    session: AsyncSession, listing: Listing, deal: dict[str, Any]
) -> datetime | None:
    """A patent leaves the pool on its deal's date (effective, else contract date), so a
    migrated ledger counts the pool as it really was; now, when that date is today or
    before the listing's last recorded change."""
    raw = deal.get("effective_date") or deal.get("contract_date")
    try:
        day = date.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None
    if day is None or day >= bizdate.today():
        return None
    at = bizdate.day_start_utc(day)
    last = await last_event_at(session, listing.id)
    return None if last is not None and at < last else at


async def apply_deal(session: AsyncSession, deal: dict[str, Any]) -> None:
    deal_id = str(deal["id"])
    numbers = list(deal.get("application_numbers") or [])
    named: set[int] = set()
    if numbers:
        found = await session.scalars(
            select(Patent.id).where(Patent.application_number.in_(numbers))
        )
        named = set(found)
    # A deal may have been edited to drop a patent: forget it for the patents it no longer names.
    previously = set(
        (
            await session.scalars(
                select(ConvertedPatent.patent_id).where(ConvertedPatent.deal_id == deal_id)
            )
        ).all()
    )
    dropped = previously - named if deal.get("status") in ACTIVE_DEAL else previously
    if dropped:
        await session.execute(
            delete(ConvertedPatent).where(
                ConvertedPatent.deal_id == deal_id, ConvertedPatent.patent_id.in_(dropped)
            )
        )
    if deal.get("status") in ACTIVE_DEAL:
        for pid in sorted(named - previously):
            session.add(ConvertedPatent(patent_id=pid, deal_id=deal_id))
        await session.flush()
    touched = named | previously
    for pid in sorted(touched):  # listing row locks in patent-id order, as every writer
        # The listing and whether a live deal still names its patent, in one statement.
        active_deal = (
            select(ConvertedPatent.deal_id)
            .where(ConvertedPatent.patent_id == pid)
            .limit(1)
            .scalar_subquery()
        )
        row = (
            await session.execute(select(Listing, active_deal).where(Listing.patent_id == pid))
        ).first()
        if row is None:
            continue
        listing, active = row
        if active and listing.status in POOLED:
            await set_listing_status(session, listing, "converted", f"deal {active}",
                                     at=await _deal_time(session, listing, deal))  # fmt: skip
        elif not active and listing.status == "converted":
            patent = await session.get(Patent, pid)
            assert patent is not None
            reasons = await ineligibility(session, patent)
            if reasons:
                await set_listing_status(session, listing, "lapsed", "; ".join(reasons))
            else:
                await set_listing_status(
                    session, listing, "listed", f"deal {deal_id} cancelled; back in the pool"
                )

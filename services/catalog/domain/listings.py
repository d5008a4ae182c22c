"""Putting a patent into the pool and keeping its offer terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.ingest import publish_listing
from services.catalog.models import Listing, ListingEvent
from services.catalog.schemas import OfferTerms
from shared.feed import utcnow


def apply_terms(listing: Listing, terms: OfferTerms) -> None:
    modes = [m.value for m in terms.modes]
    listing.modes = modes
    listing.mode_text = " " + " ".join(modes) + " "  # for the `mode` filter
    listing.price_cny = terms.price_cny
    listing.negotiable = terms.negotiable
    listing.zero_price = terms.zero_price
    listing.use_first_pay_later = terms.use_first_pay_later
    listing.deferred_licence_fee = terms.deferred_licence_fee
    listing.note = terms.note


def terms_of(listing: Listing) -> tuple[Any, ...]:
    return (
        listing.modes,
        listing.price_cny,
        listing.negotiable,
        listing.zero_price,
        listing.use_first_pay_later,
        listing.deferred_licence_fee,
        listing.note,
    )


async def open_listing(
    session: AsyncSession,
    *,
    patent_id: int,
    org_id: int,
    terms: OfferTerms,
    at: datetime | None = None,
    reason: str = "",
    recorded_by: str | None = None,
) -> Listing:
    """A new listing (status listed), its first history event and its feed entry.

    `at` back-dates the entry into the pool (the demo's history); callers have checked
    eligibility and ownership.
    """
    now = utcnow()
    at = at or now
    listing = Listing(
        patent_id=patent_id,
        status="listed",
        listed_by_org_id=org_id,
        first_listed_at=at,
        updated_at=now,
        status_since=at,
    )
    apply_terms(listing, terms)
    session.add(listing)
    await session.flush()
    session.add(
        ListingEvent(
            listing_id=listing.id,
            from_status=None,
            to_status="listed",
            reason=reason,
            at=at,
            recorded_at=now,
            recorded_by=recorded_by,
        )
    )
    await publish_listing(session, listing)
    return listing

"""Pooling many patents in one request, with their real dates (pool migration).

One call for thousands: patents, owners, deals and listings are read per chunk, new
listings, their first events and their feed entries are written in bulk. The same
request again answers `unchanged` for every record already pooled on those terms, so a
retry is safe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.feed_payloads import listing_payload_from
from services.catalog.domain.ingest import (
    _chunks,
    _in,
    last_event_at,
    publish_listing,
    set_listing_status,
)
from services.catalog.domain.lifecycle import pool_ineligibility
from services.catalog.domain.listings import apply_terms, terms_of
from services.catalog.models import (
    ConvertedPatent,
    FeedEntry,
    Listing,
    ListingEvent,
    Organisation,
    Patent,
    PatentOwner,
)
from services.catalog.schemas import POOLED, OfferTerms
from shared import bizdate, feed
from shared.appno import InvalidNumber, normalize_application_number
from shared.auth import Principal, Role
from shared.db import insert_rows, insert_with_ids
from shared.feed import utcnow
from shared.regions import SUPPLIER_KINDS

MIGRATORS = (Role.CITY_BUREAU, Role.ADMIN)
BACKDATE_REASON = "only the city bureau or an admin may back-date pool events"
STATUSES = ("listed", "updated", "unchanged", "not_eligible", "rejected")


def audit_label(principal: Principal) -> str:
    who = f"{principal.role.value} org {principal.org_id} key {principal.key_id}"
    return who + (f" person {principal.person_id}" if principal.person_id else "")


def date_problem(day: date | None, principal: Principal) -> str | None:
    """Why `day` cannot date a pool event for this caller; None when it can."""
    if day is None:
        return None
    today = bizdate.today()
    if day > today:
        return f"{day.isoformat()} is in the future (today is {today.isoformat()})"
    if day < today and principal.role not in MIGRATORS:
        return BACKDATE_REASON
    return None


def event_time(day: date | None) -> datetime | None:
    """A pool event on `day` happened at the start of that Tianjin day; None means now.
    Today's date means now too, so a same-day change keeps its order after earlier ones."""
    if day is None or day == bizdate.today():
        return None
    return bizdate.day_start_utc(day)


@dataclass
class PoolRequest:
    index: int
    application_number: str
    terms: OfferTerms
    listed_at: date | None = None


@dataclass
class PoolResult:
    index: int
    application_number: str | None
    status: str
    listing_id: int | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "application_number": self.application_number,
            "status": self.status,
        }
        if self.listing_id is not None:
            d["listing_id"] = self.listing_id
        if self.errors:
            d["errors"] = self.errors
        return d


def summary(results: list[PoolResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {k: counts.get(k, 0) for k in STATUSES} | {"total": len(results)}


def normalised(raw: str) -> str | None:
    try:
        return normalize_application_number(raw)
    except InvalidNumber:
        return None


async def pool_many(
    session: AsyncSession, principal: Principal, requests: list[PoolRequest]
) -> list[PoolResult]:
    """Pool each requested patent for its owner; a result per request.

    Suppliers pool their own organisation's patents; the city bureau and admins pool any
    (listed for the owning university, institute or SOE) and may back-date."""
    results: dict[int, PoolResult] = {}
    seen: dict[str, int] = {}
    todo: list[PoolRequest] = []
    for req in requests:
        problem = date_problem(req.listed_at, principal)
        if problem:
            results[req.index] = PoolResult(req.index, req.application_number, "rejected",
                                            errors=[{"field": "listed_at", "reason": problem}])  # fmt: skip
        elif req.application_number in seen:
            results[req.index] = PoolResult(
                req.index, req.application_number, "rejected",
                errors=[{"field": "application_number",
                         "reason": f"repeated in this request (item {seen[req.application_number]})"}],
            )  # fmt: skip
        else:
            seen[req.application_number] = req.index
            todo.append(req)
    recorded_by = audit_label(principal)
    for chunk in _chunks(todo, 5000):
        for r in await _pool_chunk(session, principal, chunk, recorded_by):
            results[r.index] = r
    return [results[i] for i in sorted(results)]


async def _pool_chunk(
    session: AsyncSession, principal: Principal, reqs: list[PoolRequest], recorded_by: str
) -> list[PoolResult]:
    numbers = [r.application_number for r in reqs]
    patents = {
        p.application_number: p
        for p in (
            await session.execute(
                select(
                    Patent.id, Patent.application_number, Patent.legal_status, Patent.expiry_date
                ).where(_in(Patent.application_number, numbers, session))
            )  # fmt: skip
        ).all()
    }
    ids = [p.id for p in patents.values()]
    owners: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
    converted: dict[int, list[str]] = {i: [] for i in ids}
    listings: dict[int, Listing] = {}
    if ids:
        for pid, oid, kind in (
            await session.execute(
                select(PatentOwner.patent_id, Organisation.id, Organisation.kind)
                .join(Organisation, Organisation.id == PatentOwner.org_id)
                .where(_in(PatentOwner.patent_id, ids, session))
                .order_by(PatentOwner.patent_id, PatentOwner.created_at, Organisation.id)
            )
        ).all():
            owners[pid].append((oid, kind))
        for pid, deal in (
            await session.execute(
                select(ConvertedPatent.patent_id, ConvertedPatent.deal_id).where(
                    _in(ConvertedPatent.patent_id, ids, session)
                )
            )
        ).all():
            converted[pid].append(deal)
        for row in (
            await session.scalars(select(Listing).where(_in(Listing.patent_id, ids, session)))
        ).all():
            listings[row.patent_id] = row

    suppliers = {k.value for k in SUPPLIER_KINDS}
    out: list[PoolResult] = []
    fresh: list[tuple[PoolRequest, int, int]] = []  # request, patent id, listing org

    # Listing row locks in patent-id order, as every listing writer takes them, so two
    # requests pooling the same patents in different orders cannot deadlock.
    def patent_id(req: PoolRequest) -> int:
        p = patents.get(req.application_number)
        return p.id if p is not None else 0

    for req in sorted(reqs, key=patent_id):
        num = req.application_number
        p = patents.get(num)
        if p is None:
            out.append(_rejected(req, "application_number", f"patent {num} is not in the catalog"))
            continue
        org_ids = [oid for oid, _ in owners[p.id]]
        if principal.role not in MIGRATORS and principal.org_id not in org_ids:
            out.append(_rejected(req, "application_number",
                                 f"patent {num} is not owned by your organisation"))  # fmt: skip
            continue
        listed_by = (
            principal.org_id
            if principal.org_id in org_ids
            else next((oid for oid, kind in owners[p.id] if kind in suppliers), None)
        )
        reasons = pool_ineligibility(
            legal_status=p.legal_status,
            expiry=p.expiry_date,
            owner_kinds=[kind for _, kind in owners[p.id]],
            converted_by=converted[p.id],
        )
        listing = listings.get(p.id)
        if reasons or listed_by is None:
            out.append(
                PoolResult(
                    req.index,
                    num,
                    "not_eligible",
                    listing.id if listing else None,
                    [{"field": "application_number", "reason": r} for r in reasons],
                )  # fmt: skip
            )
            continue
        if listing is None:
            fresh.append((req, p.id, listed_by))
        elif listing.status in POOLED:
            before = terms_of(listing)
            apply_terms(listing, req.terms)
            if terms_of(listing) == before:
                out.append(PoolResult(req.index, num, "unchanged", listing.id))
                continue
            listing.version += 1
            listing.updated_at = utcnow()
            await session.flush()
            await publish_listing(session, listing)
            out.append(PoolResult(req.index, num, "updated", listing.id))
        else:  # withdrawn or lapsed: re-listed, its history kept
            if req.listed_at is not None and not await _after_last_event(session, listing, req):
                out.append(_rejected(req, "listed_at",
                                     "is before the listing's last recorded change"))  # fmt: skip
                continue
            apply_terms(listing, req.terms)
            listing.listed_by_org_id = listed_by
            await set_listing_status(session, listing, "listed", "re-listed",
                                     at=event_time(req.listed_at), recorded_by=recorded_by)  # fmt: skip
            out.append(PoolResult(req.index, num, "listed", listing.id))
    if fresh:
        out += await _insert_listings(session, fresh, owners, recorded_by)
    return out


def _rejected(req: PoolRequest, field_name: str, reason: str) -> PoolResult:
    return PoolResult(req.index, req.application_number, "rejected",
                      errors=[{"field": field_name, "reason": reason}])  # fmt: skip


async def _after_last_event(session: AsyncSession, listing: Listing, req: PoolRequest) -> bool:
    last = await last_event_at(session, listing.id)
    at = event_time(req.listed_at)
    return last is None or at is None or at >= last


LISTING = cast(Table, Listing.__table__)


async def _insert_listings(
    session: AsyncSession,
    fresh: list[tuple[PoolRequest, int, int]],
    owners: dict[int, list[tuple[int, str]]],
    recorded_by: str,
) -> list[PoolResult]:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for req, pid, org_id in fresh:
        at = event_time(req.listed_at) or now
        scratch = Listing()
        apply_terms(scratch, req.terms)
        rows.append({
            "patent_id": pid, "status": "listed", "modes": scratch.modes,
            "mode_text": scratch.mode_text, "price_cny": scratch.price_cny,
            "negotiable": scratch.negotiable, "zero_price": scratch.zero_price,
            "use_first_pay_later": scratch.use_first_pay_later,
            "deferred_licence_fee": scratch.deferred_licence_fee, "note": scratch.note,
            "status_reason": "", "listed_by_org_id": org_id, "first_listed_at": at,
            "updated_at": now, "status_since": at, "version": 1,
        })  # fmt: skip
    ids = await insert_with_ids(session, LISTING, rows, "patent_id")
    await insert_rows(
        session,
        ListingEvent.__table__,
        [
            {"listing_id": ids[r["patent_id"]], "from_status": None, "to_status": "listed",
             "reason": "", "at": r["first_listed_at"], "recorded_at": now,
             "recorded_by": recorded_by}
            for r in rows
        ],
    )  # fmt: skip
    await feed.append(
        session,
        FeedEntry,
        [
            ("listing", str(ids[r["patent_id"]]), "upsert",
             listing_payload_from({**r, "id": ids[r["patent_id"]]}, req.application_number,
                                  [oid for oid, _ in owners[r["patent_id"]]]))
            for r, (req, _, _) in zip(rows, fresh, strict=True)
        ],
    )  # fmt: skip
    return [
        PoolResult(req.index, req.application_number, "listed", ids[pid]) for req, pid, _ in fresh
    ]

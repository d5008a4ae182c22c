"""The conversion ledger: deals, their payments, status changes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request, status
from pydantic import ValidationError
from sqlalchemy import select

from services.indicators import schemas
from services.indicators.api.deps import LookupDep, SessionDep
from services.indicators.domain import ledger
from services.indicators.models import Deal, DealPatent, DealSupplier
from shared.auth import PrincipalDep
from shared.errors import ProblemError, Unprocessable, pydantic_errors, request_language
from shared.i18n import translate_errors
from shared.params import MAX_ID, MAX_YEAR, MIN_YEAR, IdQuery, PathId

router = APIRouter(prefix="/v1", tags=["ledger"])


@router.post("/deals", response_model=schemas.DealOut, status_code=status.HTTP_201_CREATED)
async def create_deal(
    body: schemas.DealCreate, session: SessionDep, principal: PrincipalDep, lookup: LookupDep
) -> schemas.DealOut:
    """Record a deal. city_bureau/admin: any; district_bureau: a party in its district;
    supplier: its own deals. Parties are frozen as they were at the effective date."""
    await lookup.prefetch(
        [*body.supplier_org_ids, body.recipient_org_id], body.application_numbers
    )  # before the transaction: no HTTP call inside it
    written = await ledger.record_deal(session, body, principal, lookup, publish_now=False)
    out = ledger.written_out(written)
    parts = (out.application_numbers, [s.org_id for s in out.suppliers])
    await ledger.publish(session, written.deal, parts)  # last: holds the feed's lock to COMMIT
    return out


@router.post("/deals/batch")
async def create_deals_batch(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    lookup: LookupDep,
    items: list[dict[str, Any]] = Body(..., max_length=2000),
    atomic: bool = Query(False, description="all or nothing: any rejection records none"),
) -> dict[str, Any]:
    """Load many deals (e.g. a district's spreadsheet) in one request. Each item is checked
    exactly like `POST /v1/deals`; the answer lists what was recorded and, per rejected
    item, its index and the same errors a single request would get."""
    created: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    bodies: list[schemas.DealCreate | None] = []
    for i, raw in enumerate(items):
        try:
            bodies.append(schemas.DealCreate.model_validate(raw))
        except ValidationError as exc:
            errs = pydantic_errors(list(exc.errors()))
            rejected.append({"index": i, "status": 422, "errors": errs})
            bodies.append(None)
    valid = [b for b in bodies if b is not None]
    await lookup.prefetch(  # before the transaction: no HTTP call inside it
        [o for b in valid for o in (*b.supplier_org_ids, b.recipient_org_id)],
        [a for b in valid for a in b.application_numbers],
    )
    for i, body in enumerate(bodies):
        if body is None:
            continue
        try:
            async with session.begin_nested():
                deal = await ledger.create_deal(session, body, principal, lookup)
            created.append({"index": i, "id": deal.id, "qualifies": deal.qualifies})
        except ProblemError as exc:
            errs = exc.errors or [{"field": "body", "reason": exc.detail}]
            rejected.append({"index": i, "status": exc.status, "errors": errs})
    rejected.sort(key=lambda r: r["index"])
    if atomic and rejected:
        await session.rollback()
        raise Unprocessable(
            f"{len(rejected)} of {len(items)} deals rejected; nothing recorded",
            errors=[{"field": f"[{r['index']}]." + e["field"], "reason": e["reason"]}
                    for r in rejected for e in r["errors"]],
        )  # fmt: skip
    lang = request_language(request)  # reasons in the reader's language, like a problem's
    return {
        "created": created,
        "rejected": [{**r, "errors": translate_errors(r["errors"], lang)} for r in rejected],
    }


@router.get("/deals", response_model=schemas.DealPage)
async def list_deals(
    session: SessionDep,
    year: int | None = Query(
        None, ge=MIN_YEAR, le=MAX_YEAR, description="year of the effective date"
    ),
    district: str | None = Query(None, description="recipient's district (frozen)"),
    status_: str | None = Query(None, alias="status"),
    kind: str | None = None,
    supplier_org_id: IdQuery = None,
    recipient_org_id: IdQuery = None,
    application_number: str | None = None,
    qualifies: bool | None = Query(None, description="parties meet the 1000-target rule"),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: the last id seen"),
    limit: int = Query(100, ge=1, le=1000),
) -> schemas.DealPage:
    stmt = select(Deal).where(Deal.id > after).order_by(Deal.id)
    if year:
        stmt = stmt.where(Deal.year == year)
    if district:
        stmt = stmt.where(Deal.recipient_district == district)
    if status_:
        stmt = stmt.where(Deal.status == status_)
    if kind:
        stmt = stmt.where(Deal.kind == kind)
    if recipient_org_id:
        stmt = stmt.where(Deal.recipient_org_id == recipient_org_id)
    if qualifies is not None:
        stmt = stmt.where(Deal.qualifies.is_(qualifies))
    if supplier_org_id:
        stmt = stmt.where(
            Deal.id.in_(select(DealSupplier.deal_id).where(DealSupplier.org_id == supplier_org_id))
        )
    if application_number:
        from services.indicators.domain.common import normalise_appno

        appno = normalise_appno(application_number) or application_number
        stmt = stmt.where(
            Deal.id.in_(select(DealPatent.deal_id).where(DealPatent.application_number == appno))
        )
    rows = list((await session.scalars(stmt.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.DealPage(
        items=[await ledger.deal_out(session, d) for d in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )


# `:int` so that GET /deals/batch is "405, POST only" rather than "batch is not an id".
@router.get("/deals/{deal_id:int}", response_model=schemas.DealOut)
async def get_deal(deal_id: PathId, session: SessionDep) -> schemas.DealOut:
    return await ledger.deal_out(session, await ledger.load_deal(session, deal_id))


@router.post("/deals/{deal_id}/payments", response_model=schemas.DealOut)
async def add_payments(
    deal_id: PathId, body: schemas.PaymentsAdd, session: SessionDep, principal: PrincipalDep
) -> schemas.DealOut:
    """Record payments actually received (实际到账); their total never exceeds the contract."""
    deal = await ledger.load_deal(session, deal_id, lock=True)
    await ledger.check_deal_writer(session, deal, principal)
    deal = await ledger.add_payments(session, deal, body.payments)
    return await ledger.deal_out(session, deal)


@router.post("/deals/{deal_id}/effective", response_model=schemas.DealOut)
async def make_effective(
    deal_id: PathId, body: schemas.DealActivate, session: SessionDep, principal: PrincipalDep
) -> schemas.DealOut:
    """A registered deal takes effect; its parties are re-frozen at the effective date."""
    deal = await ledger.load_deal(session, deal_id, lock=True)
    await ledger.check_deal_writer(session, deal, principal)
    deal = await ledger.activate(session, deal, body.effective_date)
    return await ledger.deal_out(session, deal)


@router.post("/deals/{deal_id}/cancel", response_model=schemas.DealOut)
async def cancel_deal(
    deal_id: PathId, body: schemas.DealCancel, session: SessionDep, principal: PrincipalDep
) -> schemas.DealOut:
    """Cancel (注销) with a reason: the deal stops counting everywhere, live figures drop,
    frozen snapshots keep their values, and the catalog puts the patents back in the pool."""
    deal = await ledger.load_deal(session, deal_id, lock=True)
    await ledger.check_deal_writer(session, deal, principal)
    deal = await ledger.cancel(session, deal, body.reason)
    return await ledger.deal_out(session, deal)

"""Patents: single upsert, read, search and legal-status changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.domain.ingest import (
    RecordError,
    ineligibility,
    owners_of,
    prepare,
    publish_patents,
    reevaluate_listings,
    upsert_batch,
)
from services.catalog.domain.search import (
    Filters,
    encode_cursor,
    page_item,
    patent_item,
    search_rows,
    sort_value,
)
from services.catalog.models import Listing, Organisation, Patent
from shared.appno import InvalidNumber, PatentType, normalize_application_number
from shared.auth import Principal, PrincipalDep, Role, require_role
from shared.errors import Forbidden, NotFound, Unprocessable
from shared.feed import utcnow
from shared.params import MAX_ID
from shared.regions import OrgKind

router = APIRouter(prefix="/v1", tags=["patents"])


def normalize_number(raw: str, field: str = "application_number") -> str:
    try:
        return normalize_application_number(raw)
    except InvalidNumber as exc:
        raise Unprocessable.field(field, str(exc)) from None


async def load_patent(session: SessionDep, number: str) -> Patent:
    norm = normalize_number(number)
    patent = await session.scalar(select(Patent).where(Patent.application_number == norm))
    if patent is None:
        raise not_in_catalog(norm)
    return patent


def not_in_catalog(norm: str) -> NotFound:
    # `norm`: the name the message's translation is keyed by (shared/locale)
    return NotFound(f"patent {norm} is not in the catalog")


async def require_owner(session: SessionDep, patent: Patent, principal: Principal) -> None:
    """Suppliers may only act on their own organisation's patents."""
    if principal.role is Role.ADMIN:
        return
    owners = (await owners_of(session, [patent.id]))[patent.id]
    if principal.org_id not in owners:
        raise Forbidden(f"patent {patent.application_number} is not owned by your organisation")


async def supplier_org(session: SessionDep, principal: Principal) -> Organisation:
    require_role(principal, Role.SUPPLIER)
    org = await session.get(Organisation, principal.org_id)
    assert org is not None
    return org


async def to_schema(
    session: SessionDep, patent: Patent, *, with_claims: bool = True
) -> schemas.Patent:
    owners = (await owners_of(session, [patent.id]))[patent.id]
    listing = await session.scalar(select(Listing).where(Listing.patent_id == patent.id))
    out = schemas.Patent.model_validate(patent)
    out.owner_org_ids = sorted(owners)
    if not with_claims:
        out.claims = None
    if listing:
        out.listing = schemas.Listing.model_validate(listing)
    return out


@router.post(
    "/patents",
    response_model=schemas.Patent,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "updated or unchanged"}},
)
async def upsert_patent(
    body: schemas.PatentIn, session: SessionDep, principal: PrincipalDep, response: Response
) -> schemas.Patent:
    """Add or update one of your organisation's patents (idempotent by application number)."""
    org = await supplier_org(session, principal)
    try:
        prepared = prepare(body)
    except RecordError as exc:
        raise Unprocessable.field(exc.field, exc.reason) from None
    [outcome] = await upsert_batch(session, org, [(0, prepared)])
    if outcome.status == "rejected":
        err = outcome.errors[0]
        if err["field"] == "application_number":
            raise Forbidden(err["reason"])
        raise Unprocessable(f"{err['field']}: {err['reason']}", errors=outcome.errors)
    response.status_code = 201 if outcome.status == "accepted" else 200
    response.headers["X-Upload-Outcome"] = outcome.status
    patent = await session.get(Patent, outcome.patent_id)
    assert patent is not None
    await session.refresh(patent)
    return await to_schema(session, patent)


@router.get("/patents/{number}", response_model=schemas.Patent)
async def get_patent(number: str, session: SessionDep) -> schemas.Patent:
    """A patent by application number (`CN202110123456.7`, `202110123456.7` or `2021101234567`)."""
    norm = normalize_number(number)
    item = await patent_item(session, norm)
    if item is None:
        raise not_in_catalog(norm)
    return schemas.Patent.model_validate(item)


@router.get("/patents/{number}/eligibility", response_model=schemas.Eligibility)
async def eligibility(number: str, session: SessionDep) -> schemas.Eligibility:
    """Can this patent be pooled, and if not, why not."""
    patent = await load_patent(session, number)
    reasons = await ineligibility(session, patent)
    return schemas.Eligibility(
        application_number=patent.application_number, eligible=not reasons, reasons=reasons
    )


@router.patch("/patents/{number}/legal-status", response_model=schemas.Patent)
async def change_legal_status(
    number: str, body: schemas.LegalStatusUpdate, session: SessionDep, principal: PrincipalDep
) -> schemas.Patent:
    """Record a legal-status change (owner, or the city bureau from CNIPA data); listings follow."""
    patent = await load_patent(session, number)
    if principal.role not in (Role.CITY_BUREAU, Role.ADMIN):
        require_role(principal, Role.SUPPLIER)
        await require_owner(session, patent, principal)
    new_status = body.legal_status.value
    grant_date = body.grant_date or patent.grant_date
    if new_status == "granted" and not grant_date:
        raise Unprocessable.field("grant_date", "a granted patent needs its grant date")
    if patent.legal_status == new_status and grant_date == patent.grant_date:
        return await to_schema(session, patent)
    current = schemas.PatentIn.model_validate(
        {
            **{k: getattr(patent, k) for k in schemas.PatentIn.model_fields},
            "legal_status": new_status,
            "grant_date": grant_date,
        }
    )
    values = prepare(current).values
    patent.legal_status = new_status
    patent.grant_date = grant_date
    patent.content_hash = values["content_hash"]
    patent.version += 1
    patent.updated_at = utcnow()
    await session.flush()
    await publish_patents(session, [patent.id])
    await reevaluate_listings(session, [patent.id])
    return await to_schema(session, patent)


async def filters(
    q: Annotated[str | None, Query(max_length=200, description="keywords (all must occur)")] = None,
    ipc: Annotated[
        str | None, Query(max_length=20, description="IPC prefix, e.g. H01M or H01M10")
    ] = None,
    industry: Annotated[
        str | None, Query(max_length=10, description="SEI industry '1' or branch '1.2'")
    ] = None,
    owner: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="owner organisation id")
    ] = None,
    owner_kind: Annotated[str | None, Query()] = None,
    district: Annotated[str | None, Query()] = None,
    mode: Annotated[schemas.Mode | None, Query()] = None,
    zero_price: Annotated[bool | None, Query()] = None,
    use_first_pay_later: Annotated[
        bool | None, Query(description="offers with 先使用后付费 (use first, pay later)")
    ] = None,
    patent_type: Annotated[str | None, Query()] = None,
    legal_status: Annotated[str | None, Query()] = None,
    pool_status: Annotated[
        str | None, Query(description="listing status, 'pooled' or 'unlisted'")
    ] = None,
) -> Filters:
    """Every filter value is checked: an unknown one is a 422 naming the parameter and
    the values it takes, never an empty page."""
    return Filters(
        q=q,
        ipc=ipc,
        industry=industry,
        owner=owner,
        owner_kind=one_of("owner_kind", owner_kind, {k.value: k.value for k in OrgKind}),
        district=district_key(district),
        mode=mode.value if mode else None,
        zero_price=zero_price,
        use_first_pay_later=use_first_pay_later,
        patent_type=one_of("patent_type", patent_type, PATENT_TYPE_VALUES),
        legal_status=one_of("legal_status", legal_status, LEGAL_STATUS_VALUES),
        pool_status=one_of("pool_status", pool_status, POOL_STATUS_VALUES),
    )


PATENT_TYPE_VALUES = {
    **{t.value: t.value for t in PatentType},
    "发明": "invention", "实用新型": "utility_model", "外观设计": "design",
}  # fmt: skip
LEGAL_STATUS_VALUES = {
    **{s.value: s.value for s in schemas.LegalStatus},
    **schemas.LEGAL_STATUS_ALIASES,
}
POOL_STATUS_VALUES = {
    **{s.value: s.value for s in schemas.ListingStatus},
    "pooled": "pooled", "unlisted": "unlisted",
}  # fmt: skip


def one_of(param: str, value: str | None, allowed: dict[str, str]) -> str | None:
    if value is None or value == "":
        return None
    key = value.strip()
    found = allowed.get(key) or allowed.get(key.lower())
    if found is None:
        raise Unprocessable.field(
            param, f"unknown value '{value}'; use one of {', '.join(allowed)}"
        )
    return found


def district_key(value: str | None) -> str | None:
    """A Tianjin district by key (`nankai`) or Chinese name (`南开区`)."""
    if value is None or value == "":
        return None
    try:
        return schemas.normalize_district(value)
    except ValueError as exc:
        raise Unprocessable.field("district", str(exc)) from None


@router.get("/patents", response_model=schemas.PatentPage)
async def search_patents(
    request: Request,
    session: SessionDep,
    f: Annotated[Filters, Depends(filters)],
    sort: str = Query(
        "-id",
        description="-id, id, application_date, -application_date, grant_date, -grant_date, expiry_date",
    ),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(20, ge=1, le=200),
) -> Response:
    """Browse and keyword-search the catalog (public). Cursor pagination."""
    found = await search_rows(session, f, sort, cursor, limit + 1, request.app.state.keywords)
    more = len(found.rows) > limit
    rows = found.rows[:limit]
    items = [schemas.Patent.model_validate(page_item(row, found.owners[row.id])) for row in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(sort, sort_value(last, sort), last.id)
    # Written by pydantic-core at once: the JSON FastAPI would write for the returned model,
    # without its dumping the page it was just built from, validating it again and encoding
    # it with json.dumps (the busiest read of the catalog; tests/catalog/test_search_page.py).
    page = schemas.PatentPage(items=items, next_cursor=next_cursor)
    return Response(page.model_dump_json(), media_type="application/json")

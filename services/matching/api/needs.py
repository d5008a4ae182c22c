"""SMEs' technology needs: create, edit, close; public read without contact details."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, status
from sqlalchemy import select

from services.matching import schemas
from services.matching.api.deps import SessionDep
from services.matching.domain.codes import branches
from services.matching.domain.needs import is_open, need_payload, need_view, sees_contact
from services.matching.models import FeedEntry, Need, Organisation
from shared import feed
from shared.auth import OptionalPrincipalDep, PrincipalDep, Role, require_role
from shared.errors import Forbidden, NotFound, Unprocessable
from shared.feed import utcnow
from shared.params import MAX_ID, PathId

# A need always has these; an explicit null in a PATCH leaves them unchanged.
REQUIRED_NEED_FIELDS = {"title", "description", "industry", "ipc_hints", "modes", "status"}

NEED_EXAMPLES = {
    "battery": {
        "summary": "An SME looks for a battery technology",
        "value": {
            "title": "锂电池正极材料循环寿命提升",
            "description": "现寻求一种提高锂离子电池正极材料循环稳定性的技术",
            "industry": "1.2",
            "modes": ["assignment", "non_exclusive_licence"],
            "budget_max_cny": "500000",
        },
    }
}

router = APIRouter(prefix="/v1", tags=["needs"])


@router.get("/industries", summary="Industry codes a need may name (SEI 2021)")
async def industries() -> list[dict[str, str]]:
    return branches()


async def load_need(session: SessionDep, need_id: int) -> Need:
    need = await session.get(Need, need_id)
    if need is None:
        raise NotFound(f"need {need_id} does not exist")
    return need


async def publish_need(session: SessionDep, need: Need) -> None:
    await session.flush()
    await feed.append(session, FeedEntry, [("need", str(need.id), "upsert", need_payload(need))])


@router.post("/needs", response_model=schemas.Need, status_code=status.HTTP_201_CREATED)
async def create_need(
    body: Annotated[schemas.NeedCreate, Body(openapi_examples=NEED_EXAMPLES)],
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
) -> schemas.Need:
    """Post a technology need (SME key)."""
    require_role(principal, Role.SME)
    need = Need(org_id=principal.org_id, **body.model_dump(mode="python"))
    need.modes = [m.value for m in body.modes]
    session.add(need)
    await publish_need(session, need)
    await request.app.state.needs.refresh(need)
    org = await session.get(Organisation, principal.org_id)
    return need_view(need, org, full=True)


@router.get("/needs", response_model=schemas.NeedPage)
async def list_needs(
    session: SessionDep,
    principal: OptionalPrincipalDep,
    mine: bool = Query(False, description="only my organisation's needs, in any state"),
    industry: str | None = None,
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(50, ge=1, le=500),
) -> schemas.NeedPage:
    """Open needs (public, without contact details), or with `mine=true` your own in full."""
    stmt = select(Need).where(Need.id > after).order_by(Need.id)
    if mine:
        if principal is None:
            raise Unprocessable.field("mine", "mine=true needs an API key")
        stmt = stmt.where(Need.org_id == principal.org_id)
    else:
        stmt = stmt.where(Need.status == "open")
    rows = list(await session.scalars(stmt.limit(limit * 2 + 1)))
    if not mine:
        rows = [n for n in rows if is_open(n)]
    if industry:
        rows = [n for n in rows if n.industry == industry or n.industry.split(".")[0] == industry]
    more = len(rows) > limit
    rows = rows[:limit]
    orgs = {
        o.id: o
        for o in await session.scalars(
            select(Organisation).where(Organisation.id.in_({n.org_id for n in rows}))
        )
    }
    items = [need_view(n, orgs.get(n.org_id), sees_contact(n, principal)) for n in rows]
    return schemas.NeedPage(items=items, next_cursor=str(rows[-1].id) if more else None)


@router.get("/needs/{need_id}", response_model=schemas.Need)
async def get_need(
    need_id: PathId, session: SessionDep, principal: OptionalPrincipalDep
) -> schemas.Need:
    need = await load_need(session, need_id)
    full = sees_contact(need, principal)
    if not is_open(need) and not full:
        raise NotFound(f"need {need_id} does not exist or is closed")
    return need_view(need, await session.get(Organisation, need.org_id), full)


@router.patch("/needs/{need_id}", response_model=schemas.Need)
async def update_need(
    need_id: PathId,
    body: schemas.NeedUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
) -> schemas.Need:
    """Edit, close or re-open your need. Fields left out are unchanged; `null` clears an
    optional field (budget, validity, contact) and leaves a required one (title,
    description, industry, IPC hints, modes, status) as it is."""
    require_role(principal, Role.SME)
    need = await load_need(session, need_id)
    if need.org_id != principal.org_id and principal.role is not Role.ADMIN:
        raise Forbidden("only the organisation that posted a need may change it")
    changes = body.model_dump(exclude_unset=True, mode="python")
    for field, value in changes.items():
        if value is None and field in REQUIRED_NEED_FIELDS:
            continue
        if value is None and field.startswith("contact_"):
            value = ""
        if field == "modes":
            value = list(dict.fromkeys(m.value for m in value))
        elif field == "status":
            value = value.value
        setattr(need, field, value)
    lo, hi = need.budget_min_cny, need.budget_max_cny
    if lo is not None and hi is not None and lo > hi:
        raise Unprocessable.field("budget_max_cny", "must not be below budget_min_cny")
    need.updated_at = utcnow()
    await publish_need(session, need)
    await request.app.state.needs.refresh(need)
    return need_view(need, await session.get(Organisation, need.org_id), full=True)

"""Organisations, their API keys, and key introspection for the other services."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.domain.feed_payloads import organisation_payload
from services.catalog.domain.keys import issue_key, revoke_key
from services.catalog.models import ApiKey, FeedEntry, Organisation
from shared import feed
from shared.auth import Principal, PrincipalDep, Role, require_role
from shared.errors import Conflict, Forbidden, NotFound, is_unique_violation
from shared.feed import utcnow
from shared.params import MAX_ID, PathId
from shared.regions import DISTRICT_BY_CHINESE

router = APIRouter(prefix="/v1", tags=["organisations"])

# What an organisation *is* decides what it may do and whether its deals count: its place
# (district / province → in_tianjin, and a district bureau's reach), its SME status, and
# the names that decide which patents it may claim as patentee (name, aliases). Only the
# city bureau or an admin changes them; kind and USCC cannot be changed at all.
AUTHORITY_FIELDS = ("name", "aliases", "district", "province", "is_sme", "sme_basis")


async def load_org(session: SessionDep, org_id: PathId) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


async def create_organisation(
    session: SessionDep, body: schemas.OrganisationCreate
) -> Organisation:
    """Shared by the API and the CLI."""
    clash = await session.scalar(select(Organisation).where(Organisation.name == body.name))
    if clash:
        raise Conflict(f"an organisation named {body.name} already exists (id {clash.id})")
    if body.uscc and await session.scalar(
        select(Organisation).where(Organisation.uscc == body.uscc)
    ):
        raise Conflict(f"an organisation with USCC {body.uscc} already exists")
    org = Organisation(**body.model_dump(mode="json"))
    session.add(org)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict("organisation name or USCC already registered") from exc
    await feed.append(
        session, FeedEntry, [("organisation", str(org.id), "upsert", organisation_payload(org))]
    )
    return org


@router.post(
    "/organisations", response_model=schemas.Organisation, status_code=status.HTTP_201_CREATED
)
async def create(
    body: schemas.OrganisationCreate, session: SessionDep, principal: PrincipalDep
) -> Organisation:
    """Register an organisation (admin or city bureau)."""
    require_role(principal, Role.CITY_BUREAU)
    return await create_organisation(session, body)


@router.get("/organisations", response_model=schemas.OrganisationPage)
async def list_organisations(
    session: SessionDep,
    kind: str | None = None,
    district: str | None = None,
    q: str | None = Query(None, description="substring of the name"),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor: the last id seen"),
    limit: int = Query(100, ge=1, le=1000),
) -> schemas.OrganisationPage:
    stmt = select(Organisation).where(Organisation.id > after).order_by(Organisation.id)
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    if district:
        stmt = stmt.where(Organisation.district == district)
    if q:
        stmt = stmt.where(Organisation.name.contains(q, autoescape=True))
    rows = list((await session.scalars(stmt.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.OrganisationPage(
        items=[schemas.Organisation.model_validate(r) for r in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )


@router.get("/organisations/{org_id}", response_model=schemas.Organisation)
async def get_organisation(org_id: PathId, session: SessionDep) -> Organisation:
    return await load_org(session, org_id)


@router.patch("/organisations/{org_id}", response_model=schemas.Organisation)
async def update_organisation(
    org_id: PathId, body: schemas.OrganisationUpdate, session: SessionDep, principal: PrincipalDep
) -> Organisation:
    """An organisation edits itself; the city bureau and admins edit any."""
    org = await load_org(session, org_id)
    if principal.org_id != org.id:
        require_role(principal, Role.CITY_BUREAU)
    check_authority(org, body, principal)
    merged = schemas.OrganisationCreate.model_validate(
        {
            **schemas.OrganisationCreate.model_validate(org, from_attributes=True).model_dump(),
            **body.model_dump(exclude_unset=True),
            "kind": org.kind,
            "uscc": org.uscc,
        }
    )
    changes = merged.model_dump(mode="json", exclude={"kind", "uscc"})
    if all(getattr(org, k) == v for k, v in changes.items()):
        return org
    for k, v in changes.items():
        setattr(org, k, v)
    org.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict("another organisation already has that name") from exc
    await feed.append(
        session, FeedEntry, [("organisation", str(org.id), "upsert", organisation_payload(org))]
    )
    return org


def check_authority(
    org: Organisation, body: schemas.OrganisationUpdate, principal: Principal
) -> None:
    """403 naming every authority attribute the caller tried to change without the right."""
    if principal.role in (Role.CITY_BUREAU, Role.ADMIN):
        return
    sent = body.model_dump(exclude_unset=True)
    current = schemas.OrganisationCreate.model_validate(org, from_attributes=True).model_dump()
    if isinstance(sent.get("district"), str):
        # Compare normal forms: `滨海新区` and `binhai` are the same district.
        d = sent["district"]
        sent["district"] = DISTRICT_BY_CHINESE.get(d, d.lower()) or None
    refused = [f for f in AUTHORITY_FIELDS if f in sent and sent[f] != current.get(f)]
    if refused:
        raise Forbidden(
            f"{', '.join(refused)}: only the city bureau or an admin may change "
            + ("it" if len(refused) == 1 else "them"),
            errors=[
                {"field": f, "reason": "only the city bureau or an admin may change it"}
                for f in refused
            ],
        )


@router.post(
    "/organisations/{org_id}/keys",
    response_model=schemas.KeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["auth"],
)
async def create_key(
    org_id: PathId, body: schemas.KeyCreate, session: SessionDep, principal: PrincipalDep
) -> schemas.KeyCreated:
    """Issue a key for an organisation (admin only). The key is shown once."""
    require_role(principal, Role.ADMIN)
    org = await load_org(session, org_id)
    full = await issue_key(session, org, body.role, body.label)
    return schemas.KeyCreated(key_id=full.split("_")[1], key=full, role=body.role, org_id=org.id)


@router.get("/organisations/{org_id}/keys", response_model=list[schemas.KeyInfo], tags=["auth"])
async def list_keys(org_id: PathId, session: SessionDep, principal: PrincipalDep) -> list[ApiKey]:
    if principal.org_id != org_id:
        require_role(principal, Role.ADMIN)
    await load_org(session, org_id)
    # Sign-in tokens live in the same table; they are people's, not the organisation's keys.
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.org_id == org_id, ApiKey.person_id.is_(None))
        .order_by(ApiKey.created_at)
    )
    return list(rows.all())


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def delete_key(key_id: str, session: SessionDep, principal: PrincipalDep) -> None:
    """Revoke a key: its own organisation or an admin."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"key {key_id} does not exist")
    if key.org_id != principal.org_id and principal.role is not Role.ADMIN:
        raise Forbidden("you can only revoke your own organisation's keys")
    await revoke_key(session, key)


@router.post("/auth/introspect", response_model=schemas.IntrospectResponse, tags=["auth"])
async def introspect(
    body: schemas.IntrospectRequest, request: Request
) -> schemas.IntrospectResponse:
    """Who does this key or sign-in token belong to? Used by the matching and indicators
    services. Tokens carry `expires_at`; past it, or after sign-out, `active` is false."""
    found = await request.app.state.authenticator.lookup(body.key)
    if found is None:
        return schemas.IntrospectResponse(active=False)
    return schemas.IntrospectResponse(
        active=True, principal=found.principal.to_dict(), expires_at=found.expires_at
    )


@router.get("/auth/me", tags=["auth"])
async def me(principal: PrincipalDep, session: SessionDep) -> dict[str, object]:
    org = await load_org(session, principal.org_id)
    return {**principal.to_dict(), "org_name": org.name}

"""Organisations, their API keys, and key introspection for the other services."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request, status
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.api.patents import district_key, one_of
from services.catalog.domain.keys import issue_key, revoke_key
from services.catalog.domain.org_history import (
    STATE_FIELDS,
    changes_of,
    ensure_baseline,
    publish_org,
    recorded_by,
    state_of,
    state_on,
    timeline,
    timeline_payload,
)
from services.catalog.models import ApiKey, Organisation, OrganisationChange
from shared import bizdate
from shared.auth import Principal, PrincipalDep, Role, require_role
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    is_unique_violation,
    pydantic_errors,
)
from shared.feed import utcnow
from shared.params import MAX_ID, PathId
from shared.regions import DISTRICT_BY_CHINESE, OrgKind

router = APIRouter(prefix="/v1", tags=["organisations"])

# What an organisation *is* decides what it may do and whether its deals count: its place
# (district / province → in_tianjin, and a district bureau's reach), its SME status, and
# the names that decide which patents it may claim as patentee (name, aliases). Only the
# city bureau or an admin changes them; kind only between sme and enterprise, USCC never.
AUTHORITY_FIELDS = ("name", "aliases", "kind", "district", "province", "is_sme", "sme_basis")


async def load_org(session: SessionDep, org_id: PathId) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


async def create_organisation(
    session: SessionDep, body: schemas.OrganisationCreate, principal: Principal | None = None
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
    await ensure_baseline(session, org, principal)
    await publish_org(session, org)
    return org


@router.post(
    "/organisations", response_model=schemas.Organisation, status_code=status.HTTP_201_CREATED
)
async def create(
    body: schemas.OrganisationCreate, session: SessionDep, principal: PrincipalDep
) -> Organisation:
    """Register an organisation (admin or city bureau)."""
    require_role(principal, Role.CITY_BUREAU)
    return await create_organisation(session, body, principal)


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
    kind = one_of("kind", kind, {k.value: k.value for k in OrgKind})
    district = district_key(district)
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
    """Change an organisation from `effective_from` on (default today, Tianjin time).

    An organisation edits itself; the city bureau and admins edit any, and only they may
    back-date a change. Every change is kept in the history with who, when and why."""
    org = await load_org(session, org_id)
    if principal.org_id != org.id:
        require_role(principal, Role.CITY_BUREAU)
    check_authority(org, body, principal)
    on = check_effective_from(body.effective_from, principal)
    sent = requested_values(org, body)
    changes = await ensure_baseline(session, org, principal)
    before = timeline(changes)
    change = OrganisationChange(
        org_id=org.id,
        effective_from=on,
        values=sent,
        previous={k: state_on(before, on).get(k) for k in sent},
        reason=body.reason,
        recorded_at=utcnow(),
        **recorded_by(principal),
    )
    after = timeline([*changes, change])
    if after == before:
        return org  # nothing would differ on any day
    for start, state in after:
        check_state(org, start, state)
    session.add(change)
    current = after[-1][1]
    if any(getattr(org, k) != current[k] for k in STATE_FIELDS):
        for k in STATE_FIELDS:
            setattr(org, k, current[k])
    org.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict("another organisation already has that name") from exc
    await publish_org(session, org, on)
    return org


def check_authority(
    org: Organisation, body: schemas.OrganisationUpdate, principal: Principal
) -> None:
    """403 naming every authority attribute the caller tried to change without the right."""
    if principal.role in (Role.CITY_BUREAU, Role.ADMIN):
        return
    sent = body.model_dump(mode="json", exclude_unset=True)
    current = schemas.OrganisationCreate.model_validate(org, from_attributes=True).model_dump(
        mode="json"
    )
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


def check_effective_from(requested: date | None, principal: Principal) -> date:
    today = bizdate.today()
    on = requested or today
    if on > today:
        raise Unprocessable.field(
            "effective_from", f"{on.isoformat()} is in the future (today is {today.isoformat()})"
        )
    if on < today and principal.role not in (Role.CITY_BUREAU, Role.ADMIN):
        raise Forbidden(
            "effective_from: only the city bureau or an admin may back-date a change",
            errors=[
                {
                    "field": "effective_from",
                    "reason": "only the city bureau or an admin may back-date a change",
                }
            ],
        )
    return on


def requested_values(org: Organisation, body: schemas.OrganisationUpdate) -> dict[str, Any]:
    """The fields the request sets, in stored form; a move states both place fields."""
    sent = body.model_dump(mode="json", exclude_unset=True, exclude={"effective_from", "reason"})
    if sent.get("district"):
        try:
            sent["district"] = schemas.normalize_district(sent["district"])
        except ValueError as exc:
            raise Unprocessable.field("district", str(exc)) from None
        sent.setdefault("province", None)
    elif "district" in sent:
        sent["district"] = None
    if sent.get("province") and sent["province"] != "天津市" and "district" not in sent:
        sent["district"] = None  # a province outside Tianjin is a move out
    if "kind" in sent and sent["kind"] != org.kind:
        movable = {OrgKind.SME.value, OrgKind.ENTERPRISE.value}
        if not {sent["kind"], org.kind} <= movable:
            raise Unprocessable.field(
                "kind", "only changes between sme and enterprise; register a new organisation"
            )
    return sent


def check_state(org: Organisation, start: date | None, state: dict[str, Any]) -> None:
    """Every day's state must be one an organisation may register with."""
    when = f"from {start.isoformat()}" if start else "in its first state"
    if state["kind"] == OrgKind.SME.value and not state["is_sme"]:
        raise Unprocessable.field(
            "is_sme",
            "an organisation of kind sme is an SME; to end its SME status send "
            '"kind": "enterprise" with "is_sme": false',
        )
    try:
        schemas.OrganisationCreate.model_validate({**state, "uscc": org.uscc})
    except ValidationError as exc:
        errors = pydantic_errors(list(exc.errors()))
        for e in errors:
            e["reason"] = f"{e['reason']} ({when})"
        raise Unprocessable(
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors
        ) from None


@router.get("/organisations/{org_id}/history", response_model=schemas.OrganisationHistory)
async def organisation_history(
    org_id: PathId, session: SessionDep, principal: PrincipalDep
) -> schemas.OrganisationHistory:
    """Every recorded change (who, when, why) and the dated states they add up to."""
    if principal.org_id != org_id:
        require_role(principal, Role.CITY_BUREAU, Role.DISTRICT_BUREAU)
    org = await load_org(session, org_id)
    changes = await changes_of(session, org.id)
    if not changes:  # registered before the history existed: its state so far
        changes = [OrganisationChange(effective_from=None, values=state_of(org), previous={},
                                      reason="first known state", recorded_at=org.created_at)]  # fmt: skip
    return schemas.OrganisationHistory(
        org_id=org.id,
        changes=[schemas.OrganisationChange.model_validate(c) for c in changes if c.id],
        timeline=[schemas.OrganisationState(**s) for s in timeline_payload(timeline(changes))],
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

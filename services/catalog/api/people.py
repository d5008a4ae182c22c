"""People of organisations: who signs in to the portal, with which role."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from services.catalog import schemas
from services.catalog.api.deps import SessionDep
from services.catalog.api.organisations import load_org
from services.catalog.domain.keys import check_role_fits, revoke_person_tokens
from services.catalog.domain.passwords import hash_password
from services.catalog.domain.people import require_grantable, require_people_authority
from services.catalog.models import Person
from shared.auth import Principal, PrincipalDep, Role
from shared.errors import Conflict, NotFound
from shared.feed import utcnow
from shared.params import PathId

router = APIRouter(prefix="/v1", tags=["people"])


async def create_person(session: SessionDep, org_id: int, body: schemas.PersonCreate) -> Person:
    """Shared by the API and the demo loader; authority is the caller's business."""
    org = await load_org(session, org_id)
    check_role_fits(org, body.role)
    await _refuse_taken(session, body.email, body.phone)
    person = Person(
        org_id=org.id,
        name=body.name,
        email=body.email,
        phone=body.phone,
        password_hash=await hash_password(body.password),
        role=body.role.value,
        org_admin=body.org_admin,
        active=True,
    )
    session.add(person)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("that email or phone number is already registered") from exc
    return person


async def _refuse_taken(session: SessionDep, email: str | None, phone: str | None) -> None:
    conditions = []
    if email:
        conditions.append(Person.email == email)
    if phone:
        conditions.append(Person.phone == phone)
    clash = await session.scalar(select(Person).where(or_(*conditions)).limit(1))
    if clash is None:
        return
    if email and clash.email == email:
        field, value = "email", email
    else:
        field, value = "phone", phone or ""
    raise Conflict(
        f"the {field} {value} is already registered",
        errors=[{"field": field, "reason": "already registered"}],
    )


@router.post(
    "/organisations/{org_id}/people",
    response_model=schemas.Person,
    status_code=status.HTTP_201_CREATED,
)
async def add_person(
    org_id: PathId, body: schemas.PersonCreate, session: SessionDep, principal: PrincipalDep
) -> Person:
    """Add a person who can sign in (platform admin, city bureau, or the organisation's
    own signed-in administrator). The password is stored as an Argon2id hash only."""
    require_people_authority(principal, org_id)
    require_grantable(principal, body.role)
    return await create_person(session, org_id, body)


@router.get("/organisations/{org_id}/people", response_model=list[schemas.Person])
async def list_people(org_id: PathId, session: SessionDep, principal: PrincipalDep) -> list[Person]:
    require_people_authority(principal, org_id)
    await load_org(session, org_id)
    rows = await session.scalars(select(Person).where(Person.org_id == org_id).order_by(Person.id))
    return list(rows.all())


def _self_service(principal: Principal, person: Person, body: schemas.PersonUpdate) -> bool:
    """A person may change their own name and password."""
    return principal.person_id == person.id and body.model_fields_set <= {"name", "password"}


@router.patch("/people/{person_id}", response_model=schemas.Person)
async def update_person(
    person_id: PathId, body: schemas.PersonUpdate, session: SessionDep, principal: PrincipalDep
) -> Person:
    """Change a person. Deactivating ends their sign-ins at once; a new password ends
    every sign-in but the one making the request."""
    person = await session.get(Person, person_id)
    if person is None:
        raise NotFound(f"person {person_id} does not exist")
    if not _self_service(principal, person, body):
        require_people_authority(principal, person.org_id)
        require_grantable(principal, Role(person.role))
        if body.role is not None:
            require_grantable(principal, body.role)
    if body.role is not None:
        check_role_fits(await load_org(session, person.org_id), body.role)
        person.role = body.role.value
    if body.name is not None:
        person.name = body.name
    if body.org_admin is not None:
        person.org_admin = body.org_admin
    if body.password is not None:
        person.password_hash = await hash_password(body.password)
        await revoke_person_tokens(session, person.id, keep=principal.key_id)
    if body.active is not None:
        person.active = body.active
        if not body.active:
            await revoke_person_tokens(session, person.id)
    person.updated_at = utcnow()
    await session.flush()
    return person

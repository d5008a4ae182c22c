"""Sign-in for people: short-lived bearer tokens, sign-out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select

from services.catalog import schemas
from services.catalog.api.deps import SessionDep, SettingsDep
from services.catalog.api.organisations import load_org
from services.catalog.domain.keys import as_utc, issue_session_token, revoke_key
from services.catalog.domain.passwords import hash_password, needs_rehash, verify_password
from services.catalog.domain.people import login_key
from services.catalog.domain.throttle import LoginThrottle
from services.catalog.models import ApiKey, Person
from shared.auth import PrincipalDep
from shared.db import Database
from shared.errors import ProblemError, TooManyRequests, Unauthorized

router = APIRouter(prefix="/v1", tags=["sessions"])

# One message for an unknown login, a wrong password and a deactivated account, so the
# answer never tells whether an account exists.
WRONG_LOGIN = "the login or the password is wrong"


async def _find_person(db: Database, login: str) -> Person | None:
    kind, value = login_key(login)
    if kind == "raw":
        return None
    column = Person.email if kind == "email" else Person.phone
    # A read session: the password check below must not hold SQLite's write lock.
    async with db.read_sessionmaker() as session:
        return await session.scalar(select(Person).where(column == value))


@router.post(
    "/sessions",
    response_model=schemas.SessionCreated,
    status_code=status.HTTP_201_CREATED,
    responses={401: {"description": "wrong login or password"}, 429: {"description": "throttled"}},
)
async def sign_in(
    body: schemas.SessionCreate, request: Request, session: SessionDep, settings: SettingsDep
) -> schemas.SessionCreated:
    """Sign in with an email or phone number and a password. The token works like an API
    key (`Authorization: Bearer …`) on every service until `expires_at` or sign-out."""
    throttle: LoginThrottle = request.app.state.login_throttle
    login = ":".join(login_key(body.login))
    client = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(login, client)
    if wait is not None:
        raise TooManyRequests(
            f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
        )
    found = await _find_person(request.app.state.db, body.login)
    ok = await verify_password(found.password_hash if found else None, body.password)
    if not ok or found is None or not found.active:
        throttle.failed(login, client)
        raise Unauthorized(WRONG_LOGIN)
    throttle.succeeded(login)
    person = await session.get(Person, found.id)
    assert person is not None
    if needs_rehash(person.password_hash):
        person.password_hash = await hash_password(body.password)
    org = await load_org(session, person.org_id)
    token, expires_at = await issue_session_token(session, person, settings.session_ttl_seconds)
    return schemas.SessionCreated(
        token=token,
        expires_at=expires_at,
        person=schemas.Person.model_validate(person),
        organisation=schemas.Organisation.model_validate(org),
    )


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def sign_out(principal: PrincipalDep, session: SessionDep) -> None:
    """End the sign-in whose token is sent. Other services may still accept it for up to
    their token cache time (5 s by default). An API key is refused with 400: revoke keys
    with `DELETE /v1/keys/{key_id}`."""
    if principal.person_id is None:
        raise ProblemError(
            "this is an API key, not a sign-in token; revoke keys with DELETE /v1/keys/{key_id}"
        )
    row = await session.get(ApiKey, principal.key_id)
    assert row is not None
    await revoke_key(session, row)


@router.get("/me", response_model=schemas.Me)
async def me(principal: PrincipalDep, session: SessionDep) -> schemas.Me:
    """Who the key or token belongs to: the principal, the person (null for an API key)
    and the organisation."""
    person = await session.get(Person, principal.person_id) if principal.person_id else None
    org = await load_org(session, principal.org_id)
    expires_at = None
    if principal.person_id is not None:
        row = await session.get(ApiKey, principal.key_id)
        expires_at = as_utc(row.expires_at) if row and row.expires_at else None
    return schemas.Me(
        **principal.to_dict(),
        expires_at=expires_at,
        person=schemas.Person.model_validate(person) if person else None,
        organisation=schemas.Organisation.model_validate(org),
    )

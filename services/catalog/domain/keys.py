"""Issuing, checking and revoking API keys and sign-in tokens (the catalog is their
system of record). A sign-in token is an `api_key` row with `person_id` and
`expires_at`: one format, one verification path, so every service accepts both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.catalog.models import ApiKey, Organisation, Person
from shared.auth import Principal, Role, new_key, secret_matches, split_key
from shared.errors import Unprocessable
from shared.feed import utcnow
from shared.regions import SUPPLIER_KINDS, OrgKind

# Which organisation kinds may hold which role.
ROLE_KINDS: dict[Role, frozenset[str]] = {
    Role.SUPPLIER: frozenset(k.value for k in SUPPLIER_KINDS),
    Role.SME: frozenset({OrgKind.SME.value}),
    Role.DISTRICT_BUREAU: frozenset({OrgKind.OTHER.value}),
    Role.CITY_BUREAU: frozenset({OrgKind.OTHER.value}),
    # The platform operator: an organisation of kind `other`, never a supplier or an SME.
    Role.ADMIN: frozenset({OrgKind.OTHER.value}),
}

SESSION_LABEL = "session"


def check_role_fits(org: Organisation, role: Role) -> None:
    """The one rule for keys and people: the role must fit the organisation's kind."""
    if org.kind not in ROLE_KINDS[role]:
        raise Unprocessable.field(
            "role", f"role {role.value} cannot be held by an organisation of kind {org.kind}"
        )
    if role is Role.DISTRICT_BUREAU and not org.district:
        raise Unprocessable.field("role", "a district bureau must belong to a Tianjin district")


async def issue_key(session: AsyncSession, org: Organisation, role: Role, label: str) -> str:
    check_role_fits(org, role)
    key_id, full, secret_hash = new_key()
    session.add(
        ApiKey(id=key_id, org_id=org.id, role=role.value, label=label, secret_hash=secret_hash)
    )
    await session.flush()
    return full


async def issue_session_token(
    session: AsyncSession, person: Person, ttl_seconds: float
) -> tuple[str, datetime]:
    """A sign-in token for a person: (token shown once, expiry)."""
    key_id, full, secret_hash = new_key()
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    session.add(
        ApiKey(
            id=key_id,
            org_id=person.org_id,
            role=person.role,
            label=SESSION_LABEL,
            secret_hash=secret_hash,
            person_id=person.id,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return full, expires_at


def as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Credential:
    principal: Principal
    expires_at: datetime | None


class DbAuthenticator:
    """Checks keys and sign-in tokens against the catalog's own tables."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def authenticate(self, key: str) -> Principal | None:
        found = await self.lookup(key)
        return found.principal if found else None

    async def lookup(self, key: str) -> Credential | None:
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        async with self.sessionmaker() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                return None
            expires_at = as_utc(row.expires_at) if row.expires_at else None
            if expires_at is not None and expires_at <= utcnow():
                return None
            if not secret_matches(secret, row.secret_hash):
                return None
            org = await session.get(Organisation, row.org_id)
            assert org is not None
            if row.person_id is None:
                return Credential(
                    Principal(row.id, org.id, Role(row.role), org.kind, org.district), None
                )
            person = await session.get(Person, row.person_id)
            if person is None or not person.active:
                return None
            # The person's current role and admin flag, so a change applies at once.
            principal = Principal(
                row.id,
                org.id,
                Role(person.role),
                org.kind,
                org.district,
                person_id=person.id,
                org_admin=person.org_admin,
            )
            return Credential(principal, expires_at)


async def revoke_key(session: AsyncSession, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()


async def revoke_person_tokens(
    session: AsyncSession, person_id: int, *, keep: str | None = None
) -> None:
    """End every live sign-in of a person (but `keep`, the token making the request)."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.person_id == person_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if keep:
        stmt = stmt.where(ApiKey.id != keep)
    await session.execute(stmt)

"""Issuing, checking and revoking API keys (the catalog is their system of record)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.catalog.models import ApiKey, Organisation
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


async def issue_key(session: AsyncSession, org: Organisation, role: Role, label: str) -> str:
    if org.kind not in ROLE_KINDS[role]:
        raise Unprocessable.field(
            "role", f"role {role.value} cannot be held by an organisation of kind {org.kind}"
        )
    if role is Role.DISTRICT_BUREAU and not org.district:
        raise Unprocessable.field("role", "a district bureau must belong to a Tianjin district")
    key_id, full, secret_hash = new_key()
    session.add(
        ApiKey(id=key_id, org_id=org.id, role=role.value, label=label, secret_hash=secret_hash)
    )
    await session.flush()
    return full


class DbAuthenticator:
    """Checks keys against the catalog's own table."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def authenticate(self, key: str) -> Principal | None:
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        async with self.sessionmaker() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                return None
            if not secret_matches(secret, row.secret_hash):
                return None
            org = await session.get(Organisation, row.org_id)
            assert org is not None
            return Principal(row.id, org.id, Role(row.role), org.kind, org.district)


async def revoke_key(session: AsyncSession, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()

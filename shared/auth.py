"""API-key authentication shared by the services.

Keys are issued by the catalog (the system of record for organisations). A key looks
like `tjp_<key_id>_<secret>`; only sha256(secret) is stored. The catalog checks keys
against its own table; the other services ask the catalog's introspection endpoint
and cache the answer briefly, so a revoked key stops working within `cache_ttl`.

People signed in to the catalog (`POST /v1/sessions`) get a short-lived token of the same
format, checked by the same path: a principal with `person_id` set is a signed-in person.
Token answers are cached for at most `token_cache_ttl` and never past the token's expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, ServiceUnavailable, Unauthorized
from shared.http import SAFE_TO_REPEAT


class Role(StrEnum):
    SUPPLIER = "supplier"  # university / institute / SOE uploader
    SME = "sme"
    DISTRICT_BUREAU = "district_bureau"
    CITY_BUREAU = "city_bureau"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    key_id: str
    org_id: int
    role: Role
    org_kind: str
    district: str | None = None
    # Set when the credential is a signed-in person's session token, not an API key.
    person_id: int | None = None
    # That person may manage the people of their own organisation.
    org_admin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "org_id": self.org_id,
            "role": self.role.value,
            "org_kind": self.org_kind,
            "district": self.district,
            "person_id": self.person_id,
            "org_admin": self.org_admin,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Principal:
        person_id = d.get("person_id")
        return cls(
            d["key_id"],
            int(d["org_id"]),
            Role(d["role"]),
            d["org_kind"],
            d.get("district"),
            int(person_id) if person_id is not None else None,
            bool(d.get("org_admin", False)),
        )


KEY_PREFIX = "tjp"


def new_key() -> tuple[str, str, str]:
    """Return (key_id, full_key_shown_once, secret_hash_to_store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> str:
    # The secret is 192 random bits, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def key_from_request(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


class Authenticator(Protocol):
    async def authenticate(self, key: str) -> Principal | None: ...


class RemoteAuthenticator:
    """Asks the catalog who a key belongs to; caches answers for `cache_ttl` seconds.

    A signed-in person's token is cached for at most `token_cache_ttl` seconds (sign-out
    and deactivation reach this service that late at worst) and never past its expiry.
    When the catalog cannot be reached the request is answered 503 with `Retry-After`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        cache_ttl: float = 30.0,
        token_cache_ttl: float = 5.0,
        retry_after: int = 5,
    ) -> None:
        self.client = client
        self.cache_ttl = cache_ttl
        self.token_cache_ttl = token_cache_ttl
        self.retry_after = retry_after
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def _ttl(self, principal: Principal | None, expires_at: str | None) -> float:
        ttl = self.cache_ttl
        if principal is not None and principal.person_id is not None:
            ttl = min(ttl, self.token_cache_ttl)
        if expires_at:
            left = datetime.fromisoformat(expires_at) - datetime.now(UTC)
            ttl = min(ttl, max(left.total_seconds(), 0.0))
        return ttl

    async def authenticate(self, key: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        try:
            resp = await self.client.post(
                "/v1/auth/introspect", json={"key": key}, extensions={SAFE_TO_REPEAT: True}
            )
        except httpx.TransportError as exc:  # connect, timeout, dropped connection
            raise ServiceUnavailable(
                "the catalog, which verifies API keys, cannot be reached; try again shortly",
                retry_after=self.retry_after,
            ) from exc
        if resp.status_code >= 500:
            raise ServiceUnavailable(
                f"the catalog, which verifies API keys, is failing ({resp.status_code});"
                " try again shortly",
                retry_after=self.retry_after,
            )
        if resp.status_code != 200:
            raise Unauthorized(f"could not verify the key with the catalog ({resp.status_code})")
        body = resp.json()
        principal = Principal.from_dict(body["principal"]) if body.get("active") else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self._ttl(principal, body.get("expires_at")), principal)
        return principal


# Declared as security dependencies so the OpenAPI names the scheme on every operation that
# takes a key (and /docs has an Authorize button). The key itself is read by
# `key_from_request`, which also accepts `X-API-Key`. shared/openapi.py turns the
# "optional" scheme into an optional requirement of `bearerAuth`.
BEARER_SCHEME = "bearerAuth"
OPTIONAL_BEARER_SCHEME = "bearerAuthOptional"
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    bearerFormat="tjp_<key id>_<secret>",
    description="An API key issued by the catalog (`POST /v1/organisations/{id}/keys`).",
)
_optional_bearer = HTTPBearer(auto_error=False, scheme_name=OPTIONAL_BEARER_SCHEME)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
OptionalBearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None, Security(_optional_bearer)
]


async def current_principal(request: Request, _declared: BearerCredentials = None) -> Principal:
    key = key_from_request(request)
    if not key:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(key)
    if principal is None:
        raise Unauthorized("the API key or sign-in token is unknown, revoked or expired")
    return principal


async def optional_principal(
    request: Request, _declared: OptionalBearerCredentials = None
) -> Principal | None:
    return await current_principal(request) if key_from_request(request) else None


PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles and principal.role is not Role.ADMIN:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"this action needs one of the roles: {allowed} (yours: {principal.role})")

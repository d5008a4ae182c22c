"""API-key authentication shared by the services.

Keys are issued by the catalog (the system of record for organisations). A key looks
like `tjp_<key_id>_<secret>`; only sha256(secret) is stored. The catalog checks keys
against its own table; the other services ask the catalog's introspection endpoint
and cache the answer briefly, so a revoked key stops working within `cache_ttl`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, Unauthorized


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "org_id": self.org_id,
            "role": self.role.value,
            "org_kind": self.org_kind,
            "district": self.district,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Principal:
        return cls(d["key_id"], int(d["org_id"]), Role(d["role"]), d["org_kind"], d.get("district"))


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
    """Asks the catalog who a key belongs to; caches answers for `cache_ttl` seconds."""

    def __init__(self, client: httpx.AsyncClient, cache_ttl: float = 30.0) -> None:
        self.client = client
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def authenticate(self, key: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        resp = await self.client.post("/v1/auth/introspect", json={"key": key})
        if resp.status_code != 200:
            raise Unauthorized(f"could not verify the key with the catalog ({resp.status_code})")
        body = resp.json()
        principal = Principal.from_dict(body["principal"]) if body.get("active") else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.cache_ttl, principal)
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
        raise Unauthorized("the API key is unknown or revoked")
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

"""Password hashing with Argon2id (argon2-cffi, RFC 9106 default parameters).

Hashing costs tens of milliseconds of CPU on purpose, so it runs in a worker thread and
never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; with no stored hash (unknown login) still spend the same time,
    so the answer's timing does not tell whether an account exists."""
    return await asyncio.to_thread(_verify, stored_hash or _dummy_hash(), password) and bool(
        stored_hash
    )


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("no account has this password")

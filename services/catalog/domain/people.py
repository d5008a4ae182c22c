"""People of organisations: normalising logins and who may manage whom.

Managing the people of an organisation is allowed to the platform admin, the city bureau
(any organisation) and a signed-in person of that organisation with `org_admin`. Roles
can be given only by someone who could hold them: only a platform admin makes platform
admins, and an organisation admin gives people their own role.
"""

from __future__ import annotations

import re

from shared.auth import Principal, Role
from shared.errors import Forbidden

_PHONE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")


def normalize_phone(value: str) -> str:
    """'+86 138-1234-5678' -> '13812345678'; raises ValueError for anything else."""
    digits = _PHONE_NOISE.sub("", value)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not _PHONE.fullmatch(digits):
        raise ValueError(f"'{value}' is not a Chinese mobile number (11 digits, 1[3-9]…)")
    return digits


def login_key(login: str) -> tuple[str, str]:
    """('email', 'a@b.cn') or ('phone', '13812345678'); ('raw', ...) when it is neither."""
    login = login.strip()
    if "@" in login:
        return "email", login.lower()
    try:
        return "phone", normalize_phone(login)
    except ValueError:
        return "raw", login.lower()


def may_manage_people(principal: Principal, org_id: int) -> bool:
    if principal.role in (Role.ADMIN, Role.CITY_BUREAU):
        return True
    return principal.person_id is not None and principal.org_admin and principal.org_id == org_id


def require_people_authority(principal: Principal, org_id: int) -> None:
    if not may_manage_people(principal, org_id):
        raise Forbidden(
            "managing people needs the platform admin, the city bureau, or a signed-in "
            "administrator of this organisation"
        )


def require_grantable(principal: Principal, role: Role) -> None:
    """May this principal give (or manage someone holding) this role?"""
    if principal.role is Role.ADMIN:
        return
    if role is Role.ADMIN:
        raise Forbidden("only a platform admin can manage platform administrators")
    if principal.role is Role.CITY_BUREAU or role is principal.role:
        return
    raise Forbidden(
        f"an organisation administrator can give people only their own role "
        f"({principal.role.value}), not {role.value}"
    )

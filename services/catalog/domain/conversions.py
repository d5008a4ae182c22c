"""Placeholder: apply indicators deal entries (filled in below)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def apply_deal_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    return None

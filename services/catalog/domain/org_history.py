"""Effective-dated organisation history.

An organisation's state on a day is its first state (the change row with no
`effective_from`) with every later change effective on or before that day laid over
it, in (effective_from, id) order. The organisation row holds the state today. A
back-dated change therefore rewrites the past from its date on, until the next dated
change of the same field; it never edits an earlier row, so who/when/why stays.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.models import FeedEntry, Organisation, OrganisationChange
from shared import feed
from shared.auth import Principal

# What the history tracks; uscc and the id never change.
STATE_FIELDS = ("kind", "name", "aliases", "district", "province", "is_sme", "sme_basis")

Timeline = list[tuple[date | None, dict[str, Any]]]


def state_of(org: Organisation) -> dict[str, Any]:
    return {k: getattr(org, k) for k in STATE_FIELDS}


def _order(c: OrganisationChange) -> tuple[date, int]:
    return (c.effective_from or date.min, c.id or 1 << 62)


def timeline(changes: list[OrganisationChange]) -> Timeline:
    """[(from, state)]: the first entry's `from` is None (since always); one entry per
    distinct effective date at which the state differs from the one before."""
    out: Timeline = []
    state: dict[str, Any] = {}
    for c in sorted(changes, key=_order):
        state = {**state, **c.values}
        if out and out[-1][0] == c.effective_from:
            out[-1] = (c.effective_from, state)
        elif not out or out[-1][1] != state:
            out.append((c.effective_from, state))
    return out


def state_on(tl: Timeline, day: date) -> dict[str, Any]:
    current = tl[0][1]
    for start, state in tl:
        if start is None or start <= day:
            current = state
    return current


async def changes_of(session: AsyncSession, org_id: int) -> list[OrganisationChange]:
    rows = await session.scalars(
        select(OrganisationChange)
        .where(OrganisationChange.org_id == org_id)
        .order_by(OrganisationChange.id)
    )
    return list(rows.all())


def recorded_by(principal: Principal | None) -> dict[str, Any]:
    if principal is None:  # the command line / demo loader
        return {}
    return {
        "recorded_by_org_id": principal.org_id,
        "recorded_by_role": principal.role.value,
        "recorded_by_key": principal.key_id,
        "recorded_by_person_id": principal.person_id,
    }


async def ensure_baseline(
    session: AsyncSession, org: Organisation, principal: Principal | None = None
) -> list[OrganisationChange]:
    """The organisation's changes, starting with its first state (written now for
    organisations registered before the history existed: their state so far)."""
    changes = await changes_of(session, org.id)
    if not any(c.effective_from is None for c in changes):
        base = OrganisationChange(
            org_id=org.id,
            effective_from=None,
            values=state_of(org),
            previous={},
            reason="first known state",
            **recorded_by(principal),
        )
        session.add(base)
        await session.flush()
        changes.insert(0, base)
    return changes


def timeline_payload(tl: Timeline) -> list[dict[str, Any]]:
    return [
        {
            "effective_from": start.isoformat() if start else None,
            **{k: state[k] for k in STATE_FIELDS if k != "aliases"},
            "in_tianjin": state.get("district") is not None,
        }
        for start, state in tl
    ]


def organisation_payload(
    org: Organisation, tl: Timeline, effective_from: date | None = None
) -> dict[str, Any]:
    """Feed payload: today's state, the date of the change that produced it, and the
    whole dated timeline (consumers replace their versions with it: idempotent)."""
    return {
        "id": org.id,
        "kind": org.kind,
        "name": org.name,
        "uscc": org.uscc,
        "district": org.district,
        "province": org.province,
        "in_tianjin": org.in_tianjin,
        "is_sme": org.is_sme,
        "sme_basis": org.sme_basis,
        "updated_at": org.updated_at.isoformat() if org.updated_at else None,
        "effective_from": effective_from.isoformat() if effective_from else None,
        "timeline": timeline_payload(tl),
    }


async def publish_org(
    session: AsyncSession, org: Organisation, effective_from: date | None = None
) -> None:
    tl = timeline(await changes_of(session, org.id))
    await feed.append(
        session,
        FeedEntry,
        [("organisation", str(org.id), "upsert", organisation_payload(org, tl, effective_from))],
    )

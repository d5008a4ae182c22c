"""Turning uploaded patent records into rows: one path for single and bulk uploads.

`prepare()` is pure (validation already done by `PatentIn`); `upsert_batch()` applies
a batch in the caller's transaction and reports per record what happened:

- accepted  — a new patent, owned by the uploader
- updated   — data changed, or the uploader joined as a co-owner
- unchanged — identical to what is stored (no write, no feed entry)
- rejected  — with the field and the reason
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any, cast

import orjson
from sqlalchemy import BigInteger, Table, Text, bindparam, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.feed_payloads import (
    listing_payload,
    patent_payload,
    patent_payload_json,
    patent_payload_parts,
)
from services.catalog.domain.industry import industry_columns
from services.catalog.domain.lifecycle import expiry_date, pool_ineligibility
from services.catalog.domain.offer_rows import RowOffer
from services.catalog.domain.textnorm import search_text
from services.catalog.models import (
    ConvertedPatent,
    FeedEntry,
    Listing,
    ListingEvent,
    Organisation,
    Patent,
    PatentOwner,
    PatentSearch,
)
from services.catalog.schemas import POOLED, PatentIn
from shared import bizdate, feed
from shared.appno import InvalidNumber, parse_application_number
from shared.db import copy_records, insert_rows, insert_with_ids, next_ids
from shared.feed import utcnow

HASHED_FIELDS = (
    "application_number", "publication_number", "patent_type", "title", "abstract", "claims",
    "ipc_codes", "patentees", "inventors", "application_date", "grant_date", "legal_status",
)  # fmt: skip


# The patent columns a prepared record fills, in the order of its COPY row (the others:
# id, created_at, updated_at, version) and which of them are JSON.
ROW_COLUMNS = (
    "application_number", "publication_number", "patent_type", "title", "abstract", "claims",
    "ipc_codes", "main_ipc", "ipc_text", "industries", "industry_text", "patentees",
    "inventors", "application_date", "grant_date", "expiry_date", "legal_status",
    "content_hash",
)  # fmt: skip
_ROW_VALUES = itemgetter(*ROW_COLUMNS)
_JSON_AT = tuple(
    i
    for i, c in enumerate(ROW_COLUMNS)
    if c in ("ipc_codes", "industries", "patentees", "inventors")
)


@dataclass
class Prepared:
    values: dict[str, Any]
    offer: RowOffer | None = None  # offer terms given with the record: pool it
    # What writing it needs besides ids, made once by `encode()` — in the validation
    # worker when there is one, so the writing only joins ids to them.
    row: tuple[Any, ...] | None = None  # ROW_COLUMNS' values, JSON ones as text
    payload_parts: tuple[str, str] | None = None  # see feed_payloads.patent_payload_json

    @property
    def application_number(self) -> str:
        return str(self.values["application_number"])

    def encode(self) -> Prepared:
        if self.row is None:
            row = list(_ROW_VALUES(self.values))
            for i in _JSON_AT:
                row[i] = orjson.dumps(row[i]).decode()
            self.row = tuple(row)
            self.payload_parts = patent_payload_parts(self.values)
        return self

    def payload_json(self, patent_id: int, version: int, owner_org_ids: list[int]) -> str:
        parts = self.encode().payload_parts
        assert parts is not None
        return patent_payload_json(parts, patent_id, version, owner_org_ids)


@dataclass
class Outcome:
    row: int
    application_number: str | None
    status: str
    errors: list[dict[str, str]] = field(default_factory=list)
    patent_id: int | None = None
    # When the row carried offer terms: listed | updated | unchanged | not_eligible | rejected
    listing: str | None = None
    listing_id: int | None = None
    listing_errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "row": self.row,
            "application_number": self.application_number,
            "status": self.status,
        }
        if self.patent_id is not None:
            d["patent_id"] = self.patent_id
        if self.errors:
            d["errors"] = self.errors
        if self.listing is not None:
            d["listing"] = self.listing
            if self.listing_id is not None:
                d["listing_id"] = self.listing_id
            if self.listing_errors:
                d["listing_errors"] = self.listing_errors
        return d


class RecordError(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def prepare(rec: PatentIn) -> Prepared:
    try:
        appno = parse_application_number(rec.application_number)
    except InvalidNumber as exc:
        raise RecordError("application_number", str(exc)) from None
    ptype = appno.patent_type.value
    if rec.application_date and rec.application_date.year != appno.filing_year:
        raise RecordError(
            "application_date",
            f"filed in {rec.application_date.year} but the application number says {appno.filing_year}",
        )
    values: dict[str, Any] = {
        "application_number": appno.normal,
        "publication_number": rec.publication_number,
        "patent_type": ptype,
        "title": rec.title,
        "abstract": rec.abstract,
        "claims": rec.claims,
        "ipc_codes": rec.ipc_codes,
        "patentees": rec.patentees,
        "inventors": rec.inventors,
        "application_date": rec.application_date,
        "grant_date": rec.grant_date,
        "legal_status": rec.legal_status.value,
    }
    values["content_hash"] = _hash(values)
    values["main_ipc"] = rec.ipc_codes[0] if rec.ipc_codes else None
    values["ipc_text"] = (" " + " ".join(rec.ipc_codes) + " ") if rec.ipc_codes else ""
    values.update(industry_columns(rec.ipc_codes, rec.title, rec.abstract, rec.claims))
    values["expiry_date"] = expiry_date(ptype, rec.application_date)
    values["_search"] = search_text(rec.title, rec.abstract)
    return Prepared(values)


def _hash(values: dict[str, Any]) -> str:
    return hashlib.md5(orjson.dumps([values[k] for k in HASHED_FIELDS])).hexdigest()


PATENT = cast(Table, Patent.__table__)
_COLUMNS = {c.key for c in PATENT.columns} - {"id"}


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in _COLUMNS}


def names_of(org: Organisation) -> set[str]:
    return {org.name, *org.aliases}


async def upsert_batch(
    session: AsyncSession,
    org: Organisation,
    items: list[tuple[int, Prepared]],
) -> list[Outcome]:
    """Apply (row number, record) pairs for `org` in the caller's transaction."""
    outcomes: dict[int, Outcome] = {}
    # The last occurrence of a number within one upload wins; earlier ones are reported.
    last_row: dict[str, int] = {}
    for row, p in items:
        if p.application_number in last_row:
            outcomes[last_row[p.application_number]] = Outcome(
                last_row[p.application_number],
                p.application_number,
                "rejected",
                [
                    {
                        "field": "application_number",
                        "reason": f"repeated later in the same upload (row {row}); the later row is used",
                    }
                ],
            )
        last_row[p.application_number] = row
    batch = [(row, p) for row, p in items if last_row[p.application_number] == row]
    numbers = [p.application_number for _, p in batch]
    existing: dict[str, tuple[int, str, str, list[str], int]] = {}
    owners: dict[int, set[int]] = {}
    for chunk in _chunks(numbers, 5000):
        res = await session.execute(
            select(
                Patent.id,
                Patent.application_number,
                Patent.content_hash,
                Patent.legal_status,
                Patent.patentees,
                Patent.version,
            ).where(_in(Patent.application_number, chunk, session))
        )
        for pid, num, h, ls, pats, ver in res.all():
            existing[num] = (pid, h, ls, pats, ver)
        ids = [existing[n][0] for n in chunk if n in existing]
        if ids:
            owner_rows = await session.execute(
                select(PatentOwner.patent_id, PatentOwner.org_id).where(
                    _in(PatentOwner.patent_id, ids, session)
                )
            )
            for pid, oid in owner_rows.all():
                owners.setdefault(pid, set()).add(oid)

    my_names = names_of(org)
    inserts: list[tuple[int, Prepared]] = []
    updates: list[tuple[int, Prepared, int, bool]] = []  # row, rec, id, data_changed
    joins: list[tuple[int, int, str]] = []  # co-owner joins without data change
    status_changed: list[int] = []
    for row, p in batch:
        num = p.application_number
        if num not in existing:
            if not my_names & set(p.values["patentees"]):
                outcomes[row] = Outcome(
                    row,
                    num,
                    "rejected",
                    [
                        {
                            "field": "patentees",
                            "reason": f"your organisation ({org.name}) is not among the patentees",
                        }
                    ],
                )
                continue
            inserts.append((row, p))
            continue
        pid, old_hash, old_status, stored_patentees, _ = existing[num]
        is_owner = org.id in owners.get(pid, set())
        if not is_owner and not my_names & set(stored_patentees):
            outcomes[row] = Outcome(
                row,
                num,
                "rejected",
                [
                    {
                        "field": "application_number",
                        "reason": "this patent belongs to another organisation; only its patentees may upload it",
                    }
                ],
                patent_id=None,
            )
            continue
        changed = old_hash != p.values["content_hash"]
        if changed and not my_names & set(p.values["patentees"]):
            outcomes[row] = Outcome(
                row,
                num,
                "rejected",
                [
                    {
                        "field": "patentees",
                        "reason": f"your organisation ({org.name}) must stay among the patentees",
                    }
                ],
            )
            continue
        if changed:
            updates.append((row, p, pid, True))
            if old_status != p.values["legal_status"]:
                status_changed.append(pid)
        elif not is_owner:
            joins.append((row, pid, num))
        else:
            outcomes[row] = Outcome(row, num, "unchanged", patent_id=pid)

    now = utcnow()
    changed_records: list[tuple[int, int, Prepared]] = []
    join_ids: list[int] = []
    if inserts:
        reserved = await next_ids(session, PATENT, len(inserts))
        if reserved is not None:
            new_ids = await _copy_new(session, org.id, inserts, reserved, now)
        else:
            new_ids = await _insert_new(session, org.id, inserts, now)
        for row, p in inserts:
            pid = new_ids[p.application_number]
            owners[pid] = {org.id}
            outcomes[row] = Outcome(row, p.application_number, "accepted", patent_id=pid)
            changed_records.append((pid, 1, p))
    if updates:
        await session.execute(
            update(PATENT).where(PATENT.c.id == bindparam("pid")),
            [
                {
                    **_columns(p.values),
                    "pid": pid,
                    "updated_at": now,
                    "version": existing[p.application_number][4] + 1,
                }
                for _, p, pid, _ in updates
            ],
        )
        search = cast(Table, PatentSearch.__table__)
        await session.execute(
            update(search).where(search.c.patent_id == bindparam("pid")),
            [{"pid": pid, "text": p.values["_search"]} for _, p, pid, _ in updates],
        )
        for row, p, pid, _ in updates:
            outcomes[row] = Outcome(row, p.application_number, "updated", patent_id=pid)
            changed_records.append((pid, existing[p.application_number][4] + 1, p))
    new_owner_rows: list[dict[str, Any]] = [
        {"patent_id": pid, "org_id": org.id, "created_at": now}
        for _, _, pid, _ in updates
        if org.id not in owners.get(pid, set())
    ] + [{"patent_id": pid, "org_id": org.id, "created_at": now} for _, pid, _ in joins]
    if new_owner_rows:
        await session.execute(insert(PatentOwner), new_owner_rows)
        for r in new_owner_rows:
            owners.setdefault(r["patent_id"], set()).add(org.id)
    for row, pid, num in joins:
        outcomes[row] = Outcome(row, num, "updated", patent_id=pid)
        join_ids.append(pid)

    if changed_records:
        # Built from the values just written: no read-back of 100k rows for a big upload.
        await feed.append_json(
            session,
            FeedEntry,
            [
                ("patent", str(pid), "upsert", p.payload_json(pid, ver, sorted(owners[pid])))
                for pid, ver, p in changed_records
            ],
        )
    if join_ids:
        await publish_patents(session, join_ids, owners)
    if status_changed:
        await reevaluate_listings(session, status_changed)
    return [outcomes[r] for r in sorted(outcomes)]


async def _copy_new(
    session: AsyncSession,
    org_id: int,
    inserts: list[tuple[int, Prepared]],
    ids: list[int],
    now: datetime,
) -> dict[str, int]:
    """New patents, their search text and owner, COPYed with the reserved ids (PostgreSQL)."""
    await copy_records(
        session, PATENT, ("id", *ROW_COLUMNS, "created_at", "updated_at", "version"),
        [(pid, *p.encode().row, now, now, 1)  # type: ignore[misc]
         for pid, (_, p) in zip(ids, inserts, strict=True)],
    )  # fmt: skip
    await copy_records(
        session, PatentSearch.__table__, ("patent_id", "text"),
        [(pid, p.values["_search"]) for pid, (_, p) in zip(ids, inserts, strict=True)],
    )  # fmt: skip
    await copy_records(
        session, PatentOwner.__table__, ("patent_id", "org_id", "created_at"),
        [(pid, org_id, now) for pid in ids],
    )  # fmt: skip
    return {p.application_number: pid for pid, (_, p) in zip(ids, inserts, strict=True)}


async def _insert_new(
    session: AsyncSession, org_id: int, inserts: list[tuple[int, Prepared]], now: datetime
) -> dict[str, int]:
    """The same on other databases (SQLite), by INSERT."""
    rows = [
        {**_columns(p.values), "created_at": now, "updated_at": now, "version": 1}
        for _, p in inserts
    ]
    new_ids = await insert_with_ids(session, PATENT, rows, "application_number")
    await insert_rows(
        session,
        PatentSearch.__table__,
        [
            {"patent_id": new_ids[p.application_number], "text": p.values["_search"]}
            for _, p in inserts
        ],
    )
    await insert_rows(
        session,
        PatentOwner.__table__,
        [
            {"patent_id": new_ids[p.application_number], "org_id": org_id, "created_at": now}
            for _, p in inserts
        ],
    )
    return new_ids


async def publish_patents(
    session: AsyncSession, patent_ids: list[int], owners: dict[int, set[int]] | None = None
) -> None:
    entries = []
    for chunk in _chunks(patent_ids, 5000):
        patents = (await session.scalars(select(Patent).where(Patent.id.in_(chunk)))).all()
        if owners is None or any(p.id not in owners for p in patents):
            owners = {**(owners or {}), **await owners_of(session, chunk)}
        for p in patents:
            entries.append(("patent", str(p.id), "upsert", patent_payload(p, sorted(owners[p.id]))))
    await feed.append(session, FeedEntry, entries)


async def owners_of(session: AsyncSession, patent_ids: list[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {pid: set() for pid in patent_ids}
    res = await session.execute(
        select(PatentOwner.patent_id, PatentOwner.org_id).where(
            PatentOwner.patent_id.in_(patent_ids)
        )
    )
    for pid, oid in res.all():
        out.setdefault(pid, set()).add(oid)
    return out


async def ineligibility(
    session: AsyncSession, patent: Patent, today: date | None = None
) -> list[str]:
    kinds = (
        await session.scalars(
            select(Organisation.kind)
            .join(PatentOwner, PatentOwner.org_id == Organisation.id)
            .where(PatentOwner.patent_id == patent.id)
        )
    ).all()
    deals = (
        await session.scalars(
            select(ConvertedPatent.deal_id).where(ConvertedPatent.patent_id == patent.id)
        )
    ).all()
    return pool_ineligibility(
        legal_status=patent.legal_status,
        expiry=patent.expiry_date,
        owner_kinds=list(kinds),
        converted_by=list(deals),
        today=today or bizdate.today(),
    )


async def set_listing_status(
    session: AsyncSession,
    listing: Listing,
    status: str,
    reason: str,
    *,
    at: datetime | None = None,
    recorded_by: str | None = None,
) -> None:
    """Move a listing and record the event and the feed entry. `at`: when the move took
    effect, if not now (a migrated pool's real date; callers check who may back-date)."""
    if listing.status == status:
        return
    now = utcnow()
    session.add(
        ListingEvent(
            listing_id=listing.id,
            from_status=listing.status,
            to_status=status,
            reason=reason,
            at=at or now,
            recorded_at=now,
            recorded_by=recorded_by,
        )
    )
    listing.status = status
    listing.status_reason = reason
    listing.updated_at = now
    listing.status_since = at or now
    listing.version += 1
    await session.flush()
    await publish_listing(session, listing)


async def last_event_at(session: AsyncSession, listing_id: int) -> datetime | None:
    """When the listing's latest recorded change took effect (UTC)."""
    last = await session.scalar(
        select(func.max(ListingEvent.at)).where(ListingEvent.listing_id == listing_id)
    )
    return last.replace(tzinfo=UTC) if last is not None and last.tzinfo is None else last


async def publish_listing(session: AsyncSession, listing: Listing) -> None:
    # One narrow statement: the patent's number and owners, not the whole patent (its
    # claims included) as an ORM object plus its owners (applying a deal from the
    # indicators feed publishes one listing per patent).
    rows = (
        await session.execute(
            select(Patent.application_number, PatentOwner.org_id)
            .outerjoin(PatentOwner, PatentOwner.patent_id == Patent.id)
            .where(Patent.id == listing.patent_id)
        )
    ).all()
    assert rows, f"listing {listing.id} names no stored patent"
    owners = sorted(org for _, org in rows if org is not None)
    await feed.append(
        session,
        FeedEntry,
        [("listing", str(listing.id), "upsert", listing_payload(listing, rows[0][0], owners))],
    )


async def reevaluate_listings(session: AsyncSession, patent_ids: list[int]) -> None:
    """After a legal-status change: pooled listings lapse; lapsed ones come back if valid."""
    for chunk in _chunks(patent_ids, 5000):
        listings = (
            await session.scalars(
                select(Listing).where(Listing.patent_id.in_(chunk)).order_by(Listing.patent_id)
            )  # row locks in patent-id order, as every listing writer takes them
        ).all()
        for listing in listings:
            patent = await session.get(Patent, listing.patent_id)
            assert patent is not None
            reasons = await ineligibility(session, patent)
            if listing.status in POOLED and reasons:
                await set_listing_status(session, listing, "lapsed", "; ".join(reasons))
            elif listing.status == "lapsed" and not reasons:
                await set_listing_status(session, listing, "listed", "patent valid again")


def _in(column: Any, values: list[Any], session: AsyncSession) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of thousands."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        item = Text() if isinstance(values[0], str) else BigInteger()
        return column == func.any(literal(values, ARRAY(item)))
    return column.in_(values)


def _chunks(seq: list[Any], n: int) -> list[list[Any]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]

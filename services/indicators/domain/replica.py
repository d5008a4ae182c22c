"""Apply upstream feed entries to the local copies (idempotent; last write wins).

Catalog feed: `organisation`, `patent`, `listing` (other entities are ignored).
Matching feed: `need`, `lead`.
Organisations keep a version history so a deal can freeze its parties' attributes
as they were at the deal's effective date; listings keep their state history so the
pool can be counted at any past date.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from itertools import groupby
from typing import Any

import httpx
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.indicators.domain.common import aware, normalise_appno, parse_date, parse_dt
from services.indicators.domain.ledger import refreeze_deals_of
from services.indicators.models import Lead, Listing, Need, Org, OrgVersion, Patent, PoolEvent
from shared.bizdate import business_date, day_start_utc
from shared.db import dialect_insert, upsert_rows
from shared.feed import FeedConsumer, utcnow

log = logging.getLogger("tjp.indicators.replica")
POOLED = ("listed", "negotiating")
# A feed whose consumer applied a page this recently may be bringing what a deal names.
FEED_BUSY_WITHIN = 1.0
_VERSIONED = ("name", "kind", "district", "in_tianjin", "is_sme")


def org_attrs(p: dict[str, Any]) -> dict[str, Any]:
    district = p.get("district")
    return {
        "name": p.get("name") or "",
        "kind": p.get("kind") or "other",
        "district": district,
        "province": p.get("province"),
        "in_tianjin": bool(p["in_tianjin"]) if "in_tianjin" in p else district is not None,
        "is_sme": bool(p.get("is_sme")),
    }


async def apply_org(session: AsyncSession, p: dict[str, Any], feed_id: int | None = None) -> Org:
    org_id = int(p["id"])
    session.info.get(PAGE_ORGS, {}).pop(org_id, None)  # looked up afresh from here on
    attrs = org_attrs(p)
    at = parse_dt(p.get("updated_at")) or utcnow()
    org = await session.get(Org, org_id)
    if org is None:
        org = Org(id=org_id, updated_at=at, **attrs)
        session.add(org)
        changed = True
    else:
        changed = any(getattr(org, k) != attrs[k] for k in _VERSIONED)
        for k, v in attrs.items():
            setattr(org, k, v)
        org.updated_at = at
    if isinstance(p.get("timeline"), list) and p["timeline"]:
        await session.flush()
        since = await replace_versions(session, org_id, p["timeline"], feed_id)
        if since is not None:
            await refreeze_deals_of(session, org_id, since)
    elif changed:
        session.add(
            OrgVersion(
                org_id=org_id,
                valid_from=at,
                source_feed_id=feed_id,
                **{k: attrs[k] for k in _VERSIONED},
            )
        )
    await session.flush()
    return org


# Versions with no date hold since always (the organisation's first known state).
SINCE_ALWAYS = datetime(1900, 1, 1, tzinfo=UTC)


async def replace_versions(
    session: AsyncSession, org_id: int, timeline: list[dict[str, Any]], feed_id: int | None
) -> date | None:
    """Make the organisation's versions the catalog's dated timeline (valid from the
    start of each effective day, Tianjin time). Returns the first day on which anything
    differs from before (None: nothing did), so deals from then on are judged again."""
    old = (await session.scalars(select(OrgVersion).where(OrgVersion.org_id == org_id))).all()
    new: list[OrgVersion] = []
    for entry in timeline:
        start = entry.get("effective_from")
        district = entry.get("district")
        new.append(
            OrgVersion(
                org_id=org_id,
                valid_from=day_start_utc(date.fromisoformat(start)) if start else SINCE_ALWAYS,
                source_feed_id=feed_id,
                name=entry.get("name") or "",
                kind=entry.get("kind") or "other",
                district=district,
                in_tianjin=bool(entry.get("in_tianjin", district is not None)),
                is_sme=bool(entry.get("is_sme")),
            )
        )

    def key(v: OrgVersion) -> tuple[Any, ...]:
        return (aware(v.valid_from), *(getattr(v, k) for k in _VERSIONED))

    before, after = {key(v) for v in old}, {key(v) for v in new}
    if before == after:
        return None
    differing = sorted(k[0] for k in before ^ after)
    for v in old:
        await session.delete(v)
    await session.flush()
    session.add_all(new)
    await session.flush()
    return business_date(differing[0])


def patent_attrs(p: dict[str, Any]) -> dict[str, Any] | None:
    appno = normalise_appno(str(p.get("application_number") or "")) or p.get("application_number")
    if not appno:
        return None
    industries = [str(i) for i in (p.get("industries") or [])]
    return {
        "id": int(p["id"]),
        "application_number": appno,
        "patent_type": p.get("patent_type"),
        "title": (p.get("title") or "")[:500],
        "industries": industries,
        "main_industry": industries[0] if industries else "",
        "owner_org_ids": [int(o) for o in (p.get("owner_org_ids") or [])],
        "legal_status": p.get("legal_status"),
        "application_date": parse_date(p.get("application_date")),
        "grant_date": parse_date(p.get("grant_date")),
        "expiry_date": parse_date(p.get("expiry_date")),
    }


def _patent_rows(payloads: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a page's patents leave, as applying them one at a time would: the last entry
    for an id wins, and so does the last for an application number (a patent re-created
    upstream under a new id keeps one row per number)."""
    by_id: dict[int, dict[str, Any]] = {}
    for attrs in (patent_attrs(p) for p in payloads):
        if attrs is not None:
            by_id.pop(attrs["id"], None)  # moved to the end: its place is its last entry's
            by_id[attrs["id"]] = attrs
    by_number: dict[str, dict[str, Any]] = {}
    for attrs in by_id.values():
        by_number.pop(attrs["application_number"], None)
        by_number[attrs["application_number"]] = attrs
    return list(by_number.values())


async def apply_patents(session: AsyncSession, payloads: Iterable[dict[str, Any]]) -> list[int]:
    """Upsert a page's patents in two statements, whatever the mix of new and changed ones
    (the ORM wrote a changed patent with an UPDATE of its own); returns their ids.

    An insert that a deal's `insert_missing` made meanwhile is simply updated, where the
    ORM's insert failed the page on the unique key and the page was tried again."""
    rows = _patent_rows(payloads)
    if not rows:
        return []
    # A number now held by another id: that patent was re-created upstream.
    await session.execute(
        delete(Patent)
        .where(Patent.application_number.in_([r["application_number"] for r in rows]))
        .where(Patent.id.not_in([r["id"] for r in rows]))
        .execution_options(synchronize_session=False)
    )
    await upsert_rows(session, Patent.__table__, rows)
    return [r["id"] for r in rows]


NEW_LISTINGS = "replica_new_listings"
PAGE_ORGS = "replica_page_orgs"
PAGE_LISTINGS = "replica_page_listings"


async def _load_listings(session: AsyncSession, payloads: list[dict[str, Any]]) -> None:
    """One query for a page's listings: the known ones are held for `apply_listing`, the
    others noted as new, so it needs no lookup by id for either."""
    ids = {int(p["id"]) for p in payloads}
    if not ids:
        return
    # Held here (the session holds rows only weakly): apply_listing needs no query for any.
    found = {li.id: li for li in await session.scalars(select(Listing).where(Listing.id.in_(ids)))}
    session.info[PAGE_LISTINGS] = found
    session.info[NEW_LISTINGS] = ids - found.keys()


async def apply_patent(session: AsyncSession, p: dict[str, Any]) -> Patent | None:
    """`apply_patents` for one patent, read back as the session's object."""
    ids = await apply_patents(session, [p])
    return await session.get(Patent, ids[0], populate_existing=True) if ids else None


async def _owner_district(session: AsyncSession, owner_ids: list[int]) -> str | None:
    # The session holds rows only weakly: keep the page's organisations, or every listing
    # would look its owner up again (and flush the page's pending rows one at a time).
    seen: dict[int, Org | None] = session.info.setdefault(PAGE_ORGS, {})
    for oid in owner_ids:
        if oid not in seen:
            seen[oid] = await session.get(Org, oid)
        org = seen[oid]
        if org is not None and org.district:
            return org.district
    return None


async def apply_listing(session: AsyncSession, p: dict[str, Any], rechain: set[int]) -> Listing:
    """`rechain`: gets the listing's id when its older events need chaining again."""
    owners = [int(o) for o in (p.get("owner_org_ids") or [])]
    first = parse_dt(p.get("first_listed_at")) or utcnow()
    # When the current status took effect: a migrated pool's real date, not arrival time.
    updated = parse_dt(p.get("status_since")) or parse_dt(p.get("updated_at")) or first
    status = p.get("status") or "listed"
    district = await _owner_district(session, owners)
    appno = normalise_appno(str(p.get("application_number") or "")) or str(
        p.get("application_number") or ""
    )
    lid = int(p["id"])
    new_ids: set[int] = session.info.get(NEW_LISTINGS, set())
    existing: Listing | None = session.info.get(PAGE_LISTINGS, {}).get(lid)
    if lid in new_ids:  # not here (_load_listings): no lookup
        new_ids.discard(lid)
    elif existing is None:
        existing = await session.get(Listing, lid)
    new = existing is None
    listing = existing if existing is not None else Listing(id=lid, status=status)
    if new:
        session.add(listing)
        session.info.setdefault(PAGE_LISTINGS, {})[lid] = listing
    previous = None if existing is None else existing.status
    listing.patent_id = int(p.get("patent_id") or 0)
    listing.application_number = appno
    listing.owner_org_ids = owners
    listing.owner_district = district
    listing.first_listed_at = first
    listing.updated_at = updated
    listing.status = status
    events = []
    if new and status not in POOLED:
        # first seen already out of the pool: it was pooled from first_listed_at
        events.append(PoolEvent(listing_id=listing.id, status="listed", at=first,
                                owner_district=district))  # fmt: skip
    if new or previous != status:
        events.append(
            PoolEvent(
                listing_id=listing.id,
                status=status,
                at=first if new and status in POOLED else updated,
                owner_district=district,
            )
        )
    session.add_all(events)
    if new:  # its only events are these: chain them here, no query
        _chain(sorted(events, key=lambda e: aware(e.at)))
    elif events:  # chained with the page's others by apply_catalog_entries
        rechain.add(listing.id)
    return listing


async def _chain_events(session: AsyncSession, listing_ids: set[int]) -> None:
    """Each state ends when the next one (by time) begins: one query for the listings."""
    if not listing_ids:
        return
    events = (
        await session.scalars(
            select(PoolEvent)
            .where(PoolEvent.listing_id.in_(listing_ids))
            .order_by(PoolEvent.listing_id, PoolEvent.at, PoolEvent.id)
        )
    ).all()
    for _, group in groupby(events, key=lambda e: e.listing_id):
        _chain(list(group))


def _chain(events: Sequence[PoolEvent]) -> None:
    for cur, nxt in zip(events, [*events[1:], None], strict=True):
        cur.ended_at = nxt.at if nxt is not None else None


async def apply_catalog_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    await _load_listings(session, [e["payload"] for e in entries if e["entity"] == "listing"])
    rechain: set[int] = set()
    upserts = [e for e in entries if e.get("op") in (None, "upsert")]
    # A patent's row depends on nothing else in the copy: a page's patents go in one upsert.
    await apply_patents(session, [e["payload"] for e in upserts if e["entity"] == "patent"])
    for e in upserts:
        entity, payload = e["entity"], e["payload"]
        if entity == "organisation":
            await apply_org(session, payload, e.get("id"))
        elif entity == "listing":
            await apply_listing(session, payload, rechain)
    await _chain_events(session, rechain)


async def apply_matching_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    for e in entries:
        p = e["payload"]
        if e["entity"] == "need":
            need = await session.get(Need, str(p["id"]))
            if need is None:
                need = Need(id=str(p["id"]))
                session.add(need)
            need.org_id = p.get("org_id")
            need.title = (p.get("title") or "")[:500]
            need.industry = p.get("industry")
            need.status = p.get("status") or "open"
            need.created_at = parse_dt(p.get("created_at")) or utcnow()
        elif e["entity"] == "lead":
            lead = await session.get(Lead, str(p["id"]))
            if lead is None:
                lead = Lead(id=str(p["id"]))
                session.add(lead)
            lead.need_id = str(p["need_id"]) if p.get("need_id") is not None else None
            lead.patent_id = p.get("patent_id")
            raw = str(p.get("application_number") or "")
            lead.application_number = normalise_appno(raw) or raw or None
            lead.sme_org_id = p.get("sme_org_id")
            lead.status = p.get("status") or "open"
            lead.created_at = parse_dt(p.get("created_at")) or utcnow()
            lead.updated_at = parse_dt(p.get("updated_at"))
        await session.flush()


async def insert_missing(
    session: AsyncSession, orgs: Iterable[dict[str, Any]], patents: Iterable[dict[str, Any]]
) -> None:
    """Add organisations and patents the local copies lack, leaving any row that is there
    (or is being written by the feed consumer) alone: the feed stays the one that updates
    them. Two requests naming the same new patent both succeed instead of one failing on
    the unique key; each waits at most for the other's short transaction."""
    insert = dialect_insert(session)
    now = utcnow()
    for p in orgs:
        attrs = org_attrs(p)
        at = parse_dt(p.get("updated_at")) or now
        done = await session.execute(
            insert(Org).values(id=int(p["id"]), updated_at=at, **attrs).on_conflict_do_nothing()
        )
        if getattr(done, "rowcount", 0) == 1:  # ours: its first known version
            session.add(OrgVersion(org_id=int(p["id"]), valid_from=at,
                                   **{k: attrs[k] for k in _VERSIONED}))  # fmt: skip
    rows = [a for a in (patent_attrs(p) for p in patents) if a is not None]
    if rows:
        await session.execute(insert(Patent).values(rows).on_conflict_do_nothing())


class CatalogLookup:
    """Fetches from the catalog the organisations and patents its feed has not brought yet.

    Fetching happens in `RequestLookup.prefetch`, which a route calls before it touches
    its session: no HTTP call is ever made while the request's write transaction is open
    (a slow catalog would otherwise hold locks — on SQLite the only write lock). What it
    fetched is stored at once in a short transaction of its own (`insert_missing`)."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        write_sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.write_sessionmaker = write_sessionmaker
        # Ids and numbers known to be in the local copies (a deal then skips the lookup).
        self.known_orgs: set[int] = set()
        self.known_patents: set[str] = set()
        # Requests that had to look in the local copies, and calls made to the catalog:
        # how often the feed had not yet brought what a deal names (/metrics).
        self.checks_total = 0
        self.fetches_total = 0
        self.feed_arrivals_total = 0
        # The catalog feed's consumer while it is followed, and how long a request waits
        # for it to bring what the request names before asking the catalog (`follow`).
        self.feed: FeedConsumer | None = None
        self.feed_wait = 0.0
        # After this long waiting for the feed, a request also asks the catalog, and takes
        # whichever answers first (a hedged request: the feed's slowest arrivals made the
        # slowest deals, 88 % of the mixed load's slowest 1 %).
        self.hedge_after = 0.0
        self._arrived = asyncio.Event()

    def follow(self, feed: FeedConsumer, wait: float, hedge_after: float) -> None:
        self.feed, self.feed_wait, self.hedge_after = feed, wait, min(hedge_after, wait)

    def feed_busy(self) -> bool:
        """The consumer applied a page in the last `FEED_BUSY_WITHIN` seconds."""
        return self.feed is not None and time.monotonic() - self.feed.applied_at < FEED_BUSY_WITHIN

    def remember(self, orgs: set[int], patents: set[str], limit: int = 500_000) -> None:
        if len(self.known_patents) + len(patents) > limit:  # bounded memory: start over
            self.known_orgs.clear()
            self.known_patents.clear()
        self.known_orgs |= orgs
        self.known_patents |= patents
        self._arrived.set()  # wake the requests waiting in `wait_for_feed`
        self._arrived = asyncio.Event()

    async def wait_for_feed(self, orgs: set[int], patents: set[str], seconds: float) -> bool:
        """Whether the catalog feed consumer brought all of `orgs` and `patents` within
        `seconds`. Waits only while that consumer is busy: something committed in the
        catalog moments ago (a patent uploaded just before a deal names it) is then on its
        way, and usually arrives sooner than a request to the busy catalog would answer. On
        a quiet feed an unknown number is not coming; the request asks the catalog at once."""
        if seconds <= 0 or not self.feed_busy():
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (orgs - self.known_orgs) or (patents - self.known_patents):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return False
        self.feed_arrivals_total += 1
        return True

    def for_request(self) -> RequestLookup:
        return RequestLookup(self)

    def remember_on_commit(self, session: AsyncSession, entries: list[dict[str, Any]]) -> None:
        """What the catalog feed consumer replicates needs no check before a deal once its
        transaction has committed (a deal on a pooled patent then skips a read session:
        three round trips of fourteen)."""
        upserts = [e for e in entries if e.get("op") in (None, "upsert")]
        orgs = {int(e["payload"]["id"]) for e in upserts if e["entity"] == "organisation"}
        numbers = {
            str(attrs["application_number"])
            for e in upserts
            if e["entity"] == "patent" and (attrs := patent_attrs(e["payload"])) is not None
        }
        if orgs or numbers:
            event.listen(
                session.sync_session,
                "after_commit",
                lambda _session: self.remember(orgs, numbers),
                once=True,
            )

    async def fetch(self, path: str) -> dict[str, Any] | None:
        assert self.client is not None
        self.fetches_total += 1
        try:
            r = await self.client.get(path)
        except httpx.HTTPError as exc:
            log.warning("catalog lookup %s failed: %s", path, exc)
            return None
        return r.json() if r.status_code == 200 else None


class RequestLookup:
    """One request's view: local copies first, then what `prefetch` brought."""

    def __init__(self, source: CatalogLookup) -> None:
        self.source = source
        self.orgs: dict[int, dict[str, Any]] = {}
        self.patents: dict[str, dict[str, Any]] = {}

    async def prefetch(self, org_ids: Iterable[int] = (), appnos: Iterable[str] = ()) -> None:
        """Fetch what the local copies lack. Call before the request's transaction."""
        src = self.source
        # Replicated rows stay (by id and by number), so what was seen once is not asked again.
        org_ids = sorted(set(org_ids) - src.known_orgs)
        appnos = sorted(set(appnos) - src.known_patents)
        if src.client is None or src.sessionmaker is None or not (org_ids or appnos):
            return
        src.checks_total += 1
        async with src.sessionmaker() as s:  # a short read, closed before any HTTP call
            known_orgs = set(await s.scalars(select(Org.id).where(Org.id.in_(org_ids)))) \
                if org_ids else set()  # fmt: skip
            known_patents = set(await s.scalars(
                select(Patent.application_number).where(Patent.application_number.in_(appnos))
            )) if appnos else set()  # fmt: skip
        src.remember(known_orgs, known_patents)
        limit = asyncio.Semaphore(8)

        async def get(path: str) -> dict[str, Any] | None:
            async with limit:
                return await src.fetch(path)

        missing_orgs = [o for o in org_ids if o not in known_orgs]
        missing_patents = [a for a in appnos if a not in known_patents]
        if not (missing_orgs or missing_patents):
            return
        # One wait for the feed; after `hedge_after` the catalog is asked as well (a hedged
        # request), and whichever brings everything first is used.
        feed = asyncio.ensure_future(
            src.wait_for_feed(set(missing_orgs), set(missing_patents), src.feed_wait)
        )
        fetching: asyncio.Future[list[dict[str, Any] | None]] | None = None
        try:
            await asyncio.wait({feed}, timeout=src.hedge_after)
            if feed.done() and feed.result():
                return  # committed to the local copies by the feed consumer
            fetching = asyncio.ensure_future(asyncio.gather(
                *(get(f"/v1/organisations/{o}") for o in missing_orgs),
                *(get(f"/v1/patents/{a}") for a in missing_patents),
            ))  # fmt: skip
            await asyncio.wait({feed, fetching}, return_when=asyncio.FIRST_COMPLETED)
            if feed.done() and feed.result():
                return
            found = await fetching
        finally:  # also when the caller goes away: nothing is left running
            for task in (feed, fetching):
                if task is not None and not task.done():
                    task.cancel()
        for oid, body in zip(missing_orgs, found[: len(missing_orgs)], strict=True):
            if body is not None:
                self.orgs[oid] = body
        for appno, body in zip(missing_patents, found[len(missing_orgs) :], strict=True):
            if body is None:
                continue
            if "owner_org_ids" not in body and isinstance(body.get("owners"), list):
                body["owner_org_ids"] = [
                    o["id"] if isinstance(o, dict) else o for o in body["owners"]
                ]
            if "id" in body and "application_number" in body:
                self.patents[appno] = body
        # What the feed committed meanwhile (a hedged fetch) is not written again: the
        # insert would wait on nothing new, or on the consumer's transaction.
        orgs = [body for oid, body in self.orgs.items() if oid not in src.known_orgs]
        patents = [body for no, body in self.patents.items() if no not in src.known_patents]
        if src.write_sessionmaker is not None and (orgs or patents):
            async with src.write_sessionmaker() as s, s.begin():
                await insert_missing(s, orgs, patents)
            src.remember(set(self.orgs), set(self.patents))

    async def org(self, session: AsyncSession, org_id: int) -> Org | None:
        return (await self.orgs_by_id(session, [org_id])).get(org_id)

    async def orgs_by_id(self, session: AsyncSession, org_ids: Iterable[int]) -> dict[int, Org]:
        """`org` for several organisations in one query (those known nowhere are absent)."""
        wanted = set(org_ids)
        if not wanted:
            return {}
        found = {o.id: o for o in await session.scalars(select(Org).where(Org.id.in_(wanted)))}
        for oid in sorted(wanted - found.keys()):
            if oid in self.orgs:
                found[oid] = await apply_org(session, self.orgs[oid])
        return found

    async def patents_by_number(
        self, session: AsyncSession, appnos: Iterable[str]
    ) -> dict[str, Patent]:
        """`patent` for several application numbers in one query."""
        wanted = set(appnos)
        if not wanted:
            return {}
        rows = await session.scalars(select(Patent).where(Patent.application_number.in_(wanted)))
        found = {p.application_number: p for p in rows}
        for appno in sorted(wanted - found.keys()):
            if appno in self.patents and (
                patent := await apply_patent(session, self.patents[appno])
            ):
                found[appno] = patent
        return found

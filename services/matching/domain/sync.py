"""Following the catalog feed: keep a copy of patents/listings/organisations and the index.

The feed handler only writes rows (in the consumer's transaction) and stamps each
affected patent with `index_pos` = the feed id of the change. After the page commits,
`PatentIndexer.sync()` re-indexes the patents whose `index_pos` is beyond the index's own
position. A restart is the same path: load the last snapshot (with its position) and
sync the rows changed since.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.matching.domain.cards import ABSTRACT_HEAD, CardStore, card_of, owner_of
from services.matching.domain.codes import (
    DEAD_LEGAL_STATUSES,
    POOLED,
    industry_mask,
    mode_mask,
    patent_type_code,
)
from services.matching.domain.index import Attrs, MatchIndex
from services.matching.domain.text import analyse_patent
from services.matching.models import FeedCursor, Listing, Organisation, Patent, PatentOwner
from shared.db import upsert_rows
from shared.feed import FeedConsumer
from shared.regions import TIANJIN_DISTRICTS

log = logging.getLogger("tjp.matching.sync")
DISTRICT_BIT = {k: i for i, k in enumerate(TIANJIN_DISTRICTS)}
PATENT, LISTING, OWNER = (cast(Table, m.__table__) for m in (Patent, Listing, PatentOwner))


def district_mask(districts: list[str]) -> int:
    return sum(1 << DISTRICT_BIT[d] for d in set(districts) if d in DISTRICT_BIT)


# ---------------------------------------------------------------- feed handler


async def apply_catalog_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Write a page of feed entries. Runs of patent and listing entries (nearly all of a
    page) are written a few statements per run, not several per entry; an organisation
    entry ends a run, since its district change stamps patents written before it."""
    run: list[dict[str, Any]] = []
    for e in entries:
        kind = e["entity"]
        if kind in ("patent", "listing"):
            run.append(e)
        elif kind == "organisation":
            await _apply_run(session, run)
            run = []
            await _apply_org(session, e["payload"], int(e["id"]))
    await _apply_run(session, run)
    await session.flush()


async def _apply_org(session: AsyncSession, p: dict[str, Any], pos: int) -> None:
    org = await session.get(Organisation, int(p["id"]))
    if org is None:
        org = Organisation(id=int(p["id"]))
        session.add(org)
        changed = False
    else:
        changed = org.district != p.get("district")
    org.kind, org.name = p["kind"], p["name"]
    org.district, org.province = p.get("district"), p.get("province")
    org.is_sme = bool(p.get("is_sme"))
    org.feed_pos = pos
    if changed:  # the owner-district filter of its patents changes
        await session.flush()
        owned = select(PatentOwner.patent_id).where(PatentOwner.org_id == org.id)
        await session.execute(
            update(Patent).where(Patent.id.in_(owned)).values(index_pos=pos),
            execution_options={"synchronize_session": False},
        )


def _patent_row(p: dict[str, Any], pos: int) -> dict[str, Any]:
    return {
        "id": int(p["id"]),
        "application_number": p["application_number"],
        "patent_type": p.get("patent_type") or "invention",
        "title": p.get("title") or "",
        "abstract": p.get("abstract") or "",
        "claims": p.get("claims"),
        "ipc_codes": list(p.get("ipc_codes") or []),
        "industries": list(p.get("industries") or []),
        "patentees": list(p.get("patentees") or []),
        "owner_org_ids": sorted({int(o) for o in p.get("owner_org_ids") or []}),
        "legal_status": p.get("legal_status") or "pending",
        "version": int(p.get("version") or 1),
        "index_pos": pos,
    }


def _listing_row(p: dict[str, Any], pos: int) -> dict[str, Any]:
    return {
        "id": int(p["id"]),
        "patent_id": int(p["patent_id"]),
        "status": p["status"],
        "modes": list(p.get("modes") or []),
        "price_cny": p.get("price_cny"),
        "negotiable": bool(p.get("negotiable")),
        "zero_price": bool(p.get("zero_price")),
        "use_first_pay_later": bool(p.get("use_first_pay_later")),
        "deferred_licence_fee": bool(p.get("deferred_licence_fee")),
        "feed_pos": pos,
    }


async def _apply_run(session: AsyncSession, run: list[dict[str, Any]]) -> None:
    """Patent and listing entries in feed order. Each patent ends stamped with the feed id
    of the last entry that touched it, as if the entries had been applied one by one."""
    if not run:
        return
    patents: dict[int, dict[str, Any]] = {}  # the last version of each, by id
    listings: dict[int, tuple[dict[str, Any], int]] = {}
    stamp: dict[int, int] = {}
    for e in run:
        p, pos = e["payload"], int(e["id"])
        if e["entity"] == "patent":
            patents[int(p["id"])] = p
            stamp[int(p["id"])] = pos
        else:
            listings[int(p["id"])] = (p, pos)
            stamp[int(p["patent_id"])] = pos
    if patents:
        rows = [_patent_row(p, stamp[pid]) for pid, p in patents.items()]
        await upsert_rows(session, PATENT, rows)
        await session.execute(delete(OWNER).where(OWNER.c.patent_id.in_(list(patents))))
        owners = [{"patent_id": r["id"], "org_id": o} for r in rows for o in r["owner_org_ids"]]
        if owners:
            await session.execute(insert(OWNER), owners)
    if listings:
        await upsert_rows(session, LISTING, [_listing_row(p, pos) for p, pos in listings.values()])
        stamps = [{"pid": k, "pos": v} for k, v in stamp.items() if k not in patents]
        if stamps:
            await session.execute(
                update(PATENT)
                .where(PATENT.c.id == bindparam("pid"))
                .values(index_pos=bindparam("pos")),
                stamps,
            )


# ---------------------------------------------------------------- index upkeep


def patent_attrs(pat: Patent, listing: Listing | None, owner_districts: list[str]) -> Attrs:
    return Attrs(
        pooled=listing is not None and listing.status in POOLED,
        zero_price=bool(listing and listing.zero_price),
        patent_type=patent_type_code(pat.patent_type),
        modes=mode_mask(listing.modes) if listing else 0,
        industries=industry_mask(pat.industries or []),
        districts=district_mask(owner_districts),
    )


class PatentIndexer:
    """Owns the patent index, its snapshot file and its catch-up from the database, and the
    hit cards (`domain/cards.py`) that go with the index."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        index_dir: str | Path,
        chunk: int = 2000,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.dir = Path(index_dir)
        self.chunk = chunk
        self.index = MatchIndex()
        self.cards = CardStore()
        self.saved_position = -1
        self.lock = asyncio.Lock()
        self.last_sync_at: float | None = None
        self.loaded_snapshot_position: int | None = None
        self.fresh = True  # nothing indexed yet: the first sync includes position 0

    @property
    def snapshot_path(self) -> Path:
        return self.dir / "patents.npz"

    async def start(self) -> None:
        """Load the snapshot if it is usable, then catch up with the database."""
        async with self.sessionmaker() as session:
            cursor = await session.get(FeedCursor, "catalog")
            db_position = cursor.position if cursor else 0
        if self.snapshot_path.exists():
            try:
                idx = await asyncio.to_thread(MatchIndex.load, self.snapshot_path)
                if idx.position <= db_position:
                    self.index = idx
                    self.saved_position = idx.position
                    self.loaded_snapshot_position = idx.position
                    log.info("index snapshot loaded at position %s", idx.position)
                else:
                    log.warning("index snapshot is ahead of the database; rebuilding")
            except Exception:
                log.exception("index snapshot unreadable; rebuilding")
        if self.loaded_snapshot_position is not None:
            # The snapshot reflects every row stamped up to its position: load their cards;
            # `sync` re-indexes only the rows stamped after it.
            self.fresh = False
            await self._load_cards(self.index.position)
        await self.sync(db_position)

    async def _load_cards(self, upto: int, chunk: int = 10_000) -> None:
        """Cards of the patents the snapshot already reflects (`sync` builds the others)."""
        cols = (
            Patent.id,
            Patent.application_number,
            Patent.title,
            Patent.patent_type,
            func.substr(Patent.abstract, 1, ABSTRACT_HEAD + 1).label("abstract"),
            Patent.ipc_codes,
            Patent.industries,
            Patent.owner_org_ids,
            Patent.legal_status,
            Listing.id.label("listing_id"),
            Listing.status,
            Listing.modes,
            Listing.price_cny,
            Listing.negotiable,
            Listing.zero_price,
            Listing.use_first_pay_later,
            Listing.deferred_licence_fee,
        )
        after = None
        async with self.sessionmaker() as session:
            while True:
                stmt = (
                    select(*cols)
                    .outerjoin(Listing, Listing.patent_id == Patent.id)
                    .where(Patent.index_pos <= upto)
                    .order_by(Patent.id)
                    .limit(chunk)
                )
                if after is not None:
                    stmt = stmt.where(Patent.id > after)
                rows = (await session.execute(stmt)).all()
                cards = self.cards.patents
                for r in rows:
                    if r.legal_status not in DEAD_LEGAL_STATUSES:
                        li = _ListingRow(r) if r.listing_id is not None else None
                        cards[r.id] = card_of(r, li)
                if len(rows) < chunk:
                    break
                after = rows[-1].id
        log.info("%s hit cards loaded", len(self.cards))

    async def _sync_orgs(self, session: AsyncSession, upto: int) -> None:
        """Owners changed since the last sync (name, kind, district), by their feed_pos."""
        rows = await session.scalars(
            select(Organisation).where(
                Organisation.feed_pos > self.cards.org_position, Organisation.feed_pos <= upto
            )
        )
        for o in rows:
            self.cards.orgs[o.id] = owner_of(o)
        self.cards.org_position = max(self.cards.org_position, upto)

    async def sync(self, upto: int) -> int:
        """Re-index patents stamped after the index's position; return how many.

        Rows stamped with the position itself were indexed by the sync that reached it
        (it ran after their page committed), so only a fresh index starts at and including
        position 0."""
        async with self.lock:
            n = 0
            async with self.sessionmaker() as session:
                await self._sync_orgs(session, upto)
            after_pos, after_id = self.index.position, (-1 if self.fresh else 2**62)
            while True:
                async with self.sessionmaker() as session:
                    rows = list(
                        await session.scalars(
                            select(Patent)
                            .where(
                                or_(
                                    Patent.index_pos > after_pos,
                                    and_(Patent.index_pos == after_pos, Patent.id > after_id),
                                ),
                                Patent.index_pos <= upto,
                            )
                            .order_by(Patent.index_pos, Patent.id)
                            .limit(self.chunk)
                        )
                    )
                    if not rows:
                        break
                    docs = await self._documents(session, rows)
                await asyncio.to_thread(self._apply, docs)
                n += len(rows)
                after_pos, after_id = rows[-1].index_pos, rows[-1].id
                if len(rows) < self.chunk:
                    break
            self.index.position = max(self.index.position, upto)
            self.fresh = False
            self.last_sync_at = time.time()
            return n

    async def reindex_stamped(self, pos: int) -> int:
        """Re-index the patents (and refresh the owners) a replayed feed entry stamped: it
        keeps its old feed id, which `sync` has already passed."""
        async with self.lock:
            async with self.sessionmaker() as session:
                for o in await session.scalars(
                    select(Organisation).where(Organisation.feed_pos == pos)
                ):
                    self.cards.orgs[o.id] = owner_of(o)
                rows = list(await session.scalars(select(Patent).where(Patent.index_pos == pos)))
                docs = await self._documents(session, rows) if rows else []
            if docs:
                await asyncio.to_thread(self._apply, docs)
            return len(docs)

    async def _documents(self, session: AsyncSession, rows: list[Patent]) -> list[tuple[Any, ...]]:
        ids = [r.id for r in rows]
        listings = {
            li.patent_id: li
            for li in await session.scalars(select(Listing).where(Listing.patent_id.in_(ids)))
        }
        owner_ids = {o for r in rows for o in r.owner_org_ids}
        districts = {
            o.id: o.district
            for o in await session.scalars(
                select(Organisation).where(Organisation.id.in_(owner_ids))
            )
        }
        out = []
        for r in rows:
            alive = r.legal_status not in DEAD_LEGAL_STATUSES
            ds = [d for o in r.owner_org_ids if (d := districts.get(o))]
            li = listings.get(r.id)
            out.append(
                (r.id, alive, r.title, r.abstract, r.claims, r.ipc_codes,
                 patent_attrs(r, li, ds), card_of(r, li) if alive else None)
            )  # fmt: skip
        return out

    def _apply(self, docs: list[tuple[Any, ...]]) -> None:
        ups = [
            (key, analyse_patent(title, abstract, claims, ipc), attrs)
            for key, alive, title, abstract, claims, ipc, attrs, _ in docs
            if alive
        ]
        # Card before index entry (a hit always finds its card); index entry gone before the
        # card. A hit whose card is missing is skipped.
        cards = self.cards.patents
        for d in docs:
            if d[1]:
                cards[d[0]] = d[7]
        self.index.upsert_many(ups)
        dead = [d[0] for d in docs if not d[1]]
        if dead:
            self.index.remove(dead)
            for key in dead:
                cards.pop(key, None)

    async def snapshot(self, force: bool = False) -> bool:
        if not force and self.index.position == self.saved_position:
            return False
        position = self.index.position
        await asyncio.to_thread(self.index.save, self.dir, "patents")
        self.saved_position = position
        return True


class _ListingRow:
    """The listing columns of a joined row, under `Listing`'s attribute names."""

    __slots__ = ("id", "status", "modes", "price_cny", "negotiable", "zero_price",
                 "use_first_pay_later", "deferred_licence_fee")  # fmt: skip

    def __init__(self, r: Any) -> None:
        self.id = r.listing_id
        self.status, self.modes, self.price_cny = r.status, r.modes, r.price_cny
        self.negotiable, self.zero_price = r.negotiable, r.zero_price
        self.use_first_pay_later = r.use_first_pay_later
        self.deferred_licence_fee = r.deferred_licence_fee


class CatalogConsumer(FeedConsumer):
    """The shared consumer, plus: after each committed page, bring the index up to date."""

    def __init__(self, indexer: PatentIndexer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.indexer = indexer

    async def poll_once(self, wait: float = 0.0) -> int:
        n = await super().poll_once(wait)
        if self.indexer.index.position < self.position:
            await self.indexer.sync(self.position)
        return n

    async def replay(self, parked_id: int) -> dict[str, Any]:
        result = await super().replay(parked_id)
        if result["status"] == "replayed" and self.parked_model is not None:
            async with self.sessionmaker() as session:
                parked = await session.get(self.parked_model, parked_id)
            if parked is not None:
                result["reindexed"] = await self.indexer.reindex_stamped(parked.entry_id)
        return result

"""An in-memory character index over `patent_search.text`, so keyword search never scans.

Postings of every character (unigram) and every pair of adjacent characters (bigram) of
each patent's normalised title + abstract. A one-character keyword is answered by its
unigram postings, a two-character one by its bigram postings (both exact); a longer one by
intersecting its bigrams' postings — a superset, which SQL narrows with the same substring
test as before, so the index only ever shrinks the rows SQL looks at and results are the
ones the plain scan gives.

It lives beside the catalog and costs nothing on the write path: the catalog's own feed
(`feed_entry`, written in the same transaction as every `patent_search` change, ids in
commit order) says which patents changed since the index's position. A search first reads
those few patents' texts into a small delta (scanned directly); a backlog too big to take
inline (a large bulk upload) makes searches use the plain scan while a background task
rebuilds. The base is compact numpy (sorted gram codes, offsets, int32 document numbers):
about 4 bytes per distinct gram per patent.

When the delta grows past `seal_after` it is sealed into a segment of its own, built from
the texts already in memory and searched beside the base; the newest two sealed segments
are merged (again from their texts) while the older is no larger than the newer, so a
patent is rebuilt a few times (log2 of the sealed total) and a search looks at a handful
of segments. Only when the sealed patents outnumber the base (or `max_sealed`) is
everything rebuilt from the database, and the texts the segments keep are let go. Under
steady uploads (the mixed load uploads ~300 patents a second, 15 files of 20), sampling
the catalog showed whole rebuilds every 2,000 changes as its largest single cost, and
scanning a delta of up to 2,000 texts as a large part of each search's
(`bench/keyword_upkeep.py` measures the ways in isolation).

It also keeps each patent's dates (the catalog's date sorts), so a date-ordered page of a
common keyword is the first few candidates in that order rather than a sort of every match.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.catalog.models import PATENT_DATES, FeedEntry, Patent, PatentSearch
from shared.feed import local_feed_commits

log = logging.getLogger("tjp.catalog.keywords")

DOC_BITS = 22  # up to 4M patents per base; the gram code takes the 42 bits above
SEP = 0  # NUL never occurs in stored text (shared.guards refuses it)
ID_BITS = 32  # a date-order sort key is date ordinal << ID_BITS | patent id
# The date sorts the index can order by; a missing date sorts as NULL_DATE, as in SQL.
DATE_FIELDS = PATENT_DATES
NULL_DATE = date(1900, 1, 1)

Row = tuple[int, str, tuple[int, int, int]]  # patent id, text, date ordinals


def date_ordinals(values: tuple[date | None, ...]) -> tuple[int, int, int]:
    a, g, e = ((v or NULL_DATE).toordinal() for v in values)
    return a, g, e


def _select_rows() -> Any:
    return select(
        PatentSearch.patent_id,
        PatentSearch.text,
        *(getattr(Patent, f) for f in DATE_FIELDS),
    ).join(Patent, Patent.id == PatentSearch.patent_id)


def _row(r: Any) -> Row:
    return int(r[0]), str(r[1]), date_ordinals(tuple(r[2:5]))


def _rows(texts: TextRows) -> list[Row]:
    return [(pid, text, dates) for pid, (text, dates) in texts.items()]


def gram_codes(term: str) -> list[int]:
    """The codes of a keyword's grams: its one character, or its adjacent pairs."""
    cps = [ord(c) for c in term]
    if len(cps) == 1:
        return cps
    return [((a + 1) << 21) | b for a, b in zip(cps, cps[1:], strict=False)]


def _pairs(texts: list[str], first_doc: int) -> np.ndarray:
    """Sorted unique (gram code << DOC_BITS | document number) of a chunk of texts."""
    joined = "\x00".join(texts) + "\x00"
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
    doc = np.repeat(np.arange(first_doc, first_doc + len(texts), dtype=np.uint64), lengths)
    uni = cp != SEP
    bi = uni[:-1] & uni[1:]
    unigrams = (cp[uni] << DOC_BITS) | doc[uni]
    bigrams = ((((cp[:-1][bi] + 1) << 21) | cp[1:][bi]) << DOC_BITS) | doc[:-1][bi]
    # Sort and drop repeats by hand: numpy 2's np.unique hashes, 20x slower here.
    pairs = np.concatenate((unigrams, bigrams))
    pairs.sort()
    keep = np.empty(len(pairs), bool)
    keep[:1] = True
    np.not_equal(pairs[1:], pairs[:-1], out=keep[1:])
    return pairs[keep]


@dataclass
class Base:
    """Immutable postings over the patents read at build time."""

    ids: np.ndarray  # patent id per document number, ascending
    keys: np.ndarray  # sorted distinct gram codes
    starts: np.ndarray  # postings of keys[i] are docs[starts[i]:starts[i + 1]]
    docs: np.ndarray  # document numbers, ascending within each gram
    dates: np.ndarray  # (documents, len(DATE_FIELDS)) date ordinals
    order: np.ndarray  # per date field: document numbers in (date, id) order
    rank: np.ndarray  # per date field: each document's position in `order`

    @classmethod
    def build(cls, rows: list[Row], chunk: int = 5000) -> Base:
        rows = sorted(rows)
        if len(rows) >= 1 << DOC_BITS:
            raise ValueError(f"{len(rows)} patents exceed one keyword index base")
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if len(ids) and int(ids[-1]) >= 1 << ID_BITS:
            raise OverflowError(f"patent id {ids[-1]} exceeds {ID_BITS} bits")
        dates = np.array([r[2] for r in rows], dtype=np.int32).reshape(len(rows), len(DATE_FIELDS))
        parts = [_pairs([r[1] for r in rows[i : i + chunk]], i) for i in range(0, len(rows), chunk)]
        # Each part is sorted: a stable (merge) sort of the runs is far cheaper than a
        # general one, and the group boundaries come from one comparison pass.
        pairs = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        del parts
        pairs.sort(kind="stable")
        docs = (pairs & np.uint64((1 << DOC_BITS) - 1)).astype(np.int32)
        pairs >>= np.uint64(DOC_BITS)  # now the gram codes, in place
        bounds = np.flatnonzero(pairs[1:] != pairs[:-1]) + 1
        starts = np.concatenate(([0], bounds, [len(pairs)])).astype(np.int64)
        keys = pairs[starts[:-1]] if len(pairs) else pairs[:0]
        del pairs
        n = len(rows)
        # Documents are numbered in id order, so a stable sort by date keeps ids ascending
        # within a date: (date, id) order.
        order = np.zeros((len(DATE_FIELDS), n), np.int32)
        rank = np.zeros((len(DATE_FIELDS), n), np.int32)
        for c in range(len(DATE_FIELDS)):
            order[c] = np.argsort(dates[:, c], kind="stable")
            rank[c, order[c]] = np.arange(n, dtype=np.int32)
        return cls(ids, keys, starts, docs, dates, order, rank)

    def postings(self, code: int) -> np.ndarray:
        i = int(np.searchsorted(self.keys, code))
        if i == len(self.keys) or int(self.keys[i]) != code:
            return self.docs[:0]
        return self.docs[self.starts[i] : self.starts[i + 1]]

    def sorted_keys(self, docs: np.ndarray, column: int | None) -> np.ndarray:
        """Sort keys of ascending `docs`, ascending: the id, or date << ID_BITS | id.

        A date order costs one pass over a mask of every document (no sort): the
        documents were ranked by each date when the base was built."""
        if column is None:
            return self.ids[docs]
        mask = np.zeros(len(self.ids), bool)
        mask[self.rank[column][docs]] = True
        ordered = self.order[column][mask]
        return (self.dates[ordered, column].astype(np.int64) << ID_BITS) | self.ids[ordered]

    def candidates(self, term: str) -> np.ndarray:
        """Document numbers that contain every gram of `term`."""
        lists = sorted((self.postings(c) for c in set(gram_codes(term))), key=len)
        out = lists[0]
        for other in lists[1:]:
            if not len(out):
                break
            out = np.intersect1d(out, other, assume_unique=True)
        return out

    @property
    def nbytes(self) -> int:
        parts = (self.ids, self.keys, self.starts, self.docs, self.dates, self.order, self.rank)
        return int(sum(a.nbytes for a in parts))


TextRows = dict[int, tuple[str, tuple[int, int, int]]]  # patent id -> (text, date ordinals)


@dataclass(eq=False)
class Segment:
    """Postings and which of their documents are stale (the patent changed since: its
    current text is in a later segment or the delta). A sealed segment keeps its texts
    for merging; the base, read from the database, does not."""

    postings: Base
    stale: np.ndarray
    rows: TextRows | None = None

    @classmethod
    def of(cls, postings: Base, rows: TextRows | None = None) -> Segment:
        return cls(postings, np.zeros(len(postings.ids), bool), rows)

    @property
    def live(self) -> int:
        return len(self.postings.ids) - int(self.stale.sum())

    def mark_stale(self, pids: np.ndarray) -> None:
        ids = self.postings.ids
        at = np.searchsorted(ids, pids)
        inside = at < len(ids)
        at, pids = at[inside], pids[inside]
        self.stale[at[ids[at] == pids]] = True

    def live_rows(self) -> TextRows:
        assert self.rows is not None
        return {pid: self.rows[pid] for pid in self.postings.ids[~self.stale].tolist()}


@dataclass
class KeywordIndex:
    """A base and sealed segments of postings, plus a delta of patents changed since, kept
    current from the feed."""

    sessionmaker: async_sessionmaker[AsyncSession]
    # Feed entries a search applies itself before answering; more and it scans while a
    # rebuild runs. The delta is scanned per query (about 1 µs a patent): keep it small.
    inline_catch_up: int = 2000
    # Changed patents past this many are sealed into a segment (in the background).
    seal_after: int = 256
    # Sealed patents past this many (or past the base's) and everything is rebuilt from the
    # database; until then their texts stay in memory for merging (~1 KB a patent).
    max_sealed: int = 50_000
    max_segments: int = 16  # base included; a bound the merging keeps well below
    # A search asks the database for the feed's head (one round trip) only when this
    # process has committed a feed append since the last look, or that look is older
    # than this: another process's writes (a CLI, a second replica) show within it.
    recheck_after: float = 1.0
    # Merge the newest two sealed segments while the older holds at most this many times
    # the newer's live patents (0: never merge).
    merge_ratio: float = 1.0
    position: int = 0  # feed id the index reflects
    # patent id -> (text, date ordinals), newer than every segment
    delta: TextRows = field(default_factory=dict)
    # The base (read from the database) first, then the sealed ones; none: not built, and
    # searches scan.
    segments: list[Segment] = field(default_factory=list)
    seals: int = 0
    merges: int = 0
    rebuilds: int = 0
    built_at: float | None = None
    build_seconds: float | None = None
    # local_feed_commits() just before the last successful look at the feed's head, and
    # when that look began (time.monotonic()): every commit up to it is in the index.
    _seen_commit: int = -1
    _checked_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _rebuild: asyncio.Task[None] | None = None
    _follower: asyncio.Task[None] | None = None
    # After a failed build, none before this (time.monotonic()): every search and the
    # follower ask for one, and a build that fails (too many patents, an id too large)
    # would otherwise read every text again each time.
    retry_after_failure: float = 60.0
    _next_build_at: float = 0.0
    build_error: str | None = None  # the last build's failure, until a build succeeds

    @property
    def base(self) -> Base | None:
        """The postings read from the database at the last build; None: not built."""
        return self.segments[0].postings if self.segments else None

    # -------------------------------------------------------------- upkeep

    async def head(self, session: AsyncSession) -> int:
        return int(await session.scalar(select(func.max(FeedEntry.id))) or 0)

    async def build(self) -> None:
        """(Re)build the base from every stored text; the delta restarts empty."""
        t = time.perf_counter()
        async with self.sessionmaker() as session:
            # The position first: a change committed during the read is replayed later.
            position = await self.head(session)
            rows: list[Row] = []
            after = -1
            while True:
                page = (
                    await session.execute(
                        _select_rows()
                        .where(PatentSearch.patent_id > after)
                        .order_by(PatentSearch.patent_id)
                        .limit(20_000)
                    )
                ).all()
                rows += [_row(r) for r in page]
                if len(page) < 20_000:
                    break
                after = page[-1][0]
        base = await asyncio.to_thread(Base.build, rows)
        async with self._lock:
            self.segments, self.delta = [Segment.of(base)], {}
            self.position = position
            self._seen_commit = -1  # older than the last look: the next search looks again
        self.rebuilds += 1
        self.built_at = time.time()
        self.build_seconds = time.perf_counter() - t
        self.build_error = None
        log.info("keyword index: %s patents in %.1fs, %.0f MB", len(base.ids),
                 self.build_seconds, base.nbytes / 2**20)  # fmt: skip
        await self.catch_up(10**12)

    def start(self, follow_interval: float = 1.0, busy: Callable[[], bool] = lambda: False) -> None:
        """Build in the background, then follow the feed (`follow`)."""
        self.start_rebuild()
        self._follower = asyncio.create_task(
            self.follow(follow_interval, busy), name="keyword-feed"
        )

    def start_rebuild(self) -> None:
        running = self._rebuild is not None and not self._rebuild.done()
        if not running and time.monotonic() >= self._next_build_at:
            self._rebuild = asyncio.create_task(
                self._in_background(self.build, "build"), name="keyword-index"
            )

    def start_seal(self) -> None:
        """Seal the delta into a segment, or rebuild once the sealed segments hold more than
        the base (or `max_sealed`). One background task at a time does either (they share
        `_rebuild`)."""
        if self.base is None:
            return
        sealed = sum(len(seg.postings.ids) for seg in self.segments[1:])
        limit = min(self.max_sealed, max(len(self.base.ids), self.seal_after))
        if sealed > limit or len(self.segments) >= self.max_segments:
            self.start_rebuild()
            return
        running = self._rebuild is not None and not self._rebuild.done()
        if not running and time.monotonic() >= self._next_build_at:
            self._rebuild = asyncio.create_task(
                self._in_background(self.seal, "seal"), name="keyword-seal"
            )

    async def seal(self) -> None:
        """Index the delta's patents as a segment of their own (from the texts in memory:
        no database read), then merge. A patent that changes again meanwhile keeps its
        newer text in the delta and is stale in the new segment."""
        base = self.base
        snapshot = dict(self.delta)
        if base is None or not snapshot:
            return
        segment = Segment.of(await asyncio.to_thread(Base.build, _rows(snapshot)), snapshot)
        async with self._lock:
            if self.base is not base:  # rebuilt or disabled meanwhile: nothing to add to
                return
            again = [pid for pid, entry in snapshot.items() if self.delta.get(pid) is not entry]
            for pid in snapshot.keys() - set(again):
                del self.delta[pid]
            segment.mark_stale(np.asarray(again, dtype=np.int64))
            self.segments.append(segment)
            self.seals += 1
        await self.merge(base)

    async def merge(self, base: Base) -> None:
        """Merge the newest two sealed segments while the older holds no more live patents
        than the newer (`merge_ratio` 1: a binary counter): sizes stay geometric, so there
        are few segments to search and each patent is rebuilt about log2(sealed /
        seal_after) times."""
        while True:
            if len(self.segments) < 3:
                return
            older, newer = self.segments[-2], self.segments[-1]
            if older.live > self.merge_ratio * newer.live:
                return
            rows = {**older.live_rows(), **newer.live_rows()}
            before = [older.stale.copy(), newer.stale.copy()]
            merged = Segment.of(await asyncio.to_thread(Base.build, _rows(rows)), rows)
            async with self._lock:
                if self.base is not base or self.segments[-2:] != [older, newer]:
                    return  # (compared by identity: eq=False)
                # Changed while the merge ran (stale in a source since): stale here too.
                for source, was in zip((older, newer), before, strict=True):
                    merged.mark_stale(source.postings.ids[source.stale & ~was])
                self.segments[-2:] = [merged]
                self.merges += 1

    async def follow(self, interval: float = 1.0, busy: Callable[[], bool] = lambda: False) -> None:
        """Keep current without waiting for a search to ask: once the feed has been quiet
        for an interval, catch up, or rebuild if the backlog is large. A large upload is
        thus indexed right after it ends, and the first searches after it need not scan.
        While the feed moves, searches catch up themselves as before: a rebuild in the
        middle of an upload would be wasted and would slow the upload. `busy`: whether a
        bulk upload job is running (its batches may commit less often than the interval)."""
        last_head = -1
        while True:
            await asyncio.sleep(interval)
            if self._rebuild is not None and not self._rebuild.done():
                continue
            try:
                if self.base is None:
                    self.start_rebuild()
                    continue
                if busy():
                    last_head = -1
                    continue
                async with self.sessionmaker() as session:
                    head = await self.head(session)
                quiet, last_head = head == last_head, head
                if head == self.position or not quiet:
                    continue
                if not await self.catch_up(self.inline_catch_up):
                    self.start_rebuild()
            except Exception:  # searches still catch up (or scan) on their own
                log.exception("keyword index: following the feed failed")

    async def _in_background(self, work: Callable[[], Awaitable[None]], what: str) -> None:
        """A build or a seal, whose failure only pauses the next one: until a build
        succeeds searches scan; a failed seal leaves the delta (searches stay exact)."""
        try:
            await work()
        except Exception as exc:
            self._next_build_at = time.monotonic() + self.retry_after_failure
            if what == "build":
                self.build_error = f"{type(exc).__name__}: {exc}"
            log.exception("keyword index %s failed; next try in %.0f s", what,
                          self.retry_after_failure)  # fmt: skip

    async def stop(self) -> None:
        for task in (self._follower, self._rebuild):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    async def catch_up(
        self,
        limit: int,
        session: AsyncSession | None = None,
        arrived: tuple[int, float] | None = None,
    ) -> bool:
        """Apply up to `limit` feed entries; True when the index is then current.

        `session`: the search's own, when it has one: the check then costs one statement
        in a transaction the search opens anyway, not a session of its own (three round
        trips, the largest part of a cheap search's time on a busy machine).
        `arrived`: the search's `local_feed_commits()` and time.monotonic() on arrival.
        Searches queue here one behind another; a look at the head that began after one
        arrived answers for it too, so a burst of searches after a commit shares one
        catch-up instead of each making its own in turn (measured under the mixed load:
        34 ms mean waiting here, 22 ms catching up)."""
        if self.base is None:
            return False
        async with self._lock:
            if arrived is not None and self._fresh(*arrived):
                return True
            began = local_feed_commits(), time.monotonic()
            if session is not None:
                ok = await self._catch_up(session, limit)
            else:
                async with self.sessionmaker() as own:
                    ok = await self._catch_up(own, limit)
            if ok:
                self._seen_commit, self._checked_at = began
            return ok

    def _fresh(self, seen: int, now: float) -> bool:
        """Whether the last look at the head began after this process's commit `seen` (so
        the index holds it) and less than `recheck_after` before `now`."""
        return self._seen_commit >= seen and now - self._checked_at < self.recheck_after

    async def _catch_up(self, session: AsyncSession, limit: int) -> bool:
        assert self.base is not None
        head, changed = await self._head_and_changed(session, limit)
        if changed is None:
            return False
        if changed:  # entries past the position: the head is past it too
            found = await session.execute(_select_rows().where(PatentSearch.patent_id.in_(changed)))
            fresh = []
            for r in found:
                pid, text, dates = _row(r)
                if pid >= 1 << ID_BITS:  # cannot be ordered by date: scan from now
                    log.error("patent id %s exceeds the keyword index's ids", pid)
                    self.segments = []
                    return False
                self.delta[pid] = (text, dates)
                fresh.append(pid)
            pids = np.asarray(fresh, dtype=np.int64)
            for segment in self.segments:
                segment.mark_stale(pids)
        self.position = max(self.position, head)
        if len(self.delta) > self.seal_after:
            self.start_seal()
        return True

    async def _head_and_changed(
        self, session: AsyncSession, limit: int
    ) -> tuple[int, set[int] | None]:
        """The feed's head and the patents changed since `position`, in one statement (one
        snapshot, so nothing committed between the two is missed; nearly every search under
        load looks, and a statement of its own for the head was a third of the looking).
        Only patent entries count: pooling 100,000 patents (listing entries) leaves every
        text as it was, and must not send searches to the scan. None: more than `limit`."""
        head = select(func.max(FeedEntry.id).label("head")).subquery()
        since = and_(FeedEntry.id > self.position, FeedEntry.entity == "patent")
        stmt = (
            select(head.c.head, FeedEntry.entity_id).select_from(head).outerjoin(FeedEntry, since)
        )
        rows = (await session.execute(stmt.limit(limit + 1))).all()
        if len(rows) > limit:
            return int(rows[0][0] or 0), None
        return int(rows[0][0] or 0), {
            int(entity_id) for _, entity_id in rows if entity_id is not None
        }

    # -------------------------------------------------------------- queries

    async def current(self, session: AsyncSession | None = None) -> bool:
        """Whether searches may use the index now (catching up first if that is cheap)."""
        if self.base is None:
            self.start_rebuild()
            return False
        arrived = local_feed_commits(), time.monotonic()
        if self._fresh(*arrived) or await self.catch_up(self.inline_catch_up, session, arrived):
            return True
        self.start_rebuild()
        return False

    def ordered(self, terms: list[str], field: str | None = None) -> np.ndarray:
        """Sort keys (`Base.sorted_keys`), ascending, of the patents that may contain every
        term (a superset only for terms of three or more characters; call `current()`
        first). `field`: one of DATE_FIELDS, or None for id order."""
        assert self.base is not None
        column = None if field is None else DATE_FIELDS.index(field)
        longest_first = sorted(set(terms), key=len, reverse=True)  # fewest candidates first
        parts = []
        for segment in self.segments:
            docs: np.ndarray | None = None
            for term in longest_first:
                found = segment.postings.candidates(term)
                docs = found if docs is None else np.intersect1d(docs, found, assume_unique=True)
                if not len(docs):
                    break
            assert docs is not None
            parts.append(segment.postings.sorted_keys(docs[~segment.stale[docs]], column))
        # A patent is current in one segment at most: the others hold it as stale.
        keys = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts), kind="stable")
        extra = [
            pid if column is None else (dates[column] << ID_BITS) | pid
            for pid, (text, dates) in self.delta.items()
            if all(t in text for t in terms)
        ]  # changed patents: stale in every segment, so never twice
        if extra:
            more = np.sort(np.asarray(extra, dtype=np.int64))
            keys = np.insert(keys, np.searchsorted(keys, more), more)
        return keys

    def hits(self, terms: list[str]) -> np.ndarray:
        """Ascending patent ids that may contain every term (see `ordered`)."""
        return self.ordered(terms, None)

    def describe(self) -> str:
        """For /readyz: searches scan until the index is built (never an error)."""
        if self.base is None:
            if self.build_error:  # serving, only slower: not an error for readiness
                return f"degraded: build failed ({self.build_error}); keyword searches scan"
            return "building (keyword searches scan meanwhile)"
        st = self.stats()
        return (
            f"{st['patents']} patents in {st['segments']} segment(s) + {st['delta']} changed "
            f"at feed {st['position']}, {st['megabytes']} MB, built in {st['build_seconds']}s"
        )

    def stats(self) -> dict[str, Any]:
        segments = self.segments
        return {
            "patents": sum(seg.live for seg in segments),
            "segments": len(segments),
            "delta": len(self.delta),
            "position": self.position,
            "megabytes": round(sum(seg.postings.nbytes for seg in segments) / 2**20, 1),
            "build_seconds": round(self.build_seconds, 2) if self.build_seconds else None,
        }

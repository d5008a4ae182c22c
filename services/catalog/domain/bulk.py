"""Bulk upload: validate every record, apply the good ones, report every row."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.catalog.domain.ingest import Outcome, Prepared, RecordError, prepare, upsert_batch
from services.catalog.domain.offer_rows import parse_offer, split_offer
from services.catalog.domain.pooling import STATUSES as POOL_STATUSES
from services.catalog.domain.pooling import PoolRequest, normalised, pool_many
from services.catalog.models import IdempotencyRecord, Organisation, UploadJob
from services.catalog.schemas import PatentIn
from shared.auth import Principal, Role
from shared.db import create_engine
from shared.errors import pydantic_errors
from shared.feed import utcnow
from shared.guards import NUL_REASON, nul_field

log = logging.getLogger("tjp.catalog.bulk")
CHUNK = 2000


def validate_records(
    records: list[tuple[int, dict[str, Any]]],
) -> tuple[list[tuple[int, Prepared]], list[Outcome]]:
    good: list[tuple[int, Prepared]] = []
    bad: list[Outcome] = []
    for row, raw in records:
        number = raw.get("application_number") if isinstance(raw, dict) else None
        if "_not_an_object" in raw:
            bad.append(
                Outcome(row, None, "rejected", [{"field": "record", "reason": "not a JSON object"}])
            )
            continue
        if "_extra_cells" in raw:
            bad.append(
                Outcome(
                    row,
                    None,
                    "rejected",
                    [
                        {
                            "field": "record",
                            "reason": f"{raw['_extra_cells']} more cells than header columns",
                        }
                    ],
                )
            )
            continue
        nul = _nul_field(raw)
        if nul:
            bad.append(Outcome(row, None, "rejected", [{"field": nul, "reason": NUL_REASON}]))
            continue
        raw = dict(raw)  # the job keeps the original records to resume from
        cells = split_offer(raw)
        try:
            offer = parse_offer(cells)
        except ValidationError as exc:
            bad.append(Outcome(row, str(number) if number else None, "rejected",
                               pydantic_errors(list(exc.errors()))))  # fmt: skip
            continue
        try:
            prepared = prepare(PatentIn.model_validate(raw))
            prepared.offer = offer
            good.append((row, prepared))
        except ValidationError as exc:
            bad.append(
                Outcome(
                    row,
                    str(number) if number else None,
                    "rejected",
                    pydantic_errors(list(exc.errors())),
                )
            )
        except RecordError as exc:
            bad.append(
                Outcome(
                    row,
                    str(number) if number else None,
                    "rejected",
                    [{"field": exc.field, "reason": exc.reason}],
                )
            )
    return good, bad


def _nul_field(raw: dict[str, Any]) -> str | None:
    """`nul_field`, answered from one orjson pass for the records that hold no NUL (all
    but hostile ones): orjson writes a NUL as the escape \\u0000. A false alarm (a
    literal backslash-u0000) or what orjson cannot write goes the slow way."""
    try:
        if b"\\u0000" not in orjson.dumps(raw):
            return None
    except TypeError:  # a surrogate, an integer past 64 bits, a non-text key
        pass
    return nul_field(raw)


def summarise(outcomes: list[Outcome]) -> dict[str, int]:
    counts = Counter(o.status for o in outcomes)
    out = {k: counts.get(k, 0) for k in ("accepted", "updated", "unchanged", "rejected")} | {
        "total": len(outcomes)
    }
    pooled = Counter(o.listing for o in outcomes if o.listing is not None)
    if pooled:
        out |= {f"listing_{k}": pooled.get(k, 0) for k in POOL_STATUSES}
    return out


def mark_repeats(
    records: list[tuple[int, dict[str, Any]]],
) -> tuple[list[tuple[int, dict[str, Any]]], list[Outcome]]:
    """A number given twice in one file: the later row is used and every earlier one is
    reported (across the whole file, not only within one chunk of a job)."""
    numbers = [normalised(str(raw.get("application_number") or "")) for _, raw in records]
    last: dict[str, int] = {}
    for (row, _), number in zip(records, numbers, strict=True):
        if number:
            last[number] = row
    kept, repeated = [], []
    for (row, raw), number in zip(records, numbers, strict=True):
        if number and last[number] != row:
            repeated.append(Outcome(row, number, "rejected", [{
                "field": "application_number",
                "reason": f"repeated later in the same upload (row {last[number]}); "
                "the later row is used",
            }]))  # fmt: skip
        else:
            kept.append((row, raw))
    return kept, repeated


async def pool_rows(
    session: AsyncSession,
    principal: Principal,
    good: list[tuple[int, Prepared]],
    outcomes: list[Outcome],
) -> None:
    """Pool the rows that carried offer terms and whose patent is stored; the row's
    report says listed / updated / unchanged / not_eligible (why) / rejected (why)."""
    by_row = {o.row: o for o in outcomes}
    requests = [
        PoolRequest(row, p.application_number, p.offer.terms, p.offer.listed_at)
        for row, p in good
        if p.offer is not None and row in by_row and by_row[row].status != "rejected"
    ]
    if not requests:
        return
    for r in await pool_many(session, principal, requests):
        o = by_row[r.index]
        o.listing, o.listing_id, o.listing_errors = r.status, r.listing_id, r.errors


async def apply_batch(
    session: AsyncSession,
    org: Organisation,
    principal: Principal,
    good: list[tuple[int, Prepared]],
) -> list[Outcome]:
    outcomes = await upsert_batch(session, org, good)
    await pool_rows(session, principal, good, outcomes)
    return outcomes


async def apply_upload(
    session: AsyncSession,
    org: Organisation,
    records: list[tuple[int, dict[str, Any]]],
    principal: Principal,
) -> list[Outcome]:
    """Synchronous path: everything in the caller's one transaction."""
    records, repeated = mark_repeats(records)
    good, bad = validate_records(records)
    outcomes = repeated + bad + await apply_batch(session, org, principal, good)
    return sorted(outcomes, key=lambda o: o.row)


class UploadThread:
    """Synchronous uploads run on an event loop of their own, in one thread beside the
    service's, with their own connection pool: validating and writing 2,000 records is
    ~1 s of Python, and SQLAlchemy builds statement parameters on the calling thread, so
    the writing too must leave the service's loop. The loop, engine and connections live
    as long as the service: a loop, engine and connection made per upload cost ~15 ms of
    CPU for 20 records (a new engine also compiles every statement again), and a new
    PostgreSQL backend each time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: AsyncEngine | None = None
        self._maker: async_sessionmaker[AsyncSession] | None = None
        self._in_flight: set[concurrent.futures.Future[dict[str, Any]]] = set()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="sync-uploads", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def apply(
        self,
        org_id: int,
        fmt: str,
        records: list[tuple[int, dict[str, Any]]],
        idempotency_key: str | None,
        rhash: str,
        principal: dict[str, Any],
    ) -> dict[str, Any]:
        """The upload's report, written in one transaction on the upload loop. Shielded:
        a caller that goes away does not roll back an upload half-way (as before, in a
        thread, it runs to its end and its Idempotency-Key replays the report)."""
        args = (org_id, fmt, records, idempotency_key, rhash, principal)
        done = asyncio.run_coroutine_threadsafe(self._apply(*args), self._running_loop())
        self._in_flight.add(done)
        done.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(asyncio.wrap_future(done))

    async def _apply(self, *args: Any) -> dict[str, Any]:
        if self._maker is None:  # only ever touched on the upload loop
            self._engine = create_engine(self.url)
            self._maker = async_sessionmaker(self._engine, expire_on_commit=False)
        return await _apply_upload(self._maker, *args)

    async def close(self, wait_s: float = 60.0) -> None:
        """Let uploads still running end (their callers may be gone), then stop."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._in_flight:
            await asyncio.wait([asyncio.wrap_future(f) for f in self._in_flight], timeout=wait_s)
        if self._engine is not None:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._engine.dispose(), loop)
            )
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 30)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None
        self._engine = self._maker = None


async def _apply_upload(
    maker: async_sessionmaker[AsyncSession],
    org_id: int,
    fmt: str,
    records: list[tuple[int, dict[str, Any]]],
    idempotency_key: str | None,
    rhash: str,
    principal: dict[str, Any],
) -> dict[str, Any]:
    """The synchronous upload in one transaction of its own; returns the report."""
    async with maker() as session, session.begin():
        org = await session.get(Organisation, org_id)
        assert org is not None
        outcomes = await apply_upload(session, org, records, Principal.from_dict(principal))
        body: dict[str, Any] = {
            "format": fmt,
            "summary": summarise(outcomes),
            "rows": [o.to_dict() for o in outcomes],
        }
        if idempotency_key:
            session.add(
                IdempotencyRecord(
                    key=f"{org_id}:{idempotency_key}",
                    request_hash=rhash,
                    status_code=200,
                    body=body,
                )
            )
    return body


def request_hash(data: bytes, fmt: str) -> str:
    return hashlib.sha256(fmt.encode() + b"\0" + data).hexdigest()


async def refresh_statistics(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """After a big upload or bulk listing, refresh the planner's statistics at once: with
    stale ones PostgreSQL picks slow plans for keyword search until autovacuum gets round
    to it (estimating 7 pooled listings of 5,000, it drove a filtered search from the
    listings and took 91 ms instead of 5 at 5k patents, 1.35 s at 100k)."""
    async with sessionmaker() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("ANALYZE patent, patent_search, patent_owner, listing"))
            await session.commit()


def outcome_from_dict(d: dict[str, Any]) -> Outcome:
    return Outcome(d["row"], d.get("application_number"), d["status"], d.get("errors") or [],
                   d.get("patent_id"))  # fmt: skip


async def run_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: str,
    org_id: int,
    records: list[tuple[int, dict[str, Any]]],
    to_thread: Callable[..., Awaitable[Any]],
    *,
    chunk_size: int = CHUNK,
    start_at: int = 0,
    prior: list[Outcome] | None = None,
    principal: Principal | None = None,
) -> None:
    """Background path: chunks of `chunk_size` records, each its own transaction that also
    saves the progress. A failed job resumes at `start_at` (its saved progress) with the
    outcomes of the chunks already committed (`prior`), so a retry neither loses nor
    doubles a record; re-applying one would anyway come back `unchanged`.
    """
    outcomes: list[Outcome] = list(prior or [])
    records, repeated = mark_repeats(records)
    if start_at == 0:
        outcomes += repeated
    try:
        async with sessionmaker() as session, session.begin():
            job = await session.get(UploadJob, job_id)
            assert job is not None
            job.status = "running"
        starts = list(range(start_at, len(records), chunk_size))
        # Validate chunk n+1 in a worker thread while chunk n is written: the writes
        # mostly wait on the database, so the two overlap.
        pending = asyncio.ensure_future(
            to_thread(validate_records, records[start_at : start_at + chunk_size])
        )
        for i, start in enumerate(starts):
            chunk = records[start : start + chunk_size]
            good, bad = await pending
            if i + 1 < len(starts):
                nxt = records[starts[i + 1] : starts[i + 1] + chunk_size]
                pending = asyncio.ensure_future(to_thread(validate_records, nxt))
            async with sessionmaker() as session, session.begin():
                org = await session.get(Organisation, org_id)
                assert org is not None
                actor = principal or Principal("job", org.id, Role.SUPPLIER, org.kind)
                done = bad + await apply_batch(session, org, actor, good)
                job = await session.get(UploadJob, job_id)
                assert job is not None
                job.processed = min(len(records), start + len(chunk))
                job.summary = summarise(outcomes + done)
            outcomes += done  # only once the chunk is committed
        outcomes.sort(key=lambda o: o.row)
        async with sessionmaker() as session, session.begin():
            job = await session.get(UploadJob, job_id)
            assert job is not None
            job.status = "done"
            job.processed = job.total
            job.error = None
            job.summary = summarise(outcomes)
            job.report = [o.to_dict() for o in outcomes]
            job.finished_at = utcnow()
    except Exception as exc:
        log.exception("upload job %s failed", job_id)
        async with sessionmaker() as session, session.begin():
            job = await session.get(UploadJob, job_id)
            if job is not None:
                job.status = "failed"
                job.error = (
                    f"{type(exc).__name__}: {exc}"[:2000]
                    + " — send the same file again with the same Idempotency-Key to resume"
                )
                job.summary = summarise(outcomes)
                job.report = [o.to_dict() for o in sorted(outcomes, key=lambda o: o.row)]
                job.finished_at = utcnow()

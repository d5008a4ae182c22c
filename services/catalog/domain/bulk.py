"""Bulk upload: validate every record, apply the good ones, report every row."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.catalog.domain.ingest import Outcome, Prepared, RecordError, prepare, upsert_batch
from services.catalog.models import Organisation, UploadJob
from services.catalog.schemas import PatentIn
from shared.errors import pydantic_errors
from shared.feed import utcnow

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
        try:
            good.append((row, prepare(PatentIn.model_validate(raw))))
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


def summarise(outcomes: list[Outcome]) -> dict[str, int]:
    counts = Counter(o.status for o in outcomes)
    return {k: counts.get(k, 0) for k in ("accepted", "updated", "unchanged", "rejected")} | {
        "total": len(outcomes)
    }


async def apply_upload(
    session: AsyncSession, org: Organisation, records: list[tuple[int, dict[str, Any]]]
) -> list[Outcome]:
    """Synchronous path: everything in the caller's one transaction."""
    good, bad = validate_records(records)
    outcomes = bad + await upsert_batch(session, org, good)
    return sorted(outcomes, key=lambda o: o.row)


def request_hash(data: bytes, fmt: str) -> str:
    return hashlib.sha256(fmt.encode() + b"\0" + data).hexdigest()


async def refresh_statistics(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """After a big upload, refresh the planner's statistics at once: with stale ones
    PostgreSQL picks slow plans for keyword search until autovacuum gets round to it."""
    async with sessionmaker() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("ANALYZE patent, patent_search, patent_owner"))
            await session.commit()


async def run_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: str,
    org_id: int,
    records: list[tuple[int, dict[str, Any]]],
    to_thread: Callable[..., Awaitable[Any]],
) -> None:
    """Background path: chunks of CHUNK records, each its own transaction, progress saved.

    Re-running an interrupted job is safe: applied records come back as `unchanged`.
    """
    outcomes: list[Outcome] = []
    try:
        async with sessionmaker() as session, session.begin():
            job = await session.get(UploadJob, job_id)
            assert job is not None
            job.status = "running"
        starts = list(range(0, len(records), CHUNK))
        # Validate chunk n+1 in a worker thread while chunk n is written: the writes
        # mostly wait on the database, so the two overlap.
        pending = asyncio.ensure_future(to_thread(validate_records, records[:CHUNK]))
        for i, start in enumerate(starts):
            chunk = records[start : start + CHUNK]
            good, bad = await pending
            if i + 1 < len(starts):
                nxt = records[starts[i + 1] : starts[i + 1] + CHUNK]
                pending = asyncio.ensure_future(to_thread(validate_records, nxt))
            async with sessionmaker() as session, session.begin():
                org = await session.get(Organisation, org_id)
                assert org is not None
                outcomes += bad + await upsert_batch(session, org, good)
                job = await session.get(UploadJob, job_id)
                assert job is not None
                job.processed = min(len(records), start + len(chunk))
                job.summary = summarise(outcomes)
        outcomes.sort(key=lambda o: o.row)
        async with sessionmaker() as session, session.begin():
            job = await session.get(UploadJob, job_id)
            assert job is not None
            job.status = "done"
            job.summary = summarise(outcomes)
            job.report = [o.to_dict() for o in outcomes]
            job.finished_at = utcnow()
        await refresh_statistics(sessionmaker)
    except Exception as exc:
        log.exception("upload job %s failed", job_id)
        async with sessionmaker() as session, session.begin():
            job = await session.get(UploadJob, job_id)
            if job is not None:
                job.status = "failed"
                job.error = f"{type(exc).__name__}: {exc}"
                job.summary = summarise(outcomes)
                job.report = [o.to_dict() for o in sorted(outcomes, key=lambda o: o.row)]
                job.finished_at = utcnow()

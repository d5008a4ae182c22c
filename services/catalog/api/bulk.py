"""Bulk upload of patents: JSON, NDJSON, CSV, XLSX; per-record report; jobs for large files."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
import uuid
from collections.abc import Callable
from typing import IO, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from services.catalog.api.deps import SessionDep, SettingsDep
from services.catalog.api.patents import supplier_org
from services.catalog.domain import bulk_files
from services.catalog.domain.bulk import (
    UploadThread,
    mark_repeats,
    outcome_from_dict,
    refresh_statistics,
    run_job,
)
from services.catalog.domain.bulk_pool import offload
from services.catalog.models import IdempotencyRecord, Organisation, UploadJob
from shared.auth import Principal, PrincipalDep, Role, require_role
from shared.db import Database
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    is_unique_violation,
    request_language,
)
from shared.i18n import translate_report
from shared.openapi import file_responses
from shared.params import MAX_ID

router = APIRouter(prefix="/v1", tags=["bulk"])
T = TypeVar("T")

UPLOAD_DOC = """Upload many patents at once (up to 50,000 records, 100 MB).

Send the file as the request body with its content type (`application/json`,
`application/x-ndjson`, `text/csv`,
`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`), or as a
multipart form field `file`. Records are upserted by application number: the same
record again is `unchanged` and writes nothing. Small files are answered at once with
a per-record report; larger ones return `202` and a job to poll at `/v1/uploads/{id}`.
A file that cannot be read at all changes nothing. Send `Idempotency-Key` to make
retries safe.

A row with offer terms (`modes` / 转化方式, `price_cny` / 价格(元), `negotiable` / 价格面议,
`zero_price` / 零元转让, `use_first_pay_later` / 先使用后付费, `deferred_licence_fee` /
延期支付许可费, `listed_at` / 入池日期) is also pooled: its report row says `listing`:
listed | updated | unchanged | not_eligible | rejected, with `listing_errors` saying why.
A number repeated in the file is reported on every earlier row; the last row is used.
The city bureau or an admin may upload for a university (`?org_id=`) and back-date
`listed_at` (pool migration).
"""


CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILE = {"type": "string", "format": "binary"}
# The route reads the raw body itself (to stream and bound it), so FastAPI cannot infer it.
UPLOAD_BODY = {
    "required": True,
    "content": {
        "application/json": {
            # Any array: each element is checked as a record (the fields of PatentIn) and
            # a bad one is rejected in the per-row report, not with the whole request.
            "schema": {
                "type": "array",
                "items": {"description": "a patent record: the fields of `PatentIn`"},
                "minItems": 1,
            }
        },
        "application/x-ndjson": {"schema": _FILE},
        CSV: {"schema": _FILE},
        XLSX: {"schema": _FILE},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {**_FILE, "description": "JSON, NDJSON, CSV or XLSX"}},
            },
            "encoding": {"file": {"contentType": f"application/json, {CSV}, {XLSX}"}},
        },
    },
}


async def read_upload(request: Request, limit: int) -> tuple[IO[bytes], str | None, str | None]:
    """The upload as a file (spooled to disk by shared.guards while it streamed in, with
    the size limit enforced there), its content type and file name."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit)
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise Unprocessable.field("file", "send the file in a multipart field named 'file'")
        file.file.seek(0)
        return file.file, file.content_type, file.filename
    spooled: IO[bytes] | None = request.scope.get("state", {}).get("body_file")
    if spooled is None:  # mounted without the guard (not in this app): read it here
        spooled = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the upload exceeds the limit of {limit:,} bytes")
            spooled.write(chunk)
        spooled.seek(0)
    return spooled, ctype, None


# Text files up to this size are hashed and parsed on the loop: for a 20-record upload
# that is well under a millisecond, while each hop to a worker thread and back waited
# 7 ms at the median and 31 ms at p99 under the mixed load (bench/load_mix.py), twice per
# upload. XLSX always leaves the loop (openpyxl takes milliseconds even for small files).
INLINE_BYTES = 64 * 1024


def file_size(file: IO[bytes]) -> int:
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    return size


async def off_loop(small: bool, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a worker thread, or here when its input is `small`."""
    return fn(*args) if small else await asyncio.to_thread(fn, *args)


def file_hash(file: IO[bytes], fmt: str) -> str:
    """request_hash of the file's bytes, read in chunks (the file may be 100 MB)."""
    h = hashlib.sha256(fmt.encode() + b"\0")
    file.seek(0)
    while chunk := file.read(1024 * 1024):
        h.update(chunk)
    file.seek(0)
    return h.hexdigest()


async def replay(
    request: Request, session: SessionDep, key: str | None, org_id: int, rhash: str
) -> JSONResponse | UploadJob | None:
    """The first answer to this Idempotency-Key, or — when that answer was a job which
    then failed (or died with a restart) — the job, claimed for resuming."""
    if not key:
        return None
    record = await session.get(IdempotencyRecord, f"{org_id}:{key}")
    if record is None:
        return None
    if record.request_hash != rhash:
        raise Conflict("this Idempotency-Key was already used with a different upload")
    job_id = record.body.get("job_id") if record.status_code == 202 else None
    if job_id:
        live: dict[str, Any] = request.app.state.jobs
        job = await session.get(UploadJob, job_id)
        if job is not None and (
            job.status == "failed" or (job.status != "done" and job_id not in live)
        ):
            # Claim it (compare-and-set): of two retries at once, one resumes the job.
            claimed = await session.execute(
                update(UploadJob)
                .where(UploadJob.id == job_id, UploadJob.status == job.status)
                .values(status="queued", error=None, finished_at=None)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                return job
    return JSONResponse(
        translate_report(record.body, request_language(request)),
        status_code=record.status_code,
        headers={"Idempotency-Replayed": "true"},
    )


@router.post(
    "/patents/bulk",
    summary="Bulk upload",
    description=UPLOAD_DOC,
    responses={200: {"description": "report"}, 202: {"description": "job started"}},
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def bulk_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    format: str | None = Query(None, description="json, ndjson, csv or xlsx"),
    idempotency_key: str | None = Header(None, max_length=100),
    org_id: int | None = Query(
        None,
        ge=1,
        le=MAX_ID,
        description="upload for this organisation (city bureau or admin: pool migration)",
    ),
) -> JSONResponse:
    org = await upload_org(session, principal, org_id)
    file, ctype, name = await read_upload(request, settings.max_upload_bytes)
    fmt = bulk_files.detect_format(ctype, name, format)
    small = fmt != "xlsx" and file_size(file) <= INLINE_BYTES
    rhash = await off_loop(small, file_hash, file, fmt)
    replayed = await replay(request, session, idempotency_key, org.id, rhash)
    if isinstance(replayed, JSONResponse):
        return replayed
    records = await off_loop(small, bulk_files.parse, file, fmt, settings.max_upload_records)
    if isinstance(replayed, UploadJob):
        check_job_capacity(request, settings.max_concurrent_jobs)  # a 503 undoes the claim
        await session.commit()  # the claim; release the request's transaction
        return await resume_job(request, replayed, records, principal)
    if not records:
        raise bulk_files.Malformed("the file holds no records")
    if len(records) > settings.max_upload_records:
        raise PayloadTooLarge(
            f"the file holds {len(records):,} records; the limit is "
            f"{settings.max_upload_records:,} per request — split it"
        )
    if len(records) <= settings.sync_upload_limit:
        # Off this loop, on the upload thread's (domain/bulk.py UploadThread). The request's
        # own transaction ends first (SQLite has one writer).
        await session.commit()
        uploads: UploadThread = request.app.state.uploads
        body = await uploads.apply(
            org.id, fmt, records, idempotency_key, rhash, principal.to_dict()
        )
        # stored in English (idempotent replays), reasons rendered in the reader's language
        return JSONResponse(translate_report(body, request_language(request)))
    check_job_capacity(request, settings.max_concurrent_jobs)
    await session.commit()  # release the request's transaction (SQLite has one writer)
    return await start_job(request, org.id, fmt, records, idempotency_key, rhash, principal)


def check_job_capacity(request: Request, limit: int) -> None:
    """Each job holds its parsed records in memory: bound how many run at once."""
    if len(request.app.state.jobs) >= limit:
        raise ServiceUnavailable(
            f"{limit} upload jobs are running, the most this service runs at once;"
            " send the file again shortly (uploads up to the synchronous limit are"
            " still answered at once)",
            retry_after=10,
        )


def launch(request: Request, job_id: str, org_id: int, records: Any, **kwargs: Any) -> None:
    db: Database = request.app.state.db
    settings = request.app.state.settings
    jobs: dict[str, asyncio.Task[None]] = request.app.state.jobs

    async def job() -> None:
        try:
            await run_job(db.sessionmaker, job_id, org_id, records,
                          offload(settings.upload_workers),
                          chunk_size=settings.upload_chunk_records, **kwargs)  # fmt: skip
        finally:
            jobs.pop(job_id, None)  # the slot is free as soon as the job has finished
        await refresh_statistics(db.sessionmaker)

    task = asyncio.create_task(job(), name=f"upload-job-{job_id}")
    jobs[job_id] = task
    _running.add(task)  # a strong reference until the statistics refresh is over too
    task.add_done_callback(_running.discard)


_running: set[asyncio.Task[None]] = set()


async def resume_job(
    request: Request,
    job: UploadJob,
    records: list[tuple[int, dict[str, Any]]],
    principal: Principal,
) -> JSONResponse:
    """Carry on a failed job from its saved progress, keeping what was already committed."""
    if len(records) != job.total:  # same hash, so same file: cannot happen unless tampered
        raise Conflict("this upload does not match the job it would resume")
    kept, repeated = mark_repeats(records)  # progress counts the rows the job writes
    committed_rows = {row for row, _ in kept[: job.processed]} | {o.row for o in repeated}
    prior = [outcome_from_dict(d) for d in job.report or [] if d["row"] in committed_rows]
    launch(request, job.id, job.org_id, records, start_at=job.processed, prior=prior,
           principal=principal)  # fmt: skip
    poll = f"/v1/uploads/{job.id}"
    body = {"job_id": job.id, "status": "queued", "total": job.total,
            "resumed_at": job.processed, "poll": poll}  # fmt: skip
    return JSONResponse(body, status_code=202, headers={"Location": poll})


async def start_job(
    request: Request,
    org_id: int,
    fmt: str,
    records: list[tuple[int, dict[str, Any]]],
    idempotency_key: str | None,
    rhash: str,
    principal: Principal,
) -> JSONResponse:
    db: Database = request.app.state.db
    job_id = uuid.uuid4().hex
    body: dict[str, Any] = {
        "job_id": job_id,
        "status": "queued",
        "total": len(records),
        "poll": f"/v1/uploads/{job_id}",
    }
    try:
        # Committed before the task starts, so the client can poll at once.
        async with db.sessionmaker() as s, s.begin():
            s.add(
                UploadJob(id=job_id, org_id=org_id, status="queued", format=fmt, total=len(records))
            )
            if idempotency_key:
                s.add(
                    IdempotencyRecord(
                        key=f"{org_id}:{idempotency_key}",
                        request_hash=rhash,
                        status_code=202,
                        body=body,
                    )
                )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict("an upload with this Idempotency-Key is already in progress") from None
    launch(request, job_id, org_id, records, principal=principal)
    return JSONResponse(body, status_code=202, headers={"Location": body["poll"]})


async def upload_org(session: SessionDep, principal: Principal, org_id: int | None) -> Organisation:
    """The uploader's own organisation, or — for the city bureau or an admin migrating a
    university's records — the one named by `org_id`."""
    if org_id is None or org_id == principal.org_id:
        return await supplier_org(session, principal)
    require_role(principal, Role.CITY_BUREAU)
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


async def load_job(session: SessionDep, job_id: str, org_id: int, role: Role) -> UploadJob:
    job = await session.get(UploadJob, job_id)
    if job is None:
        raise NotFound(f"upload job {job_id} does not exist")
    if job.org_id != org_id and role is not Role.ADMIN:
        raise Forbidden("this upload belongs to another organisation")
    return job


@router.get("/uploads/{job_id}", summary="Progress of an upload job")
async def job_status(job_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    job = await load_job(session, job_id, principal.org_id, principal.role)
    return {
        "job_id": job.id,
        "status": job.status,
        "format": job.format,
        "total": job.total,
        "processed": job.processed,
        "summary": job.summary,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "report": f"/v1/uploads/{job.id}/report" if job.report is not None else None,
    }


@router.get("/uploads/{job_id}/report", summary="Per-record report of a finished upload")
async def job_report(
    request: Request,
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    status: str | None = Query(None, description="only rows with this outcome, e.g. rejected"),
) -> dict[str, Any]:
    job = await load_job(session, job_id, principal.org_id, principal.role)
    if job.report is None:
        raise Conflict(f"upload job {job_id} is {job.status}; the report is not ready")
    rows = [r for r in job.report if status is None or r["status"] == status]
    body = {"job_id": job.id, "summary": job.summary, "rows": rows}
    return translate_report(body, request_language(request))


@router.get(
    "/patents/bulk/template",
    summary="Upload template (XLSX or CSV, Chinese headers)",
    responses=file_responses(CSV, XLSX),
)
async def template(format: str = Query("xlsx", pattern="^(xlsx|csv)$")) -> Response:
    if format == "csv":
        return Response(
            bulk_files.template_csv(),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="patent-template.csv"'},
        )
    return Response(
        bulk_files.template_xlsx(),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="patent-template.xlsx"'},
    )

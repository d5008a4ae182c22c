"""Bulk upload of patents: JSON, NDJSON, CSV, XLSX; per-record report; jobs for large files."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from services.catalog.api.deps import SessionDep, SettingsDep
from services.catalog.api.patents import supplier_org
from services.catalog.domain import bulk_files
from services.catalog.domain.bulk import request_hash, run_job, summarise, validate_records
from services.catalog.domain.ingest import upsert_batch
from services.catalog.models import IdempotencyRecord, UploadJob
from shared.auth import PrincipalDep, Role
from shared.db import Database
from shared.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from shared.openapi import file_responses

router = APIRouter(prefix="/v1", tags=["bulk"])

UPLOAD_DOC = """Upload many patents at once (up to 50,000 records, 100 MB).

Send the file as the request body with its content type (`application/json`,
`application/x-ndjson`, `text/csv`,
`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`), or as a
multipart form field `file`. Records are upserted by application number: the same
record again is `unchanged` and writes nothing. Small files are answered at once with
a per-record report; larger ones return `202` and a job to poll at `/v1/uploads/{id}`.
A file that cannot be read at all changes nothing. Send `Idempotency-Key` to make
retries safe.
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


async def read_upload(request: Request, limit: int) -> tuple[bytes, str | None, str | None]:
    """Body bytes, content type and file name, refusing anything over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the upload is {int(declared):,} bytes; the limit is {limit:,}")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit)
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise Unprocessable.field("file", "send the file in a multipart field named 'file'")
        data = await file.read(limit + 1)
        name, ctype = file.filename, file.content_type or ctype
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the upload exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        data, name = b"".join(chunks), None
    if len(data) > limit:
        raise PayloadTooLarge(f"the upload exceeds the limit of {limit:,} bytes")
    return data, ctype, name


async def replay(
    session: SessionDep, key: str | None, org_id: int, rhash: str
) -> JSONResponse | None:
    if not key:
        return None
    record = await session.get(IdempotencyRecord, f"{org_id}:{key}")
    if record is None:
        return None
    if record.request_hash != rhash:
        raise Conflict("this Idempotency-Key was already used with a different upload")
    return JSONResponse(
        record.body, status_code=record.status_code, headers={"Idempotency-Replayed": "true"}
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
) -> JSONResponse:
    org = await supplier_org(session, principal)
    data, ctype, name = await read_upload(request, settings.max_upload_bytes)
    fmt = bulk_files.detect_format(ctype, name, format)
    rhash = request_hash(data, fmt)
    replayed = await replay(session, idempotency_key, org.id, rhash)
    if replayed is not None:
        return replayed
    records = await asyncio.to_thread(bulk_files.parse, data, fmt)
    if not records:
        raise bulk_files.Malformed("the file holds no records")
    if len(records) > settings.max_upload_records:
        raise PayloadTooLarge(
            f"the file holds {len(records):,} records; the limit is "
            f"{settings.max_upload_records:,} per request — split it"
        )
    if len(records) <= settings.sync_upload_limit:
        good, bad = await asyncio.to_thread(validate_records, records)
        outcomes = sorted(bad + await upsert_batch(session, org, good), key=lambda o: o.row)
        body: dict[str, Any] = {
            "format": fmt,
            "summary": summarise(outcomes),
            "rows": [o.to_dict() for o in outcomes],
        }
        if idempotency_key:
            session.add(
                IdempotencyRecord(
                    key=f"{org.id}:{idempotency_key}",
                    request_hash=rhash,
                    status_code=200,
                    body=body,
                )
            )
        return JSONResponse(body)
    await session.commit()  # release the request's transaction (SQLite has one writer)
    return await start_job(request, org.id, fmt, records, idempotency_key, rhash)


async def start_job(
    request: Request,
    org_id: int,
    fmt: str,
    records: list[tuple[int, dict[str, Any]]],
    idempotency_key: str | None,
    rhash: str,
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
    except IntegrityError:
        raise Conflict("an upload with this Idempotency-Key is already in progress") from None
    task = asyncio.create_task(run_job(db.sessionmaker, job_id, org_id, records, asyncio.to_thread))
    jobs: dict[str, asyncio.Task[None]] = request.app.state.jobs
    jobs[job_id] = task
    task.add_done_callback(lambda _t: jobs.pop(job_id, None))
    return JSONResponse(body, status_code=202, headers={"Location": body["poll"]})


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
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    status: str | None = Query(None, description="only rows with this outcome, e.g. rejected"),
) -> dict[str, Any]:
    job = await load_job(session, job_id, principal.org_id, principal.role)
    if job.report is None:
        raise Conflict(f"upload job {job_id} is {job.status}; the report is not ready")
    rows = [r for r in job.report if status is None or r["status"] == status]
    return {"job_id": job.id, "summary": job.summary, "rows": rows}


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

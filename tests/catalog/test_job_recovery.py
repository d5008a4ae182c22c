"""Issue 9, defect 7 and failure handling: a failed upload job resumes when the client
retries with the same Idempotency-Key (nothing lost, nothing doubled), and upload jobs
are bounded in number (over the bound: 503 with Retry-After).

The faults are real database faults: a rule in the catalog's database that refuses one
record of a later chunk (a CHECK constraint on PostgreSQL, an ABORT trigger on SQLite) —
the job dies mid-way with earlier chunks committed, as with a database restart — and a
write lock held by another connection, which keeps a job running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared.testing import fresh_database
from tests.conftest import CatalogHandle, require_engine, start_catalog
from tests.factories import patent
from tests.hostile import run_sql

UNI = "天津续传大学"


@pytest.fixture(scope="module")
def jobs_catalog(engine: str, db_dir: Path) -> Iterator[CatalogHandle]:
    """A catalog whose jobs start above 40 records and commit 50 at a time, one at once."""
    with fresh_database(engine, db_dir, "jobs") as url:
        server, admin = start_catalog(
            url, sync_upload_limit=40, upload_chunk_records=50, max_concurrent_jobs=1
        )
        try:
            yield CatalogHandle(server.url, url, admin)
        finally:
            server.stop()


def refuse_titles(url: str, prefix: str) -> list[str]:
    """Install the fault; return the SQL that removes it."""
    if url.startswith("postgresql"):
        run_sql(url, [f"ALTER TABLE patent ADD CONSTRAINT ck_test_fault "
                      f"CHECK (title NOT LIKE '{prefix}%')"])  # fmt: skip
        return ["ALTER TABLE patent DROP CONSTRAINT ck_test_fault"]
    run_sql(url, [f"CREATE TRIGGER tr_test_fault BEFORE INSERT ON patent WHEN "
                  f"NEW.title LIKE '{prefix}%' BEGIN SELECT RAISE(ABORT, 'fault'); END"])  # fmt: skip
    return ["DROP TRIGGER tr_test_fault"]


def wait_job(c: Any, poll: str) -> dict[str, Any]:
    for _ in range(600):
        status = c.get(poll).json()
        if status["status"] in ("done", "failed"):
            return status  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"job never finished: {status}")


def test_a_failed_job_resumes_with_the_same_idempotency_key(jobs_catalog: CatalogHandle) -> None:
    cat = jobs_catalog
    org_id, key = cat.org(UNI)
    records = [patent(UNI) for _ in range(200)]
    records[130]["title"] = "FAULT 一种电池"  # in the third chunk of 50
    undo = refuse_titles(cat.database_url, "FAULT")
    with cat.client(key) as c:
        r = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "resume-1"})
        assert r.status_code == 202, r.text
        job = r.json()
        failed = wait_job(c, job["poll"])
        assert failed["status"] == "failed", failed
        assert failed["processed"] == 100  # two chunks committed, the third refused
        assert failed["summary"]["accepted"] == 100
        assert "Idempotency-Key" in failed["error"]

        run_sql(cat.database_url, undo)  # the fault passes (database back)
        r = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "resume-1"})
        assert r.status_code == 202, r.text
        assert r.json()["job_id"] == job["job_id"] and r.json()["resumed_at"] == 100
        done = wait_job(c, job["poll"])
        assert done["status"] == "done", done
        assert done["summary"] == {"accepted": 200, "updated": 0, "unchanged": 0,
                                   "rejected": 0, "total": 200}  # fmt: skip
        report = c.get(f"{job['poll']}/report").json()["rows"]
        assert sorted(row["row"] for row in report) == list(range(1, 201))
        # A further retry replays the finished job; it does not run again.
        r = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "resume-1"})
        assert r.status_code == 202 and r.headers["idempotency-replayed"] == "true"
        assert c.get(job["poll"]).json()["status"] == "done"
    # Every record is in the catalog exactly once, owned once, and on the feed once.
    numbers = sorted(p["application_number"] for p in records)
    rows = run_sql(cat.database_url, [
        f"SELECT application_number FROM patent WHERE id IN "
        f"(SELECT patent_id FROM patent_owner WHERE org_id = {org_id})"
    ])  # fmt: skip
    assert sorted(r[0] for r in rows) == numbers
    feed = run_sql(cat.database_url, [
        "SELECT entity_id, COUNT(*) FROM feed_entry WHERE entity = 'patent' GROUP BY entity_id"
    ])  # fmt: skip
    assert len(feed) == 200 and {n for _, n in feed} == {1}


@pytest.fixture(scope="module")
def pg_jobs_catalog(db_dir: Path) -> Iterator[CatalogHandle]:
    """The job bound is per process, whatever the engine; PostgreSQL's table lock is what
    lets a test keep one job running while other requests are served (a SQLite write
    lock would stop every request, not just the job), so this one runs on PostgreSQL."""
    require_engine("postgresql")
    with fresh_database("postgresql", db_dir, "jobs") as url:
        server, admin = start_catalog(
            url, sync_upload_limit=40, upload_chunk_records=50, max_concurrent_jobs=1
        )
        try:
            yield CatalogHandle(server.url, url, admin)
        finally:
            server.stop()


def hold_patent_table(url: str) -> Any:
    """Another client locks the patent table against writes until `release()`."""
    u = make_url(url)

    async def lock() -> Any:
        conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                     database=u.database)  # fmt: skip
        tx = conn.transaction()
        await tx.start()
        await conn.execute("LOCK TABLE patent IN EXCLUSIVE MODE")
        return conn, tx

    loop = asyncio.new_event_loop()
    conn, tx = loop.run_until_complete(lock())

    def release() -> None:
        loop.run_until_complete(tx.rollback())
        loop.run_until_complete(conn.close())
        loop.close()

    return release


def test_upload_jobs_are_bounded_with_retry_after(pg_jobs_catalog: CatalogHandle) -> None:
    cat = pg_jobs_catalog
    _, key = cat.org(UNI)
    release = hold_patent_table(cat.database_url)
    try:
        with cat.client(key) as c:
            first = c.post("/v1/patents/bulk", json=[patent(UNI) for _ in range(60)])
            assert first.status_code == 202, first.text
            r = c.post("/v1/patents/bulk", json=[patent(UNI) for _ in range(60)])
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
            assert r.headers["content-type"].startswith("application/problem+json")
            assert c.get(first.json()["poll"]).json()["status"] in ("queued", "running")
    finally:
        release()
    with cat.client(key) as c:
        assert wait_job(c, first.json()["poll"])["status"] == "done"
        r = c.post("/v1/patents/bulk", json=[patent(UNI) for _ in range(60)])
        assert r.status_code == 202, r.text
        assert wait_job(c, r.json()["poll"])["status"] == "done"

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from shared.testing import fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.factories import appno, patent

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def small(engine: str, db_dir: Path) -> Iterator[CatalogHandle]:
    """A catalog with tiny limits, so limits and background jobs are cheap to test."""
    with fresh_database(engine, db_dir, "small") as url:
        server, admin = start_catalog(
            url, max_upload_bytes=200_000, max_upload_records=300, sync_upload_limit=40
        )
        try:
            yield CatalogHandle(server.url, url, admin)
        finally:
            server.stop()


def feed_count(c: httpx.Client) -> int:
    return len(c.get("/v1/feed", params={"limit": 5000}).json()["items"])


def test_json_upload_reports_every_row(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津批量大学")
    good = [patent("天津批量大学") for _ in range(3)]
    bad_check = {**patent("天津批量大学")}
    bad_check["application_number"] = bad_check["application_number"][:-1] + (
        "0" if bad_check["application_number"][-1] != "0" else "1"
    )
    bad_ipc = patent("天津批量大学", ipc_codes=["H01M", "not-ipc"])
    missing = {"application_number": appno(), "patentees": ["天津批量大学"]}
    records = [good[0], bad_check, good[1], bad_ipc, missing, good[2]]
    with catalog.client(key) as c:
        r = c.post(
            "/v1/patents/bulk",
            content=json.dumps(records),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["summary"] == {
            "accepted": 3,
            "updated": 0,
            "unchanged": 0,
            "rejected": 3,
            "total": 6,
        }
        rows = {row["row"]: row for row in report["rows"]}
        assert [rows[i]["status"] for i in range(1, 7)] == [
            "accepted",
            "rejected",
            "accepted",
            "rejected",
            "rejected",
            "accepted",
        ]
        assert rows[2]["errors"][0]["field"] == "application_number"
        assert rows[4]["errors"][0]["field"] == "ipc_codes"
        assert {e["field"] for e in rows[5]["errors"]} == {"title", "legal_status"}
        before = feed_count(c)
        again = c.post(
            "/v1/patents/bulk",
            content=json.dumps(good),
            headers={"content-type": "application/json"},
        ).json()
        assert again["summary"]["unchanged"] == 3
        assert feed_count(c) == before  # an identical upload writes no feed entry
        for g in good:
            assert c.get(f"/v1/patents/{g['application_number']}").status_code == 200


def test_csv_with_chinese_headers_and_ndjson(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津表格大学")
    a, b = patent("天津表格大学"), patent("天津表格大学", patentees=["天津表格大学", "某研究院"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "申请号",
            "专利名称",
            "摘要",
            "IPC分类号",
            "专利权人",
            "发明人",
            "申请日",
            "授权公告日",
            "法律状态",
        ]
    )
    for p in (a, b):
        w.writerow(
            [
                "CN" + p["application_number"],
                p["title"],
                p["abstract"],
                "H01M 4/131；H01M10/0525",
                ";".join(p["patentees"]),
                "张三",
                p["application_date"],
                p["grant_date"],
                "有效",
            ]
        )
    with catalog.client(key) as c:
        r = c.post(
            "/v1/patents/bulk",
            content=buf.getvalue().encode("gb18030"),
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["accepted"] == 2
        assert [row["row"] for row in r.json()["rows"]] == [2, 3]  # spreadsheet row numbers
        got = c.get(f"/v1/patents/{b['application_number']}").json()
        assert got["patentees"] == ["天津表格大学", "某研究院"]
        assert got["ipc_codes"] == ["H01M4/131", "H01M10/0525"]
        nd = "\n".join(json.dumps(p, ensure_ascii=False) for p in (a, patent("天津表格大学")))
        r = c.post(
            "/v1/patents/bulk",
            content=nd.encode(),
            headers={"content-type": "application/x-ndjson"},
        )
        assert [row["status"] for row in r.json()["rows"]] == ["unchanged", "accepted"]


def test_xlsx_upload_and_template(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津工作簿大学")
    with catalog.client(key) as c:
        t = c.get("/v1/patents/bulk/template")
        assert t.headers["content-type"] == XLSX
        ws = load_workbook(io.BytesIO(t.content)).active
        header = [cell.value for cell in ws[1]]
        assert header[:3] == ["申请号", "公开(公告)号", "专利名称"]
        p = patent("天津工作簿大学")
        ws.append(
            [
                p["application_number"],
                "CN 112345678 B",
                p["title"],
                p["abstract"],
                "",
                "H01M 4/131",
                "天津工作簿大学",
                "张三；李四",
                p["application_date"],
                p["grant_date"],
                "有效",
            ]
        )
        out = io.BytesIO()
        ws.parent.save(out)
        r = c.post("/v1/patents/bulk", files={"file": ("patents.xlsx", out.getvalue(), XLSX)})
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [
            {
                "row": 2,
                "application_number": p["application_number"],
                "status": "accepted",
                "patent_id": r.json()["rows"][0]["patent_id"],
            }
        ]
        got = c.get(f"/v1/patents/{p['application_number']}").json()
        assert got["inventors"] == ["张三", "李四"] and got["publication_number"] == "CN112345678B"
        csv_t = c.get("/v1/patents/bulk/template", params={"format": "csv"})
        assert csv_t.content.decode("utf-8-sig").startswith("申请号")


@pytest.mark.parametrize(
    ("content", "ctype", "status", "words"),
    [
        (b"application_number,title\n1,2\n", "text/csv", 400, "lacks required columns"),
        (b'[{"title": "x"}, ', "application/json", 400, "invalid JSON"),
        (b'{"a": 1}\nnot json\n', "application/x-ndjson", 400, "line 2"),
        (b"PK\x03\x04garbage", XLSX, 400, "not a readable XLSX"),
        (b"", "text/csv", 400, "empty"),
        (b"hello", "text/plain", 415, "format"),
    ],
)
def test_malformed_files_change_nothing(
    catalog: CatalogHandle, content: bytes, ctype: str, status: int, words: str
) -> None:
    _, key = catalog.org("天津坏文件大学")
    with catalog.client(key) as c:
        before = feed_count(c)
        r = c.post("/v1/patents/bulk", content=content, headers={"content-type": ctype})
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert words in r.json()["detail"]
        assert feed_count(c) == before


def test_limits_give_413_and_change_nothing(small: CatalogHandle) -> None:
    _, key = small.org("天津限额大学")
    with small.client(key) as c:
        r = c.post("/v1/patents/bulk", content=b"x" * 200_001, headers={"content-type": "text/csv"})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        many = [{"application_number": appno(), "title": "t" * 3} for _ in range(301)]
        r = c.post("/v1/patents/bulk", json=many)
        assert r.status_code == 413 and "301 records" in r.json()["detail"]
        assert c.get("/v1/patents", params={"limit": 5}).json()["items"] == []


def test_large_upload_runs_as_a_job(small: CatalogHandle) -> None:
    _, key = small.org("天津作业大学")
    _, other = small.org("天津旁观大学")
    records = [patent("天津作业大学") for _ in range(90)] + [{"title": "bad"}]
    with small.client(key) as c:
        r = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "job-1"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["total"] == 91 and r.headers["location"] == job["poll"]
        for _ in range(300):
            status = c.get(job["poll"]).json()
            if status["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert status["status"] == "done", status
        assert status["processed"] == 91
        assert status["summary"] == {
            "accepted": 90,
            "updated": 0,
            "unchanged": 0,
            "rejected": 1,
            "total": 91,
        }
        rejected = c.get(status["report"], params={"status": "rejected"}).json()["rows"]
        assert [row["row"] for row in rejected] == [91]
        # Retrying with the same key returns the same job instead of a new upload.
        again = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "job-1"})
        assert again.status_code == 202 and again.json()["job_id"] == job["job_id"]
        assert again.headers["idempotency-replayed"] == "true"
        clash = c.post("/v1/patents/bulk", json=records[:5], headers={"Idempotency-Key": "job-1"})
        assert clash.status_code == 409
    with small.client(other) as c:
        assert c.get(job["poll"]).status_code == 403


def test_sync_idempotency_replays_the_same_report(small: CatalogHandle) -> None:
    _, key = small.org("天津幂等大学")
    records = [patent("天津幂等大学") for _ in range(3)]
    with small.client(key) as c:
        first = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "k1"})
        second = c.post("/v1/patents/bulk", json=records, headers={"Idempotency-Key": "k1"})
        assert first.json() == second.json()
        assert first.json()["summary"]["accepted"] == 3
        assert second.headers["idempotency-replayed"] == "true"
        fresh = c.post("/v1/patents/bulk", json=records).json()
        assert fresh["summary"]["unchanged"] == 3


def test_upload_needs_supplier_key(catalog: CatalogHandle) -> None:
    _, sme_key = catalog.org("天津上传中小企业", kind="sme", role="sme")
    with catalog.client(sme_key) as c:
        r = c.post("/v1/patents/bulk", json=[patent("天津上传中小企业")])
        assert r.status_code == 403
    with catalog.client() as c:
        assert c.post("/v1/patents/bulk", json=[]).status_code == 401


def test_empty_workbook_is_malformed(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津空表大学")
    wb = Workbook()
    out = io.BytesIO()
    wb.save(out)
    with catalog.client(key) as c:
        r = c.post("/v1/patents/bulk", content=out.getvalue(), headers={"content-type": XLSX})
        assert r.status_code == 400

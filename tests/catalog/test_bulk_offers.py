"""Offer terms in the bulk upload: a university pools thousands in one file; repeated
numbers are reported across the whole file; the bureau migrates for a university."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from shared.testing import fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.factories import patent

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def chunked(engine: str, db_dir: Path) -> Iterator[CatalogHandle]:
    """Jobs from 20 records, written 10 at a time: repeats can fall in different chunks."""
    with fresh_database(engine, db_dir, "chunked") as url:
        server, admin = start_catalog(url, sync_upload_limit=20, upload_chunk_records=10)
        try:
            yield CatalogHandle(server.url, url, admin)
        finally:
            server.stop()


def test_csv_rows_with_offer_terms_are_pooled_with_a_report(catalog: CatalogHandle) -> None:
    org = "天津条款上传大学"
    _, key = catalog.org(org)
    with catalog.client(key) as c:
        t = c.get("/v1/patents/bulk/template", params={"format": "csv"}).content
        header = next(csv.reader(io.StringIO(t.decode("utf-8-sig"))))
        assert header[-7:] == ["转化方式", "价格(元)", "价格面议", "零元转让", "先使用后付费",
                               "延期支付许可费", "入池日期"]  # fmt: skip
        xlsx = load_workbook(io.BytesIO(c.get("/v1/patents/bulk/template").content)).active
        assert [cell.value for cell in xlsx[1]][-7:] == header[-7:]
        rows = [patent(org) for _ in range(6)]
        rows[5]["legal_status"] = "lapsed"
        terms = [
            ("转让;普通许可", "50000", "", "", "", "", ""),        # listed
            ("普通许可", "", "是", "", "是", "是", ""),           # negotiable, UFPL, deferred
            ("转让", "0", "", "是", "", "", ""),                  # zero price
            ("", "", "", "", "", "", ""),                         # upload only
            ("转让", "100", "", "", "是", "", ""),                # UFPL with assignment only
            ("转让", "100", "", "", "", "", ""),                  # lapsed: not eligible
        ]  # fmt: skip
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        for r, t_ in zip(rows, terms, strict=True):
            w.writerow([r["application_number"], "", r["title"], r["abstract"], "",
                        ";".join(r["ipc_codes"]), org, "张三", r["application_date"],
                        r.get("grant_date") or "", r["legal_status"], *t_])  # fmt: skip
        resp = c.post("/v1/patents/bulk", content=buf.getvalue().encode(),
                      headers={"content-type": "text/csv"})  # fmt: skip
        assert resp.status_code == 200, resp.text
        rep = resp.json()
        got = [(x["status"], x.get("listing")) for x in rep["rows"]]
        assert got == [("accepted", "listed"), ("accepted", "listed"), ("accepted", "listed"),
                       ("accepted", None), ("rejected", None),
                       ("accepted", "not_eligible")], rep  # fmt: skip
        assert "licence mode" in rep["rows"][4]["errors"][0]["reason"]
        assert "lapsed" in rep["rows"][5]["listing_errors"][0]["reason"]
        assert rep["summary"]["listing_listed"] == 3
        ufpl = c.get(f"/v1/patents/{rows[1]['application_number']}").json()["listing"]
        assert (ufpl["modes"], ufpl["negotiable"], ufpl["use_first_pay_later"],
                ufpl["deferred_licence_fee"]) == (["non_exclusive_licence"], True, True, True)  # fmt: skip
        zero = c.get(f"/v1/patents/{rows[2]['application_number']}").json()["listing"]
        assert zero["zero_price"] is True
        # the same file again: nothing changes, and the report says so
        again = c.post("/v1/patents/bulk", content=buf.getvalue().encode(),
                       headers={"content-type": "text/csv"}).json()  # fmt: skip
        assert [x.get("listing") for x in again["rows"][:3]] == ["unchanged"] * 3


def test_repeats_are_reported_across_chunks_of_a_job(chunked: CatalogHandle) -> None:
    org = "天津重复作业大学"
    _, key = chunked.org(org)
    records = [patent(org) for _ in range(25)]
    twin = dict(records[2], title="一种后来更正的标题方法")
    records.append(twin)  # row 26 repeats row 3, two chunks later
    with chunked.client(key) as c:
        r = c.post("/v1/patents/bulk", json=records)
        assert r.status_code == 202, r.text
        for _ in range(300):
            status = c.get(r.json()["poll"]).json()
            if status["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert status["status"] == "done", status
        report = c.get(status["report"]).json()["rows"]
        row3 = next(x for x in report if x["row"] == 3)
        assert row3["status"] == "rejected" and "row 26" in row3["errors"][0]["reason"]
        assert next(x for x in report if x["row"] == 26)["status"] == "accepted"
        got = c.get(f"/v1/patents/{twin['application_number']}").json()
        assert got["title"] == twin["title"]


def test_bureau_uploads_for_a_university_with_back_dated_listing(
    catalog: CatalogHandle,
) -> None:
    org = "天津存量迁移大学"
    uni_id, uni_key = catalog.org(org)
    _, bureau = catalog.org("天津市知识产权局(上传)", kind="other", role="city_bureau")
    rec = {**patent(org), "modes": ["assignment"], "price_cny": "1000",
           "listed_at": "2021-04-01"}  # fmt: skip
    with catalog.client(uni_key) as c:  # the university itself may not back-date
        rep = c.post("/v1/patents/bulk", json=[rec]).json()
        assert rep["rows"][0]["listing"] == "rejected"
        assert rep["rows"][0]["listing_errors"][0]["field"] == "listed_at"
    rec2 = {**patent(org), "modes": ["assignment"], "price_cny": "1000",
            "listed_at": "2021-04-01"}  # fmt: skip
    with catalog.client(bureau) as c:
        r = c.post("/v1/patents/bulk", params={"org_id": uni_id}, json=[rec2])
        assert r.status_code == 200, r.text
        assert r.json()["rows"][0]["listing"] == "listed"
        got = c.get(f"/v1/patents/{rec2['application_number']}").json()
        assert got["owner_org_ids"] == [uni_id]
        assert got["listing"]["first_listed_at"].startswith("2021-03-31T16:00:00")
    with catalog.client(uni_key) as c:  # a university cannot upload for another
        other_id, _ = catalog.org("天津别的迁移大学")
        r = c.post("/v1/patents/bulk", params={"org_id": other_id}, json=[patent(org)])
        assert r.status_code == 403

"""Reported figures, snapshots, exports and matchmaking activity."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS
from shared.db import upgrade
from shared.testing import fresh_database
from tests.indicators.conftest import IndicatorsHandle, start_indicators
from tests.matching.conftest import MatchingHandle


@pytest.fixture(scope="module")
def world(indicators: IndicatorsHandle, bureau: str) -> dict[str, Any]:
    h = indicators
    w: dict[str, Any] = {"bureau": bureau}
    w["uni"], w["uni_key"] = h.org("天津报表大学", "university", "supplier", district="nankai")
    w["sme"], w["sme_key"] = h.org("报表科技公司", "sme", "sme", district="hedong", is_sme=True)
    _, w["bh_key"] = h.org("滨海报表局", "other", "district_bureau", district="binhai")
    _, w["dl_key"] = h.org("东丽报表局", "other", "district_bureau", district="dongli")
    _, w["hd_key"] = h.org("河东报表局", "other", "district_bureau", district="hedong")
    w["p"] = [h.patent(w["uni_key"], "天津报表大学") for _ in range(4)]
    h.wait_synced()
    return w


def figure(h: IndicatorsHandle, key: str, **body: Any) -> Any:
    with h.client(key) as c:
        return c.post("/v1/figures", json={"note": "", **body})


def test_who_may_report_figures(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, w = indicators, world
    bh07 = {"plan": "binhai-002", "indicator": "BH07", "year": 2021, "value": 96}
    assert figure(h, w["uni_key"], **bh07).status_code == 403
    assert figure(h, w["sme_key"], **bh07).status_code == 403
    assert figure(h, w["dl_key"], **bh07).status_code == 403  # not its district
    r = figure(h, w["bh_key"], **bh07)
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "binhai" and r.json()["submitted_by_role"] == "district_bureau"
    # computed indicators come from the ledger, never from a form
    r = figure(h, w["bh_key"], plan="binhai-002", indicator="BH04", year=2021, value=50)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "indicator"
    # city plan: a district reports for its own district only
    c08 = {"plan": "city-001", "indicator": "C08", "year": 2022, "value": 100}
    assert figure(h, w["dl_key"], **c08, district="binhai").status_code == 403
    assert figure(h, w["dl_key"], **c08).json()["scope"] == "dongli"
    assert figure(h, w["bh_key"], **{**c08, "value": 250}).status_code == 201
    prog = h.progress("city-001", 2022)
    assert prog["C08"]["actual"] == "350.00"  # city: the sum of the districts' figures
    assert h.progress("city-001", 2022, district="binhai")["C08"]["actual"] == "250.00"
    assert figure(h, w["bureau"], **c08, district="city").status_code == 404
    assert figure(h, w["bureau"], **{**c08, "value": 400}).status_code == 201
    assert h.progress("city-001", 2022)["C08"]["actual"] == "400.00"  # the city's own figure wins


def test_corrections_keep_history(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, w = indicators, world
    base = {"plan": "binhai-002", "indicator": "BH11", "year": 2021}
    assert figure(h, w["bh_key"], **base, value=74000).status_code == 201
    r = figure(h, w["bh_key"], **base, value=76000)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note"
    r = figure(h, w["bureau"], **base, value=76000, note="统计口径更正")
    assert r.status_code == 201
    with h.client() as c:
        hist = c.get(
            "/v1/figures", params={"plan": "binhai-002", "indicator": "BH11", "history": True}
        ).json()
        cur = c.get("/v1/figures", params={"plan": "binhai-002", "indicator": "BH11"}).json()
        drill = c.get("/v1/plans/binhai-002/indicators/BH11/records", params={"year": 2021}).json()
    assert [(float(f["value"]), f["current"], f["submitted_by_role"]) for f in hist] == [
        (74000, False, "district_bureau"),
        (76000, True, "city_bureau"),
    ]
    assert hist[1]["supersedes_id"] == hist[0]["id"] and hist[1]["note"] == "统计口径更正"
    assert [float(f["value"]) for f in cur] == [76000]
    assert len(drill["items"]) == 2
    row = h.progress("binhai-002", 2021)["BH11"]
    assert (row["actual"], row["target"], row["status"]) == (76000, 75000, "met")
    row = h.progress("binhai-002", 2022)["BH11"]
    assert row["actual"] is None and row["target"] == 85000


def test_snapshot_is_frozen_and_shows_its_difference(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, w = indicators, world
    d = h.deal(w["bureau"], patents=w["p"][:2], suppliers=[w["uni"]], recipient=w["sme"],
               effective="2022-03-01", contract="2022-03-01")  # fmt: skip
    with h.client(w["sme_key"]) as c:
        assert c.post("/v1/snapshots", json={"plan": "city-001", "year": 2022}).status_code == 403
    with h.client(w["dl_key"]) as c:
        r = c.post("/v1/snapshots", json={"plan": "city-001", "year": 2022, "district": "hedong"})
        assert r.status_code == 403
    with h.client(w["hd_key"]) as c:
        r = c.post("/v1/snapshots", json={"plan": "city-001", "year": 2022, "district": "hedong"})
        assert r.status_code == 201, r.text
        snap = r.json()
    frozen = {i["code"]: i for i in snap["figures"]["progress"]["indicators"]}
    assert frozen["C04"]["actual"] == 2 and snap["scope"] == "hedong"
    with h.client(w["bureau"]) as c:
        c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "报送后解除"})
        again = c.get(f"/v1/snapshots/{snap['id']}").json()
        diff = c.get(f"/v1/snapshots/{snap['id']}/diff").json()
    assert again == snap  # never changes
    changed = {x["code"]: x for x in diff["changed"]}
    assert (changed["C04"]["frozen"], changed["C04"]["live"], changed["C04"]["delta"]) == (2, 0, -2)
    assert [x["deal_id"] for x in diff["deals_cancelled_since"]] == [d["id"]]
    assert h.progress("city-001", 2022, district="hedong")["C04"]["actual"] == 0


def test_progress_exports_in_chinese(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h = indicators
    with h.client() as c:
        x = c.get("/v1/plans/binhai-002/progress", params={"year": 2021, "format": "xlsx"})
        j = c.get("/v1/plans/binhai-002/progress", params={"year": 2021}).json()
        cs = c.get("/v1/plans/binhai-002/progress", params={"year": 2021, "format": "csv"})
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(x.content), read_only=True)
    assert wb.sheetnames == ["计划进度", "逐年数据", "说明"]
    rows = list(wb["计划进度"].iter_rows(values_only=True))
    header = rows[0]
    assert header[:4] == ("计划", "范围", "年度", "指标代码") and "实际值" in header
    assert len(rows) == 1 + 23  # all 22 rows, row 2 split in two
    by_code = {r[3]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert by_code["BH11"]["实际值"] == 76000 and by_code["BH11"]["状态"] == "已完成"
    assert by_code["BH11"]["目标值"] == 75000
    assert [r["actual"] for r in j["indicators"]] == [
        by_code[r["code"]]["实际值"] for r in j["indicators"]
    ]
    assert cs.content.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(cs.content.decode("utf-8-sig"))))
    assert parsed[0][3] == "指标代码" and len(parsed) == 24


def test_ledger_export(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, w = indicators, world
    h.deal(w["bureau"], patents=w["p"][2:4], suppliers=[w["uni"]], recipient=w["sme"],
           kind="assignment", effective="2023-01-05", contract="2023-01-02",
           payments=[{"amount": "10000", "received_on": "2023-02-01"}])  # fmt: skip
    with h.client() as c:
        total = len(c.get("/v1/deals", params={"limit": 1000}).json()["items"])
        x = c.get("/v1/ledger/export", params={"format": "xlsx"})
        y = c.get("/v1/ledger/export", params={"format": "csv", "year": 2023})
    assert x.status_code == 200
    rows = list(load_workbook(io.BytesIO(x.content), read_only=True)["转化台账"].iter_rows(
        values_only=True))  # fmt: skip
    assert rows[0][:5] == ("交易编号", "交易类型", "许可类型", "状态", "专利申请号")
    assert len(rows) == 1 + total
    last = dict(zip(rows[0], rows[-1], strict=True))
    assert last["交易类型"] == "转让" and last["专利件数"] == 2 and last["计入1000件的件数"] == 2
    assert last["受让方所在区"] == "河东区" and last["实际到账金额(元)"] == 10000
    assert last["专利申请号"] == "; ".join(w["p"][2:4])
    parsed = list(csv.reader(io.StringIO(y.content.decode("utf-8-sig"))))
    assert len(parsed) == 2 and parsed[1][0] == str(last["交易编号"])


def test_matchmaking_activity_from_the_matching_feed(
    indicators: IndicatorsHandle,
    world: dict[str, Any],
    engine: str,
    db_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A real matching service (on the same catalog) publishes a need and two leads, one
    accepted by the patent's owner; an indicators service following its feed counts them,
    and the accepted lead as converted once the deal is recorded."""
    h, w = indicators, world
    pa, pb = (h.patent(w["uni_key"], "天津报表大学", listed=True) for _ in range(2))
    with fresh_database(engine, db_dir, "matching") as matching_url:
        upgrade(MATCHING_MIGRATIONS, matching_url)
        matching = MatchingHandle(h.catalog, matching_url, tmp_path_factory.mktemp("index"))
        matching.start()
        try:
            matching.wait_synced()
            with matching.client(w["sme_key"]) as c:
                r = c.post("/v1/needs", json={
                    "title": "电池材料", "industry": "1.2",
                    "description": "现寻求一种提高锂离子电池正极材料循环寿命的技术"})  # fmt: skip
                assert r.status_code == 201, r.text
                need = r.json()["id"]
                lead_ids = []
                for number in (pa, pb):
                    r = c.post("/v1/leads", json={"need_id": need, "application_number": number})
                    assert r.status_code == 201, r.text
                    lead_ids.append(r.json()["id"])
            with matching.client(w["uni_key"]) as c:
                r = c.post(f"/v1/leads/{lead_ids[0]}/accept", json={"note": "欢迎洽谈"})
                assert r.status_code == 200, r.text
            with matching.client() as c:
                head = c.get("/v1/feed", params={"limit": 5000}).json()["next_after"]
            with fresh_database(engine, db_dir, "activity") as url:
                server, ind = start_indicators(h.catalog, url, matching_url=matching.url)
                try:
                    ind.wait_synced()
                    # the deal of the accepted lead: pa to the SME
                    ind.deal(w["bureau"], patents=[pa], suppliers=[w["uni"]],
                             recipient=w["sme"])  # fmt: skip
                    with ind.client() as c:
                        for _ in range(400):
                            if c.get("/readyz").json().get("matching_feed") == f"ok at {head}":
                                break
                            time.sleep(0.05)
                        act = c.get("/v1/activity").json()
                finally:
                    server.stop()
        finally:
            matching.stop()
    assert act["totals"] == {"needs_posted": 1, "leads": 2, "leads_accepted": 1,
                             "leads_converted": 1}  # fmt: skip
    this_year = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).year
    assert [y["year"] for y in act["by_year"]] == [this_year]

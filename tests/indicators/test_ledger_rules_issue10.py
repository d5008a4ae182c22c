"""Issue 10, indicators side: deals on patents not in force, status labels that match
the numbers (every plan table), exact money in reports and exports, Tianjin dates."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook

from services.indicators.domain.common import frozen_clock, today
from services.indicators.domain.plans import all_plans, indicator_progress
from tests.indicators.conftest import IndicatorsHandle, new_appno

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def world(indicators: IndicatorsHandle, bureau: str) -> dict[str, Any]:
    h = indicators
    w: dict[str, Any] = {"bureau": bureau}
    w["uni"], w["uni_key"] = h.org("天津在效大学", "university", "supplier", district="jizhou")
    w["sme"], w["sme_key"] = h.org("在效科技公司", "sme", "sme", district="jizhou", is_sme=True)
    # a utility model filed 2012-03-01: its 10-year term ended on 2022-03-01
    w["um"] = h.seed_patent(
        [w["uni"]], appno=new_appno(2012, "2"), patent_type="utility_model",
        application_date="2012-03-01", grant_date="2012-09-01", expiry_date=None,
    )["application_number"]  # fmt: skip
    w["void"] = h.seed_patent([w["uni"]], legal_status="invalidated")["application_number"]
    # no dates at all (an older catalog record): the number says utility model, filed 2010
    w["undated"] = h.seed_patent(
        [w["uni"]], appno=new_appno(2010, "2"), patent_type="utility_model",
        application_date=None, grant_date=None, expiry_date=None,
    )["application_number"]  # fmt: skip
    w["ok"] = [h.seed_patent([w["uni"]])["application_number"] for _ in range(4)]
    h.wait_synced()
    return w


def _post(h: IndicatorsHandle, key: str, body: dict[str, Any]) -> Any:
    from tests.indicators.conftest import deal_body

    with h.client(key) as c:
        return c.post("/v1/deals", json=deal_body(**body))


# --- 1. deals on patents not in force ---------------------------------------------------


def test_deal_on_a_patent_not_in_force_is_refused_or_excluded(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, w = indicators, world
    parties = {"suppliers": [w["uni"]], "recipient": w["sme"]}
    r = _post(h, w["bureau"], {"patents": [w["um"]], **parties,
                               "effective": "2023-05-10", "contract": "2023-05-01"})  # fmt: skip
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["field"] == "application_numbers[0]"
    assert "10-year term" in err["reason"] and "ended on 2022-03-01" in err["reason"]
    # in Chinese when the reader does not ask for English
    from tests.indicators.conftest import deal_body

    with httpx.Client(base_url=h.url, headers={"Authorization": f"Bearer {w['bureau']}"}) as c:
        zh = c.post(
            "/v1/deals",
            json=deal_body(
                patents=[w["um"]], **parties, effective="2023-05-10", contract="2023-05-01"
            ),
        )
    assert zh.status_code == 422 and zh.json()["title"] == "校验未通过"
    assert "实用新型的保护期为 10 年" in zh.json()["errors"][0]["reason"]
    # the batch load reports the same reason per rejected item, in the reader's language
    late_body = deal_body(patents=[w["um"]], **parties, effective="2023-05-10",
                          contract="2023-05-01")  # fmt: skip
    with httpx.Client(base_url=h.url, headers={"Authorization": f"Bearer {w['bureau']}"}) as c:
        batch = c.post("/v1/deals/batch", json=[late_body]).json()
    assert batch["created"] == [] and "届满" in batch["rejected"][0]["errors"][0]["reason"]
    with h.client(w["bureau"]) as c:  # English
        batch = c.post("/v1/deals/batch", json=[late_body]).json()
    assert "ended on 2022-03-01" in batch["rejected"][0]["errors"][0]["reason"]
    # while it was in force, the same patent deals normally and counts
    ok = h.deal(w["bureau"], patents=[w["um"]], **parties, effective="2021-05-10",
                contract="2021-05-01")  # fmt: skip
    assert ok["counted_lines"] == 1 and ok["excluded"] is False
    before = h.progress("city-001", 2023, district="jizhou")
    # without a filing date, the application number bounds the term (2010 + 10 years)
    r = _post(h, w["bureau"], {"patents": [w["undated"]], **parties})  # effective 2022-05-10
    assert r.status_code == 422 and "2020-12-31 at the latest" in r.text
    # never in force: refused whatever the date
    r = _post(h, w["bureau"], {"patents": [w["void"]], **parties})
    assert r.status_code == 422 and "never in force" in r.json()["errors"][0]["reason"]
    # the override: bureau or admin only, with a reason
    late = {"patents": [w["um"]], **parties, "effective": "2023-05-10", "contract": "2023-05-01",
            "amount": "70000", "override_not_in_force": True}  # fmt: skip
    assert _post(h, w["uni_key"], {**late, "override_reason": "迁移"}).status_code == 403
    r = _post(h, w["bureau"], late)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "override_reason"
    r = _post(h, w["bureau"], {**late, "override_reason": "历史台账迁移，合同真实存在"})
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["excluded"] is True and d["counted_lines"] == 0
    assert "2022-03-01" in d["not_in_force_reason"]
    # excluded from every count of the year
    after = h.progress("city-001", 2023, district="jizhou")
    for code in ("C04", "C05", "C07"):
        assert after[code]["actual"] == before[code]["actual"], code
    with h.client() as c:
        listed = c.get("/v1/consistency").json()["deals_on_patents_not_in_force"]
    assert [x["deal_id"] for x in listed] == [d["id"]]
    assert listed[0]["override_reason"] == "历史台账迁移，合同真实存在"
    # a registered deal cannot take effect after the term ended
    reg = h.deal(w["bureau"], patents=[w["um"]], **parties, status="registered",
                 effective=None, contract="2021-12-01")  # fmt: skip
    with h.client(w["bureau"]) as c:
        r = c.post(f"/v1/deals/{reg['id']}/effective", json={"effective_date": "2022-06-01"})
        assert r.status_code == 422 and "2022-03-01" in r.json()["detail"]
        r = c.post(f"/v1/deals/{reg['id']}/effective", json={"effective_date": "2022-01-10"})
        assert r.status_code == 200, r.text


# --- 2. status labels that match the numbers, for every plan table ------------------------


def _judged_target(row: dict[str, Any]) -> float | None:
    return row["target"] if row["target"] is not None else row["final_target"]


@pytest.mark.parametrize("code", sorted(all_plans()))
def test_every_row_with_a_target_has_a_status_of_its_numbers(code: str) -> None:
    plan = all_plans()[code]
    for year in range(plan.start.year, plan.deadline.year + 1):
        as_of = date(year, 12, 31)
        for ind in plan.indicators:
            for annual in ({}, {y: 5.0 for y in range(plan.base_year, year + 1)}):
                row = indicator_progress(plan, ind, annual, year, as_of, plan.district or "city")
                target = _judged_target(row)
                if target is None:
                    assert row["status"] is None, (code, ind.code, year)
                    continue
                assert row["status"] is not None, (code, ind.code, year, annual)
                if row["actual"] is None:
                    assert row["status"] == "no_data"
                elif Decimal(str(row["actual"])) >= Decimal(str(target)):
                    assert row["status"] == "met", (code, ind.code, year)
                else:
                    assert row["status"] in ("behind", "on_track", "at_risk"), (code, ind.code)


def test_xlsx_status_column_matches_targets_in_every_plan(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h = indicators
    for code, plan in all_plans().items():
        year = min(plan.deadline.year, 2022)
        with h.client() as c:
            j = c.get(f"/v1/plans/{code}/progress", params={"year": year}).json()
            x = c.get(f"/v1/plans/{code}/progress", params={"year": year, "format": "xlsx"})
        with_target = [r for r in j["indicators"] if _judged_target(r) is not None]
        assert with_target, code
        assert all(r["status"] not in (None, "no_target") for r in with_target), code
        no_target = len(j["indicators"]) - len(with_target)
        assert j["status_counts"].get("no_target", 0) == no_target, code
        rows = list(load_workbook(io.BytesIO(x.content), read_only=True)["计划进度"].iter_rows(
            values_only=True))  # fmt: skip
        head = rows[0]
        for raw in rows[1:]:
            cell = dict(zip(head, raw, strict=True))
            has_target = cell["目标值"] is not None or cell["期末目标"] is not None
            assert (cell["状态"] == "无目标") == (not has_target), (code, cell["指标代码"])


# --- 3. money as decimals ---------------------------------------------------------------


def test_amounts_are_exact_in_reports_and_exports(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, w = indicators, world
    sme, _ = h.org("金额科技公司", "sme", "sme", district="jinghai", is_sme=True)
    parties = {"suppliers": [w["uni"]], "recipient": sme, "kind": "assignment",
               "effective": "2022-08-01", "contract": "2022-08-01"}  # fmt: skip
    h.deal(w["bureau"], patents=[w["ok"][0]], amount="0.10", **parties)
    h.deal(w["bureau"], patents=[w["ok"][1]], amount="0.20", **parties)
    row = h.progress("city-001", 2022, district="jinghai")["C05"]
    assert row["actual"] == "0.30" and row["money"] is True  # not 0.30000000000000004
    assert [s["value"] for s in row["series"]][-1] == "0.30"
    with h.client() as c:
        x = c.get("/v1/plans/city-001/progress",
                  params={"year": 2022, "district": "jinghai", "format": "xlsx"})  # fmt: skip
        led = c.get("/v1/ledger/export", params={"format": "csv", "district": "jinghai"})
        ledx = c.get("/v1/ledger/export", params={"format": "xlsx", "district": "jinghai"})
        recs = c.get("/v1/plans/city-001/indicators/C05/records",
                     params={"year": 2022, "district": "jinghai"}).json()["items"]  # fmt: skip
    assert sorted(r["contract_amount"] for r in recs) == ["0.10", "0.20"]  # drill-down too
    ws = load_workbook(io.BytesIO(x.content))["计划进度"]
    head = [c.value for c in ws[1]]
    c05 = next(r for r in ws.iter_rows(min_row=2) if r[3].value == "C05")
    cell = c05[head.index("实际值")]
    assert cell.value == pytest.approx(0.3) and cell.number_format == "0.00"
    parsed = list(csv.reader(io.StringIO(led.content.decode("utf-8-sig"))))
    amounts = {r[parsed[0].index("合同金额(元)")] for r in parsed[1:]}
    assert {"0.10", "0.20"} <= amounts  # exact text, never 0.1 / 0.2 from a float
    lws = load_workbook(io.BytesIO(ledx.content))["转化台账"]
    lhead = [c.value for c in lws[1]]
    money_cells = [r[lhead.index("合同金额(元)")] for r in lws.iter_rows(min_row=2)]
    assert money_cells and all(c.number_format == "0.00" for c in money_cells)


def test_reported_amounts_sum_exactly(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h = indicators
    for district, value in (("baodi", "0.1"), ("ninghe", "0.2")):
        _, key = h.org(f"{district}金额局", "other", "district_bureau", district=district)
        with h.client(key) as c:
            body = {"plan": "city-001", "indicator": "C16", "year": 2022, "value": value,
                    "note": ""}  # fmt: skip
            assert c.post("/v1/figures", json=body).status_code == 201
    assert h.progress("city-001", 2022)["C16"]["actual"] == "0.30"


# --- 4. business dates in Asia/Shanghai -------------------------------------------------


def test_today_is_the_tianjin_date_just_after_midnight(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, w = indicators, world
    # 00:30 on 1 January in Tianjin is still 31 December in UTC
    at = datetime(2026, 1, 1, 0, 30, tzinfo=SHANGHAI)
    assert at.astimezone(UTC).date() == date(2025, 12, 31)
    with frozen_clock(at):
        assert today() == date(2026, 1, 1)
        with h.client() as c:
            r = c.get("/v1/plans/city-001/progress", params={"year": 2026})
            assert r.status_code == 200 and r.json()["as_of"] == "2026-01-01"
            r = c.get("/v1/plans/city-001/progress", params={"as_of": "2026-01-01"})
            assert r.status_code == 200, r.text  # not "in the future"
        d = h.deal(w["bureau"], patents=[w["ok"][2]], suppliers=[w["uni"]], recipient=w["sme"],
                   effective="2026-01-01", contract="2026-01-01")  # fmt: skip
        assert d["effective_date"] == "2026-01-01"
        r = _post(h, w["bureau"], {"patents": [w["ok"][3]], "suppliers": [w["uni"]],
                                   "recipient": w["sme"], "effective": "2026-01-02",
                                   "contract": "2026-01-02"})  # fmt: skip
        assert r.status_code == 422 and "future" in r.text


def test_year_boundaries_are_tianjin_years(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    """A patent pooled at 01:00 on 1 January 2020 in Tianjin (17:00 UTC the day before)
    entered the pool in 2020, not 2019."""
    h, w = indicators, world
    p = h.seed_patent([w["uni"]])
    h.seed_listing(p, first_listed_at="2019-12-31T17:00:00+00:00")
    h.wait_synced()
    with h.client() as c:
        rows = c.get("/v1/breakdowns/pool", params={"by": "year"}).json()
    years = {r["year"]: r["ever_pooled"] for r in rows}
    assert years.get(2020) == 1 and 2019 not in years

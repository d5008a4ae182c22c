"""Pledges, SME patent-product filings, securitisations; breakdowns and drill-down."""

from __future__ import annotations

from typing import Any

import pytest

from tests.indicators.conftest import IndicatorsHandle


@pytest.fixture(scope="module")
def world(indicators: IndicatorsHandle, bureau: str) -> dict[str, Any]:
    h = indicators
    w: dict[str, Any] = {"bureau": bureau}
    w["uni"], w["uni_key"] = h.org("天津事件大学", "university", "supplier", district="nankai")
    w["sme"], w["sme_key"] = h.org("事件科技公司", "sme", "sme", district="binhai", is_sme=True)
    w["big"], _ = h.org("事件大型企业", "enterprise", None, district="binhai")
    _, w["bh_key"] = h.org("滨海事件局", "other", "district_bureau", district="binhai")
    _, w["dl_key"] = h.org("东丽事件局", "other", "district_bureau", district="dongli")
    w["p"] = [h.patent(w["uni_key"], "天津事件大学") for _ in range(2)]
    h.wait_synced()
    return w


def test_event_writers(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, w = indicators, world
    filing = {"filing_number": "BA-2021-0001", "org_id": w["sme"], "product_name": "电池隔膜",
              "filed_on": "2021-04-01", "application_numbers": [w["p"][0]]}  # fmt: skip
    for key in (w["sme_key"], w["uni_key"], w["dl_key"]):
        with h.client(key) as c:
            assert c.post("/v1/product-filings", json=filing).status_code == 403
    with h.client(w["bh_key"]) as c:
        assert c.post("/v1/product-filings", json=filing).status_code == 201
        assert c.post("/v1/product-filings", json=filing).status_code == 409
        bad = {**filing, "filing_number": "BA-X", "org_id": 999999}
        r = c.post("/v1/product-filings", json=bad)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org_id"
        pledge = {"registration_number": "ZY-1", "pledgor_org_id": w["sme"], "lender": "银行",
                  "amount": "100", "registered_on": "2021-01-01", "asset_kind": "trademark",
                  "application_numbers": [w["p"][0]]}  # fmt: skip
        r = c.post("/v1/pledges", json=pledge)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "trademark_numbers"


def test_filings_and_securitisations_feed_the_plans(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, w = indicators, world

    def c10_values() -> list[int]:
        series = h.progress("city-001", 2022, district="binhai")["C10"]["series"]
        return [s["base_value"] for s in series]

    # Other tests of this module file products too: count what this test adds, so it
    # passes alone, first, or after them.
    before = c10_values()
    with h.client(w["bureau"]) as c:
        for i, (org, day) in enumerate([(w["sme"], "2020-05-01"), (w["sme"], "2021-05-01"),
                                        (w["sme"], "2021-06-01"), (w["big"], "2021-07-01")]):  # fmt: skip
            r = c.post("/v1/product-filings", json={
                "filing_number": f"BA-P-{i}", "org_id": org, "product_name": "产品",
                "filed_on": day, "application_numbers": [w["p"][1]]})  # fmt: skip
            assert r.status_code == 201, r.text
        for i, day in enumerate(["2021-09-01", "2022-09-01"]):
            r = c.post("/v1/securitisations", json={
                "code": f"ABS-{i}", "name": "知识产权资产支持专项计划", "issuer": "某证券",
                "district": "binhai", "issued_on": day, "amount": "100000000",
                "originator_org_ids": [w["sme"]]})  # fmt: skip
            assert r.status_code == 201, r.text
    city = h.progress("city-001", 2022, district="binhai")
    # SME filings added: 2020: 1, 2021: 2; not the big firm's
    c10 = city["C10"]
    after = [s["base_value"] for s in c10["series"]]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2, 0]
    assert c10["series"][1]["growth"] == pytest.approx(100 * (after[1] - after[0]) / after[0])
    assert city["C12"]["actual"] == 2
    bh = h.progress("binhai-002", 2021)
    assert bh["BH05"]["actual"] == 1 and bh["BH05"]["status"] == "met"  # target 1 in 2021
    with h.client() as c:
        recs = c.get("/v1/plans/city-001/indicators/C12/records",
                     params={"year": 2022}).json()  # fmt: skip
    assert sorted(r["code"] for r in recs["items"]) == ["ABS-0", "ABS-1"]


def test_breakdowns_add_up(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, w = indicators, world
    h.deal(w["bureau"], patents=w["p"], suppliers=[w["uni"]], recipient=w["sme"],
           kind="assignment", effective="2021-03-01", contract="2021-03-01")  # fmt: skip
    h.deal(w["bureau"], patents=w["p"][:1], suppliers=[w["uni"]], recipient=w["sme"],
           effective="2022-03-01", contract="2022-03-01")  # fmt: skip
    h.deal(w["bureau"], patents=w["p"][:1], suppliers=[w["uni"]], recipient=w["big"],
           effective="2022-04-01", contract="2022-04-01")  # fmt: skip
    with h.client() as c:
        out = {
            by: c.get("/v1/breakdowns/sme_patent_deals", params={"by": by}).json()
            for by in ("year", "district", "supplier", "industry", "kind")
        }
        alls = c.get("/v1/breakdowns/all_deals", params={"by": "kind"}).json()
    assert all(o["total_patent_deals"] == 3 for o in out.values())
    assert [(r["year"], r["patent_deals"]) for r in out["year"]["rows"]] == [(2021, 2), (2022, 1)]
    assert [(r["kind"], r["patent_deals"]) for r in out["kind"]["rows"]] == [
        ("assignment", 2),
        ("licence", 1),
    ]
    assert out["supplier"]["rows"][0]["supplier_name"] == "天津事件大学"
    assert out["year"]["rows"][0]["distinct_patents"] == 2
    assert alls["total_patent_deals"] == 4  # the non-SME recipient counts in all deals only

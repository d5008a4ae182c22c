"""Each counting rule of docs/indicators.md, on live services over HTTP.

Every test works in its own district (recipients there), and reads the city plan's
figures for that district, so the tests of this module do not see each other's deals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.indicators.conftest import IndicatorsHandle


@pytest.fixture(scope="module")
def world(indicators: IndicatorsHandle, bureau: str) -> dict[str, Any]:
    h = indicators
    w: dict[str, Any] = {"bureau": bureau}
    w["uni"], w["uni_key"] = h.org("天津规则大学", "university", "supplier", district="nankai")
    w["inst"], _ = h.org("天津规则研究院", "institute", "supplier", district="dongli")
    w["soe"], _ = h.org("天津规则集团", "soe", "supplier", district="hexi")
    w["ent"], _ = h.org("天津规则实业公司", "enterprise", None, district="nankai")
    w["bj_uni"], _ = h.org("北京规则大学", "university", None, district=None, province="北京市")
    w["patents"] = [h.patent(w["uni_key"], "天津规则大学") for _ in range(17)]
    h.wait_synced()
    return w


def sme(h: IndicatorsHandle, name: str, district: str, **extra: Any) -> int:
    org_id, _ = h.org(name, "sme", None, district=district, is_sme=True, **extra)
    return org_id


def c04(h: IndicatorsHandle, district: str, year: int = 2023) -> tuple[Any, Any]:
    prog = h.progress("city-001", year, district=district)
    return prog["C04"]["actual"], prog["C04B"]["actual"]


def test_one_patent_licensed_to_many_smes_counts_once_per_sme(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][0]
    smes = [sme(h, f"和平许可{i}公司", "heping") for i in range(3)]
    h.wait_synced()
    for s in smes:
        h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=s)
    assert c04(h, "heping") == (3, 1)  # three patent-deals, one distinct patent
    with h.client() as c:
        r = c.get(
            "/v1/plans/city-001/indicators/C04/records",
            params={"year": 2023, "district": "heping"},
        ).json()
    assert r["total"] == 3
    assert sorted(i["recipient_org_id"] for i in r["items"]) == sorted(smes)
    assert {i["application_number"] for i in r["items"]} == {p}


def test_a_bundle_counts_each_patent(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, ps = indicators, world["patents"][1:4]
    s = sme(h, "河东打包公司", "hedong")
    h.wait_synced()
    d = h.deal(
        world["bureau"], patents=ps, suppliers=[world["uni"]], recipient=s, kind="assignment"
    )
    assert d["counted_lines"] == 3
    assert c04(h, "hedong") == (3, 3)


def test_a_re_transfer_by_an_sme_does_not_count_again(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][4]
    first, second = sme(h, "河西首受公司", "hexi"), sme(h, "河西再受公司", "hexi")
    h.wait_synced()
    h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=first,
           kind="assignment", effective="2021-04-01", contract="2021-03-01")  # fmt: skip
    d = h.deal(world["bureau"], patents=[p], suppliers=[first], recipient=second,
               kind="assignment", effective="2022-04-01", contract="2022-03-01")  # fmt: skip
    assert d["qualifies"] is False and d["counted_lines"] == 0
    assert c04(h, "hexi") == (1, 1)


def test_co_owned_patent_counts_once_with_one_qualifying_co_owner(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p, q = indicators, world["patents"][5], world["patents"][6]
    s = sme(h, "南开共有公司", "nankai")
    h.wait_synced()
    d = h.deal(world["bureau"], patents=[p], suppliers=[world["ent"], world["uni"]], recipient=s)
    assert d["counted_lines"] == 1
    d2 = h.deal(world["bureau"], patents=[q], suppliers=[world["ent"]], recipient=s)
    assert d2["counted_lines"] == 0  # an ordinary enterprise is not a supplier of the plan
    assert c04(h, "nankai") == (1, 1)
    with h.client() as c:
        rows = c.get(
            "/v1/breakdowns/sme_patent_deals", params={"by": "supplier", "district": "nankai"}
        ).json()["rows"]
    # attributed to the qualifying co-owner, once
    assert [(r["supplier"], r["patent_deals"]) for r in rows] == [(world["uni"], 1)]


def test_licence_later_turned_into_equity_counts_once(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][7]
    s = sme(h, "河北入股公司", "hebei")
    h.wait_synced()
    lic = h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=s,
                 effective="2021-06-01", contract="2021-05-20")  # fmt: skip
    eq = h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=s,
                kind="equity", effective="2022-06-01", contract="2022-05-20",
                converted_from_deal_id=lic["id"])  # fmt: skip
    assert eq["counted_lines"] == 0
    prog = h.progress("city-001", 2023, district="hebei")["C04"]
    assert prog["actual"] == 1
    assert [s["value"] for s in prog["series"]] == [1, 0, 0]
    # a converted-from deal that is cancelled leaves the equity deal counting on its own
    with h.client(world["bureau"]) as c:
        assert c.post(f"/v1/deals/{lic['id']}/cancel", json={"reason": "作废"}).status_code == 200
        assert c.get(f"/v1/deals/{eq['id']}").json()["counted_lines"] == 1
    prog = h.progress("city-001", 2023, district="hebei")["C04"]
    assert [s["value"] for s in prog["series"]] == [0, 1, 0]


def test_a_cancelled_deal_stops_counting(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][8]
    s = sme(h, "红桥注销公司", "hongqiao")
    h.wait_synced()
    d = h.deal(world["bureau"], patents=[p], suppliers=[world["soe"]], recipient=s)
    assert c04(h, "hongqiao") == (1, 1)
    with h.client(world["bureau"]) as c:
        r = c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "合同解除"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "again"}).status_code == 409
    assert c04(h, "hongqiao") == (0, 0)


def test_parties_are_judged_at_the_effective_date(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][9]
    s = sme(h, "西青迁址公司", "xiqing")
    h.wait_synced()
    early = h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=s,
                   effective="2022-03-01", contract="2022-02-01")  # fmt: skip
    with h.catalog.client(h.catalog.admin_key) as c:
        r = c.patch(f"/v1/organisations/{s}", json={"district": "jinnan"})
        assert r.status_code == 200, r.text
    h.wait_synced()
    from services.indicators.domain.common import today

    now = today().isoformat()
    late = h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=s,
                  effective=now, contract=now)  # fmt: skip
    backdated = h.deal(world["bureau"], patents=[p], suppliers=[world["uni"]], recipient=s,
                       effective="2022-09-01", contract="2022-08-01")  # fmt: skip
    with h.client() as c:
        got = {d: c.get(f"/v1/deals/{d}").json()["recipient"]["district"]
               for d in (early["id"], late["id"], backdated["id"])}  # fmt: skip
    # recorded before the move: frozen; after the move but dated before it: the old district
    assert got == {early["id"]: "xiqing", late["id"]: "jinnan", backdated["id"]: "xiqing"}
    assert c04(h, "xiqing")[0] == 2


def test_only_qualifying_parties_and_effective_deals_count(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][10]
    s = sme(h, "静海合规公司", "jinghai")
    big, _ = h.org("静海大型企业", "enterprise", None, district="jinghai")
    outside, _ = h.org("外省中小公司", "sme", None, district=None, province="河北省", is_sme=True)
    h.wait_synced()
    b = world["bureau"]
    assert h.deal(b, patents=[p], suppliers=[world["bj_uni"]], recipient=s)["qualifies"] is False
    assert h.deal(b, patents=[p], suppliers=[world["uni"]], recipient=big)["qualifies"] is False
    assert h.deal(b, patents=[p], suppliers=[world["uni"]], recipient=outside)["qualifies"] is False
    reg = h.deal(b, patents=[p], suppliers=[world["uni"]], recipient=s, status="registered",
                 effective=None)  # fmt: skip
    assert reg["qualifies"] is True and reg["counted_lines"] == 0
    assert c04(h, "jinghai") == (0, 0)
    with h.client(b) as c:
        r = c.post(f"/v1/deals/{reg['id']}/effective", json={"effective_date": "2023-02-01"})
        assert r.status_code == 200, r.text
        assert r.json()["counted_lines"] == 1
    assert c04(h, "jinghai") == (1, 1)


def test_rising_every_year_and_the_plan_window(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, ps = indicators, world["patents"][11:14]
    s = sme(h, "宝坻递增公司", "baodi")
    h.wait_synced()
    b = world["bureau"]
    plan = [("2020-07-01", ps[:1]), ("2021-07-01", ps[:1]), ("2022-07-01", ps[:2]),
            ("2023-07-01", ps[1:3])]  # fmt: skip
    for day, patents in plan:
        h.deal(b, patents=patents, suppliers=[world["inst"]], recipient=s, effective=day,
               contract=day)  # fmt: skip
    row = h.progress("city-001", 2023, district="baodi")["C04"]
    # 2020 is before the plan's start (2021-01-01) and is not counted
    assert row["actual"] == 5
    assert [x["value"] for x in row["series"]] == [1, 2, 2]
    assert row["rising_every_year"] == {
        "years": [2021, 2022, 2023],
        "rising": False,
        "not_rising": [2023],
    }
    assert row["target"] is None and row["status"] is None  # city targets are not split


def test_binhai_row_4_counts_smes_converting_academic_patents(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, p = indicators, world["patents"][0]
    a = sme(h, "滨海甲公司", "binhai")
    bb = sme(h, "滨海乙公司", "binhai")
    h.wait_synced()
    b = world["bureau"]
    h.deal(b, patents=[p], suppliers=[world["uni"]], recipient=a, effective="2021-03-01",
           contract="2021-03-01")  # fmt: skip
    h.deal(b, patents=[p], suppliers=[world["inst"]], recipient=a, effective="2022-03-01",
           contract="2022-03-01")  # fmt: skip
    h.deal(b, patents=[p], suppliers=[world["soe"]], recipient=bb, effective="2022-03-01",
           contract="2022-03-01")  # fmt: skip
    bh = h.progress("binhai-002", 2022)
    assert bh["BH04"]["actual"] == 1  # SME a once; SOE deals are not 高校院所
    assert [x["cumulative"] for x in bh["BH04"]["series"]] == [0, 1, 1]
    assert bh["BH04"]["target"] == 100 and bh["BH04"]["status"] == "behind"
    # BH01 counts every assignment/licence into Binhai: 2021: 1, 2022: 2
    assert [x["base_value"] for x in bh["BH01"]["series"]][-2:] == [1, 2]
    assert bh["BH01"]["series"][-1]["growth"] == 100
    assert h.progress("city-001", 2023, district="binhai")["C04"]["actual"] == 3


def test_pledges_count_by_registration_year(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, b = indicators, world["bureau"]
    amounts = {2018: "1000000", 2019: "1300000", 2020: "1690000"}
    for year, amount in amounts.items():
        body = {
            "registration_number": f"Y2019{year}ZL001",
            "pledgor_org_id": world["inst"],  # dongli
            "lender": "天津银行",
            "amount": amount,
            "registered_on": f"{year}-05-01",
            "asset_kind": "mixed" if year == 2020 else "patent",
            "application_numbers": [world["patents"][0]],
            "trademark_numbers": ["12345678"] if year == 2020 else [],
        }
        with h.client(b) as c:
            r = c.post("/v1/pledges", json=body)
            assert r.status_code == 201, r.text
            assert c.post("/v1/pledges", json=body).status_code == 409
    dl = h.progress("dongli-003", 2020)
    assert dl["DL09"]["actual"] == 30 and dl["DL09"]["status"] == "met"  # 1.0 -> 1.69 M: 30 %/yr
    assert dl["DL11"]["actual"] == 0 and dl["DL11"]["status"] == "behind"  # 1 pledge a year
    assert dl["DL12"]["actual"] == 1


def test_pool_ever_and_currently_pooled(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h = indicators
    owner, _ = h.org("天津池子大学", "university", "supplier", district="wuqing")
    # history from the catalog feed: pooled in 2021, converted in 2022
    p1 = h.seed_patent([owner])
    lid = h.seed_listing(p1, first_listed_at="2021-03-01T02:00:00+00:00")
    h.seed_listing(p1, status="converted", first_listed_at="2021-03-01T02:00:00+00:00",
                   updated_at="2022-05-01T02:00:00+00:00", listing_id=lid)  # fmt: skip
    p2 = h.seed_patent([owner])
    h.seed_listing(p2, first_listed_at="2022-08-01T02:00:00+00:00")
    h.wait_synced()
    y21 = h.progress("city-001", 2021, district="wuqing")
    y22 = h.progress("city-001", 2022, district="wuqing")
    assert (y21["C03"]["actual"], y21["C03B"]["actual"]) == (1, 1)
    assert (y22["C03"]["actual"], y22["C03B"]["actual"]) == (2, 1)
    # and through the catalog's own API today
    key = h.org("天津池子大学")[1]
    n = h.patent(key, "天津池子大学", listed=True)
    h.wait_synced()
    from services.indicators.domain.common import today

    y = today().year
    assert h.progress("city-001", y, district="wuqing")["C03"]["actual"] == 3
    with h.catalog.client(key) as c:
        listing = c.get(f"/v1/patents/{n}").json()["listing"]
        r = c.patch(f"/v1/listings/{listing['id']}", json={"status": "withdrawn", "reason": "x"})
        assert r.status_code == 200, r.text
    h.wait_synced()
    now = h.progress("city-001", y, district="wuqing")
    assert (now["C03"]["actual"], now["C03B"]["actual"]) == (3, 1)  # ever 3, now only p2
    with h.client() as c:
        rows = c.get("/v1/breakdowns/pool", params={"by": "district"}).json()
    assert {"district": "wuqing", "ever_pooled": 3, "currently_pooled": 1} in rows


def test_money_indicators_c05_to_c07(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    """C05 contract amount and C07 SMEs benefiting count effective qualifying deals by the
    year they took effect; C06 counts their payments by the year each was received.
    Deals that do not qualify (supplier outside Tianjin, an ordinary enterprise as
    supplier) add nothing to any of the three."""
    h, w = indicators, world
    p, q, r = w["patents"][14:17]
    a = sme(h, "津南金额甲公司", "jinnan")
    b = sme(h, "津南金额乙公司", "jinnan")
    h.wait_synced()
    pay = [{"amount": "20000", "received_on": "2022-06-01"},
           {"amount": "30000", "received_on": "2023-02-01"}]  # fmt: skip
    h.deal(w["bureau"], patents=[p], suppliers=[w["uni"]], recipient=a, amount="50000",
           payments=pay)  # fmt: skip
    h.deal(w["bureau"], patents=[q], suppliers=[w["uni"]], recipient=a, kind="assignment",
           amount="70000")  # fmt: skip
    h.deal(w["bureau"], patents=[r], suppliers=[w["uni"]], recipient=b, amount="10000",
           payments=[{"amount": "10000", "received_on": "2022-07-01"}])  # fmt: skip
    # Not qualifying: a supplier outside Tianjin; an ordinary enterprise as supplier.
    out = h.deal(w["bureau"], patents=[q], suppliers=[w["bj_uni"]], recipient=b,
                 amount="999999", payments=[{"amount": "1000", "received_on": "2022-08-01"}])  # fmt: skip
    ent = h.deal(w["bureau"], patents=[r], suppliers=[w["ent"]], recipient=b, amount="888888",
                 payments=[{"amount": "2000", "received_on": "2022-09-01"}])  # fmt: skip
    assert out["counted_lines"] == 0 and ent["counted_lines"] == 0

    def money(code: str, year: int) -> Decimal:
        return Decimal(str(h.progress("city-001", year, district="jinnan")[code]["actual"]))

    assert money("C05", 2022) == Decimal("130000")  # 50,000 + 70,000 + 10,000
    assert money("C06", 2022) == Decimal("30000")  # 20,000 + 10,000 received in 2022
    assert money("C06", 2023) == Decimal("30000")  # the second instalment, received in 2023
    assert money("C05", 2023) == 0  # no deal took effect in 2023
    assert money("C07", 2022) == 2  # A (two deals) and B: distinct SMEs
    assert money("C07", 2023) == 0

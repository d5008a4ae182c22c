"""End to end through the public HTTP APIs: a migrated ledger with dated organisation
changes and a back-dated pool gives the yearly figures an independent computation says.

Hard cases: an SME outgrows its status mid-year (back-dated after its deals were
recorded), a Tianjin SME moves out (back-dated), a deal recorded after the change but
dated before it, a pool listed since 2021 with a back-dated withdrawal. A snapshot taken
before the corrections keeps what was reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from tests.indicators.conftest import IndicatorsHandle, new_appno
from tests.indicators.test_loop import pair, wait_for  # noqa: F401  (the live pair fixture)


@dataclass
class Deal:
    recipient: str
    effective: date
    patents: int
    amount: Decimal


# What the bureau's spreadsheets say, as (effective from, is SME, in Tianjin).
TRUTH: dict[str, list[tuple[date, bool, bool]]] = {
    "S1": [(date.min, True, True), (date(2022, 7, 1), False, True)],  # outgrew SME status
    "S2": [(date.min, True, True), (date(2023, 3, 1), True, False)],  # moved to 河北省
    "S3": [(date.min, True, True)],
}
DEALS = [
    Deal("S1", date(2022, 3, 10), 2, Decimal("80000")),
    Deal("S1", date(2022, 9, 1), 1, Decimal("30000")),  # after it outgrew: not counted
    Deal("S2", date(2022, 11, 1), 1, Decimal("20000")),
    Deal("S2", date(2023, 5, 1), 2, Decimal("60000")),  # after the move: not counted
    Deal("S3", date(2023, 2, 1), 1, Decimal("10000")),
]
LATE_DEAL = Deal("S1", date(2022, 5, 1), 2, Decimal("5000"))  # recorded after the change


def state(org: str, on: date) -> tuple[bool, bool]:
    sme, tianjin = TRUTH[org][0][1:]
    for start, s, t in TRUTH[org]:
        if start <= on:
            sme, tianjin = s, t
    return sme, tianjin


def expected(deals: list[Deal], *, dated: bool) -> dict[int, tuple[int, Decimal]]:
    """Patent-deals and contract amounts per year for the 1000 rule, judged with the
    dated truth (or, `dated=False`, with every organisation's first state)."""
    out: dict[int, tuple[int, Decimal]] = {}
    for d in deals:
        sme, tianjin = state(d.recipient, d.effective if dated else date.min)
        n, amount = out.get(d.effective.year, (0, Decimal(0)))
        if sme and tianjin:
            n, amount = n + d.patents, amount + d.amount
        out[d.effective.year] = (n, amount)
    return out


def figures(h: IndicatorsHandle, code: str, field: str = "value") -> dict[int, Any]:
    series = h.progress("city-001", 2023)[code]["series"]
    return {s["year"]: s[field] for s in series if s["year"] in (2021, 2022, 2023)}


def test_dated_changes_and_back_dated_pool_give_the_independent_figures(
    pair: IndicatorsHandle,  # noqa: F811
) -> None:
    h = pair
    uni, uni_key = h.org("天津迁移账本大学", "university", "supplier", district="nankai")
    orgs = {
        name: h.org(f"账本{name}科技有限公司", "sme", None, district=district)[0]
        for name, district in (("S1", "binhai"), ("S2", "dongli"), ("S3", "xiqing"))
    }
    _, bureau = h.org("账本市局", "other", "city_bureau", district="hexi")
    h.wait_synced()

    # Deals recorded while every organisation is in its first state.
    recorded = []
    for d in DEALS:
        patents = [h.patent(uni_key, "天津迁移账本大学") for _ in range(d.patents)]
        h.wait_synced()
        recorded.append(h.deal(bureau, patents=patents, suppliers=[uni],
                               recipient=orgs[d.recipient], amount=str(d.amount),
                               effective=d.effective.isoformat(),
                               contract=d.effective.isoformat()))  # fmt: skip
    before = expected(DEALS, dated=False)
    assert figures(h, "C04")[2022] == before[2022][0] == 4
    assert figures(h, "C04")[2023] == before[2023][0] == 3
    with h.client(bureau) as c:
        r = c.post("/v1/snapshots", json={"plan": "city-001", "year": 2022})
        assert r.status_code == 201, r.text
        snap = r.json()

    # The bureau migrates the dated changes, back-dated.
    with h.catalog.client(bureau) as c:
        r = c.patch(f"/v1/organisations/{orgs['S1']}",
                    json={"kind": "enterprise", "is_sme": False, "effective_from": "2022-07-01",
                          "reason": "2022年中超出中小企业标准"})  # fmt: skip
        assert r.status_code == 200, r.text
        r = c.patch(f"/v1/organisations/{orgs['S2']}",
                    json={"province": "河北省", "effective_from": "2023-03-01",
                          "reason": "迁出天津"})  # fmt: skip
        assert r.status_code == 200, r.text
    h.wait_synced()
    patents = [h.patent(uni_key, "天津迁移账本大学") for _ in range(LATE_DEAL.patents)]
    h.wait_synced()
    h.deal(bureau, patents=patents, suppliers=[uni], recipient=orgs["S1"],
           amount=str(LATE_DEAL.amount), effective=LATE_DEAL.effective.isoformat(),
           contract=LATE_DEAL.effective.isoformat())  # fmt: skip

    want = expected([*DEALS, LATE_DEAL], dated=True)
    assert want[2022][0] == 5 and want[2023][0] == 1  # the test's own arithmetic
    got = figures(h, "C04")
    assert (got[2022], got[2023]) == (want[2022][0], want[2023][0])
    amounts = figures(h, "C05")
    assert (Decimal(str(amounts[2022])), Decimal(str(amounts[2023]))) == (
        want[2022][1], want[2023][1],
    )  # fmt: skip
    with h.client() as c:
        s1_late = c.get(f"/v1/deals/{recorded[1]['id']}").json()
        assert s1_late["recipient"]["is_sme"] is False and s1_late["counted_lines"] == 0
        s1_early = c.get(f"/v1/deals/{recorded[0]['id']}").json()
        assert s1_early["recipient"]["is_sme"] is True and s1_early["counted_lines"] == 2
        # the snapshot keeps what was reported; the diff shows the correction
        assert c.get(f"/v1/snapshots/{snap['id']}").json() == snap
        diff = c.get(f"/v1/snapshots/{snap['id']}/diff").json()
    changed = {x["code"]: x for x in diff["changed"]}
    assert changed["C04"]["frozen"] == before[2022][0]  # no 2021 deals: cumulative = 2022
    assert (changed["C04"]["live"] - changed["C04"]["frozen"]) == (want[2022][0] - before[2022][0])

    # A pool listed since 2021, migrated in one request, one withdrawal back-dated.
    pool = [h.patent(uni_key, "天津迁移账本大学") for _ in range(4)]
    listed_at = ["2021-03-01", "2021-09-15", "2022-05-01", "2022-05-01"]
    with h.catalog.client(bureau) as c:
        r = c.post("/v1/listings/bulk", json={
            "terms": {"modes": ["assignment"], "negotiable": True},
            "items": [{"application_number": n, "listed_at": d}
                      for n, d in zip(pool, listed_at, strict=True)],
        })  # fmt: skip
        assert [x["status"] for x in r.json()["results"]] == ["listed"] * 4, r.text
        first = r.json()["results"][0]["listing_id"]
        r = c.patch(f"/v1/listings/{first}",
                    json={"status": "withdrawn", "effective_from": "2022-06-30"})  # fmt: skip
        assert r.status_code == 200, r.text
    h.wait_synced()
    ever = figures(h, "C03")
    held = figures(h, "C03B")
    # independent: entered per year; in the pool at each year end
    assert (ever[2021], ever[2022], ever[2023]) == (2, 2, 0)
    assert (held[2021], held[2022], held[2023]) == (2, 3, 3)

    # A migrated deal converts a pooled patent: it leaves the pool on the deal's date.
    h.deal(bureau, patents=[pool[1]], suppliers=[uni], recipient=orgs["S3"],
           effective="2022-08-01", contract="2022-08-01", kind="assignment")  # fmt: skip
    with h.catalog.client() as c:
        wait_for(lambda: c.get(f"/v1/patents/{pool[1]}").json()["listing"]["status"]
                 == "converted")  # fmt: skip
        converted = c.get(f"/v1/patents/{pool[1]}").json()["listing"]
    assert converted["status_since"].startswith("2022-07-31T16:00:00")
    h.wait_synced()
    held = figures(h, "C03B")
    assert (held[2021], held[2022], held[2023]) == (2, 2, 2)


def test_expired_patent_equity_conversion_and_cancellation_give_the_independent_figures(
    pair: IndicatorsHandle,  # noqa: F811
) -> None:
    """The rest of a migrated ledger, through the public APIs only: a deal on a utility
    model whose term had ended is refused (and, recorded by the bureau's override, kept
    out of the counts), a licence later turned into equity counts once, and a cancelled
    deal stops counting — each checked against the test's own arithmetic."""
    h = pair
    uni, uni_key = h.org("天津终局账本大学", "university", "supplier", district="nankai")
    sme_id = h.org("终局账本科技有限公司", "sme", None, district="xiqing")[0]
    _, bureau = h.org("终局账本市局", "other", "city_bureau", district="hexi")
    h.wait_synced()
    base = figures(h, "C04")

    # A utility model filed 2011-04-01: its 10-year term ended 2021-04-01.
    expired = h.patent(uni_key, "天津终局账本大学", application_number=new_appno(2011, "2"),
                       patent_type="utility_model", application_date="2011-04-01",
                       grant_date="2011-12-01")  # fmt: skip
    live = [h.patent(uni_key, "天津终局账本大学") for _ in range(3)]
    h.wait_synced()
    refused = h.deal(bureau, expect=422, patents=[expired], suppliers=[uni], recipient=sme_id,
                     effective="2022-03-01", contract="2022-03-01")  # fmt: skip
    assert "application_numbers[0]" in str(refused) and "2021-04-01" in str(refused)
    kept = h.deal(bureau, patents=[expired], suppliers=[uni], recipient=sme_id,
                  effective="2022-03-01", contract="2022-03-01", override_not_in_force=True,
                  override_reason="迁移历史台账：合同已履行")  # fmt: skip
    assert kept["excluded"] is True and kept["counted_lines"] == 0

    # A licence in 2022 turned into an equity contribution in 2023; a 2023 deal cancelled.
    lic = h.deal(bureau, patents=[live[0]], suppliers=[uni], recipient=sme_id,
                 effective="2022-06-01", contract="2022-05-20")  # fmt: skip
    eq = h.deal(bureau, patents=[live[0]], suppliers=[uni], recipient=sme_id, kind="equity",
                effective="2023-02-01", contract="2023-01-20",
                converted_from_deal_id=lic["id"])  # fmt: skip
    two = h.deal(bureau, patents=live[1:], suppliers=[uni], recipient=sme_id,
                 effective="2023-05-01", contract="2023-05-01")  # fmt: skip
    with h.client(bureau) as c:
        r = c.post(f"/v1/deals/{two['id']}/cancel", json={"reason": "合同解除"})
        assert r.status_code == 200, r.text

    # Independent: the expired-patent deal and the cancelled deal count nothing; the
    # conversion counts its patent once, in the licence's year.
    want = {2021: base[2021], 2022: base[2022] + 1, 2023: base[2023]}
    got = figures(h, "C04")
    assert {y: got[y] for y in want} == want
    assert eq["counted_lines"] == 0
    with h.client() as c:
        listed = c.get("/v1/consistency").json()["deals_on_patents_not_in_force"]
    assert [d["deal_id"] for d in listed if d["deal_id"] == kept["id"]] == [kept["id"]]

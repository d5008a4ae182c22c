"""Recording deals: validation errors, roles, payments, the deal feed, catalog lookups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.indicators.domain.common import today
from shared.testing import fresh_database
from tests.indicators.conftest import IndicatorsHandle, deal_body, new_appno, start_indicators


@pytest.fixture(scope="module")
def world(indicators: IndicatorsHandle, bureau: str) -> dict[str, Any]:
    h = indicators
    w: dict[str, Any] = {"bureau": bureau}
    w["uni"], w["uni_key"] = h.org("天津台账大学", "university", "supplier", district="nankai")
    w["uni2"], w["uni2_key"] = h.org("天津另一大学", "university", "supplier", district="hexi")
    w["sme"], w["sme_key"] = h.org("台账科技公司", "sme", "sme", district="binhai", is_sme=True)
    w["bh"], w["bh_key"] = h.org(
        "滨海新区知识产权局", "other", "district_bureau", district="binhai"
    )
    w["dl"], w["dl_key"] = h.org("东丽区知识产权局", "other", "district_bureau", district="dongli")
    w["p"] = [h.patent(w["uni_key"], "天津台账大学") for _ in range(3)]
    h.wait_synced()
    return w


def post(h: IndicatorsHandle, key: str, body: dict[str, Any]) -> Any:
    with h.client(key) as c:
        return c.post("/v1/deals", json=body)


def body(w: dict[str, Any], **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"patents": [w["p"][0]], "suppliers": [w["uni"]], "recipient": w["sme"]}
    base.update(kw)
    return deal_body(**base)


def fields(r: Any) -> list[str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in r.json()["errors"]]


def test_unknown_patent_or_organisation_is_named(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, b = indicators, world["bureau"]
    unknown = new_appno()
    r = post(h, b, body(world, patents=[world["p"][0], unknown]))
    assert fields(r) == ["application_numbers[1]"]
    assert unknown in r.json()["errors"][0]["reason"]
    r = post(h, b, body(world, suppliers=[world["uni"], 987654]))
    assert fields(r) == ["supplier_org_ids[1]"]
    r = post(h, b, body(world, recipient=987655))
    assert fields(r) == ["recipient_org_id"]
    r = post(h, b, body(world, patents=["20211012345"]))
    assert fields(r) == ["application_numbers"]


def test_inconsistent_amounts_dates_and_evidence_are_rejected(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, b = indicators, world["bureau"]
    pay = [{"amount": "60000", "received_on": "2022-06-01"}]
    assert fields(post(h, b, body(world, payments=pay))) == ["payments"]  # > contract 50000
    early = [{"amount": "100", "received_on": "2022-04-01"}]
    assert fields(post(h, b, body(world, payments=early))) == ["payments[0].received_on"]
    assert fields(post(h, b, body(world, zero_price=True))) == ["contract_amount"]
    assert fields(post(h, b, body(world, amount="0"))) == ["contract_amount"]
    assert fields(post(h, b, body(world, effective="2022-04-01"))) == ["effective_date"]
    future = "2099-01-01"
    assert fields(post(h, b, body(world, effective=future, contract="2022-01-01"))) == [
        "effective_date"
    ]
    assert fields(post(h, b, body(world, licence_type=None))) == ["licence_type"]
    bad_ev = body(world)
    bad_ev["evidence"]["type"] = "transfer_registration"
    assert fields(post(h, b, bad_ev)) == ["evidence.type"]
    same = body(world, suppliers=[world["sme"]])
    assert fields(post(h, b, same)) == ["recipient_org_id"]
    zero = body(world, kind="assignment", amount="0", zero_price=True)
    assert post(h, b, zero).status_code == 201  # a proper 0元转让


def test_duplicate_evidence_number_is_a_conflict(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, b = indicators, world["bureau"]
    assert post(h, b, body(world, evidence_number="2022990000123")).status_code == 201
    r = post(h, b, body(world, evidence_number="2022 990000123", patents=[world["p"][1]]))
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "evidence.number"
    # an open-licence notice is shared by every SME that takes the licence, once each
    other, _ = h.org("台账开放许可公司", "sme", None, district="binhai", is_sme=True)
    h.wait_synced()
    ol = {"licence_type": "open", "evidence_number": "KF2022000001"}
    assert post(h, b, body(world, **ol)).status_code == 201
    assert post(h, b, body(world, recipient=other, **ol)).status_code == 201
    assert post(h, b, body(world, **ol)).status_code == 409


def test_roles(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, w = indicators, world
    with h.client() as c:
        assert c.post("/v1/deals", json=body(w)).status_code == 401
    assert post(h, w["sme_key"], body(w)).status_code == 403
    # a supplier records its own deals, not another's
    assert post(h, w["uni_key"], body(w)).status_code == 201
    assert post(h, w["uni2_key"], body(w)).status_code == 403
    # a district bureau: deals with a party in its district
    assert post(h, w["bh_key"], body(w)).status_code == 201  # recipient in binhai
    assert post(h, w["dl_key"], body(w)).status_code == 403
    d = post(h, w["bh_key"], body(w)).json()
    with h.client(w["dl_key"]) as c:
        assert c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "越权"}).status_code == 403
    with h.client(w["uni2_key"]) as c:
        assert c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "越权"}).status_code == 403


def test_payments_add_up(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h, b = indicators, world["bureau"]
    d = post(h, b, body(world, payments=[{"amount": "20000", "received_on": "2022-06-01"}])).json()
    assert float(d["amount_received"]) == 20000
    with h.client(b) as c:
        more = {"payments": [{"amount": "30000", "received_on": "2023-01-10"}]}
        r = c.post(f"/v1/deals/{d['id']}/payments", json=more)
        assert r.status_code == 200 and float(r.json()["amount_received"]) == 50000
        assert [p["received_on"] for p in r.json()["payments"]] == ["2022-06-01", "2023-01-10"]
        extra = {"payments": [{"amount": "0.01", "received_on": "2023-01-11"}]}
        r = c.post(f"/v1/deals/{d['id']}/payments", json=extra)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "payments"
        c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "解除"})
        assert c.post(f"/v1/deals/{d['id']}/payments", json=extra).status_code == 409


def test_deals_are_published_on_the_feed_in_the_contract_shape(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, b = indicators, world["bureau"]
    d = post(h, b, body(world, patents=world["p"][1:3], kind="assignment")).json()
    with h.client(b) as c:
        c.post(f"/v1/deals/{d['id']}/cancel", json={"reason": "登记撤销"})
        items = c.get("/v1/feed", params={"entity": "deal", "limit": 5000}).json()["items"]
    mine = [i for i in items if i["entity_id"] == str(d["id"])]
    assert [i["payload"]["status"] for i in mine] == ["effective", "cancelled"]
    assert set(mine[0]["payload"]) == {
        "id", "kind", "licence_type", "status", "application_numbers", "supplier_org_ids",
        "recipient_org_id", "contract_date", "effective_date", "cancelled_reason",
    }  # fmt: skip
    assert mine[1]["payload"] == {
        "id": d["id"],
        "kind": "assignment",
        "licence_type": None,
        "status": "cancelled",
        "application_numbers": world["p"][1:3],
        "supplier_org_ids": [world["uni"]],
        "recipient_org_id": world["sme"],
        "contract_date": "2022-05-01",
        "effective_date": "2022-05-10",
        "cancelled_reason": "登记撤销",
    }


def test_ledger_lists_and_filters(indicators: IndicatorsHandle, world: dict[str, Any]) -> None:
    h = indicators
    with h.client() as c:
        r = c.get("/v1/deals", params={"application_number": world["p"][2], "limit": 1000})
        assert r.status_code == 200
        assert all(world["p"][2] in d["application_numbers"] for d in r.json()["items"])
        assert r.json()["items"]
        s = c.get("/v1/deals", params={"supplier_org_id": world["uni2"]}).json()["items"]
        assert s == []


def test_unknown_parties_are_asked_of_the_catalog_before_rejecting(
    indicators: IndicatorsHandle, world: dict[str, Any], engine: str, db_dir: Path
) -> None:
    """An indicators service that has not read the feed yet still accepts the deal."""
    h = indicators
    with fresh_database(engine, db_dir, "lookup") as url:
        server, cold = start_indicators(h.catalog, url, follow_feeds=False)
        try:
            b = body(world, effective=today().isoformat(), contract=today().isoformat())
            r = post(cold, world["bureau"], b)
            assert r.status_code == 201, r.text
            assert r.json()["recipient"]["district"] == "binhai"
            assert r.json()["qualifies"] is True
            b2 = body(world, patents=[new_appno()])
            assert fields(post(cold, world["bureau"], b2)) == ["application_numbers[0]"]
        finally:
            server.stop()


def test_batch_load_reports_each_rejection(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    h, b = indicators, world["bureau"]
    good = body(world, evidence_number="BATCH-1")
    dup = body(world, evidence_number="BATCH-1")
    unknown = body(world, recipient=987656)
    broken = {**body(world), "kind": "gift"}
    with h.client(b) as c:
        r = c.post("/v1/deals/batch", json=[good, dup, unknown, broken])
        assert r.status_code == 200, r.text
        out = r.json()
        assert [x["index"] for x in out["created"]] == [0]
        assert [(x["index"], x["status"]) for x in out["rejected"]] == [
            (1, 409),
            (2, 422),
            (3, 422),
        ]
        assert out["rejected"][1]["errors"][0]["field"] == "recipient_org_id"
        assert out["rejected"][2]["errors"][0]["field"] == "kind"
        again = [body(world, evidence_number="BATCH-2"), body(world, recipient=987656)]
        r = c.post("/v1/deals/batch", params={"atomic": True}, json=again)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "[1].recipient_org_id"
        found = c.get("/v1/deals", params={"limit": 1000}).json()["items"]
    numbers = [d["evidence"]["number"] for d in found]
    assert "BATCH-1" in numbers and "BATCH-2" not in numbers
    # the one recorded deal was published once
    with h.client() as c:
        feed_items = c.get("/v1/feed", params={"entity": "deal", "limit": 5000}).json()["items"]
    batch_id = out["created"][0]["id"]
    assert len([i for i in feed_items if i["entity_id"] == str(batch_id)]) == 1


def test_the_answer_to_a_new_deal_is_what_reading_it_back_gives(
    indicators: IndicatorsHandle, world: dict[str, Any]
) -> None:
    """The POST answer is built from the rows just written (no read-back): it must equal
    GET's, for several suppliers, patents and payments given out of order, and for a
    conversion whose repeated patent does not count again."""
    h, b, w = indicators, world["bureau"], world
    patents = [h.patent(w["uni_key"], "天津台账大学") for _ in range(3)]
    h.wait_synced()
    payments = [
        {"amount": "300", "received_on": "2022-07-01"},
        {"amount": "100", "received_on": "2022-06-01", "note": "首付"},
        {"amount": "200", "received_on": "2022-06-01"},
    ]
    lic = post(h, b, body(w, patents=patents[:2], suppliers=[w["uni2"], w["uni"]],
                          payments=payments))  # fmt: skip
    assert lic.status_code == 201, lic.text
    equity = post(h, b, body(w, kind="equity", licence_type=None, patents=[patents[2], patents[0]],
                             suppliers=[w["uni"]], effective="2022-09-01",
                             converted_from_deal_id=lic.json()["id"]))  # fmt: skip
    assert equity.status_code == 201, equity.text
    for r in (lic, equity):
        with h.client() as c:
            again = c.get(f"/v1/deals/{r.json()['id']}")
        assert again.status_code == 200
        assert r.json() == again.json()
    assert [p["amount"] for p in lic.json()["payments"]] == ["100.00", "200.00", "300.00"]
    assert [s["org_id"] for s in lic.json()["suppliers"]] == [w["uni2"], w["uni"]]
    assert lic.json()["counted_lines"] == 2
    assert equity.json()["counted_lines"] == 1  # patents[0] already counted in the licence


def test_what_the_catalog_feed_brought_is_known_without_a_check(
    catalog: Any, engine: str, db_dir: Path
) -> None:
    """A deal checks only what the local copies may lack: organisations and patents the
    catalog feed replicated are remembered once that transaction commits."""
    with fresh_database(engine, db_dir, "indremember") as url:
        server, h = start_indicators(catalog, url)
        try:
            lookup = server.server.config.app.state.lookup
            uni, uni_key = h.org("天津记忆大学", "university", "supplier", district="nankai")
            appno = h.patent(uni_key, "天津记忆大学")
            h.wait_synced()
            assert uni in lookup.known_orgs
            assert appno in lookup.known_patents
        finally:
            server.stop()

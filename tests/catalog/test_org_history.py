"""Effective-dated organisation changes: PATCH with effective_from, the history, the feed."""

from __future__ import annotations

from datetime import date, timedelta

from shared import bizdate
from tests.conftest import CatalogHandle


def bureau(catalog: CatalogHandle) -> str:
    return catalog.org("天津市知识产权局(历史)", kind="other", role="city_bureau")[1]


def test_is_sme_false_on_an_sme_is_refused_with_the_way_out(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津成长科技有限公司", kind="sme", role=None)
    with catalog.client(bureau(catalog)) as c:
        r = c.patch(f"/v1/organisations/{org_id}", json={"is_sme": False})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "is_sme"
        assert "enterprise" in r.json()["errors"][0]["reason"]
        assert c.get(f"/v1/organisations/{org_id}").json()["is_sme"] is True
        r = c.patch(
            f"/v1/organisations/{org_id}",
            json={"kind": "enterprise", "is_sme": False, "reason": "营收超过中型企业标准"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["kind"], r.json()["is_sme"]) == ("enterprise", False)
        # unknown fields are refused, not ignored
        r = c.patch(f"/v1/organisations/{org_id}", json={"uscc": "x", "colour": "red"})
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} >= {"uscc", "colour"}
        # kind moves only between sme and enterprise
        r = c.patch(f"/v1/organisations/{org_id}", json={"kind": "university"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"


def test_back_dated_changes_build_a_dated_history(catalog: CatalogHandle) -> None:
    org_id, own_key = catalog.org("天津外迁材料有限公司", kind="sme", role="sme", district="binhai")
    key = bureau(catalog)
    with catalog.client(key) as c:
        r = c.patch(
            f"/v1/organisations/{org_id}",
            json={"kind": "enterprise", "is_sme": False, "effective_from": "2022-07-01",
                  "reason": "2022年度营收超标"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        r = c.patch(
            f"/v1/organisations/{org_id}",
            json={"province": "河北省", "effective_from": "2023-03-01", "reason": "迁至河北"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["district"], r.json()["province"], r.json()["in_tianjin"]) == (
            None, "河北省", False,
        )  # fmt: skip
        # a correction recorded later, back-dated before both: kept with who and why
        r = c.patch(
            f"/v1/organisations/{org_id}",
            json={"sme_basis": "2021年度 小型企业", "effective_from": "2021-01-01",
                  "reason": "补录划型依据"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        hist = c.get(f"/v1/organisations/{org_id}/history").json()
    tl = hist["timeline"]
    assert [t["effective_from"] for t in tl] == [None, "2021-01-01", "2022-07-01", "2023-03-01"]
    assert [(t["is_sme"], t["in_tianjin"]) for t in tl] == [
        (True, True), (True, True), (False, True), (False, False),
    ]  # fmt: skip
    assert tl[1]["sme_basis"] == "2021年度 小型企业"
    dated = [ch for ch in hist["changes"] if ch["effective_from"]]
    assert [ch["reason"] for ch in dated] == ["2022年度营收超标", "迁至河北", "补录划型依据"]
    assert all(ch["recorded_by_role"] == "city_bureau" for ch in dated)
    assert dated[0]["previous"] == {"kind": "sme", "is_sme": True}
    # the organisation itself may read its history but not back-date anything
    with catalog.client(own_key) as c:
        assert c.get(f"/v1/organisations/{org_id}/history").status_code == 200


def test_back_dating_needs_the_bureau_and_the_future_is_refused(catalog: CatalogHandle) -> None:
    org_id, own_key = catalog.org("天津自改大学", role="supplier")
    yesterday = (bizdate.today() - timedelta(days=1)).isoformat()
    tomorrow = (bizdate.today() + timedelta(days=1)).isoformat()
    with catalog.client(own_key) as c:
        r = c.patch(f"/v1/organisations/{org_id}", json={"effective_from": yesterday})
        assert r.status_code == 403
        assert r.json()["errors"][0]["field"] == "effective_from"
    with catalog.client(bureau(catalog)) as c:
        r = c.patch(
            f"/v1/organisations/{org_id}", json={"district": "南开区", "effective_from": tomorrow}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "effective_from"
        assert "future" in r.json()["errors"][0]["reason"]


def test_feed_carries_the_effective_date_and_timeline(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津时间线有限公司", kind="sme", role=None)
    with catalog.client(bureau(catalog)) as c:
        r = c.patch(
            f"/v1/organisations/{org_id}",
            json={"kind": "enterprise", "is_sme": False, "effective_from": "2024-05-06"},
        )
        assert r.status_code == 200, r.text
        entries, after = [], 0
        while True:
            page = c.get("/v1/feed", params={"after": after, "limit": 5000}).json()
            entries += page["items"]
            after = page["next_after"]
            if not page["has_more"]:
                break
    mine = [e for e in entries if e["entity"] == "organisation" and e["entity_id"] == str(org_id)]
    last = mine[-1]["payload"]
    assert last["effective_from"] == "2024-05-06"
    assert [(t["effective_from"], t["is_sme"]) for t in last["timeline"]] == [
        (None, True), ("2024-05-06", False),
    ]  # fmt: skip
    assert date.fromisoformat(last["timeline"][1]["effective_from"]) < bizdate.today()

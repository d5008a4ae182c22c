from __future__ import annotations

from tests.conftest import CatalogHandle
from tests.factories import appno, offer, patent


def test_upsert_is_idempotent_and_numbers_normalise(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津专利大学")
    body = patent("天津专利大学")
    num = body["application_number"]
    digits, check = num.split(".")
    with catalog.client(key) as c:
        r = c.post("/v1/patents", json={**body, "application_number": f"CN{num}"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["application_number"] == num
        assert created["patent_type"] == "invention"
        assert created["expiry_date"] == "2039-03-01"
        assert created["ipc_codes"] == ["H01M4/131", "H01M10/0525"]
        assert created["main_ipc"] == "H01M4/131"
        r = c.post("/v1/patents", json={**body, "application_number": digits + check})
        assert r.status_code == 200
        assert r.headers["x-upload-outcome"] == "unchanged"
        assert r.json()["version"] == 1
        r = c.post("/v1/patents", json={**body, "title": "一种改进的锂离子电池正极材料"})
        assert r.headers["x-upload-outcome"] == "updated"
        assert r.json()["version"] == 2
    with catalog.client() as c:
        for spelling in (f"CN{num}", num, digits + check):
            assert c.get(f"/v1/patents/{spelling}").json()["id"] == created["id"]
        feed = c.get("/v1/feed", params={"entity": "patent", "limit": 5000}).json()["items"]
    mine = [e for e in feed if e["entity_id"] == str(created["id"])]
    assert [e["payload"]["version"] for e in mine] == [1, 2]  # the unchanged upload wrote nothing


def test_bad_check_digit_and_ipc_are_field_errors(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津校验大学")
    good = patent("天津校验大学")
    digits, check = good["application_number"].split(".")
    wrong = str((int(check) + 1) % 10) if check != "X" else "0"
    with catalog.client(key) as c:
        r = c.post("/v1/patents", json={**good, "application_number": f"{digits}.{wrong}"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        err = r.json()["errors"][0]
        assert err["field"] == "application_number" and "check digit" in err["reason"]
        r = c.post("/v1/patents", json={**good, "ipc_codes": ["H01M 4/131", "XYZ"]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "ipc_codes"
        assert "not an IPC symbol" in r.json()["errors"][0]["reason"]
        r = c.post("/v1/patents", json={**good, "grant_date": "2018-01-01"})
        assert r.json()["errors"][0]["field"] == "grant_date"
        assert c.get(f"/v1/patents/{good['application_number']}").status_code == 404


def test_patent_type_and_term_from_number(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津类型大学")
    with catalog.client(key) as c:
        um = patent(
            "天津类型大学",
            application_number=appno(2020, "2"),
            application_date="2020-02-29",
            grant_date="2020-09-01",
        )
        r = c.post("/v1/patents", json=um)
        assert r.json()["patent_type"] == "utility_model"
        assert r.json()["expiry_date"] == "2030-02-28"
        d = patent(
            "天津类型大学",
            application_number=appno(2021, "3"),
            application_date="2021-07-01",
            grant_date="2021-12-01",
        )
        assert c.post("/v1/patents", json=d).json()["expiry_date"] == "2036-07-01"
        mismatch = patent("天津类型大学", application_date="2015-01-01")
        r = c.post("/v1/patents", json=mismatch)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "application_date"


def test_another_org_cannot_touch_my_patent(catalog: CatalogHandle) -> None:
    _, key_a = catalog.org("天津甲大学")
    _, key_b = catalog.org("天津乙大学")
    body = patent("天津甲大学")
    num = body["application_number"]
    with catalog.client(key_a) as a:
        assert a.post("/v1/patents", json=body).status_code == 201
        listing = a.post("/v1/listings", json={"application_number": num, "modes": ["assignment"]})
        assert listing.status_code == 201
        lid = listing.json()["id"]
    with catalog.client(key_b) as b:
        r = b.patch(f"/v1/listings/{lid}", json={"status": "withdrawn"})
        assert r.status_code == 403
        r = b.patch(f"/v1/listings/{lid}", json={"terms": {"modes": ["equity"], "price_cny": "1"}})
        assert r.status_code == 403
        r = b.post("/v1/patents", json={**body, "patentees": ["天津乙大学"]})
        assert r.status_code == 403
        r = b.patch(f"/v1/patents/{num}/legal-status", json={"legal_status": "lapsed"})
        assert r.status_code == 403
        r = b.post("/v1/listings", json={"application_number": num, "modes": ["assignment"]})
        assert r.status_code == 403
        r = b.post("/v1/bundles", json={"name": "别人的包", "application_numbers": [num, num]})
        assert r.status_code == 422
        # A new patent naming only another organisation is refused too.
        r = b.post("/v1/patents", json=patent("天津甲大学"))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "patentees"
    with catalog.client() as c:
        got = c.get(f"/v1/patents/{num}").json()
        assert got["title"] == body["title"] and got["legal_status"] == "granted"
        assert got["listing"]["status"] == "listed" and got["listing"]["modes"] == ["assignment"]


def test_co_owners_share_one_patent(catalog: CatalogHandle) -> None:
    a_id, key_a = catalog.org("天津共有大学")
    b_id, key_b = catalog.org("天津共有研究院", kind="institute")
    body = patent("天津共有大学", patentees=["天津共有大学", "天津共有研究院"])
    with catalog.client(key_a) as a:
        assert a.post("/v1/patents", json=body).status_code == 201
    with catalog.client(key_b) as b:
        r = b.post(
            "/v1/patents", json={**body, "application_number": "CN" + body["application_number"]}
        )
        assert r.status_code == 200
        assert r.json()["owner_org_ids"] == sorted([a_id, b_id])


def test_keyword_search_finds_two_character_words(catalog: CatalogHandle) -> None:
    oid, key = catalog.org("天津检索大学")
    with catalog.client(key) as c:
        c.post("/v1/patents", json=patent("天津检索大学", title="一种固态电池电解质"))
        c.post(
            "/v1/patents",
            json=patent(
                "天津检索大学",
                title="一种光伏逆变器",
                abstract="逆变器控制方法。",
                ipc_codes=["H02M7/48"],
            ),
        )
    with catalog.client() as c:
        hits = c.get("/v1/patents", params={"q": "电池", "owner": oid}).json()["items"]
        assert hits and all("电池" in h["title"] + h["abstract"] for h in hits)
        hits = c.get("/v1/patents", params={"q": "逆变器", "owner": oid}).json()["items"]
        assert [h["title"] for h in hits] == ["一种光伏逆变器"]
        hits = c.get("/v1/patents", params={"ipc": "H02M", "owner": oid}).json()["items"]
        assert [h["title"] for h in hits] == ["一种光伏逆变器"]


def test_cursor_pagination_walks_everything_once(catalog: CatalogHandle) -> None:
    oid, key = catalog.org("天津分页大学")
    with catalog.client(key) as c:
        made = {
            c.post(
                "/v1/patents", json=patent("天津分页大学", application_date=f"2019-0{i}-01")
            ).json()["id"]
            for i in range(1, 8)
        }
    with catalog.client() as c:
        for sort in ("-id", "application_date", "-grant_date"):
            seen, cursor = [], None
            while True:
                params = {"owner": oid, "limit": 3, "sort": sort}
                if cursor:
                    params["cursor"] = cursor
                page = c.get("/v1/patents", params=params).json()
                seen += [i["id"] for i in page["items"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert sorted(seen) == sorted(made) and len(seen) == len(made)
        r = c.get("/v1/patents", params={"sort": "nonsense"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sort"
        r = c.get("/v1/patents", params={"cursor": "garbage"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


def test_search_filters_use_first_pay_later_offers(catalog: CatalogHandle) -> None:
    oid, key = catalog.org("天津先用后付大学")
    numbers = {}
    with catalog.client(key) as c:
        for title, later in (("先用后付的电机控制器", True), ("付款后使用的电机控制器", False)):
            body = patent("天津先用后付大学", title=title)
            assert c.post("/v1/patents", json=body).status_code in (200, 201)
            r = c.post(
                "/v1/listings",
                json={"application_number": body["application_number"],
                      **offer(use_first_pay_later=later)},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            numbers[later] = r.json()["application_number"]
    with catalog.client() as c:
        for flag in (True, False):
            hits = c.get(
                "/v1/patents", params={"owner": oid, "use_first_pay_later": str(flag).lower()}
            ).json()["items"]
            assert [h["application_number"] for h in hits] == [numbers[flag]]
        assert len(c.get("/v1/patents", params={"owner": oid}).json()["items"]) == 2
        r = c.get("/v1/patents", params={"use_first_pay_later": "maybe"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "use_first_pay_later"

from __future__ import annotations

from tests.conftest import CatalogHandle, next_uscc


def test_health_and_ready(catalog: CatalogHandle) -> None:
    with catalog.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["migration"] == "0004_records"


def test_create_org_validates_uscc_and_district(catalog: CatalogHandle) -> None:
    with catalog.client(catalog.admin_key) as c:
        good = next_uscc()
        bad = good[:-1] + ("0" if good[-1] != "0" else "1")
        r = c.post(
            "/v1/organisations",
            json={"kind": "university", "name": "某大学A", "uscc": bad, "district": "nankai"},
        )
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "uscc"
        assert "check character" in r.json()["errors"][0]["reason"]
        r = c.post(
            "/v1/organisations",
            json={"kind": "university", "name": "某大学B", "district": "atlantis"},
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "district"
        r = c.post(
            "/v1/organisations", json={"kind": "sme", "name": "某公司", "district": "滨海新区"}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "sme_basis"
        r = c.post(
            "/v1/organisations",
            json={
                "kind": "sme",
                "name": "某公司C",
                "district": "滨海新区",
                "sme_basis": "小型企业",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["district"] == "binhai"
        assert r.json()["is_sme"] is True
        r = c.post(
            "/v1/organisations",
            json={"kind": "university", "name": "北京某大学", "province": "北京市"},
        )
        assert r.status_code == 201 and r.json()["in_tianjin"] is False


def test_writes_need_a_key_and_the_right_role(catalog: CatalogHandle) -> None:
    _, uni_key = catalog.org("天津测试大学")
    body = {"kind": "university", "name": "未授权大学", "district": "nankai"}
    with catalog.client() as anon:
        r = anon.post("/v1/organisations", json=body)
        assert r.status_code == 401
        assert r.json()["status"] == 401
    with catalog.client(uni_key) as c:
        assert c.post("/v1/organisations", json=body).status_code == 403
    with catalog.client("tjp_nope_nope") as c:
        assert c.post("/v1/organisations", json=body).status_code == 401


def test_key_lifecycle_and_introspection(catalog: CatalogHandle) -> None:
    org_id, key = catalog.org("天津密钥大学")
    with catalog.client() as c:
        r = c.post("/v1/auth/introspect", json={"key": key})
        assert r.json()["active"] is True
        assert r.json()["principal"]["org_id"] == org_id
        assert r.json()["principal"]["role"] == "supplier"
    key_id = key.split("_")[1]
    with catalog.client(key) as c:
        keys = c.get(f"/v1/organisations/{org_id}/keys").json()
        assert [k["id"] for k in keys] == [key_id]
        assert "secret_hash" not in keys[0]
        assert c.delete(f"/v1/keys/{key_id}").status_code == 204
        assert c.get("/v1/auth/me").status_code == 401
    with catalog.client() as c:
        assert c.post("/v1/auth/introspect", json={"key": key}).json()["active"] is False


def test_role_must_fit_the_organisation_kind(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津某中小企业", kind="sme", role=None)
    with catalog.client(catalog.admin_key) as c:
        r = c.post(f"/v1/organisations/{org_id}/keys", json={"role": "supplier"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "role"


def test_organisation_changes_are_on_the_feed(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津馈送大学")
    with catalog.client() as c:
        items = c.get("/v1/feed", params={"entity": "organisation", "limit": 5000}).json()["items"]
    mine = [i for i in items if i["entity_id"] == str(org_id)]
    assert mine and mine[-1]["payload"]["name"] == "天津馈送大学"
    ids = [i["id"] for i in items]
    assert ids == sorted(ids)


def test_patch_that_breaks_a_rule_is_a_field_error(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津修改大学")
    with catalog.client(catalog.admin_key) as c:  # district is the bureau's to change
        r = c.patch(f"/v1/organisations/{org_id}", json={"district": None})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "district"
        r = c.patch(f"/v1/organisations/{org_id}", json={"district": "binhai"})
        assert r.status_code == 200 and r.json()["district"] == "binhai"
        assert c.get("/v1/organisations/99999999999999999999").status_code == 422


def test_request_id_is_passed_on(catalog: CatalogHandle) -> None:
    with catalog.client() as c:
        assert (
            c.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
            == "abc-123"
        )
        assert len(c.get("/healthz").headers["x-request-id"]) == 32

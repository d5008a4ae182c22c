"""Issue 9, defects 1, 2 and 9a: who may change what an organisation is."""

from __future__ import annotations

import pytest

from tests.conftest import CatalogHandle

AUTHORITY_CHANGES = [
    ("district", {"district": "binhai"}),
    ("province", {"district": None, "province": "北京市"}),
    ("is_sme", {"is_sme": True, "sme_basis": "小型企业"}),
    ("sme_basis", {"sme_basis": "小型企业"}),
    ("aliases", {"aliases": ["天津大学"]}),
    ("name", {"name": "天津大学"}),
]


@pytest.mark.parametrize(("field", "change"), AUTHORITY_CHANGES)
def test_an_organisation_cannot_change_its_own_authority_attributes(
    catalog: CatalogHandle, field: str, change: dict[str, object]
) -> None:
    org_id, key = catalog.org("天津权限测试大学")
    with catalog.client(key) as c:
        before = c.get(f"/v1/organisations/{org_id}").json()
        r = c.patch(f"/v1/organisations/{org_id}", json=change)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]]
        assert c.get(f"/v1/organisations/{org_id}").json() == before


def test_a_district_bureau_cannot_move_itself(catalog: CatalogHandle) -> None:
    org_id, key = catalog.org("东丽区知识产权局（测试）", kind="other", role="district_bureau",
                              district="dongli")  # fmt: skip
    with catalog.client(key) as c:
        r = c.patch(f"/v1/organisations/{org_id}", json={"district": "binhai"})
        assert r.status_code == 403, r.text
        assert r.json()["errors"] == [
            {"field": "district", "reason": "only the city bureau or an admin may change it"}
        ]
        assert c.get(f"/v1/organisations/{org_id}").json()["district"] == "dongli"
        r = c.post("/v1/auth/introspect", json={"key": key})
        assert r.json()["principal"]["district"] == "dongli"


def test_the_city_bureau_and_admin_change_authority_attributes(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津迁址测试大学")
    _, bureau = catalog.org("天津市知识产权局（测试）", kind="other", role="city_bureau",
                            district="hexi")  # fmt: skip
    with catalog.client(bureau) as c:
        r = c.patch(f"/v1/organisations/{org_id}", json={"district": "binhai"})
        assert r.status_code == 200, r.text
        assert r.json()["district"] == "binhai"
    with catalog.client(catalog.admin_key) as c:
        r = c.patch(f"/v1/organisations/{org_id}", json={"district": None, "province": "北京市"})
        assert r.status_code == 200, r.text
        assert r.json()["in_tianjin"] is False


def test_an_unchanged_value_is_not_a_change(catalog: CatalogHandle) -> None:
    """Sending back what the record already says (a form re-submitted whole) is allowed."""
    org_id, key = catalog.org("天津原样提交大学")
    with catalog.client(key) as c:
        r = c.patch(f"/v1/organisations/{org_id}", json={"district": "nankai"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("kind", ["sme", "university", "enterprise"])
def test_admin_and_bureau_roles_only_for_the_platform_or_bureaus(
    catalog: CatalogHandle, kind: str
) -> None:
    org_id, _ = catalog.org(f"天津角色测试-{kind}", kind=kind, role=None)
    with catalog.client(catalog.admin_key) as c:
        for role in ("admin", "city_bureau", "district_bureau"):
            r = c.post(f"/v1/organisations/{org_id}/keys", json={"role": role})
            assert r.status_code == 422, (role, r.text)
            assert r.json()["errors"][0]["field"] == "role"

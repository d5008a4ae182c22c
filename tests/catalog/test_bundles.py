from __future__ import annotations

from tests.conftest import CatalogHandle
from tests.factories import offer, patent


def _pool(c, owner: str, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    nums = []
    for _ in range(n):
        p = patent(owner)
        assert c.post("/v1/patents", json=p).status_code == 201
        assert (
            c.post(
                "/v1/listings", json={"application_number": p["application_number"], **offer()}
            ).status_code
            == 201
        )
        nums.append(p["application_number"])
    return nums


def test_bundle_of_own_pooled_patents(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津打包大学")
    _, other = catalog.org("天津别家大学")
    with catalog.client(key) as c:
        nums = _pool(c, "天津打包大学", 3)
        r = c.post(
            "/v1/bundles",
            json={
                "name": "新能源电池专利包",
                "application_numbers": nums[:2],
                "price_cny": "80000",
            },
        )
        assert r.status_code == 201, r.text
        bundle = r.json()
        assert bundle["application_numbers"] == sorted(nums[:2])
        r = c.post(
            "/v1/bundles", json={"name": "新能源电池专利包", "application_numbers": nums[1:]}
        )
        assert r.status_code == 409
    with catalog.client(other) as c:
        theirs = _pool(c, "天津别家大学", 1)
        r = c.post(
            "/v1/bundles", json={"name": "偷梁换柱", "application_numbers": [nums[0], theirs[0]]}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "application_numbers[0]"
        assert c.patch(f"/v1/bundles/{bundle['id']}", json={"name": "x" * 5}).status_code == 403
    with catalog.client(key) as c:
        r = c.patch(f"/v1/bundles/{bundle['id']}", json={"application_numbers": nums})
        assert r.json()["application_numbers"] == sorted(nums)
        assert (
            c.patch(f"/v1/bundles/{bundle['id']}", json={"status": "withdrawn"}).json()["status"]
            == "withdrawn"
        )
        feed = c.get("/v1/feed", params={"entity": "bundle", "limit": 5000}).json()["items"]
    assert [
        len(e["payload"]["listing_ids"]) for e in feed if e["entity_id"] == str(bundle["id"])
    ] == [2, 3, 3]

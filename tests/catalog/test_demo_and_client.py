from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

from services.catalog.demo.load import load_demo, load_demo_people
from services.catalog.upload_client import upload, write_report
from tests.conftest import CatalogHandle
from tests.factories import patent

DEMO_CSV = (
    Path(__file__).resolve().parents[2] / "services/catalog/demo/tianjin-university-upload.csv"
)


def test_demo_loads_once_and_is_idempotent(catalog: CatalogHandle, tmp_path: Path) -> None:
    people_file = tmp_path / "people.json"
    first = asyncio.run(
        load_demo(catalog.database_url, keys_file=tmp_path / "keys.json", people_file=people_file)
    )
    assert first["patents"]["accepted"] > 500 and first["listings_created"] > 300
    second = asyncio.run(load_demo(catalog.database_url))
    assert second["patents"] == {"unchanged": first["patents"]["accepted"]}
    assert second["listings_created"] == 0
    sign_ins = json.loads(people_file.read_text(encoding="utf-8"))
    assert {p["role"] for p in sign_ins} == {
        "sme",
        "supplier",
        "district_bureau",
        "city_bureau",
        "admin",
    }
    assert asyncio.run(load_demo_people(catalog.database_url)) == sign_ins
    with catalog.client() as c:
        for p in sign_ins:
            r = c.post("/v1/sessions", json={"login": p["login"], "password": p["password"]})
            assert r.status_code == 201, r.text
            assert r.json()["person"]["role"] == p["role"]
            assert r.json()["organisation"]["name"] == p["organisation"]
            assert r.json()["person"]["org_admin"] == p["org_admin"]
        people = c.get(
            f"/v1/organisations/{r.json()['organisation']['id']}/people",
            headers={"Authorization": f"Bearer {r.json()['token']}"},
        ).json()
    assert len(people) == 1  # loading twice made no second person
    with catalog.client() as c:
        stats = c.get("/v1/stats/pool").json()
    assert stats["pooled"] == first["listings_created"]
    assert stats["by_owner_kind"]["university"] > 0
    assert sum(d["pooled"] for d in stats["by_district"]) >= stats["pooled"]


def test_university_uploads_the_demo_csv_with_the_client(
    catalog: CatalogHandle, tmp_path: Path
) -> None:
    _, key = catalog.org("天津大学", district="nankai")
    result = upload(DEMO_CSV, catalog.url, key)
    assert result["summary"]["accepted"] == 6 and result["summary"]["rejected"] == 2
    out = tmp_path / "report.csv"
    write_report(result["rows"], out)
    with open(out, encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    reasons = [r[4] for r in rows[1:] if r[2] == "rejected"]
    # the report speaks the user's language: Chinese by default
    assert any("校验位" in r for r in reasons) and any("IPC 分类号" in r for r in reasons)
    again = upload(DEMO_CSV, catalog.url, key)
    assert again["summary"]["unchanged"] == 6


def test_client_follows_a_job(catalog: CatalogHandle, tmp_path: Path) -> None:
    _, key = catalog.org("天津客户端大学")
    f = tmp_path / "many.ndjson"

    f.write_text("\n".join(json.dumps(patent("天津客户端大学")) for _ in range(2100)))
    result = upload(f, catalog.url, key, poll=0.1)
    assert result["summary"]["accepted"] == 2100 and len(result["rows"]) == 2100

"""Backup and restore of all three databases: deploy/backup.sh and deploy/restore.sh on a
populated platform on PostgreSQL, then the services restarted on the restored databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from shared.testing import _pg_admin, fresh_database, postgres_url
from tests.conftest import require_engine
from tests.deploy.conftest import Live, platform, wait_for
from tests.factories import offer
from tests.indicators.conftest import deal_body
from tests.matching.conftest import new_patent

ROOT = Path(__file__).resolve().parents[2]
UNI = "天津备份大学"
SERVICES = ("catalog", "matching", "indicators")
TEXTS = [
    (
        "一种LED驱动恒流升压电路",
        "LED灯具驱动电路，恒流升压拓扑，降低驱动芯片温升。",
        ["H05B 45/37"],
    ),
    ("一种锂离子电池正极材料", "高镍三元正极材料的包覆改性方法，提高循环寿命。", ["H01M 4/525"]),
    ("一种污水生物脱氮工艺", "城市污水的短程硝化反硝化脱氮工艺，降低曝气能耗。", ["C02F 3/30"]),
    ("一种焊接机器人路径规划方法", "基于视觉的焊缝跟踪与焊接机器人路径规划。", ["B23K 37/02"]),
]
NEED = {
    "title": "LED灯具驱动过热",
    "description": "现寻求一种技术，我公司LED灯具驱动电路发热严重，需要恒流升压方案。",
    "industry": "1.2",
    "modes": ["assignment"],
    "contact_name": "王经理",
    "contact_phone": "022-12345678",
}


def feed_head(url: str) -> int:
    after = 0
    while True:
        body = httpx.get(f"{url}/v1/feed", params={"after": after, "limit": 5000}).json()
        if not body["has_more"]:
            return int(body["next_after"])
        after = body["next_after"]


def at_least(url: str, check: str, position: int) -> bool:
    state = str(httpx.get(f"{url}/readyz").json().get(check, ""))
    return state.startswith("ok at ") and int(state.split()[-1]) >= position


def synced(live: Live) -> None:
    """Wait until every consumer stands at (or past) the head of the feed it follows."""
    follows = [
        ("matching", "catalog_feed", "catalog"),
        ("indicators", "catalog_feed", "catalog"),
        ("indicators", "matching_feed", "matching"),
        ("catalog", "indicators_feed", "indicators"),
    ]
    for consumer, check, source in follows:
        want = feed_head(live.urls[source])
        url = live.urls[consumer]
        wait_for(lambda u=url, c=check, w=want: at_least(u, c, w))  # type: ignore[misc]


def figures(live: Live) -> dict[str, Any]:
    with httpx.Client(timeout=60) as c:
        index = c.get(f"{live.matching.url}/v1/index").json()
        match = c.post(f"{live.matching.url}/v1/match",
                       json={"text": "LED 驱动 过热 恒流", "pooled_only": False, "k": 10}).json()  # fmt: skip
        progress = c.get(f"{live.indicators_url}/v1/plans/city-001/progress",
                         params={"year": 2022}).json()  # fmt: skip
        patents = c.get(f"{live.catalog.url}/v1/patents", params={"limit": 100}).json()
        return {
            "pool": c.get(f"{live.catalog.url}/v1/stats/pool").json(),
            "patents": sorted(p["application_number"] for p in patents["items"]),
            "listings": sorted(
                (x["application_number"], x["status"])
                for x in c.get(
                    f"{live.catalog.url}/v1/listings", params={"limit": 100, "status": "converted"}
                ).json()["items"]
            ),  # fmt: skip
            "index_patents": index["patents"]["documents"],
            "index_needs": index["needs"]["documents"],
            "ranking": [(h["application_number"], round(h["score"], 6)) for h in match["hits"]],
            "progress": progress["indicators"],
        }


def populate(live: Live) -> None:
    uni, key = live.catalog.org(UNI)
    sme, sme_key = live.catalog.org("备份科技公司", "sme", "sme", district="dongli", is_sme=True)
    _, bureau = live.catalog.org("备份市局", "other", "city_bureau", district="hexi")
    numbers = []
    with live.catalog.client(key) as c:
        for title, abstract, ipc in TEXTS:
            p = new_patent(UNI, title, abstract, ipc)
            assert c.post("/v1/patents", json=p).status_code == 201
            body = {"application_number": p["application_number"], **offer()}
            assert c.post("/v1/listings", json=body).status_code == 201
            numbers.append(p["application_number"])
    with live.matching.client(sme_key) as c:
        assert c.post("/v1/needs", json=NEED).status_code == 201, c
    synced(live)
    with httpx.Client(base_url=live.indicators_url, timeout=60) as c:
        r = c.post("/v1/deals", headers={"Authorization": f"Bearer {bureau}"},
                   json=deal_body(patents=[numbers[1]], suppliers=[uni], recipient=sme))  # fmt: skip
        assert r.status_code == 201, r.text
    synced(live)
    wait_for(lambda: figures(live)["listings"] != [])  # the catalog marked it converted
    synced(live)


@pytest.fixture
def pg_env() -> Iterator[dict[str, str]]:
    require_engine("postgresql")
    u = make_url(postgres_url())
    env = dict(os.environ)
    env.update(PGHOST=u.host or "127.0.0.1", PGPORT=str(u.port or 5432), PGUSER=u.username or "")
    if u.password:
        env["PGPASSWORD"] = u.password
    yield env


def run(script: str, *args: str, env: dict[str, str]) -> str:
    r = subprocess.run([str(ROOT / "deploy" / script), *args], env=env, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_backup_restore_gives_the_same_platform(
    pg_env: dict[str, str], db_dir: Path, tmp_path: Path
) -> None:
    with (
        fresh_database("postgresql", db_dir, "bkcat") as cat,
        fresh_database("postgresql", db_dir, "bkmatch") as match,
        fresh_database("postgresql", db_dir, "bkind") as ind,
    ):
        urls = {"catalog": cat, "matching": match, "indicators": ind}
        with platform(urls, tmp_path / "before") as live:
            populate(live)
            before = figures(live)
            admin = live.catalog.admin_key
            names = {s: make_url(u).database or "" for s, u in urls.items()}
            env = {**pg_env, **{f"TJP_{s.upper()}_DB": n for s, n in names.items()}}
            out = run("backup.sh", str(tmp_path / "backup"), env=env)  # online, while serving
        print(out)
        assert out.count("backed up") == 3
        # The live index was fitted as patents arrived; a start-up fits it on all of them at
        # once, which moves the TF-IDF weights (not the order). Restart the originals on a
        # fresh index directory too, so both sides are indexes built at start-up.
        with platform(urls, tmp_path / "rebuilt", admin_key=admin) as rebuilt:
            synced(rebuilt)
            original = figures(rebuilt)
        restored = {s: f"tjp_restored_{s}_{uuid.uuid4().hex[:8]}" for s in SERVICES}
        env = {**pg_env, **{f"TJP_{s.upper()}_DB": n for s, n in restored.items()}}
        try:
            out = run("restore.sh", str(tmp_path / "backup"), env=env)
            print(out)
            assert out.count("cursor ok") == 4, out
            base = make_url(postgres_url())
            new_urls = {
                s: base.set(database=n).render_as_string(hide_password=False)
                for s, n in restored.items()
            }
            with platform(new_urls, tmp_path / "after", admin_key=admin) as again:
                synced(again)
                after = figures(again)
                # The admin key came back with the catalog: writes work on the restored set.
                with again.catalog.client(admin) as c:
                    assert c.get("/v1/organisations").status_code == 200
        finally:
            for n in restored.values():
                asyncio.run(
                    _pg_admin(postgres_url(), f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
                )
    assert before["index_patents"] == len(TEXTS) and before["index_needs"] == 1
    assert before["listings"] and before["ranking"] and before["pool"]
    assert after == original
    assert {k: v for k, v in after.items() if k != "ranking"} == {
        k: v for k, v in before.items() if k != "ranking"
    }
    assert [n for n, _ in after["ranking"]] == [n for n, _ in before["ranking"]]


def test_restore_refuses_a_tampered_backup(pg_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "MANIFEST").write_text("# x\n" + "".join(
        f"{s} {s} 1 {'0' * 64} 0s\n" for s in SERVICES))  # fmt: skip
    for s in SERVICES:
        (tmp_path / f"{s}.dump").write_bytes(b"not a dump")
    r = subprocess.run([str(ROOT / "deploy" / "restore.sh"), str(tmp_path)], env=pg_env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "checksum" in r.stderr

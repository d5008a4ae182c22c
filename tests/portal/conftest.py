"""The portal over live catalog, matching and indicators services, and a real Chromium.

The backends are the same live servers the other services' tests use (tests/conftest.py,
tests/matching/conftest.py, tests/indicators/conftest.py). The portal has no database of
its own and the backends are tested on both engines in their own modules, so the portal's
browser tests run on SQLite only (running them twice would double the slowest module
without testing anything new in the portal).

The module's data is loaded through the services' APIs: one university with pooled
patents, one SME, the city bureau and the Binhai district bureau, one person per role
(made through the catalog's identity API), and two effective deals in the ledger.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.portal.main import create_app
from services.portal.settings import PortalSettings
from shared.testing import LiveServer, fresh_database
from tests import factories
from tests.conftest import CatalogHandle, start_catalog
from tests.indicators.conftest import IndicatorsHandle, indicators  # noqa: F401 - fixture
from tests.matching.conftest import MatchingHandle, matching, new_patent  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PASSWORD = "portal-test-pass-1"


@pytest.fixture(scope="module", params=["sqlite"])
def engine(request: pytest.FixtureRequest) -> str:
    """SQLite only for the portal (see the module docstring)."""
    return str(request.param)


# Uploads above this many rows become catalog jobs, so a small file exercises the
# progress polling too.
SYNC_UPLOAD_LIMIT = 5


@pytest.fixture(scope="module")
def catalog(engine: str, db_dir: Path) -> Iterator[CatalogHandle]:
    """The live catalog of tests/conftest.py, with a small synchronous-upload limit."""
    with fresh_database(engine, db_dir, "catalog") as url:
        server, admin_key = start_catalog(url, sync_upload_limit=SYNC_UPLOAD_LIMIT)
        try:
            yield CatalogHandle(server.url, url, admin_key)
        finally:
            server.stop()


@dataclass
class Person:
    role: str
    email: str
    org_id: int
    org_name: str
    key: str  # the organisation's API key, for arranging data through the APIs
    district: str | None = None


@dataclass
class World:
    catalog: CatalogHandle
    matching: MatchingHandle
    indicators: IndicatorsHandle
    portal_url: str
    people: dict[str, Person]
    patents: dict[str, dict[str, Any]] = field(default_factory=dict)
    deals: dict[int, int] = field(default_factory=dict)  # effective year -> deal id

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.portal_url, timeout=60, follow_redirects=False)

    def signed_in(self, role: str) -> tuple[httpx.Client, str]:
        """An httpx client signed in to the portal as `role`, and its CSRF token."""
        c = self.client()
        token = csrf_of(c.get("/signin").text)
        r = c.post(
            "/signin",
            data={"csrf_token": token, "login": self.people[role].email, "password": PASSWORD},
        )
        assert r.status_code == 303, r.text
        return c, csrf_of(c.get("/").text)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'"X-CSRF-Token": "([^"]+)"', html
    )
    assert m, "no CSRF token on the page"
    return m.group(1)


def add_person(
    catalog: CatalogHandle, org_id: int, role: str, email: str, admin: bool = False
) -> None:
    with catalog.client(catalog.admin_key) as c:
        r = c.post(
            f"/v1/organisations/{org_id}/people",
            json={"name": f"测试{role}", "email": email, "password": PASSWORD, "role": role,
                  "org_admin": admin},
        )  # fmt: skip
        assert r.status_code == 201, r.text


# Patents with distinct technical texts so matching has something to rank.
PATENT_TEXTS = {
    "led": ("一种LED驱动恒流升压电路", "本发明公开了一种LED灯具驱动电路，采用恒流升压拓扑，降低驱动芯片温升，解决灯具过热问题。", ["H05B 45/37"]),
    "battery": ("一种锂离子电池正极材料的制备方法", "本发明公开了一种锂离子电池正极材料，提高了电池的循环寿命和安全性。", ["H01M 4/131"]),
    "sensor": ("一种柔性压力传感器及其制备方法", "本发明涉及一种柔性压力传感器，采用碳纳米管导电薄膜，灵敏度高，可用于可穿戴设备。", ["G01L 1/20"]),
    "water": ("一种印染废水的处理方法", "本发明公开了一种印染废水处理方法，通过电催化氧化降解染料，COD去除率高。", ["C02F 1/46"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def world(
    catalog: CatalogHandle,
    matching: MatchingHandle,  # noqa: F811 - the imported fixture
    indicators: IndicatorsHandle,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    uni_id, uni_key = catalog.org("天津测试大学", "university", "supplier", district="nankai")
    sme_id, sme_key = catalog.org(
        "天津测试科技有限公司", "sme", "sme", district="binhai", is_sme=True
    )
    city_id, city_key = catalog.org("天津市知识产权局", "other", "city_bureau", district="hexi")
    bh_id, bh_key = catalog.org("滨海新区知识产权局", "other", "district_bureau", district="binhai")
    people = {
        "supplier": Person("supplier", "uni@test.cn", uni_id, "天津测试大学", uni_key, "nankai"),
        "sme": Person("sme", "sme@test.cn", sme_id, "天津测试科技有限公司", sme_key, "binhai"),
        "city_bureau": Person("city_bureau", "city@test.cn", city_id, "天津市知识产权局", city_key, "hexi"),
        "district_bureau": Person("district_bureau", "13812345678", bh_id, "滨海新区知识产权局", bh_key, "binhai"),
    }  # fmt: skip
    add_person(catalog, uni_id, "supplier", "uni@test.cn", admin=True)
    add_person(catalog, sme_id, "sme", "sme@test.cn")
    add_person(catalog, city_id, "city_bureau", "city@test.cn")
    with catalog.client(catalog.admin_key) as c:
        found = c.get("/v1/organisations", params={"q": "平台管理员"}).json()["items"]
        admin_org = next(o["id"] for o in found if o["name"] == "平台管理员")
    people["admin"] = Person("admin", "admin@test.cn", admin_org, "平台管理员", catalog.admin_key)
    add_person(catalog, admin_org, "admin", "admin@test.cn", admin=True)
    with catalog.client(catalog.admin_key) as c:  # one person signs in with a phone number
        r = c.post(
            f"/v1/organisations/{bh_id}/people",
            json={"name": "测试区局", "phone": "13812345678", "password": PASSWORD,
                  "role": "district_bureau"},
        )  # fmt: skip
        assert r.status_code == 201, r.text

    patents: dict[str, dict[str, Any]] = {}
    with catalog.client(uni_key) as c:
        for name, (title, abstract, ipc) in PATENT_TEXTS.items():
            body = new_patent("天津测试大学", title, abstract, ipc)
            assert c.post("/v1/patents", json=body).status_code in (200, 201)
            offer = factories.offer()
            if name == "led":
                offer = {"modes": ["assignment"], "zero_price": True, "price_cny": None}
            if name == "sensor":
                offer = {"modes": ["non_exclusive_licence"], "use_first_pay_later": True,
                         "price_cny": "80000"}  # fmt: skip
            r = c.post(
                "/v1/listings", json={"application_number": body["application_number"], **offer}
            )
            assert r.status_code == 201, r.text
            patents[name] = body
    # Two effective deals to the SME (2022 and 2023): the 1000 target's counts.
    indicators.wait_synced()
    deals: dict[int, int] = {}
    for name, year in (("water", 2022), ("battery", 2023)):
        deals[year] = indicators.deal(
            city_key,
            patents=[patents[name]["application_number"]],
            suppliers=[uni_id],
            recipient=sme_id,
            kind="assignment",
            effective=f"{year}-05-10",
            contract=f"{year}-05-01",
        )["id"]
    matching.wait_synced()

    upload_dir = tmp_path_factory.mktemp("portal-uploads")
    settings = PortalSettings(
        catalog_url=catalog.url,
        matching_url=matching.url,
        indicators_url=indicators.url,
        secret_key="portal-test-secret",
        upload_dir=str(upload_dir),
    )
    server = LiveServer(create_app(settings)).start()
    try:
        yield World(catalog, matching, indicators, server.url, people, patents, deals)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; scripts/install installs it with apt-get")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot under var/screenshots/ (git-ignored) for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)

"""The portal's guards over plain HTTP: roles, CSRF, error pages, the session cookie."""

from __future__ import annotations

import httpx
import pytest

from services.portal.i18n import LOCALE_DIR
from tests.portal.conftest import PASSWORD, World, csrf_of

ROLE_PAGES = {
    "sme": ["/me/needs", "/me/leads"],
    "supplier": ["/pool/upload", "/pool/patents", "/pool/leads"],
    "bureau": ["/bureau", "/bureau/plans", "/bureau/figures", "/bureau/snapshots"],
}
OWN = {"sme": "sme", "supplier": "supplier", "city_bureau": "bureau", "district_bureau": "bureau"}


@pytest.mark.parametrize("role", list(OWN))
def test_a_role_cannot_reach_another_roles_pages(world: World, role: str) -> None:
    c, _ = world.signed_in(role)
    for group, paths in ROLE_PAGES.items():
        for path in paths:
            r = c.get(path)
            expected = 200 if group == OWN[role] else 403
            assert r.status_code == expected, (role, path, r.status_code)
            if expected == 403:
                assert "无权访问" in r.text


def test_anonymous_visitors_are_sent_to_sign_in(world: World) -> None:
    with world.client() as c:
        for path in ("/me/needs", "/pool/upload", "/bureau"):
            r = c.get(path)
            assert r.status_code == 303
            assert r.headers["location"] == f"/signin?next={path}"


def test_posts_without_the_csrf_token_are_refused(world: World) -> None:
    c, token = world.signed_in("sme")
    body = {"title": "无令牌的需求", "description": "需要一种LED恒流驱动电路", "need_industry": "1"}
    assert c.post("/me/needs", data=body).status_code == 403
    assert c.post("/me/needs", data={**body, "csrf_token": "forged"}).status_code == 403
    r = c.post("/me/needs", data=body, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    # Nothing was written by the refused posts; the same post with the token works.
    with world.matching.client(world.people["sme"].key) as m:
        titles = [n["title"] for n in m.get("/v1/needs", params={"mine": "true"}).json()["items"]]
    assert "无令牌的需求" not in titles
    r = c.post("/me/needs", data={**body, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith("/me/needs/")
    with world.client() as anon:  # sign-in itself is a form and needs the token too
        r = anon.post("/signin", data={"login": "sme@test.cn", "password": "x"})
        assert r.status_code == 403


def test_session_cookie_flags_and_tamper_proofing(world: World) -> None:
    with world.client() as anon:
        header = anon.get("/signin").headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=Lax" in header
        assert "Secure" not in header  # plain http on loopback
    with world.client() as tls:  # behind a TLS proxy (uvicorn trusts loopback's headers)
        header = tls.get("/signin", headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
        assert "Secure" in header
    # A cookie altered in the browser is not accepted: the person is anonymous again.
    c, _ = world.signed_in("supplier")
    value = c.cookies["tjp_session"]
    assert c.get("/pool/patents").status_code == 200
    with world.client() as other:
        good = {"cookie": f"tjp_session={value}"}
        assert other.get("/pool/patents", headers=good).status_code == 200
        tampered = value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB")
        r = other.get("/pool/patents", headers={"cookie": f"tjp_session={tampered}"})
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")


def test_error_pages_never_show_a_stack_trace(world: World) -> None:
    with world.client() as c:
        r = c.get("/no/such/page")
        assert r.status_code == 404 and "页面不存在" in r.text
        r = c.get("/patents/CN000000000000.0")
        assert r.status_code in (404, 422) and "Traceback" not in r.text
        assert r.headers["content-type"].startswith("text/html")


def test_open_redirects_are_refused(world: World) -> None:
    from tests.portal.conftest import PASSWORD, csrf_of

    with world.client() as c:
        token = csrf_of(c.get("/signin").text)
        r = c.post(
            "/signin",
            data={"csrf_token": token, "login": "sme@test.cn", "password": PASSWORD,
                  "next": "//evil.example/"},
        )  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/me/needs"


def test_every_chinese_message_is_translated() -> None:
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert not missing, missing


def test_htmx_requests_get_a_short_message_not_a_page(world: World) -> None:
    c, _ = world.signed_in("sme")
    r = c.post("/problem", data={"text": "LED"}, headers={"HX-Request": "true"})
    assert r.status_code == 403  # no CSRF token
    assert "<html" not in r.text and "表单校验失败" in r.text
    r = c.get("/bureau", headers={"HX-Request": "true"})
    assert r.status_code == 403 and "<html" not in r.text and "无权打开" in r.text


def test_a_district_bureau_reports_a_figure_for_its_own_district(world: World) -> None:
    c, token = world.signed_in("district_bureau")
    form = {"csrf_token": token, "plan": "city-001", "indicator": "C09", "year": "2023",
            "value": "1234", "district": "hexi", "note": ""}  # fmt: skip
    r = c.post("/bureau/figures", data=form)
    assert r.status_code == 303, r.text
    with world.indicators.client() as api:
        rows = api.get("/v1/figures", params={"plan": "city-001", "indicator": "C09"}).json()
    mine = [f for f in rows if f["year"] == 2023 and float(f["value"]) == 1234]
    assert len(mine) == 1 and "binhai" in mine[0]["scope"]  # not the district it asked for
    page = c.get("/bureau/figures?plan=city-001").text
    assert "1,234" in page


def sign_in_as(world: World, login: str, password: str, visitor: str) -> httpx.Response:
    with world.client() as c:
        headers = {"X-Forwarded-For": visitor}  # as a TLS proxy in front of the portal would
        token = csrf_of(c.get("/signin", headers=headers).text)
        return c.post("/signin", headers=headers,
                      data={"csrf_token": token, "login": login, "password": password})  # fmt: skip


def test_failed_sign_ins_are_throttled_per_visitor_not_for_everyone(world: World) -> None:
    # Five failures for one login: the sixth attempt is refused politely (429).
    for _ in range(5):
        r = sign_in_as(world, "nobody@test.cn", "wrong-password", "10.0.0.1")
        assert r.status_code == 401 and "密码错误" in r.text
    r = sign_in_as(world, "nobody@test.cn", "wrong-password", "10.0.0.1")
    assert r.status_code == 429 and "尝试次数过多" in r.text
    # One visitor failing many logins is throttled by address ...
    for i in range(20):
        sign_in_as(world, f"guess{i}@test.cn", "wrong-password", "10.0.0.2")
    r = sign_in_as(world, world.people["sme"].email, PASSWORD, "10.0.0.2")
    assert r.status_code == 429
    # ... but every sign-in reaches the catalog from the portal, and other visitors still
    # get in: the portal passes on each visitor's own address.
    r = sign_in_as(world, world.people["sme"].email, PASSWORD, "10.0.0.3")
    assert r.status_code == 303 and r.headers["location"] == "/me/needs"


def test_search_filters_use_first_pay_later_offers(world: World) -> None:
    c, _ = world.signed_in("sme")
    every = c.get("/search").text
    only = c.get("/search", params={"use_first_pay_later": "true"}).text
    c.close()
    sensor, led = world.patents["sensor"]["title"], world.patents["led"]["title"]
    assert sensor in every and led in every
    assert sensor in only and led not in only
    assert 'name="use_first_pay_later" value="true" checked' in only

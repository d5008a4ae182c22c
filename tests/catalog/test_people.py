"""People, sign-in and short-lived tokens (real HTTP, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.matching.main import MIGRATIONS as MATCHING_MIGRATIONS
from services.matching.main import create_app as create_matching_app
from services.matching.settings import MatchingSettings
from shared.auth import RemoteAuthenticator
from shared.db import upgrade
from shared.testing import LiveServer, fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.factories import patent

PASSWORD = "correct horse 电池"
_n = itertools.count(1)


def unique_email(prefix: str = "p") -> str:
    return f"{prefix}{next(_n)}@Example.CN"


def unique_phone() -> str:
    return f"139{next(_n) + 10_000_000:08d}"


def add_person(
    catalog: CatalogHandle,
    key: str,
    org_id: int,
    role: str,
    *,
    expect: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "测试用户", "password": PASSWORD, "role": role, **extra}
    if "email" not in extra and "phone" not in extra:
        body["email"] = unique_email()
    with catalog.client(key) as c:
        r = c.post(f"/v1/organisations/{org_id}/people", json=body)
    assert r.status_code == expect, r.text
    return dict(r.json())


def sign_in(catalog: CatalogHandle, login: str, password: str = PASSWORD) -> httpx.Response:
    with catalog.client() as c:
        return c.post("/v1/sessions", json={"login": login, "password": password})


def token_of(catalog: CatalogHandle, login: str, password: str = PASSWORD) -> str:
    r = sign_in(catalog, login, password)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def uni(catalog: CatalogHandle, name: str) -> tuple[int, str]:
    return catalog.org(name, kind="university", role="supplier")


def city_bureau(catalog: CatalogHandle) -> tuple[int, str]:
    return catalog.org("天津市知识产权局（人员测试）", kind="other", role="city_bureau")


def uni_admin(catalog: CatalogHandle, org_id: int) -> tuple[dict[str, Any], str]:
    """A person of the organisation with org_admin, signed in: (person, token)."""
    person = add_person(catalog, catalog.admin_key, org_id, "supplier", org_admin=True)
    return person, token_of(catalog, person["email"])


def test_migration_adds_people(catalog: CatalogHandle) -> None:
    with catalog.client() as c:
        assert c.get("/readyz").json()["migration"] >= "0002"


def test_admin_and_city_bureau_create_people_without_showing_the_hash(
    catalog: CatalogHandle,
) -> None:
    org_id, _ = uni(catalog, "天津人员大学")
    other_id, _ = uni(catalog, "天津人员大学二")
    _, bureau_key = city_bureau(catalog)
    by_admin = add_person(
        catalog,
        catalog.admin_key,
        org_id,
        "supplier",
        email="Li.Lei@Example.CN",
        phone="+86 138-0000-0001",
    )
    assert by_admin["email"] == "li.lei@example.cn"
    assert by_admin["phone"] == "13800000001"
    assert by_admin["org_id"] == org_id and by_admin["active"] is True
    assert by_admin["org_admin"] is False
    assert "password" not in by_admin and "password_hash" not in by_admin
    by_bureau = add_person(catalog, bureau_key, other_id, "supplier", phone="13800000002")
    assert by_bureau["email"] is None and by_bureau["phone"] == "13800000002"
    with catalog.client(bureau_key) as c:
        listed = c.get(f"/v1/organisations/{org_id}/people").json()
    assert [p["id"] for p in listed] == [by_admin["id"]]
    assert not any("hash" in k or "password" in k for k in listed[0])


def test_an_org_admin_manages_only_their_own_organisation(catalog: CatalogHandle) -> None:
    org_id, uni_key = uni(catalog, "天津管理员大学")
    other_id, _ = uni(catalog, "天津另一所大学")
    sme_id, sme_key = catalog.org("天津人员测试中小企业", kind="sme", role="sme")
    admin, admin_token = uni_admin(catalog, org_id)
    assert admin["org_admin"] is True
    made = add_person(catalog, admin_token, org_id, "supplier")
    assert made["org_id"] == org_id
    with catalog.client(admin_token) as c:
        assert len(c.get(f"/v1/organisations/{org_id}/people").json()) == 2
        assert c.get(f"/v1/organisations/{other_id}/people").status_code == 403
    # Another organisation's admin, a person without org_admin, an SME key, a plain key.
    add_person(catalog, admin_token, other_id, "supplier", expect=403)
    plain_token = token_of(catalog, made["email"])
    add_person(catalog, plain_token, org_id, "supplier", expect=403)
    add_person(catalog, sme_key, org_id, "supplier", expect=403)
    add_person(catalog, sme_key, sme_id, "sme", expect=403)
    add_person(catalog, uni_key, org_id, "supplier", expect=403)
    with catalog.client() as anon:
        r = anon.post(
            f"/v1/organisations/{org_id}/people",
            json={"name": "x", "email": unique_email(), "password": PASSWORD, "role": "supplier"},
        )
        assert r.status_code == 401
    # An organisation admin cannot hand out a role that is not their own.
    r = add_person(catalog, admin_token, org_id, "admin", expect=403)
    assert "platform admin" in r["detail"]
    with catalog.client(admin_token) as c:
        assert c.patch(f"/v1/people/{made['id']}", json={"name": "改名"}).json()["name"] == "改名"
        r = c.patch(f"/v1/people/{made['id']}", json={"role": "admin"})
        assert r.status_code == 403
    with catalog.client(plain_token) as c:
        assert c.patch(f"/v1/people/{admin['id']}", json={"active": False}).status_code == 403


def test_role_and_fields_are_validated(catalog: CatalogHandle) -> None:
    sme_id, _ = catalog.org("天津角色测试中小企业", kind="sme", role=None)
    r = add_person(catalog, catalog.admin_key, sme_id, "supplier", expect=422)
    assert r["errors"][0]["field"] == "role"
    r = add_person(catalog, catalog.admin_key, sme_id, "sme", password="short", expect=422)
    assert r["errors"][0]["field"] == "password"
    with catalog.client(catalog.admin_key) as c:
        r = c.post(
            f"/v1/organisations/{sme_id}/people",
            json={"name": "无联系方式", "password": PASSWORD, "role": "sme"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "email"
    r = add_person(catalog, catalog.admin_key, sme_id, "sme", phone="12345", expect=422)
    assert r["errors"][0]["field"] == "phone"
    r = add_person(catalog, catalog.admin_key, sme_id, "sme", email="not-an-email", expect=422)
    assert r["errors"][0]["field"] == "email"
    add_person(catalog, catalog.admin_key, sme_id, "sme")
    with catalog.client(catalog.admin_key) as c:
        assert len(c.get(f"/v1/organisations/{sme_id}/people").json()) == 1


def test_duplicate_email_or_phone_is_a_conflict(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津重复大学")
    email, phone = unique_email(), unique_phone()
    add_person(catalog, catalog.admin_key, org_id, "supplier", email=email, phone=phone)
    r = add_person(catalog, catalog.admin_key, org_id, "supplier", email=email.upper(), expect=409)
    assert r["errors"] == [{"field": "email", "reason": "already registered"}]
    dashed = f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    r = add_person(catalog, catalog.admin_key, org_id, "supplier", phone=dashed, expect=409)
    assert r["errors"][0]["field"] == "phone"


def test_sign_in_by_email_or_phone(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津登录大学")
    email, phone = unique_email(), unique_phone()
    person = add_person(catalog, catalog.admin_key, org_id, "supplier", email=email, phone=phone)
    before = datetime.now(UTC)
    r = sign_in(catalog, email.upper())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("tjp_") and body["token_type"] == "bearer"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=7, minutes=59) < expires - before < timedelta(hours=8, minutes=1)
    assert body["person"]["id"] == person["id"] and body["person"]["role"] == "supplier"
    assert {"name", "email", "phone", "org_admin"} <= set(body["person"])
    assert "password_hash" not in body["person"]
    assert body["organisation"] == {
        **body["organisation"],
        "id": org_id,
        "name": "天津登录大学",
        "kind": "university",
        "district": "nankai",
    }
    r = sign_in(catalog, f"+86 {phone}")
    assert r.status_code == 201 and r.json()["person"]["id"] == person["id"]


def test_wrong_password_and_unknown_login_say_the_same(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津密码大学")
    email = unique_email()
    add_person(catalog, catalog.admin_key, org_id, "supplier", email=email)
    wrong = sign_in(catalog, email, "wrong password!")
    unknown = sign_in(catalog, "nobody@example.cn", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_failed_sign_ins_are_throttled_per_login(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津限流大学")
    email, other = unique_email(), unique_email()
    add_person(catalog, catalog.admin_key, org_id, "supplier", email=email)
    add_person(catalog, catalog.admin_key, org_id, "supplier", email=other)
    # A success resets the login's count: 4 failures, success, 4 more are still 401s.
    for _ in range(4):
        assert sign_in(catalog, other, "wrong password!").status_code == 401
    assert sign_in(catalog, other).status_code == 201
    for _ in range(4):
        assert sign_in(catalog, other, "wrong password!").status_code == 401
    assert sign_in(catalog, other).status_code == 201
    for _ in range(5):
        assert sign_in(catalog, email, "wrong password!").status_code == 401
    r = sign_in(catalog, email)  # even the right password waits
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/problem+json")
    assert 800 < int(r.headers["retry-after"]) <= 900
    assert r.json()["retry_after"] == int(r.headers["retry-after"])
    assert sign_in(catalog, email.upper()).status_code == 429  # the same login
    assert sign_in(catalog, other).status_code == 201  # other logins are not held up


@contextmanager
def second_catalog(catalog: CatalogHandle, **settings: Any) -> Iterator[CatalogHandle]:
    """Another catalog process on the same database with other settings."""
    server, admin_key = start_catalog(catalog.database_url, **settings)
    try:
        yield CatalogHandle(server.url, catalog.database_url, admin_key)
    finally:
        server.stop()


def test_failed_sign_ins_are_throttled_per_client(catalog: CatalogHandle) -> None:
    with second_catalog(catalog, login_max_failures_per_client=3) as strict:
        for _ in range(3):
            assert sign_in(strict, unique_email(), "wrong password!").status_code == 401
        r = sign_in(strict, unique_email(), "wrong password!")
        assert r.status_code == 429 and 800 < int(r.headers["retry-after"]) <= 900


def test_token_expires(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津过期大学")
    email = unique_email()
    add_person(catalog, catalog.admin_key, org_id, "supplier", email=email)
    with second_catalog(catalog, session_ttl_seconds=1) as short:
        token = token_of(short, email)
    with catalog.client(token) as c:
        assert c.get("/v1/me").status_code == 200
        time.sleep(1.2)
        assert c.get("/v1/me").status_code == 401
        assert c.post("/v1/patents", json=patent("天津过期大学")).status_code == 401
    with catalog.client() as c:
        assert c.post("/v1/auth/introspect", json={"key": token}).json()["active"] is False


def test_token_writes_like_a_key_until_sign_out(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津令牌大学")
    _, other_key = uni(catalog, "天津另一所令牌大学")
    theirs = patent("天津另一所令牌大学")
    with catalog.client(other_key) as c:
        assert c.post("/v1/patents", json=theirs).status_code == 201
    _, token = uni_admin(catalog, org_id)
    with catalog.client(token) as c:
        r = c.post("/v1/patents", json=patent("天津令牌大学"))
        assert r.status_code == 201, r.text
        assert org_id in r.json()["owner_org_ids"]
        # Authorisation is the organisation's, exactly as for its key.
        r = c.post("/v1/patents", json={**theirs, "title": "改写别人的专利"})
        assert r.status_code == 403, r.text
        assert c.delete("/v1/sessions/current").status_code == 204
        assert c.get("/v1/me").status_code == 401
        assert c.post("/v1/patents", json=patent("天津令牌大学")).status_code == 401
        assert c.delete("/v1/sessions/current").status_code == 401
    with catalog.client() as c:
        assert c.post("/v1/auth/introspect", json={"key": token}).json()["active"] is False


def test_sign_out_with_an_api_key_is_refused(catalog: CatalogHandle) -> None:
    _, key = uni(catalog, "天津退出大学")
    with catalog.client(key) as c:
        r = c.delete("/v1/sessions/current")
        assert r.status_code == 400 and "DELETE /v1/keys" in r.json()["detail"]
        assert c.get("/v1/me").status_code == 200


def test_tokens_are_not_listed_as_keys(catalog: CatalogHandle) -> None:
    org_id, key = uni(catalog, "天津列表大学")
    uni_admin(catalog, org_id)
    with catalog.client(key) as c:
        keys = c.get(f"/v1/organisations/{org_id}/keys").json()
    assert [k["id"] for k in keys] == [key.split("_")[1]]


def test_deactivation_revokes_live_tokens(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津停用大学")
    email = unique_email()
    person = add_person(catalog, catalog.admin_key, org_id, "supplier", email=email)
    first, second = token_of(catalog, email), token_of(catalog, email)
    _, bureau_key = city_bureau(catalog)
    with catalog.client(bureau_key) as c:
        r = c.patch(f"/v1/people/{person['id']}", json={"active": False})
        assert r.status_code == 200 and r.json()["active"] is False
    for token in (first, second):
        with catalog.client(token) as c:
            assert c.get("/v1/me").status_code == 401
    assert sign_in(catalog, email).status_code == 401
    with catalog.client(bureau_key) as c:
        assert c.patch(f"/v1/people/{person['id']}", json={"active": True}).status_code == 200
    # Revoked tokens stay revoked; a new sign-in works.
    with catalog.client(first) as c:
        assert c.get("/v1/me").status_code == 401
    assert sign_in(catalog, email).status_code == 201


def test_a_person_changes_their_own_password(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津改密大学")
    email = unique_email()
    person = add_person(catalog, catalog.admin_key, org_id, "supplier", email=email)
    elsewhere, here = token_of(catalog, email), token_of(catalog, email)
    with catalog.client(here) as c:
        assert c.patch(f"/v1/people/{person['id']}", json={"active": False}).status_code == 403
        r = c.patch(f"/v1/people/{person['id']}", json={"password": "a new password 2"})
        assert r.status_code == 200
        assert c.get("/v1/me").status_code == 200  # the session that changed it goes on
    with catalog.client(elsewhere) as c:
        assert c.get("/v1/me").status_code == 401  # every other session ends
    assert sign_in(catalog, email).status_code == 401
    assert sign_in(catalog, email, "a new password 2").status_code == 201


def test_a_role_change_applies_to_live_tokens(catalog: CatalogHandle) -> None:
    org_id, _ = catalog.org("天津角色变更局", kind="other", district="hexi", role=None)
    email = unique_email()
    person = add_person(catalog, catalog.admin_key, org_id, "district_bureau", email=email)
    token = token_of(catalog, email)
    with catalog.client(catalog.admin_key) as c:
        r = c.patch(f"/v1/people/{person['id']}", json={"role": "city_bureau"})
        assert r.status_code == 200
        r = c.patch(f"/v1/people/{person['id']}", json={"role": "sme"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"
    with catalog.client(token) as c:
        assert c.get("/v1/me").json()["role"] == "city_bureau"


def test_me_for_a_key_and_for_a_token(catalog: CatalogHandle) -> None:
    org_id, key = uni(catalog, "天津我是谁大学")
    admin, token = uni_admin(catalog, org_id)
    with catalog.client(key) as c:
        me = c.get("/v1/me").json()
    assert me["person"] is None and me["person_id"] is None and me["org_admin"] is False
    assert me["org_id"] == org_id and me["role"] == "supplier"
    assert me["organisation"]["name"] == "天津我是谁大学"
    with catalog.client(token) as c:
        me = c.get("/v1/me").json()
    assert me["person"]["id"] == admin["id"] == me["person_id"]
    assert me["org_admin"] is True and me["person"]["org_admin"] is True
    assert me["organisation"]["id"] == org_id and me["organisation"]["kind"] == "university"
    assert me["key_id"] == token.split("_")[1] and me["expires_at"]
    with catalog.client() as c:
        assert c.get("/v1/me").status_code == 401


def test_introspection_of_a_token(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津内省大学")
    admin, token = uni_admin(catalog, org_id)
    with catalog.client() as c:
        body = c.post("/v1/auth/introspect", json={"key": token}).json()
    assert body["active"] is True
    assert body["principal"] == {
        "key_id": token.split("_")[1],
        "org_id": org_id,
        "role": "supplier",
        "org_kind": "university",
        "district": "nankai",
        "person_id": admin["id"],
        "org_admin": True,
    }
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC) + timedelta(hours=7)
    with catalog.client() as c:
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert c.post("/v1/auth/introspect", json={"key": tampered}).json()["active"] is False


def test_other_services_cache_a_token_briefly(catalog: CatalogHandle) -> None:
    org_id, _ = uni(catalog, "天津缓存大学")
    _, token = uni_admin(catalog, org_id)

    async def run() -> tuple[Any, Any, Any]:
        async with httpx.AsyncClient(base_url=catalog.url) as client:
            # 3 s: long enough that a slow sign-out on a loaded machine still falls inside it.
            auth = RemoteAuthenticator(client, cache_ttl=30, token_cache_ttl=3.0)
            before = await auth.authenticate(token)
            with catalog.client(token) as c:
                assert c.delete("/v1/sessions/current").status_code == 204
            cached = await auth.authenticate(token)
            await asyncio.sleep(3.1)
            return before, cached, await auth.authenticate(token)

    before, cached, after = asyncio.run(run())
    assert before is not None and before.person_id is not None and before.org_admin
    assert cached == before  # within the token cache time, the old answer stands
    assert after is None


def test_a_token_is_accepted_by_another_service(
    catalog: CatalogHandle, engine: str, db_dir: Path, tmp_path: Path
) -> None:
    """The matching service checks the token through the catalog's introspection and
    applies its own rules to the principal, exactly as for an API key."""
    sme_id, _ = catalog.org("天津令牌中小企业", kind="sme", role=None)
    uni_id, _ = uni(catalog, "天津令牌匹配大学")
    sme_email, uni_email = unique_email(), unique_email()
    add_person(catalog, catalog.admin_key, sme_id, "sme", email=sme_email)
    add_person(catalog, catalog.admin_key, uni_id, "supplier", email=uni_email)
    need = {
        "title": "锂电池正极材料循环寿命提升",
        "description": "现寻求一种提高锂离子电池正极材料循环稳定性的技术",
        "industry": "1",
        "modes": ["assignment"],
    }
    with fresh_database(engine, db_dir, "matching") as url:
        upgrade(MATCHING_MIGRATIONS, url)
        settings = MatchingSettings(
            database_url=url,
            catalog_url=catalog.url,
            index_dir=str(tmp_path / "index"),
            feed_idle_interval=0.05,
            snapshot_interval=3600,
        )
        server = LiveServer(create_matching_app(settings)).start()
        try:
            sme_token = token_of(catalog, sme_email)
            with httpx.Client(base_url=server.url, timeout=60) as c:
                auth = {"Authorization": f"Bearer {sme_token}"}
                r = c.post("/v1/needs", json=need, headers=auth)
                assert r.status_code == 201, r.text
                assert r.json()["org_id"] == sme_id
                uni_auth = {"Authorization": f"Bearer {token_of(catalog, uni_email)}"}
                assert c.post("/v1/needs", json=need, headers=uni_auth).status_code == 403
                with catalog.client(sme_token) as cat:
                    assert cat.delete("/v1/sessions/current").status_code == 204
                # A token the matching service has not cached is refused at once.
                fresh = {"Authorization": f"Bearer {token_of(catalog, sme_email)}"}
                with catalog.client(fresh["Authorization"][7:]) as cat:
                    assert cat.delete("/v1/sessions/current").status_code == 204
                assert c.post("/v1/needs", json=need, headers=fresh).status_code == 401
        finally:
            server.stop()

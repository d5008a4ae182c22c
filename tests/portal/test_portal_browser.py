"""End-to-end: the portal in a real Chromium over the live services (see conftest.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.matching.conftest import new_patent
from tests.portal.conftest import PASSWORD, SYNC_UPLOAD_LIMIT, World, shot

WIDTHS = (360, 1280)


@pytest.fixture
def page_for(world: World, browser: Any) -> Iterator[Any]:
    """page_for(role or None, width=1280): a fresh browser context, signed in through the form."""
    contexts: list[Any] = []

    def make(role: str | None, width: int = 1280) -> Any:
        ctx = browser.new_context(
            viewport={"width": width, "height": 900}, locale="zh-CN", base_url=world.portal_url
        )
        contexts.append(ctx)
        page = ctx.new_page()
        if role:
            page.goto("/signin")
            page.get_by_label("邮箱或手机号").fill(world.people[role].email)
            page.get_by_label("密码").fill(PASSWORD)
            page.locator("main form").get_by_role("button", name="登录").click()
            page.wait_for_load_state()
        return page

    yield make
    for ctx in contexts:
        ctx.close()


HOMES = {
    "sme": ("/me/needs", "我的需求"),
    "supplier": ("/pool/patents", "我的专利"),
    "city_bureau": ("/bureau", "统计看板"),
    "district_bureau": ("/bureau", "统计看板"),
    "admin": ("/bureau", "统计看板"),
}


@pytest.mark.parametrize("role", list(HOMES))
def test_each_role_signs_in_to_its_own_pages(world: World, page_for: Any, role: str) -> None:
    page = page_for(role)
    path, nav_item = HOMES[role]
    assert page.url.endswith(path)
    nav = page.get_by_role("navigation", name="主导航")
    assert nav.get_by_role("link", name=nav_item).is_visible()
    assert world.people[role].org_name in nav.inner_text()
    # Sign out ends the session: the role's page asks to sign in again.
    page.get_by_role("button", name="退出").click()
    page.wait_for_load_state()
    page.goto(path)
    assert "/signin" in page.url


def test_sign_in_with_the_keyboard_alone(world: World, page_for: Any) -> None:
    page = page_for(None)
    page.goto("/signin")
    for _ in range(20):  # Tab from the top of the page to the first field of the form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "login":
            break
    assert page.evaluate("document.activeElement.id") == "login"
    page.keyboard.type(world.people["sme"].email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/me/needs")


def test_wrong_password_is_refused_politely(page_for: Any, world: World) -> None:
    page = page_for(None)
    page.goto("/signin")
    page.get_by_label("邮箱或手机号").fill(world.people["sme"].email)
    page.get_by_label("密码").fill("not-the-password")
    page.locator("main form").get_by_role("button", name="登录").click()
    assert page.locator("#signin-error").inner_text() == "邮箱/手机号或密码错误。"
    assert "/signin" in page.url


def test_search_with_filters_and_open_a_patent(world: World, page_for: Any) -> None:
    page = page_for(None)
    page.goto("/search")
    page.get_by_label("关键词").fill("驱动")
    page.get_by_label("价格").select_option("true")  # 0 yuan only
    page.get_by_role("button", name="检索").click()
    results = page.locator(".result")
    expect(results).to_have_count(1)  # htmx swaps the results in place
    assert "q=" in page.url  # ... and pushes the filtered URL
    first = results.first
    assert "LED驱动恒流升压电路" in first.inner_text()
    assert first.locator("mark").first.inner_text() == "驱动"  # highlighted snippet
    assert "0 元（免费转让）" in first.inner_text()
    assert "天津测试大学" in first.inner_text()
    assert "挂牌中" in first.inner_text()
    first.get_by_role("link").first.click()
    page.wait_for_load_state()
    appno = world.patents["led"]["application_number"]
    assert page.url.endswith(f"/patents/{appno}")
    body = page.locator("main").inner_text()
    for text in (
        "天津测试大学",
        "0 元（免费转让）",
        "转让",
        "法律信息",
        "已授权",
        "2019-03-01",
        "相似专利",
    ):
        assert text in body, text
    # Another filter: use-first-pay-later is shown on the sensor patent's terms.
    page.goto("/search?q=传感器")
    assert "先使用后付费" in page.locator(".result").first.inner_text()
    for width in WIDTHS:
        p = page_for(None, width)
        p.goto("/search?q=电路")
        shot(p, "search")


def test_problem_to_ranked_explained_patents_and_save_need(world: World, page_for: Any) -> None:
    page = page_for("sme")
    page.goto("/problem")
    page.get_by_label("您的问题").fill("我们的LED灯具驱动发热严重，需要一种恒流升压的驱动电路方案")
    page.get_by_role("button", name="查找专利").click()
    hits = page.locator("#match-results .result")
    hits.first.wait_for()
    top = hits.first.inner_text()
    assert "LED驱动恒流升压电路" in top  # ranked first
    assert "匹配理由" in top
    assert hits.first.locator(".term").count() >= 1  # the terms that matched
    assert hits.first.locator(".snippet mark").count() >= 1
    for width in WIDTHS:
        p = page_for("sme", width)
        p.goto("/problem")
        p.get_by_label("您的问题").fill("我们的LED灯具驱动发热严重，需要一种恒流升压的驱动电路方案")
        p.get_by_role("button", name="查找专利").click()
        p.locator("#match-results .result").first.wait_for()
        shot(p, "problem")
    # Save it as a need: the need page lists the same patent among its matches.
    page.get_by_label("简短标题").fill("LED灯具驱动过热")
    page.locator("#f-need_industry").select_option(index=1)
    page.get_by_role("button", name="保存为需求").click()
    page.wait_for_load_state()
    assert "/me/needs/" in page.url
    assert "需求已保存" in page.locator("main").inner_text()
    assert "LED驱动恒流升压电路" in page.locator(".results").inner_text()


def test_interest_becomes_a_lead_the_owner_accepts(world: World, page_for: Any) -> None:
    appno = world.patents["led"]["application_number"]
    sme = page_for("sme")
    sme.goto("/problem")
    sme.get_by_label("您的问题").fill("需要一种LED恒流驱动电路")
    sme.get_by_role("button", name="查找专利").click()
    sme.locator("#match-results .result").first.wait_for()
    sme.get_by_label("简短标题").fill("LED恒流驱动")
    sme.locator("#f-need_industry").select_option(index=1)
    sme.get_by_role("button", name="保存为需求").click()
    sme.wait_for_load_state()
    sme.goto(f"/patents/{appno}")
    sme.get_by_label("对应您的哪项需求？").select_option(label="LED恒流驱动")
    sme.get_by_label("给权利人的留言（选填）").fill("想了解转让条件")
    sme.get_by_role("button", name="我感兴趣").click()
    sme.wait_for_load_state()
    assert sme.url.endswith("/me/leads")
    row = sme.locator("tr", has_text="LED驱动恒流升压电路")
    assert "待答复" in row.inner_text()

    owner = page_for("supplier")
    owner.goto("/pool/leads")
    lead = owner.locator(".result", has_text="LED驱动恒流升压电路")
    assert "天津测试科技有限公司" in lead.inner_text()
    assert "想了解转让条件" in lead.inner_text()
    lead.get_by_role("button", name="接受").click()
    owner.wait_for_load_state()
    assert "已接受" in owner.locator(".result", has_text="LED驱动恒流升压电路").inner_text()

    sme.reload()
    assert "已接受" in sme.locator("tr", has_text="LED驱动恒流升压电路").inner_text()


HEADERS = [
    "申请号",
    "专利名称",
    "摘要",
    "IPC分类号",
    "专利权人",
    "申请日",
    "授权公告日",
    "法律状态",
]


def upload_csv(path: Path, patents: list[dict[str, Any]]) -> Path:
    """A CSV in the catalog template's Chinese headers, as Excel saves it (UTF-8 + BOM)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        for p in patents:
            w.writerow([p["application_number"], p["title"], p["abstract"], ";".join(p["ipc_codes"]),
                        p["patentees"][0], p["application_date"], p["grant_date"], "granted"])  # fmt: skip
    return path


def test_upload_csv_with_a_bad_row_reports_it_in_chinese(
    world: World, page_for: Any, tmp_path: Path
) -> None:
    good1 = new_patent(
        "天津测试大学", "一种太阳能电池背板", "太阳能电池背板材料。", ["H01L 31/049"]
    )
    good2 = new_patent("天津测试大学", "一种光伏逆变器", "光伏逆变器控制方法。", ["H02M 7/48"])
    bad = dict(good2, title="校验位错误的专利")
    digits = bad["application_number"]
    bad["application_number"] = digits[:-1] + ("0" if digits[-1] != "0" else "1")
    path = upload_csv(tmp_path / "我的专利.csv", [good1, bad, good2])
    page = page_for("supplier")
    page.goto("/pool/upload")
    page.get_by_label("文件（CSV 或 XLSX，最多 50,000 行）").set_input_files(str(path))
    page.get_by_role("button", name="上传").click()
    page.wait_for_load_state()
    assert "/pool/uploads/" in page.url
    assert page.locator('[data-count="accepted"]').inner_text() == "2"
    assert page.locator('[data-count="rejected"]').inner_text() == "1"
    table = page.locator("#rejected").inner_text()
    first = page.locator("#rejected tbody tr").first.locator("td")
    assert first.nth(0).inner_text() == "3"  # spreadsheet row 3 (the header is row 1)
    assert first.nth(2).inner_text() == "申请号"
    assert "申请号" in table and "请检查申请号" in table
    with page.expect_download() as dl:
        page.get_by_role("link", name="下载被拒绝的行（CSV）").click()
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][-1] == "错误原因" and rows[0][0] == "申请号"
    assert len(rows) == 2 and rows[1][1] == "校验位错误的专利"
    for width in WIDTHS:
        p = page_for("supplier", width)
        p.goto(page.url)
        shot(p, "upload-report")


def test_a_large_upload_runs_as_a_job_with_progress(
    world: World, page_for: Any, tmp_path: Path
) -> None:
    rows = [
        new_patent("天津测试大学", f"一种批量上传的装置{i}", "批量上传测试。", ["B65G 1/00"])
        for i in range(SYNC_UPLOAD_LIMIT + 3)
    ]
    rows[4]["ipc_codes"] = ["H01M-10"]  # one bad row: spreadsheet row 6
    path = upload_csv(tmp_path / "batch.csv", rows)
    page = page_for("supplier")
    page.goto("/pool/upload")
    page.get_by_label("文件（CSV 或 XLSX，最多 50,000 行）").set_input_files(str(path))
    page.get_by_role("button", name="上传").click()
    page.wait_for_load_state()
    assert "后台" in page.locator("#job").inner_text()  # the catalog answered 202 with a job
    # Whether the first view showed the progress bar or the job was already done, the
    # page (polling with htmx) ends on the report.
    expect(page.locator('[data-count="accepted"]')).to_have_text(str(len(rows) - 1), timeout=30_000)
    assert page.locator("#rejected tbody tr").first.locator("td").first.inner_text() == "6"
    uid = page.url.rsplit("/", 1)[-1]
    c, _ = world.signed_in("supplier")
    r = c.get(f"/pool/uploads/{uid}/progress", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Refresh"] == "true"
    other, _ = world.signed_in("sme")  # another organisation's upload does not exist for you
    assert other.get(f"/pool/uploads/{uid}").status_code == 403  # SMEs: not their pages at all


def test_owner_edits_terms_withdraws_and_relists(world: World, page_for: Any) -> None:
    appno = world.patents["sensor"]["application_number"]
    page = page_for("supplier")
    page.goto(f"/pool/patents/{appno}/offer")
    page.get_by_label("价格（元；留空为面议）").fill("60000")
    page.get_by_role("button", name="保存交易条件").click()
    page.wait_for_load_state()
    item = page.locator(f'[data-appno="{appno}"]')
    assert "¥ 60,000" in item.inner_text()
    item.get_by_role("button", name="撤出专利池").click()
    page.wait_for_load_state()
    item = page.locator(f'[data-appno="{appno}"]')
    assert "已撤回" in item.inner_text()
    item.get_by_role("link", name="重新入池").click()  # re-listing confirms the terms
    page.wait_for_load_state()
    assert page.get_by_label("价格（元；留空为面议）").input_value() == "60000.00"
    page.get_by_role("button", name="保存交易条件").click()
    page.wait_for_load_state()
    assert "挂牌中" in page.locator(f'[data-appno="{appno}"]').inner_text()
    # A bundle of two pooled patents, shown on the patent page.
    led = world.patents["led"]["application_number"]
    for number in (appno, led):
        page.locator(f'[data-appno="{number}"]').get_by_label("加入新的专利包").check()
    page.get_by_label("专利包名称").fill("柔性电子专利包")
    page.get_by_role("button", name="创建专利包").click()
    page.wait_for_load_state()
    assert "柔性电子专利包" in page.locator("#bundles ~ ul").inner_text()
    page.goto(f"/patents/{led}")
    assert "柔性电子专利包" in page.locator("#bundle-h ~ p").first.inner_text()


def api_progress(world: World, **params: Any) -> dict[str, Any]:
    with world.indicators.client() as c:
        r = c.get("/v1/plans/city-001/progress", params=params)
        assert r.status_code == 200, r.text
        return {row["code"]: row for row in r.json()["indicators"]}


def num(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_bureau_dashboard_shows_the_indicators_api_numbers(world: World, page_for: Any) -> None:
    page = page_for("city_bureau")
    page.goto("/bureau?year=2023")
    api = api_progress(world, year=2023)
    for code in ("C03", "C04"):
        kpi = page.locator(f"#kpi-{code}")
        assert num(kpi.locator(".big").inner_text()) == api[code]["actual"]
        assert num(kpi.locator("[data-target]").inner_text()) == api[code]["final_target"]
    assert api["C04"]["actual"] == 2  # the two deals of the fixture
    yearly = [
        num(t) for t in page.locator("#yearly tbody tr").first.locator("td").all_inner_texts()
    ]
    assert yearly == [s["value"] for s in api["C04"]["series"]]
    rising = api["C04"]["rising_every_year"]
    assert ("逐年递增：已实现" in page.locator("#rising").inner_text()) == rising["rising"]
    page.wait_for_function("document.documentElement.dataset.charts === 'ready'")
    assert page.locator("#chart-c04 svg").count() == 1  # ECharts drew after first paint
    # Drill-down: the figure's records are the two deals.
    page.locator("#kpi-C04").get_by_role("link").click()
    page.wait_for_load_state()
    assert page.locator("#records tbody tr").count() == 2
    # A district bureau sees its district's figures, the same as the API's.
    district = page_for("district_bureau")
    district.goto("/bureau?year=2023")
    api_bh = api_progress(world, year=2023, district="binhai")
    assert num(district.locator("#kpi-C04 .big").inner_text()) == api_bh["C04"]["actual"]
    for width in WIDTHS:
        p = page_for("city_bureau", width)
        p.goto("/bureau?year=2023")
        p.wait_for_function("document.documentElement.dataset.charts === 'ready'")
        shot(p, "dashboard")


def test_plan_table_exports_and_snapshot(world: World, page_for: Any) -> None:
    page = page_for("city_bureau")
    page.goto("/bureau/plans/city-001?year=2023")
    row = page.locator('tr[data-code="C04"]')
    assert "status-behind" in (row.get_attribute("class") or "")
    assert "滞后" in row.inner_text()
    with page.expect_download() as dl:
        page.get_by_role("link", name="导出（Excel）").click()
    assert Path(dl.value.path()).read_bytes()[:2] == b"PK"  # an XLSX (zip) file
    page.goto("/bureau/snapshots")
    assert page.get_by_label("方案").input_value() == "city-001"  # the city plan first
    page.get_by_label("年度").fill("2023")
    page.get_by_role("button", name="冻结").click()
    page.wait_for_load_state()
    assert "/bureau/snapshots/" in page.url
    assert "所有指标与实时数据一致" in page.locator("main").inner_text()
    # A deal cancelled after the freeze: the snapshot keeps 2, the diff shows live 1.
    with world.indicators.client(world.people["city_bureau"].key) as c:
        r = c.post(f"/v1/deals/{world.deals[2023]}/cancel", json={"reason": "合同解除"})
        assert r.status_code == 200, r.text
    page.reload()
    c04 = page.locator('#diff tr[data-code="C04"] td')
    assert [c04.nth(1).inner_text(), c04.nth(2).inner_text()] == ["2", "1"]
    assert "合同解除" in page.locator("main").inner_text()


def test_no_serious_accessibility_violations(world: World, page_for: Any) -> None:
    axe = Axe()
    pages = {
        None: ["/", "/search?q=电池", f"/patents/{world.patents['led']['application_number']}", "/problem", "/signin"],
        "supplier": ["/pool/patents", "/pool/upload", "/pool/leads"],
        "city_bureau": ["/bureau?year=2023", "/bureau/plans/city-001?year=2023"],
        "sme": ["/me/needs", "/me/leads"],
    }  # fmt: skip
    found: list[str] = []
    for role, paths in pages.items():
        page = page_for(role)
        for path in paths:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            result = axe.run(page)
            for v in result.response["violations"]:
                if v["impact"] in ("serious", "critical"):
                    found.append(f"{path}: {v['id']} ({v['impact']}) {v['nodes'][0]['target']}")
    assert not found, "\n".join(found)


def test_pages_fit_a_phone_screen(world: World, page_for: Any) -> None:
    page = page_for("city_bureau", 360)
    for path in ("/", "/search?q=电池", "/bureau?year=2023", "/bureau/plans/city-001?year=2023"):
        page.goto(path)
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width}px wide"
    shot(page, "plan-table")


def test_language_switch_to_english(page_for: Any) -> None:
    page = page_for(None)
    page.goto("/search")
    assert page.locator("h1").inner_text() == "专利检索"
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Search patents"
    assert page.locator("html").get_attribute("lang") == "en"


def test_stopped_matching_service_gives_a_polite_message(world: World, page_for: Any) -> None:
    """Last in the module: it stops the matching service."""
    world.matching.stop()
    page = page_for("sme")
    page.goto("/problem")
    page.get_by_label("您的问题").fill("需要一种LED恒流驱动电路")
    page.get_by_role("button", name="查找专利").click()
    notice = page.locator("#match-results .notice")
    notice.wait_for()
    assert "匹配服务暂时不可用" in notice.inner_text()
    # The rest keeps working: search is the catalog's, the patent page loses only its
    # similar patents, and no page shows a stack trace.
    page.goto("/search?q=驱动")
    assert page.locator(".result").count() == 1
    page.goto(f"/patents/{world.patents['led']['application_number']}")
    assert "匹配服务暂时不可用" in page.locator("main").inner_text()
    assert "LED驱动恒流升压电路" in page.locator("h1").inner_text()
    page.goto("/me/leads")
    assert "匹配服务暂时不可用" in page.locator("main").inner_text()
    assert "Traceback" not in page.content()

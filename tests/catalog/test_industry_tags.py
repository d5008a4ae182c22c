"""SEI industry tags: code forms, keyword gating by terms, subclass-only records,
every industry filter on the demo pool, and re-tagging stored patents."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from services.catalog.demo.load import load_demo
from services.catalog.domain.industry import branches, cell_terms, explain, tag_industries
from services.catalog.domain.retag import retag_patents
from services.catalog.models import FeedEntry, Patent
from shared.db import Database
from shared.ipc import normalize_ipc
from tests.conftest import CatalogHandle


def test_the_four_examples_of_the_issue() -> None:
    # H01L31* is listed under 6.3; the cell's terms include 太阳能.
    assert tag_industries(["H01L31/18"], "太阳能电池制备") == ["6.3"]
    # H01M10/0525 is listed only under 5.2, for vehicle batteries ("汽车相关关键词").
    assert tag_industries(["H01M10/0525"], "一种电动汽车用锂离子动力电池") == ["5.2"]
    assert tag_industries(["H01M10/0525"], "一种锂离子动力电池的制备方法") == ["5.2"]
    # The transcribed table has no IPC for 现代中药; the supplement adds A61K35/36 + terms.
    assert tag_industries(["A61K36/00"], "一种治疗失眠的中药组合物") == ["4.1"]
    # G06F16/35 falls under 1.1's G06F* rule, gated by network/telecom terms.
    assert tag_industries(["G06F16/35"], "面向移动通信网络投诉工单的文本分类方法") == ["1.1"]


def test_a_gated_rule_does_not_fire_without_its_terms() -> None:
    assert tag_industries(["H01L31/18"], "一种光电探测器的制备方法") == []
    assert tag_industries(["H01M10/0525"], "一种储能锂离子电池") == []
    assert tag_industries(["A61K36/00"], "一种宠物驱虫喷剂") == []
    assert tag_industries(["G06F16/35"], "一种古籍文本聚类方法") == []
    # An IPC-only rule needs no term (4.5: C07B*).
    assert tag_industries(["C07B41/00"], "一种手性化合物的拆分方法") == ["4.5"]


def test_keyword_cells_become_terms_not_phrases() -> None:
    terms = cell_terms("太阳能吸热涂层的镀膜设备、大型镀膜机等泵及真空设备制造")
    assert {"太阳能", "吸热", "涂层", "镀膜", "泵", "真空"} <= set(terms)
    assert not {"制造", "设备", "大型"} & set(terms)  # generic words are dropped
    assert "等离子" in cell_terms("等离子喷涂与热喷镀粉及丝材")  # 等 of 等离子 is kept
    # A clause "除…以外" names what the rule is NOT about.
    assert "海洋工程" not in cell_terms("除海洋工程设备、新材料等研发以外的其他工程技术研发")
    # Latin terms match whole words only: IC is not in SiC.
    assert not any(h.term == "ic" for h in explain(["H01L"], "一种SiC基欧姆接触制备方法"))


def test_vetoes_and_exclusions() -> None:
    assert tag_industries(["H01M10/613"], "电池热管理") == ["5.2"]
    assert tag_industries(["H01M10/613"], "电动自行车电池热管理") == []
    # G06F16/182 is carved out of 1.1's G06F* (and is itself a 1.4 rule).
    assert "1.1" not in tag_industries(["G06F16/182"], "移动通信网络的分布式文件系统")


def test_every_code_form_is_understood() -> None:
    text = "太阳能电池制备"
    for code in ("H01L31/18", "H01L 31/18", "h01l 31/18", "H01L 031/180000", "H01L0031180000",
                 "H01L31/18(2006.01)", "Ｈ０１Ｌ３１／１８"):  # fmt: skip
        assert normalize_ipc(code) == "H01L31/18", code
        assert tag_industries([code], text) == ["6.3"], code
    assert normalize_ipc("H01M10") == "H01M10/00" == normalize_ipc("H01M 10/000")
    assert tag_industries(["H01L31"], text) == ["6.3"]  # a main group meets H01L31*
    # An exact pattern is not met by its main group: 5.2 lists H01M10/0525 exactly.
    assert tag_industries(["H01M10"], "电动汽车锂离子电池") == []


def test_what_a_subclass_only_code_can_be_tagged_with() -> None:
    # A term specific to one industry places H01L inside H01L31* (6.3) ...
    assert tag_industries(["H01L"], "一种光伏组件的层压方法") == ["6.3"]
    # ... a term several industries use does not ("电池" is in 1.x, 3.x).
    assert tag_industries(["H01L"], "一种电池片的分选装置") == []
    # An IPC-only rule about part of a subclass never fires on the bare subclass,
    # while one covering the whole subclass does (3.6: B82Y*, 4.5: C07B*).
    assert tag_industries(["B64C"], "一种无人机") == []
    assert tag_industries(["B64C39/02"], "一种无人机") == ["2.2"]
    assert "3.6" in tag_industries(["B82Y"], "一种纳米片的制备方法")
    hit = explain(["H01L"], "一种光伏组件的层压方法")[0]
    assert (hit.basis, hit.term) == ("subclass+specific", "光伏")


# Branches no real record in ../shared/data can honestly demonstrate: no record with a
# full IPC code in them, and no granted lxingy3 title the subclass rule can place there.
NO_DEMO_RECORD = {"3.7", "4.4", "6.1", "6.4", "8.3"}


def test_every_industry_filter_finds_pooled_demo_patents(catalog: CatalogHandle) -> None:
    asyncio.run(load_demo(catalog.database_url))
    codes = sorted({b.industry_no for b in branches()}, key=int) + [b.branch_no for b in branches()]
    empty = []
    with catalog.client() as c:
        for code in codes:
            r = c.get("/v1/patents", params={"industry": code, "pool_status": "pooled"})
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            if not items:
                empty.append(code)
            for item in items:
                assert any(t == code or t.startswith(code + ".") for t in item["industries"])
    assert set(empty) == NO_DEMO_RECORD
    assert len(codes) == 9 + 40

    # Re-tagging: a patent tagged by an older rule set is brought in line, once.
    changed, again, tags, feed_entries, number = asyncio.run(
        _stale_then_retag(catalog.database_url)
    )
    assert (changed, again, feed_entries) == (1, 0, 1)
    with catalog.client() as c:
        assert c.get(f"/v1/patents/{number}").json()["industries"] == tags != []


async def _stale_then_retag(url: str) -> tuple[int, int, list[str], int, str]:
    db = Database(url)
    try:
        async with db.sessionmaker() as s, s.begin():
            pid = await s.scalar(
                select(Patent.id).where(Patent.industry_text != "").order_by(Patent.id)
            )
            before = await s.get(Patent, pid)
            assert before is not None
            version = before.version
            # As if tagged by an older rule set.
            await s.execute(
                update(Patent).where(Patent.id == pid).values(industries=[], industry_text="")
            )
        feed_before = await _feed_count(db)
        async with db.sessionmaker() as s, s.begin():
            first = await retag_patents(s, batch=50)
        async with db.sessionmaker() as s, s.begin():
            second = await retag_patents(s)
            after = await s.get(Patent, pid)
            assert after is not None
            assert after.version == version + 1
            tags, number = list(after.industries), after.application_number
        return first.changed, second.changed, tags, await _feed_count(db) - feed_before, number
    finally:
        await db.dispose()


async def _feed_count(db: Database) -> int:
    async with db.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(FeedEntry)) or 0)

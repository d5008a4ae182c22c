"""Plan files as transcribed, party rules and the progress arithmetic (no database)."""

from __future__ import annotations

from datetime import date

import pytest

from services.indicators.domain.common import normalise_appno
from services.indicators.domain.plans import (
    all_plans,
    cagr,
    get_plan,
    indicator_progress,
    rising_check,
    status_for,
)
from services.indicators.domain.rules import (
    RULES,
    Party,
    academic_to_sme,
    deal_qualifies,
    lead_supplier,
)

SEEDS = {
    "city-001": "001_d98568f5e25d37a8.txt",
    "binhai-002": "002_1e68084a726fb80c.txt",
    "dongli-003": "003_11a6b395af67b03b.txt",
    "dongli-newmat-000": "000_c9faa0b3a429d169.txt",
    "dongli-meddev-004": "004_07035ab29f5ed8a1.txt",
}


def party(kind: str, district: str | None = "nankai", sme: bool = False, oid: int = 1) -> Party:
    return Party(oid, f"org{oid}", kind, district, district is not None, sme)


def test_every_plan_loads_with_its_source() -> None:
    plans = all_plans()
    assert {p: plans[p].source_file for p in SEEDS} == SEEDS
    for plan in plans.values():
        for ind in plan.indicators:
            assert ind.name_zh and ind.name_en and ind.unit and ind.quote and ind.section
            if ind.source == "computed":
                assert ind.rule in RULES


def test_city_plan_targets() -> None:
    city = get_plan("city-001")
    assert city.indicator("C03").targets == {2023: 3000}
    assert city.indicator("C03").rule == "pooled_ever"
    c04 = city.indicator("C04")
    assert c04.targets == {2023: 1000} and c04.rule == "sme_patent_deals" and c04.rising
    assert "天津高校、科研院所、国有企业向市内中小企业" in c04.quote
    assert city.indicator("C01").targets[2022] == 20 and city.indicator("C01").kind == "growth_rate"
    assert city.indicator("C12").targets == {2023: 2}  # 证券化产品2单
    assert city.indicator("C13").targets == {2023: 3}
    assert city.indicator("C14").targets == {2023: 4}
    assert city.indicator("C15").targets == {2025: 16}


def test_binhai_annex_has_all_22_rows_as_in_the_source() -> None:
    bh = get_plan("binhai-002")
    rows = sorted({int(i.row) for i in bh.indicators if i.row})
    assert rows == list(range(1, 23))
    assert bh.indicator("BH11").targets == {2020: 65000, 2021: 75000, 2022: 85000, 2023: None}
    assert bh.indicator("BH11").target_notes[2023] == "完成"
    assert bh.indicator("BH04").name_zh == "成功转化高校院所专利技术的中小企业数量"
    assert bh.indicator("BH04").targets == {2020: 0, 2021: 50, 2022: 100, 2023: None}
    assert bh.indicator("BH08").targets[2022] == 1200 and bh.indicator("BH08").national == "1000"
    assert bh.indicator("BH10").target_notes[2022] == "5家以上"
    assert bh.indicator("BH13").name_zh == "每万人发明专利拥有量"
    # 2023 "验收/完成": the 2022 value is the final target
    assert bh.indicator("BH11").target_for(2023, 2023) == 85000
    assert bh.indicator("BH22").targets == {2020: 0, 2021: 180, 2022: 300, 2023: None}


def test_dongli_tables() -> None:
    dl = get_plan("dongli-003")
    assert dl.indicator("DL07").targets == {2022: 1000}
    assert dl.indicator("DL12").rule == "mixed_pledges"
    nm, md = get_plan("dongli-newmat-000"), get_plan("dongli-meddev-004")
    assert nm.budget_cny == 8_530_000 and md.budget_cny == 11_470_000
    assert nm.deadline == date(2022, 6, 30) == md.deadline
    names_nm = [i.name_zh for i in nm.indicators]
    names_md = [i.name_zh for i in md.indicators]
    assert "瞪羚企业" in names_nm and "瞪羚企业" not in names_md
    assert "医疗器械证（含一、二、三类）" in names_md
    assert next(i for i in md.indicators if i.name_zh == "雏鹰企业").targets == {2022: 15}
    assert next(i for i in nm.indicators if i.name_zh == "雏鹰企业").targets == {2022: 20}


def test_party_rules() -> None:
    uni, soe, inst = party("university"), party("soe"), party("institute")
    ent = party("enterprise")
    sme = party("sme", "binhai", sme=True, oid=9)
    assert deal_qualifies([uni], sme) and deal_qualifies([soe], sme) and deal_qualifies([inst], sme)
    assert not deal_qualifies([ent], sme)  # supplier must be a university, institute or SOE
    assert not deal_qualifies([party("university", None)], sme)  # ... located in Tianjin
    assert not deal_qualifies([uni], party("sme", None, sme=True))  # SME outside Tianjin
    assert not deal_qualifies([uni], party("enterprise", "binhai"))  # not an SME
    assert deal_qualifies([ent, uni], sme)  # co-owned: one qualifying co-owner is enough
    assert lead_supplier([ent, uni]).kind == "university"
    assert academic_to_sme([uni], sme) and not academic_to_sme([soe], sme)


def test_arithmetic() -> None:
    assert cagr(144, 100, 2) == pytest.approx(20.0)
    assert status_for(10, 10, None, closed=True) == "met"
    assert status_for(9, 10, 12, closed=True) == "behind"
    assert status_for(5, 10, 10, closed=False) == "on_track"
    assert status_for(5, 10, 9.5, closed=False) == "at_risk"
    assert status_for(5, 10, 8, closed=False) == "behind"
    assert rising_check({2021: 1, 2022: 2, 2023: 2}, [2021, 2022, 2023])["not_rising"] == [2023]
    assert rising_check({2021: 1, 2022: 2, 2023: 3}, [2021, 2022, 2023])["rising"] is True


def test_progress_of_a_cumulative_target_mid_period() -> None:
    city = get_plan("city-001")
    ind = city.indicator("C04")
    # 2021: 200, 2022 up to 30 June: 150 -> 350 after 546 days of 1095
    row = indicator_progress(city, ind, {2021: 200, 2022: 150}, 2022, date(2022, 6, 30), "city")
    assert row["actual"] == 350 and row["final_target"] == 1000
    assert row["projection_deadline"] == pytest.approx(350 / 546 * 1095, abs=1)
    assert row["status"] == "behind"  # ~702 of 1000 projected
    fast = indicator_progress(city, ind, {2021: 400, 2022: 200}, 2022, date(2022, 6, 30), "city")
    assert fast["status"] == "on_track"  # 600 now, ~1203 projected
    close = indicator_progress(city, ind, {2021: 300, 2022: 160}, 2022, date(2022, 6, 30), "city")
    assert close["status"] == "at_risk"  # 460 now, ~922 projected: within 90 %
    assert [s["cumulative"] for s in row["series"]] == [200, 350]


def test_growth_indicator_uses_average_growth_from_the_base_year() -> None:
    city = get_plan("city-001")
    row = indicator_progress(
        city, city.indicator("C01"), {2020: 100, 2021: 130, 2022: 144}, 2022, date(2023, 1, 5),
        "city",
    )  # fmt: skip
    assert row["actual"] == 20 and row["status"] == "met"
    assert [s["growth"] for s in row["series"]] == [None, 30, pytest.approx(10.77, abs=0.01)]


def test_application_numbers() -> None:
    assert normalise_appno("CN 2021 1012 3456.7") in (None, "202110123456.7")
    assert normalise_appno("not a number") is None

"""Pure domain rules: numbers, codes, terms, industries, eligibility."""

from __future__ import annotations

from datetime import date

import pytest

from services.catalog.domain.industry import tag_industries
from services.catalog.domain.lifecycle import expiry_date, pool_ineligibility
from services.catalog.domain.uscc import make_uscc, validate_uscc
from shared.appno import (
    InvalidNumber,
    check_char,
    normalize_application_number,
    normalize_publication_number,
    parse_application_number,
)
from shared.ipc import normalize_ipc

# Real numbers with their published check characters (incoPat sample).
REAL = ["202223220665.2", "202122975192.6", "202121635235.X", "202211359874.7"]


@pytest.mark.parametrize("num", REAL)
def test_real_numbers_verify(num: str) -> None:
    assert normalize_application_number(num) == num
    assert normalize_application_number("CN" + num.replace(".", "")) == num
    assert normalize_application_number(f"ZL {num}") == num


def test_old_eight_digit_form() -> None:
    digits = "02123456"
    num = f"{digits}.{check_char(digits)}"
    parsed = parse_application_number(num)
    assert parsed.patent_type == "invention" and parsed.filing_year == 2002
    assert (
        parse_application_number("98" + "2" + "00001." + check_char("98200001")).filing_year == 1998
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("202223220665.3", "check digit is 3"),
        ("2022232206652X", "not a CN application"),
        ("202243220665.1", "type digit '4'"),
        ("abc", "not a CN application"),
    ],
)
def test_bad_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        parse_application_number(raw)


def test_types_from_number() -> None:
    types = {
        d: parse_application_number(f"2020{d}0000001.{check_char(f'2020{d}0000001')}").patent_type
        for d in "12389"
    }
    assert types == {
        "1": "invention",
        "2": "utility_model",
        "3": "design",
        "8": "pct_invention",
        "9": "pct_utility_model",
    }


def test_publication_numbers() -> None:
    assert normalize_publication_number("CN 108982325 A") == "CN108982325A"
    assert normalize_publication_number("218751475u") == "CN218751475U"
    with pytest.raises(InvalidNumber):
        normalize_publication_number("US123")


def test_uscc_check_character() -> None:
    code = make_uscc("91120116MA05XXXXX".replace("X", "1"))
    assert validate_uscc(code.lower()) == code
    with pytest.raises(ValueError, match="check character"):
        validate_uscc(code[:-1] + ("0" if code[-1] != "0" else "1"))
    with pytest.raises(ValueError, match="outside GB 32100"):
        validate_uscc("91120116MA05I1111" + "1")
    assert validate_uscc("91350100M000100Y43") == "91350100M000100Y43"  # published example


def test_ipc_normalisation() -> None:
    assert normalize_ipc("h01m 10/0525") == "H01M10/0525"
    assert normalize_ipc("G06F 17/30(2006.01)") == "G06F17/30"
    assert normalize_ipc("A01M") == "A01M"
    assert normalize_ipc("H01M10") == "H01M10/00"  # a main group is its /00 heading
    for bad in ("H1M10/05", "Z01M", "H01M10/5", "H01M10/"):
        with pytest.raises(ValueError):
            normalize_ipc(bad)


def test_expiry_terms() -> None:
    assert expiry_date("invention", date(2010, 5, 4)) == date(2030, 5, 4)
    assert expiry_date("utility_model", date(2016, 2, 29)) == date(2026, 2, 28)
    assert expiry_date("design", date(2021, 5, 31)) == date(2031, 5, 31)
    assert expiry_date("design", date(2021, 6, 1)) == date(2036, 6, 1)
    assert expiry_date("pct_invention", date(2018, 1, 1)) == date(2038, 1, 1)


def test_industry_tags_follow_the_concordance() -> None:
    # 5.2 (new-energy vehicles): H01M10/0525 is listed, but the rule needs automotive text.
    assert tag_industries(["H01M10/0525"], "一种汽车动力锂离子电池") == ["5.2"]
    assert tag_industries(["H01M10/0525"], "一种储能锂离子电池") == []
    # IPC-only rule of 4.5 (biomedicine): C12N9*.
    assert "4.5" in tag_industries(["C12N9/00"], "一种酶")
    # Exclusion: H01M10/613 counts for 5.2 unless the text is about non-motor vehicles.
    assert tag_industries(["H01M10/613"], "电池热管理") == ["5.2"]
    assert tag_industries(["H01M10/613"], "非机动车电池热管理") == []


def test_pool_eligibility_rules() -> None:
    ok = dict(
        legal_status="granted",
        expiry=date(2040, 1, 1),
        owner_kinds=["university"],
        converted_by=[],
        today=date(2026, 1, 1),
    )
    assert pool_ineligibility(**ok) == []
    assert "legal status" in pool_ineligibility(**{**ok, "legal_status": "pending"})[0]
    assert "term ended" in pool_ineligibility(**{**ok, "expiry": date(2025, 1, 1)})[0]
    assert "not owned by" in pool_ineligibility(**{**ok, "owner_kinds": ["sme"]})[0]
    assert pool_ineligibility(**{**ok, "owner_kinds": ["sme", "soe"]}) == []
    assert "already converted" in pool_ineligibility(**{**ok, "converted_by": ["D-1"]})[0]

"""Chinese patent application and publication numbers.

Application numbers since 2003 have 12 digits + a check character (YYYY T NNNNNNN . C);
before that 8 digits + check (YY T NNNNN . C). T is the type digit: 1 invention,
2 utility model, 3 design, 8 PCT invention entering China, 9 PCT utility model.
The check character is CNIPA's mod-11 rule: weights 2..9 cycling over the digits,
sum mod 11, 10 written as X. Normal form: `202110123456.7`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from operator import mul

from shared import bizdate

# The 12+1 form was introduced on 2003-10-01; 8+1 numbers cover earlier filings.
FIRST_12_DIGIT_YEAR = 2003


class PatentType(StrEnum):
    INVENTION = "invention"
    UTILITY_MODEL = "utility_model"
    DESIGN = "design"
    PCT_INVENTION = "pct_invention"
    PCT_UTILITY_MODEL = "pct_utility_model"


TYPE_BY_DIGIT = {
    "1": PatentType.INVENTION,
    "2": PatentType.UTILITY_MODEL,
    "3": PatentType.DESIGN,
    "8": PatentType.PCT_INVENTION,
    "9": PatentType.PCT_UTILITY_MODEL,
}

_APPNO = re.compile(r"^(?:CN|ZL)?(\d{8}|\d{12})\.?([0-9X])$")
_PUBNO = re.compile(r"^(?:CN)?(\d{6,9})([ABCUSY]\d?)$")


class InvalidNumber(ValueError):
    pass


_WEIGHTS = tuple(2 + i % 8 for i in range(12))


def check_char(digits: str) -> str:
    if digits.isascii() and digits.isdigit() and len(digits) <= len(_WEIGHTS):
        # Bulk uploads check every number: the byte values less "0" are the digits.
        total = sum(map(mul, digits.encode(), _WEIGHTS)) - 48 * sum(_WEIGHTS[: len(digits)])
    else:  # other Unicode decimal digits (\d matches them)
        total = sum(int(d) * (2 + i % 8) for i, d in enumerate(digits))
    r = total % 11
    return "X" if r == 10 else str(r)


@dataclass(frozen=True)
class ApplicationNumber:
    digits: str
    check: str

    @property
    def normal(self) -> str:
        return f"{self.digits}.{self.check}"

    @property
    def patent_type(self) -> PatentType:
        digit = self.digits[4] if len(self.digits) == 12 else self.digits[2]
        return TYPE_BY_DIGIT[digit]

    @property
    def filing_year(self) -> int:
        if len(self.digits) == 12:
            return int(self.digits[:4])
        yy = int(self.digits[:2])
        return 1900 + yy if yy >= 85 else 2000 + yy


def _clean(raw: str) -> str:
    s = unicodedata.normalize("NFKC", raw).upper()
    return re.sub(r"[\s\-]", "", s)


def parse_application_number(raw: str) -> ApplicationNumber:
    """Parse and verify; raise InvalidNumber with a reason a person can act on."""
    s = _clean(raw)
    m = _APPNO.match(s)
    if not m:
        raise InvalidNumber(
            "not a CN application number: expected 12 digits + check (e.g. 202110123456.7)"
            " or 8 digits + check (e.g. 02123456.X)"
        )
    digits, given = m.groups()
    type_digit = digits[4] if len(digits) == 12 else digits[2]
    if type_digit not in TYPE_BY_DIGIT:
        raise InvalidNumber(f"unknown patent type digit '{type_digit}' (expected 1, 2, 3, 8 or 9)")
    if len(digits) == 12:
        year = int(digits[:4])
        if year < FIRST_12_DIGIT_YEAR:
            raise InvalidNumber(
                f"filing year {year} is before 2003; the 12-digit form is used from 2003"
                " (older numbers have 8 digits + check, e.g. 02123456.X)"
            )
        if year > bizdate.today().year:
            raise InvalidNumber(f"filing year {year} is in the future")
    expected = check_char(digits)
    if given != expected:
        raise InvalidNumber(f"check digit is {given} but the number requires {expected}")
    return ApplicationNumber(digits, given)


def normalize_application_number(raw: str) -> str:
    return parse_application_number(raw).normal


def normalize_publication_number(raw: str) -> str:
    """`CN 108982325 A` / `108982325A` -> `CN108982325A`."""
    s = _clean(raw)
    m = _PUBNO.match(s)
    if not m:
        raise InvalidNumber("not a CN publication number (e.g. CN108982325A, CN218751475U)")
    return f"CN{m.group(1)}{m.group(2)}"


def make_application_number(year: int, type_digit: str, serial: int) -> str:
    """Build a valid 12+1 number (used to give demo records an identity)."""
    digits = f"{year:04d}{type_digit}{serial:07d}"
    return f"{digits}.{check_char(digits)}"

"""Unified social credit code (统一社会信用代码), GB 32100-2015.

18 characters from a 31-character alphabet (no I, O, S, V, Z). Character 18 is a
mod-31 check over the first 17 with fixed weights.
"""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{18}$")


def check_char(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate_uscc(raw: str) -> str:
    code = raw.strip().upper()
    if len(code) != 18:
        raise ValueError(f"must be 18 characters, got {len(code)}")
    if not _SHAPE.match(code):
        raise ValueError(
            "contains characters outside GB 32100 (digits and letters except I O S V Z)"
        )
    expected = check_char(code[:17])
    if code[17] != expected:
        raise ValueError(f"check character is {code[17]} but GB 32100 requires {expected}")
    return code


def make_uscc(first17: str) -> str:
    return first17 + check_char(first17)

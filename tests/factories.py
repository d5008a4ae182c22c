"""Valid test records (application numbers with correct check digits)."""

from __future__ import annotations

import itertools
from typing import Any

from shared.appno import make_application_number

_serial = itertools.count(1)


def appno(year: int = 2019, type_digit: str = "1") -> str:
    return make_application_number(year, type_digit, next(_serial) + 1_000_000)


def patent(owner: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "application_number": appno(),
        "title": "一种锂离子电池正极材料的制备方法",
        "abstract": "本发明公开了一种锂离子电池正极材料，提高了电池的循环寿命和安全性。",
        "ipc_codes": ["H01M 4/131", "H01M10/0525"],
        "patentees": [owner],
        "inventors": ["张三"],
        "application_date": "2019-03-01",
        "grant_date": "2021-05-01",
        "legal_status": "granted",
    }
    body.update(extra)
    return body


def offer(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"modes": ["assignment", "non_exclusive_licence"], "price_cny": "50000"}
    body.update(extra)
    return body

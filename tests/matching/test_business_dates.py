"""A need's validity is judged by Tianjin's date, not the host's (which may be UTC)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.matching.domain.needs import is_open
from services.matching.models import Need
from services.matching.schemas import NeedCreate
from shared import bizdate

TIANJIN_TODAY = date(2031, 1, 1)  # far from the host's date, so the two cannot agree


@pytest.fixture
def tianjin_today(monkeypatch: pytest.MonkeyPatch) -> date:
    monkeypatch.setattr(bizdate, "today", lambda: TIANJIN_TODAY)
    return TIANJIN_TODAY


def need_body(valid_until: date) -> dict[str, object]:
    return {"title": "锂电池正极材料", "description": "提高正极材料的循环寿命", "industry": "5",
            "valid_until": valid_until}  # fmt: skip


def test_a_need_valid_until_yesterday_in_tianjin_is_refused(tianjin_today: date) -> None:
    with pytest.raises(ValidationError, match="valid_until"):
        NeedCreate.model_validate(need_body(date(2030, 12, 31)))
    assert NeedCreate.model_validate(need_body(tianjin_today)).valid_until == tianjin_today


def test_a_need_is_open_through_its_last_tianjin_day(tianjin_today: date) -> None:
    assert is_open(Need(status="open", valid_until=tianjin_today))
    assert not is_open(Need(status="open", valid_until=date(2030, 12, 31)))

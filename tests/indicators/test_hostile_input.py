"""Issue 9, defect 8 on indicators: no input gives a 500 (NUL bytes, integers past int64,
years past int32)."""

from __future__ import annotations

from tests.hostile import probe_parameters
from tests.indicators.conftest import IndicatorsHandle


def test_every_get_parameter_refuses_nul_and_huge_integers_with_422(
    indicators: IndicatorsHandle,
) -> None:
    assert probe_parameters(indicators.url, indicators.catalog.admin_key) == []

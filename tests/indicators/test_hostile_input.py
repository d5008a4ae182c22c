"""Issue 9, defect 8 on indicators: no input gives a 500 (NUL bytes, integers past int64,
years past int32)."""

from __future__ import annotations

from tests.hostile import probe_parameters
from tests.indicators.conftest import IndicatorsHandle


def test_every_get_parameter_refuses_nul_and_huge_integers_with_422(
    indicators: IndicatorsHandle,
) -> None:
    assert probe_parameters(indicators.url, indicators.catalog.admin_key) == []


def test_integers_past_int64_and_nul_in_bodies_are_422(
    indicators: IndicatorsHandle, bureau: str
) -> None:
    from tests.indicators.conftest import deal_body

    body = deal_body(patents=["202110123456.7"], suppliers=[1], recipient=2**70)
    with indicators.client(bureau) as c:
        r = c.post("/v1/deals", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"field": "recipient_org_id",
             "reason": "must be an integer within the signed 64-bit range"}
        ]  # fmt: skip
        body = deal_body(patents=["202110123456.7"], suppliers=[1], recipient=1,
                         note="备注\x00")  # fmt: skip
        r = c.post("/v1/deals", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note", r.text

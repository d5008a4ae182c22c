from __future__ import annotations

from tests.indicators.conftest import IndicatorsHandle


def test_smoke(indicators: IndicatorsHandle, bureau: str) -> None:
    uni, _ = indicators.org("天津冒烟大学")
    sme, _ = indicators.org("冒烟科技有限公司", "sme", None, district="binhai", is_sme=True)
    p = indicators.seed_patent([uni])
    indicators.seed_listing(p)
    indicators.wait_synced()
    d = indicators.deal(bureau, patents=[p["application_number"]], suppliers=[uni], recipient=sme)
    assert d["qualifies"] is True
    prog = indicators.progress("city-001", 2022)
    assert prog["C04"]["actual"] == 1
    with indicators.client() as c:
        print(c.get("/v1/plans/city-001/progress", params={"year": 2022}).json()["indicators"][4])

"""Issue 9, defect 3: text that a spreadsheet would run as a formula is neutralised in
every export (ledger and progress, CSV and XLSX): a leading single quote, and in XLSX the
string data type, never `<f>`. Numbers stay numbers."""

from __future__ import annotations

import csv
import io
import zipfile

from openpyxl import load_workbook

from shared.exports import FORMULA_STARTS, safe_cell
from tests.indicators.conftest import IndicatorsHandle

HOSTILE_NAME = '=HYPERLINK("http://x","点我")公司'
HOSTILE_EVIDENCE = "+1+cmd|' /C calc'!A0"
HOSTILE_REASON = "@SUM(1+1)*cmd|' /C calc'!A0"


def test_the_helper_neutralises_every_formula_start_and_only_text() -> None:
    for start in FORMULA_STARTS:
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell("一种电池") == "一种电池"
    assert safe_cell(-5) == -5 and safe_cell(-2.5) == -2.5
    assert safe_cell(None) is None


def test_ledger_and_progress_exports_carry_no_live_formula(
    indicators: IndicatorsHandle, bureau: str
) -> None:
    h = indicators
    uni, uni_key = h.org("天津注入测试大学", district="nankai")
    sme, _ = h.org(HOSTILE_NAME, "sme", "sme", district="hedong")
    p = h.patent(uni_key, "天津注入测试大学")
    h.wait_synced()
    deal = h.deal(bureau, patents=[p], suppliers=[uni], recipient=sme, kind="assignment",
                  licence_type=None, evidence_number=HOSTILE_EVIDENCE)  # fmt: skip
    with h.client(bureau) as c:
        r = c.post(f"/v1/deals/{deal['id']}/cancel", json={"reason": HOSTILE_REASON})
        assert r.status_code == 200, r.text
        x = c.get("/v1/ledger/export", params={"format": "xlsx"})
        y = c.get("/v1/ledger/export", params={"format": "csv"})
        px = c.get("/v1/plans/city-001/progress", params={"year": 2022, "format": "xlsx"})
        pc = c.get("/v1/plans/city-001/progress", params={"year": 2022, "format": "csv"})
    for resp in (x, y, px, pc):
        assert resp.status_code == 200, resp.text

    # XLSX: no formula element anywhere in any sheet, and the hostile text is quoted.
    for data in (x.content, px.content):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/"):
                    assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name), name
    rows = list(load_workbook(io.BytesIO(x.content))["转化台账"].iter_rows(values_only=True))
    row = dict(zip(rows[0], next(r for r in rows if r[0] == deal["id"]), strict=True))
    assert row["受让方/被许可方"] == "'" + HOSTILE_NAME
    assert row["登记/备案/公告号"] == "'" + HOSTILE_EVIDENCE
    assert row["注销原因"] == "'" + HOSTILE_REASON
    assert row["合同金额(元)"] == 50000  # numbers stay numbers
    wb = load_workbook(io.BytesIO(x.content))
    for line in wb["转化台账"].iter_rows():
        for cell in line:
            assert cell.data_type != "f", cell.coordinate

    # CSV: every cell that would start a formula is quoted.
    parsed = list(csv.reader(io.StringIO(y.content.decode("utf-8-sig"))))
    line = dict(zip(parsed[0], next(r for r in parsed if r[0] == str(deal["id"])), strict=True))
    assert line["受让方/被许可方"] == "'" + HOSTILE_NAME
    assert line["登记/备案/公告号"] == "'" + HOSTILE_EVIDENCE
    assert line["注销原因"] == "'" + HOSTILE_REASON
    for r in parsed + list(csv.reader(io.StringIO(pc.content.decode("utf-8-sig")))):
        for cell in r:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell

"""CSV and XLSX exports with Chinese headers: plan progress and the ledger.

Excel files are written with openpyxl's write-only mode in worker threads; the ledger is
read from the database in id-ordered batches, so memory stays flat at any size.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.indicators.models import Deal, DealPatent, DealSupplier
from shared.exports import safe_row, xlsx_row
from shared.regions import TIANJIN_DISTRICTS

KIND_ZH = {"assignment": "转让", "licence": "许可", "equity": "作价入股"}
LICENCE_ZH = {"exclusive": "独占许可", "sole": "排他许可", "non_exclusive": "普通许可",
              "open": "开放许可"}  # fmt: skip
STATUS_ZH = {"registered": "已登记", "effective": "已生效", "cancelled": "已注销"}
ORG_KIND_ZH = {"university": "高校", "institute": "科研院所", "soe": "国有企业",
               "sme": "中小企业", "enterprise": "其他企业", "other": "其他"}  # fmt: skip
EVIDENCE_ZH = {"transfer_registration": "专利权转让登记", "licence_filing": "专利实施许可合同备案",
               "open_licence_notice": "开放许可实施公告"}  # fmt: skip
PROGRESS_STATUS_ZH = {"met": "已完成", "on_track": "按计划推进", "at_risk": "存在风险",
                      "behind": "滞后", "no_data": "无数据", None: "无目标"}  # fmt: skip
IND_KIND_ZH = {"cumulative_count": "累计数", "annual_value": "年度值", "growth_rate": "年均增幅",
               "share": "占比"}  # fmt: skip
SOURCE_ZH = {"computed": "台账计算", "reported": "填报"}

PROGRESS_HEADERS = [
    "计划", "范围", "年度", "指标代码", "序号", "一级指标", "二级指标", "三级指标", "指标名称",
    "英文名称", "单位", "指标类型", "数据来源", "计数规则", "实际值", "目标值", "目标说明",
    "期末目标", "完成进度", "状态", "预计年末值", "预计期末值", "逐年递增", "出处",
]  # fmt: skip
SERIES_HEADERS = ["指标代码", "指标名称", "年度", "当年值", "累计值", "基数", "同比增幅(%)",
                  "年均增幅(%)", "目标值"]  # fmt: skip
LEDGER_HEADERS = [
    "交易编号", "交易类型", "许可类型", "状态", "专利申请号", "专利件数", "计入1000件的件数",
    "供给方编号", "供给方", "供给方类型", "供给方所在区", "受让方/被许可方编号", "受让方/被许可方",
    "受让方类型", "受让方所在区", "受让方为中小企业", "合同签订日期", "生效日期", "凭证类型",
    "登记/备案/公告号", "凭证日期", "合同金额(元)", "实际到账金额(元)", "0元转让", "先使用后缴费",
    "由交易转化而来", "注销原因",
]  # fmt: skip


MONEY_FORMAT = "0.00"


def _amount(v: Any) -> Decimal | None:
    """An amount as an exact Decimal cell (CSV writes its text, XLSX a 0.00 number)."""
    return None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))


def xlsx_cells(ws: Any, row: list[Any]) -> list[Any]:
    """Like shared.exports.xlsx_row, with amounts as numbers shown with two decimals."""
    cells = xlsx_row(ws, row)
    for i, v in enumerate(row):
        if isinstance(v, Decimal):
            c = WriteOnlyCell(ws, value=v)
            c.number_format = MONEY_FORMAT
            cells[i] = c
    return cells


def district_zh(d: str | None) -> str:
    return TIANJIN_DISTRICTS.get(d or "", d or "市外")


def progress_rows(progress: dict[str, Any]) -> tuple[list[list[Any]], list[list[Any]]]:
    plan = progress["plan"]
    scope = "全市" if progress["scope"] == "city" else district_zh(progress["scope"])
    main, series = [], []
    for r in progress["indicators"]:
        levels = (r.get("levels") or []) + ["", "", ""]
        rising = r.get("rising_every_year")
        money = _amount if r.get("money") else (lambda v: v)
        base = _amount if r.get("money") or r.get("base_unit") in ("元", "万元") else money
        main.append([
            plan["name_zh"], scope, r["year"], r["code"], r["row"] or "", levels[0], levels[1],
            levels[2], r["name_zh"], r["name_en"], r["unit"], IND_KIND_ZH[r["kind"]],
            SOURCE_ZH[r["source"]], r["rule"] or "", money(r["actual"]), r["target"],
            r["target_note"] or "", r["final_target"], r["progress"],
            PROGRESS_STATUS_ZH.get(r["status"], r["status"]), money(r["projection_year_end"]),
            money(r["projection_deadline"]),
            "" if rising is None else ("是" if rising["rising"] else "否"), r["quote"],
        ])  # fmt: skip
        for s in r["series"]:
            series.append([
                r["code"], r["name_zh"], s["year"], money(s.get("value")),
                money(s.get("cumulative")), base(s.get("base_value")), s.get("growth"), s.get("average_growth"), s.get("target"),
            ])  # fmt: skip
    return main, series


def progress_csv(progress: dict[str, Any]) -> bytes:
    main, _ = progress_rows(progress)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(PROGRESS_HEADERS)
    w.writerows(safe_row(r) for r in main)
    return buf.getvalue().encode("utf-8-sig")


def _header(ws: Any, headers: list[str]) -> None:
    bold = Font(bold=True)
    cells = []
    for h in headers:
        c = WriteOnlyCell(ws, value=h)
        c.font = bold
        cells.append(c)
    ws.append(cells)


def progress_xlsx(progress: dict[str, Any]) -> bytes:
    main, series = progress_rows(progress)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("计划进度")
    ws.freeze_panes = "A2"
    _header(ws, PROGRESS_HEADERS)
    for row in main:
        ws.append(xlsx_cells(ws, row))
    ws2 = wb.create_sheet("逐年数据")
    _header(ws2, SERIES_HEADERS)
    for row in series:
        ws2.append(xlsx_cells(ws2, row))
    ws3 = wb.create_sheet("说明")
    plan = progress["plan"]
    for k, v in [
        ("计划", plan["name_zh"]), ("Plan", plan["name_en"]), ("出处文件", plan["source_file"]),
        ("起始日期", plan["start"]), ("截止日期", plan["deadline"]), ("统计截至", progress["as_of"]),
        ("说明", plan["notes"]),
    ]:  # fmt: skip
        ws3.append(xlsx_row(ws3, [k, v]))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _ledger_where(year: int | None, district: str | None, status: str | None) -> Any:
    conds = []
    if year:
        conds.append(Deal.year == year)
    if district:
        conds.append(Deal.recipient_district == district)
    if status:
        conds.append(Deal.status == status)
    return and_(*conds) if conds else None


async def ledger_batches(
    session: AsyncSession,
    *,
    year: int | None = None,
    district: str | None = None,
    status: str | None = None,
    batch: int = 20_000,
) -> AsyncIterator[list[list[Any]]]:
    """Ledger rows (one per deal) in id order, `batch` deals at a time."""
    where = _ledger_where(year, district, status)
    cols = [
        Deal.id, Deal.kind, Deal.licence_type, Deal.status, Deal.recipient_org_id,
        Deal.recipient_name, Deal.recipient_kind, Deal.recipient_district, Deal.recipient_is_sme,
        Deal.contract_date, Deal.effective_date, Deal.evidence_type, Deal.evidence_number,
        Deal.evidence_date, Deal.contract_amount, Deal.amount_received, Deal.zero_price,
        Deal.use_first_pay_later, Deal.converted_from_deal_id, Deal.cancelled_reason,
    ]  # fmt: skip
    after = 0
    while True:
        stmt = select(*cols).where(Deal.id > after).order_by(Deal.id).limit(batch)
        if where is not None:
            stmt = stmt.where(where)
        deals: list[Any] = list((await session.execute(stmt)).all())
        if not deals:
            return
        lo, hi = deals[0][0], deals[-1][0]
        lines: dict[int, list[tuple[str, bool]]] = {}
        for deal_id, appno, counts in (
            await session.execute(
                select(DealPatent.deal_id, DealPatent.application_number, DealPatent.counts)
                .where(DealPatent.deal_id >= lo, DealPatent.deal_id <= hi)
                .order_by(DealPatent.deal_id, DealPatent.id)
            )
        ).all():
            lines.setdefault(deal_id, []).append((appno, counts))
        sups: dict[int, list[tuple[Any, ...]]] = {}
        for row in (
            await session.execute(
                select(
                    DealSupplier.deal_id, DealSupplier.org_id, DealSupplier.name,
                    DealSupplier.kind, DealSupplier.district,
                )
                .where(DealSupplier.deal_id >= lo, DealSupplier.deal_id <= hi)
                .order_by(DealSupplier.deal_id, DealSupplier.position)
            )
        ).all():  # fmt: skip
            sups.setdefault(row[0], []).append(row)
        rows = []
        for (did, kind, lt, st, rid, rname, rkind, rdist, rsme, cdate, edate, evt, evn, evd,
             amount, received, zero, pay_later, conv, reason) in deals:  # fmt: skip
            ls = lines.get(did, [])
            ss = sups.get(did, [])
            rows.append([
                did, KIND_ZH.get(kind, kind), LICENCE_ZH.get(lt or "", ""), STATUS_ZH.get(st, st),
                "; ".join(a for a, _ in ls), len(ls), sum(1 for _, c in ls if c),
                "; ".join(str(s[1]) for s in ss), "; ".join(s[2] for s in ss),
                "; ".join(ORG_KIND_ZH.get(s[3], s[3]) for s in ss),
                "; ".join(district_zh(s[4]) for s in ss), rid, rname,
                ORG_KIND_ZH.get(rkind, rkind), district_zh(rdist), "是" if rsme else "否", cdate,
                edate, EVIDENCE_ZH.get(evt, evt), evn, evd, _amount(amount), _amount(received),
                "是" if zero else "否", "是" if pay_later else "否", conv or "", reason or "",
            ])  # fmt: skip
        # end the read transaction between batches: a long export never holds SQLite's lock
        await session.commit()
        yield rows
        after = hi


def _cell(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v


async def ledger_csv(session: AsyncSession, **filters: Any) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(LEDGER_HEADERS)
    yield buf.getvalue().encode("utf-8-sig")
    async for rows in ledger_batches(session, **filters):
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerows([safe_row(_cell(v) for v in r) for r in rows])
        yield buf.getvalue().encode("utf-8")


async def ledger_xlsx_file(session: AsyncSession, **filters: Any) -> str:
    """Write the ledger to a temporary .xlsx file and return its path."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("转化台账")
    ws.freeze_panes = "A2"
    _header(ws, LEDGER_HEADERS)

    def append(rows: list[list[Any]]) -> None:
        for r in rows:
            ws.append(xlsx_cells(ws, r))

    async for rows in ledger_batches(session, **filters):
        await asyncio.to_thread(append, rows)
    tmp = tempfile.NamedTemporaryFile(prefix="ledger-", suffix=".xlsx", delete=False)
    tmp.close()
    await asyncio.to_thread(wb.save, tmp.name)
    return tmp.name

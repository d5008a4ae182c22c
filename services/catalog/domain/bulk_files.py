"""Reading bulk-upload files (JSON array, NDJSON, CSV, XLSX) into raw records.

A file that cannot be read as a whole is rejected before anything is written; a
record with bad fields is reported on its own row. Spreadsheet headers may be the
English field names or the usual Chinese column names of CNIPA / incoPat exports.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from typing import IO, Any

from shared.appno import make_application_number
from shared.errors import PayloadTooLarge, ProblemError, Unprocessable, UnsupportedMedia

FORMATS = ("json", "ndjson", "csv", "xlsx")

# Column order of the downloadable template, with the Chinese header shown to users.
TEMPLATE_COLUMNS = [
    ("application_number", "申请号"),
    ("publication_number", "公开(公告)号"),
    ("title", "专利名称"),
    ("abstract", "摘要"),
    ("claims", "权利要求"),
    ("ipc_codes", "IPC分类号"),
    ("patentees", "专利权人"),
    ("inventors", "发明人"),
    ("application_date", "申请日"),
    ("grant_date", "授权公告日"),
    ("legal_status", "法律状态"),
    # Offer terms: a row with a 转化方式 is pooled with them (see services.catalog.domain.offer_rows).
    ("modes", "转化方式"),
    ("price_cny", "价格(元)"),
    ("negotiable", "价格面议"),
    ("zero_price", "零元转让"),
    ("use_first_pay_later", "先使用后付费"),
    ("deferred_licence_fee", "延期支付许可费"),
    ("listed_at", "入池日期"),
]
LIST_FIELDS = {"ipc_codes", "patentees", "inventors", "modes"}
HEADER_ALIASES: dict[str, str] = {
    **{en: en for en, _ in TEMPLATE_COLUMNS},
    **{zh: en for en, zh in TEMPLATE_COLUMNS},
    "申请号/专利号": "application_number", "专利号": "application_number",
    "公开号": "publication_number", "公告号": "publication_number", "公开（公告）号": "publication_number",
    "标题": "title", "名称": "title", "发明名称": "title",
    "主权项": "claims", "ipc": "ipc_codes", "ipc主分类号": "ipc_codes", "分类号": "ipc_codes",
    "申请人": "patentees", "申请(专利权)人": "patentees", "当前权利人": "patentees",
    "授权日": "grant_date", "公告日": "grant_date", "当前法律状态": "legal_status",
    "交易方式": "modes", "许可方式": "modes", "价格": "price_cny", "价格（元）": "price_cny",
    "挂牌价格": "price_cny", "面议": "negotiable", "挂牌日期": "listed_at",
}  # fmt: skip


def detect_format(content_type: str | None, filename: str | None, explicit: str | None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise Unprocessable.field(
                "format", f"unknown format '{explicit}'; use one of {FORMATS}"
            )
        return explicit
    ct = (content_type or "").split(";")[0].strip().lower()
    name = (filename or "").lower()
    if ct in ("application/x-ndjson", "application/ndjson", "application/jsonl") or name.endswith(
        (".ndjson", ".jsonl")
    ):
        return "ndjson"
    if ct == "application/json" or name.endswith(".json"):
        return "json"
    if ct in ("text/csv", "application/csv") or name.endswith(".csv"):
        return "csv"
    if "spreadsheetml" in ct or name.endswith(".xlsx"):
        return "xlsx"
    raise UnsupportedMedia(
        f"cannot tell the file format from content type '{ct or 'none'}'"
        f"{f' and name {filename!r}' if filename else ''}; send JSON, NDJSON, CSV or XLSX"
        " (or add ?format=)"
    )


class Malformed(ProblemError):
    status, title, type_slug = 400, "Malformed file", "malformed-file"


def parse(
    source: bytes | IO[bytes], fmt: str, max_records: int = 50_000
) -> list[tuple[int, dict[str, Any]]]:
    """Return (row number, raw record) pairs; raise Malformed if the file is unreadable.

    `source` is the body or its spooled file; an XLSX is checked from the file without
    being read into memory first."""
    if fmt == "xlsx":
        file = io.BytesIO(source) if isinstance(source, bytes) else source
        return _table(_xlsx_rows(file, max_records))
    data = source if isinstance(source, bytes) else source.read()
    if not data.strip():
        raise Malformed("the file is empty")
    if fmt == "json":
        return _json(data)
    if fmt == "ndjson":
        return _ndjson(data)
    return _table(_csv_rows(data))


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):  # Chinese Excel often saves CSV as GBK
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise Malformed("the file is neither UTF-8 nor GB18030 text")


def _json(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise Malformed(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if isinstance(doc, dict) and isinstance(doc.get("patents"), list):
        doc = doc["patents"]
    if not isinstance(doc, list):
        raise Malformed('a JSON upload must be an array of patent objects (or {"patents": [...]})')
    return [
        (i + 1, rec if isinstance(rec, dict) else {"_not_an_object": rec})
        for i, rec in enumerate(doc)
    ]


def _ndjson(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for lineno, line in enumerate(_decode(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Malformed(f"line {lineno} is not valid JSON: {exc.msg}") from None
        out.append((lineno, rec if isinstance(rec, dict) else {"_not_an_object": rec}))
    return out


def _csv_rows(data: bytes) -> list[list[str]]:
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    try:
        return [row for row in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise Malformed(f"unreadable CSV: {exc}") from None


# An XLSX is a zip: bound what it may expand to before openpyxl parses it. Real patent
# lists compress 5-20x; a zip bomb compresses 1000x.
XLSX_MAX_MEMBERS = 500
XLSX_MAX_EXPANDED = 512 * 1024 * 1024  # all members together, uncompressed
XLSX_MAX_RATIO = 200  # per member above 1 MB
XLSX_MAX_COLUMNS = 100
XLSX_MAX_SECONDS = 120.0


class XlsxRefused(ProblemError):
    """An XLSX that would cost far more to read than its size suggests."""

    status, title, type_slug = 413, "Spreadsheet too large when expanded", "xlsx-too-large"


def check_xlsx_archive(file: IO[bytes]) -> None:
    """Refuse a zip bomb: member count, declared sizes and ratio, then the bytes actually
    produced while decompressing every member (a header may lie about its size)."""
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Malformed(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    with zf:
        members = zf.infolist()
        if len(members) > XLSX_MAX_MEMBERS:
            raise XlsxRefused(
                f"the workbook has {len(members):,} parts; at most {XLSX_MAX_MEMBERS} are read"
            )
        declared = sum(m.file_size for m in members)
        if declared > XLSX_MAX_EXPANDED:
            raise XlsxRefused(
                f"the workbook expands to {declared:,} bytes; at most {XLSX_MAX_EXPANDED:,}"
            )
        for m in members:
            if m.file_size > 1024 * 1024 and m.file_size > XLSX_MAX_RATIO * max(m.compress_size, 1):
                raise XlsxRefused(
                    f"part {m.filename} expands {m.file_size // max(m.compress_size, 1):,}"
                    f" times; a spreadsheet expands at most {XLSX_MAX_RATIO} times"
                )
        produced = 0
        try:
            for m in members:
                with zf.open(m) as part:
                    while chunk := part.read(1024 * 1024):
                        produced += len(chunk)
                        if produced > XLSX_MAX_EXPANDED:
                            raise XlsxRefused(
                                f"the workbook expands past {XLSX_MAX_EXPANDED:,} bytes"
                            )
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise Malformed(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    file.seek(0)


def _xlsx_rows(file: IO[bytes], max_records: int = 50_000) -> list[list[str]]:
    from openpyxl import load_workbook

    check_xlsx_archive(file)
    started = time.monotonic()
    try:
        wb = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise Malformed(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        ws = wb.worksheets[0]
        max_row, max_col = ws.max_row or 0, ws.max_column or 0
        if max_row > max_records + 1:
            raise PayloadTooLarge(
                f"the sheet declares {max_row:,} rows; the limit is {max_records:,} records"
                " per request — split it"
            )
        if max_col > XLSX_MAX_COLUMNS:
            raise Unprocessable.field(
                "file", f"the sheet declares {max_col:,} columns; at most {XLSX_MAX_COLUMNS}"
            )
        rows: list[list[str]] = []
        # The declared dimension may be missing or lie: bound what is actually read too.
        for row in ws.iter_rows(values_only=True, max_col=XLSX_MAX_COLUMNS):
            if len(rows) > max_records:
                raise PayloadTooLarge(
                    f"the sheet holds more than {max_records:,} records; split it"
                )
            if len(rows) % 256 == 0 and time.monotonic() - started > XLSX_MAX_SECONDS:
                raise XlsxRefused(f"the workbook took over {XLSX_MAX_SECONDS:.0f} s to read")
            rows.append(
                [
                    ""
                    if v is None
                    else (
                        v.date().isoformat() if hasattr(v, "date") and callable(v.date) else str(v)
                    )
                    for v in row
                ]
            )
    finally:
        wb.close()
    return rows


def _table(rows: list[list[str]]) -> list[tuple[int, dict[str, Any]]]:
    if not rows:
        raise Malformed("the table has no header row")
    header = [h.strip() for h in rows[0]]
    mapped = [HEADER_ALIASES.get(h) or HEADER_ALIASES.get(h.lower()) for h in header]
    missing = [
        en
        for en in ("application_number", "title", "patentees", "legal_status")
        if en not in mapped
    ]
    if missing:
        raise Malformed(
            f"the header row lacks required columns: {', '.join(missing)}"
            f" (found: {', '.join(h for h in header if h) or 'nothing'});"
            " download the template from /v1/patents/bulk/template",
        )
    out = []
    width = len(header)
    for i, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > width and any(c.strip() for c in row[width:]):
            out.append((i, {"_extra_cells": len(row) - width}))
            continue
        rec: dict[str, Any] = {}
        for key, cell in zip(mapped, row, strict=False):
            if key is None:
                continue
            cell = cell.strip()
            if key in LIST_FIELDS:
                rec[key] = [
                    p.strip()
                    for p in cell.replace("；", ";").replace("|", ";").split(";")
                    if p.strip()
                ]
            elif cell:
                rec[key] = cell
        out.append((i, rec))
    return out


def template_csv() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([zh for _, zh in TEMPLATE_COLUMNS])
    w.writerow(
        [
            make_application_number(2021, "1", 123456),
            "",
            "示例：一种……",
            "摘要……",
            "",
            "H01M 10/0525;H01M 4/13",
            "天津某大学",
            "张三;李四",
            "2021-01-05",
            "2023-06-30",
            "有效",
            "转让;普通许可",
            "50000",
            "是",
            "否",
            "否",
            "否",
            "",
        ]
    )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def template_xlsx() -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "专利清单"
    ws.append([zh for _, zh in TEMPLATE_COLUMNS])
    notes = {
        "application_number": "必填。如 202110123456.7（含校验位）",
        "title": "必填",
        "ipc_codes": "多个用分号分隔，主分类号在前",
        "patentees": "必填，多个用分号分隔，须包含本单位名称",
        "legal_status": "必填：有效/审中/失效/届满/无效/撤回/驳回",
        "application_date": "YYYY-MM-DD",
        "grant_date": "有效专利必填，YYYY-MM-DD",
        "modes": "选填；填写则同时入池。多个用分号分隔：转让/独占许可/排他许可/普通许可/开放许可/作价入股",
        "price_cny": "元；不填则须价格面议为“是”",
        "negotiable": "是/否，默认是",
        "zero_price": "是/否；零元转让须含“转让”方式",
        "use_first_pay_later": "是/否；先使用后付费须含许可方式",
        "deferred_licence_fee": "是/否；须含许可方式",
        "listed_at": "YYYY-MM-DD；早于今天仅限市局或管理员（存量迁移）",
    }
    for col, (en, _zh) in enumerate(TEMPLATE_COLUMNS, start=1):
        cell = ws.cell(row=1, column=col)
        cell.font = Font(bold=True)
        if en in notes:
            cell.comment = Comment(f"{notes[en]}（{en}）", "platform")
        ws.column_dimensions[cell.column_letter].width = 40 if en in ("title", "abstract") else 18
    help_ws = wb.create_sheet("说明")
    help_ws.append(["列名", "API 字段", "说明"])
    for en, zh in TEMPLATE_COLUMNS:
        help_ws.append([zh, en, notes.get(en, "选填")])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

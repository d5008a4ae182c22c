"""Uploaded files kept by the portal so rejected rows can be handed back for fixing.

Each upload gets a random id and a folder `<upload_dir>/<id>/` with the original file and
`meta.json` (owner organisation, format, the catalog's job id or report). Nothing else in
the portal is stored; the catalog holds the patents and the authoritative report.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from pathlib import Path
from typing import Any

from services.portal.domain.labels import field_hint, field_label

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def format_of(filename: str) -> str | None:
    return FORMATS.get(Path(filename or "").suffix.lower())


class UploadStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def create(self, org_id: int, filename: str, fmt: str, data: bytes) -> str:
        uid = secrets.token_urlsafe(12)
        folder = self.root / uid
        folder.mkdir(parents=True)
        (folder / f"original.{fmt}").write_bytes(data)
        self.save_meta(uid, {"org_id": org_id, "filename": filename, "format": fmt})
        return uid

    def _folder(self, uid: str) -> Path:
        if not uid.replace("-", "").replace("_", "").isalnum():
            raise KeyError(uid)
        return self.root / uid

    def meta(self, uid: str) -> dict[str, Any]:
        path = self._folder(uid) / "meta.json"
        if not path.exists():
            raise KeyError(uid)
        return json.loads(path.read_text(encoding="utf-8"))

    def save_meta(self, uid: str, meta: dict[str, Any]) -> None:
        path = self._folder(uid) / "meta.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def original(self, uid: str) -> bytes:
        meta = self.meta(uid)
        return (self._folder(uid) / f"original.{meta['format']}").read_bytes()


def explain_row(row: dict[str, Any]) -> list[dict[str, str]]:
    """The errors of one rejected row with the field's Chinese name and a plain hint."""
    return [
        {
            "field": str(e.get("field", "")),
            "label": field_label(str(e.get("field", ""))),
            "reason": str(e.get("reason", "")),
            "hint": field_hint(str(e.get("field", ""))),
        }
        for e in row.get("errors") or []
    ]


def _table_rows(data: bytes, fmt: str) -> list[list[str]]:
    if fmt == "csv":
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            text = data.decode("utf-8", errors="replace")
        return [list(r) for r in csv.reader(io.StringIO(text))]
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    ws = wb.worksheets[0]
    return [["" if c is None else str(c) for c in r] for r in ws.iter_rows(values_only=True)]


def rejected_csv(
    data: bytes, fmt: str, report_rows: list[dict[str, Any]], reason_header: str
) -> bytes:
    """The rejected rows of the original file (same columns, same order) plus a column with
    the reasons, as UTF-8 CSV with a BOM so Excel opens it in Chinese."""
    rejected = {int(r["row"]): r for r in report_rows if r.get("status") == "rejected"}
    out = io.StringIO()
    w = csv.writer(out)
    if fmt in ("csv", "xlsx"):
        rows = _table_rows(data, fmt)
        if rows:
            w.writerow([*rows[0], reason_header])
        for number, values in enumerate(rows, start=1):
            if number in rejected:
                reasons = "; ".join(
                    f"{e['label']}: {e['reason']}" for e in explain_row(rejected[number])
                )
                w.writerow([*values, reasons])
    else:  # JSON records: the report itself
        w.writerow(["row", "application_number", reason_header])
        for number, r in sorted(rejected.items()):
            reasons = "; ".join(f"{e['label']}: {e['reason']}" for e in explain_row(r))
            w.writerow([number, r.get("application_number", ""), reasons])
    return ("\ufeff" + out.getvalue()).encode("utf-8")

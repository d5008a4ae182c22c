"""Spreadsheet-safe cells for every CSV and XLSX the platform writes (OWASP CSV injection).

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, WPS and LibreOffice as a formula. Such text gets a leading single quote, and in
XLSX every text cell is written with the string data type, never as a formula. Only text
is touched: numbers (negative amounts included) and dates stay what they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


def xlsx_row(ws: Any, row: Iterable[Any]) -> list[Any]:
    """Cells for `ws.append` (write-only or normal sheets): text neutralised and typed as
    a string, so openpyxl never writes it as `<f>`."""
    from openpyxl.cell import WriteOnlyCell

    cells: list[Any] = []
    for v in row:
        safe = safe_cell(v)
        if safe is not v:
            # openpyxl only turns text starting with "=" into a formula, and neutralised
            # text never does; the explicit type makes "never a formula" hold regardless.
            cell = WriteOnlyCell(ws, value=safe)
            cell.data_type = "s"
            cells.append(cell)
        else:
            cells.append(v)
    return cells

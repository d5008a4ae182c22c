"""Offer terms in a bulk-upload row: a row that names its modes is pooled with them.

Spreadsheet cells come as text (modes in Chinese, booleans as 是/否); JSON records may
carry the API's own values. Both end as `OfferTerms` and an optional `listed_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.catalog.schemas import Mode, OfferTerms
from shared.bizdate import EARLIEST
from shared.errors import pydantic_errors

OFFER_FIELDS = (
    "modes", "price_cny", "negotiable", "zero_price", "use_first_pay_later",
    "deferred_licence_fee", "note", "listed_at",
)  # fmt: skip
MODE_NAMES = {
    "转让": Mode.ASSIGNMENT, "独占许可": Mode.EXCLUSIVE_LICENCE, "排他许可": Mode.SOLE_LICENCE,
    "普通许可": Mode.NON_EXCLUSIVE_LICENCE, "开放许可": Mode.OPEN_LICENCE,
    "作价入股": Mode.EQUITY, "作价投资": Mode.EQUITY,
}  # fmt: skip
TRUE = {"是", "y", "yes", "true", "1", "√", "有"}
FALSE = {"否", "n", "no", "false", "0", "×", "无", ""}


@dataclass
class RowOffer:
    terms: OfferTerms
    listed_at: date | None


class OfferRow(BaseModel):
    """The offer cells of one row, in the API's terms."""

    model_config = ConfigDict(str_strip_whitespace=True)

    modes: list[str] = Field(min_length=1)
    price_cny: str | None = None
    negotiable: bool | None = None
    zero_price: bool | None = None
    use_first_pay_later: bool | None = None
    deferred_licence_fee: bool | None = None
    note: str = ""
    listed_at: date | None = Field(None, ge=EARLIEST)

    @field_validator("modes", mode="before")
    @classmethod
    def _modes(cls, v: Any) -> Any:
        items = v.replace("；", ";").split(";") if isinstance(v, str) else v
        if not isinstance(items, list):
            return v
        out = []
        for m in items:
            m = str(m).strip()
            if not m:
                continue
            mode = MODE_NAMES.get(m) or next((x for x in Mode if x.value == m.lower()), None)
            if mode is None:
                raise ValueError(
                    f"unknown mode '{m}'; use {'/'.join(MODE_NAMES)} or {', '.join(Mode)}"
                )
            out.append(mode.value)
        return out

    @field_validator(
        "negotiable", "zero_price", "use_first_pay_later", "deferred_licence_fee", mode="before"
    )
    @classmethod
    def _flag(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip().lower()
            if s in TRUE:
                return True
            if s in FALSE:
                return None if s == "" else False
            raise ValueError(f"'{v}' is not yes or no; use 是 or 否")
        return v

    @field_validator("price_cny", mode="before")
    @classmethod
    def _price(cls, v: Any) -> Any:
        if v is None:
            return None
        s = str(v).replace(",", "").replace("，", "").strip()
        return s or None


def split_offer(raw: dict[str, Any]) -> dict[str, Any]:
    """Take the offer cells out of a raw record (the rest is the patent)."""
    return {k: raw.pop(k) for k in OFFER_FIELDS if k in raw}


def parse_offer(cells: dict[str, Any]) -> RowOffer | None:
    """None when the row names no mode (upload only); ValueError-like errors as a list."""
    if not any(v not in (None, "", []) for v in cells.values()):
        return None
    row = OfferRow.model_validate(cells)
    values = row.model_dump(exclude_none=True, exclude={"listed_at"})
    if row.price_cny in (None, "") and row.negotiable is None:
        values["negotiable"] = True
    terms = OfferTerms.model_validate(values)
    return RowOffer(terms, row.listed_at)


def offer_errors(exc: ValidationError) -> list[dict[str, str]]:
    return pydantic_errors(list(exc.errors()))

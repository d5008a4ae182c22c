"""Request and response bodies of the indicators API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.indicators.domain.common import aware, normalise_appno, today

UTCDateTime = Annotated[datetime, AfterValidator(aware)]


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DealKind(StrEnum):
    ASSIGNMENT = "assignment"  # 转让
    LICENCE = "licence"  # 许可
    EQUITY = "equity"  # 作价入股


class LicenceType(StrEnum):
    EXCLUSIVE = "exclusive"  # 独占
    SOLE = "sole"  # 排他
    NON_EXCLUSIVE = "non_exclusive"  # 普通
    OPEN = "open"  # 开放许可


class EvidenceType(StrEnum):
    TRANSFER_REGISTRATION = "transfer_registration"  # 专利权转让登记
    LICENCE_FILING = "licence_filing"  # 专利实施许可合同备案
    OPEN_LICENCE_NOTICE = "open_licence_notice"  # 开放许可实施公告


class DealStatus(StrEnum):
    REGISTERED = "registered"
    EFFECTIVE = "effective"
    CANCELLED = "cancelled"


EXPECTED_EVIDENCE = {
    (DealKind.ASSIGNMENT, None): EvidenceType.TRANSFER_REGISTRATION,
    (DealKind.EQUITY, None): EvidenceType.TRANSFER_REGISTRATION,
    (DealKind.LICENCE, LicenceType.EXCLUSIVE): EvidenceType.LICENCE_FILING,
    (DealKind.LICENCE, LicenceType.SOLE): EvidenceType.LICENCE_FILING,
    (DealKind.LICENCE, LicenceType.NON_EXCLUSIVE): EvidenceType.LICENCE_FILING,
    (DealKind.LICENCE, LicenceType.OPEN): EvidenceType.OPEN_LICENCE_NOTICE,
}


class Evidence(Model):
    type: EvidenceType
    number: str = Field(min_length=3, max_length=80)
    date: date


class PaymentIn(Model):
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    received_on: date
    note: str = Field("", max_length=300)


def _appnos(values: list[str], field: str) -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(values):
        n = normalise_appno(raw)
        if n is None:
            raise ValueError(f"item {i}: '{raw}' is not a valid application number")
        if n in out:
            raise ValueError(f"item {i}: {n} is named twice")
        out.append(n)
    return out


class DealCreate(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "licence",
                    "licence_type": "non_exclusive",
                    "application_numbers": ["202110123456.7"],
                    "supplier_org_ids": [2],
                    "recipient_org_id": 5,
                    "contract_date": "2023-04-01",
                    "effective_date": "2023-04-10",
                    "evidence": {
                        "type": "licence_filing",
                        "number": "2023120000123",
                        "date": "2023-04-10",
                    },
                    "contract_amount": "50000",
                    "payments": [{"amount": "20000", "received_on": "2023-05-01"}],
                }
            ]
        }
    )

    kind: DealKind
    licence_type: LicenceType | None = None
    status: DealStatus = DealStatus.EFFECTIVE
    application_numbers: list[str] = Field(min_length=1, max_length=500)
    supplier_org_ids: list[int] = Field(min_length=1, max_length=20)
    recipient_org_id: int
    contract_date: date
    effective_date: date | None = None
    evidence: Evidence
    contract_amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)
    payments: list[PaymentIn] = Field(default_factory=list, max_length=200)
    zero_price: bool = False
    use_first_pay_later: bool = False
    converted_from_deal_id: int | None = Field(
        None, description="the earlier deal this one turns into another kind (licence → equity)"
    )
    lead_id: str | None = Field(None, max_length=64, description="matching lead it came from")
    note: str = Field("", max_length=2000)
    override_not_in_force: bool = Field(
        False,
        description="bureau/admin only: record a deal on a patent not in force at its date; "
        "the deal is kept but excluded from every count and listed by /v1/consistency",
    )
    override_reason: str | None = Field(
        None, max_length=500, description="why the override (required with it)"
    )

    @field_validator("application_numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return _appnos(v, "application_numbers")

    @model_validator(mode="after")
    def _consistent(self) -> DealCreate:
        if self.override_not_in_force and not (self.override_reason or "").strip():
            raise ValueError("override_reason: an override says why")
        if self.kind is DealKind.LICENCE and self.licence_type is None:
            raise ValueError("licence_type: a licence needs its type")
        if self.kind is not DealKind.LICENCE and self.licence_type is not None:
            raise ValueError(f"licence_type: only licences have one, not {self.kind.value}")
        expected = EXPECTED_EVIDENCE[(self.kind, self.licence_type)]
        if self.evidence.type is not expected:
            raise ValueError(
                f"evidence.type: a {self.kind.value} deal is evidenced by {expected.value}"
            )
        if len(set(self.supplier_org_ids)) != len(self.supplier_org_ids):
            raise ValueError("supplier_org_ids: an organisation is named twice")
        if self.recipient_org_id in self.supplier_org_ids:
            raise ValueError("recipient_org_id: the recipient is also a supplier")
        now = today()
        if self.contract_date > now:
            raise ValueError("contract_date: is in the future")
        if self.effective_date is not None and self.effective_date < self.contract_date:
            raise ValueError("effective_date: is before the contract date")
        if self.status is DealStatus.CANCELLED:
            raise ValueError("status: a deal is recorded as registered or effective")
        if self.status is DealStatus.EFFECTIVE:
            if self.effective_date is None:
                raise ValueError("effective_date: an effective deal needs its effective date")
            if self.effective_date > now:
                raise ValueError("effective_date: is in the future; record it as registered")
        if self.evidence.date < self.contract_date:
            raise ValueError("evidence.date: is before the contract date")
        if self.evidence.date > now:
            raise ValueError("evidence.date: is in the future")
        check_amounts(self.contract_amount, self.zero_price, self.payments, self.contract_date)
        return self


def check_amounts(
    contract_amount: Decimal, zero_price: bool, payments: list[PaymentIn], contract_date: date
) -> None:
    if zero_price and contract_amount != 0:
        raise ValueError("contract_amount: a zero-price transfer has a contract amount of 0")
    if not zero_price and contract_amount == 0:
        raise ValueError("contract_amount: is 0 but the deal is not flagged zero_price")
    total = sum((p.amount for p in payments), Decimal(0))
    if zero_price and payments:
        raise ValueError("payments: a zero-price transfer receives no payments")
    if total > contract_amount:
        raise ValueError(
            f"payments: received {total} exceeds the contract amount {contract_amount}"
        )
    now = today()
    for i, p in enumerate(payments):
        if p.received_on < contract_date:
            raise ValueError(f"payments[{i}].received_on: is before the contract date")
        if p.received_on > now:
            raise ValueError(f"payments[{i}].received_on: is in the future")


class PaymentsAdd(Model):
    payments: list[PaymentIn] = Field(min_length=1, max_length=200)


class DealCancel(Model):
    reason: str = Field(min_length=2, max_length=500)


class DealActivate(Model):
    effective_date: date

    @field_validator("effective_date")
    @classmethod
    def _not_future(cls, v: date) -> date:
        if v > today():
            raise ValueError("is in the future")
        return v


class PartyOut(Model):
    org_id: int
    name: str
    kind: str
    district: str | None
    in_tianjin: bool
    is_sme: bool


class PaymentOut(Model):
    id: int
    amount: Decimal
    received_on: date
    note: str


class DealOut(Model):
    id: int
    kind: str
    licence_type: str | None
    status: str
    application_numbers: list[str]
    suppliers: list[PartyOut]
    recipient: PartyOut
    contract_date: date
    effective_date: date | None
    evidence: Evidence
    contract_amount: Decimal
    amount_received: Decimal
    payments: list[PaymentOut]
    zero_price: bool
    use_first_pay_later: bool
    qualifies: bool = Field(description="the parties meet the 1000-target rule (frozen)")
    counted_lines: int = Field(description="patent-deals of this deal counted toward 1000")
    converted_from_deal_id: int | None
    lead_id: str | None
    cancelled_reason: str | None
    cancelled_at: UTCDateTime | None
    excluded: bool = Field(False, description="recorded with override_not_in_force: never counted")
    not_in_force_reason: str | None = None
    override_reason: str | None = None
    note: str
    created_by_org_id: int
    created_at: UTCDateTime
    updated_at: UTCDateTime


class DealPage(Model):
    items: list[DealOut]
    next_cursor: str | None


# --- other countable events -----------------------------------------------------------


class PledgeCreate(Model):
    registration_number: str = Field(min_length=3, max_length=80)
    pledgor_org_id: int
    lender: str = Field(min_length=2, max_length=200)
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    registered_on: date
    asset_kind: str = Field("patent", pattern="^(patent|trademark|mixed)$")
    application_numbers: list[str] = Field(default_factory=list, max_length=500)
    trademark_numbers: list[str] = Field(default_factory=list, max_length=500)
    note: str = Field("", max_length=2000)

    @field_validator("application_numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return _appnos(v, "application_numbers")

    @model_validator(mode="after")
    def _assets(self) -> PledgeCreate:
        if self.registered_on > today():
            raise ValueError("registered_on: is in the future")
        if self.asset_kind in ("patent", "mixed") and not self.application_numbers:
            raise ValueError("application_numbers: a patent pledge names its patents")
        if self.asset_kind in ("trademark", "mixed") and not self.trademark_numbers:
            raise ValueError("trademark_numbers: a trademark pledge names its trademarks")
        if self.asset_kind == "trademark" and self.application_numbers:
            raise ValueError("asset_kind: patents named, so the pledge is patent or mixed")
        return self


class PledgeOut(Model):
    id: int
    registration_number: str
    pledgor_org_id: int
    pledgor_name: str
    pledgor_kind: str
    pledgor_district: str | None
    lender: str
    amount: Decimal
    registered_on: date
    asset_kind: str
    application_numbers: list[str]
    trademark_numbers: list[str]
    status: str
    cancelled_reason: str | None
    note: str
    created_at: UTCDateTime


class ProductFilingCreate(Model):
    filing_number: str = Field(min_length=3, max_length=80)
    org_id: int
    product_name: str = Field(min_length=2, max_length=300)
    filed_on: date
    application_numbers: list[str] = Field(min_length=1, max_length=200)
    note: str = Field("", max_length=2000)

    @field_validator("application_numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return _appnos(v, "application_numbers")

    @field_validator("filed_on")
    @classmethod
    def _past(cls, v: date) -> date:
        if v > today():
            raise ValueError("is in the future")
        return v


class ProductFilingOut(Model):
    id: int
    filing_number: str
    org_id: int
    org_name: str
    org_district: str | None
    org_is_sme: bool
    product_name: str
    filed_on: date
    application_numbers: list[str]
    note: str
    created_at: UTCDateTime


class SecuritisationCreate(Model):
    code: str = Field(min_length=3, max_length=80, description="exchange code of the product")
    name: str = Field(min_length=2, max_length=300)
    issuer: str = Field(min_length=2, max_length=200)
    district: str | None = None
    issued_on: date
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    originator_org_ids: list[int] = Field(default_factory=list, max_length=200)
    application_numbers: list[str] = Field(default_factory=list, max_length=5000)
    note: str = Field("", max_length=2000)

    @field_validator("application_numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return _appnos(v, "application_numbers")

    @field_validator("issued_on")
    @classmethod
    def _past(cls, v: date) -> date:
        if v > today():
            raise ValueError("is in the future")
        return v


class SecuritisationOut(Model):
    id: int
    code: str
    name: str
    issuer: str
    district: str | None
    issued_on: date
    amount: Decimal
    originator_org_ids: list[int]
    application_numbers: list[str]
    note: str
    created_at: UTCDateTime


class CancelBody(Model):
    reason: str = Field(min_length=2, max_length=500)


# --- reporting ------------------------------------------------------------------------


class FigureCreate(Model):
    plan: str
    indicator: str
    year: int = Field(ge=2000, le=2100)
    value: Decimal = Field(max_digits=20, decimal_places=4)
    district: str | None = Field(
        None, description="for the city plan: the district reported for (null = city-wide)"
    )
    note: str = Field("", max_length=2000)


class FigureOut(Model):
    id: int
    plan_code: str
    indicator_code: str
    scope: str
    year: int
    value: Decimal
    note: str
    current: bool
    supersedes_id: int | None
    submitted_by_org_id: int
    submitted_by_role: str
    submitted_by_key_id: str
    submitted_at: UTCDateTime


class SnapshotCreate(Model):
    plan: str
    year: int = Field(ge=2000, le=2100)
    district: str | None = None
    note: str = Field("", max_length=2000)


class SnapshotOut(Model):
    id: int
    plan_code: str
    scope: str
    year: int
    as_of: date
    note: str
    figures: dict[str, Any]
    content_sha256: str
    created_by_org_id: int
    created_by_role: str
    created_at: UTCDateTime

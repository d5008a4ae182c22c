"""Request and response bodies of the catalog API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.catalog.domain.people import normalize_phone
from services.catalog.domain.uscc import validate_uscc
from shared.appno import InvalidNumber, normalize_publication_number
from shared.auth import Role
from shared.bizdate import EARLIEST
from shared.ipc import normalize_ipc
from shared.regions import DISTRICT_BY_CHINESE, PROVINCES, TIANJIN_DISTRICTS, OrgKind


def past_day(what: str) -> Any:
    """A business day that may be back-dated by the city bureau or an admin (migration)."""
    return Field(
        None,
        ge=EARLIEST,
        description=f"{what} (Asia/Shanghai); default today. Earlier days only for the city "
        "bureau or an admin (migrating records); never in the future",
    )


def normalize_district(v: str) -> str:
    """`binhai`, `Binhai` or `滨海新区` -> `binhai`; ValueError naming the choices."""
    key = v.strip().lower()
    if key in TIANJIN_DISTRICTS:
        return key
    if v.strip() in DISTRICT_BY_CHINESE:
        return DISTRICT_BY_CHINESE[v.strip()]
    raise ValueError(
        f"unknown Tianjin district '{v}'; use one of {sorted(TIANJIN_DISTRICTS)}"
        " or its Chinese name"
    )


class Model(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, from_attributes=True)


# ---------------------------------------------------------------- organisations


class OrganisationCreate(Model):
    kind: OrgKind
    name: str = Field(min_length=2, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=20)
    uscc: str | None = Field(None, description="统一社会信用代码, GB 32100 (18 characters)")
    district: str | None = Field(
        None, description="Tianjin district key (e.g. binhai) or Chinese name; null if outside"
    )
    province: str | None = Field(None, description="province when outside Tianjin")
    is_sme: bool = False
    sme_basis: str | None = Field(None, max_length=300, description="why it counts as an SME")

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str | None) -> str | None:
        return validate_uscc(v) if v else None

    @field_validator("district")
    @classmethod
    def _district(cls, v: str | None) -> str | None:
        return normalize_district(v) if v else None

    @model_validator(mode="after")
    def _consistent(self) -> OrganisationCreate:
        if self.district is None:
            if not self.province:
                raise ValueError(
                    "district: give a Tianjin district, or province if outside Tianjin"
                )
            if self.province not in PROVINCES:
                raise ValueError(f"province: unknown province '{self.province}'")
        elif self.province and self.province != "天津市":
            raise ValueError("province: an organisation in a Tianjin district is in 天津市")
        if self.kind is OrgKind.SME:
            self.is_sme = True
        if self.is_sme and not self.sme_basis:
            raise ValueError(
                "sme_basis: say why the organisation is an SME (e.g. 工信部联企业〔2011〕300号划型)"
            )
        if self.is_sme and self.kind not in (OrgKind.SME, OrgKind.ENTERPRISE):
            raise ValueError(f"is_sme: an organisation of kind {self.kind} cannot be an SME")
        return self


class OrganisationUpdate(Model):
    """A change from `effective_from` on (default: today in Tianjin). Unknown fields are
    refused, never ignored."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(None, min_length=2, max_length=200)
    aliases: list[str] | None = None
    kind: OrgKind | None = Field(
        None, description="only between sme and enterprise (an SME outgrowing its status)"
    )
    district: str | None = None
    province: str | None = None
    is_sme: bool | None = None
    sme_basis: str | None = None
    effective_from: date | None = past_day("the day the change took effect")
    reason: str = Field("", max_length=300, description="why (kept in the history)")


class OrganisationChange(Model):
    id: int
    effective_from: date | None = Field(description="null: the first known state")
    values: dict[str, Any]
    previous: dict[str, Any]
    reason: str
    recorded_at: datetime
    recorded_by_org_id: int | None
    recorded_by_role: str | None
    recorded_by_key: str | None
    recorded_by_person_id: int | None


class OrganisationState(Model):
    effective_from: date | None
    kind: str
    name: str
    district: str | None
    province: str | None
    in_tianjin: bool
    is_sme: bool
    sme_basis: str | None


class OrganisationHistory(Model):
    org_id: int
    changes: list[OrganisationChange]
    timeline: list[OrganisationState]


class Organisation(Model):
    id: int
    kind: str
    name: str
    aliases: list[str]
    uscc: str | None
    district: str | None
    district_name: str | None = None
    province: str | None
    in_tianjin: bool
    is_sme: bool
    sme_basis: str | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _names(self) -> Organisation:
        self.district_name = TIANJIN_DISTRICTS.get(self.district or "")
        return self


class OrganisationPage(Model):
    items: list[Organisation]
    next_cursor: str | None


class KeyCreate(Model):
    role: Role
    label: str = Field("", max_length=100)


class KeyCreated(Model):
    key_id: str
    key: str = Field(description="shown once; store it now")
    role: Role
    org_id: int


class KeyInfo(Model):
    id: str
    role: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class IntrospectRequest(Model):
    key: str = Field(max_length=200)


class IntrospectResponse(Model):
    active: bool
    principal: dict[str, Any] | None = None
    expires_at: datetime | None = Field(None, description="set for sign-in tokens")


# ---------------------------------------------------------------- people and sign-in

MIN_PASSWORD = 10
# Never strip a password: a space is a character like any other.
Password = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=MIN_PASSWORD, max_length=200)
]


class PersonCreate(Model):
    name: str = Field(min_length=1, max_length=100)
    email: EmailStr | None = Field(None, max_length=254)
    phone: str | None = Field(None, description="Chinese mobile number, e.g. 13812345678")
    password: Password
    role: Role
    org_admin: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return v.lower() if v else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return normalize_phone(v) if v else None

    @model_validator(mode="after")
    def _reachable(self) -> PersonCreate:
        if not self.email and not self.phone:
            raise ValueError("email: give an email address or a phone number (or both)")
        return self


class PersonUpdate(Model):
    name: str | None = Field(None, min_length=1, max_length=100)
    password: Password | None = None
    active: bool | None = None
    role: Role | None = None
    org_admin: bool | None = None


class Person(Model):
    id: int
    org_id: int
    name: str
    email: str | None
    phone: str | None
    role: Role
    org_admin: bool
    active: bool
    created_at: datetime
    updated_at: datetime


class SessionCreate(Model):
    login: str = Field(min_length=1, max_length=254, description="email or phone number")
    password: Annotated[str, StringConstraints(strip_whitespace=False, max_length=200)]


class SessionCreated(Model):
    token: str = Field(description="send as 'Authorization: Bearer <token>' until expires_at")
    token_type: str = "bearer"
    expires_at: datetime
    person: Person
    organisation: Organisation


class Me(Model):
    key_id: str
    org_id: int
    role: Role
    org_kind: str
    district: str | None
    person_id: int | None
    org_admin: bool
    expires_at: datetime | None = Field(None, description="set for sign-in tokens")
    person: Person | None
    organisation: Organisation


# ---------------------------------------------------------------- patents


class LegalStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    LAPSED = "lapsed"  # fees not paid
    EXPIRED = "expired"
    INVALIDATED = "invalidated"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"


# Chinese legal-status strings as exported by CNIPA / incoPat, mapped to ours.
LEGAL_STATUS_ALIASES = {
    "有效": "granted", "授权": "granted", "有权": "granted", "审中": "pending",
    "实质审查": "pending", "公开": "pending", "失效": "lapsed", "未缴年费": "lapsed",
    "届满": "expired", "期限届满": "expired", "无效": "invalidated", "全部无效": "invalidated",
    "撤回": "withdrawn", "视为撤回": "withdrawn", "驳回": "rejected",
}  # fmt: skip


def _legal_status(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        if s.lower() in LegalStatus.__members__.values() or s.lower() in {
            m.value for m in LegalStatus
        }:
            return s.lower()
        head = s.split("-")[0]
        for key in (s, head):
            if key in LEGAL_STATUS_ALIASES:
                return LEGAL_STATUS_ALIASES[key]
    return v


class PatentIn(Model):
    """One patent as a university uploads it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_number": "202110123456.7",
                    "title": "一种锂离子电池正极材料的制备方法",
                    "abstract": "本发明公开了一种锂离子电池正极材料，提高了电池的循环寿命。",
                    "ipc_codes": ["H01M 4/131", "H01M 10/0525"],
                    "patentees": ["天津大学"],
                    "inventors": ["张三"],
                    "application_date": "2021-03-01",
                    "grant_date": "2023-05-01",
                    "legal_status": "granted",
                }
            ]
        }
    )

    application_number: str = Field(description="CN application number, e.g. 202110123456.7")
    publication_number: str | None = None
    title: str = Field(min_length=2, max_length=500)
    abstract: str = Field("", max_length=20_000)
    claims: str | None = Field(None, max_length=200_000)
    ipc_codes: list[str] = Field(default_factory=list, max_length=50, description="main IPC first")
    patentees: list[str] = Field(min_length=1, max_length=20)
    inventors: list[str] = Field(default_factory=list, max_length=100)
    application_date: date | None = None
    grant_date: date | None = None
    legal_status: LegalStatus

    @field_validator("legal_status", mode="before")
    @classmethod
    def _ls(cls, v: Any) -> Any:
        return _legal_status(v)

    @field_validator("publication_number")
    @classmethod
    def _pub(cls, v: str | None) -> str | None:
        if not v:
            return None
        try:
            return normalize_publication_number(v)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None

    @field_validator("ipc_codes")
    @classmethod
    def _ipc(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for i, code in enumerate(v):
            try:
                norm = normalize_ipc(code)
            except ValueError as exc:
                raise ValueError(f"[{i}] {exc}") from None
            if norm not in out:
                out.append(norm)
        return out

    @field_validator("patentees", "inventors")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [n.strip() for n in v if n and n.strip()]

    @model_validator(mode="after")
    def _dates(self) -> PatentIn:
        if self.grant_date and self.application_date and self.grant_date < self.application_date:
            raise ValueError("grant_date: cannot be before application_date")
        if self.legal_status is LegalStatus.GRANTED and not self.grant_date:
            raise ValueError("grant_date: a granted patent needs its grant date")
        return self


class Patent(Model):
    id: int
    application_number: str
    publication_number: str | None
    patent_type: str
    title: str
    abstract: str
    claims: str | None = None
    ipc_codes: list[str]
    main_ipc: str | None
    industries: list[str]
    patentees: list[str]
    inventors: list[str]
    owner_org_ids: list[int] = []
    application_date: date | None
    grant_date: date | None
    expiry_date: date | None
    legal_status: str
    listing: Listing | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class PatentPage(Model):
    items: list[Patent]
    next_cursor: str | None


class LegalStatusUpdate(Model):
    legal_status: LegalStatus
    grant_date: date | None = None

    @field_validator("legal_status", mode="before")
    @classmethod
    def _ls(cls, v: Any) -> Any:
        return _legal_status(v)


# ---------------------------------------------------------------- listings


class Mode(StrEnum):
    ASSIGNMENT = "assignment"
    EXCLUSIVE_LICENCE = "exclusive_licence"
    SOLE_LICENCE = "sole_licence"
    NON_EXCLUSIVE_LICENCE = "non_exclusive_licence"
    OPEN_LICENCE = "open_licence"
    EQUITY = "equity"


class ListingStatus(StrEnum):
    LISTED = "listed"
    NEGOTIATING = "negotiating"
    CONVERTED = "converted"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"


POOLED = (ListingStatus.LISTED.value, ListingStatus.NEGOTIATING.value)


class OfferTerms(Model):
    modes: list[Mode] = Field(min_length=1)
    price_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    negotiable: bool = True
    zero_price: bool = False
    use_first_pay_later: bool = False
    deferred_licence_fee: bool = False
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _terms(self) -> OfferTerms:
        self.modes = list(dict.fromkeys(self.modes))
        if self.zero_price:
            if self.price_cny not in (None, Decimal(0)):
                raise ValueError("price_cny: a zero-price transfer cannot name a price")
            if Mode.ASSIGNMENT not in self.modes:
                raise ValueError("zero_price: a zero-price transfer needs the assignment mode")
            self.price_cny = Decimal(0)
            self.negotiable = False
        if self.price_cny is None and not self.negotiable:
            raise ValueError("price_cny: give a price, or mark the offer negotiable")
        if self.deferred_licence_fee and not any(m.value.endswith("licence") for m in self.modes):
            raise ValueError("deferred_licence_fee: only applies when a licence mode is offered")
        if self.use_first_pay_later and self.modes == [Mode.ASSIGNMENT]:
            raise ValueError(
                "use_first_pay_later: use first, pay later needs a licence mode; "
                "assignment alone transfers the patent"
            )
        return self


class ListingCreate(OfferTerms):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_number": "202110123456.7",
                    "modes": ["assignment", "non_exclusive_licence"],
                    "price_cny": "50000",
                    "negotiable": True,
                }
            ]
        }
    )

    application_number: str
    listed_at: date | None = past_day("the day the patent entered the pool")


class ListingUpdate(Model):
    terms: OfferTerms | None = None
    status: ListingStatus | None = Field(
        None, description="owners may move listed <-> negotiating, or withdraw"
    )
    reason: str = Field("", max_length=300)
    effective_from: date | None = past_day("the day the status change took effect")


class BulkListingItem(Model):
    application_number: str = Field(max_length=40)
    terms: OfferTerms | None = Field(None, description="default: the request's `terms`")
    listed_at: date | None = Field(
        None, ge=EARLIEST, description="default: the request's `listed_at`"
    )


class BulkListingCreate(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "terms": {"modes": ["assignment", "non_exclusive_licence"], "negotiable": True},
                    "items": [
                        {"application_number": "202110123456.7"},
                        {
                            "application_number": "202120654321.X",
                            "terms": {"modes": ["open_licence"], "price_cny": "0"},
                        },
                    ],
                }
            ]
        }
    )

    terms: OfferTerms | None = Field(None, description="offer terms for items that give none")
    listed_at: date | None = Field(
        None,
        ge=EARLIEST,
        description="pool entry day for items that give none (bureau/admin to back-date)",
    )
    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="each: application_number, optional terms and listed_at (BulkListingItem);"
        " a bad item is reported on its own, the others are applied",
    )


class BulkListingResult(Model):
    index: int
    application_number: str | None = None
    status: str = Field(description="listed | updated | unchanged | not_eligible | rejected")
    listing_id: int | None = None
    errors: list[dict[str, str]] = []


class BulkListingReport(Model):
    summary: dict[str, int]
    results: list[BulkListingResult]


class Listing(Model):
    id: int
    patent_id: int
    application_number: str | None = None
    title: str | None = None
    status: str
    modes: list[str]
    price_cny: Decimal | None
    negotiable: bool
    zero_price: bool
    use_first_pay_later: bool
    deferred_licence_fee: bool
    note: str
    status_reason: str
    first_listed_at: datetime
    updated_at: datetime
    status_since: datetime | None = None
    version: int


class ListingPage(Model):
    items: list[Listing]
    next_cursor: str | None


class Eligibility(Model):
    application_number: str
    eligible: bool
    reasons: list[str]


class BundleCreate(Model):
    name: str = Field(min_length=2, max_length=200)
    description: str = Field("", max_length=5000)
    price_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    application_numbers: list[str] = Field(min_length=2, max_length=500)


class BundleUpdate(Model):
    name: str | None = Field(None, min_length=2, max_length=200)
    description: str | None = Field(None, max_length=5000)
    price_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    application_numbers: list[str] | None = Field(None, min_length=2, max_length=500)
    status: str | None = Field(None, pattern="^(active|withdrawn)$")


class Bundle(Model):
    id: int
    org_id: int
    name: str
    description: str
    price_cny: Decimal | None
    status: str
    application_numbers: list[str]
    created_at: datetime
    updated_at: datetime


Patent.model_rebuild()

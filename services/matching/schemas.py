"""Request and response bodies of the matching API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.matching.domain.codes import industry_known, validate_ipc
from services.matching.domain.index import MODES
from shared import bizdate

MAX_QUERY_CHARS = 20_000


class Model(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, from_attributes=True)


class Mode(StrEnum):
    ASSIGNMENT = "assignment"
    EXCLUSIVE_LICENCE = "exclusive_licence"
    SOLE_LICENCE = "sole_licence"
    NON_EXCLUSIVE_LICENCE = "non_exclusive_licence"
    OPEN_LICENCE = "open_licence"
    EQUITY = "equity"


assert tuple(m.value for m in Mode) == MODES


def _industry(v: str | None) -> str | None:
    if v is None:
        return None
    if not industry_known(v):
        raise ValueError(
            f"unknown industry '{v}': use an SEI industry number ('1'..'9') or branch number"
            " (e.g. '1.2'); see GET /v1/industries"
        )
    return v


def _ipcs(v: list[str]) -> list[str]:
    out: list[str] = []
    for i, code in enumerate(v):
        try:
            norm = validate_ipc(code)
        except ValueError as exc:
            raise ValueError(f"[{i}] {exc}") from None
        if norm not in out:
            out.append(norm)
    return out


# ---------------------------------------------------------------- needs


class NeedStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class NeedBase(Model):
    title: str = Field(min_length=2, max_length=200)
    description: str = Field(min_length=5, max_length=MAX_QUERY_CHARS)
    industry: str = Field(description="SEI industry ('1'..'9') or branch ('1.2') number")
    ipc_hints: list[str] = Field(default_factory=list, max_length=20)
    modes: list[Mode] = Field(default_factory=list, description="acceptable transfer modes")
    budget_min_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    budget_max_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    valid_until: date | None = None
    contact_name: str = Field("", max_length=100)
    contact_phone: str = Field("", max_length=40)
    contact_email: str = Field("", max_length=200)


class NeedCreate(NeedBase):
    _industry = field_validator("industry")(classmethod(lambda cls, v: _industry(v)))
    _ipc = field_validator("ipc_hints")(classmethod(lambda cls, v: _ipcs(v)))

    @model_validator(mode="after")
    def _check(self) -> NeedCreate:
        if not self.title.strip(" \u3000") or not self.description.strip(" \u3000"):
            raise ValueError("description: must not be blank")
        lo, hi = self.budget_min_cny, self.budget_max_cny
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("budget_max_cny: must not be below budget_min_cny")
        if self.valid_until is not None and self.valid_until < bizdate.today():
            raise ValueError("valid_until: must not be in the past")
        self.modes = list(dict.fromkeys(self.modes))
        return self


class NeedUpdate(Model):
    title: str | None = Field(None, min_length=2, max_length=200)
    description: str | None = Field(None, min_length=5, max_length=MAX_QUERY_CHARS)
    industry: str | None = None
    ipc_hints: list[str] | None = Field(None, max_length=20)
    modes: list[Mode] | None = None
    budget_min_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    budget_max_cny: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    valid_until: date | None = None
    status: NeedStatus | None = None
    contact_name: str | None = Field(None, max_length=100)
    contact_phone: str | None = Field(None, max_length=40)
    contact_email: str | None = Field(None, max_length=200)

    @field_validator("industry")
    @classmethod
    def _ind(cls, v: str | None) -> str | None:
        return _industry(v)

    @field_validator("ipc_hints")
    @classmethod
    def _ipc(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _ipcs(v)


class Need(Model):
    id: int
    org_id: int
    org_name: str | None = None
    org_district: str | None = None
    title: str
    description: str
    industry: str
    industry_name: str | None = None
    ipc_hints: list[str]
    modes: list[str]
    budget_min_cny: Decimal | None
    budget_max_cny: Decimal | None
    valid_until: date | None
    status: str
    created_at: datetime
    updated_at: datetime
    # Only for the owner (and the bureau); null in the public view.
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None


class NeedPage(Model):
    items: list[Need]
    next_cursor: str | None


# ---------------------------------------------------------------- matching


class MatchFilters(Model):
    pooled_only: bool = Field(True, description="only patents currently in the pool")
    industries: list[str] = Field(default_factory=list, description="SEI industry/branch numbers")
    modes: list[Mode] = Field(default_factory=list, description="offered in any of these modes")
    zero_price: bool | None = Field(None, description="only (or never) zero-price transfers")
    patent_types: list[str] = Field(default_factory=list)
    owner_districts: list[str] = Field(default_factory=list, description="Tianjin district keys")

    @field_validator("industries")
    @classmethod
    def _inds(cls, v: list[str]) -> list[str]:
        for i, code in enumerate(v):
            try:
                _industry(code)
            except ValueError as exc:
                raise ValueError(f"[{i}] {exc}") from None
        return v

    @field_validator("patent_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        allowed = {"invention", "utility_model", "design", "pct_invention", "pct_utility_model"}
        bad = [t for t in v if t not in allowed]
        if bad:
            raise ValueError(f"unknown patent type {bad[0]!r}; use one of {sorted(allowed)}")
        return v

    @field_validator("owner_districts")
    @classmethod
    def _districts(cls, v: list[str]) -> list[str]:
        from shared.regions import DISTRICT_BY_CHINESE, TIANJIN_DISTRICTS

        out = []
        for d in v:
            key = DISTRICT_BY_CHINESE.get(d, d.lower())
            if key not in TIANJIN_DISTRICTS:
                raise ValueError(f"unknown Tianjin district {d!r}")
            out.append(key)
        return out


class MatchQuery(MatchFilters):
    text: str = Field(
        max_length=MAX_QUERY_CHARS, description="the problem in plain words (Chinese or English)"
    )
    title: str = Field("", max_length=200)
    ipc_hints: list[str] = Field(default_factory=list, max_length=20)
    k: int = Field(10, ge=1, le=100)

    _ipc = field_validator("ipc_hints")(classmethod(lambda cls, v: _ipcs(v)))

    @model_validator(mode="after")
    def _not_blank(self) -> MatchQuery:
        if not (self.text + self.title).strip(" \u3000\t\r\n") and not self.ipc_hints:
            raise ValueError("text: the query is empty; describe the technology you need")
        return self


class TermWeight(Model):
    term: str
    weight: float


class Explanation(Model):
    terms: list[TermWeight]
    matched_ipc: list[str]
    matched_industries: list[dict[str, str]]
    snippet: str


class OfferSummary(Model):
    listing_id: int
    status: str
    modes: list[str]
    price_cny: str | None
    negotiable: bool
    zero_price: bool
    use_first_pay_later: bool
    deferred_licence_fee: bool


class OwnerSummary(Model):
    id: int
    name: str
    kind: str
    district: str | None


class Confidence(StrEnum):
    STRONG = "strong"
    POSSIBLE = "possible"
    WEAK = "weak"


class PatentHit(Model):
    rank: int
    score: float
    confidence: Confidence = Field(
        description="strong / possible / weak: how often hits of this score were relevant "
        "in the judged evaluation (docs/matching.md#confidence-bands)"
    )
    application_number: str
    title: str
    patent_type: str
    ipc_codes: list[str]
    industries: list[str]
    owners: list[OwnerSummary]
    offer: OfferSummary | None
    explanation: Explanation


class FilteredOut(Model):
    count: int = Field(description="patents of the unfiltered top k that the filters removed")
    by_filter: dict[str, int] = Field(description="filter name -> how many of them it removed")


class MatchResult(Model):
    query_terms: list[str]
    hits: list[PatentHit]
    note: str | None = None
    filtered_out: FilteredOut | None = None
    index_position: int


class NeedHit(Model):
    rank: int
    score: float
    need: Need
    explanation: Explanation


class NeedMatchResult(Model):
    application_number: str
    hits: list[NeedHit]


# ---------------------------------------------------------------- leads


class LeadStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class LeadCreate(Model):
    need_id: int
    application_number: str = Field(min_length=8, max_length=30)
    message: str = Field("", max_length=2000)


class LeadAnswer(Model):
    note: str = Field("", max_length=2000)


class Lead(Model):
    id: int
    need_id: int
    need_title: str | None = None
    patent_id: int
    application_number: str
    patent_title: str | None = None
    sme_org_id: int
    sme_org_name: str | None = None
    owner_org_ids: list[int]
    status: str
    message: str
    response_note: str
    score: float | None
    created_at: datetime
    updated_at: datetime
    contact: dict[str, Any] | None = Field(
        None, description="the SME's contact details, shown to the owner once accepted"
    )


class LeadPage(Model):
    items: list[Lead]
    next_cursor: str | None

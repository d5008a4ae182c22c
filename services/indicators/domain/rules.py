"""The counting rules: who qualifies (pure functions) and what is counted (SQL).

Every computed indicator names one rule below. A rule returns an *annual* series
{year: value} for a scope (the whole city, or one district) and a window
[plan start, as_of]; the plan layer turns it into cumulative totals, growth rates,
progress and status (domain/plans.py). The rules are written out in docs/indicators.md
and each has a test in tests/indicators/test_rules.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.indicators.domain.common import day_end_utc
from services.indicators.models import (
    Deal,
    DealPatent,
    Listing,
    Payment,
    Pledge,
    PoolEvent,
    ProductFiling,
    Securitisation,
)

SUPPLIER_KINDS = frozenset({"university", "institute", "soe"})
ACADEMIC_KINDS = frozenset({"university", "institute"})
POOLED = ("listed", "negotiating")


@dataclass(frozen=True)
class Party:
    """An organisation's attributes frozen at a deal's effective date."""

    org_id: int
    name: str
    kind: str
    district: str | None
    in_tianjin: bool
    is_sme: bool


# --- who qualifies (judged on the frozen parties) ---------------------------------------


def recipient_is_city_sme(recipient: Party) -> bool:
    """市内中小企业: an SME located in a Tianjin district at the effective date."""
    return recipient.is_sme and recipient.in_tianjin and recipient.district is not None


def supplier_qualifies(supplier: Party, kinds: frozenset[str] = SUPPLIER_KINDS) -> bool:
    """天津高校、科研院所、国有企业: a university, institute or SOE located in Tianjin."""
    return supplier.kind in kinds and supplier.in_tianjin and supplier.district is not None


def deal_qualifies(suppliers: Sequence[Party], recipient: Party) -> bool:
    """The parties of a deal that counts toward the 1000 target.

    Co-owned patents: one qualifying co-owner among the suppliers is enough.
    """
    return recipient_is_city_sme(recipient) and any(supplier_qualifies(s) for s in suppliers)


def academic_to_sme(suppliers: Sequence[Party], recipient: Party) -> bool:
    """Binhai row 4: an SME converting a university's or institute's patent (no SOEs)."""
    return recipient_is_city_sme(recipient) and any(
        supplier_qualifies(s, ACADEMIC_KINDS) for s in suppliers
    )


def lead_supplier(suppliers: Sequence[Party]) -> Party:
    """The supplier a line is attributed to in breakdowns: the first qualifying one."""
    for s in suppliers:
        if supplier_qualifies(s):
            return s
    return suppliers[0]


# --- what is counted (SQL) -------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: date
    as_of: date
    district: str | None = None


RuleFn = Callable[[AsyncSession, Window], Awaitable[dict[int, Decimal]]]


@dataclass(frozen=True)
class Rule:
    name: str
    summary: str
    fn: RuleFn
    unit: str
    record_kind: str  # what a drill-down lists: deal_line, deal, payment, pledge, ...


def _series(rows: Any) -> dict[int, Decimal]:
    return {int(y): Decimal(v or 0) for y, v in rows if y is not None}


def _in_window(col: Any, w: Window) -> Any:
    return and_(col >= w.start, col <= w.as_of)


def _first_year(key: Any, year: Any, where: Any) -> Select[*tuple[Any, ...]]:
    first = select(key.label("k"), func.min(year).label("y")).where(where).group_by(key).subquery()
    return select(first.c.y, func.count()).group_by(first.c.y)


def _lines_where(w: Window, *extra: Any) -> Any:
    conds = [_in_window(DealPatent.effective_date, w), *extra]
    if w.district:
        conds.append(DealPatent.recipient_district == w.district)
    return and_(*conds)


def _deals_where(w: Window, *extra: Any) -> Any:
    # a deal recorded with override_not_in_force is kept in the ledger, never counted
    conds = [Deal.status == "effective", ~Deal.excluded, _in_window(Deal.effective_date, w),
             *extra]  # fmt: skip
    if w.district:
        conds.append(Deal.recipient_district == w.district)
    return and_(*conds)


def sme_patent_deals_stmt(w: Window) -> Select[*tuple[Any, ...]]:
    return (
        select(DealPatent.year, func.count())
        .where(_lines_where(w, DealPatent.counts))
        .group_by(DealPatent.year)
    )


async def sme_patent_deals(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    return _series(await session.execute(sme_patent_deals_stmt(w)))


async def sme_patents_distinct(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = _first_year(DealPatent.patent_id, DealPatent.year, _lines_where(w, DealPatent.counts))
    return _series(await session.execute(stmt))


async def transfers_licences(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = (
        select(DealPatent.year, func.count())
        .where(_lines_where(w, DealPatent.active, DealPatent.kind.in_(("assignment", "licence"))))
        .group_by(DealPatent.year)
    )
    return _series(await session.execute(stmt))


async def contract_amount(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = (
        select(Deal.year, func.sum(Deal.contract_amount)).where(_deals_where(w)).group_by(Deal.year)
    )
    return _series(await session.execute(stmt))


async def sme_contract_amount(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = (
        select(Deal.year, func.sum(Deal.contract_amount))
        .where(_deals_where(w, Deal.qualifies))
        .group_by(Deal.year)
    )
    return _series(await session.execute(stmt))


async def sme_amount_received(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    conds = [Payment.counts, _in_window(Payment.received_on, w)]
    if w.district:
        conds.append(Payment.recipient_district == w.district)
    stmt = select(Payment.year, func.sum(Payment.amount)).where(and_(*conds)).group_by(Payment.year)
    return _series(await session.execute(stmt))


async def smes_benefiting(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = (
        select(Deal.year, func.count(func.distinct(Deal.recipient_org_id)))
        .where(_deals_where(w, Deal.qualifies))
        .group_by(Deal.year)
    )
    return _series(await session.execute(stmt))


async def smes_converting_academic(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = _first_year(Deal.recipient_org_id, Deal.year, _deals_where(w, Deal.academic_to_sme))
    return _series(await session.execute(stmt))


def _pledge_where(w: Window, *extra: Any) -> Any:
    conds = [Pledge.status == "active", _in_window(Pledge.registered_on, w), *extra]
    if w.district:
        conds.append(Pledge.pledgor_district == w.district)
    return and_(*conds)


async def pledge_amount(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = (
        select(Pledge.year, func.sum(Pledge.amount)).where(_pledge_where(w)).group_by(Pledge.year)
    )
    return _series(await session.execute(stmt))


async def pledge_count(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = select(Pledge.year, func.count()).where(_pledge_where(w)).group_by(Pledge.year)
    return _series(await session.execute(stmt))


async def mixed_pledges(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    stmt = (
        select(Pledge.year, func.count())
        .where(_pledge_where(w, Pledge.asset_kind == "mixed"))
        .group_by(Pledge.year)
    )
    return _series(await session.execute(stmt))


async def sme_product_filings(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    conds = [ProductFiling.org_is_sme, _in_window(ProductFiling.filed_on, w)]
    if w.district:
        conds.append(ProductFiling.org_district == w.district)
    stmt = select(ProductFiling.year, func.count()).where(and_(*conds)).group_by(ProductFiling.year)
    return _series(await session.execute(stmt))


async def securitisation_products(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    conds = [_in_window(Securitisation.issued_on, w)]
    if w.district:
        conds.append(Securitisation.district == w.district)
    stmt = (
        select(Securitisation.year, func.count()).where(and_(*conds)).group_by(Securitisation.year)
    )
    return _series(await session.execute(stmt))


def _years(w: Window) -> list[int]:
    return list(range(w.start.year, w.as_of.year + 1))


def _year_bound(y: int, w: Window) -> Any:
    """Exclusive UTC bound: the end of year y in Tianjin, or of as_of if earlier."""
    return day_end_utc(min(date(y, 12, 31), w.as_of))


async def pooled_ever(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    """Patents whose listing entered the pool in each year (first_listed_at)."""
    lo = day_end_utc(date.fromordinal(w.start.toordinal() - 1))
    cols = []
    prev = lo
    for y in _years(w):
        hi = _year_bound(y, w)
        cond = and_(Listing.first_listed_at >= prev, Listing.first_listed_at < hi)
        cols.append(func.sum(case((cond, 1), else_=0)))
        prev = hi
    if not cols:
        return {}
    stmt = select(*cols).select_from(Listing)
    if w.district:
        stmt = stmt.where(Listing.owner_district == w.district)
    row = (await session.execute(stmt)).one()
    return {y: Decimal(v or 0) for y, v in zip(_years(w), row, strict=True)}


def pooled_at_stmt(bound: Any, district: str | None) -> Select[*tuple[Any, ...]]:
    """Listings in the pool (listed or negotiating) just before `bound`."""
    stmt = (
        select(func.count())
        .select_from(PoolEvent)
        .where(
            PoolEvent.status.in_(POOLED),
            PoolEvent.at < bound,
            or_(PoolEvent.ended_at.is_(None), PoolEvent.ended_at >= bound),
        )
    )
    if district:
        stmt = stmt.where(PoolEvent.owner_district == district)
    return stmt


async def pooled_current(session: AsyncSession, w: Window) -> dict[int, Decimal]:
    """Patents in the pool (listed or negotiating) at the end of each year / at as_of."""
    years = _years(w)
    cols = []
    for y in years:
        b = _year_bound(y, w)
        held = and_(PoolEvent.at < b, or_(PoolEvent.ended_at.is_(None), PoolEvent.ended_at >= b))
        cols.append(func.sum(case((held, 1), else_=0)))
    if not cols:
        return {}
    stmt = select(*cols).select_from(PoolEvent).where(PoolEvent.status.in_(POOLED))
    if w.district:
        stmt = stmt.where(PoolEvent.owner_district == w.district)
    row = (await session.execute(stmt)).one()
    return {y: Decimal(v or 0) for y, v in zip(years, row, strict=True)}


RULES: dict[str, Rule] = {
    r.name: r
    for r in [
        Rule("sme_patent_deals", "Patent-deals from a Tianjin university, institute or SOE to "
             "an SME in Tianjin, effective and not cancelled (the 1000 target)",
             sme_patent_deals, "件", "deal_line"),
        Rule("sme_patents_distinct", "Distinct patents among the sme_patent_deals lines, "
             "counted in the year of their first qualifying deal", sme_patents_distinct, "件",
             "deal_line"),
        Rule("transfers_licences", "Patent-deals of kind assignment or licence, effective",
             transfers_licences, "件", "deal_line"),
        Rule("contract_amount", "Contract amount of effective deals, by effective year",
             contract_amount, "元", "deal"),
        Rule("sme_contract_amount", "Contract amount of effective qualifying deals",
             sme_contract_amount, "元", "deal"),
        Rule("sme_amount_received", "Payments received on effective qualifying deals, by "
             "the year received", sme_amount_received, "元", "payment"),
        Rule("smes_benefiting", "Distinct SME recipients of effective qualifying deals in "
             "the year", smes_benefiting, "家", "deal"),
        Rule("smes_converting_academic", "Distinct Tianjin SMEs with an effective deal from "
             "a Tianjin university or institute, in the year of their first such deal",
             smes_converting_academic, "家", "deal"),
        Rule("pledge_amount", "Amount of active pledges registered in the year",
             pledge_amount, "元", "pledge"),
        Rule("pledge_count", "Active pledges registered in the year", pledge_count, "项",
             "pledge"),
        Rule("mixed_pledges", "Active mixed patent + trademark pledges", mixed_pledges, "单",
             "pledge"),
        Rule("sme_product_filings", "Patent-product filings by SMEs in the year",
             sme_product_filings, "件", "product_filing"),
        Rule("securitisation_products", "IP securitisation products issued",
             securitisation_products, "单", "securitisation"),
        Rule("pooled_ever", "Patents that entered the pool (first listed) in the year",
             pooled_ever, "件", "listing"),
        Rule("pooled_current", "Patents listed or negotiating at the end of the year",
             pooled_current, "件", "listing"),
    ]
}  # fmt: skip
